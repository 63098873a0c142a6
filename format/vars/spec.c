/* The vars spec: YAML read with libyaml's document API into struct
 * vf_spec, with every check spec.h lists. Errors point at the offending
 * node: "FILE:LINE:COLUMN: what is wrong (what is expected)". A first
 * pass over libyaml's events enforces the limits (nesting, anchors,
 * aliases) before the document is built; the size is checked before that.
 *
 * Sections are read in a fixed order, not document order: admins, then
 * generators (whose names are all known before any body is read, so that
 * dependencies can be checked where they are written), then machines
 * (which refer to generators and their files).
 *
 * This file reads the document's sections; reading the file and the
 * limits are in spec_yaml.c, the checks across the document in
 * spec_check.c, the generator hash in spec_hash.c (spec_internal.h). */
#include "vars/spec_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "age/keys.h"

/* ---- messages ---------------------------------------------------------- */

struct shown spec_show_n(const char *s, size_t len)
{
	struct shown out;
	size_t n = len < SHOW_MAX ? len : SHOW_MAX;
	for (size_t i = 0; i < n; i++)
		out.s[i] = (s[i] >= 0x20 && s[i] <= 0x7e) ? s[i] : '?';
	strcpy(out.s + n, len > SHOW_MAX ? "..." : "");
	return out;
}

struct shown spec_show(const char *s)
{
	return spec_show_n(s, strlen(s));
}

__attribute__((format(printf, 4, 0))) static enum vf_code
vfail_at(struct ctx *c, size_t line, size_t column, const char *fmt, va_list ap)
{
	char what[sizeof(c->err->msg)];
	vsnprintf(what, sizeof(what), fmt, ap);
	return vf_fail(c->err, VF_E_ARG, "%s:%zu:%zu: %s", c->path, line, column, what);
}

/* An error at a line and column (1-based). */
__attribute__((format(printf, 4, 5))) enum vf_code
spec_fail_line_col(struct ctx *c, size_t line, size_t column, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum vf_code rc = vfail_at(c, line, column, fmt, ap);
	va_end(ap);
	return rc;
}

/* An error at a node (its first character). */
__attribute__((format(printf, 3, 4))) enum vf_code
spec_fail_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum vf_code rc =
		vfail_at(c, n->start_mark.line + 1, n->start_mark.column + 1, fmt, ap);
	va_end(ap);
	return rc;
}

/* An error at a position already recorded in the spec. */
__attribute__((format(printf, 3, 4))) enum vf_code
spec_fail_pos(struct ctx *c, struct vf_pos p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum vf_code rc = vfail_at(c, p.line, p.column, fmt, ap);
	va_end(ap);
	return rc;
}

enum vf_code spec_nomem(struct ctx *c)
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

const char *spec_text(const yaml_node_t *n)
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
bool spec_is_null(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (n->data.scalar.length == 0 || is_text(n, "~") || is_text(n, "null") ||
		is_text(n, "Null") || is_text(n, "NULL"));
}

const char *spec_type_name(const yaml_node_t *n)
{
	if (spec_is_null(n))
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
	if (n->type == type && !spec_is_null(n))
		return VF_OK;
	const char *expected = type == YAML_MAPPING_NODE	 ? "a mapping"
			       : type == YAML_SEQUENCE_NODE ? "a sequence"
							    : "a string";
	return spec_fail_at(c, n, "%s is %s (expected %s)", what, spec_type_name(n), expected);
}

/* A scalar's text as a new string. YAML escapes can put a NUL inside a
 * scalar, which a C string would silently cut: refused. */
