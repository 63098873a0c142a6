#include "age/header.h"

#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "base/secmem.h"
#include "age/header_internal.h"

#define BYTES_PER_LINE 48
#define COLUMNS 64
/* Bounds that no honest header approaches; they keep hostile input from
 * growing memory without limit. */
#define MAX_STANZAS 4096
#define MAX_HEADER_BYTES (1u << 20)

static char *dup_str(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void vf_stanza_free(struct vf_stanza *s)
{
	if (!s)
		return;
	free(s->type);
	for (size_t i = 0; i < s->nargs; i++)
		free(s->args[i]);
	free(s->args);
	if (s->body) {
		vf_wipe(s->body, s->body_len);
		free(s->body);
	}
	memset(s, 0, sizeof(*s));
}

enum vf_code vf_stanza_init(struct vf_stanza *s, const char *type, const char *const *args,
			    size_t nargs, const uint8_t *body, size_t body_len,
			    struct vf_error *err)
{
	memset(s, 0, sizeof(*s));
	s->type = dup_str(type, strlen(type));
	s->args = calloc(nargs ? nargs : 1, sizeof(char *));
	s->body = malloc(body_len ? body_len : 1);
	if (!s->type || !s->args || !s->body)
		goto nomem;
	for (; s->nargs < nargs; s->nargs++)
		if (!(s->args[s->nargs] = dup_str(args[s->nargs], strlen(args[s->nargs]))))
			goto nomem;
	if (body_len)
		memcpy(s->body, body, body_len);
	s->body_len = body_len;
	return VF_OK;
nomem:
	vf_stanza_free(s);
	return vf_fail(err, VF_E_NOMEM, "out of memory");
}

enum vf_code vf_header_add(struct vf_header *h, struct vf_stanza *s, struct vf_error *err)
{
	if (h->n >= MAX_STANZAS)
		return vf_fail(err, VF_E_HEADER, "too many recipient stanzas");
	struct vf_stanza *grown = realloc(h->stanzas, (h->n + 1) * sizeof(*grown));
	if (!grown)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	h->stanzas = grown;
	h->stanzas[h->n++] = *s;
	memset(s, 0, sizeof(*s));
	return VF_OK;
}

enum vf_code vf_stanza_wrapped_key(const struct vf_stanza *s, struct vf_error *err)
{
	if (s->body_len != VF_FILE_KEY_LEN + VF_AEAD_TAG_LEN)
		return vf_fail(err, VF_E_HEADER, "%s stanza body is not a wrapped 16-byte key",
			       s->type);
	return VF_OK;
}

void vf_header_free(struct vf_header *h)
{
	for (size_t i = 0; i < h->n; i++)
		vf_stanza_free(&h->stanzas[i]);
	free(h->stanzas);
	free(h->macced);
	memset(h, 0, sizeof(*h));
}

static bool valid_arg(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return false;
	return true;
}

/* Parsing state: the raw bytes read so far are kept for the MAC. */
struct parser {
	struct vf_bufreader *br;
	struct vf_buf raw;
	struct vf_error *err;
};

/* Reads one LF-terminated line; *len excludes the LF. */
static enum vf_code read_line(struct parser *p, const char **line, size_t *len, const char *what)
{
	const uint8_t *l;
	size_t n;
	bool too_long;
	enum vf_code rc = vf_bufreader_line(p->br, &l, &n, &too_long, p->err);
	if (rc != VF_OK)
		return rc;
	if (too_long)
		return vf_fail(p->err, VF_E_HEADER, "header line too long in %s", what);
	if (n == 0 || l[n - 1] != '\n')
		return vf_fail(p->err, VF_E_HEADER, "header ends early, in %s", what);
	if (p->raw.len + n > MAX_HEADER_BYTES)
		return vf_fail(p->err, VF_E_HEADER, "header larger than 1 MiB");
	rc = vf_buf_append(&p->raw, l, n, p->err);
	*line = (const char *)p->raw.data + p->raw.len - n;
	*len = n - 1;
	return rc;
}

/* Splits "->" line content into type and args. */
static enum vf_code parse_stanza_line(struct parser *p, const char *line, size_t len,
				      struct vf_stanza *s)
{
	const char *fields[512];
	size_t lens[512], nf = 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (nf == 512)
			return vf_fail(p->err, VF_E_HEADER, "too many stanza arguments");
		fields[nf] = line + start;
		lens[nf++] = i - start;
		start = i + 1;
	}
	if (lens[0] != 2 || memcmp(fields[0], "->", 2) != 0)
		return vf_fail(p->err, VF_E_HEADER, "malformed stanza line");
	if (nf < 2)
		return vf_fail(p->err, VF_E_HEADER, "stanza without a type");
	for (size_t i = 1; i < nf; i++)
		if (!valid_arg(fields[i], lens[i]))
			return vf_fail(p->err, VF_E_HEADER, "malformed stanza argument");
	s->type = dup_str(fields[1], lens[1]);
	s->args = calloc(nf, sizeof(char *));
	if (!s->type || !s->args)
		return vf_fail(p->err, VF_E_NOMEM, "out of memory");
	for (size_t i = 2; i < nf; i++, s->nargs++)
		if (!(s->args[s->nargs] = dup_str(fields[i], lens[i])))
			return vf_fail(p->err, VF_E_NOMEM, "out of memory");
	return VF_OK;
}

