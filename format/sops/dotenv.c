/* SOPS dotenv files, read as sops's dotenv store reads them: lines split on
 * '\n', empty lines skipped, lines starting with '#' comments (no values,
 * out of the MAC), every other line KEY=VALUE split at the first '=', a
 * literal backslash-n in a value standing for a newline. Values are strings.
 *
 * The metadata is flattened into sops_* keys: sops_age__list_0__map_enc is
 * sops: {age: [{enc: ...}]}. They are unflattened here into a "sops" entry
 * of the root mapping, as sops's UnflattenMetadata does, so that the
 * metadata pass reads every format alike. */
#include "sops/sops_internal.h"

#include <string.h>

#define SOPS_PREFIX "sops_"
#define MAP_SEP "__map_"
#define LIST_SEP "__list_"

struct token {
	bool list;
	const char *key; /* map token */
	size_t key_len;
	size_t index; /* list token */
};

/* The most tokens of one flattened key: deeper than any metadata sops
 * writes (key_groups, age, an entry of a stanza is 5). */
#define MAX_TOKENS 16

static bool parse_index(const char *s, size_t len, size_t *out)
{
	if (len == 0 || len > 4)
		return false;
	size_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	*out = v;
	return v < VF_SOPS_MAX_KEYS;
}

/* sops's tokenize: the text up to the first separator is a map key; each
 * "__map_" starts a map key and each "__list_" a list index. */
static enum vf_code tokenize(struct sops_parser *p, unsigned line, const char *path, size_t len,
			     struct token *t, size_t *n)
{
	size_t start = 0, sep = 0, i = 0;
	bool list = false;
	*n = 0;
	for (;;) {
		bool end = i >= len;
		bool is_map = !end && len - i >= strlen(MAP_SEP) && memcmp(path + i, MAP_SEP, 6) == 0;
		bool is_list = !end && !is_map && len - i >= strlen(LIST_SEP) &&
			       memcmp(path + i, LIST_SEP, 7) == 0;
		if (!end && !is_map && !is_list) {
			i++;
			continue;
		}
		if (*n == MAX_TOKENS)
			return sops_fail_at(p, line, 1, "metadata key nested more than %d levels",
					    MAX_TOKENS);
		const char *s = path + start + sep;
		size_t s_len = i - start - sep;
		t[*n] = (struct token){list, s, s_len, 0};
		if (list && !parse_index(s, s_len, &t[*n].index))
			return sops_fail_at(p, line, 1,
					    "metadata key with list index \"%.*s\" (expected 0 to %d)",
					    (int)(s_len > 20 ? 20 : s_len), s, VF_SOPS_MAX_KEYS - 1);
		(*n)++;
		if (end)
			return VF_OK;
		start = i;
		list = is_list;
		sep = is_list ? strlen(LIST_SEP) : strlen(MAP_SEP);
		i += sep;
	}
}

static enum vf_code conflict(struct sops_parser *p, unsigned line)
{
	return sops_fail_at(p, line, 1,
			    "metadata key that clashes with another one (expected sops's "
			    "flattened keys)");
}

/* The child of cur for token t, made as a mapping or list (next_list) when
 * absent. */
static enum vf_code step(struct sops_parser *p, unsigned line, struct node *cur,
			 const struct token *t, bool next_list, struct node **out)
{
	enum node_kind want = next_list ? NODE_SEQ : NODE_MAP;
	if (!t->list) {
		struct node *child = NULL;
		for (size_t i = 0; i < cur->n; i++)
			if (cur->entries[i].key_len == t->key_len &&
			    memcmp(cur->entries[i].key, t->key, t->key_len) == 0)
				child = cur->entries[i].value;
		if (!child) {
			if (!(child = node_new(p, want, line, 1)))
				return p->err->code;
			enum vf_code rc = node_map_add(p, cur, t->key, t->key_len, line, 1, child);
			if (rc != VF_OK)
				return rc;
		}
		*out = child;
		return child->kind == want ? VF_OK : conflict(p, line);
	}
	while (cur->n <= t->index) {
		struct node *hole = node_new(p, NODE_NULL, line, 1);
		enum vf_code rc = hole ? node_seq_add(p, cur, hole) : p->err->code;
		if (rc != VF_OK)
			return rc;
	}
	struct node **slot = &cur->items[t->index];
	if ((*slot)->kind == NODE_NULL && !(*slot = node_new(p, want, line, 1)))
		return p->err->code;
	*out = *slot;
	return (*slot)->kind == want ? VF_OK : conflict(p, line);
}