enum vf_code spec_get_string(struct ctx *c, const yaml_node_t *n, const char *what, char **out)
{
	enum vf_code rc = want(c, n, YAML_SCALAR_NODE, what);
	if (rc != VF_OK)
		return rc;
	if (strlen(spec_text(n)) != n->data.scalar.length)
		return spec_fail_at(c, n, "%s contains a NUL byte (expected text)", what);
	char *s = strdup(spec_text(n));
	if (!s)
		return spec_nomem(c);
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
			return spec_fail_at(c, k, "key in %s is %s (expected one of: %s)", where,
					    spec_type_name(k), expected);
		size_t i = choose(k, f->names, f->n);
		if (i == f->n)
			return spec_fail_at(c, k, "unknown key '%s' in %s (expected one of: %s)",
					    spec_show_n(spec_text(k), k->data.scalar.length).s, where, expected);
		if (f->key[i])
			return spec_fail_at(c, k, "duplicate key '%s' in %s (expected each key once)",
					    f->names[i], where);
		f->key[i] = k;
		f->val[i] = node_at(c, p->value);
	}
	return VF_OK;
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
		if (!(*(char **)(void *)elem = strdup(spec_text(k))))
			return spec_nomem(c);
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
	if (spec_is_null(map))
		return VF_OK;
	enum vf_code rc = want(c, map, YAML_MAPPING_NODE, s->title);
	for (size_t i = 0; rc == VF_OK && i < n_pairs(map); i++)
		rc = spec_check_name(c, node_at(c, map->data.mapping.pairs.start[i].key), s->what,
				     s->credential);
	if (rc != VF_OK || n_pairs(map) == 0)
		return rc;
	if (!(*items = calloc(n_pairs(map), s->size)))
		return spec_nomem(c);
	*n = n_pairs(map);
	rc = section_names(c, map, s, *items);
	if (rc == VF_OK)
		rc = spec_index_build(c, *items, *n, s->size, &local);
	size_t rep = rc == VF_OK ? spec_index_repeat(&local) : SIZE_MAX;
	if (rep != SIZE_MAX) {
		const yaml_node_t *k = node_at(c, map->data.mapping.pairs.start[rep].key);
		rc = spec_fail_at(c, k, "duplicate %s '%s' (expected each name once)", s->what,
				  spec_show(spec_text(k)).s);
	}
	if (rc == VF_OK && ix)
		*ix = local;
	else
		spec_index_free(&local);
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
	else if (n->type == YAML_SCALAR_NODE && !spec_is_null(n))
		return spec_fail_at(c, n, "%s is '%s' (expected true or false)", what,
				    spec_show_n(spec_text(n), n->data.scalar.length).s);
	else
		return spec_fail_at(c, n, "%s is %s (expected true or false)", what, spec_type_name(n));
	return VF_OK;
}

/* One of names; *index is its position. */
static enum vf_code get_choice(struct ctx *c, const yaml_node_t *n, const char *const *names,
			       size_t count, const char *field, const char *where, size_t *index)
{
	char expected[160];
	join(expected, sizeof(expected), names, count);
	if (n->type != YAML_SCALAR_NODE || spec_is_null(n))
		return spec_fail_at(c, n, "%s of %s is %s (expected one of: %s)", field, where,
				    spec_type_name(n), expected);
	*index = choose(n, names, count);
	if (*index == count)
		return spec_fail_at(c, n, "unknown %s '%s' in %s (expected one of: %s)", field,
				    spec_show_n(spec_text(n), n->data.scalar.length).s, where, expected);
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
		return spec_fail_at(c, n, "bad mode '%s' in %s (expected octal digits such as 0400)",
				    n->type == YAML_SCALAR_NODE ? spec_show(spec_text(n)).s : "?", where);
	if (v > 0777)
		return spec_fail_at(c, n,
				    "mode '%s' in %s is above 0777: setuid, setgid and sticky bits are "
				    "refused (expected at most 0777)",
				    spec_show(spec_text(n)).s, where);
	*mode = (unsigned)v;
	return VF_OK;
}

static enum vf_code get_length(struct ctx *c, const yaml_node_t *n, const char *where,
			       size_t max, const char *unit, size_t *out)
{
	size_t v;
	if (!get_digits(n, 10, max, &v))
		return spec_fail_at(c, n, "length '%s' in %s is not a number (expected 1..%zu %s)",
				    n->type == YAML_SCALAR_NODE ? spec_show(spec_text(n)).s : "?", where, max,
				    unit);
	if (v < 1 || v > max)
		return spec_fail_at(c, n, "length %s in %s is out of range (expected 1..%zu %s)",
				    spec_show(spec_text(n)).s, where, max, unit);
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
	enum vf_code rc = spec_get_string(c, n, what, out);
	if (rc != VF_OK)
		return rc;
	const char *problem = spec_name_problem(*out, strlen(*out), ACCOUNT_REFUSED);
	if (problem)
		return spec_fail_at(c, n, "bad %s '%s' in %s: %s (expected a user or group name)",
				    field, spec_show(*out).s, where, problem);
	return VF_OK;
}

