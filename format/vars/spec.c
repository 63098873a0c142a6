/* The vars spec: YAML read with libyaml's document API into struct
 * vf_spec, with every check spec.h lists. Errors point at the offending
 * node: "FILE:LINE:COLUMN: what is wrong (what is expected)". A first
 * pass over libyaml's events enforces the limits (nesting, anchors,
 * aliases) before the document is built; the size is checked before that.
 *
 * Sections are read in a fixed order, not document order: admins, then
 * generators (whose names are all known before any body is read, so that
 * dependencies can be checked where they are written), then machines
 * (which refer to generators and their files). */
#include "vars/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/crypto.h"
#include "age/keys.h"

/* Limits on what is handed to libyaml, whose scanner slows down with
 * every level of nesting on every token (80,000 nested flow sequences,
 * 160 KB, took over 10 s): varinject loads the spec as root on VM hosts.
 * Real specs are a few KB deep in 5 levels. */
#define MAX_SPEC_SIZE (1u << 20)
#define MAX_DEPTH 64
/* Aliases make libyaml's loader search its list of anchors, which grows
 * with each one (150,000 anchors in 1 MiB took 55 s), and every alias
 * stands for a whole node that the checks below walk again: without a
 * bound, a spec of a few KB can stand for billions of nodes. No more nodes
 * than 1 MiB of YAML could hold without aliases. */
#define MAX_ANCHORS 256
#define MAX_NODES 1048576
#define STR_(x) #x
#define STR(x) STR_(x)
#define MAX_NAME 255
#define SHOW_MAX 64   /* bytes of user text quoted in a message */
#define MAX_FIELDS 8  /* keys of the largest fixed-key mapping (a file) */

#define RANDOM_DEFAULT 32
#define RANDOM_MAX 65536
#define PASSWORD_DEFAULT 32
#define PASSWORD_MAX 4096
#define TIMEOUT_MAX 86400u /* a day: longer is a hang, not a slow script */
#define DEFAULT_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* Names sorted for lookups and for finding repeats; at is the element's
 * position in its array, which is also its pair's or item's in YAML. */
struct entry {
	const char *name;
	size_t at;
};

struct index {
	struct entry *e;
	size_t n;
};

struct ctx {
	const char *path;
	yaml_document_t *doc;
	struct vf_spec *spec;
	struct vf_error *err;
	struct index generators; /* of spec->generators */
	struct index *files;	 /* per generator, of its files */
};

/* ---- messages ---------------------------------------------------------- */

/* User text quoted in a message: clipped, and anything but printable ASCII
 * shown as '?', so that a message stays one harmless line. Returned by
 * value so that it can be used inline as an argument. */
struct shown {
	char s[SHOW_MAX + 4];
};

static struct shown show_n(const char *s, size_t len)
{
	struct shown out;
	size_t n = len < SHOW_MAX ? len : SHOW_MAX;
	for (size_t i = 0; i < n; i++)
		out.s[i] = (s[i] >= 0x20 && s[i] <= 0x7e) ? s[i] : '?';
	strcpy(out.s + n, len > SHOW_MAX ? "..." : "");
	return out;
}

static struct shown show(const char *s)
{
	return show_n(s, strlen(s));
}

__attribute__((format(printf, 4, 0))) static enum vf_code
vfail_at(struct ctx *c, size_t line, size_t column, const char *fmt, va_list ap)
{
	char what[sizeof(c->err->msg)];
	vsnprintf(what, sizeof(what), fmt, ap);
	return vf_fail(c->err, VF_E_ARG, "%s:%zu:%zu: %s", c->path, line, column, what);
}

/* An error at a line and column (1-based). */
__attribute__((format(printf, 4, 5))) static enum vf_code
fail_line_col(struct ctx *c, size_t line, size_t column, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum vf_code rc = vfail_at(c, line, column, fmt, ap);
	va_end(ap);
	return rc;
}

/* An error at a node (its first character). */
__attribute__((format(printf, 3, 4))) static enum vf_code
fail_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum vf_code rc =
		vfail_at(c, n->start_mark.line + 1, n->start_mark.column + 1, fmt, ap);
	va_end(ap);
	return rc;
}

/* An error at a position already recorded in the spec. */
__attribute__((format(printf, 3, 4))) static enum vf_code
fail_pos(struct ctx *c, struct vf_pos p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum vf_code rc = vfail_at(c, p.line, p.column, fmt, ap);
	va_end(ap);
	return rc;
}

static enum vf_code nomem(struct ctx *c)
{
	return vf_fail(c->err, VF_E_NOMEM, "out of memory");
}

/* "a, b, c" for the "(expected one of: ...)" part of a message. */
static void join(char *buf, size_t size, const char *const *names, size_t n)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* ---- nodes ------------------------------------------------------------- */

static yaml_node_t *node_at(const struct ctx *c, int index)
{
	return yaml_document_get_node(c->doc, index);
}

static const char *text(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static struct vf_pos pos_of(const yaml_node_t *n)
{
	return (struct vf_pos){(unsigned)n->start_mark.line + 1,
			       (unsigned)n->start_mark.column + 1};
}

static bool is_text(const yaml_node_t *n, const char *s)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
	       memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* YAML's null: an empty value, ~ or null, unquoted. */
static bool is_null(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (n->data.scalar.length == 0 || is_text(n, "~") || is_text(n, "null") ||
		is_text(n, "Null") || is_text(n, "NULL"));
}

static const char *type_name(const yaml_node_t *n)
{
	if (is_null(n))
		return "empty";
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a sequence";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

static size_t n_pairs(const yaml_node_t *map)
{
	return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static size_t n_items(const yaml_node_t *seq)
{
	return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

/* Index of n's text in names, or count when absent. */
static size_t choose(const yaml_node_t *n, const char *const *names, size_t count)
{
	size_t i = 0;
	while (i < count && !is_text(n, names[i]))
		i++;
	return i;
}

/* A collection where one is expected; null is accepted (as empty) only
 * where the caller checked for it first. */
static enum vf_code want(struct ctx *c, const yaml_node_t *n, yaml_node_type_t type,
			 const char *what)
{
	if (n->type == type && !is_null(n))
		return VF_OK;
	const char *expected = type == YAML_MAPPING_NODE	 ? "a mapping"
			       : type == YAML_SEQUENCE_NODE ? "a sequence"
							    : "a string";
	return fail_at(c, n, "%s is %s (expected %s)", what, type_name(n), expected);
}

/* A scalar's text as a new string. YAML escapes can put a NUL inside a
 * scalar, which a C string would silently cut: refused. */
static enum vf_code get_string(struct ctx *c, const yaml_node_t *n, const char *what, char **out)
{
	enum vf_code rc = want(c, n, YAML_SCALAR_NODE, what);
	if (rc != VF_OK)
		return rc;
	if (strlen(text(n)) != n->data.scalar.length)
		return fail_at(c, n, "%s contains a NUL byte (expected text)", what);
	char *s = strdup(text(n));
	if (!s)
		return nomem(c);
	free(*out);
	*out = s;
	return VF_OK;
}

/* ---- mappings ---------------------------------------------------------- */

/* A mapping with a fixed set of keys, gathered by index into names. */
struct fields {
	const char *const *names;
	size_t n;
	yaml_node_t *key[MAX_FIELDS];
	yaml_node_t *val[MAX_FIELDS];
};

static enum vf_code collect(struct ctx *c, const yaml_node_t *map, struct fields *f,
			    const char *where)
{
	char expected[160];
	join(expected, sizeof(expected), f->names, f->n);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(c, p->key);
		if (k->type != YAML_SCALAR_NODE)
			return fail_at(c, k, "key in %s is %s (expected one of: %s)", where,
				       type_name(k), expected);
		size_t i = choose(k, f->names, f->n);
		if (i == f->n)
			return fail_at(c, k, "unknown key '%s' in %s (expected one of: %s)",
				       show_n(text(k), k->data.scalar.length).s, where, expected);
		if (f->key[i])
			return fail_at(c, k, "duplicate key '%s' in %s (expected each key once)",
				       f->names[i], where);
		f->key[i] = k;
		f->val[i] = node_at(c, p->value);
	}
	return VF_OK;
}

/* Characters refused beyond those of a path component: chown(1) reads
 * "user:group"; systemd's LoadCredential= and SetCredential= end the name
 * at ':', and it splits "io.systemd.credential:NAME=VALUE" at the first
 * '=', so "DB=HOST" would reach the guest as credential DB holding
 * "HOST=" and the value. */
#define ACCOUNT_REFUSED ":"
#define CREDENTIAL_REFUSED ":="

/* Why a name is not a safe path component, or NULL; the characters in
 * refused are not allowed either. Stricter than systemd's
 * credential_name_valid() (non-empty, not "." or "..", no '/' or ':',
 * 0x20..0x7e, at most NAME_MAX bytes): no leading '.', no space. */
static const char *name_problem(const char *s, size_t len, const char *refused)
{
	if (len == 0)
		return "is empty";
	if (len > MAX_NAME)
		return "is longer than 255 bytes";
	if (s[0] == '.')
		return "starts with '.'";
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/')
			return "contains '/'";
		if (s[i] == ':' && strchr(refused, ':'))
			return "contains ':'";
		if (s[i] == '=' && strchr(refused, '='))
			return "contains '='";
		if (s[i] == ' ')
			return "contains a space";
		if (s[i] < 0x21 || s[i] > 0x7e)
			return "contains a character that is not printable ASCII";
	}
	return NULL;
}

static enum vf_code check_name(struct ctx *c, const yaml_node_t *n, const char *what,
			       bool credential)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail_at(c, n, "%s name is %s (expected a name)", what, type_name(n));
	const char *problem = name_problem(text(n), n->data.scalar.length,
					   credential ? CREDENTIAL_REFUSED : "");
	if (!problem)
		return VF_OK;
	return fail_at(c, n,
		       "bad %s name '%s': %s (expected printable ASCII without spaces, "
		       "'/'%s, not starting with '.')",
		       what, show_n(text(n), n->data.scalar.length).s, problem,
		       credential ? ", ':' or '='" : "");
}

/* ---- names ------------------------------------------------------------ */

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : (x->at > y->at) - (x->at < y->at);
}

