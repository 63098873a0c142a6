/* Files written all-or-nothing: data goes to an unnamed (O_TMPFILE) or
 * hidden temporary file beside the target, and only a complete, fsynced
 * file is renamed into place, after which the directory is fsynced. A
 * failure or a kill at any moment leaves the old file (or none). */
#ifndef VF_ATOMIC_H
#define VF_ATOMIC_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"

struct vf_atomic {
	int fd;	   /* write the contents here */
	int dir_fd;
	char *dir, *base;
	char *temp; /* the temporary name, while one exists (else NULL) */
	/* What the replaced file had, given to the new one at commit. */
	struct {
		bool set;
		uid_t uid;
		gid_t gid;
		mode_t mode;
	} keep;
};

/* Creates the temporary file (mode, further restricted by the umask).
 * A symlink at path is replaced itself, not followed. */
enum vf_code vf_atomic_open(struct vf_atomic *a, const char *path, mode_t mode,
			    struct vf_error *err);

/* The same for an output file the user named (varseal -o), as age treats
 * it: a symlink at path is followed (at most VF_MAX_LINK_HOPS of them) to
 * the file it finally names, which is replaced in its own directory; the
 * link stays. If that file exists, the new one gets its owner, group and
 * permission bits (not set-id bits, ACLs or extended attributes), or the
 * commit fails if it cannot; a new file gets new_mode, less the umask. */
#define VF_MAX_LINK_HOPS 40 /* the kernel's own limit for one path */
enum vf_code vf_atomic_open_output(struct vf_atomic *a, const char *path, mode_t new_mode,
				   struct vf_error *err);
/* fsync, rename over the target (replace) or fail if it exists
 * (!replace), fsync the directory; closes everything. */
enum vf_code vf_atomic_commit(struct vf_atomic *a, bool replace, struct vf_error *err);
/* Removes the temporary file; safe after a failed commit and twice. */
void vf_atomic_abort(struct vf_atomic *a);
/* The temporary path on disk, if any (for a signal handler to unlink). */
const char *vf_atomic_temp_path(const struct vf_atomic *a);

/* A new private file: created beneath dirfd (or AT_FDCWD) only if nothing,
 * not even a symlink, is at name (O_EXCL | O_NOFOLLOW), write-only and
 * close-on-exec, with mode less the umask. Returns the descriptor, or -1
 * with errno (EEXIST when something is there). */
int vf_create_private_at(int dirfd, const char *name, mode_t mode);

/* Writes len bytes to fd, retrying short writes and EINTR. */
enum vf_code vf_write_all(int fd, const void *buf, size_t len, const char *name,
			  struct vf_error *err);

#endif