/* A recipient, checked by the key parser (the only judge of what a
 * recipient is) and kept as text; *post_quantum: whether it is a hybrid
 * post-quantum one (for age's mixing rule, spec_check_mixing). */
static enum vf_code get_recipient(struct ctx *c, const yaml_node_t *n, const char *what,
				  char **out, bool *post_quantum)
{
	enum vf_code rc = spec_get_string(c, n, what, out);
	if (rc != VF_OK)
		return rc;
	struct vf_recipient *r = NULL;
	struct vf_error e = {0};
	rc = vf_recipient_parse(*out, &r, &e);
	if (rc == VF_OK) {
		*post_quantum = r->ops->post_quantum;
		vf_recipient_free(r);
		return VF_OK;
	}
	if (rc == VF_E_NOMEM)
		return spec_nomem(c);
	bool has_expected = strstr(e.msg, "(expected") != NULL;
	return spec_fail_at(c, n, "%s is not a valid recipient: %s%s", what, e.msg,
			    has_expected ? "" : " (expected an age1..., age1pq1..., ssh-ed25519 or ssh-rsa recipient)");
}

/* ---- generator names --------------------------------------------------- */

size_t spec_find_generator(const struct ctx *c, const char *name)
{
	return spec_index_find(&c->generators, name);
}

/* A sequence of generator names (null: none), each defined and listed
 * once. what names the list in messages. The list's index is kept in ix
 * unless ix is NULL. */
static enum vf_code get_generator_list(struct ctx *c, const yaml_node_t *seq, const char *what,
				       char ***out, size_t *n_out, struct index *ix)
{
	if (spec_is_null(seq))
		return VF_OK;
	enum vf_code rc = want(c, seq, YAML_SEQUENCE_NODE, what);
	if (rc != VF_OK || n_items(seq) == 0)
		return rc;
	if (!(*out = calloc(n_items(seq), sizeof(**out))))
		return spec_nomem(c);
	*n_out = n_items(seq);
	for (size_t i = 0; i < *n_out && rc == VF_OK; i++) {
		const yaml_node_t *item = node_at(c, seq->data.sequence.items.start[i]);
		rc = spec_check_name(c, item, "generator", false);
		if (rc == VF_OK && spec_find_generator(c, spec_text(item)) == SIZE_MAX)
			rc = spec_fail_at(c, item,
					  "%s names unknown generator '%s' (expected a generator "
					  "defined under generators)",
					  what, spec_show(spec_text(item)).s);
		if (rc == VF_OK)
			rc = spec_get_string(c, item, what, &(*out)[i]);
	}
	struct index local = {0};
	if (rc == VF_OK)
		rc = spec_index_build(c, *out, *n_out, sizeof(**out), &local);
	size_t rep = rc == VF_OK ? spec_index_repeat(&local) : SIZE_MAX;
	if (rep != SIZE_MAX)
		rc = spec_fail_at(c, node_at(c, seq->data.sequence.items.start[rep]),
				  "%s lists '%s' twice (expected each once)", what, spec_show((*out)[rep]).s);
	if (rc == VF_OK && ix)
		*ix = local;
	else
		spec_index_free(&local);
	return rc;
}

/* ---- files ------------------------------------------------------------- */

static const char *const file_keys[] = {"secret", "mode",   "owner",    "group",
					"kind",	  "length", "encoding", "alphabet"};
enum { F_SECRET, F_MODE, F_OWNER, F_GROUP, F_KIND, F_LENGTH, F_ENCODING, F_ALPHABET, F_N };

static const char *const file_kinds[] = {"random", "password", "uuid"};
const char *const spec_encodings[] = {"base64", "base64url", "hex", "raw"};

/* What the files of one generator are read against. */
struct gen_info {
	const char *name;
	size_t index; /* in spec->generators */
	bool has_script;
	bool imported;
};

const char *spec_kind_name(enum vf_kind kind)
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
	return f->owner && f->group ? VF_OK : spec_nomem(c);
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
		return spec_fail_at(c, key, "'%s' given in %s, which has no kind (expected only with %s)",
				    spec_text(key), where, belongs);
	return spec_fail_at(c, key, "'%s' does not apply to kind %s in %s (expected only with %s)",
			    spec_text(key), spec_kind_name(f->kind), where, belongs);
}

