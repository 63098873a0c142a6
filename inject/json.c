/* The vm.create body: the user's VmConfig (the JSON ch-remote takes) with
 * platform.oem_strings merged in, the file's own strings first.
 *
 * The file is not decoded and re-encoded: a small JSON scanner finds the
 * members that matter and everything else is copied byte for byte, so no
 * escape, number or Unicode character of the user's config can change on
 * the way to cloud-hypervisor. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/json.h"
#include "vars/store.h"
#include "varinject.h"

struct scan {
	const char *p, *end;
	const char *why;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* c is one of the characters of set. Not strchr alone: it also finds
 * set's terminator, and a NUL byte in the file is never valid JSON. */
static bool one_of(const char *set, char c)
{
	return c != '\0' && strchr(set, c) != NULL;
}

static bool fail(struct scan *s, const char *why)
{
	if (!s->why)
		s->why = why;
	return false;
}

static bool skip_string(struct scan *s)
{
	if (s->p >= s->end || *s->p != '"')
		return fail(s, "expected a string");
	for (s->p++; s->p < s->end; s->p++) {
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return fail(s, "control character in a string");
		if (c == '\\') {
			if (++s->p >= s->end)
				break;
			if (*s->p == 'u') {
				for (int i = 0; i < 4; i++)
					if (++s->p >= s->end || !one_of("0123456789abcdefABCDEF", *s->p))
						return fail(s, "bad \\u escape");
			} else if (!one_of("\"\\/bfnrt", *s->p)) {
				return fail(s, "bad escape");
			}
		}
	}
	return fail(s, "unterminated string");
}

static bool skip_value(struct scan *s, int depth);

static bool skip_container(struct scan *s, char close, bool object, int depth)
{
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return true;
	}
	for (;;) {
		if (object) {
			if (!skip_string(s))
				return false;
			ws(s);
			if (s->p >= s->end || *s->p++ != ':')
				return fail(s, "expected ':'");
		}
		if (!skip_value(s, depth + 1))
			return false;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return true;
		}
		return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

/* The literal word at s->p, which must not run on into more letters. */
static bool literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	if (s->p + n < s->end && isalnum((unsigned char)s->p[n]))
		return false;
	s->p += n;
	return true;
}

static size_t digits(struct scan *s)
{
	size_t n = 0;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		s->p++;
		n++;
	}
	return n;
}

/* A number exactly as JSON (RFC 8259, section 6) writes one:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. strtod would also take
 * nan, inf, hex, a leading '+' or '0' and a bare '.', which the
 * hypervisor's parser then refuses with an error of its own. */
static bool skip_number(struct scan *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return fail(s, "unexpected end");
	if (*s->p == '0')
		s->p++;
	else if (!digits(s))
		return fail(s, "unexpected character");
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!digits(s))
			return fail(s, "bad number");
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!digits(s))
			return fail(s, "bad number");
	}
	/* What follows a number is a separator, never more of it. */
	if (s->p < s->end && (isalnum((unsigned char)*s->p) || *s->p == '.' || *s->p == '+' ||
			      *s->p == '-'))
		return fail(s, "bad number");
	return true;
}

static bool skip_value(struct scan *s, int depth)
{
	ws(s);
	if (depth > 64)
		return fail(s, "nested too deep");
	if (s->p >= s->end)
		return fail(s, "unexpected end");
	switch (*s->p) {
	case '"': return skip_string(s);
	case '{': return skip_container(s, '}', true, depth);
	case '[': return skip_container(s, ']', false, depth);
	default: break;
	}
	if (literal(s, "true") || literal(s, "false") || literal(s, "null"))
		return true;
	return skip_number(s);
}

/* One member of an object: the raw key token and value span. */
struct member {
	const char *key, *value;
	size_t key_len, value_len;
};

/* Splits the object at s->p into members (at most max). */
static bool members(struct scan *s, struct member *out, size_t max, size_t *n)
{
	*n = 0;
	ws(s);
	if (s->p >= s->end || *s->p != '{')
		return fail(s, "expected an object");
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return true;
	}
	for (;;) {
		if (*n == max)
			return fail(s, "too many members");
		struct member *m = &out[(*n)++];
		m->key = s->p;
		if (!skip_string(s))
			return false;
		m->key_len = (size_t)(s->p - m->key);
		ws(s);
		if (s->p >= s->end || *s->p++ != ':')
			return fail(s, "expected ':'");
		ws(s);
		m->value = s->p;
		if (!skip_value(s, 1))
			return false;
		m->value_len = (size_t)(s->p - m->value);
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return true;
		}
		return fail(s, "expected ',' or '}'");
	}
}

static bool key_is(const struct member *m, const char *name)
{
	size_t n = strlen(name);
	return m->key_len == n + 2 && !memcmp(m->key + 1, name, n);
}

/* The body and its --dry-run twin, written side by side. */
struct out {
	struct vf_buf real, shown;
	bool ok;
};

static void put_both(struct out *o, const char *s, size_t n)
{
	o->ok &= vf_buf_append(&o->real, s, n, NULL) == VF_OK;
	o->ok &= vf_buf_append(&o->shown, s, n, NULL) == VF_OK;
}

static void put(struct out *o, const char *s)
{
	put_both(o, s, strlen(s));
}

/* A value is copied unchanged or the body is not made: bytes that are not
 * UTF-8 are refused, not replaced (vf_oem_text_safe checked them already). */
