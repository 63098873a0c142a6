/* SOPS JSON files (and the binary format, which is JSON) by a strict
 * RFC 8259 parser of their own, into the document tree.
 *
 * Not libyaml, although JSON is nearly YAML: libyaml refuses the \uXXXX
 * surrogate pairs JSON spells characters beyond U+FFFF with (as Python's
 * json.dumps writes them), and takes what JSON forbids (raw tabs in
 * strings, comments, unquoted text). Strings must be valid UTF-8 and a
 * lone surrogate is refused: Go's decoder would turn both into U+FFFD, and
 * a value must arrive unchanged or not at all. Numbers are floats, as Go's
 * decoder gives them to sops; one that overflows a double is refused, as
 * there. Duplicate keys are checked after the parse (node_check_unique). */
#include "sops/sops_internal.h"

#include <string.h>

#include "base/json.h"

struct jp {
	struct sops_parser *p;
	const uint8_t *s;
	size_t len, pos;
	unsigned line, column, depth;
};

static enum vf_code jfail(struct jp *j, const char *what)
{
	if (j->pos >= j->len)
		return sops_fail_at(j->p, j->line, j->column,
				    "JSON syntax error: the file ends early (expected %s)", what);
	return sops_fail_at(j->p, j->line, j->column,
			    "JSON syntax error: unexpected character (expected %s)", what);
}

/* Moves over n bytes, counting lines and characters for the places. */
static void advance(struct jp *j, size_t n)
{
	for (size_t end = j->pos + n; j->pos < end; j->pos++) {
		if (j->s[j->pos] == '\n') {
			j->line++;
			j->column = 1;
		} else if ((j->s[j->pos] & 0xc0) != 0x80) {
			j->column++;
		}
	}
}

static void skip_space(struct jp *j)
{
	while (j->pos < j->len) {
		uint8_t c = j->s[j->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		advance(j, 1);
	}
}

static bool at(const struct jp *j, char c)
{
	return j->pos < j->len && j->s[j->pos] == (uint8_t)c;
}

static int hex4(const uint8_t *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t put_utf8(uint8_t *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | (cp >> 6));
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | (cp >> 12));
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | (cp >> 18));
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* A \u escape at j->pos (the backslash): one code point, a surrogate pair
 * joined. */