static enum vf_code get_alphabet(struct ctx *c, const yaml_node_t *n, const char *where,
				 char **out)
{
	char what[128];
	snprintf(what, sizeof(what), "alphabet of %s", where);
	enum vf_code rc = spec_get_string(c, n, what, out);
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
			return spec_fail_at(c, n, "%s has a character that is not printable ASCII "
					     "(expected distinct printable ASCII characters)",
				       what);
		if (seen[b])
			return spec_fail_at(c, n, "%s repeats '%c' (expected distinct characters)", what,
					    b);
		seen[b] = true;
	}
	if (len < 2)
		return spec_fail_at(c, n, "%s is too short (expected at least 2 distinct characters)", what);
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
			return spec_fail_at(c, fl->key[F_KIND],
					    "%s has kind %s but generator '%s' has a script (expected "
					    "either a script or built-in kinds)",
					    where, file_kinds[k], spec_show(gi->name).s);
		if (gi->imported)
			return spec_fail_at(c, fl->key[F_KIND],
					    "%s has kind %s but generator '%s' was imported (expected "
					    "no kind: imported values are not made)",
					    where, file_kinds[k], spec_show(gi->name).s);
		f->kind = (enum vf_kind)(VF_KIND_RANDOM + (int)k);
	}
	if (f->kind == VF_KIND_RANDOM || f->kind == VF_KIND_PASSWORD)
		f->length = f->kind == VF_KIND_RANDOM ? RANDOM_DEFAULT : PASSWORD_DEFAULT;
	if (f->kind == VF_KIND_PASSWORD && !(f->alphabet = strdup(DEFAULT_ALPHABET)))
		return spec_nomem(c);
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
		rc = get_choice(c, fl->val[F_ENCODING], spec_encodings, 4, "encoding", where, &e);
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
	snprintf(where, sizeof(where), "file '%s'", spec_show(spec_text(key)).s);
	enum vf_code rc = file_defaults(c, f, true);
	if (rc != VF_OK || spec_is_null(val))
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
	enum vf_code rc = spec_check_name(c, key, "file", false);
	if (rc != VF_OK)
		return rc;
	size_t i = is_text(key, pk->secret_file) ? 0 : is_text(key, pk->public_file) ? 1 : 2;
	if (i == 2)
		return spec_fail_at(c, key, "%s generator '%s' has no file '%s' (expected %s or %s)",
				    pk->name, spec_show(w->gi->name).s, spec_show(spec_text(key)).s, pk->secret_file,
				    pk->public_file);
	if (w->named[i])
		return spec_fail_at(c, key, "duplicate file '%s' (expected each name once)", spec_text(key));
	w->named[i] = true;
	struct vf_spec_file *f = &g->files[i];
	f->pos = pos_of(key);
	if (spec_is_null(val))
		return VF_OK;
	char where[96];
	snprintf(where, sizeof(where), "file '%s'", spec_text(key));
	struct fields fl = {.names = file_keys, .n = F_N};
	rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	for (size_t k = 0; k < F_N && rc == VF_OK; k++)
		if (fl.key[k] && k != F_MODE && k != F_OWNER && k != F_GROUP)
			rc = spec_fail_at(c, fl.key[k],
					  "'%s' cannot be set in %s of %s generator '%s' (expected only "
					  "mode, owner, group)",
					  file_keys[k], where, pk->name, spec_show(w->gi->name).s);
	if (rc == VF_OK)
		rc = file_install(c, &fl, where, f);
	return rc;
}