static enum vf_code parse_body(struct parser *p, struct vf_stanza *s)
{
	struct vf_buf body;
	vf_buf_init(&body);
	enum vf_code rc;
	for (;;) {
		const char *line;
		size_t len, n;
		uint8_t chunk[BYTES_PER_LINE + 3];
		rc = read_line(p, &line, &len, "a stanza body");
		if (rc != VF_OK)
			break;
		if (len > COLUMNS || !vf_b64_decode(line, len, chunk, sizeof(chunk), &n, false)) {
			bool next = (len >= 2 && memcmp(line, "->", 2) == 0) ||
				    (len >= 3 && memcmp(line, "---", 3) == 0);
			rc = vf_fail(p->err, VF_E_HEADER,
				     next ? "stanza body ended without a short line"
					  : "malformed stanza body line");
			break;
		}
		rc = vf_buf_append(&body, chunk, n, p->err);
		vf_wipe(chunk, sizeof(chunk));
		if (rc != VF_OK || n < BYTES_PER_LINE)
			break;
	}
	if (rc == VF_OK) {
		s->body = body.len ? body.data : malloc(1);
		s->body_len = body.len;
		if (!s->body)
			rc = vf_fail(p->err, VF_E_NOMEM, "out of memory");
		if (body.len)
			return rc;
	}
	vf_buf_free(&body);
	return rc;
}

static enum vf_code parse_mac_line(struct parser *p, struct vf_header *h, const char *line,
				   size_t len)
{
	size_t n;
	/* Exactly "--- " and 43 characters: one space, no trailing space. */
	if (len < 4 || memcmp(line, "--- ", 4) != 0 || memchr(line + 4, ' ', len - 4) ||
	    !vf_b64_decode(line + 4, len - 4, h->mac, sizeof(h->mac), &n, false) ||
	    n != VF_MAC_LEN)
		return vf_fail(p->err, VF_E_HEADER, "malformed header MAC line");
	return VF_OK;
}

