/* The document tree the parsers share: an arena for nodes and strings, the
 * growing arrays of mappings and lists, the node limit, and the one-line
 * errors with a place. */
#include "sops/sops_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct sops_block {
	struct sops_block *next;
	size_t used, cap;
	max_align_t data[];
};

#define BLOCK_SIZE (64u << 10)

void *sops_alloc(struct sops_arena *a, size_t len)
{
	size_t need = (len + sizeof(max_align_t) - 1) / sizeof(max_align_t);
	struct sops_block *b = a->head;
	if (!b || b->cap - b->used < need) {
		size_t cap = BLOCK_SIZE / sizeof(max_align_t);
		if (need > cap / 4) /* a big piece gets a block of its own */
			cap = need;
		if (cap > (SIZE_MAX - sizeof(*b)) / sizeof(max_align_t))
			return NULL;
		b = malloc(sizeof(*b) + cap * sizeof(max_align_t));
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		if (need == cap && a->head) { /* keep filling the current block */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	void *p = b->data + b->used;
	b->used += need;
	memset(p, 0, len);
	return p;
}

char *sops_strndup(struct sops_arena *a, const char *s, size_t len)
{
	if (len == SIZE_MAX)
		return NULL;
	char *out = sops_alloc(a, len + 1);
	if (out && len)
		memcpy(out, s, len);
	return out;
}

void sops_arena_free(struct sops_arena *a)
{
	while (a->head) {
		struct sops_block *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ---- errors ---- */

enum vf_code sops_fail_at(struct sops_parser *p, unsigned line, unsigned column, const char *fmt,
			  ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line)
		return vf_fail(p->err, VF_E_ARG, "%s:%u:%u: %s", p->name, line, column, what);
	return vf_fail(p->err, VF_E_ARG, "%s: %s", p->name, what);
}

enum vf_code sops_nomem(struct sops_parser *p)
{
	return vf_fail(p->err, VF_E_NOMEM, "%s: out of memory", p->name);
}

/* ---- nodes ---- */

struct node *node_new(struct sops_parser *p, enum node_kind kind, unsigned line, unsigned column)
{
	if (p->nodes >= VF_SOPS_MAX_NODES) {
		sops_fail_at(p, line, column,
			     "more than %u keys, values, mappings and lists (expected a smaller file)",
			     VF_SOPS_MAX_NODES);
		return NULL;
	}
	struct node *n = sops_alloc(p->mem, sizeof(*n));
	if (!n) {
		sops_nomem(p);
		return NULL;
	}
	p->nodes++;
	n->kind = kind;
	n->line = line;
	n->column = column;
	n->text = "";
	return n;
}

static bool grow(void **array, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t new_cap = *cap ? *cap * 2 : 4;
	if (new_cap > SIZE_MAX / size)
		return false;
	void *p = realloc(*array, new_cap * size);
	if (!p)
		return false;
	*array = p;
	*cap = new_cap;
	return true;
}

enum vf_code node_map_add(struct sops_parser *p, struct node *map, const char *key,
			  size_t key_len, unsigned line, unsigned column, struct node *value)
{
	if (memchr(key, '\0', key_len))
		return sops_fail_at(p, line, column, "a key with a NUL character (expected text)");
	char *copy = sops_strndup(p->mem, key, key_len);
	if (!copy || !grow((void **)&map->entries, &map->cap, map->n, sizeof(*map->entries)))
		return sops_nomem(p);
	map->entries[map->n++] = (struct node_entry){copy, key_len, line, column, value};
	return VF_OK;
}

enum vf_code node_seq_add(struct sops_parser *p, struct node *seq, struct node *item)
{
	if (!grow((void **)&seq->items, &seq->cap, seq->n, sizeof(*seq->items)))
		return sops_nomem(p);
	seq->items[seq->n++] = item;
	return VF_OK;
}

struct node *node_get(const struct node *map, const char *key)
{
	if (!map || map->kind != NODE_MAP)
		return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < map->n; i++)
		if (map->entries[i].key_len == len && memcmp(map->entries[i].key, key, len) == 0)
			return map->entries[i].value;
	return NULL;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct node_entry *x = *(const struct node_entry *const *)a;
	const struct node_entry *y = *(const struct node_entry *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	/* Equal keys: the later one is reported, in document order. */
	return x < y ? -1 : (x > y);
}

/* Sorting pointers to the entries finds a repeated key in n log n, where a
 * hostile mapping of 100,000 keys would make pairwise checks quadratic. */
static enum vf_code check_map(struct sops_parser *p, const struct node *map)
{
	if (map->n < 2)
		return VF_OK;
	const struct node_entry **sorted = malloc(map->n * sizeof(*sorted));
	if (!sorted)
		return sops_nomem(p);
	for (size_t i = 0; i < map->n; i++)
		sorted[i] = &map->entries[i];
	qsort(sorted, map->n, sizeof(*sorted), entry_cmp);
	enum vf_code rc = VF_OK;
	for (size_t i = 1; i < map->n && rc == VF_OK; i++) {
		const struct node_entry *a = sorted[i - 1], *b = sorted[i];
		if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0)
			rc = sops_fail_at(p, b->line, b->column,
					  "key \"%s\" given twice in one mapping (first on line %u)",
					  b->key, a->line);
	}
	free(sorted);
	return rc;
}

enum vf_code node_check_unique(struct sops_parser *p, const struct node *n)
{
	enum vf_code rc = VF_OK;
	if (n->kind == NODE_MAP) {
		rc = check_map(p, n);
		for (size_t i = 0; i < n->n && rc == VF_OK; i++)
			rc = node_check_unique(p, n->entries[i].value);
	} else if (n->kind == NODE_SEQ) {
		for (size_t i = 0; i < n->n && rc == VF_OK; i++)
			rc = node_check_unique(p, n->items[i]);
	}
	return rc;
}

void node_free_arrays(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->kind == NODE_MAP)
			node_free_arrays(n->entries[i].value);
		else if (n->kind == NODE_SEQ)
			node_free_arrays(n->items[i]);
	}
	free(n->entries);
	free(n->items);
	n->entries = NULL;
	n->items = NULL;
	n->n = n->cap = 0;
}