static int cmp_key_entry(const void *key, const void *e)
{
	return strcmp(key, ((const struct entry *)e)->name);
}

/* Indexes n elements of stride bytes from base, each starting with its
 * name (a char *: a struct's first member, or an element of char **). */
static enum vf_code index_build(struct ctx *c, const void *base, size_t n, size_t stride,
				struct index *ix)
{
	if (!(ix->e = calloc(n ? n : 1, sizeof(*ix->e))))
		return nomem(c);
	ix->n = n;
	for (size_t i = 0; i < n; i++) {
		char *const *name = (const void *)((const char *)base + i * stride);
		ix->e[i] = (struct entry){*name, i};
	}
	qsort(ix->e, n, sizeof(*ix->e), cmp_entry);
	return VF_OK;
}

/* The element named name, or SIZE_MAX. */
static size_t index_find(const struct index *ix, const char *name)
{
	const struct entry *e =
		ix->n ? bsearch(name, ix->e, ix->n, sizeof(*ix->e), cmp_key_entry) : NULL;
	return e ? e->at : SIZE_MAX;
}

/* The first element, in document order, whose name an earlier one has
 * (equal names sort together, in document order), or SIZE_MAX. */
static size_t index_repeat(const struct index *ix)
{
	size_t first = SIZE_MAX;
	for (size_t i = 1; i < ix->n; i++)
		if (strcmp(ix->e[i - 1].name, ix->e[i].name) == 0 && ix->e[i].at < first)
			first = ix->e[i].at;
	return first;
}

static void index_free(struct index *ix)
{
	free(ix->e);
	ix->e = NULL;
	ix->n = 0;
}

/* A NAME -> ... mapping and the array of structs it becomes. */
struct section {
	const char *title; /* for messages: "files of generator 'g'" */
	const char *what;  /* one entry: "file" */
	bool credential;   /* names follow systemd's credential rules */
	size_t size;	   /* of one struct, whose first member is its name */
	size_t pos_offset; /* of its struct vf_pos */
};

static enum vf_code section_names(struct ctx *c, const yaml_node_t *map,
				  const struct section *s, char *items)
{
	for (size_t i = 0; i < n_pairs(map); i++) {
		const yaml_node_t *k = node_at(c, map->data.mapping.pairs.start[i].key);
		char *elem = items + i * s->size;
		*(struct vf_pos *)(void *)(elem + s->pos_offset) = pos_of(k);
		if (!(*(char **)(void *)elem = strdup(text(k))))
			return nomem(c);
	}
	return VF_OK;
}

/* Checks the names (valid, each once; null means no entries), allocates
 * *items with *n zeroed structs and sets their names and positions; the
 * caller owns *items even on failure and reads the bodies. The name index
 * is kept in ix unless ix is NULL. */
static enum vf_code open_section(struct ctx *c, const yaml_node_t *map, const struct section *s,
				 void **items, size_t *n, struct index *ix)
{
	struct index local = {0};
	*items = NULL;
	*n = 0;
	if (is_null(map))
		return VF_OK;
	enum vf_code rc = want(c, map, YAML_MAPPING_NODE, s->title);
	for (size_t i = 0; rc == VF_OK && i < n_pairs(map); i++)
		rc = check_name(c, node_at(c, map->data.mapping.pairs.start[i].key), s->what,
				s->credential);
	if (rc != VF_OK || n_pairs(map) == 0)
		return rc;
	if (!(*items = calloc(n_pairs(map), s->size)))
		return nomem(c);
	*n = n_pairs(map);
	rc = section_names(c, map, s, *items);
	if (rc == VF_OK)
		rc = index_build(c, *items, *n, s->size, &local);
	size_t rep = rc == VF_OK ? index_repeat(&local) : SIZE_MAX;
	if (rep != SIZE_MAX) {
		const yaml_node_t *k = node_at(c, map->data.mapping.pairs.start[rep].key);
		rc = fail_at(c, k, "duplicate %s '%s' (expected each name once)", s->what,
			     show(text(k)).s);
	}
	if (rc == VF_OK && ix)
		*ix = local;
	else
		index_free(&local);
	return rc;
}

/* ---- scalars ----------------------------------------------------------- */

static enum vf_code get_bool(struct ctx *c, const yaml_node_t *n, const char *what, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO"};
	size_t count = sizeof(yes) / sizeof(yes[0]);
	if (n->type == YAML_SCALAR_NODE && choose(n, yes, count) < count)
		*out = true;
	else if (n->type == YAML_SCALAR_NODE && choose(n, no, count) < count)
		*out = false;
	else if (n->type == YAML_SCALAR_NODE && !is_null(n))
		return fail_at(c, n, "%s is '%s' (expected true or false)", what,
			       show_n(text(n), n->data.scalar.length).s);
	else
		return fail_at(c, n, "%s is %s (expected true or false)", what, type_name(n));
	return VF_OK;
}

/* One of names; *index is its position. */
static enum vf_code get_choice(struct ctx *c, const yaml_node_t *n, const char *const *names,
			       size_t count, const char *field, const char *where, size_t *index)
{
	char expected[160];
	join(expected, sizeof(expected), names, count);
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail_at(c, n, "%s of %s is %s (expected one of: %s)", field, where,
			       type_name(n), expected);
	*index = choose(n, names, count);
	if (*index == count)
		return fail_at(c, n, "unknown %s '%s' in %s (expected one of: %s)", field,
			       show_n(text(n), n->data.scalar.length).s, where, expected);
	return VF_OK;
}

/* The scalar's text parsed in base (8 or 10), digits only (no sign, no
 * prefix). Values above cap are reported as cap + 1 so that nothing
 * overflows. False when a character is not a digit. */
static bool get_digits(const yaml_node_t *n, unsigned base, size_t cap, size_t *out)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
		return false;
	size_t v = 0;
	for (size_t i = 0; i < n->data.scalar.length; i++) {
		unsigned d = (unsigned)n->data.scalar.value[i] - '0';
		if (d >= base)
			return false;
		v = v > cap ? cap + 1 : v * base + d;
	}
	*out = v > cap ? cap + 1 : v;
	return true;
}

/* "0400", 0400 or 400: YAML gives an unquoted 0400 as the text "0400",
 * which is read as octal whatever YAML version would say about it. */
static enum vf_code get_mode(struct ctx *c, const yaml_node_t *n, const char *where,
			     unsigned *mode)
{
	size_t v;
	if (!get_digits(n, 8, 0777, &v))
		return fail_at(c, n, "bad mode '%s' in %s (expected octal digits such as 0400)",
			       n->type == YAML_SCALAR_NODE ? show(text(n)).s : "?", where);
	if (v > 0777)
		return fail_at(c, n,
			       "mode '%s' in %s is above 0777: setuid, setgid and sticky bits are "
			       "refused (expected at most 0777)",
			       show(text(n)).s, where);
	*mode = (unsigned)v;
	return VF_OK;
}

