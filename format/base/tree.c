/* Tree removal beneath directory descriptors (tree.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/tree.h"

/* One removal: the options and the file system it stays on. */
struct walk {
	const struct vf_tree_opts *o;
	dev_t dev;
};

static int fail(int e)
{
	errno = e;
	return -1;
}

/* Overwrites a file's contents before it is unlinked. Only a file with one
 * link (else the zeros would land in another name's contents), and only
 * the regular file that was seen. */
static void wipe_file(int dir_fd, const char *name, const struct stat *seen)
{
	static const uint8_t zeros[65536];
	if (seen->st_nlink != 1 || seen->st_size <= 0)
		return;
	int fd = openat(dir_fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    st.st_ino == seen->st_ino && st.st_dev == seen->st_dev) {
		size_t left = (size_t)st.st_size < VF_TREE_WIPE_LIMIT ? (size_t)st.st_size
								      : VF_TREE_WIPE_LIMIT;
		off_t at = 0;
		while (left) {
			size_t chunk = left < sizeof(zeros) ? left : sizeof(zeros);
			ssize_t n = pwrite(fd, zeros, chunk, at);
			if (n <= 0)
				break;
			left -= (size_t)n;
			at += n;
		}
	}
	close(fd);
}

/* Gives the directory FD (stat ST) back its owner's rwx, if asked and
 * missing, so its entries can be listed and unlinked. */
static void restore_access(int fd, const struct stat *st, const struct vf_tree_opts *o)
{
	if (o->restore_access && (st->st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(fd, (st->st_mode & 07777) | S_IRWXU);
}

/* The entries of FD, read through a duplicate, rewound: no new open of
 * ".", which the directory's mode could refuse. NULL with errno. */
static DIR *list_dir(int fd)
{
	int copy = dup(fd);
	DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
	if (!d) {
		int e = errno;
		if (copy >= 0)
			close(copy);
		errno = e;
		return NULL;
	}
	rewinddir(d);
	return d;
}

/* Opens the directory NAME beneath DIRFD without following a symlink: it
 * must be the same directory as SEEN, the entry as listed. */
static int open_dir(int dirfd, const char *name, const struct stat *seen,
		    const struct vf_tree_opts *o)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags);
	/* AT_SYMLINK_NOFOLLOW: the mode of whatever is there, never of
	 * what a symlink points to. */
	if (fd < 0 && errno == EACCES && o->restore_access &&
	    fchmodat(dirfd, name, S_IRWXU, AT_SYMLINK_NOFOLLOW) == 0)
		fd = openat(dirfd, name, flags);
	if (fd < 0)
		return -1;
	struct stat st;
	int e = 0;
	if (fstat(fd, &st) != 0)
		e = errno;
	else if (st.st_ino != seen->st_ino || st.st_dev != seen->st_dev)
		e = ESTALE;
	else if (o->check_owner && st.st_uid != o->owner)
		e = EPERM;
	if (e) {
		close(fd);
		return fail(e);
	}
	restore_access(fd, &st, o);
	return fd;
}

static int empty_dir(int fd, unsigned depth, const struct walk *w);

/* The directory NAME (as SEEN before opening it) at DEPTH: emptied, then
 * removed. */
static int remove_dir(int dirfd, const char *name, const struct stat *seen, unsigned depth,
		      const struct walk *w)
{
	if (depth >= w->o->max_depth)
		return fail(ELOOP);
	if (w->o->one_fs && seen->st_dev != w->dev)
		return fail(EXDEV);
	int fd = open_dir(dirfd, name, seen, w->o);
	if (fd < 0)
		return -1;
	int rc = empty_dir(fd, depth, w);
	int e = errno;
	close(fd);
	if (rc != 0)
		return fail(e);
	/* Gone already is what was asked. */
	return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* One entry of the directory FD at DEPTH; vanished is not a failure. */
static int remove_entry(int fd, const char *name, unsigned depth, const struct walk *w)
{
	struct stat st;
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	if (S_ISDIR(st.st_mode))
		return remove_dir(fd, name, &st, depth + 1, w);
	if (w->o->wipe && S_ISREG(st.st_mode))
		wipe_file(fd, name, &st);
	return unlinkat(fd, name, 0);
}

/* Unlinks everything in FD. The listing is read again until a pass
 * removes nothing, so entries the directory position skipped while it
 * shrank are not left behind; a pass that fails is the last. */
static int empty_dir(int fd, unsigned depth, const struct walk *w)
{
	int failed = 0;
	bool removed = true;
	while (removed && !failed) {
		removed = false;
		DIR *d = list_dir(fd);
		if (!d) {
			failed = errno;
			break;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (remove_entry(fd, e->d_name, depth, w) == 0)
				removed = true;
			else if (errno != ENOENT && !failed)
				failed = errno;
		}
		closedir(d);
	}
	return failed ? fail(failed) : 0;
}

int vf_tree_remove_at(int dirfd, const char *name, const struct vf_tree_opts *o)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	/* The top's file system bounds the walk. */
	struct walk w = {.o = o, .dev = st.st_dev};
	return remove_dir(dirfd, name, &st, 0, &w);
}

int vf_tree_empty(int fd, const struct vf_tree_opts *o)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	restore_access(fd, &st, o);
	struct walk w = {.o = o, .dev = st.st_dev};
	return empty_dir(fd, 0, &w);
}

/* The run that made it is gone: no process has its pid (EPERM means one
 * exists, another user's). */
static bool dead(pid_t pid)
{
	return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH;
}

static bool ours(const struct stat *st, const struct vf_tree_stale *s)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() &&
	       (!s->private_mode || (st->st_mode & 07777) == 0700);
}

static void remove_if_stale(int parent_fd, const char *name, const struct vf_tree_stale *s)
{
	pid_t pid;
	struct stat st;
	if (!s->parse(name, &pid) || pid <= 0 || !dead(pid) ||
	    fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !ours(&st, s))
		return;
	/* The same directory whose owner and mode were just checked. */
	int fd = open_dir(parent_fd, name, &st, &s->tree);
	if (fd < 0)
		return;
	struct walk w = {.o = &s->tree, .dev = st.st_dev};
	bool gone = (!s->locked || flock(fd, LOCK_EX | LOCK_NB) == 0) &&
		    empty_dir(fd, 0, &w) == 0 && unlinkat(parent_fd, name, AT_REMOVEDIR) == 0;
	close(fd);
	if (gone && s->removed)
		s->removed(name, pid, s->ctx);
}

void vf_tree_sweep_stale(int parent_fd, const struct vf_tree_stale *s)
{
	DIR *d = list_dir(parent_fd);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		remove_if_stale(parent_fd, e->d_name, s);
	closedir(d);
}
