/* The tests' JSON reader (json_tree.h). */
#include "json_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *p, *end;
	int depth;
	const char *err; /* first error; p is left where it happened */
};

/* Far deeper than Wycheproof nests, shallow enough to bound recursion. */
#define MAX_DEPTH 64

static struct jnode *parse_value(struct parser *ps);

void json_free(struct jnode *n)
{
	while (n) {
		struct jnode *next = n->next;
		json_free(n->child);
		free(n->key);
		free(n->str);
		free(n);
		n = next;
	}
}

static void *perror_null(struct parser *ps, const char *msg)
{
	if (!ps->err)
		ps->err = msg;
	return NULL;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the 4 hex digits of a \u escape; -1 if malformed. */
static long read_u4(struct parser *ps)
{
	if (ps->end - ps->p < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = hex_digit(*ps->p++);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Encodes cp as UTF-8 into out; returns the byte count. */
static size_t put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* \uXXXX, with a following low surrogate joined to a high one. A lone
 * surrogate is kept as its own code unit: only comments could hold one. */
static size_t decode_u(struct parser *ps, char *out)
{
	long cp = read_u4(ps);
	if (cp < 0) {
		ps->err = "bad \\u escape";
		return 0;
	}
	if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
	    ps->p[1] == 'u') {
		struct parser peek = *ps;
		peek.p += 2;
		long lo = read_u4(&peek);
		if (lo >= 0xdc00 && lo < 0xe000) {
			ps->p = peek.p;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
	}
	return put_utf8(out, (unsigned long)cp);
}

/* One escape after the backslash; returns the bytes written to out. */
static size_t decode_escape(struct parser *ps, char *out)
{
	if (ps->p >= ps->end) {
		ps->err = "unterminated escape";
		return 0;
	}
	char c = *ps->p++;
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit = c ? strchr(from, c) : NULL;
	if (hit) {
		*out = to[hit - from];
		return 1;
	}
	if (c == 'u')
		return decode_u(ps, out);
	ps->err = "unknown escape";
	return 0;
}

/* The closing quote of the string body at ps->p, so the decoded copy can be
 * sized up front (decoding never lengthens a string). */
static const char *string_end(const struct parser *ps)
{
	for (const char *q = ps->p; q < ps->end; q++) {
		if (*q == '"')
			return q;
		if (*q == '\\')
			q++;
	}
	return NULL;
}

/* Parses a string starting at the opening quote into a fresh buffer. */
static char *parse_string(struct parser *ps, size_t *len)
{
	ps->p++; /* the opening quote, checked by the caller */
	const char *close = string_end(ps);
	if (!close)
		return perror_null(ps, "unterminated string");
	char *out = malloc((size_t)(close - ps->p) + 1);
	if (!out)
		return perror_null(ps, "out of memory");
	size_t n = 0;
	while (ps->p < close && !ps->err) {
		unsigned char c = (unsigned char)*ps->p++;
		if (c == '\\')
			n += decode_escape(ps, out + n);
		else if (c < 0x20)
			ps->err = "control character in string";
		else
			out[n++] = (char)c;
	}
	if (ps->err) {
		free(out);
		return NULL;
	}
	ps->p = close + 1;
	out[n] = '\0';
	*len = n;
	return out;
}

static const char *skip_digits(const char *p, const char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* Checks the RFC 8259 number grammar itself: strtod alone would also take
 * "inf", hex and a leading '+'. Returns the end of the number or NULL. */
static const char *number_end(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	const char *digits = p;
	p = skip_digits(p, end);
	if (p == digits || (*digits == '0' && p - digits > 1))
		return NULL;
	if (p < end && *p == '.') {
		const char *frac = ++p;
		p = skip_digits(p, end);
		if (p == frac)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		const char *exp = p;
		p = skip_digits(p, end);
		if (p == exp)
			return NULL;
	}
	return p;
}

static bool parse_number(struct parser *ps, struct jnode *n)
{
	const char *end = number_end(ps->p, ps->end);
	char buf[64];
	size_t len = end ? (size_t)(end - ps->p) : 0;
	if (!end || len >= sizeof(buf)) {
		ps->err = "bad number";
		return false;
	}
	memcpy(buf, ps->p, len); /* a private copy: the input is not NUL-ended */
	buf[len] = '\0';
	n->num = strtod(buf, NULL);
	ps->p = end;
	return true;
}

static bool parse_literal(struct parser *ps, struct jnode *n)
{
	static const struct {
		const char *word;
		enum jtype type;
		bool value;
	} lits[] = {{"true", J_BOOL, true}, {"false", J_BOOL, false}, {"null", J_NULL, false}};
	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t len = strlen(lits[i].word);
		if ((size_t)(ps->end - ps->p) >= len && memcmp(ps->p, lits[i].word, len) == 0) {
			n->type = lits[i].type;
			n->boolean = lits[i].value;
			ps->p += len;
			return true;
		}
	}
	ps->err = "unexpected character";
	return false;
}

/* Expects c (after whitespace) and consumes it. */
static bool expect(struct parser *ps, char c, const char *err)
{
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return true;
	}
	if (!ps->err)
		ps->err = err;
	return false;
}

/* True (and consumes it) if the next non-space character is c. */
static bool accept(struct parser *ps, char c)
{
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return true;
	}
	return false;
}

/* One object member: "key": value. */
static struct jnode *parse_member(struct parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != '"')
		return perror_null(ps, "expected member name");
	size_t key_len;
	char *key = parse_string(ps, &key_len);
	if (!key)
		return NULL;
	struct jnode *v = expect(ps, ':', "expected ':'") ? parse_value(ps) : NULL;
	if (!v) {
		free(key);
		return NULL;
	}
	v->key = key;
	return v;
}