static enum vf_code get_length(struct ctx *c, const yaml_node_t *n, const char *where,
			       size_t max, const char *unit, size_t *out)
{
	size_t v;
	if (!get_digits(n, 10, max, &v))
		return fail_at(c, n, "length '%s' in %s is not a number (expected 1..%zu %s)",
			       n->type == YAML_SCALAR_NODE ? show(text(n)).s : "?", where, max,
			       unit);
	if (v < 1 || v > max)
		return fail_at(c, n, "length %s in %s is out of range (expected 1..%zu %s)",
			       show(text(n)).s, where, max, unit);
	*out = v;
	return VF_OK;
}

/* A user or group name, or a numeric id: one token that chown(1) would
 * take, so no ':' (its user:group separator), no blanks, and the same
 * rules as names otherwise. */
static enum vf_code get_account(struct ctx *c, const yaml_node_t *n, const char *field,
				const char *where, char **out)
{
	char what[128];
	snprintf(what, sizeof(what), "%s of %s", field, where);
	enum vf_code rc = get_string(c, n, what, out);
	if (rc != VF_OK)
		return rc;
	const char *problem = name_problem(*out, strlen(*out), ACCOUNT_REFUSED);
	if (problem)
		return fail_at(c, n, "bad %s '%s' in %s: %s (expected a user or group name)",
			       field, show(*out).s, where, problem);
	return VF_OK;
}

/* A recipient, checked by the key parser (the only judge of what a
 * recipient is) and kept as text. */
static enum vf_code get_recipient(struct ctx *c, const yaml_node_t *n, const char *what,
				  char **out)
{
	enum vf_code rc = get_string(c, n, what, out);
	if (rc != VF_OK)
		return rc;
	struct vf_recipient *r = NULL;
	struct vf_error e = {0};
	rc = vf_recipient_parse(*out, &r, &e);
	if (rc == VF_OK) {
		vf_recipient_free(r);
		return VF_OK;
	}
	if (rc == VF_E_NOMEM)
		return nomem(c);
	bool has_expected = strstr(e.msg, "(expected") != NULL;
	return fail_at(c, n, "%s is not a valid recipient: %s%s", what, e.msg,
		       has_expected ? "" : " (expected an age1..., ssh-ed25519 or ssh-rsa recipient)");
}

/* ---- generator names --------------------------------------------------- */

static size_t find_generator(const struct ctx *c, const char *name)
{
	return index_find(&c->generators, name);
}

/* A sequence of generator names (null: none), each defined and listed
 * once. what names the list in messages. The list's index is kept in ix
 * unless ix is NULL. */
static enum vf_code get_generator_list(struct ctx *c, const yaml_node_t *seq, const char *what,
				       char ***out, size_t *n_out, struct index *ix)
{
	if (is_null(seq))
		return VF_OK;
	enum vf_code rc = want(c, seq, YAML_SEQUENCE_NODE, what);
	if (rc != VF_OK || n_items(seq) == 0)
		return rc;
	if (!(*out = calloc(n_items(seq), sizeof(**out))))
		return nomem(c);
	*n_out = n_items(seq);
	for (size_t i = 0; i < *n_out && rc == VF_OK; i++) {
		const yaml_node_t *item = node_at(c, seq->data.sequence.items.start[i]);
		rc = check_name(c, item, "generator", false);
		if (rc == VF_OK && find_generator(c, text(item)) == SIZE_MAX)
			rc = fail_at(c, item,
				     "%s names unknown generator '%s' (expected a generator "
				     "defined under generators)",
				     what, show(text(item)).s);
		if (rc == VF_OK)
			rc = get_string(c, item, what, &(*out)[i]);
	}
	struct index local = {0};
	if (rc == VF_OK)
		rc = index_build(c, *out, *n_out, sizeof(**out), &local);
	size_t rep = rc == VF_OK ? index_repeat(&local) : SIZE_MAX;
	if (rep != SIZE_MAX)
		rc = fail_at(c, node_at(c, seq->data.sequence.items.start[rep]),
			     "%s lists '%s' twice (expected each once)", what, show((*out)[rep]).s);
	if (rc == VF_OK && ix)
		*ix = local;
	else
		index_free(&local);
	return rc;
}

/* ---- files ------------------------------------------------------------- */

static const char *const file_keys[] = {"secret", "mode",   "owner",    "group",
					"kind",	  "length", "encoding", "alphabet"};
enum { F_SECRET, F_MODE, F_OWNER, F_GROUP, F_KIND, F_LENGTH, F_ENCODING, F_ALPHABET, F_N };

static const char *const file_kinds[] = {"random", "password", "uuid"};
static const char *const encodings[] = {"base64", "base64url", "hex", "raw"};

/* What the files of one generator are read against. */
struct gen_info {
	const char *name;
	size_t index; /* in spec->generators */
	bool has_script;
};

static const char *kind_name(enum vf_kind kind)
{
	switch (kind) {
	case VF_KIND_SCRIPT: return "script";
	case VF_KIND_RANDOM: return "random";
	case VF_KIND_PASSWORD: return "password";
	case VF_KIND_UUID: return "uuid";
	case VF_KIND_AGE_KEYPAIR: return "age-keypair";
	case VF_KIND_WIREGUARD: return "wireguard";
	}
	return "?";
}

static enum vf_code file_defaults(struct ctx *c, struct vf_spec_file *f, bool secret)
{
	f->owner = strdup("root");
	f->group = strdup("root");
	f->secret = secret;
	f->mode = 0400;
	return f->owner && f->group ? VF_OK : nomem(c);
}

/* secret, mode, owner, group: what every file may set. */
static enum vf_code file_install(struct ctx *c, const struct fields *fl, const char *where,
				 struct vf_spec_file *f)
{
	enum vf_code rc = VF_OK;
	if (fl->val[F_SECRET]) {
		char what[128];
		snprintf(what, sizeof(what), "secret of %s", where);
		rc = get_bool(c, fl->val[F_SECRET], what, &f->secret);
	}
	if (rc == VF_OK && fl->val[F_MODE])
		rc = get_mode(c, fl->val[F_MODE], where, &f->mode);
	if (rc == VF_OK && fl->val[F_OWNER])
		rc = get_account(c, fl->val[F_OWNER], "owner", where, &f->owner);
	if (rc == VF_OK && fl->val[F_GROUP])
		rc = get_account(c, fl->val[F_GROUP], "group", where, &f->group);
	return rc;
}

/* A parameter given to a kind it does not belong to. */
static enum vf_code misplaced(struct ctx *c, const yaml_node_t *key, const char *where,
			      const struct vf_spec_file *f, const char *belongs)
{
	if (f->kind == VF_KIND_SCRIPT)
		return fail_at(c, key, "'%s' given in %s, which has no kind (expected only with %s)",
			       text(key), where, belongs);
	return fail_at(c, key, "'%s' does not apply to kind %s in %s (expected only with %s)",
		       text(key), kind_name(f->kind), where, belongs);
}

static enum vf_code get_alphabet(struct ctx *c, const yaml_node_t *n, const char *where,
				 char **out)
{
	char what[128];
	snprintf(what, sizeof(what), "alphabet of %s", where);
	enum vf_code rc = get_string(c, n, what, out);
	if (rc != VF_OK)
		return rc;
	/* Printable ASCII only: the generator picks single bytes, which
	 * would split multi-byte characters and put control characters in
	 * passwords. That also keeps it under 256 distinct bytes. */
	bool seen[256] = {false};
	size_t len = strlen(*out);
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)(*out)[i];
		if (b < 0x20 || b > 0x7e)
			return fail_at(c, n, "%s has a character that is not printable ASCII "
					     "(expected distinct printable ASCII characters)",
				       what);
		if (seen[b])
			return fail_at(c, n, "%s repeats '%c' (expected distinct characters)", what,
				       b);
		seen[b] = true;
	}
	if (len < 2)
		return fail_at(c, n, "%s is too short (expected at least 2 distinct characters)", what);
	return VF_OK;
}

