#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"

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
		a->fd = openat(a->dir_fd, a->temp,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
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
	if (fsync(a->fd) != 0)
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
