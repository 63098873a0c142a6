/* vf_sops_parse: a file's document, its sops metadata, and its values in
 * document order with their paths, types and whether they are encrypted,
 * all without a key.
 *
 * Which values are encrypted follows sops's shouldBeEncrypted: each key of
 * a value's path is tested against the file's one rule (unencrypted_suffix,
 * encrypted_suffix, unencrypted_regex or encrypted_regex; a file with none
 * has unencrypted_suffix _unencrypted). A value that the rule wants
 * encrypted must be an ENC[] (or ""): a value in clear there is refused,
 * so that nobody can swap a ciphertext for a plaintext of their choosing. */
#include "sops/sops_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

enum vf_sops_format vf_sops_format_for_name(const char *name)
{
	if (ends_with(name, ".yaml") || ends_with(name, ".yml"))
		return VF_SOPS_YAML;
	if (ends_with(name, ".json"))
		return VF_SOPS_JSON;
	if (ends_with(name, ".env"))
		return VF_SOPS_DOTENV;
	if (ends_with(name, ".ini"))
		return VF_SOPS_INI;
	return VF_SOPS_BINARY;
}

const char *vf_sops_format_name(enum vf_sops_format format)
{
	switch (format) {
	case VF_SOPS_YAML: return "yaml";
	case VF_SOPS_JSON: return "json";
	case VF_SOPS_DOTENV: return "dotenv";
	case VF_SOPS_BINARY: return "binary";
	case VF_SOPS_INI: return "ini";
	default: return "auto";
	}
}

const char *vf_sops_type_name(enum vf_sops_type type)
{
	static const char *const names[] = {"str", "int", "float", "bool", "bytes", "time"};
	return (unsigned)type < sizeof(names) / sizeof(*names) ? names[type] : "?";
}

static void append(char *buf, size_t cap, size_t *n, const char *s)
{
	size_t len = strlen(s);
	if (*n < cap) {
		size_t room = cap - *n - 1, k = len < room ? len : room;
		memcpy(buf + *n, s, k);
		buf[*n + k] = 0;
	}
	*n += len;
}

size_t vf_sops_leaf_path(const struct vf_sops_leaf *leaf, char *buf, size_t cap)
{
	size_t n = 0;
	if (cap)
		buf[0] = 0;
	for (size_t i = 0; i < leaf->n_parts; i++) {
		const struct vf_sops_part *part = &leaf->parts[i];
		char index[32];
		snprintf(index, sizeof(index), "[%zu]", part->index);
		append(buf, cap, &n, part->key ? part->key : index);
		/* A list's items follow it without a ':' ("array[2]:"). */
		if (i + 1 == leaf->n_parts || leaf->parts[i + 1].key)
			append(buf, cap, &n, ":");
	}
	return n;
}

/* ---- the encryption rule ---- */

struct rule {
	const char *unencrypted_suffix, *encrypted_suffix;
	bool has_unencrypted_re, has_encrypted_re;
	regex_t unencrypted_re, encrypted_re;
	/* The pattern has '.' or a bracket: its meaning for a key with a newline
	 * or a non-ASCII byte differs between Go and POSIX. */
	bool unencrypted_re_wide, encrypted_re_wide;
};

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Go's RE2 syntax and POSIX extended expressions agree on a common core:
 * literals, . [] [^] [[:class:]] () | * + ? {m} {m,} {m,n} ^ $ and a
 * backslash before punctuation. What POSIX cannot express, or would read
 * another way, is refused rather than misread:
 * - a backslash before a letter or digit: Go's classes and assertions (\d
 *   \w \s \b \A \z \pL \Q \x41), back-references in POSIX;
 * - a backslash inside [...]: an escape for Go, a backslash for POSIX;
 * - [[:^alpha:]], [. .] and [= =];
 * - (?...): flags and special groups; non-greedy *? +? ?? {m,n}?;
 * - {,n}, counts over 1000 and a '{' that opens no repetition (Go takes it
 *   literally);
 * - a repetition with nothing before it (Go fails to compile it, and sops
 *   then matches nothing);
 * - non-ASCII bytes (Go matches characters, regexec bytes).
 * Both search anywhere in the key (regexp.Match, regexec without anchors).
 * Returns NULL when the pattern is in the core; *wide as for struct rule. */