/* kind, and the parameters of that kind with their defaults. */
static enum vf_code file_kind(struct ctx *c, const struct fields *fl, const struct gen_info *gi,
			      const char *where, struct vf_spec_file *f)
{
	if (fl->val[F_KIND]) {
		size_t k;
		enum vf_code rc = get_choice(c, fl->val[F_KIND], file_kinds, 3, "kind", where, &k);
		if (rc != VF_OK)
			return rc;
		if (gi->has_script)
			return fail_at(c, fl->key[F_KIND],
				       "%s has kind %s but generator '%s' has a script (expected "
				       "either a script or built-in kinds)",
				       where, file_kinds[k], show(gi->name).s);
		f->kind = (enum vf_kind)(VF_KIND_RANDOM + (int)k);
	}
	if (f->kind == VF_KIND_RANDOM || f->kind == VF_KIND_PASSWORD)
		f->length = f->kind == VF_KIND_RANDOM ? RANDOM_DEFAULT : PASSWORD_DEFAULT;
	if (f->kind == VF_KIND_PASSWORD && !(f->alphabet = strdup(DEFAULT_ALPHABET)))
		return nomem(c);
	return VF_OK;
}

static enum vf_code file_params(struct ctx *c, const struct fields *fl, const char *where,
				struct vf_spec_file *f)
{
	enum vf_code rc = VF_OK;
	bool random = f->kind == VF_KIND_RANDOM, password = f->kind == VF_KIND_PASSWORD;
	if (fl->key[F_LENGTH] && !random && !password)
		return misplaced(c, fl->key[F_LENGTH], where, f, "kind random or password");
	if (fl->key[F_ENCODING] && !random)
		return misplaced(c, fl->key[F_ENCODING], where, f, "kind random");
	if (fl->key[F_ALPHABET] && !password)
		return misplaced(c, fl->key[F_ALPHABET], where, f, "kind password");
	if (fl->val[F_LENGTH])
		rc = get_length(c, fl->val[F_LENGTH], where, random ? RANDOM_MAX : PASSWORD_MAX,
				random ? "bytes" : "characters", &f->length);
	if (rc == VF_OK && fl->val[F_ENCODING]) {
		size_t e = 0;
		rc = get_choice(c, fl->val[F_ENCODING], encodings, 4, "encoding", where, &e);
		f->encoding = (enum vf_encoding)e;
	}
	if (rc == VF_OK && fl->val[F_ALPHABET])
		rc = get_alphabet(c, fl->val[F_ALPHABET], where, &f->alphabet);
	return rc;
}

/* One entry of a script or built-in generator's files. */
static enum vf_code parse_file(struct ctx *c, const struct gen_info *gi, const yaml_node_t *key,
			       const yaml_node_t *val, struct vf_spec_file *f)
{
	char where[96];
	snprintf(where, sizeof(where), "file '%s'", show(text(key)).s);
	enum vf_code rc = file_defaults(c, f, true);
	if (rc != VF_OK || is_null(val))
		return rc;
	struct fields fl = {.names = file_keys, .n = F_N};
	rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	if (rc == VF_OK)
		rc = file_kind(c, &fl, gi, where, f);
	if (rc == VF_OK)
		rc = file_params(c, &fl, where, f);
	if (rc == VF_OK)
		rc = file_install(c, &fl, where, f);
	return rc;
}

/* ---- key-pair generators ----------------------------------------------- */

struct pair_kind {
	const char *name;
	enum vf_kind kind;
	const char *secret_file, *public_file;
};

static const struct pair_kind pair_kinds[] = {
	{"age-keypair", VF_KIND_AGE_KEYPAIR, "identity", "recipient"},
	{"wireguard", VF_KIND_WIREGUARD, "private", "public"},
};
static const char *const pair_kind_names[] = {"age-keypair", "wireguard"};

/* The files: mapping of a key-pair generator, as it is read. */
struct pair_walk {
	const struct gen_info *gi;
	const struct pair_kind *pk;
	bool named[2]; /* the secret and the public file were listed */
};

/* An entry of a key-pair generator's files: only install attributes,
 * since what the file holds and whether it is secret are the kind's. */
static enum vf_code pair_file(struct ctx *c, struct pair_walk *w, const yaml_node_t *key,
			      const yaml_node_t *val, struct vf_spec_generator *g)
{
	const struct pair_kind *pk = w->pk;
	enum vf_code rc = check_name(c, key, "file", false);
	if (rc != VF_OK)
		return rc;
	size_t i = is_text(key, pk->secret_file) ? 0 : is_text(key, pk->public_file) ? 1 : 2;
	if (i == 2)
		return fail_at(c, key, "%s generator '%s' has no file '%s' (expected %s or %s)",
			       pk->name, show(w->gi->name).s, show(text(key)).s, pk->secret_file,
			       pk->public_file);
	if (w->named[i])
		return fail_at(c, key, "duplicate file '%s' (expected each name once)", text(key));
	w->named[i] = true;
	struct vf_spec_file *f = &g->files[i];
	f->pos = pos_of(key);
	if (is_null(val))
		return VF_OK;
	char where[96];
	snprintf(where, sizeof(where), "file '%s'", text(key));
	struct fields fl = {.names = file_keys, .n = F_N};
	rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	for (size_t k = 0; k < F_N && rc == VF_OK; k++)
		if (fl.key[k] && k != F_MODE && k != F_OWNER && k != F_GROUP)
			rc = fail_at(c, fl.key[k],
				     "'%s' cannot be set in %s of %s generator '%s' (expected only "
				     "mode, owner, group)",
				     file_keys[k], where, pk->name, show(w->gi->name).s);
	if (rc == VF_OK)
		rc = file_install(c, &fl, where, f);
	return rc;
}

static enum vf_code pair_files(struct ctx *c, const struct gen_info *gi, const yaml_node_t *map,
			       struct vf_spec_generator *g)
{
	const struct pair_kind *pk = &pair_kinds[g->kind == VF_KIND_AGE_KEYPAIR ? 0 : 1];
	if (!(g->files = calloc(2, sizeof(*g->files))))
		return nomem(c);
	g->n_files = 2;
	const char *names[2] = {pk->secret_file, pk->public_file};
	enum vf_code rc = VF_OK;
	for (size_t i = 0; i < 2 && rc == VF_OK; i++) {
		struct vf_spec_file *f = &g->files[i];
		f->kind = g->kind;
		f->pos = g->pos; /* until the spec names the file */
		rc = (f->name = strdup(names[i])) ? file_defaults(c, f, i == 0) : nomem(c);
	}
	if (rc == VF_OK)
		rc = index_build(c, g->files, 2, sizeof(*g->files), &c->files[gi->index]);
	if (rc != VF_OK || !map || is_null(map))
		return rc;
	char title[96];
	snprintf(title, sizeof(title), "files of generator '%s'", gi->name);
	rc = want(c, map, YAML_MAPPING_NODE, title);
	struct pair_walk w = {gi, pk, {false, false}};
	for (size_t i = 0; i < n_pairs(map) && rc == VF_OK; i++) {
		yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
		rc = pair_file(c, &w, node_at(c, p->key), node_at(c, p->value), g);
	}
	return rc;
}

/* ---- prompts ----------------------------------------------------------- */

static const char *const prompt_keys[] = {"type", "description"};
static const char *const prompt_types[] = {"hidden", "line", "multiline"};

static enum vf_code parse_prompt(struct ctx *c, const yaml_node_t *key, const yaml_node_t *val,
				 struct vf_spec_prompt *pr)
{
	char where[96];
	snprintf(where, sizeof(where), "prompt '%s'", text(key));
	if (is_null(val))
		return VF_OK;
	struct fields fl = {.names = prompt_keys, .n = 2};
	enum vf_code rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	if (rc == VF_OK && fl.val[0]) {
		size_t t = 0;
		rc = get_choice(c, fl.val[0], prompt_types, 3, "type", where, &t);
		pr->type = (enum vf_prompt_type)t;
	}
	if (rc == VF_OK && fl.val[1] && !is_null(fl.val[1])) {
		char what[128];
		snprintf(what, sizeof(what), "description of %s", where);
		rc = get_string(c, fl.val[1], what, &pr->description);
	}
	return rc;
}

static enum vf_code parse_prompts(struct ctx *c, const yaml_node_t *map,
				  struct vf_spec_generator *g)
{
	char title[96];
	snprintf(title, sizeof(title), "prompts of generator '%s'", g->name);
	const struct section sec = {title, "prompt", false, sizeof(*g->prompts),
				    offsetof(struct vf_spec_prompt, pos)};
	void *items;
	enum vf_code rc = open_section(c, map, &sec, &items, &g->n_prompts, NULL);
	g->prompts = items;
	for (size_t i = 0; i < g->n_prompts && rc == VF_OK; i++) {
		yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
		rc = parse_prompt(c, node_at(c, p->key), node_at(c, p->value), &g->prompts[i]);
	}
	return rc;
}

/* ---- the generator hash ------------------------------------------------ */