static enum vf_code unflatten(struct sops_parser *p, struct node *meta, unsigned line,
			      const char *key, size_t key_len, struct node *value)
{
	struct token t[MAX_TOKENS];
	size_t n;
	enum vf_code rc = tokenize(p, line, key, key_len, t, &n);
	struct node *cur = meta;
	for (size_t i = 0; rc == VF_OK && i + 1 < n; i++)
		rc = step(p, line, cur, &t[i], t[i + 1].list, &cur);
	if (rc != VF_OK)
		return rc;
	const struct token *last = &t[n - 1];
	if (!last->list) {
		for (size_t i = 0; i < cur->n; i++)
			if (cur->entries[i].key_len == last->key_len &&
			    memcmp(cur->entries[i].key, last->key, last->key_len) == 0)
				return conflict(p, line);
		return node_map_add(p, cur, last->key, last->key_len, line, 1, value);
	}
	while (cur->n <= last->index) {
		struct node *hole = node_new(p, NODE_NULL, line, 1);
		if ((rc = hole ? node_seq_add(p, cur, hole) : p->err->code) != VF_OK)
			return rc;
	}
	if (cur->items[last->index]->kind != NODE_NULL)
		return conflict(p, line);
	cur->items[last->index] = value;
	return VF_OK;
}

/* The value with each literal "\n" (backslash, n) made a newline. */
static enum vf_code value_node(struct sops_parser *p, unsigned line, unsigned column,
			       const char *s, size_t len, struct node **out)
{
	struct node *n = node_new(p, NODE_STRING, line, column);
	char *text = n ? sops_alloc(p->mem, len + 1) : NULL;
	if (!n)
		return p->err->code;
	if (!text)
		return sops_nomem(p);
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len && s[i + 1] == 'n') {
			text[k++] = '\n';
			i++;
		} else {
			text[k++] = s[i];
		}
	}
	n->text = text;
	n->len = k;
	*out = n;
	return VF_OK;
}

static enum vf_code one_line(struct sops_parser *p, struct node *root, struct node *meta,
			     unsigned line, const char *s, size_t len)
{
	if (len == 0 || s[0] == '#')
		return VF_OK;
	const char *eq = memchr(s, '=', len);
	if (!eq)
		return sops_fail_at(p, line, 1, "dotenv line without '=' (expected KEY=VALUE)");
	size_t key_len = (size_t)(eq - s);
	struct node *v = NULL;
	enum vf_code rc = value_node(p, line, (unsigned)key_len + 2, eq + 1, len - key_len - 1, &v);
	if (rc != VF_OK)
		return rc;
	size_t plen = strlen(SOPS_PREFIX);
	if (key_len >= plen && memcmp(s, SOPS_PREFIX, plen) == 0)
		return unflatten(p, meta, line, s + plen, key_len - plen, v);
	return node_map_add(p, root, s, key_len, line, 1, v);
}

enum vf_code sops_parse_dotenv(struct sops_parser *p, const uint8_t *data, size_t len,
			       struct node **root)
{
	*root = node_new(p, NODE_MAP, 1, 1);
	struct node *meta = *root ? node_new(p, NODE_MAP, 1, 1) : NULL;
	if (!meta)
		return p->err->code;
	const char *s = (const char *)data;
	enum vf_code rc = VF_OK;
	unsigned line = 1;
	for (size_t start = 0; rc == VF_OK && start <= len; line++) {
		const char *nl = memchr(s + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - s) : len;
		rc = one_line(p, *root, meta, line, s + start, end - start);
		start = end + 1;
	}
	if (rc == VF_OK && meta->n > 0 &&
	    (rc = node_map_add(p, *root, "sops", 4, 1, 1, meta)) == VF_OK)
		return VF_OK;
	node_free_arrays(meta); /* not in the tree: the caller would not free it */
	return rc;
}