static const char *beyond_posix(const char *re, bool *wide)
{
	size_t len = strlen(re);
	*wide = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)re[i], next = (unsigned char)re[i + 1];
		bool after_open = i == 0 || re[i - 1] == '(' || re[i - 1] == '|';
		if (c >= 0x80)
			return "a non-ASCII character";
		switch (c) {
		case '\\':
			if (next == 0 || is_alnum(next))
				return "a backslash before a letter or digit (\\d, \\w, \\b ...)";
			i++;
			break;
		case '.': *wide = true; break;
		case '(':
			if (next == '?')
				return "a (?...) group or flag";
			break;
		case '*':
		case '+':
		case '?':
			if (after_open)
				return "a repetition with nothing to repeat";
			if (next == '?')
				return "a non-greedy repetition";
			break;
		case '{': {
			size_t j = i + 1, m = 0, n = 0, digits = 0;
			while (re[j] >= '0' && re[j] <= '9' && digits < 5)
				m = m * 10 + (size_t)(re[j++] - '0'), digits++;
			if (digits == 0)
				return "a '{' that opens no repetition";
			if (re[j] == ',') {
				j++;
				digits = 0;
				while (re[j] >= '0' && re[j] <= '9' && digits < 5)
					n = n * 10 + (size_t)(re[j++] - '0'), digits++;
				if (digits == 0)
					n = m;
			} else {
				n = m;
			}
			if (re[j] != '}')
				return "a '{' that opens no repetition";
			if (m > 1000 || n > 1000 || after_open)
				return "a repetition count over 1000 or with nothing to repeat";
			if (re[j + 1] == '?')
				return "a non-greedy repetition";
			i = j;
			break;
		}
		case '[': {
			*wide = true;
			size_t j = i + 1;
			if (re[j] == '^')
				j++;
			if (re[j] == ']')
				j++;
			for (; re[j] && re[j] != ']'; j++) {
				if ((unsigned char)re[j] >= 0x80)
					return "a non-ASCII character";
				if (re[j] == '\\')
					return "a backslash inside [...]";
				if (re[j] == '[' && (re[j + 1] == '.' || re[j + 1] == '='))
					return "a [. .] or [= =] inside [...]";
				if (re[j] == '[' && re[j + 1] == ':') {
					if (re[j + 2] == '^')
						return "a negated class [:^name:]";
					const char *close = strstr(re + j + 2, ":]");
					if (!close)
						return "an unclosed [:name:]";
					j = (size_t)(close - re) + 1;
				}
			}
			if (!re[j])
				return "an unclosed [";
			i = j;
			break;
		}
		default: break;
		}
	}
	return NULL;
}

static enum vf_code compile_rule_re(struct sops_parser *p, const struct node *n, const char *what,
				    regex_t *re, bool *wide)
{
	const char *why = beyond_posix(n->text, wide);
	if (why)
		return sops_fail_at(p, n->line, n->column,
				    "sops:%s /%.80s/ has %s, which this reader cannot match as Go "
				    "does (expected a plain POSIX-compatible pattern)", what, n->text, why);
	if (regcomp(re, n->text, REG_EXTENDED | REG_NOSUB) != 0)
		return sops_fail_at(p, n->line, n->column,
				    "sops:%s /%.80s/ is not a valid regular expression", what, n->text);
	return VF_OK;
}

static bool wide_key(const char *key)
{
	for (; *key; key++)
		if (*key == '\n' || (unsigned char)*key >= 0x80)
			return true;
	return false;
}

/* regexp.Match of one key; a key whose match could differ is refused. */
static enum vf_code match(struct sops_parser *p, const struct node_entry *key, const regex_t *re,
			  bool wide, bool *out)
{
	if (wide && wide_key(key->key))
		return sops_fail_at(p, key->line, key->column,
				    "key with a newline or non-ASCII character under a sops regex "
				    "rule with '.' or [...] (Go and POSIX match it differently)");
	*out = regexec(re, key->key, 0, NULL, 0) == 0;
	return VF_OK;
}