/* A canonical byte string: every string is length-prefixed and every
 * list count-prefixed, so no two different generators serialise alike. */
struct buf {
	uint8_t *p;
	size_t n, cap;
	bool failed;
};

static void put(struct buf *b, const void *data, size_t len)
{
	if (b->failed)
		return;
	if (b->cap - b->n < len) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->n < len)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
}

static void put_u64(struct buf *b, uint64_t v)
{
	uint8_t be[8];
	for (int i = 7; i >= 0; i--, v >>= 8)
		be[i] = (uint8_t)v;
	put(b, be, sizeof(be));
}

static void put_str(struct buf *b, const char *s)
{
	put_u64(b, strlen(s));
	put(b, s, strlen(s));
}

/* The comparators get pointers to sorted()'s pointers to elements. */
static const void *element(const void *p)
{
	return *(const void *const *)p;
}

static int cmp_name(const void *a, const void *b)
{
	const char *const *x = element(a), *const *y = element(b);
	return strcmp(*x, *y);
}

static int cmp_file(const void *a, const void *b)
{
	const struct vf_spec_file *x = element(a), *y = element(b);
	return strcmp(x->name, y->name);
}

static int cmp_prompt(const void *a, const void *b)
{
	const struct vf_spec_prompt *x = element(a), *y = element(b);
	return strcmp(x->name, y->name);
}

/* Only the parameters the file's kind uses, so that a default written
 * out hashes like the default left implicit. */
static void put_file(struct buf *b, const struct vf_spec_file *f)
{
	put_str(b, f->name);
	put_u64(b, f->secret);
	put_str(b, kind_name(f->kind));
	if (f->kind == VF_KIND_RANDOM) {
		put_u64(b, f->length);
		put_str(b, encodings[f->encoding]);
	} else if (f->kind == VF_KIND_PASSWORD) {
		put_u64(b, f->length);
		put_str(b, f->alphabet);
	}
}

/* Pointers to the n elements (of size sz) of items, sorted by cmp. */
static const void **sorted(const void *items, size_t n, size_t sz,
			   int (*cmp)(const void *, const void *))
{
	const void **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = (const char *)items + i * sz;
	qsort(v, n, sizeof(*v), cmp);
	return v;
}

static void put_generator(struct buf *b, const struct vf_spec_generator *g)
{
	const void **deps = sorted(g->dependencies, g->n_dependencies, sizeof(char *), cmp_name);
	const void **prompts = sorted(g->prompts, g->n_prompts, sizeof(*g->prompts), cmp_prompt);
	const void **files = sorted(g->files, g->n_files, sizeof(*g->files), cmp_file);
	if (!deps || !prompts || !files)
		b->failed = true;
	put_str(b, "vars-generator-v1");
	put_str(b, kind_name(g->kind));
	put_u64(b, g->script != NULL);
	if (g->script)
		put_str(b, g->script);
	put_u64(b, g->share);
	put_u64(b, g->n_dependencies);
	for (size_t i = 0; i < g->n_dependencies && !b->failed; i++)
		put_str(b, *(const char *const *)deps[i]);
	put_u64(b, g->n_prompts);
	for (size_t i = 0; i < g->n_prompts && !b->failed; i++) {
		const struct vf_spec_prompt *p = prompts[i];
		put_str(b, p->name);
		put_str(b, prompt_types[p->type]);
	}
	put_u64(b, g->n_files);
	for (size_t i = 0; i < g->n_files && !b->failed; i++)
		put_file(b, files[i]);
	free(deps);
	free(prompts);
	free(files);
}

static enum vf_code hash_generator(struct ctx *c, struct vf_spec_generator *g)
{
	struct buf b = {0};
	uint8_t digest[VF_SHA256_LEN];
	put_generator(&b, g);
	enum vf_code rc = b.failed ? nomem(c) : vf_sha256(b.p, b.n, digest, c->err);
	free(b.p);
	for (size_t i = 0; rc == VF_OK && i < VF_SHA256_LEN; i++)
		snprintf(g->hash + 2 * i, 3, "%02x", digest[i]);
	return rc;
}

/* ---- generators -------------------------------------------------------- */

static const char *const generator_keys[] = {"kind",    "script", "share",  "dependencies",
					     "prompts", "files",  "timeout"};
enum { G_KIND, G_SCRIPT, G_SHARE, G_DEPENDENCIES, G_PROMPTS, G_FILES, G_TIMEOUT, G_N };

static enum vf_code generator_kind(struct ctx *c, const yaml_node_t *n, const char *where,
				   struct vf_spec_generator *g)
{
	if (n->type == YAML_SCALAR_NODE && choose(n, file_kinds, 3) < 3)
		return fail_at(c, n,
			       "kind %s is a file kind, not a generator kind (expected "
			       "age-keypair or wireguard here; file kinds go under files)",
			       text(n));
	size_t k;
	enum vf_code rc = get_choice(c, n, pair_kind_names, 2, "kind", where, &k);
	if (rc == VF_OK)
		g->kind = pair_kinds[k].kind;
	return rc;
}

/* script, share, kind: what decides how the files are read. */
static enum vf_code generator_head(struct ctx *c, const struct fields *fl, const char *where,
				   struct vf_spec_generator *g)
{
	enum vf_code rc = VF_OK;
	if (fl->val[G_KIND])
		rc = generator_kind(c, fl->val[G_KIND], where, g);
	if (rc == VF_OK && fl->val[G_SCRIPT] && g->kind != VF_KIND_SCRIPT)
		return fail_at(c, fl->key[G_SCRIPT],
			       "%s has both kind %s and a script (expected one of them)", where,
			       kind_name(g->kind));
	char what[128];
	snprintf(what, sizeof(what), "script of %s", where);
	if (rc == VF_OK && fl->val[G_SCRIPT])
		rc = get_string(c, fl->val[G_SCRIPT], what, &g->script);
	if (rc == VF_OK && g->script && g->script[0] == '\0')
		return fail_at(c, fl->val[G_SCRIPT], "%s is empty (expected shell commands)", what);
	snprintf(what, sizeof(what), "share of %s", where);
	if (rc == VF_OK && fl->val[G_SHARE])
		rc = get_bool(c, fl->val[G_SHARE], what, &g->share);
	return rc;
}

/* dependencies and prompts: inputs, which only a script can use. */
static enum vf_code generator_inputs(struct ctx *c, const struct fields *fl, const char *where,
				     struct vf_spec_generator *g)
{
	for (size_t k = G_DEPENDENCIES; k <= G_PROMPTS; k++)
		if (fl->key[k] && !g->script)
			return fail_at(c, fl->key[k],
				       "%s given in %s, which has no script (expected %s only "
				       "with a script, which reads them)",
				       generator_keys[k], where, generator_keys[k]);
	char what[128];
	snprintf(what, sizeof(what), "dependencies of %s", where);
	enum vf_code rc = VF_OK;
	if (fl->val[G_DEPENDENCIES])
		rc = get_generator_list(c, fl->val[G_DEPENDENCIES], what, &g->dependencies,
					&g->n_dependencies, NULL);
	if (rc == VF_OK && fl->val[G_PROMPTS])
		rc = parse_prompts(c, fl->val[G_PROMPTS], g);
	return rc;
}

/* timeout: the script's time limit in seconds (vargen's default when
 * absent). Only a script runs long enough to need one. */
static enum vf_code generator_timeout(struct ctx *c, const struct fields *fl, const char *where,
				      struct vf_spec_generator *g)
{
	const yaml_node_t *n = fl->val[G_TIMEOUT];
	if (!n)
		return VF_OK;
	if (!g->script)
		return fail_at(c, fl->key[G_TIMEOUT],
			       "timeout given in %s, which has no script (expected timeout only "
			       "with a script, which it limits)",
			       where);
	size_t v;
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail_at(c, n, "timeout of %s is %s (expected 1..%u seconds)", where,
			       type_name(n), TIMEOUT_MAX);
	if (!get_digits(n, 10, TIMEOUT_MAX, &v))
		return fail_at(c, n, "timeout '%s' of %s is not a number (expected 1..%u seconds)",
			       show_n(text(n), n->data.scalar.length).s, where, TIMEOUT_MAX);
	if (v < 1 || v > TIMEOUT_MAX)
		return fail_at(c, n, "timeout %s of %s is out of range (expected 1..%u seconds)",
			       show(text(n)).s, where, TIMEOUT_MAX);
	g->timeout_seconds = (unsigned)v;
	return VF_OK;
}