static enum vf_code unicode_escape(struct jp *j, unsigned long *cp)
{
	int hi = j->len - j->pos >= 6 ? hex4(j->s + j->pos + 2) : -1;
	if (hi < 0)
		return jfail(j, "four hex digits after \\u");
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return sops_fail_at(j->p, j->line, j->column,
				    "JSON string with a lone low surrogate \\u%04x (expected a "
				    "character or a surrogate pair)", (unsigned)hi);
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = (unsigned long)hi;
		advance(j, 6);
		return VF_OK;
	}
	int lo = j->len - j->pos >= 12 && j->s[j->pos + 6] == '\\' && j->s[j->pos + 7] == 'u'
			 ? hex4(j->s + j->pos + 8) : -1;
	if (lo < 0xdc00 || lo > 0xdfff)
		return sops_fail_at(j->p, j->line, j->column,
				    "JSON string with a lone high surrogate \\u%04x (expected a "
				    "surrogate pair)", (unsigned)hi);
	*cp = 0x10000 + (((unsigned long)hi - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
	advance(j, 12);
	return VF_OK;
}

static enum vf_code escape(struct jp *j, uint8_t *out, size_t *n)
{
	if (j->pos + 1 >= j->len)
		return jfail(j, "an escape after \\");
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	uint8_t c = j->s[j->pos + 1];
	const char *k = c ? strchr(from, c) : NULL;
	if (k) {
		out[(*n)++] = (uint8_t)to[k - from];
		advance(j, 2);
		return VF_OK;
	}
	if (c != 'u')
		return jfail(j, "one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
	unsigned long cp = 0;
	enum vf_code rc = unicode_escape(j, &cp);
	if (rc == VF_OK)
		*n += put_utf8(out + *n, cp);
	return rc;
}

/* A string at the opening quote, decoded into the arena. Decoding never
 * makes it longer than its escaped form, which bounds the buffer. */
static enum vf_code string(struct jp *j, const char **text, size_t *len)
{
	size_t end = j->pos + 1;
	while (end < j->len && j->s[end] != '"')
		end += j->s[end] == '\\' ? 2 : 1;
	if (end >= j->len) {
		j->pos = j->len;
		return jfail(j, "a closing quote");
	}
	uint8_t *out = (uint8_t *)sops_alloc(j->p->mem, end - j->pos);
	if (!out)
		return sops_nomem(j->p);
	size_t n = 0;
	advance(j, 1);
	while (j->s[j->pos] != '"') {
		uint8_t c = j->s[j->pos];
		if (c == '\\') {
			enum vf_code rc = escape(j, out, &n);
			if (rc != VF_OK)
				return rc;
			continue;
		}
		if (c < 0x20)
			return sops_fail_at(j->p, j->line, j->column,
					    "JSON string with a raw control character 0x%02x "
					    "(expected it escaped)", c);
		size_t seq = vf_utf8_sequence(j->s + j->pos, j->len - j->pos);
		if (seq == 0)
			return sops_fail_at(j->p, j->line, j->column,
					    "JSON string that is not valid UTF-8 (expected UTF-8 text)");
		memcpy(out + n, j->s + j->pos, seq);
		n += seq;
		advance(j, seq);
	}
	advance(j, 1);
	out[n] = 0;
	*text = (const char *)out;
	*len = n;
	return VF_OK;
}

static size_t digits(const struct jp *j, size_t i)
{
	size_t start = i;
	while (i < j->len && j->s[i] >= '0' && j->s[i] <= '9')
		i++;
	return i - start;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static enum vf_code number(struct jp *j, struct node *n)
{
	size_t i = j->pos;
	if (i < j->len && j->s[i] == '-')
		i++;
	size_t d = digits(j, i);
	if (d == 0 || (d > 1 && j->s[i] == '0'))
		return jfail(j, "a number");
	i += d;
	if (i < j->len && j->s[i] == '.') {
		if ((d = digits(j, i + 1)) == 0)
			return jfail(j, "digits after the decimal point");
		i += 1 + d;
	}
	if (i < j->len && (j->s[i] == 'e' || j->s[i] == 'E')) {
		i++;
		if (i < j->len && (j->s[i] == '+' || j->s[i] == '-'))
			i++;
		if ((d = digits(j, i)) == 0)
			return jfail(j, "digits in the exponent");
		i += d;
	}
	if (!(n->text = sops_strndup(j->p->mem, (const char *)j->s + j->pos, i - j->pos)))
		return sops_nomem(j->p);
	n->len = i - j->pos;
	if (!go_parse_float(n->text, n->len, &n->v.f))
		return sops_fail_at(j->p, n->line, n->column,
				    "JSON number %.40s out of range (expected a 64-bit float)",
				    n->text);
	advance(j, i - j->pos);
	return VF_OK;
}

static bool word(struct jp *j, const char *w)
{
	size_t n = strlen(w);
	if (j->len - j->pos < n || memcmp(j->s + j->pos, w, n) != 0)
		return false;
	advance(j, n);
	return true;
}

static enum vf_code value(struct jp *j, struct node **out);

static enum vf_code object(struct jp *j, struct node *n)
{
	advance(j, 1);
	skip_space(j);
	if (at(j, '}')) {
		advance(j, 1);
		return VF_OK;
	}
	for (;;) {
		if (!at(j, '"'))
			return jfail(j, "a key in double quotes");
		unsigned line = j->line, column = j->column;
		const char *key;
		size_t key_len;
		enum vf_code rc = string(j, &key, &key_len);
		if (rc != VF_OK)
			return rc;
		skip_space(j);
		if (!at(j, ':'))
			return jfail(j, "':' after the key");
		advance(j, 1);
		struct node *v = NULL;
		rc = value(j, &v);
		if (rc == VF_OK)
			rc = node_map_add(j->p, n, key, key_len, line, column, v);
		if (rc != VF_OK) {
			node_free_arrays(v); /* a value cut short is in no tree yet */
			return rc;
		}
		skip_space(j);
		if (at(j, '}')) {
			advance(j, 1);
			return VF_OK;
		}
		if (!at(j, ','))
			return jfail(j, "',' or '}'");
		advance(j, 1);
		skip_space(j);
	}
}

static enum vf_code array(struct jp *j, struct node *n)
{
	advance(j, 1);
	skip_space(j);
	if (at(j, ']')) {
		advance(j, 1);
		return VF_OK;
	}
	for (;;) {
		struct node *v = NULL;
		enum vf_code rc = value(j, &v);
		if (rc == VF_OK)
			rc = node_seq_add(j->p, n, v);
		if (rc != VF_OK) {
			node_free_arrays(v);
			return rc;
		}
		skip_space(j);
		if (at(j, ']')) {
			advance(j, 1);
			return VF_OK;
		}
		if (!at(j, ','))
			return jfail(j, "',' or ']'");
		advance(j, 1);
	}
}

static enum vf_code collection(struct jp *j, struct node *n)
{
	if (j->depth == VF_SOPS_MAX_DEPTH)
		return sops_fail_at(j->p, j->line, j->column,
				    "nesting deeper than %u levels (expected at most %u nested "
				    "objects and arrays)", VF_SOPS_MAX_DEPTH, VF_SOPS_MAX_DEPTH);
	j->depth++;
	enum vf_code rc = n->kind == NODE_MAP ? object(j, n) : array(j, n);
	j->depth--;
	return rc;
}

static enum vf_code value(struct jp *j, struct node **out)
{
	skip_space(j);
	if (j->pos >= j->len)
		return jfail(j, "a value");
	uint8_t c = j->s[j->pos];
	enum node_kind kind = c == '{' ? NODE_MAP : c == '[' ? NODE_SEQ : c == '"' ? NODE_STRING
			    : c == 't' || c == 'f' ? NODE_BOOL : c == 'n' ? NODE_NULL : NODE_FLOAT;
	struct node *n = node_new(j->p, kind, j->line, j->column);
	if (!n)
		return j->p->err->code;
	*out = n;
	switch (kind) {
	case NODE_MAP:
	case NODE_SEQ: return collection(j, n);
	case NODE_STRING: return string(j, &n->text, &n->len);
	case NODE_BOOL:
		n->v.b = c == 't';
		n->text = n->v.b ? "true" : "false";
		n->len = strlen(n->text);
		return word(j, n->text) ? VF_OK : jfail(j, "a value");
	case NODE_NULL:
		n->text = "null";
		n->len = 4;
		return word(j, "null") ? VF_OK : jfail(j, "a value");
	default:
		if (c != '-' && (c < '0' || c > '9'))
			return jfail(j, "a value");
		return number(j, n);
	}
}

enum vf_code sops_parse_json(struct sops_parser *p, const uint8_t *data, size_t len,
			     struct node **root)
{
	struct jp j = {p, data, len, 0, 1, 1, 0};
	*root = NULL;
	skip_space(&j);
	if (!at(&j, '{'))
		return jfail(&j, "a JSON object (sops files are one object with a \"sops\" key)");
	enum vf_code rc = value(&j, root);
	if (rc != VF_OK)
		return rc;
	skip_space(&j);
	if (j.pos != j.len)
		return sops_fail_at(p, j.line, j.column,
				    "JSON syntax error: more after the object (expected the end "
				    "of the file)");
	return VF_OK;
}