/* sops's shouldBeEncrypted over the keys of a path. */
static enum vf_code should_encrypt(struct sops_parser *p, const struct rule *r,
				   const struct node_entry *const *keys, size_t n, bool *out)
{
	bool enc = true, m;
	if (r->unencrypted_suffix)
		for (size_t i = 0; i < n; i++)
			if (ends_with(keys[i]->key, r->unencrypted_suffix)) {
				enc = false;
				break;
			}
	if (r->encrypted_suffix) {
		enc = false;
		for (size_t i = 0; i < n && !enc; i++)
			enc = ends_with(keys[i]->key, r->encrypted_suffix);
	}
	enum vf_code rc = VF_OK;
	if (r->has_unencrypted_re)
		for (size_t i = 0; i < n && rc == VF_OK; i++) {
			rc = match(p, keys[i], &r->unencrypted_re, r->unencrypted_re_wide, &m);
			if (rc == VF_OK && m) {
				enc = false;
				break;
			}
		}
	if (r->has_encrypted_re) {
		enc = false;
		for (size_t i = 0; i < n && rc == VF_OK && !enc; i++)
			rc = match(p, keys[i], &r->encrypted_re, r->encrypted_re_wide, &enc);
	}
	*out = enc;
	return rc;
}

static void rule_free(struct rule *r)
{
	if (r->has_unencrypted_re)
		regfree(&r->unencrypted_re);
	if (r->has_encrypted_re)
		regfree(&r->encrypted_re);
}

/* ---- metadata ---- */

struct meta_ctx {
	struct sops_parser *p;
	struct vf_sops_file *f;
	struct vf_sops_doc *doc;
	struct rule *rule;
	size_t n_keys; /* key stanzas of all kinds seen */
	size_t stanza_cap;
	unsigned used_types;
	char others[120]; /* kinds of keys not known here */
};

static const struct {
	const char *name;
	unsigned bit;
} key_kinds[] = {
	{"age", VF_SOPS_KEY_AGE},	    {"pgp", VF_SOPS_KEY_PGP},
	{"kms", VF_SOPS_KEY_KMS},	    {"gcp_kms", VF_SOPS_KEY_GCP_KMS},
	{"azure_kv", VF_SOPS_KEY_AZURE_KV}, {"hc_vault", VF_SOPS_KEY_HC_VAULT},
};

/* Metadata entries that hold no keys. */
static const char *const plain_fields[] = {
	"lastmodified", "mac", "version", "unencrypted_suffix", "encrypted_suffix",
	"unencrypted_regex", "encrypted_regex", "unencrypted_comment_regex",
	"encrypted_comment_regex", "mac_only_encrypted", "shamir_threshold", "key_groups", NULL,
};

static bool is_plain_field(const char *key)
{
	for (const char *const *f = plain_fields; *f; f++)
		if (strcmp(*f, key) == 0)
			return true;
	return false;
}

/* A single value of the metadata ("sops:key"): NULL when absent or null. */
static enum vf_code meta_scalar(struct meta_ctx *c, const struct node *meta, const char *key,
				const struct node **out)
{
	const struct node *n = node_get(meta, key);
	*out = NULL;
	if (!n || n->kind == NODE_NULL)
		return VF_OK;
	if (n->kind == NODE_MAP || n->kind == NODE_SEQ)
		return sops_fail_at(c->p, n->line, n->column,
				    "sops:%s is a %s (expected a single value)", key,
				    n->kind == NODE_MAP ? "mapping" : "list");
	*out = n;
	return VF_OK;
}

/* Names a kind of key this reader does not know, once. */
static void add_other_name(struct meta_ctx *c, const char *name)
{
	size_t len = strlen(c->others), k = strlen(name);
	for (const char *s = c->others; (s = strstr(s, name)); s++)
		if ((s == c->others || s[-1] == ' ') && (s[k] == ',' || s[k] == 0))
			return;
	snprintf(c->others + len, sizeof(c->others) - len, "%s%s", len ? ", " : "", name);
}

/* "age, pgp, foo": the kinds present, known ones in sops's order. */
static void type_names(const struct meta_ctx *c, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	for (size_t k = 0; k < sizeof(key_kinds) / sizeof(*key_kinds); k++)
		if (c->used_types & key_kinds[k].bit) {
			append(out, cap, &n, n ? ", " : "");
			append(out, cap, &n, key_kinds[k].name);
		}
	if (c->others[0]) {
		append(out, cap, &n, n ? ", " : "");
		append(out, cap, &n, c->others);
	}
}