static enum vf_code plain_files(struct ctx *c, const struct gen_info *gi, const yaml_node_t *map,
				struct vf_spec_generator *g)
{
	if (!map)
		return VF_OK;
	char title[96];
	snprintf(title, sizeof(title), "files of generator '%s'", gi->name);
	const struct section sec = {title, "file", false, sizeof(*g->files),
				    offsetof(struct vf_spec_file, pos)};
	void *items;
	enum vf_code rc = open_section(c, map, &sec, &items, &g->n_files, &c->files[gi->index]);
	g->files = items;
	for (size_t i = 0; i < g->n_files && rc == VF_OK; i++) {
		yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
		rc = parse_file(c, gi, node_at(c, p->key), node_at(c, p->value), &g->files[i]);
	}
	return rc;
}

/* Either a script that writes files without kinds, or no script and a
 * kind on every file. */
static enum vf_code check_sources(struct ctx *c, const char *where, struct vf_spec_generator *g)
{
	if (g->script && g->n_files == 0)
		return fail_pos(c, g->pos, "%s has no files (expected files naming what the script "
					   "writes)",
				where);
	size_t kinded = 0, first_plain = g->n_files;
	for (size_t i = 0; i < g->n_files; i++) {
		if (g->files[i].kind != VF_KIND_SCRIPT)
			kinded++;
		else if (first_plain == g->n_files)
			first_plain = i;
	}
	if (g->script || (kinded > 0 && kinded == g->n_files))
		return VF_OK;
	if (kinded == 0)
		return fail_pos(c, g->pos,
				"%s has no script (expected a script, a kind, or files that all "
				"have a kind)",
				where);
	return fail_pos(c, g->files[first_plain].pos,
			"file '%s' has no kind and %s has no script (expected a kind on every "
			"file, or a script)",
			show(g->files[first_plain].name).s, where);
}

static enum vf_code parse_generator(struct ctx *c, const yaml_node_t *key, const yaml_node_t *val,
				    struct vf_spec_generator *g)
{
	char where[96];
	snprintf(where, sizeof(where), "generator '%s'", text(key));
	struct fields fl = {.names = generator_keys, .n = G_N};
	enum vf_code rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	if (rc == VF_OK)
		rc = generator_head(c, &fl, where, g);
	if (rc == VF_OK)
		rc = generator_inputs(c, &fl, where, g);
	if (rc == VF_OK)
		rc = generator_timeout(c, &fl, where, g);
	struct gen_info gi = {g->name, (size_t)(g - c->spec->generators), g->script != NULL};
	if (rc == VF_OK && g->kind != VF_KIND_SCRIPT)
		return pair_files(c, &gi, fl.val[G_FILES], g);
	if (rc == VF_OK)
		rc = plain_files(c, &gi, fl.val[G_FILES], g);
	if (rc == VF_OK)
		rc = check_sources(c, where, g);
	return rc;
}

/* Depth-first search in document order; the first back edge found is
 * reported at the generator it returns to, with the path around. */
struct dfs {
	unsigned char *color; /* 0 unvisited, 1 on the stack, 2 done */
	size_t *stack, *next, depth;
};


static enum vf_code report_cycle(struct ctx *c, const struct dfs *d, size_t target)
{
	const struct vf_spec_generator *gs = c->spec->generators;
	size_t from = 0;
	while (d->stack[from] != target)
		from++;
	char path[160];
	size_t used = 0;
	for (size_t i = from; i <= d->depth && used < sizeof(path); i++) {
		size_t g = i < d->depth ? d->stack[i] : target;
		int w = snprintf(path + used, sizeof(path) - used, "%s%s", i > from ? " -> " : "",
				 show(gs[g].name).s);
		used += w > 0 ? (size_t)w : 0;
	}
	return fail_pos(c, gs[target].pos, "dependency cycle: %s (expected no cycles)", path);
}

/* Advances the search by one edge or one finished node. */
static enum vf_code dfs_step(struct ctx *c, struct dfs *d)
{
	size_t u = d->stack[d->depth - 1];
	const struct vf_spec_generator *g = &c->spec->generators[u];
	if (d->next[u] == g->n_dependencies) {
		d->color[u] = 2;
		d->depth--;
		return VF_OK;
	}
	size_t v = find_generator(c, g->dependencies[d->next[u]++]);
	if (d->color[v] == 1)
		return report_cycle(c, d, v);
	if (d->color[v] == 0) {
		d->color[v] = 1;
		d->stack[d->depth++] = v;
	}
	return VF_OK;
}

static enum vf_code check_cycles(struct ctx *c)
{
	size_t n = c->spec->n_generators;
	struct dfs d = {calloc(n + 1, 1), calloc(n + 1, sizeof(size_t)),
			calloc(n + 1, sizeof(size_t)), 0};
	enum vf_code rc = d.color && d.stack && d.next ? VF_OK : nomem(c);
	for (size_t s = 0; s < n && rc == VF_OK; s++) {
		if (d.color[s])
			continue;
		d.color[s] = 1;
		d.stack[d.depth++] = s;
		while (d.depth > 0 && rc == VF_OK)
			rc = dfs_step(c, &d);
	}
	free(d.color);
	free(d.stack);
	free(d.next);
	return rc;
}

static enum vf_code parse_generators(struct ctx *c, const yaml_node_t *map)
{
	struct vf_spec *spec = c->spec;
	const struct section sec = {"generators", "generator", false, sizeof(*spec->generators),
				    offsetof(struct vf_spec_generator, pos)};
	void *items;
	/* All names first: a dependency may name a generator defined later. */
	enum vf_code rc = open_section(c, map, &sec, &items, &spec->n_generators, &c->generators);
	spec->generators = items;
	if (rc != VF_OK || spec->n_generators == 0)
		return rc;
	if (!(c->files = calloc(spec->n_generators, sizeof(*c->files))))
		return nomem(c);
	for (size_t i = 0; i < spec->n_generators && rc == VF_OK; i++) {
		yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
		rc = parse_generator(c, node_at(c, p->key), node_at(c, p->value),
				     &spec->generators[i]);
		if (rc == VF_OK)
			rc = hash_generator(c, &spec->generators[i]);
	}
	return rc == VF_OK ? check_cycles(c) : rc;
}

/* ---- machines ---------------------------------------------------------- */

static const char *const machine_keys[] = {"key", "generators", "credentials"};
enum { M_KEY, M_GENERATORS, M_CREDENTIALS, M_N };

/* "generator/file", a file of a generator the machine uses (uses: the
 * index of the machine's generators). */
static enum vf_code credential_target(struct ctx *c, const struct vf_spec_machine *m,
				      const struct index *uses, const yaml_node_t *val,
				      struct vf_spec_credential *cr)
{
	char what[128];
	snprintf(what, sizeof(what), "credential '%s'", cr->name);
	char *target = NULL;
	enum vf_code rc = get_string(c, val, what, &target);
	if (rc != VF_OK)
		return rc;
	char *slash = strchr(target, '/');
	if (slash)
		*slash = '\0';
	if (!slash || !target[0] || !slash[1] || strchr(slash + 1, '/'))
		rc = fail_at(c, val, "%s has source '%s' (expected generator/file)", what,
			     show_n(text(val), val->data.scalar.length).s);
	else if (index_find(uses, target) == SIZE_MAX)
		rc = fail_at(c, val,
			     "%s names generator '%s', which machine '%s' does not use "
			     "(expected one of the machine's generators)",
			     what, show(target).s, m->name);
	else if (index_find(&c->files[find_generator(c, target)], slash + 1) == SIZE_MAX)
		rc = fail_at(c, val, "%s names file '%s', which generator '%s' does not have "
				     "(expected one of its files)",
			     what, show(slash + 1).s, target);
	if (rc == VF_OK && (!(cr->generator = strdup(target)) || !(cr->file = strdup(slash + 1))))
		rc = nomem(c);
	free(target);
	return rc;
}

static enum vf_code parse_credentials(struct ctx *c, const yaml_node_t *map,
				      const struct index *uses, struct vf_spec_machine *m)
{
	char title[96];
	snprintf(title, sizeof(title), "credentials of machine '%s'", m->name);
	const struct section sec = {title, "credential", true, sizeof(*m->credentials),
				    offsetof(struct vf_spec_credential, pos)};
	void *items;
	enum vf_code rc = open_section(c, map, &sec, &items, &m->n_credentials, NULL);
	m->credentials = items;
	for (size_t i = 0; i < m->n_credentials && rc == VF_OK; i++) {
		yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
		rc = credential_target(c, m, uses, node_at(c, p->value), &m->credentials[i]);
	}
	return rc;
}

