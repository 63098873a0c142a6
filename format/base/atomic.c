#include "base/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"

enum vf_code vf_write_all(int fd, const void *buf, size_t len, const char *name,
			  struct vf_error *err)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vf_fail_errno(err, errno, "writing %s", name);
		p += n;
		len -= (size_t)n;
	}
	return VF_OK;
}

static enum vf_code split_path(struct vf_atomic *a, const char *path, struct vf_error *err)
{
	char *d = strdup(path), *b = strdup(path);
	if (!d || !b) {
		free(d);
		free(b);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	a->dir = strdup(dirname(d));
	a->base = strdup(basename(b));
	free(d);
	free(b);
	if (!a->dir || !a->base)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (!strcmp(a->base, "/") || !strcmp(a->base, ".") || !strcmp(a->base, ".."))
		return vf_fail(err, VF_E_ARG, "%s: not a file name", path);
	return VF_OK;
}

/* A fresh hidden name beside the target: ".base.XXXXXXXXXXXX.tmp". */
static enum vf_code temp_name(struct vf_atomic *a, struct vf_error *err)
{
	uint8_t rnd[6];
	enum vf_code rc = vf_random(rnd, sizeof(rnd), err);
	if (rc != VF_OK)
		return rc;
	free(a->temp);
	size_t n = strlen(a->base) + 32;
	if (!(a->temp = malloc(n)))
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	snprintf(a->temp, n, ".%s.%02x%02x%02x%02x%02x%02x.tmp", a->base, rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5]);
	return VF_OK;
}

int vf_create_private_at(int dirfd, const char *name, mode_t mode)
{
	return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
}

/* The temporary file, in the directory a->dir_fd already holds. */
static enum vf_code create_temp(struct vf_atomic *a, mode_t mode, struct vf_error *err)
{
	enum vf_code rc;
	/* An unnamed file vanishes by itself if we are killed: nothing to
	 * clean up. It needs /proc to be given a name later. */
	if (access("/proc/self/fd", X_OK) == 0) {
		a->fd = openat(a->dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
		if (a->fd >= 0)
			return VF_OK;
	}
	for (int tries = 0; tries < 16; tries++) {
		if ((rc = temp_name(a, err)) != VF_OK)
			goto fail;
		a->fd = vf_create_private_at(a->dir_fd, a->temp, mode);
		if (a->fd >= 0)
			return VF_OK;
		if (errno != EEXIST)
			break;
	}
	rc = vf_fail_errno(err, errno, "creating a file in %s", a->dir);
	free(a->temp);
	a->temp = NULL;
fail:
	vf_atomic_abort(a);
	return rc;
}

enum vf_code vf_atomic_open(struct vf_atomic *a, const char *path, mode_t mode,
			    struct vf_error *err)
{
	memset(a, 0, sizeof(*a));
	a->fd = a->dir_fd = -1;
	enum vf_code rc = split_path(a, path, err);
	if (rc != VF_OK)
		goto fail;
	a->dir_fd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dir_fd < 0) {
		rc = vf_fail_errno(err, errno, "%s", a->dir);
		goto fail;
	}
	return create_temp(a, mode, err);
fail:
	vf_atomic_abort(a);
	return rc;
}

/* The name path's last symlink leads to: "dir/target" for a relative
 * target (resolved from the link's directory, as the kernel does). */
static char *link_destination(const struct vf_atomic *a, const char *target)
{
	if (target[0] == '/')
		return strdup(target);
	size_t n = strlen(a->dir) + strlen(target) + 2;
	char *next = malloc(n);
	if (next)
		snprintf(next, n, "%s/%s", a->dir, target);
	return next;
}

/* Reads the symlink a->base in a->dir_fd; *next is where it leads. */
static enum vf_code follow_link(struct vf_atomic *a, char **next, struct vf_error *err)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(a->dir_fd, a->base, target, sizeof(target));
	if (n < 0)
		return vf_fail_errno(err, errno, "reading the link %s/%s", a->dir, a->base);
	if ((size_t)n == sizeof(target))
		return vf_fail_errno(err, ENAMETOOLONG, "reading the link %s/%s", a->dir, a->base);
	target[n] = '\0';
	if (!(*next = link_destination(a, target)))
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	return VF_OK;
}

/* Walks path's last component through symlinks to the file it names:
 * a->dir_fd, a->dir and a->base end up naming it, *st holds its status
 * (when *exists). The directories on the way are the kernel's to resolve:
 * the user chose this path, and following it is what they asked for. */
static enum vf_code resolve_output(struct vf_atomic *a, const char *path, struct stat *st,
				   bool *exists, struct vf_error *err)
{
	char *cur = strdup(path);
	enum vf_code rc = cur ? VF_OK : vf_fail(err, VF_E_NOMEM, "out of memory");
	for (int hops = 0; rc == VF_OK; hops++) {
		free(a->dir);
		free(a->base);
		a->dir = a->base = NULL;
		if (a->dir_fd >= 0)
			close(a->dir_fd);
		a->dir_fd = -1;
		size_t len = strlen(cur);
		if (len && cur[len - 1] == '/') {
			rc = vf_fail(err, VF_E_ARG, "%s: not a file name (ends with /)", cur);
			break;
		}
		if ((rc = split_path(a, cur, err)) != VF_OK)
			break;
		a->dir_fd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (a->dir_fd < 0) {
			rc = vf_fail_errno(err, errno, "%s", a->dir);
			break;
		}
		if (fstatat(a->dir_fd, a->base, st, AT_SYMLINK_NOFOLLOW) != 0) {
			*exists = false;
			if (errno != ENOENT)
				rc = vf_fail_errno(err, errno, "%s", cur);
			break;
		}
		*exists = true;
		if (!S_ISLNK(st->st_mode))
			break;
		if (hops == VF_MAX_LINK_HOPS) {
			rc = vf_fail_errno(err, ELOOP, "%s", path);
			break;
		}
		char *next;
		if ((rc = follow_link(a, &next, err)) == VF_OK) {
			free(cur);
			cur = next;
		}
	}
	free(cur);
	return rc;
}