static enum vf_code age_stanza(struct meta_ctx *c, const struct node *item, bool record)
{
	const struct node *recipient = node_get(item, "recipient"), *enc = node_get(item, "enc");
	if (item->kind != NODE_MAP || !recipient || recipient->kind != NODE_STRING || !enc ||
	    enc->kind != NODE_STRING || enc->len == 0)
		return sops_fail_at(c->p, item->line, item->column,
				    "sops age entry without a recipient and an enc (expected "
				    "recipient: age1..., enc: an armored age file)");
	if (!record)
		return VF_OK;
	struct vf_sops_doc *d = c->doc;
	if (d->n_age == c->stanza_cap) {
		size_t cap = c->stanza_cap ? c->stanza_cap * 2 : 4;
		struct sops_stanza *s = realloc(d->age, cap * sizeof(*s));
		const char **r = s ? realloc(d->age_recipients, cap * sizeof(*r)) : NULL;
		if (s)
			d->age = s;
		if (!r)
			return sops_nomem(c->p);
		d->age_recipients = r;
		c->stanza_cap = cap;
	}
	d->age[d->n_age] = (struct sops_stanza){recipient->text, enc->text, enc->len};
	d->age_recipients[d->n_age++] = recipient->text;
	return VF_OK;
}

/* The key lists of one group (the flat metadata, or one of key_groups):
 * counts them, records the kinds present and (when record) the age
 * stanzas. */
static enum vf_code scan_group(struct meta_ctx *c, const struct node *group, bool flat,
			       bool record, size_t *count)
{
	*count = 0;
	if (group->kind != NODE_MAP)
		return sops_fail_at(c->p, group->line, group->column,
				    "sops key group that is not a mapping (expected lists of keys)");
	for (size_t i = 0; i < group->n; i++) {
		const struct node_entry *e = &group->entries[i];
		if (flat && is_plain_field(e->key))
			continue;
		const struct node *list = e->value;
		if (list->kind == NODE_NULL || (list->kind == NODE_SEQ && list->n == 0))
			continue;
		unsigned bit = VF_SOPS_KEY_OTHER;
		for (size_t k = 0; k < sizeof(key_kinds) / sizeof(*key_kinds); k++)
			if (strcmp(key_kinds[k].name, e->key) == 0)
				bit = key_kinds[k].bit;
		if (list->kind != NODE_SEQ) {
			if (bit == VF_SOPS_KEY_OTHER)
				continue; /* something else sops may add one day: not keys */
			return sops_fail_at(c->p, list->line, list->column,
					    "sops:%s is not a list (expected a list of keys)", e->key);
		}
		if (c->n_keys + list->n > VF_SOPS_MAX_KEYS)
			return sops_fail_at(c->p, list->line, list->column,
					    "more than %u keys in the sops metadata",
					    VF_SOPS_MAX_KEYS);
		c->n_keys += list->n;
		*count += list->n;
		if (record) {
			c->used_types |= bit;
			if (bit == VF_SOPS_KEY_OTHER)
				add_other_name(c, e->key);
		}
		for (size_t k = 0; bit == VF_SOPS_KEY_AGE && k < list->n; k++) {
			enum vf_code rc = age_stanza(c, list->items[k], record);
			if (rc != VF_OK)
				return rc;
		}
	}
	return VF_OK;
}

/* sops's internalKeygroups: keys at the top of the metadata make one group
 * and hide key_groups; otherwise each entry of key_groups is a group, more
 * than one meaning Shamir splitting. */
static enum vf_code read_keys(struct meta_ctx *c, const struct node *meta)
{
	size_t flat;
	enum vf_code rc = scan_group(c, meta, true, false, &flat);
	if (rc != VF_OK)
		return rc;
	struct vf_sops_meta *m = &c->f->meta;
	const struct node *groups = node_get(meta, "key_groups");
	if (flat > 0 || !groups || groups->kind == NODE_NULL) {
		c->n_keys = 0;
		m->n_key_groups = flat > 0;
		rc = scan_group(c, meta, true, true, &flat);
	} else if (groups->kind != NODE_SEQ) {
		return sops_fail_at(c->p, groups->line, groups->column,
				    "sops:key_groups is not a list (expected a list of key groups)");
	} else {
		c->n_keys = 0;
		m->n_key_groups = groups->n;
		size_t n;
		for (size_t i = 0; i < groups->n && rc == VF_OK; i++)
			rc = scan_group(c, groups->items[i], false, true, &n);
	}
	m->shamir = m->n_key_groups > 1;
	m->key_types = c->used_types;
	type_names(c, c->doc->key_type_names, sizeof(c->doc->key_type_names));
	m->key_type_names = c->doc->key_type_names;
	m->age_recipients = c->doc->age_recipients;
	m->n_age = c->doc->n_age;
	return rc;
}