static void json_string(struct vf_buf *b, const uint8_t *s, size_t n, bool *ok)
{
	*ok &= vf_json_string(b, s, n, VF_JSON_REFUSE, NULL) == VF_OK;
}

/* "oem_strings": [existing..., ours...] */
static void put_oem_strings(struct out *o, const struct member *existing,
			    const struct vf_value *strings, char *const *shown, size_t n,
			    struct scan *s)
{
	put(o, "\"oem_strings\":[");
	bool first = true;
	if (existing) {
		struct scan inner = {existing->value, existing->value + existing->value_len, NULL};
		ws(&inner);
		if (inner.p >= inner.end || *inner.p != '[') {
			o->ok = fail(s, "platform.oem_strings must be a list");
			return;
		}
		inner.p++;
		ws(&inner);
		while (inner.p < inner.end && *inner.p != ']') {
			const char *item = inner.p;
			skip_value(&inner, 2);
			if (!first)
				put(o, ",");
			put_both(o, item, (size_t)(inner.p - item));
			first = false;
			ws(&inner);
			if (inner.p < inner.end && *inner.p == ',')
				inner.p++;
			ws(&inner);
		}
	}
	for (size_t i = 0; i < n; i++, first = false) {
		if (!first)
			put(o, ",");
		json_string(&o->real, strings[i].data, strings[i].len, &o->ok);
		json_string(&o->shown, (const uint8_t *)shown[i], strlen(shown[i]), &o->ok);
	}
	put(o, "]");
}

#define MAX_MEMBERS 256

static void merge(struct out *o, struct scan *s, const struct vf_value *strings,
		  char *const *shown, size_t n)
{
	struct member top[MAX_MEMBERS], plat[MAX_MEMBERS];
	size_t n_top = 0, n_plat = 0;
	const struct member *platform = NULL, *existing = NULL;
	if (!members(s, top, MAX_MEMBERS, &n_top)) {
		o->ok = false;
		return;
	}
	ws(s);
	if (s->p != s->end) {
		o->ok = fail(s, "trailing data after the object");
		return;
	}
	for (size_t i = 0; i < n_top; i++)
		if (key_is(&top[i], "platform"))
			platform = &top[i];
	if (platform) {
		struct scan ps = {platform->value, platform->value + platform->value_len, NULL};
		if (!members(&ps, plat, MAX_MEMBERS, &n_plat)) {
			o->ok = fail(s, "\"platform\" must be an object");
			return;
		}
		for (size_t i = 0; i < n_plat; i++)
			if (key_is(&plat[i], "oem_strings"))
				existing = &plat[i];
	}
	put(o, "{");
	bool first = true;
	for (size_t i = 0; i < n_top; i++) {
		if (&top[i] == platform)
			continue;
		if (!first)
			put(o, ",");
		put_both(o, top[i].key, top[i].key_len);
		put(o, ":");
		put_both(o, top[i].value, top[i].value_len);
		first = false;
	}
	put(o, first ? "\"platform\":{" : ",\"platform\":{");
	for (size_t i = 0; i < n_plat; i++) {
		if (&plat[i] == existing)
			continue;
		put_both(o, plat[i].key, plat[i].key_len);
		put(o, ":");
		put_both(o, plat[i].value, plat[i].value_len);
		put(o, ",");
	}
	put_oem_strings(o, existing, strings, shown, n, s);
	put(o, "}}");
}

int vi_vm_config_read(const char *path, uint8_t **text, size_t *len)
{
	/* The user named this file: a symlink is followed (unlike inside the
	 * store), but what it names must be a regular file of bounded size. */
	static const struct vf_read_opts opts = {.max = VF_STORE_MAX_FILE, .follow = VF_FOLLOW};
	struct vf_error err;
	struct vf_file f;
	if (vf_read_file(AT_FDCWD, path, &opts, &f, &err) == VF_OK) {
		*text = f.data;
		*len = f.len;
		return 0;
	}
	if (f.fail == VF_READ_OPEN && f.errnum == ENOENT)
		return vi_error("--vm-config %s: no such file", path);
	if (f.fail == VF_READ_TYPE)
		return vi_error("--vm-config %s: not a regular file; refusing to read it", path);
	if (f.fail == VF_READ_SIZE)
		return vi_error("--vm-config %s: larger than %u MiB; refusing to read it", path,
				VF_STORE_MAX_FILE >> 20);
	return vi_error("--vm-config %s", err.msg);
}

int vi_vm_config(const char *path, const uint8_t *text, size_t len, const struct vf_value *strings,
		 char *const *shown, size_t n, struct vf_value *body, char **shown_body)
{
	struct vf_error err;
	struct scan s = {(const char *)text, (const char *)text + len, NULL};
	struct out o = {.ok = true};
	vf_buf_init(&o.real);
	vf_buf_init(&o.shown);
	merge(&o, &s, strings, shown, n);
	int status = 0;
	if (!o.ok || s.why)
		status = vi_error("%s: not a VmConfig JSON object: %s at byte %zu", path,
				  s.why ? s.why : "cannot rewrite it",
				  (size_t)(s.p - (const char *)text));
	else if (vf_value_set(body, o.real.data, o.real.len, &err) != VF_OK)
		status = vi_fail(&err);
	else if (!(*shown_body = strdup((char *)o.shown.data)))
		status = vi_error("out of memory");
	vf_buf_free(&o.real);
	vf_buf_free(&o.shown);
	return status;
}