static enum vf_code pair_files(struct ctx *c, const struct gen_info *gi, const yaml_node_t *map,
			       struct vf_spec_generator *g)
{
	const struct pair_kind *pk = &pair_kinds[g->kind == VF_KIND_AGE_KEYPAIR ? 0 : 1];
	if (!(g->files = calloc(2, sizeof(*g->files))))
		return spec_nomem(c);
	g->n_files = 2;
	const char *names[2] = {pk->secret_file, pk->public_file};
	enum vf_code rc = VF_OK;
	for (size_t i = 0; i < 2 && rc == VF_OK; i++) {
		struct vf_spec_file *f = &g->files[i];
		f->kind = g->kind;
		f->pos = g->pos; /* until the spec names the file */
		rc = (f->name = strdup(names[i])) ? file_defaults(c, f, i == 0) : spec_nomem(c);
	}
	if (rc == VF_OK)
		rc = spec_index_build(c, g->files, 2, sizeof(*g->files), &c->files[gi->index]);
	if (rc != VF_OK || !map || spec_is_null(map))
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
const char *const spec_prompt_types[] = {"hidden", "line", "multiline"};

static enum vf_code parse_prompt(struct ctx *c, const yaml_node_t *key, const yaml_node_t *val,
				 struct vf_spec_prompt *pr)
{
	char where[96];
	snprintf(where, sizeof(where), "prompt '%s'", spec_text(key));
	if (spec_is_null(val))
		return VF_OK;
	struct fields fl = {.names = prompt_keys, .n = 2};
	enum vf_code rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	if (rc == VF_OK && fl.val[0]) {
		size_t t = 0;
		rc = get_choice(c, fl.val[0], spec_prompt_types, 3, "type", where, &t);
		pr->type = (enum vf_prompt_type)t;
	}
	if (rc == VF_OK && fl.val[1] && !spec_is_null(fl.val[1])) {
		char what[128];
		snprintf(what, sizeof(what), "description of %s", where);
		rc = spec_get_string(c, fl.val[1], what, &pr->description);
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

/* ---- generators -------------------------------------------------------- */

static const char *const generator_keys[] = {"kind",    "script", "share",
					     "dependencies", "prompts", "files",
					     "timeout", "imported", "pq"};
enum { G_KIND, G_SCRIPT, G_SHARE, G_DEPENDENCIES, G_PROMPTS, G_FILES, G_TIMEOUT, G_IMPORTED,
       G_PQ, G_N };
_Static_assert(G_N <= MAX_FIELDS, "struct fields holds every key of a generator");

/* Index i is enum vf_imported i + 1. */
static const char *const imported_names[] = {"clan", "sops"};

const char *vf_imported_name(enum vf_imported imported)
{
	return imported == VF_IMPORTED_NONE ? "" : imported_names[imported - 1];
}

/* imported: where the values came from. Such a generator makes nothing:
 * no script and no kind, whose values vargen would make instead. */
static enum vf_code generator_imported(struct ctx *c, const struct fields *fl, const char *where,
				       struct vf_spec_generator *g)
{
	if (!fl->val[G_IMPORTED])
		return VF_OK;
	size_t i;
	enum vf_code rc = get_choice(c, fl->val[G_IMPORTED], imported_names, 2, "imported", where,
				     &i);
	if (rc != VF_OK)
		return rc;
	g->imported = (enum vf_imported)(i + 1);
	for (size_t k = G_KIND; k <= G_SCRIPT; k++)
		if (fl->key[k])
			return spec_fail_at(c, fl->key[k],
					    "%s was imported and has a %s (expected either imported "
					    "values or a %s that makes them)",
					    where, generator_keys[k], generator_keys[k]);
	return VF_OK;
}

static enum vf_code generator_kind(struct ctx *c, const yaml_node_t *n, const char *where,
				   struct vf_spec_generator *g)
{
	if (n->type == YAML_SCALAR_NODE && choose(n, file_kinds, 3) < 3)
		return spec_fail_at(c, n,
				    "kind %s is a file kind, not a generator kind (expected "
				    "age-keypair or wireguard here; file kinds go under files)",
				    spec_text(n));
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
		return spec_fail_at(c, fl->key[G_SCRIPT],
				    "%s has both kind %s and a script (expected one of them)", where,
				    spec_kind_name(g->kind));
	char what[128];
	snprintf(what, sizeof(what), "script of %s", where);
	if (rc == VF_OK && fl->val[G_SCRIPT])
		rc = spec_get_string(c, fl->val[G_SCRIPT], what, &g->script);
	if (rc == VF_OK && g->script && g->script[0] == '\0')
		return spec_fail_at(c, fl->val[G_SCRIPT], "%s is empty (expected shell commands)", what);
	snprintf(what, sizeof(what), "share of %s", where);
	if (rc == VF_OK && fl->val[G_SHARE])
		rc = get_bool(c, fl->val[G_SHARE], what, &g->share);
	return rc;
}

/* pq: an age-keypair generator's pair is a hybrid post-quantum one
 * (AGE-SECRET-KEY-PQ-1..., age1pq1...), as age-keygen -pq makes. Only
 * that kind has a key whose kind it could change. */
static enum vf_code generator_pq(struct ctx *c, const struct fields *fl, const char *where,
				 struct vf_spec_generator *g)
{
	if (!fl->key[G_PQ])
		return VF_OK;
	if (g->kind != VF_KIND_AGE_KEYPAIR)
		return spec_fail_at(c, fl->key[G_PQ],
				    "pq given in %s, which is not kind age-keypair (expected pq only "
				    "with kind: age-keypair, whose key it makes post-quantum)",
				    where);
	char what[128];
	snprintf(what, sizeof(what), "pq of %s", where);
	return get_bool(c, fl->val[G_PQ], what, &g->pq);
}

/* dependencies and prompts: inputs, which only a script can use. */
static enum vf_code generator_inputs(struct ctx *c, const struct fields *fl, const char *where,
				     struct vf_spec_generator *g)
{
	for (size_t k = G_DEPENDENCIES; k <= G_PROMPTS; k++)
		if (fl->key[k] && !g->script)
			return spec_fail_at(c, fl->key[k],
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
		return spec_fail_at(c, fl->key[G_TIMEOUT],
				    "timeout given in %s, which has no script (expected timeout only "
				    "with a script, which it limits)",
				    where);
	size_t v;
	if (n->type != YAML_SCALAR_NODE || spec_is_null(n))
		return spec_fail_at(c, n, "timeout of %s is %s (expected 1..%u seconds)", where,
				    spec_type_name(n), TIMEOUT_MAX);
	if (!get_digits(n, 10, TIMEOUT_MAX, &v))
		return spec_fail_at(c, n, "timeout '%s' of %s is not a number (expected 1..%u seconds)",
				    spec_show_n(spec_text(n), n->data.scalar.length).s, where, TIMEOUT_MAX);
	if (v < 1 || v > TIMEOUT_MAX)
		return spec_fail_at(c, n, "timeout %s of %s is out of range (expected 1..%u seconds)",
				    spec_show(spec_text(n)).s, where, TIMEOUT_MAX);
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


static enum vf_code parse_generator(struct ctx *c, const yaml_node_t *key, const yaml_node_t *val,
				    struct vf_spec_generator *g)
{
	char where[96];
	snprintf(where, sizeof(where), "generator '%s'", spec_text(key));
	struct fields fl = {.names = generator_keys, .n = G_N};
	enum vf_code rc = want(c, val, YAML_MAPPING_NODE, where);
	if (rc == VF_OK)
		rc = collect(c, val, &fl, where);
	if (rc == VF_OK)
		rc = generator_head(c, &fl, where, g);
	if (rc == VF_OK)
		rc = generator_pq(c, &fl, where, g);
	if (rc == VF_OK)
		rc = generator_inputs(c, &fl, where, g);
	if (rc == VF_OK)
		rc = generator_timeout(c, &fl, where, g);
	if (rc == VF_OK)
		rc = generator_imported(c, &fl, where, g);
	struct gen_info gi = {g->name, (size_t)(g - c->spec->generators), g->script != NULL,
			      g->imported != VF_IMPORTED_NONE};
	if (rc == VF_OK && g->kind != VF_KIND_SCRIPT)
		return pair_files(c, &gi, fl.val[G_FILES], g);
	if (rc == VF_OK)
		rc = plain_files(c, &gi, fl.val[G_FILES], g);
	if (rc == VF_OK)
		rc = spec_check_sources(c, where, g);
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
		return spec_nomem(c);
	for (size_t i = 0; i < spec->n_generators && rc == VF_OK; i++) {
		yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
		rc = parse_generator(c, node_at(c, p->key), node_at(c, p->value),
				     &spec->generators[i]);
		if (rc == VF_OK)
			rc = spec_hash_generator(c, &spec->generators[i]);
	}
	return rc == VF_OK ? spec_check_cycles(c) : rc;
}

/* ---- machines ---------------------------------------------------------- */

static const char *const machine_keys[] = {"key", "generators", "credentials"};
enum { M_KEY, M_GENERATORS, M_CREDENTIALS, M_N };


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
		rc = spec_credential_target(c, m, uses, node_at(c, p->value), &m->credentials[i]);
	}
	return rc;
}

/* The key may be left empty until it is generated: key stays NULL but
 * key_pos still says where the value goes (just after "key:"). */
static enum vf_code machine_key(struct ctx *c, const yaml_node_t *val, const char *where,
				struct vf_spec_machine *m)
{
	m->key_pos = pos_of(val);
	if (spec_is_null(val))
		return VF_OK;
	char what[128];
	snprintf(what, sizeof(what), "key of %s", where);
	return get_recipient(c, val, what, &m->key, &m->key_post_quantum);
}

static enum vf_code parse_machine(struct ctx *c, const yaml_node_t *val,
				  struct vf_spec_machine *m)
{
	if (spec_is_null(val))
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
	spec_index_free(&uses);
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
	for (size_t i = 0; i < spec->n_machines && rc == VF_OK; i++) {
		/* The tools name the shared generators' owner "shared"
		 * (`varseal get shared GEN/FILE`): a machine of that name
		 * could not be told apart. */
		if (!strcmp(spec->machines[i].name, "shared"))
			rc = spec_fail_at(c, node_at(c, map->data.mapping.pairs.start[i].key),
					  "machine name 'shared' is reserved for the shared "
					  "generators (expected another name)");
		if (rc == VF_OK)
			rc = parse_machine(c, node_at(c, map->data.mapping.pairs.start[i].value),
					   &spec->machines[i]);
	}
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
				   &a->recipient, &a->post_quantum);
	}
	return rc;
}

static const char *const top_keys[] = {"admins", "machines", "generators"};
enum { T_ADMINS, T_MACHINES, T_GENERATORS, T_N };

enum vf_code spec_parse_root(struct ctx *c)
{
	const yaml_node_t *root = yaml_document_get_root_node(c->doc);
	if (!root || spec_is_null(root))
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
	if (rc == VF_OK)
		rc = spec_check_mixing(c);
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
	free(spec->machines_by_name);
	free(spec->generators_by_name);
	free(spec->path);
	memset(spec, 0, sizeof(*spec));
}

/* Each element of a spec section starts with its name (a char *). */
static const char *name_at(const void *base, size_t stride, size_t i)
{
	return *(char *const *)(const void *)((const char *)base + i * stride);
}

struct section_ref {
	const void *base;
	size_t stride;
};

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
	const struct section_ref *s = ctx;
	return strcmp(name_at(s->base, s->stride, *(const size_t *)a),
		      name_at(s->base, s->stride, *(const size_t *)b));
}