enum vf_code vf_header_parse(struct vf_header *h, struct vf_bufreader *br, struct vf_error *err)
{
	struct parser p = {.br = br, .err = err};
	vf_buf_init(&p.raw);
	memset(h, 0, sizeof(*h));
	const char *line;
	size_t len;
	enum vf_code rc = read_line(&p, &line, &len, "the first line");
	if (rc == VF_OK && (len != strlen(VF_INTRO) || memcmp(line, VF_INTRO, len) != 0))
		rc = vf_fail(err, VF_E_HEADER, "not an age file (first line is not " VF_INTRO ")");
	while (rc == VF_OK) {
		const uint8_t *peek;
		size_t avail;
		rc = vf_bufreader_peek(br, 3, &peek, &avail, err);
		if (rc != VF_OK)
			break;
		if (avail >= 3 && memcmp(peek, "---", 3) == 0) {
			rc = read_line(&p, &line, &len, "the MAC line");
			if (rc == VF_OK)
				rc = parse_mac_line(&p, h, line, len);
			if (rc == VF_OK) {
				/* The MAC covers everything up to "---". */
				h->macced_len = p.raw.len - len - 1 + 3;
				h->macced = p.raw.data;
				p.raw.data = NULL;
			}
			break;
		}
		struct vf_stanza s = {0};
		rc = read_line(&p, &line, &len, "a stanza");
		if (rc == VF_OK)
			rc = parse_stanza_line(&p, line, len, &s);
		if (rc == VF_OK)
			rc = parse_body(&p, &s);
		if (rc == VF_OK)
			rc = vf_header_add(h, &s, err);
		vf_stanza_free(&s);
	}
	if (rc == VF_OK && h->n == 0)
		rc = vf_fail(err, VF_E_HEADER, "header has no recipient stanzas");
	vf_buf_free(&p.raw);
	if (rc != VF_OK)
		vf_header_free(h);
	return rc;
}

static enum vf_code marshal_stanza(const struct vf_stanza *s, struct vf_buf *out,
				   struct vf_error *err)
{
	enum vf_code rc = vf_buf_append_str(out, "-> ", err);
	if (rc == VF_OK)
		rc = vf_buf_append_str(out, s->type, err);
	for (size_t i = 0; rc == VF_OK && i < s->nargs; i++) {
		rc = vf_buf_append_str(out, " ", err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(out, s->args[i], err);
	}
	if (rc == VF_OK)
		rc = vf_buf_append_str(out, "\n", err);
	/* Full 64-column lines, then always one short (possibly empty) line. */
	for (size_t off = 0; rc == VF_OK; off += BYTES_PER_LINE) {
		size_t n = s->body_len - off < BYTES_PER_LINE ? s->body_len - off : BYTES_PER_LINE;
		char line[COLUMNS + 1];
		size_t len = vf_b64_encode(s->body + off, n, line, false);
		line[len++] = '\n';
		rc = vf_buf_append(out, line, len, err);
		if (n < BYTES_PER_LINE)
			break;
	}
	return rc;
}

enum vf_code vf_header_marshal(const struct vf_header *h, int with_mac, struct vf_buf *out,
			       struct vf_error *err)
{
	enum vf_code rc = vf_buf_append_str(out, VF_INTRO "\n", err);
	for (size_t i = 0; rc == VF_OK && i < h->n; i++)
		rc = marshal_stanza(&h->stanzas[i], out, err);
	if (rc == VF_OK)
		rc = vf_buf_append_str(out, "---", err);
	if (rc == VF_OK && with_mac) {
		char mac[44];
		size_t len = vf_b64_encode(h->mac, VF_MAC_LEN, mac, false);
		rc = vf_buf_append_str(out, " ", err);
		if (rc == VF_OK)
			rc = vf_buf_append(out, mac, len, err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(out, "\n", err);
	}
	return rc;
}

enum vf_code vf_header_mac(const uint8_t file_key[VF_FILE_KEY_LEN], const uint8_t *msg,
			   size_t len, uint8_t mac[VF_MAC_LEN], struct vf_error *err)
{
	uint8_t *key = vf_scratch_alloc(32);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hkdf_sha256(file_key, VF_FILE_KEY_LEN, NULL, 0, "header", 6, key, 32,
					 err);
	if (rc == VF_OK)
		rc = vf_hmac_sha256(key, 32, msg, len, mac, err);
	vf_scratch_free(key, 32);
	return rc;
}
