/* Removing directory trees that other processes could have filled: a
 * generator script's private directory, varinject's runtime directory,
 * install's old generations, and what killed runs of the tools left.
 * Everything is reached through directory descriptors: a symlink is
 * unlinked, never followed, and a directory is opened with
 * O_NOFOLLOW|O_DIRECTORY and checked (fstat) to be the one seen in the
 * listing, so swapping an entry for a symlink or another directory between
 * the look and the open cannot lead the removal elsewhere. One copy here,
 * so that all three tools get every fix. */
#ifndef VF_TREE_H
#define VF_TREE_H

#include <stdbool.h>
#include <sys/types.h>

/* Bytes of each file overwritten with zeros before it is unlinked (with
 * .wipe): secrets are far smaller; a bigger file is not one of ours. */
#define VF_TREE_WIPE_LIMIT (16u << 20)

struct vf_tree_opts {
	/* Enter only directories owned by owner (EPERM otherwise): from
	 * something a user owns, a privileged remover must not be led to
	 * what the user does not own. */
	bool check_owner;
	uid_t owner;
	/* Zero-fill regular files that have one link before unlinking them:
	 * on a RAM file system unlinking frees the pages without clearing. */
	bool wipe;
	/* Enter no directory on another file system (EXDEV), as
	 * rm --one-file-system: a mount point is not part of the tree. */
	bool one_fs;
	/* Give a directory back its owner's rwx when it lacks them, so a
	 * tree whose writer took its own permissions away (a script may) can
	 * still be emptied. */
	bool restore_access;
	/* Directory levels entered, the top being level 0: one descriptor
	 * each (ELOOP beyond). 1 empties the top but enters nothing. */
	unsigned max_depth;
};

/* Removes the directory NAME beneath DIRFD and everything in it. NAME
 * itself must be a directory (not followed if a symlink). Returns 0, or -1
 * with errno from the first failure (EPERM: another owner's directory;
 * ELOOP: too deep; EXDEV: another file system; ESTALE: an entry changed
 * while being removed); the rest of the tree is still removed. */
int vf_tree_remove_at(int dirfd, const char *name, const struct vf_tree_opts *o);

/* Removes everything in the directory FD (level 0), which stays open and
 * in place; the caller has checked what FD is. 0, or -1 with errno. */
int vf_tree_empty(int fd, const struct vf_tree_opts *o);

/* Directories a tool makes for one run, named after its pid, that a run
 * killed outright leaves behind. */
struct vf_tree_stale {
	/* Recognises the tool's names and gives the pid in one; anything it
	 * refuses is left alone. */
	bool (*parse)(const char *name, pid_t *pid);
	/* Only a directory of mode exactly 0700, as the tool makes them. */
	bool private_mode;
	/* Only if flock(LOCK_EX|LOCK_NB) succeeds: a live run holds it. */
	bool locked;
	/* How to remove one; the directory itself is checked to be
	 * geteuid()'s, what is inside it only as these options say. */
	struct vf_tree_opts tree;
	/* Told of each directory removed (format/ never prints), or NULL. */
	void (*removed)(const char *name, pid_t pid, void *ctx);
	void *ctx;
};

/* Removes from PARENT_FD every directory S recognises whose pid is dead
 * (kill(pid, 0) fails with ESRCH), owned by geteuid(), not a symlink.
 * Best effort: what cannot be removed stays for a later run. */
void vf_tree_sweep_stale(int parent_fd, const struct vf_tree_stale *s);

#endif