static enum vf_code read_mac(struct meta_ctx *c, const struct node *meta)
{
	const struct node *lm, *mac;
	enum vf_code rc = meta_scalar(c, meta, "lastmodified", &lm);
	if (rc == VF_OK)
		rc = meta_scalar(c, meta, "mac", &mac);
	if (rc != VF_OK)
		return rc;
	bool fraction;
	if (!lm)
		return sops_fail_at(c->p, 0, 0,
				    "no sops:lastmodified (expected the time sops last wrote the file)");
	if (!rfc3339_normalize(lm->text, lm->len, c->doc->mac_aad, &fraction))
		return sops_fail_at(c->p, lm->line, lm->column,
				    "sops:lastmodified \"%.40s\" is not an RFC 3339 time", lm->text);
	c->f->meta.lastmodified = lm->text;
	if (!mac || mac->len == 0)
		return VF_OK; /* decryption says so, unless the MAC is ignored */
	uint8_t *buf = sops_alloc(c->p->mem, mac->len);
	if (!buf)
		return sops_nomem(c->p);
	struct vf_error e;
	if (sops_enc_parse_into(mac->text, mac->len, &c->doc->mac, buf, mac->len, &e) != VF_OK)
		return sops_fail_at(c->p, mac->line, mac->column, "sops:mac: %s", e.msg);
	if (c->doc->mac.type != VF_SOPS_ENC_STR)
		return sops_fail_at(c->p, mac->line, mac->column,
				    "sops:mac: ENC[] of type %s (expected str)",
				    vf_sops_enc_type_name(c->doc->mac.type));
	c->doc->has_mac = true;
	return VF_OK;
}

static enum vf_code read_flags(struct meta_ctx *c, const struct node *meta)
{
	const struct node *n;
	struct vf_sops_meta *m = &c->f->meta;
	enum vf_code rc = meta_scalar(c, meta, "version", &n);
	m->version = rc == VF_OK && n ? n->text : "";
	if (rc == VF_OK)
		rc = meta_scalar(c, meta, "mac_only_encrypted", &n);
	if (rc == VF_OK && n) {
		bool ok = n->kind == NODE_BOOL || (n->kind == NODE_STRING &&
						    (strcmp(n->text, "true") == 0 ||
						     strcmp(n->text, "false") == 0));
		if (!ok)
			return sops_fail_at(c->p, n->line, n->column,
					    "sops:mac_only_encrypted is %.20s (expected true or false)",
					    n->text);
		m->mac_only_encrypted = n->kind == NODE_BOOL ? n->v.b : n->text[0] == 't';
	}
	if (rc == VF_OK)
		rc = meta_scalar(c, meta, "shamir_threshold", &n);
	if (rc == VF_OK && n) {
		int64_t v;
		if (!go_parse_int(n->text, n->len, &v) || v < 0 || v > VF_SOPS_MAX_KEYS)
			return sops_fail_at(c->p, n->line, n->column,
					    "sops:shamir_threshold is %.20s (expected a small count)",
					    n->text);
		m->shamir_threshold = (unsigned)v;
	}
	return rc;
}

/* sops allows one rule; a file without any has unencrypted_suffix
 * _unencrypted. The comment rules depend on comments, which libyaml does
 * not show: refused. */
static enum vf_code read_rule(struct meta_ctx *c, const struct node *meta)
{
	static const char *const names[] = {"unencrypted_suffix", "encrypted_suffix",
					    "unencrypted_regex", "encrypted_regex",
					    "unencrypted_comment_regex", "encrypted_comment_regex"};
	const struct node *v[6];
	int count = 0;
	for (int i = 0; i < 6; i++) {
		enum vf_code rc = meta_scalar(c, meta, names[i], &v[i]);
		if (rc != VF_OK)
			return rc;
		if (v[i] && v[i]->len == 0)
			v[i] = NULL;
		count += v[i] != NULL;
	}
	if (count > 1)
		return sops_fail_at(c->p, 0, 0,
				    "more than one of sops's unencrypted/encrypted suffix and regex "
				    "rules (sops refuses such a file)");
	for (int i = 4; i < 6; i++)
		if (v[i])
			return sops_fail_at(c->p, v[i]->line, v[i]->column,
					    "sops:%s is not supported (it depends on comments, which "
					    "this reader does not read)", names[i]);
	struct rule *r = c->rule;
	r->unencrypted_suffix = v[0] ? v[0]->text : count == 0 ? "_unencrypted" : NULL;
	r->encrypted_suffix = v[1] ? v[1]->text : NULL;
	enum vf_code rc = VF_OK;
	if (v[2] && (rc = compile_rule_re(c->p, v[2], names[2], &r->unencrypted_re,
					  &r->unencrypted_re_wide)) == VF_OK)
		r->has_unencrypted_re = true;
	if (rc == VF_OK && v[3] &&
	    (rc = compile_rule_re(c->p, v[3], names[3], &r->encrypted_re, &r->encrypted_re_wide)) ==
		    VF_OK)
		r->has_encrypted_re = true;
	return rc;
}

