#include "base/io.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/secmem.h"

enum vf_code vf_sink_write(struct vf_sink *sink, const void *buf, size_t len,
			   struct vf_error *err)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return len ? sink->write(sink, &iov, 1, err) : VF_OK;
}

enum vf_code vf_read_full(struct vf_src *src, uint8_t *buf, size_t len, size_t *got,
			  struct vf_error *err)
{
	size_t have = 0;
	while (have < len) {
		ssize_t n = src->read(src, buf + have, len - have, err);
		if (n < 0)
			return err ? err->code : VF_E_IO;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	*got = have;
	return VF_OK;
}

static ssize_t fd_read(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err)
{
	struct vf_fd_src *s = (struct vf_fd_src *)src;
	for (;;) {
		ssize_t n = read(s->fd, buf, len > SSIZE_MAX ? SSIZE_MAX : len);
		if (n >= 0)
			return n;
		if (errno != EINTR) {
			vf_fail_errno(err, errno, "reading %s", s->name);
			return -1;
		}
	}
}

static bool fd_ready(struct vf_src *src)
{
	struct vf_fd_src *s = (struct vf_fd_src *)src;
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

static bool fd_positional(struct vf_src *src, struct vf_src_at *at)
{
	struct vf_fd_src *s = (struct vf_fd_src *)src;
	struct stat st;
	if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	/* Out of order from where the source stands, not from the file's
	 * start: standard input may be a file another program read part of. */
	off_t pos = lseek(s->fd, 0, SEEK_CUR);
	if (pos < 0)
		return false;
	at->fd = s->fd;
	at->start = pos;
	at->len = st.st_size > pos ? (uint64_t)(st.st_size - pos) : 0;
	at->name = s->name;
	return true;
}

static enum vf_code fd_advance(struct vf_src *src, uint64_t n, struct vf_error *err)
{
	struct vf_fd_src *s = (struct vf_fd_src *)src;
	if (n > (uint64_t)INT64_MAX || lseek(s->fd, (off_t)n, SEEK_CUR) < 0)
		return vf_fail_errno(err, n > (uint64_t)INT64_MAX ? EOVERFLOW : errno,
				     "seeking in %s", s->name);
	return VF_OK;
}

ssize_t vf_src_read_at(const struct vf_src_at *at, uint8_t *buf, size_t len, uint64_t off)
{
	size_t have = 0;
	if (len > SSIZE_MAX || off > (uint64_t)(INT64_MAX - at->start) - len) {
		errno = EOVERFLOW;
		return -1;
	}
	while (have < len) {
		ssize_t n = pread(at->fd, buf + have, len - have, at->start + (off_t)(off + have));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	return (ssize_t)have;
}

void vf_fd_src_init(struct vf_fd_src *s, int fd, const char *name)
{
	s->base.read = fd_read;
	s->base.ready = fd_ready;
	s->base.positional = fd_positional;
	s->base.advance = fd_advance;
	s->fd = fd;
	s->name = name;
}

static enum vf_code fd_write(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
			     struct vf_error *err)
{
	struct vf_fd_sink *s = (struct vf_fd_sink *)sink;
	struct iovec local[64];
	while (iovcnt > 0) {
		int batch = iovcnt < 64 ? iovcnt : 64;
		memcpy(local, iov, (size_t)batch * sizeof(*iov));
		struct iovec *cur = local;
		int left = batch;
		while (left > 0) {
			ssize_t n = writev(s->fd, cur, left);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return vf_fail_errno(err, errno, "writing %s", s->name);
			}
			size_t done = (size_t)n;
			while (left > 0 && done >= cur->iov_len) {
				done -= cur->iov_len;
				cur++;
				left--;
			}
			if (left > 0) {
				cur->iov_base = (uint8_t *)cur->iov_base + done;
				cur->iov_len -= done;
			}
		}
		iov += batch;
		iovcnt -= batch;
	}
	return VF_OK;
}

static enum vf_code no_finish(struct vf_sink *sink, struct vf_error *err)
{
	(void)sink;
	(void)err;
	return VF_OK;
}

void vf_fd_sink_init(struct vf_fd_sink *s, int fd, const char *name)
{
	s->base.write = fd_write;
	s->base.finish = no_finish;
	s->fd = fd;
	s->name = name;
}

static enum vf_code buf_reserve(struct vf_buf *b, size_t extra, struct vf_error *err)
{
	if (b->cap - b->len >= extra)
		return VF_OK;
	if (extra > SIZE_MAX / 2 - b->len)
		return vf_fail(err, VF_E_NOMEM, "buffer too large");
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	/* Not realloc: the old block may hold secrets and must be wiped. */
	uint8_t *p = malloc(cap);
	if (!p)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (b->len)
		memcpy(p, b->data, b->len);
	if (b->data) {
		vf_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return VF_OK;
}

enum vf_code vf_buf_append(struct vf_buf *b, const void *p, size_t len, struct vf_error *err)
{
	enum vf_code rc = buf_reserve(b, len + 1, err);
	if (rc != VF_OK)
		return rc;
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = 0; /* always terminated, for text users */
	return VF_OK;
}

enum vf_code vf_buf_append_str(struct vf_buf *b, const char *s, struct vf_error *err)
{
	return vf_buf_append(b, s, strlen(s), err);
}

static enum vf_code buf_sink_write(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
				   struct vf_error *err)
{
	struct vf_buf *b = (struct vf_buf *)sink;
	for (int i = 0; i < iovcnt; i++) {
		enum vf_code rc = vf_buf_append(b, iov[i].iov_base, iov[i].iov_len, err);
		if (rc != VF_OK)
			return rc;
	}
	return VF_OK;
}

void vf_buf_init(struct vf_buf *b)
{
	memset(b, 0, sizeof(*b));
	b->sink.write = buf_sink_write;
	b->sink.finish = no_finish;
}

void vf_buf_free(struct vf_buf *b)
{
	if (b->data) {
		vf_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

static ssize_t mem_read(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err)
{
	(void)err;
	struct vf_mem_src *s = (struct vf_mem_src *)src;
	size_t n = s->len - s->pos < len ? s->len - s->pos : len;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	memcpy(buf, s->data + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

static bool always_ready(struct vf_src *src)
{
	(void)src;
	return true;
}

void vf_mem_src_init(struct vf_mem_src *s, const uint8_t *data, size_t len)
{
	s->base.read = mem_read;
	s->base.ready = always_ready;
	s->base.positional = NULL;
	s->base.advance = NULL;
	s->data = data;
	s->len = len;
	s->pos = 0;
}

static ssize_t br_read(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err)
{
	struct vf_bufreader *br = (struct vf_bufreader *)src;
	size_t have = br->end - br->start;
	if (have) {
		size_t n = have < len ? have : len;
		memcpy(buf, br->buf + br->start, n);
		br->start += n;
		return (ssize_t)n;
	}
	if (br->eof)
		return 0;
	/* Large reads bypass the buffer: the payload streams straight through. */
	if (len >= br->cap)
		return br->inner->read(br->inner, buf, len, err);
	br->start = br->end = 0;
	ssize_t n = br->inner->read(br->inner, br->buf, br->cap, err);
	if (n <= 0) {
		br->eof = n == 0;
		return n;
	}
	br->end = (size_t)n;
	return br_read(src, buf, len, err);
}

static bool br_ready(struct vf_src *src)
{
	struct vf_bufreader *br = (struct vf_bufreader *)src;
	return br->end > br->start || br->eof || br->inner->ready(br->inner);
}

/* The bytes still buffered came from the file just before the inner
 * source's position: out of order, they are read again from the file. */
static bool br_positional(struct vf_src *src, struct vf_src_at *at)
{
	struct vf_bufreader *br = (struct vf_bufreader *)src;
	size_t held = br->end - br->start;
	if (!br->inner->positional || !br->inner->positional(br->inner, at) ||
	    at->start < (off_t)held)
		return false;
	at->start -= (off_t)held;
	at->len += held;
	return true;
}

static enum vf_code br_advance(struct vf_src *src, uint64_t n, struct vf_error *err)
{
	struct vf_bufreader *br = (struct vf_bufreader *)src;
	size_t held = br->end - br->start;
	size_t take = n < held ? (size_t)n : held;
	br->start += take;
	return n > take ? br->inner->advance(br->inner, n - take, err) : VF_OK;
}

enum vf_code vf_bufreader_init(struct vf_bufreader *br, struct vf_src *inner, size_t cap,
			       struct vf_error *err)
{
	memset(br, 0, sizeof(*br));
	br->base.read = br_read;
	br->base.ready = br_ready;
	br->base.positional = br_positional;
	br->base.advance = br_advance;
	br->inner = inner;
	br->buf = malloc(cap);
	if (!br->buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	br->cap = cap;
	return VF_OK;
}

void vf_bufreader_free(struct vf_bufreader *br)
{
	if (br->buf) {
		vf_wipe(br->buf, br->cap);
		free(br->buf);
	}
	br->buf = NULL;
}

enum vf_code vf_bufreader_peek(struct vf_bufreader *br, size_t n, const uint8_t **p,
			       size_t *avail, struct vf_error *err)
{
	if (n > br->cap)
		n = br->cap;
	if (br->end - br->start < n && br->start > 0) {
		memmove(br->buf, br->buf + br->start, br->end - br->start);
		br->end -= br->start;
		br->start = 0;
	}
	while (br->end - br->start < n && !br->eof) {
		ssize_t got = br->inner->read(br->inner, br->buf + br->end, br->cap - br->end, err);
		if (got < 0)
			return err ? err->code : VF_E_IO;
		if (got == 0)
			br->eof = true;
		br->end += (size_t)got;
	}
	*p = br->buf + br->start;
	*avail = br->end - br->start;
	return VF_OK;
}

void vf_bufreader_consume(struct vf_bufreader *br, size_t n)
{
	br->start += n;
}

enum vf_code vf_bufreader_line(struct vf_bufreader *br, const uint8_t **line, size_t *len,
			       bool *too_long, struct vf_error *err)
{
	size_t scanned = 0;
	*too_long = false;
	for (;;) {
		const uint8_t *p;
		size_t avail;
		enum vf_code rc = vf_bufreader_peek(br, scanned + 1, &p, &avail, err);
		if (rc != VF_OK)
			return rc;
		const uint8_t *nl = avail > scanned ? memchr(p + scanned, '\n', avail - scanned) : NULL;
		if (nl || avail == scanned || avail == br->cap) {
			size_t n = nl ? (size_t)(nl - p) + 1 : avail;
			if (!nl && avail == br->cap) {
				*too_long = true;
				n = 0;
			}
			*line = p;
			*len = n;
			br->start += n;
			return VF_OK;
		}
		scanned = avail;
	}
}