/* The elements of an array or members of an object, after the opening
 * bracket, up to and including the closing one. */
static bool parse_items(struct parser *ps, struct jnode *parent, char close, bool members)
{
	struct jnode **tail = &parent->child;
	if (accept(ps, close))
		return true;
	do {
		struct jnode *item = members ? parse_member(ps) : parse_value(ps);
		if (!item)
			return false;
		*tail = item;
		tail = &item->next;
	} while (accept(ps, ','));
	return expect(ps, close, members ? "expected ',' or '}'" : "expected ',' or ']'");
}

static bool parse_into(struct parser *ps, struct jnode *n)
{
	char c = *ps->p;
	if (c == '{' || c == '[') {
		if (++ps->depth > MAX_DEPTH) {
			ps->err = "nested too deeply";
			return false;
		}
		ps->p++;
		n->type = c == '{' ? J_OBJECT : J_ARRAY;
		bool ok = parse_items(ps, n, c == '{' ? '}' : ']', c == '{');
		ps->depth--;
		return ok;
	}
	if (c == '"') {
		n->type = J_STRING;
		n->str = parse_string(ps, &n->len);
		return n->str != NULL;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		n->type = J_NUMBER;
		return parse_number(ps, n);
	}
	return parse_literal(ps, n);
}

static struct jnode *parse_value(struct parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return perror_null(ps, "unexpected end of input");
	struct jnode *n = calloc(1, sizeof(*n));
	if (!n)
		return perror_null(ps, "out of memory");
	if (!parse_into(ps, n)) {
		json_free(n);
		return NULL;
	}
	return n;
}

/* Parses a whole document; on error prints where and returns NULL. */
struct jnode *json_parse(const char *text, size_t len, const char *path)
{
	struct parser ps = {text, text + len, 0, NULL};
	struct jnode *root = parse_value(&ps);
	skip_ws(&ps);
	if (root && ps.p != ps.end)
		ps.err = "trailing data";
	if (ps.err) {
		unsigned line = 1;
		for (const char *q = text; q < ps.p; q++)
			line += *q == '\n';
		fprintf(stderr, "%s:%u: JSON error: %s\n", path, line, ps.err);
		json_free(root);
		return NULL;
	}
	return root;
}

/* The member named key of an object, if it has the wanted type. */
const struct jnode *jget(const struct jnode *obj, const char *key, enum jtype type)
{
	if (!obj || obj->type != J_OBJECT)
		return NULL;
	for (const struct jnode *m = obj->child; m; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m->type == type ? m : NULL;
	return NULL;
}

/* An integer member in [0, max]; false if absent, fractional or out of range. */
bool jget_uint(const struct jnode *obj, const char *key, long max, long *out)
{
	const struct jnode *n = jget(obj, key, J_NUMBER);
	if (!n || !(n->num >= 0 && n->num <= (double)max) || n->num != (double)(long)n->num)
		return false;
	*out = (long)n->num;
	return true;
}

char *read_whole_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		char *bigger = realloc(buf, cap *= 2);
		if (!bigger)
			free(buf);
		buf = bigger;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}
