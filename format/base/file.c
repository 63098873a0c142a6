/* Whole files with a size bound, and new private files: the helpers every
 * tool needs around a path it is given (see io.h and atomic.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/io.h"
#include "base/secmem.h"

static void *buf_alloc(const struct vf_read_opts *o, size_t len)
{
	if (o->arena)
		return vf_arena_alloc(o->arena, len);
	if (o->scratch)
		return vf_scratch_alloc(len);
	return o->guarded ? vf_secure_alloc(len) : malloc(len);
}

static void buf_free(const struct vf_read_opts *o, void *p, size_t len)
{
	if (!p)
		return;
	if (o->arena)
		vf_wipe(p, len); /* released with the arena */
	else if (o->scratch)
		vf_scratch_free(p, len);
	else if (o->guarded)
		vf_secure_free(p);
	else
		free(p);
}

void vf_file_free(struct vf_file *f, const struct vf_read_opts *o)
{
	buf_free(o, f->data, f->size);
	f->data = NULL;
	f->len = f->size = 0;
}

static enum vf_code fail(struct vf_file *f, enum vf_read_fail why, int errnum)
{
	f->fail = why;
	f->errnum = errnum;
	return why == VF_READ_NOMEM ? VF_E_NOMEM : VF_E_IO;
}

/* A larger buffer for a stream, the first len bytes kept. */
static uint8_t *grow(const struct vf_read_opts *o, uint8_t *buf, size_t len, size_t *cap)
{
	size_t want = *cap * 2 > o->max + 1 ? o->max + 1 : *cap * 2;
	uint8_t *more = buf_alloc(o, want + 1);
	if (more) {
		memcpy(more, buf, len);
		buf_free(o, buf, *cap + 1);
		*cap = want;
	}
	return more;
}

/* Reads to the end or until the buffer holds cap bytes, growing it for a
 * stream (up to max + 1, one byte more than allowed, to see an excess). */
static enum vf_code read_to_end(int fd, const struct vf_read_opts *o, bool stream,
				struct vf_file *f, uint8_t **buf, size_t *cap, size_t *len)
{
	for (;;) {
		if (*len == *cap) {
			if (!stream || *cap > o->max)
				return VF_OK;
			uint8_t *more = grow(o, *buf, *len, cap);
			if (!more)
				return fail(f, VF_READ_NOMEM, ENOMEM);
			*buf = more;
		}
		ssize_t got = read(fd, *buf + *len, *cap - *len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return fail(f, VF_READ_IO, errno);
		if (got == 0)
			return VF_OK;
		*len += (size_t)got;
	}
}

static enum vf_code read_fd(int fd, const struct vf_read_opts *o, struct vf_file *f)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return fail(f, VF_READ_OPEN, errno);
	f->mode = st.st_mode;
	bool regular = S_ISREG(st.st_mode);
	if (S_ISDIR(st.st_mode) || (!regular && !o->any_type))
		return fail(f, VF_READ_TYPE, 0);
	if (regular && (uint64_t)st.st_size > o->max)
		return fail(f, VF_READ_SIZE, 0);
	/* A regular file gets its size and one byte more, to see it grow; a
	 * stream starts small: guarded memory is locked and scarce. */
	size_t cap = regular ? (size_t)st.st_size + 1 : (o->max < 4096 ? o->max + 1 : 4096);
	size_t len = 0;
	uint8_t *buf = buf_alloc(o, cap + 1);
	if (!buf)
		return fail(f, VF_READ_NOMEM, ENOMEM);
	enum vf_code rc = read_to_end(fd, o, !regular, f, &buf, &cap, &len);
	if (rc == VF_OK && len > o->max)
		rc = fail(f, VF_READ_SIZE, 0);
	else if (rc == VF_OK && regular && len != (size_t)st.st_size)
		rc = fail(f, VF_READ_CHANGED, 0);
	if (rc != VF_OK) {
		buf_free(o, buf, cap + 1);
		return rc;
	}
	buf[len] = '\0';
	f->data = buf;
	f->len = len;
	f->size = cap + 1;
	return VF_OK;
}