/* The key may be left empty until it is generated: key stays NULL but
 * key_pos still says where the value goes (just after "key:"). */
static enum vf_code machine_key(struct ctx *c, const yaml_node_t *val, const char *where,
				struct vf_spec_machine *m)
{
	m->key_pos = pos_of(val);
	if (is_null(val))
		return VF_OK;
	char what[128];
	snprintf(what, sizeof(what), "key of %s", where);
	return get_recipient(c, val, what, &m->key);
}

static enum vf_code parse_machine(struct ctx *c, const yaml_node_t *val,
				  struct vf_spec_machine *m)
{
	if (is_null(val))
		return VF_OK;
	char where[96];
	snprintf(where, sizeof(where), "machine '%s'", m->name);
	struct fields fl = {.names = machine_keys, .n = M_N};
	enum vf_code rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	if (rc == VF_OK && fl.val[M_KEY])
		rc = machine_key(c, fl.val[M_KEY], where, m);
	char what[128];
	snprintf(what, sizeof(what), "generators of %s", where);
	struct index uses = {0};
	if (rc == VF_OK && fl.val[M_GENERATORS])
		rc = get_generator_list(c, fl.val[M_GENERATORS], what, &m->generators,
					&m->n_generators, &uses);
	if (rc == VF_OK && fl.val[M_CREDENTIALS])
		rc = parse_credentials(c, fl.val[M_CREDENTIALS], &uses, m);
	index_free(&uses);
	return rc;
}

static enum vf_code parse_machines(struct ctx *c, const yaml_node_t *map)
{
	struct vf_spec *spec = c->spec;
	const struct section sec = {"machines", "machine", false, sizeof(*spec->machines),
				    offsetof(struct vf_spec_machine, pos)};
	void *items;
	enum vf_code rc = open_section(c, map, &sec, &items, &spec->n_machines, NULL);
	spec->machines = items;
	for (size_t i = 0; i < spec->n_machines && rc == VF_OK; i++)
		rc = parse_machine(c, node_at(c, map->data.mapping.pairs.start[i].value),
				   &spec->machines[i]);
	return rc;
}

/* ---- admins and the document ------------------------------------------- */

static enum vf_code parse_admins(struct ctx *c, const yaml_node_t *map)
{
	struct vf_spec *spec = c->spec;
	const struct section sec = {"admins", "admin", false, sizeof(*spec->admins),
				    offsetof(struct vf_spec_admin, pos)};
	void *items;
	enum vf_code rc = open_section(c, map, &sec, &items, &spec->n_admins, NULL);
	spec->admins = items;
	for (size_t i = 0; i < spec->n_admins && rc == VF_OK; i++) {
		struct vf_spec_admin *a = &spec->admins[i];
		char what[96];
		snprintf(what, sizeof(what), "admin '%s'", a->name);
		rc = get_recipient(c, node_at(c, map->data.mapping.pairs.start[i].value), what,
				   &a->recipient);
	}
	return rc;
}

static const char *const top_keys[] = {"admins", "machines", "generators"};
enum { T_ADMINS, T_MACHINES, T_GENERATORS, T_N };

static enum vf_code parse_root(struct ctx *c)
{
	const yaml_node_t *root = yaml_document_get_root_node(c->doc);
	if (!root || is_null(root))
		return vf_fail(c->err, VF_E_ARG,
			       "%s:1:1: empty spec (expected a mapping with admins, machines, "
			       "generators)",
			       c->path);
	struct fields fl = {.names = top_keys, .n = T_N};
	enum vf_code rc = want(c, root, YAML_MAPPING_NODE, "the spec");
	if (rc == VF_OK)
		rc = collect(c, root, &fl, "the spec");
	if (rc == VF_OK && fl.val[T_ADMINS])
		rc = parse_admins(c, fl.val[T_ADMINS]);
	if (rc == VF_OK && fl.val[T_GENERATORS])
		rc = parse_generators(c, fl.val[T_GENERATORS]);
	if (rc == VF_OK && fl.val[T_MACHINES])
		rc = parse_machines(c, fl.val[T_MACHINES]);
	return rc;
}

/* libyaml's reader errors carry a byte offset, not a mark. */
static void offset_to_mark(const unsigned char *buf, size_t len, size_t offset, size_t *line,
			   size_t *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if ((buf[i] & 0xc0) != 0x80) { /* count characters, not bytes */
			(*column)++;
		}
	}
}

static enum vf_code yaml_failure(struct ctx *c, const yaml_parser_t *p,
				 const unsigned char *buf, size_t len)
{
	if (p->error == YAML_MEMORY_ERROR)
		return nomem(c);
	size_t line = p->problem_mark.line + 1, column = p->problem_mark.column + 1;
	if (p->error == YAML_READER_ERROR)
		offset_to_mark(buf, len, p->problem_offset, &line, &column);
	char what[200];
	snprintf(what, sizeof(what), "%s%s%s", p->problem ? p->problem : "unknown problem",
		 p->context ? ", " : "", p->context ? p->context : "");
	return vf_fail(c->err, VF_E_ARG, "%s:%zu:%zu: YAML syntax error: %s (expected valid YAML)",
		       c->path, line, column, what);
}

static enum vf_code too_large(struct vf_error *err, const char *name)
{
	return vf_fail(err, VF_E_ARG, "%s: spec is larger than 1 MiB (expected at most %u bytes)",
		       name, MAX_SPEC_SIZE);
}

static enum vf_code not_regular(struct vf_error *err, const char *path)
{
	return vf_fail(err, VF_E_ARG, "%s: not a regular file (expected a spec file)", path);
}

/* Reads fd to the end into buf (MAX_SPEC_SIZE + 1 bytes), so that a file
 * grown since fstat is still caught by its size. */
