#include "age/armor.h"

#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/secmem.h"

#define COLUMNS 64
#define BYTES_PER_LINE 48
#define MAX_WHITESPACE 1024

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool all_space(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space(p[i]))
			return false;
	return true;
}

static ssize_t armor_fail(struct vf_armor_reader *r, struct vf_error *err, const char *why)
{
	r->failed = true;
	vf_fail(&r->pending, VF_E_ARMOR, "invalid armor: %s", why);
	if (err)
		*err = r->pending;
	return -1;
}

/* Next line without its LF or CRLF. *eof when input has ended. */
static enum vf_code next_line(struct vf_armor_reader *r, const uint8_t **line, size_t *len,
			      bool *eof, bool *too_long, struct vf_error *err)
{
	enum vf_code rc = vf_bufreader_line(r->in, line, len, too_long, err);
	if (rc != VF_OK)
		return rc;
	*eof = *len == 0 && !*too_long;
	if (*len && (*line)[*len - 1] == '\n')
		(*len)--;
	if (*len && (*line)[*len - 1] == '\r')
		(*len)--;
	return VF_OK;
}

static bool line_is(const uint8_t *line, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(line, want, len) == 0;
}

/* After the END line only whitespace may follow, and not too much of it. */
static ssize_t drain_trailing(struct vf_armor_reader *r, struct vf_error *err)
{
	const uint8_t *p;
	size_t avail;
	struct vf_error io;
	if (vf_bufreader_peek(r->in, MAX_WHITESPACE, &p, &avail, &io) != VF_OK) {
		r->failed = true;
		r->pending = io;
		if (err)
			*err = io;
		return -1;
	}
	if (!all_space(p, avail))
		return armor_fail(r, err, "trailing data after the END line");
	if (avail >= MAX_WHITESPACE)
		return armor_fail(r, err, "too much trailing whitespace");
	vf_bufreader_consume(r->in, avail);
	r->finished = true;
	return 0;
}

static ssize_t read_start(struct vf_armor_reader *r, struct vf_error *err)
{
	size_t skipped = 0;
	while (!r->started) {
		const uint8_t *line;
		size_t len;
		bool eof, too_long;
		if (next_line(r, &line, &len, &eof, &too_long, err) != VF_OK)
			return -1;
		if (eof)
			return armor_fail(r, err, "no BEGIN line");
		if (too_long)
			return armor_fail(r, err, "line too long before the BEGIN line");
		if (all_space(line, len)) {
			skipped += len + 1;
			if (skipped > MAX_WHITESPACE)
				return armor_fail(r, err, "too much leading whitespace");
			continue;
		}
		if (!line_is(line, len, VF_ARMOR_BEGIN))
			return armor_fail(r, err, "first line is not " VF_ARMOR_BEGIN);
		r->started = true;
	}
	return 1;
}

/* Decodes one line into r->line; 0 at the END line. */
static ssize_t read_data_line(struct vf_armor_reader *r, struct vf_error *err)
{
	const uint8_t *line;
	size_t len;
	bool eof, too_long;
	if (next_line(r, &line, &len, &eof, &too_long, err) != VF_OK)
		return -1;
	if (eof)
		return armor_fail(r, err, "missing END line");
	if (too_long || len > COLUMNS)
		return armor_fail(r, err, "line longer than 64 columns");
	if (line_is(line, len, VF_ARMOR_END))
		return drain_trailing(r, err);
	/* An empty line would decode to nothing and read as the end. */
	if (len == 0)
		return armor_fail(r, err, "empty line inside the armor");
	size_t n;
	if (!vf_b64_decode((const char *)line, len, r->line, sizeof(r->line), &n, true))
		return armor_fail(r, err, "malformed base64 line");
	r->pos = 0;
	r->len = n;
	/* A short line is the last one: END must follow, checked on the next
	 * read so that this line's bytes are delivered first. */
	r->after_short = n < BYTES_PER_LINE;
	return (ssize_t)n;
}

static ssize_t read_end_line(struct vf_armor_reader *r, struct vf_error *err)
{
	const uint8_t *line;
	size_t len;
	bool eof, too_long;
	if (next_line(r, &line, &len, &eof, &too_long, err) != VF_OK)
		return -1;
	if (eof || too_long || !line_is(line, len, VF_ARMOR_END))
		return armor_fail(r, err, "short line not followed by the END line");
	return drain_trailing(r, err);
}

/* One step: decode the next line (or check the end). Returns bytes now
 * buffered, 0 at the end, -1 on failure (recorded in r->pending). */
static ssize_t advance(struct vf_armor_reader *r)
{
	struct vf_error e = {0};
	ssize_t n = 0;
	if (!r->started)
		n = read_start(r, &e);
	if (n >= 0)
		n = r->after_short ? read_end_line(r, &e) : read_data_line(r, &e);
	if (n < 0 && !r->failed) {
		/* An I/O error from below: remember it like an armor error. */
		r->failed = true;
		r->pending = e;
	}
	return n;
}

/* Fills as much of buf as whole lines allow, so that callers are not fed
 * 48 bytes at a time. An error after some data is reported on the next
 * call, once that data has been delivered. */