static enum vf_code describe(const char *name, const struct vf_read_opts *o, struct vf_file *f,
			     enum vf_code rc, struct vf_error *err)
{
	switch (f->fail) {
	case VF_READ_NONE: return rc;
	case VF_READ_OPEN:
	case VF_READ_IO: return vf_fail_errno(err, f->errnum, "%s", name);
	case VF_READ_TYPE: return vf_fail(err, rc, "%s: not a regular file", name);
	case VF_READ_SIZE: return vf_fail(err, rc, "%s: larger than %zu bytes", name, o->max);
	case VF_READ_CHANGED: return vf_fail(err, rc, "%s: changed while read", name);
	case VF_READ_NOMEM: return vf_fail(err, rc, "out of memory");
	}
	return rc;
}

enum vf_code vf_read_fd(int fd, const char *name, const struct vf_read_opts *o,
			struct vf_file *f, struct vf_error *err)
{
	*f = (struct vf_file){0};
	return describe(name, o, f, read_fd(fd, o, f), err);
}

enum vf_code vf_read_file(int dirfd, const char *path, const struct vf_read_opts *o,
			  struct vf_file *f, struct vf_error *err)
{
	*f = (struct vf_file){0};
	enum vf_code rc = VF_OK;
	struct stat st;
	int nofollow = o->follow == VF_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0;
	/* Refuse a device or FIFO before open can touch it; fstat decides. */
	if (fstatat(dirfd, path, &st, nofollow) != 0)
		rc = fail(f, VF_READ_OPEN, errno);
	else if (S_ISLNK(st.st_mode))
		rc = fail(f, VF_READ_OPEN, ELOOP);
	else if (S_ISDIR(st.st_mode) || (!S_ISREG(st.st_mode) && !o->any_type)) {
		f->mode = st.st_mode;
		rc = fail(f, VF_READ_TYPE, 0);
	}
	if (rc != VF_OK)
		return describe(path, o, f, rc, err);
	/* O_NONBLOCK: a FIFO swapped in cannot hang the open. Where FIFOs are
	 * welcome (any_type), open waits for the writer, as readers of one do. */
	int flags = O_RDONLY | O_NOCTTY | O_CLOEXEC | (o->any_type ? 0 : O_NONBLOCK);
	int fd = openat(dirfd, path, flags | (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return describe(path, o, f, fail(f, VF_READ_OPEN, errno), err);
	rc = read_fd(fd, o, f);
	close(fd);
	return describe(path, o, f, rc, err);
}

enum vf_code vf_read_prompt_file(const char *path, uint8_t **data, size_t *len,
				 struct vf_error *err)
{
	const struct vf_read_opts o = {.max = VF_PROMPT_FILE_MAX, .follow = VF_FOLLOW,
				       .any_type = true, .guarded = true};
	bool from_stdin = strcmp(path, "-") == 0;
	const char *name = from_stdin ? "standard input" : path;
	struct vf_file f = {0};
	enum vf_code rc = from_stdin ? read_fd(STDIN_FILENO, &o, &f) : VF_OK;
	if (!from_stdin) {
		struct vf_error ignored;
		rc = vf_read_file(AT_FDCWD, path, &o, &f, &ignored);
	}
	switch (f.fail) {
	case VF_READ_NONE: break;
	case VF_READ_OPEN:
	case VF_READ_IO: return vf_fail_errno(err, f.errnum, "prompt file %s", name);
	case VF_READ_TYPE: return vf_fail(err, rc, "prompt file %s: a directory", name);
	case VF_READ_SIZE: /* VF_PROMPT_FILE_MAX */
		return vf_fail(err, rc, "prompt file %s: larger than 1 MiB", name);
	case VF_READ_CHANGED: return vf_fail(err, rc, "prompt file %s: changed while read", name);
	case VF_READ_NOMEM: return vf_fail(err, rc, "out of memory");
	}
	if (rc != VF_OK)
		return vf_fail(err, rc, "prompt file %s: unreadable", name);
	*data = f.data;
	*len = f.len;
	return VF_OK;
}
