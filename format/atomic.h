/* Files written all-or-nothing: data goes to an unnamed (O_TMPFILE) or
 * hidden temporary file beside the target, and only a complete, fsynced
 * file is renamed into place, after which the directory is fsynced. A
 * failure or a kill at any moment leaves the old file (or none). */
#ifndef VF_ATOMIC_H
#define VF_ATOMIC_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct vf_atomic {
	int fd;	   /* write the contents here */
	int dir_fd;
	char *dir, *base;
	char *temp; /* the temporary name, while one exists (else NULL) */
};

/* Creates the temporary file (mode, further restricted by the umask). */
enum vf_code vf_atomic_open(struct vf_atomic *a, const char *path, mode_t mode,
			    struct vf_error *err);
/* fsync, rename over the target (replace) or fail if it exists
 * (!replace), fsync the directory; closes everything. */
enum vf_code vf_atomic_commit(struct vf_atomic *a, bool replace, struct vf_error *err);
/* Removes the temporary file; safe after a failed commit and twice. */
void vf_atomic_abort(struct vf_atomic *a);
/* The temporary path on disk, if any (for a signal handler to unlink). */
const char *vf_atomic_temp_path(const struct vf_atomic *a);

/* Writes len bytes to fd, retrying short writes and EINTR. */
enum vf_code vf_write_all(int fd, const void *buf, size_t len, const char *name,
			  struct vf_error *err);

#endif