enum vf_code vf_atomic_open_output(struct vf_atomic *a, const char *path, mode_t new_mode,
				   struct vf_error *err)
{
	memset(a, 0, sizeof(*a));
	a->fd = a->dir_fd = -1;
	struct stat st;
	bool exists = false;
	enum vf_code rc = resolve_output(a, path, &st, &exists, err);
	if (rc == VF_OK && exists && S_ISDIR(st.st_mode))
		rc = vf_fail(err, VF_E_IO, "%s/%s: is a directory", a->dir, a->base);
	else if (rc == VF_OK && exists && !S_ISREG(st.st_mode))
		rc = vf_fail(err, VF_E_IO, "%s/%s: not a regular file", a->dir, a->base);
	if (rc != VF_OK) {
		vf_atomic_abort(a);
		return rc;
	}
	if (exists) {
		a->keep.set = true;
		a->keep.uid = st.st_uid;
		a->keep.gid = st.st_gid;
		/* New contents do not inherit set-id privileges. */
		a->keep.mode = st.st_mode & 0777;
	}
	return create_temp(a, new_mode, err);
}

/* Gives the new file the replaced one's owner, group and permissions,
 * through its descriptor (owner first: chown may clear mode bits). */
static enum vf_code keep_metadata(struct vf_atomic *a, struct vf_error *err)
{
	struct stat now;
	if (fstat(a->fd, &now) != 0)
		return vf_fail_errno(err, errno, "%s/%s", a->dir, a->base);
	if ((now.st_uid != a->keep.uid || now.st_gid != a->keep.gid) &&
	    fchown(a->fd, a->keep.uid, a->keep.gid) != 0)
		return vf_fail_errno(err, errno,
				     "%s/%s: cannot give the new file the owner and group (%lu:%lu) "
				     "of the one it replaces",
				     a->dir, a->base, (unsigned long)a->keep.uid,
				     (unsigned long)a->keep.gid);
	if (fchmod(a->fd, a->keep.mode) != 0)
		return vf_fail_errno(err, errno, "%s/%s: cannot set mode %04o", a->dir, a->base,
				     (unsigned)a->keep.mode);
	return VF_OK;
}

/* Gives an O_TMPFILE file a (temporary) name. */
static enum vf_code link_anonymous(struct vf_atomic *a, struct vf_error *err)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", a->fd);
	for (int tries = 0; tries < 16; tries++) {
		enum vf_code rc = temp_name(a, err);
		if (rc != VF_OK)
			return rc;
		if (linkat(AT_FDCWD, proc, a->dir_fd, a->temp, AT_SYMLINK_FOLLOW) == 0)
			return VF_OK;
		if (errno != EEXIST)
			break;
	}
	enum vf_code rc = vf_fail_errno(err, errno, "naming the new file in %s", a->dir);
	free(a->temp);
	a->temp = NULL;
	return rc;
}

enum vf_code vf_atomic_commit(struct vf_atomic *a, bool replace, struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	if (a->keep.set)
		rc = keep_metadata(a, err);
	if (rc == VF_OK && fsync(a->fd) != 0)
		rc = vf_fail_errno(err, errno, "syncing %s/%s", a->dir, a->base);
	if (rc == VF_OK && !a->temp)
		rc = link_anonymous(a, err);
	if (rc == VF_OK) {
		unsigned flags = replace ? 0 : RENAME_NOREPLACE;
		if (renameat2(a->dir_fd, a->temp, a->dir_fd, a->base, flags) != 0)
			rc = errno == EEXIST ? vf_fail(err, VF_E_IO, "%s/%s: already exists", a->dir,
						       a->base)
					     : vf_fail_errno(err, errno, "renaming into %s/%s",
							     a->dir, a->base);
		else {
			free(a->temp);
			a->temp = NULL;
		}
	}
	if (rc == VF_OK && fsync(a->dir_fd) != 0)
		rc = vf_fail_errno(err, errno, "syncing directory %s", a->dir);
	vf_atomic_abort(a);
	return rc;
}

void vf_atomic_abort(struct vf_atomic *a)
{
	if (a->temp && a->dir_fd >= 0)
		unlinkat(a->dir_fd, a->temp, 0);
	if (a->fd >= 0)
		close(a->fd);
	if (a->dir_fd >= 0)
		close(a->dir_fd);
	a->fd = a->dir_fd = -1;
	free(a->temp);
	free(a->dir);
	free(a->base);
	a->temp = a->dir = a->base = NULL;
}

const char *vf_atomic_temp_path(const struct vf_atomic *a)
{
	return a->temp;
}