static enum vf_code read_bounded(int fd, const char *path, unsigned char *buf, size_t *len,
				 struct vf_error *err)
{
	size_t n = 0;
	for (;;) {
		ssize_t got = read(fd, buf + n, MAX_SPEC_SIZE + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return vf_fail_errno(err, errno, "%s", path);
		n += (size_t)got;
		if (got == 0 || n > MAX_SPEC_SIZE)
			break;
	}
	if (n > MAX_SPEC_SIZE)
		return too_large(err, path);
	*len = n;
	return VF_OK;
}

/* The whole file, at most MAX_SPEC_SIZE bytes. The path may be a symlink
 * (users keep specs in repositories and link them), but what it names must
 * be a regular file: stat refuses devices before open can touch them,
 * O_NONBLOCK keeps a FIFO swapped in meanwhile from blocking the open, and
 * fstat on the descriptor is what decides. */
static enum vf_code read_spec(const char *path, unsigned char **out, size_t *len,
			      struct vf_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return vf_fail_errno(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return not_regular(err, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return vf_fail_errno(err, errno, "%s", path);
	unsigned char *buf = NULL;
	enum vf_code rc = VF_OK;
	if (fstat(fd, &st) != 0)
		rc = vf_fail_errno(err, errno, "%s", path);
	else if (!S_ISREG(st.st_mode))
		rc = not_regular(err, path);
	else if (st.st_size > (off_t)MAX_SPEC_SIZE)
		rc = too_large(err, path);
	else if (!(buf = malloc(MAX_SPEC_SIZE + 1)))
		rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	else
		rc = read_bounded(fd, path, buf, len, err);
	close(fd);
	if (rc != VF_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	return VF_OK;
}

/* ---- limits checked on libyaml's events -------------------------------
 * Before any document is built, the event parser runs over the text and
 * stops at the first event past a limit: its scanner reads only a little
 * ahead of the events, so a hostile spec costs no more than its part
 * within the limits. Syntax errors are reported here as the document
 * parser would report them. */

struct scan_anchor {
	char *name;
	size_t nodes; /* what an alias to it adds; 0 while it is still open */
};

struct scan {
	struct ctx *c;
	unsigned depth;
	size_t nodes[MAX_DEPTH + 1];  /* per open collection: its nodes so far */
	size_t anchor[MAX_DEPTH + 1]; /* per open collection: its anchor, or SIZE_MAX */
	struct scan_anchor anchors[MAX_ANCHORS];
	size_t n_anchors;
	size_t total; /* nodes of the stream, aliases counted as what they stand for */
};

static enum vf_code scan_fail(struct scan *s, const yaml_event_t *ev, const char *what)
{
	return fail_line_col(s->c, ev->start_mark.line + 1, ev->start_mark.column + 1, "%s", what);
}

/* The latest anchor named name (YAML lets a name be defined again). */
static size_t scan_find(const struct scan *s, const yaml_char_t *name)
{
	for (size_t i = s->n_anchors; i-- > 0;)
		if (strcmp(s->anchors[i].name, (const char *)name) == 0)
			return i;
	return SIZE_MAX;
}

static enum vf_code scan_anchor(struct scan *s, const yaml_event_t *ev, const yaml_char_t *name,
				size_t nodes, size_t *index)
{
	*index = SIZE_MAX;
	if (!name)
		return VF_OK;
	if (s->n_anchors == MAX_ANCHORS)
		return scan_fail(s, ev, "more than " STR(MAX_ANCHORS) " anchors (expected at most "
					STR(MAX_ANCHORS) ")");
	if (!(s->anchors[s->n_anchors].name = strdup((const char *)name)))
		return nomem(s->c);
	s->anchors[s->n_anchors].nodes = nodes;
	*index = s->n_anchors++;
	return VF_OK;
}

/* A node of n nodes (aliases expanded) in the open collection. */
static enum vf_code scan_add(struct scan *s, const yaml_event_t *ev, size_t n)
{
	if (s->depth > 0)
		s->nodes[s->depth] += n;
	s->total += n;
	if (s->total > MAX_NODES)
		return scan_fail(s, ev, "aliases expand the spec beyond " STR(MAX_NODES)
					" nodes (expected fewer or smaller aliased nodes)");
	return VF_OK;
}

static enum vf_code scan_alias(struct scan *s, const yaml_event_t *ev)
{
	size_t i = scan_find(s, ev->data.alias.anchor);
	if (i == SIZE_MAX)
		return VF_OK; /* the document parser reports it */
	if (s->anchors[i].nodes == 0)
		return scan_fail(s, ev, "alias to a node that contains it (expected an alias "
					"of a complete node)");
	return scan_add(s, ev, s->anchors[i].nodes);
}

static enum vf_code scan_open(struct scan *s, const yaml_event_t *ev, const yaml_char_t *anchor)
{
	if (s->depth == MAX_DEPTH)
		return scan_fail(s, ev,
				 "nesting deeper than " STR(MAX_DEPTH) " levels (expected at most "
				 STR(MAX_DEPTH) " nested mappings and sequences)");
	enum vf_code rc = scan_add(s, ev, 1);
	if (rc != VF_OK)
		return rc;
	s->depth++;
	s->nodes[s->depth] = 1;
	return scan_anchor(s, ev, anchor, 0, &s->anchor[s->depth]);
}

static void scan_close(struct scan *s)
{
	size_t n = s->nodes[s->depth];
	if (s->anchor[s->depth] != SIZE_MAX)
		s->anchors[s->anchor[s->depth]].nodes = n;
	s->depth--;
	if (s->depth > 0)
		s->nodes[s->depth] += n - 1; /* its start was counted already */
}

static void scan_forget_anchors(struct scan *s)
{
	for (size_t i = 0; i < s->n_anchors; i++)
		free(s->anchors[i].name);
	s->n_anchors = 0;
}

static enum vf_code scan_event(struct scan *s, const yaml_event_t *ev)
{
	size_t ignored;
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		scan_forget_anchors(s); /* anchors are per document */
		return VF_OK;
	case YAML_SCALAR_EVENT: {
		enum vf_code rc = scan_add(s, ev, 1);
		return rc == VF_OK ? scan_anchor(s, ev, ev->data.scalar.anchor, 1, &ignored) : rc;
	}
	case YAML_ALIAS_EVENT: return scan_alias(s, ev);
	case YAML_SEQUENCE_START_EVENT: return scan_open(s, ev, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT: return scan_open(s, ev, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (s->depth > 0)
			scan_close(s);
		return VF_OK;
	default: return VF_OK;
	}
}

static enum vf_code check_limits(struct ctx *c, const unsigned char *buf, size_t len)
{
	struct scan *s = calloc(1, sizeof(*s));
	yaml_parser_t parser;
	if (!s || !yaml_parser_initialize(&parser)) {
		free(s);
		return nomem(c);
	}
	s->c = c;
	yaml_parser_set_input_string(&parser, buf, len);
	enum vf_code rc = VF_OK;
	for (bool done = false; rc == VF_OK && !done;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = yaml_failure(c, &parser, buf, len);
			break;
		}
		rc = scan_event(s, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	scan_forget_anchors(s);
	free(s);
	return rc;
}

/* One document only: a second one would be silently ignored otherwise. */
static enum vf_code parse_document(struct ctx *c, yaml_parser_t *parser,
				   const unsigned char *buf, size_t len)
{
	yaml_document_t doc, extra;
	if (!yaml_parser_load(parser, &doc))
		return yaml_failure(c, parser, buf, len);
	c->doc = &doc;
	enum vf_code rc = parse_root(c);
	yaml_document_delete(&doc);
	c->doc = NULL;
	if (rc != VF_OK)
		return rc;
	if (!yaml_parser_load(parser, &extra))
		return yaml_failure(c, parser, buf, len);
	const yaml_node_t *root = yaml_document_get_root_node(&extra);
	if (root)
		rc = fail_at(c, root, "a second YAML document (expected a single document)");
	yaml_document_delete(&extra);
	return rc;
}

enum vf_code vf_spec_parse(const char *name, const char *text, size_t len, struct vf_spec *spec,
			   struct vf_error *err)
{
	memset(spec, 0, sizeof(*spec));
	if (len > MAX_SPEC_SIZE)
		return too_large(err, name);
	const unsigned char *buf = len ? (const unsigned char *)text : (const unsigned char *)"";
	struct ctx c = {.path = name, .spec = spec, .err = err};
	enum vf_code rc = check_limits(&c, buf, len);
	if (rc != VF_OK)
		return rc;
	yaml_parser_t parser;
	if (!(spec->path = strdup(name)) || !yaml_parser_initialize(&parser)) {
		vf_spec_free(spec);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&parser, buf, len);
	rc = parse_document(&c, &parser, buf, len);
	yaml_parser_delete(&parser);
	for (size_t i = 0; c.files && i < spec->n_generators; i++)
		index_free(&c.files[i]);
	free(c.files);
	index_free(&c.generators);
	if (rc != VF_OK)
		vf_spec_free(spec);
	return rc;
}

enum vf_code vf_spec_load(const char *path, struct vf_spec *spec, struct vf_error *err)
{
	memset(spec, 0, sizeof(*spec));
	unsigned char *buf = NULL;
	size_t len = 0;
	enum vf_code rc = read_spec(path, &buf, &len, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_spec_parse(path, (const char *)buf, len, spec, err);
	free(buf);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void free_generator(struct vf_spec_generator *g)
{
	free(g->name);
	free(g->script);
	free_names(g->dependencies, g->n_dependencies);
	for (size_t i = 0; i < g->n_prompts; i++) {
		free(g->prompts[i].name);
		free(g->prompts[i].description);
	}
	free(g->prompts);
	for (size_t i = 0; i < g->n_files; i++) {
		free(g->files[i].name);
		free(g->files[i].owner);
		free(g->files[i].group);
		free(g->files[i].alphabet);
	}
	free(g->files);
}

static void free_machine(struct vf_spec_machine *m)
{
	free(m->name);
	free(m->key);
	free_names(m->generators, m->n_generators);
	for (size_t i = 0; i < m->n_credentials; i++) {
		free(m->credentials[i].name);
		free(m->credentials[i].generator);
		free(m->credentials[i].file);
	}
	free(m->credentials);
}

void vf_spec_free(struct vf_spec *spec)
{
	if (!spec)
		return;
	for (size_t i = 0; i < spec->n_admins; i++) {
		free(spec->admins[i].name);
		free(spec->admins[i].recipient);
	}
	free(spec->admins);
	for (size_t i = 0; i < spec->n_machines; i++)
		free_machine(&spec->machines[i]);
	free(spec->machines);
	for (size_t i = 0; i < spec->n_generators; i++)
		free_generator(&spec->generators[i]);
	free(spec->generators);
	free(spec->path);
	memset(spec, 0, sizeof(*spec));
}

const struct vf_spec_generator *vf_spec_generator(const struct vf_spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->n_generators; i++)
		if (spec->generators[i].name && strcmp(spec->generators[i].name, name) == 0)
			return &spec->generators[i];
	return NULL;
}

const struct vf_spec_machine *vf_spec_machine(const struct vf_spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->n_machines; i++)
		if (spec->machines[i].name && strcmp(spec->machines[i].name, name) == 0)
			return &spec->machines[i];
	return NULL;
}