static size_t *sorted_by_name(const void *base, size_t n, size_t stride)
{
	size_t *order = malloc((n ? n : 1) * sizeof(*order));
	if (!order)
		return NULL;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	struct section_ref s = {base, stride};
	qsort_r(order, n, sizeof(*order), cmp_by_name, &s);
	return order;
}

void spec_index_names(struct vf_spec *spec)
{
	free(spec->machines_by_name);
	free(spec->generators_by_name);
	spec->machines_by_name =
		sorted_by_name(spec->machines, spec->n_machines, sizeof(*spec->machines));
	spec->generators_by_name =
		sorted_by_name(spec->generators, spec->n_generators, sizeof(*spec->generators));
}

/* The element named name, or SIZE_MAX: by binary search through order
 * where there is one, else linearly. Names are unique (the parser checks). */
static size_t find_by_name(const void *base, size_t n, size_t stride, const size_t *order,
			   const char *name)
{
	if (!order) {
		for (size_t i = 0; i < n; i++) {
			const char *have = name_at(base, stride, i);
			if (have && strcmp(have, name) == 0)
				return i;
		}
		return SIZE_MAX;
	}
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name_at(base, stride, order[mid]), name);
		if (c == 0)
			return order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

const struct vf_spec_generator *vf_spec_generator(const struct vf_spec *spec, const char *name)
{
	size_t i = find_by_name(spec->generators, spec->n_generators, sizeof(*spec->generators),
				spec->generators_by_name, name);
	return i == SIZE_MAX ? NULL : &spec->generators[i];
}

const struct vf_spec_machine *vf_spec_machine(const struct vf_spec *spec, const char *name)
{
	size_t i = find_by_name(spec->machines, spec->n_machines, sizeof(*spec->machines),
				spec->machines_by_name, name);
	return i == SIZE_MAX ? NULL : &spec->machines[i];
}

const struct vf_spec_file *vf_spec_file(const struct vf_spec_generator *g, const char *name)
{
	for (size_t i = 0; i < g->n_files; i++)
		if (g->files[i].name && strcmp(g->files[i].name, name) == 0)
			return &g->files[i];
	return NULL;
}