/* ---- the values ---- */

struct walker {
	struct sops_parser *p;
	struct vf_sops_file *f;
	struct vf_sops_doc *doc;
	const struct rule *rule;
	const struct node_entry *keys[VF_SOPS_MAX_DEPTH + 1];
	size_t n_keys;
	struct vf_sops_part parts[VF_SOPS_MAX_DEPTH + 1];
	size_t n_parts;
	size_t cap;
};

static enum vf_code leaf_fail(struct walker *w, const struct node *n, const char *what)
{
	struct vf_sops_leaf tmp = {w->parts, w->n_parts, VF_SOPS_STR, true, 0, 0};
	char path[512];
	vf_sops_leaf_path(&tmp, path, sizeof(path));
	return sops_fail_at(w->p, n->line, n->column, "value of %s %s", path, what);
}

static char *join_aad(struct walker *w, size_t *len)
{
	size_t n = 1;
	for (size_t i = 0; i < w->n_keys; i++)
		n += w->keys[i]->key_len + 1;
	char *aad = sops_alloc(w->p->mem, n), *o = aad;
	if (!aad)
		return NULL;
	for (size_t i = 0; i < w->n_keys; i++) {
		memcpy(o, w->keys[i]->key, w->keys[i]->key_len);
		o += w->keys[i]->key_len;
		*o++ = ':';
	}
	if (w->n_keys == 0)
		*o++ = ':'; /* strings.Join of nothing, plus ':' */
	*o = 0;
	*len = (size_t)(o - aad);
	return aad;
}

static enum vf_code encrypted_leaf(struct walker *w, const struct node *n, struct vf_sops_leaf *l,
				   struct sops_leaf_x *x)
{
	if (n->kind != NODE_STRING)
		return leaf_fail(w, n, "is in clear where the file's rule wants it encrypted "
				       "(expected an ENC[...] value)");
	if (n->len == 0) {
		x->empty = true; /* sops stores an empty string as it is */
		l->type = VF_SOPS_STR;
		return VF_OK;
	}
	uint8_t *buf = sops_alloc(w->p->mem, n->len);
	if (!buf)
		return sops_nomem(w->p);
	struct vf_error e;
	char what[sizeof(e.msg) + 8];
	if (sops_enc_parse_into(n->text, n->len, &x->enc, buf, n->len, &e) != VF_OK) {
		snprintf(what, sizeof(what), "is bad: %s", e.msg);
		return leaf_fail(w, n, what);
	}
	static const enum vf_sops_type types[] = {
		[VF_SOPS_ENC_STR] = VF_SOPS_STR,     [VF_SOPS_ENC_INT] = VF_SOPS_INT,
		[VF_SOPS_ENC_FLOAT] = VF_SOPS_FLOAT, [VF_SOPS_ENC_BOOL] = VF_SOPS_BOOL,
		[VF_SOPS_ENC_BYTES] = VF_SOPS_BYTES, [VF_SOPS_ENC_TIME] = VF_SOPS_TIME,
	};
	if (x->enc.type == VF_SOPS_ENC_COMMENT)
		return leaf_fail(w, n, "is an encrypted comment where a value belongs (expected a "
				       "value type)");
	l->type = types[x->enc.type];
	return VF_OK;
}