static ssize_t armor_read(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err)
{
	struct vf_armor_reader *r = (struct vf_armor_reader *)src;
	size_t total = 0;
	while (total < len) {
		if (r->pos < r->len) {
			size_t n = r->len - r->pos < len - total ? r->len - r->pos : len - total;
			memcpy(buf + total, r->line + r->pos, n);
			r->pos += n;
			total += n;
			continue;
		}
		if (r->failed || r->finished)
			break;
		/* Do not block for more once something is in hand. */
		if (total && !r->in->base.ready(&r->in->base))
			break;
		if (advance(r) <= 0)
			break;
	}
	if (total)
		return (ssize_t)total;
	if (r->failed) {
		if (err)
			*err = r->pending;
		return -1;
	}
	return 0;
}

static bool armor_ready(struct vf_src *src)
{
	struct vf_armor_reader *r = (struct vf_armor_reader *)src;
	return r->pos < r->len || r->failed || r->finished || r->in->base.ready(&r->in->base);
}

void vf_armor_reader_init(struct vf_armor_reader *r, struct vf_bufreader *in)
{
	memset(r, 0, sizeof(*r));
	r->base.read = armor_read;
	r->base.ready = armor_ready;
	r->in = in;
}

enum vf_code vf_armor_detect(struct vf_bufreader *in, bool *armored, struct vf_error *err)
{
	const size_t want = MAX_WHITESPACE + sizeof(VF_ARMOR_BEGIN);
	const uint8_t *p;
	size_t avail;
	enum vf_code rc = vf_bufreader_peek(in, want, &p, &avail, err);
	if (rc != VF_OK)
		return rc;
	size_t i = 0;
	while (i < avail && is_space(p[i]))
		i++;
	*armored = avail - i >= 10 && memcmp(p + i, "-----BEGIN", 10) == 0;
	return VF_OK;
}

static enum vf_code flush_text(struct vf_armor_writer *w, struct vf_error *err)
{
	enum vf_code rc = vf_sink_write(w->out, w->text, w->text_len, err);
	w->text_len = 0;
	return rc;
}

static enum vf_code emit(struct vf_armor_writer *w, const char *s, size_t n, struct vf_error *err)
{
	if (w->text_cap - w->text_len < n) {
		enum vf_code rc = flush_text(w, err);
		if (rc != VF_OK)
			return rc;
	}
	memcpy(w->text + w->text_len, s, n);
	w->text_len += n;
	return VF_OK;
}

static enum vf_code emit_line(struct vf_armor_writer *w, const uint8_t *data, size_t n,
			      struct vf_error *err)
{
	char line[COLUMNS + 1];
	size_t len = vf_b64_encode(data, n, line, true);
	line[len++] = '\n';
	return emit(w, line, len, err);
}

static enum vf_code start(struct vf_armor_writer *w, struct vf_error *err)
{
	if (w->started)
		return VF_OK;
	w->started = true;
	return emit(w, VF_ARMOR_BEGIN "\n", sizeof(VF_ARMOR_BEGIN), err);
}

static enum vf_code armor_write(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
				struct vf_error *err)
{
	struct vf_armor_writer *w = (struct vf_armor_writer *)sink;
	enum vf_code rc = start(w, err);
	for (int i = 0; rc == VF_OK && i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		w->total += n;
		while (rc == VF_OK && n) {
			if (w->pending_len == 0 && n >= BYTES_PER_LINE) {
				rc = emit_line(w, p, BYTES_PER_LINE, err);
				p += BYTES_PER_LINE;
				n -= BYTES_PER_LINE;
				continue;
			}
			size_t take = BYTES_PER_LINE - w->pending_len;
			take = take < n ? take : n;
			memcpy(w->pending + w->pending_len, p, take);
			w->pending_len += take;
			p += take;
			n -= take;
			if (w->pending_len == BYTES_PER_LINE) {
				rc = emit_line(w, w->pending, BYTES_PER_LINE, err);
				w->pending_len = 0;
			}
		}
	}
	return rc;
}

static enum vf_code armor_finish(struct vf_sink *sink, struct vf_error *err)
{
	struct vf_armor_writer *w = (struct vf_armor_writer *)sink;
	enum vf_code rc = start(w, err);
	if (rc == VF_OK && w->pending_len)
		rc = emit_line(w, w->pending, w->pending_len, err);
	w->pending_len = 0;
	if (rc == VF_OK)
		rc = emit(w, VF_ARMOR_END "\n", sizeof(VF_ARMOR_END), err);
	if (rc == VF_OK)
		rc = flush_text(w, err);
	if (rc == VF_OK)
		rc = w->out->finish(w->out, err);
	return rc;
}

enum vf_code vf_armor_writer_init(struct vf_armor_writer *w, struct vf_sink *out,
				  struct vf_error *err)
{
	memset(w, 0, sizeof(*w));
	w->base.write = armor_write;
	w->base.finish = armor_finish;
	w->out = out;
	w->text_cap = 64 * 1024;
	w->text = malloc(w->text_cap);
	if (!w->text)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	return VF_OK;
}

void vf_armor_writer_free(struct vf_armor_writer *w)
{
	free(w->text);
	w->text = NULL;
	vf_wipe(w->pending, sizeof(w->pending));
}
