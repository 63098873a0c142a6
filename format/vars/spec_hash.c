/* The generator hash: SHA-256 over a canonical serialisation of what
 * decides a generator's values (spec.h, struct vf_spec_generator). */
#include "vars/spec_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"

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
	put_str(b, spec_kind_name(f->kind));
	if (f->kind == VF_KIND_RANDOM) {
		put_u64(b, f->length);
		put_str(b, spec_encodings[f->encoding]);
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
	put_str(b, spec_kind_name(g->kind));
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
		put_str(b, spec_prompt_types[p->type]);
	}
	put_u64(b, g->n_files);
	for (size_t i = 0; i < g->n_files && !b->failed; i++)
		put_file(b, files[i]);
	/* Only when present, so that every other generator hashes as before
	 * imports existed (the serialisation is self-delimiting: nothing else
	 * ends where this begins). */
	if (g->imported) {
		put_str(b, "imported");
		put_str(b, vf_imported_name(g->imported));
	}
	/* Likewise: a classic age-keypair hashes as before pq existed. */
	if (g->pq)
		put_str(b, "pq");
	free(deps);
	free(prompts);
	free(files);
}

enum vf_code spec_hash_generator(struct ctx *c, struct vf_spec_generator *g)
{
	struct buf b = {0};
	uint8_t digest[VF_SHA256_LEN];
	put_generator(&b, g);
	enum vf_code rc = b.failed ? spec_nomem(c) : vf_sha256(b.p, b.n, digest, c->err);
	free(b.p);
	for (size_t i = 0; rc == VF_OK && i < VF_SHA256_LEN; i++)
		snprintf(g->hash + 2 * i, 3, "%02x", digest[i]);
	return rc;
}