static enum vf_code add_leaf(struct walker *w, const struct node *n)
{
	struct vf_sops_doc *d = w->doc;
	if (w->f->n_leaves == VF_SOPS_MAX_LEAVES)
		return sops_fail_at(w->p, n->line, n->column,
				    "more than %u values (expected a smaller file)", VF_SOPS_MAX_LEAVES);
	if (w->f->n_leaves == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		struct vf_sops_leaf *l = realloc(d->leaves, cap * sizeof(*l));
		struct sops_leaf_x *x = l ? realloc(d->x, cap * sizeof(*x)) : NULL;
		if (l)
			d->leaves = l;
		if (!x)
			return sops_nomem(w->p);
		d->x = x;
		w->cap = cap;
		w->f->leaves = d->leaves;
	}
	struct vf_sops_leaf *l = &d->leaves[w->f->n_leaves];
	struct sops_leaf_x *x = &d->x[w->f->n_leaves];
	memset(l, 0, sizeof(*l));
	memset(x, 0, sizeof(*x));
	struct vf_sops_part *parts = sops_alloc(w->p->mem, w->n_parts * sizeof(*parts) + 1);
	if (!parts || !(x->aad = join_aad(w, &x->aad_len)))
		return sops_nomem(w->p);
	memcpy(parts, w->parts, w->n_parts * sizeof(*parts));
	*l = (struct vf_sops_leaf){parts, w->n_parts, VF_SOPS_STR, false, n->line, n->column};
	x->value = n;
	enum vf_code rc = should_encrypt(w->p, w->rule, w->keys, w->n_keys, &l->encrypted);
	if (rc == VF_OK && l->encrypted)
		rc = encrypted_leaf(w, n, l, x);
	else if (rc == VF_OK)
		l->type = n->kind == NODE_INT ? VF_SOPS_INT : n->kind == NODE_FLOAT ? VF_SOPS_FLOAT
			: n->kind == NODE_BOOL ? VF_SOPS_BOOL : VF_SOPS_STR;
	if (rc == VF_OK)
		w->f->n_leaves++;
	return rc;
}

/* Document order, depth first: the order of sops's walk, and so the MAC's.
 * Nulls are no values (sops skips them); an empty mapping or list has none. */
static enum vf_code walk(struct walker *w, const struct node *n, bool top)
{
	enum vf_code rc = VF_OK;
	switch (n->kind) {
	case NODE_NULL: return VF_OK;
	case NODE_MAP:
		for (size_t i = 0; i < n->n && rc == VF_OK; i++) {
			const struct node_entry *e = &n->entries[i];
			if (top && strcmp(e->key, "sops") == 0)
				continue;
			w->keys[w->n_keys++] = e;
			w->parts[w->n_parts++] = (struct vf_sops_part){e->key, 0};
			rc = walk(w, e->value, false);
			w->n_keys--;
			w->n_parts--;
		}
		return rc;
	case NODE_SEQ:
		for (size_t i = 0; i < n->n && rc == VF_OK; i++) {
			w->parts[w->n_parts++] = (struct vf_sops_part){NULL, i};
			rc = walk(w, n->items[i], false);
			w->n_parts--;
		}
		return rc;
	default: return add_leaf(w, n);
	}
}

/* The binary format: {"data": "...", "sops": {...}} and nothing else; the
 * one value is the file's bytes. Checked before the walk, so that a stray
 * key is named as such. */
static enum vf_code check_binary(struct sops_parser *p, const struct node *root)
{
	for (size_t i = 0; i < root->n; i++) {
		const struct node_entry *e = &root->entries[i];
		if (strcmp(e->key, "sops") != 0 && strcmp(e->key, "data") != 0)
			return sops_fail_at(p, e->line, e->column,
					    "key \"%.40s\" in a sops binary file (expected only "
					    "\"data\" and \"sops\")", e->key);
	}
	const struct node *data = node_get(root, "data");
	if (!data || data->kind != NODE_STRING)
		return sops_fail_at(p, data ? data->line : root->line,
				    data ? data->column : root->column,
				    "no \"data\" string (expected a sops binary file: {\"data\": "
				    "\"ENC[...]\", \"sops\": {...}})");
	return VF_OK;
}

/* ---- parse ---- */

static enum vf_code parse_document(struct sops_parser *p, enum vf_sops_format format,
				   const uint8_t *data, size_t len, struct node **root)
{
	switch (format) {
	case VF_SOPS_YAML: return sops_parse_yaml(p, data, len, root);
	case VF_SOPS_JSON:
	case VF_SOPS_BINARY: return sops_parse_json(p, data, len, root);
	case VF_SOPS_DOTENV: return sops_parse_dotenv(p, data, len, root);
	default:
		return sops_fail_at(p, 0, 0,
				    "INI sops files are not supported (expected YAML, JSON, dotenv "
				    "or binary)");
	}
}

static enum vf_code read_metadata(struct sops_parser *p, struct vf_sops_file *f, struct rule *r)
{
	const struct node *meta = node_get(f->doc->root, "sops");
	if (!meta || meta->kind != NODE_MAP)
		return sops_fail_at(p, meta ? meta->line : 0, meta ? meta->column : 0,
				    "no sops metadata (expected a file encrypted by sops, with a "
				    "\"sops\" %s)", f->format == VF_SOPS_DOTENV ? "sops_* keys"
										: "mapping");
	struct meta_ctx c = {.p = p, .f = f, .doc = f->doc, .rule = r};
	enum vf_code rc = read_mac(&c, meta);
	if (rc == VF_OK)
		rc = read_flags(&c, meta);
	if (rc == VF_OK)
		rc = read_keys(&c, meta);
	if (rc == VF_OK)
		rc = read_rule(&c, meta);
	return rc;
}

static enum vf_code parse(struct sops_parser *p, struct vf_sops_file *f, const uint8_t *data,
			  size_t len)
{
	struct vf_sops_doc *d = f->doc;
	enum vf_code rc = parse_document(p, f->format, data, len, &d->root);
	if (rc == VF_OK)
		rc = node_check_unique(p, d->root);
	if (rc == VF_OK && f->format == VF_SOPS_BINARY)
		rc = check_binary(p, d->root);
	struct rule rule = {0};
	if (rc == VF_OK)
		rc = read_metadata(p, f, &rule);
	if (rc == VF_OK) {
		struct walker *w = calloc(1, sizeof(*w));
		if (!w)
			rc = sops_nomem(p);
		else {
			*w = (struct walker){.p = p, .f = f, .doc = d, .rule = &rule};
			rc = walk(w, d->root, true);
			free(w);
		}
	}
	rule_free(&rule);
	return rc;
}

enum vf_code vf_sops_parse(const char *name, const uint8_t *data, size_t len,
			   enum vf_sops_format format, struct vf_sops_file **out,
			   struct vf_error *err)
{
	*out = NULL;
	if (len > VF_SOPS_MAX_FILE)
		return vf_fail(err, VF_E_ARG, "%s: larger than %u MiB (expected a sops file)", name,
			       VF_SOPS_MAX_FILE >> 20);
	struct vf_sops_file *f = calloc(1, sizeof(*f));
	struct vf_sops_doc *d = f ? calloc(1, sizeof(*d)) : NULL;
	char *copy = d ? strdup(name) : NULL;
	if (!copy) {
		free(d);
		free(f);
		return vf_fail(err, VF_E_NOMEM, "%s: out of memory", name);
	}
	f->name = copy;
	f->doc = d;
	f->format = format == VF_SOPS_AUTO ? vf_sops_format_for_name(name) : format;
	f->meta.version = f->meta.lastmodified = f->meta.key_type_names = "";
	struct sops_parser p = {.name = f->name, .err = err, .mem = &d->mem};
	enum vf_code rc = parse(&p, f, data, len);
	if (rc != VF_OK) {
		vf_sops_free(f);
		return rc;
	}
	*out = f;
	return VF_OK;
}

enum vf_code vf_sops_read(int dirfd, const char *path, enum vf_follow follow,
			  enum vf_sops_format format, struct vf_sops_file **out,
			  struct vf_error *err)
{
	const struct vf_read_opts opts = {.max = VF_SOPS_MAX_FILE, .follow = follow};
	struct vf_file file;
	*out = NULL;
	enum vf_code rc = vf_read_file(dirfd, path, &opts, &file, err);
	if (rc != VF_OK) {
		if (file.fail == VF_READ_SIZE)
			return vf_fail(err, VF_E_ARG, "%s: larger than %u MiB (expected a sops file)",
				       path, VF_SOPS_MAX_FILE >> 20);
		return rc;
	}
	rc = vf_sops_parse(path, file.data, file.len, format, out, err);
	vf_file_free(&file, &opts);
	return rc;
}

void vf_sops_free(struct vf_sops_file *f)
{
	if (!f)
		return;
	struct vf_sops_doc *d = f->doc;
	if (d) {
		node_free_arrays(d->root);
		free(d->leaves);
		free(d->x);
		free(d->age);
		free(d->age_recipients);
		sops_arena_free(&d->mem);
		free(d);
	}
	free((char *)f->name);
	free(f);
}
