#include "vars/vars.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/secmem.h"
#include "age/age.h"
#include "age/header.h"
#include "age/recipient_cache.h"
#include "vars/pair.h"
#include "vars/store_internal.h"

enum vf_code vf_strings_add(struct vf_strings *l, const char *s, struct vf_error *err)
{
	char **items = realloc(l->items, (l->n + 1) * sizeof(char *));
	char *copy = strdup(s);
	if (!items || !copy) {
		free(copy);
		if (items)
			l->items = items;
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	l->items = items;
	l->items[l->n++] = copy;
	return VF_OK;
}

bool vf_strings_has(const struct vf_strings *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i], s))
			return true;
	return false;
}

void vf_strings_free(struct vf_strings *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* ---- walks over dependencies ------------------------------------------
 * Every walk marks the generators it has seen, so that each generator and
 * each dependency is looked at once however many paths lead to it (a walk
 * that followed every path took 2^N steps on N chained "diamonds"), and
 * keeps its own stack, since a dependency chain can be as long as the spec
 * is (deeper than the C stack should go). Generators are found by name
 * through a sorted index: O((V + E) log V) per walk. */

struct walk {
	const struct vf_spec *spec;
	const struct vf_spec_generator **by_name; /* sorted by name */
	unsigned char *state;			  /* per generator: enum walk_state */
	size_t *stack;				  /* generator indices */
	size_t *next;				  /* per generator: next dependency */
	size_t depth;
};

enum walk_state { WALK_NEW = 0, WALK_OPEN, WALK_DONE };

static int cmp_generator_name(const void *a, const void *b)
{
	const struct vf_spec_generator *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int cmp_key_generator(const void *key, const void *elem)
{
	const struct vf_spec_generator *const *g = elem;
	return strcmp(key, (*g)->name);
}

static void walk_free(struct walk *w)
{
	free(w->by_name);
	free(w->state);
	free(w->stack);
	free(w->next);
}

static bool walk_init(struct walk *w, const struct vf_spec *spec)
{
	size_t n = spec->n_generators;
	*w = (struct walk){.spec = spec};
	w->by_name = calloc(n + 1, sizeof(*w->by_name));
	w->state = calloc(n + 1, sizeof(*w->state));
	w->stack = calloc(n + 1, sizeof(*w->stack));
	w->next = calloc(n + 1, sizeof(*w->next));
	if (!w->by_name || !w->state || !w->stack || !w->next) {
		walk_free(w);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		w->by_name[i] = &spec->generators[i];
	qsort(w->by_name, n, sizeof(*w->by_name), cmp_generator_name);
	return true;
}

/* The index of the generator named name, or SIZE_MAX. */
static size_t walk_find(const struct walk *w, const char *name)
{
	const struct vf_spec_generator *const *g =
		w->spec->n_generators ? bsearch(name, w->by_name, w->spec->n_generators,
						sizeof(*w->by_name), cmp_key_generator)
				      : NULL;
	return g ? (size_t)(*g - w->spec->generators) : SIZE_MAX;
}

/* Marks name and pushes it unless it was seen already. */
static void reach_push(struct walk *w, const char *name)
{
	size_t i = walk_find(w, name);
	if (i == SIZE_MAX || w->state[i] != WALK_NEW)
		return;
	w->state[i] = WALK_DONE;
	w->stack[w->depth++] = i;
}

/* Whether target is one of roots or (transitively) a dependency of one.
 * Each generator is pushed at most once, so the stack holds at most all. */
static bool reaches(struct walk *w, char *const *roots, size_t n_roots, const char *target)
{
	size_t goal = walk_find(w, target);
	if (goal == SIZE_MAX)
		return false;
	for (size_t i = 0; i < n_roots; i++)
		reach_push(w, roots[i]);
	while (w->depth > 0 && w->state[goal] == WALK_NEW) {
		const struct vf_spec_generator *g = &w->spec->generators[w->stack[--w->depth]];
		for (size_t i = 0; i < g->n_dependencies; i++)
			reach_push(w, g->dependencies[i]);
	}
	return w->state[goal] != WALK_NEW;
}

/* Out of memory answers "no": a machine left out of a secret's recipients
 * cannot read it (check reports wrong-recipients), while one wrongly let
 * in could. */
bool vf_vars_machine_uses(const struct vf_spec *spec, const struct vf_spec_machine *m,
			  const struct vf_spec_generator *g)
{
	struct walk w;
	if (!walk_init(&w, spec))
		return false;
	bool uses = reaches(&w, m->generators, m->n_generators, g->name);
	walk_free(&w);
	return uses;
}

bool vf_vars_kept_unused(const struct vf_spec *spec, const struct vf_spec_generator *g)
{
	if (!g->share || !g->imported)
		return false;
	for (size_t i = 0; i < spec->n_machines; i++)
		if (vf_vars_machine_uses(spec, &spec->machines[i], g))
			return false;
	return true;
}

struct topo {
	struct walk w;
	const struct vf_spec_generator **out;
	size_t n;
};

/* Opens generator name: on the stack, its dependencies still to visit. */
static enum vf_code topo_open(struct topo *t, const char *name, struct vf_error *err)
{
	size_t i = walk_find(&t->w, name);
	if (i == SIZE_MAX)
		return vf_fail(err, VF_E_ARG, "unknown generator %s", name);
	/* The spec loader has refused cycles; a spec built otherwise must
	 * not loop. */
	if (t->w.state[i] == WALK_OPEN)
		return vf_fail(err, VF_E_ARG, "dependency cycle through generator %s", name);
	if (t->w.state[i] == WALK_NEW) {
		t->w.state[i] = WALK_OPEN;
		t->w.next[i] = 0;
		t->w.stack[t->w.depth++] = i;
	}
	return VF_OK;
}

/* Depth-first from name: dependencies go in before the generator itself,
 * in the order they are listed. */
static enum vf_code topo_visit(struct topo *t, const char *name, struct vf_error *err)
{
	enum vf_code rc = topo_open(t, name, err);
	while (rc == VF_OK && t->w.depth > 0) {
		size_t u = t->w.stack[t->w.depth - 1];
		const struct vf_spec_generator *g = &t->w.spec->generators[u];
		if (t->w.next[u] < g->n_dependencies) {
			rc = topo_open(t, g->dependencies[t->w.next[u]++], err);
		} else {
			t->w.state[u] = WALK_DONE;
			t->w.depth--;
			t->out[t->n++] = g;
		}
	}
	return rc;
}

enum vf_code vf_vars_machine_generators(const struct vf_spec *spec,
					const struct vf_spec_machine *m,
					const struct vf_spec_generator ***out, size_t *n,
					struct vf_error *err)
{
	struct topo t = {.n = 0};
	t.out = calloc(spec->n_generators + 1, sizeof(*t.out));
	if (!t.out || !walk_init(&t.w, spec)) {
		free(t.out);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	enum vf_code rc = VF_OK;
	for (size_t i = 0; i < m->n_generators && rc == VF_OK; i++)
		rc = topo_visit(&t, m->generators[i], err);
	walk_free(&t.w);
	if (rc != VF_OK) {
		free(t.out);
		return rc;
	}
	*out = t.out;
	*n = t.n;
	return VF_OK;
}

static enum vf_code add_machine_key(const struct vf_spec_machine *m, struct vf_strings *out,
				    struct vf_error *err)
{
	if (!m->key)
		return vf_fail(err, VF_E_KEY,
			       "machine %s has no key yet (run: varseal machine keygen %s)",
			       m->name, m->name);
	return vf_strings_has(out, m->key) ? VF_OK : vf_strings_add(out, m->key, err);
}

/* Machines first, then admins: the order of the file's stanzas. A reader
 * tries each stanza in turn (age does too), one X25519 exchange each, and
 * the reader on the hot path is the machine (varinject at every boot, get
 * with the machine's key), not the admin at a terminal. The manifest is
 * sorted, so the order changes no state. */
enum vf_code vf_vars_recipients(const struct vf_spec *spec, const char *machine,
				const struct vf_spec_generator *g, struct vf_strings *out,
				struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	if (machine) {
		const struct vf_spec_machine *m = vf_spec_machine(spec, machine);
		if (!m)
			return vf_fail(err, VF_E_ARG, "no machine %s in the spec", machine);
		rc = add_machine_key(m, out, err);
	} else {
		for (size_t i = 0; rc == VF_OK && i < spec->n_machines; i++)
			if (vf_vars_machine_uses(spec, &spec->machines[i], g))
				rc = add_machine_key(&spec->machines[i], out, err);
	}
	for (size_t i = 0; rc == VF_OK && i < spec->n_admins; i++)
		if (!vf_strings_has(out, spec->admins[i].recipient))
			rc = vf_strings_add(out, spec->admins[i].recipient, err);
	return rc;
}

const char *vf_state_name(enum vf_state s)
{
	switch (s) {
	case VF_STATE_OK: return "ok";
	case VF_STATE_MISSING: return "missing";
	case VF_STATE_STALE: return "stale";
	case VF_STATE_WRONG_RECIPIENTS: return "wrong-recipients";
	case VF_STATE_NO_KEY: return "no-key";
	case VF_STATE_CORRUPT: return "corrupt";
	case VF_STATE_INCOMPLETE: return "incomplete";
	case VF_STATE_HAND_SET: return "hand-set";
	case VF_STATE_ORPHAN: return "orphan";
	case VF_STATE_WRONG_KEY: return "wrong-key";
	case VF_STATE_PAIR_MISMATCH: return "pair-mismatch";
	}
	return "unknown";
}

bool vf_state_sound(enum vf_state s)
{
	return s == VF_STATE_OK || s == VF_STATE_HAND_SET;
}

/* ---- commit records ------------------------------------------------------
 *
 * <generator>/.commit, written last by every commit that makes or changes
 * the generator's files:
 *
 *   vargen-commit 1
 *   generator <SHA-256 of the generator's definition, hex>
 *   <SHA-256 of the file's bytes, hex> <file>/<secret|recipients|value>
 *   ...
 *   hand-set <file>          (a file set by hand, varseal set)
 *   ...
 *
 * A file is the generator's only when the record names its exact bytes.
 * <generator>/.generator (the spec hash alone) is still written for other
 * readers of the layout; a store from before commit records has only that,
 * and is read as it was then (see docs/store.md). */

#define RECORD_MAGIC "vargen-commit 1\n"
#define HEX_LEN (2 * VF_SHA256_LEN)

enum leaf { LEAF_SECRET, LEAF_RECIPIENTS, LEAF_VALUE, N_LEAVES };
static const char *const leaf_names[N_LEAVES] = {"secret", "recipients", "value"};

struct record_entry {
	char *path; /* "<file>/<leaf>" */
	char hex[HEX_LEN + 1];
};

struct record {
	enum { REC_NONE, REC_LEGACY, REC_COMMIT, REC_BAD } kind;
	char spec_hash[HEX_LEN + 1]; /* empty when unknown */
	struct record_entry *entries;
	size_t n;
	struct vf_strings hand_set; /* files set by hand */
};

static void record_free(struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->entries[i].path);
	free(r->entries);
	vf_strings_free(&r->hand_set);
	memset(r, 0, sizeof(*r));
}

static void to_hex(const uint8_t sha[VF_SHA256_LEN], char hex[HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < VF_SHA256_LEN; i++) {
		hex[2 * i] = digits[sha[i] >> 4];
		hex[2 * i + 1] = digits[sha[i] & 15];
	}
	hex[HEX_LEN] = '\0';
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One "<hex> <file>/<leaf>" line (without its LF); false if malformed. */
static bool parse_entry(const char *line, size_t len, struct record *r)
{
	if (len < HEX_LEN + 4 || line[HEX_LEN] != ' ' || !is_hex(line, HEX_LEN))
		return false;
	const char *path = line + HEX_LEN + 1;
	size_t plen = len - HEX_LEN - 1;
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)path[i] <= ' ' || path[i] == 0x7f)
			return false;
	struct record_entry *grown = realloc(r->entries, (r->n + 1) * sizeof(*grown));
	if (!grown)
		return false;
	r->entries = grown;
	struct record_entry *e = &r->entries[r->n];
	e->path = strndup(path, plen);
	if (!e->path)
		return false;
	memcpy(e->hex, line, HEX_LEN);
	e->hex[HEX_LEN] = '\0';
	r->n++;
	return true;
}

#define HAND_SET "hand-set "
#define HAND_SET_LEN (sizeof(HAND_SET) - 1)

/* The file name of a "hand-set <file>" line; false if malformed. */
static bool parse_hand_set(const char *name, size_t len, struct record *r)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f || name[i] == '/')
			return false;
	char *copy = strndup(name, len);
	bool ok = copy && vf_strings_add(&r->hand_set, copy, NULL) == VF_OK;
	free(copy);
	return ok;
}

static void parse_record(const char *text, size_t len, struct record *r)
{
	r->kind = REC_BAD;
	size_t magic = strlen(RECORD_MAGIC);
	static const char gen[] = "generator ";
	size_t gen_len = sizeof(gen) - 1;
	if (len < magic + gen_len + HEX_LEN + 1 || memcmp(text, RECORD_MAGIC, magic) != 0)
		return;
	const char *p = text + magic, *end = text + len;
	if (memcmp(p, gen, gen_len) != 0 || !is_hex(p + gen_len, HEX_LEN) ||
	    p[gen_len + HEX_LEN] != '\n')
		return;
	memcpy(r->spec_hash, p + gen_len, HEX_LEN);
	r->spec_hash[HEX_LEN] = '\0';
	p += gen_len + HEX_LEN + 1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return;
		size_t n = (size_t)(nl - p);
		if (n > HAND_SET_LEN && !memcmp(p, HAND_SET, HAND_SET_LEN)) {
			if (!parse_hand_set(p + HAND_SET_LEN, n - HAND_SET_LEN, r))
				return;
		} else if (!parse_entry(p, n, r)) {
			return;
		}
		p = nl + 1;
	}
	r->kind = REC_COMMIT;
}

static char *record_rel(const char *machine, const struct vf_spec_generator *g,
			const char *name)
{
	return vf_store_rel(machine, g->name, name, NULL);
}

/* The generator's record: .commit, else (an older store) .generator. */
static enum vf_code read_record(const char *root, const char *machine,
				const struct vf_spec_generator *g, struct record *r,
				struct vf_error *err)
{
	memset(r, 0, sizeof(*r));
	char *commit = record_rel(machine, g, ".commit");
	char *legacy = record_rel(machine, g, ".generator");
	uint8_t *data = NULL;
	size_t len = 0;
	enum vf_code rc = commit && legacy ? VF_OK : vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK)
		rc = vf_store_read_at(root, commit, &data, &len, err);
	if (rc == VF_OK && data) {
		parse_record((const char *)data, len, r);
	} else if (rc == VF_OK) {
		rc = vf_store_read_at(root, legacy, &data, &len, err);
		if (rc == VF_OK && data) {
			r->kind = REC_LEGACY;
			if (len == HEX_LEN + 1 && data[HEX_LEN] == '\n' &&
			    is_hex((const char *)data, HEX_LEN))
				memcpy(r->spec_hash, data, HEX_LEN);
		}
	}
	free(data);
	free(commit);
	free(legacy);
	return rc;
}

static const struct record_entry *record_find(const struct record *r, const char *file,
					      enum leaf leaf)
{
	size_t flen = strlen(file);
	for (size_t i = 0; i < r->n; i++) {
		const char *p = r->entries[i].path;
		if (!strncmp(p, file, flen) && p[flen] == '/' && !strcmp(p + flen + 1, leaf_names[leaf]))
			return &r->entries[i];
	}
	return NULL;
}

/* ---- the state of stored files ----------------------------------------- */

/* What a file's leaves hold: read once, for its state and its record. */
struct file_facts {
	enum vf_state st;
	bool have[N_LEAVES];
	char hex[N_LEAVES][HEX_LEN + 1];
};

static enum vf_code read_leaf(const char *root, const char *machine,
			      const struct vf_spec_generator *g, const struct vf_spec_file *f,
			      enum leaf leaf, struct file_facts *facts, uint8_t **data,
			      size_t *len, struct vf_error *err)
{
	char *rel = vf_store_rel(machine, g->name, f->name, leaf_names[leaf]);
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_store_read_at(root, rel, data, len, err);
	free(rel);
	uint8_t sha[VF_SHA256_LEN];
	if (rc == VF_OK && *data && (rc = vf_sha256(*data, *len, sha, err)) == VF_OK) {
		facts->have[leaf] = true;
		to_hex(sha, facts->hex[leaf]);
	}
	return rc;
}

bool vf_vars_looks_sealed(const uint8_t *data, size_t len)
{
	struct vf_mem_src src;
	struct vf_bufreader br;
	struct vf_header h;
	vf_mem_src_init(&src, data, len);
	bool ok = vf_bufreader_init(&br, &src.base, 16384, NULL) == VF_OK &&
		  vf_header_parse(&h, &br, NULL) == VF_OK;
	if (ok)
		vf_header_free(&h);
	vf_bufreader_free(&br);
	return ok;
}

static enum vf_code secret_facts(const char *root, const char *machine,
				 const struct vf_spec_generator *g, const struct vf_spec_file *f,
				 const char *expected_manifest, struct file_facts *facts,
				 struct vf_error *err)
{
	uint8_t *secret = NULL, *manifest = NULL;
	size_t len = 0, manifest_len = 0;
	enum vf_code rc = read_leaf(root, machine, g, f, LEAF_SECRET, facts, &secret, &len, err);
	if (rc == VF_OK && secret)
		rc = read_leaf(root, machine, g, f, LEAF_RECIPIENTS, facts, &manifest,
			       &manifest_len, err);
	if (rc != VF_OK)
		facts->st = VF_STATE_CORRUPT;
	else if (!secret)
		facts->st = VF_STATE_MISSING;
	else if (!vf_vars_looks_sealed(secret, len))
		facts->st = VF_STATE_CORRUPT;
	else if (!expected_manifest)
		facts->st = VF_STATE_NO_KEY;
	else {
		bool same = false;
		if (manifest)
			rc = vf_manifest_same((const char *)manifest, manifest_len, expected_manifest,
					      strlen(expected_manifest), &same, err);
		facts->st = rc != VF_OK ? VF_STATE_CORRUPT
			    : same	    ? VF_STATE_OK
					    : VF_STATE_WRONG_RECIPIENTS;
	}
	free(secret);
	free(manifest);
	return rc;
}

static enum vf_code value_facts(const char *root, const char *machine,
				const struct vf_spec_generator *g, const struct vf_spec_file *f,
				struct file_facts *facts, struct vf_error *err)
{
	uint8_t *value = NULL;
	size_t len = 0;
	enum vf_code rc = read_leaf(root, machine, g, f, LEAF_VALUE, facts, &value, &len, err);
	facts->st = rc != VF_OK ? VF_STATE_CORRUPT : value ? VF_STATE_OK : VF_STATE_MISSING;
	/* A key pair's public half must at least be a public key: one that
	 * is not can be no private half's (which key it is, only the
	 * private half can say: vf_pair_verify). */
	if (facts->st == VF_STATE_OK && f == vf_pair_public(g) &&
	    vf_pair_check_public(g, value, len, NULL) != VF_OK)
		facts->st = VF_STATE_PAIR_MISMATCH;
	free(value);
	return rc;
}

static bool leaf_recorded(const struct record *r, const struct vf_spec_file *f,
			  const struct file_facts *facts, enum leaf leaf)
{
	const struct record_entry *e = record_find(r, f->name, leaf);
	return e && facts->have[leaf] && !strcmp(e->hex, facts->hex[leaf]);
}

/* Whether the record names exactly the bytes the file has. */
static bool file_recorded(const struct record *r, const struct vf_spec_file *f,
			  const struct file_facts *facts)
{
	if (!f->secret)
		return leaf_recorded(r, f, facts, LEAF_VALUE);
	return leaf_recorded(r, f, facts, LEAF_SECRET) && leaf_recorded(r, f, facts, LEAF_RECIPIENTS);
}

static enum vf_state judge(const struct record *r, const struct vf_spec_generator *g,
			   const struct vf_spec_file *f, const struct file_facts *facts)
{
	enum vf_state st = facts->st;
	/* A public half made under another definition (an age-keypair whose
	 * pq: changed) is of the other kind of key: stale, as its private
	 * half is, so that generate makes the pair again. */
	if (st == VF_STATE_PAIR_MISMATCH && (r->kind == REC_COMMIT || r->kind == REC_LEGACY) &&
	    strcmp(r->spec_hash, g->hash) != 0)
		return VF_STATE_STALE;
	if (st == VF_STATE_MISSING || st == VF_STATE_CORRUPT || st == VF_STATE_PAIR_MISMATCH)
		return st;
	bool vouched = st == VF_STATE_OK || st == VF_STATE_WRONG_RECIPIENTS;
	switch (r->kind) {
	case REC_COMMIT:
		if (!file_recorded(r, f, facts))
			return VF_STATE_INCOMPLETE;
		break;
	case REC_LEGACY:
		break; /* an older store: trusted as it was, by the hash alone */
	case REC_BAD:
	case REC_NONE:
		/* Files but no record: a commit that did not finish. */
		return vouched ? VF_STATE_INCOMPLETE : st;
	}
	/* A value set by hand was not made by the definition: it cannot
	 * be stale. Only a commit record can say a file was set by hand. */
	if (r->kind == REC_COMMIT && vf_strings_has(&r->hand_set, f->name))
		return st == VF_STATE_OK ? VF_STATE_HAND_SET : st;
	if (vouched && strcmp(r->spec_hash, g->hash) != 0)
		return VF_STATE_STALE;
	return st;
}

enum vf_code vf_vars_state(const struct vf_spec *spec, const char *root, const char *machine,
			   const struct vf_spec_generator *g, enum vf_state *states,
			   struct vf_error *err)
{
	struct vf_strings recipients = {0};
	char *manifest = NULL;
	size_t len;
	struct vf_error key_err;
	struct record record = {0};
	enum vf_code rc = vf_vars_recipients(spec, machine, g, &recipients, &key_err);
	if (rc == VF_OK)
		rc = vf_manifest_format(recipients.items, recipients.n, &manifest, &len, err);
	else if (rc == VF_E_KEY)
		rc = VF_OK; /* reported per file as no-key */
	else if (err)
		*err = key_err;
	/* A generator not made yet (every one, in a new store): its directory
	 * is missing, and so are its record and files, found in one lookup
	 * rather than one per file. Anything else in the way is left to the
	 * reads below, which name it. */
	bool absent = false;
	char *commit = rc == VF_OK ? record_rel(machine, g, ".commit") : NULL;
	if (commit)
		(void)vf_store_dir_absent(root, commit, &absent, NULL);
	free(commit);
	if (rc == VF_OK && !absent)
		rc = read_record(root, machine, g, &record, err);
	for (size_t i = 0; rc == VF_OK && i < g->n_files; i++) {
		const struct vf_spec_file *f = &g->files[i];
		struct file_facts facts = {.st = VF_STATE_MISSING};
		if (!absent)
			rc = f->secret ? secret_facts(root, machine, g, f, manifest, &facts, err)
				       : value_facts(root, machine, g, f, &facts, err);
		states[i] = judge(&record, g, f, &facts);
	}
	record_free(&record);
	free(manifest);
	vf_strings_free(&recipients);
	return rc;
}

/* Recipients parsed once per process, not once per file: generate, rekey
 * and the other store verbs seal thousands of files to the same admins,
 * and with post-quantum keys the parse (about 1,960 characters of bech32,
 * the ML-KEM modulus check) and the expansion for encapsulation cost more
 * than a wrap. 64 entries hold the admins and the machines that the
 * threads are sealing to at once; a hybrid entry is about 10 KiB, so the
 * cache stays under a MiB whatever the store's size. */
#define RECIPIENT_CACHE_ENTRIES 64
static struct vf_recipient_cache *recipient_cache;
static pthread_once_t recipient_cache_once = PTHREAD_ONCE_INIT;

static void make_recipient_cache(void)
{
	recipient_cache = vf_recipient_cache_new(RECIPIENT_CACHE_ENTRIES);
}

/* The parsed recipients of one seal, held from the cache until released. */
struct parsed_recipients {
	struct vf_recipient **items;
	size_t n;
};

static void release_recipients(struct parsed_recipients *p)
{
	for (size_t i = 0; i < p->n; i++)
		vf_recipient_cache_release(recipient_cache, p->items[i]);
	free(p->items);
	p->items = NULL;
	p->n = 0;
}

static enum vf_code get_recipients(const struct vf_strings *recipients,
				   struct parsed_recipients *p, struct vf_error *err)
{
	pthread_once(&recipient_cache_once, make_recipient_cache);
	p->n = 0;
	p->items = calloc(recipients->n ? recipients->n : 1, sizeof(*p->items));
	if (!recipient_cache || !p->items) {
		free(p->items);
		p->items = NULL;
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < recipients->n; i++) {
		rc = vf_recipient_cache_get(recipient_cache, recipients->items[i], &p->items[i],
					    err);
		if (rc == VF_OK)
			p->n++;
	}
	if (rc != VF_OK)
		release_recipients(p);
	return rc;
}

enum vf_code vf_seal(const struct vf_strings *recipients, const uint8_t *data, size_t len,
		     struct vf_buf *out, struct vf_error *err)
{
	struct parsed_recipients parsed = {0};
	enum vf_code rc = get_recipients(recipients, &parsed, err);
	struct vf_mem_src src;
	vf_mem_src_init(&src, data, len);
	if (rc == VF_OK)
		rc = vf_encrypt(parsed.items, parsed.n, &src.base, &out->sink, err);
	release_recipients(&parsed);
	return rc;
}

/* Decrypts the store file open at fd into out; a failure names the file. */
static enum vf_code decrypt_fd(int fd, const char *root, const char *rel,
			       const struct vf_identities *ids, struct vf_sink *out,
			       struct vf_error *err)
{
	struct vf_fd_src src;
	vf_fd_src_init(&src, fd, rel);
	struct vf_error e;
	enum vf_code rc = vf_decrypt(ids->items, ids->n, &src.base, VF_ARMOR_AUTO, out, &e);
	return rc == VF_OK ? rc : vf_fail(err, rc, "%s/%s: %s", root, rel, e.msg);
}

static enum vf_code not_generated(const char *root, const char *rel, struct vf_error *err)
{
	return vf_fail(err, VF_E_IO, "%s/%s: not generated yet (vargen generate)", root, rel);
}

/* The store file open at fd, decrypted into a guarded value. */
static enum vf_code unseal_fd(int fd, const char *root, const char *rel,
			      const struct vf_identities *ids, struct vf_value *out,
			      struct vf_error *err)
{
	struct vf_secbuf plain;
	vf_secbuf_init(&plain);
	enum vf_code rc = decrypt_fd(fd, root, rel, ids, &plain.sink, err);
	if (rc == VF_OK && !plain.data) /* an empty value: the buffer was never needed */
		rc = vf_value_set(out, "", 0, err);
	else if (rc == VF_OK) /* the guarded buffer becomes the value: no copy */
		out->data = vf_secbuf_take(&plain, &out->len);
	vf_secbuf_free(&plain);
	return rc;
}

enum vf_code vf_unseal(const char *root, const char *rel, const struct vf_identities *ids,
		       struct vf_value *out, struct vf_error *err)
{
	int fd;
	enum vf_code rc = vf_store_open(root, rel, &fd, err);
	if (rc != VF_OK)
		return rc;
	if (fd < 0)
		return not_generated(root, rel, err);
	rc = unseal_fd(fd, root, rel, ids, out, err);
	close(fd);
	return rc;
}

enum vf_code vf_vars_read(const char *root, const char *owner, const struct vf_spec_generator *g,
			  const struct vf_spec_file *f, const struct vf_identities *ids,
			  struct vf_value *out, struct vf_error *err)
{
	char *rel = vf_store_rel(owner, g->name, f->name, f->secret ? "secret" : "value");
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc;
	if (f->secret) {
		rc = vf_unseal(root, rel, ids, out, err);
	} else {
		uint8_t *data;
		size_t len;
		rc = vf_store_read_at(root, rel, &data, &len, err);
		if (rc == VF_OK && !data)
			rc = not_generated(root, rel, err);
		else if (rc == VF_OK)
			rc = vf_value_set(out, data, len, err);
		free(data);
	}
	free(rel);
	return rc;
}

/* A sink into a block of known size, for a plaintext that cannot be longer
 * than its ciphertext file. */
struct fixed_sink {
	struct vf_sink sink;
	uint8_t *data;
	size_t len, cap;
};

static enum vf_code fixed_write(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
				struct vf_error *err)
{
	struct fixed_sink *s = (struct fixed_sink *)sink;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > s->cap - s->len) /* the file grew while it was read */
			return vf_fail(err, VF_E_IO, "the file changed while it was read");
		memcpy(s->data + s->len, iov[i].iov_base, iov[i].iov_len);
		s->len += iov[i].iov_len;
	}
	return VF_OK;
}

static enum vf_code fixed_finish(struct vf_sink *sink, struct vf_error *err)
{
	(void)sink;
	(void)err;
	return VF_OK;
}

/* A secret file this small has its plaintext put on the scratch stack,
 * below the payload stream's own blocks (a 64 KiB chunk and its key),
 * which then still fit on the stack. */
#define SMALL_SECRET_FILE 8192

/* The secret file open at fd, handed to use: a small one's plaintext on
 * the scratch stack, a larger one's in a guarded value. */
static enum vf_code unseal_to(int fd, const char *root, const char *rel,
			      const struct vf_identities *ids, vf_value_fn use, void *ctx,
			      struct vf_error *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return vf_fail_errno(err, errno, "%s/%s", root, rel);
	if (st.st_size > SMALL_SECRET_FILE) {
		struct vf_value v = {0};
		enum vf_code rc = unseal_fd(fd, root, rel, ids, &v, err);
		if (rc == VF_OK)
			rc = use(ctx, v.data, v.len, err);
		vf_value_free(&v);
		return rc;
	}
	size_t cap = (size_t)st.st_size;
	struct fixed_sink out = {{fixed_write, fixed_finish}, vf_scratch_alloc(cap + 1), 0, cap};
	if (!out.data)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = decrypt_fd(fd, root, rel, ids, &out.sink, err);
	if (rc == VF_OK)
		rc = use(ctx, out.data, out.len, err);
	vf_scratch_free(out.data, cap + 1);
	return rc;
}

enum vf_code vf_vars_read_with(const char *root, const char *owner,
			       const struct vf_spec_generator *g, const struct vf_spec_file *f,
			       vf_identities_fn keys, vf_value_fn use, void *ctx,
			       struct vf_error *err)
{
	if (!f->secret) {
		struct vf_value v = {0};
		enum vf_code rc = vf_vars_read(root, owner, g, f, NULL, &v, err);
		if (rc == VF_OK)
			rc = use(ctx, v.data, v.len, err);
		vf_value_free(&v);
		return rc;
	}
	char *rel = vf_store_rel(owner, g->name, f->name, "secret");
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	int fd = -1;
	const struct vf_identities *ids = NULL;
	enum vf_code rc = vf_store_open(root, rel, &fd, err);
	if (rc == VF_OK && fd < 0)
		rc = not_generated(root, rel, err);
	/* The keys are asked for with the file already open: what decided
	 * that they are needed is what is read, whatever happens to the path
	 * meanwhile (a rename over it leaves this file as it was). */
	if (rc == VF_OK)
		rc = keys(ctx, &ids, err);
	if (rc == VF_OK)
		rc = unseal_to(fd, root, rel, ids, use, ctx, err);
	if (fd >= 0)
		close(fd);
	free(rel);
	return rc;
}

enum vf_code vf_vars_stage_file(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, const struct vf_spec_file *f,
				const struct vf_strings *recipients, const struct vf_value *v,
				struct vf_error *err)
{
	char *secret = vf_store_rel(machine, g->name, f->name, "secret");
	char *manifest_path = vf_store_rel(machine, g->name, f->name, "recipients");
	char *value = vf_store_rel(machine, g->name, f->name, "value");
	enum vf_code rc = secret && manifest_path && value
				  ? VF_OK
				  : vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK && f->secret) {
		struct vf_buf sealed;
		char *manifest = NULL;
		size_t len = 0;
		vf_buf_init(&sealed);
		rc = vf_seal(recipients, v->data, v->len, &sealed, err);
		if (rc == VF_OK)
			rc = vf_manifest_format(recipients->items, recipients->n, &manifest, &len, err);
		if (rc == VF_OK)
			rc = vf_txn_write(t, root, secret, sealed.data, sealed.len, err);
		if (rc == VF_OK)
			rc = vf_txn_write(t, root, manifest_path, manifest, len, err);
		if (rc == VF_OK)
			rc = vf_txn_remove(t, root, value, err);
		free(manifest);
		vf_buf_free(&sealed);
	} else if (rc == VF_OK) {
		rc = vf_txn_write(t, root, value, v->data, v->len, err);
		if (rc == VF_OK)
			rc = vf_txn_remove(t, root, secret, err);
		if (rc == VF_OK)
			rc = vf_txn_remove(t, root, manifest_path, err);
	}
	free(secret);
	free(manifest_path);
	free(value);
	return rc;
}

/* The hex SHA-256 a leaf will have after the transaction, into hex; false
 * when it will not exist. What the transaction does not touch is taken
 * from the old record, or (an older store, trusted as it was) read. */
static enum vf_code leaf_after(struct vf_txn *t, const char *root, const char *machine,
			       const struct vf_spec_generator *g, const struct vf_spec_file *f,
			       enum leaf leaf, const struct record *old, bool *present,
			       char hex[HEX_LEN + 1], struct vf_error *err)
{
	*present = false;
	char *rel = vf_store_rel(machine, g->name, f->name, leaf_names[leaf]);
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = VF_OK;
	bool removed;
	uint8_t sha[VF_SHA256_LEN];
	if (vf_txn_staged(t, rel, &removed, sha)) {
		*present = !removed;
		if (!removed)
			to_hex(sha, hex);
	} else if (old->kind == REC_COMMIT) {
		const struct record_entry *e = record_find(old, f->name, leaf);
		*present = e != NULL;
		if (e)
			memcpy(hex, e->hex, HEX_LEN + 1);
	} else if (old->kind == REC_LEGACY) {
		uint8_t *data = NULL;
		size_t len = 0;
		rc = vf_store_read_at(root, rel, &data, &len, err);
		if (rc == VF_OK && data && (rc = vf_sha256(data, len, sha, err)) == VF_OK) {
			*present = true;
			to_hex(sha, hex);
		}
		free(data);
	}
	free(rel);
	return rc;
}

/* Whether file i is marked set by hand in the new record: set now, or
 * before and not made anew since. */
static bool marked_hand_set(const struct vf_spec_generator *g, size_t i, const struct record *old,
			    const struct vf_update *u)
{
	const char *name = g->files[i].name;
	if (u && u->hand_set && !strcmp(u->hand_set, name))
		return true;
	if (u && u->hand_set && u->hand_set_derived && !strcmp(u->hand_set_derived, name))
		return true;
	return old->kind == REC_COMMIT && vf_strings_has(&old->hand_set, name) &&
	       !(u && u->made && u->made[i]);
}

static enum vf_code record_text(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, const char *spec_hash,
				const struct record *old, const struct vf_update *u,
				struct vf_buf *out, struct vf_error *err)
{
	bool *present_any = calloc(g->n_files + 1, sizeof(bool));
	if (!present_any)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_buf_append_str(out, RECORD_MAGIC "generator ", err);
	if (rc == VF_OK)
		rc = vf_buf_append_str(out, spec_hash, err);
	if (rc == VF_OK)
		rc = vf_buf_append_str(out, "\n", err);
	for (size_t i = 0; rc == VF_OK && i < g->n_files; i++) {
		const struct vf_spec_file *f = &g->files[i];
		for (enum leaf leaf = 0; rc == VF_OK && leaf < N_LEAVES; leaf++) {
			bool present;
			char hex[HEX_LEN + 1];
			rc = leaf_after(t, root, machine, g, f, leaf, old, &present, hex, err);
			if (rc != VF_OK || !present)
				continue;
			present_any[i] = true;
			char line[HEX_LEN + 2];
			snprintf(line, sizeof(line), "%s ", hex);
			rc = vf_buf_append_str(out, line, err);
			if (rc == VF_OK)
				rc = vf_buf_append_str(out, f->name, err);
			if (rc == VF_OK)
				rc = vf_buf_append_str(out, "/", err);
			if (rc == VF_OK)
				rc = vf_buf_append_str(out, leaf_names[leaf], err);
			if (rc == VF_OK)
				rc = vf_buf_append_str(out, "\n", err);
		}
	}
	for (size_t i = 0; rc == VF_OK && i < g->n_files; i++) {
		if (!present_any[i] || !marked_hand_set(g, i, old, u))
			continue;
		rc = vf_buf_append_str(out, HAND_SET, err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(out, g->files[i].name, err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(out, "\n", err);
	}
	free(present_any);
	return rc;
}

/* Stages one record file in phase (data NULL: its removal). */
static enum vf_code stage_record(struct vf_txn *t, const char *root, const char *machine,
				 const struct vf_spec_generator *g, const char *name,
				 enum vf_txn_phase phase, const void *data, size_t len,
				 struct vf_error *err)
{
	char *rel = record_rel(machine, g, name);
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_txn_stage(t, root, rel, phase, data, len, err);
	free(rel);
	return rc;
}

/* The new records, both after every data file: .commit, then (when
 * hash_line) .generator. In that order a kill between the two leaves the
 * commit record, which vouches for the new files by their bytes, never a
 * bare .generator, which is how a store from before commit records looks. */
static enum vf_code stage_records(struct vf_txn *t, const char *root, const char *machine,
				  const struct vf_spec_generator *g, const char *spec_hash,
				  bool hash_line, const struct record *old,
				  const struct vf_update *u, struct vf_error *err)
{
	struct vf_buf text;
	vf_buf_init(&text);
	enum vf_code rc = record_text(t, root, machine, g, spec_hash, old, u, &text, err);
	if (rc == VF_OK)
		rc = stage_record(t, root, machine, g, ".commit", VF_TXN_RECORD, text.data, text.len,
				  err);
	if (rc == VF_OK && hash_line) {
		char line[HEX_LEN + 1];
		memcpy(line, spec_hash, HEX_LEN);
		line[HEX_LEN] = '\n';
		rc = stage_record(t, root, machine, g, ".generator", VF_TXN_RECORD, line,
				  sizeof(line), err);
	}
	vf_buf_free(&text);
	return rc;
}

enum vf_code vf_vars_stage_hash(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, struct vf_error *err)
{
	/* Made anew: no file of the old generation outlives the commit, and
	 * until it completes nothing vouches for the files (a kill leaves
	 * them reported incomplete, and generate makes them again). */
	struct record none = {0};
	enum vf_code rc =
		stage_record(t, root, machine, g, ".commit", VF_TXN_INVALIDATE, NULL, 0, err);
	if (rc == VF_OK)
		rc = stage_record(t, root, machine, g, ".generator", VF_TXN_INVALIDATE, NULL, 0, err);
	if (rc == VF_OK)
		rc = stage_records(t, root, machine, g, g->hash, true, &none, NULL, err);
	return rc;
}

enum vf_code vf_vars_stage_update(struct vf_txn *t, const char *root, const char *machine,
				  const struct vf_spec_generator *g, const struct vf_update *u,
				  struct vf_error *err)
{
	struct record old;
	enum vf_code rc = read_record(root, machine, g, &old, err);
	if (rc != VF_OK)
		return rc;
	/* Resealed or completed (neither accept nor hand_set), a generator
	 * with no sound record keeps none: rewriting its seals vouches for
	 * nothing. Changed in place, the files of a generation stay one
	 * generation, so .generator may stay while the commit record is
	 * rewritten: a kill in between leaves what an older store looks
	 * like. */
	bool known = (old.kind == REC_COMMIT || old.kind == REC_LEGACY) && old.spec_hash[0];
	const char *spec_hash = u->accept ? g->hash
				: known	  ? old.spec_hash
				: u->hand_set ? g->hash
					      : NULL;
	if (spec_hash) {
		char hash[HEX_LEN + 1];
		memcpy(hash, spec_hash, HEX_LEN + 1);
		rc = stage_record(t, root, machine, g, ".commit", VF_TXN_INVALIDATE, NULL, 0, err);
		if (rc == VF_OK)
			rc = stage_records(t, root, machine, g, hash, u->accept || !known, &old, u, err);
	}
	record_free(&old);
	return rc;
}

enum vf_code vf_vars_stage_amend(struct vf_txn *t, const char *root, const char *machine,
				 const struct vf_spec_generator *g, bool fresh,
				 struct vf_error *err)
{
	struct vf_update u = {.accept = fresh};
	return vf_vars_stage_update(t, root, machine, g, &u, err);
}

static enum vf_code reseal_header_only(const uint8_t *file, size_t len,
				       const struct vf_identities *ids,
				       const struct vf_strings *recipients, struct vf_buf *out,
				       struct vf_error *err)
{
	struct vf_mem_src src;
	struct vf_bufreader br;
	struct vf_header old = {0}, fresh = {0};
	struct parsed_recipients parsed = {0};
	uint8_t *file_key = vf_scratch_alloc(VF_FILE_KEY_LEN);
	if (!file_key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	vf_mem_src_init(&src, file, len);
	enum vf_code rc = vf_bufreader_init(&br, &src.base, 16384, err);
	bool have_br = rc == VF_OK;
	if (rc == VF_OK)
		rc = vf_header_parse(&old, &br, err);
	if (rc == VF_OK)
		rc = vf_unwrap_header(ids->items, ids->n, &old, file_key, err);
	if (rc == VF_OK)
		rc = get_recipients(recipients, &parsed, err);
	if (rc == VF_OK)
		rc = vf_wrap_header(parsed.items, parsed.n, file_key, &fresh, err);
	if (rc == VF_OK)
		rc = vf_header_marshal(&fresh, 1, out, err);
	/* The payload (nonce and chunks) is whatever follows the old header:
	 * what the reader has buffered, then the rest of the file. */
	if (rc == VF_OK) {
		size_t payload_at = src.pos - (br.end - br.start);
		rc = vf_buf_append(out, file + payload_at, len - payload_at, err);
	}
	if (have_br)
		vf_bufreader_free(&br);
	vf_header_free(&old);
	vf_header_free(&fresh);
	release_recipients(&parsed);
	vf_scratch_free(file_key, VF_FILE_KEY_LEN);
	return rc;
}

enum vf_code vf_reseal(const uint8_t *file, size_t len, const struct vf_identities *ids,
		       const struct vf_strings *recipients, bool rotate, struct vf_buf *out,
		       struct vf_error *err)
{
	bool armored = len >= 10 && !memcmp(file, "-----BEGIN", 10);
	if (!rotate && !armored)
		return reseal_header_only(file, len, ids, recipients, out, err);
	/* A new file key means a new payload: decrypt and seal again. */
	struct vf_mem_src src;
	struct vf_secbuf plain;
	vf_mem_src_init(&src, file, len);
	vf_secbuf_init(&plain);
	enum vf_code rc = vf_decrypt(ids->items, ids->n, &src.base, VF_ARMOR_AUTO, &plain.sink, err);
	if (rc == VF_OK)
		rc = vf_seal(recipients, plain.data, plain.len, out, err);
	vf_secbuf_free(&plain);
	return rc;
}

enum vf_code vf_vars_stage_reseal(struct vf_txn *t, const char *root, const char *secret_rel,
				  const char *manifest_rel, const char *manifest, size_t manifest_len,
				  const struct vf_identities *ids, const struct vf_strings *recipients,
				  bool rotate, struct vf_error *err)
{
	uint8_t *file = NULL;
	size_t file_len;
	struct vf_buf out;
	vf_buf_init(&out);
	enum vf_code rc = vf_store_read_at(root, secret_rel, &file, &file_len, err);
	if (rc == VF_OK && !file)
		rc = vf_fail(err, VF_E_IO, "%s/%s: vanished", root, secret_rel);
	if (rc == VF_OK)
		rc = vf_reseal(file, file_len, ids, recipients, rotate, &out, err);
	if (rc != VF_OK && rc != VF_E_NOMEM && rc != VF_E_IO && err) {
		struct vf_error why = *err; /* name the file the reason is about */
		vf_fail(err, rc, "%s/%s: %s", root, secret_rel, why.msg);
	}
	if (rc == VF_OK)
		rc = vf_txn_write(t, root, secret_rel, out.data, out.len, err);
	if (rc == VF_OK)
		rc = vf_txn_write(t, root, manifest_rel, manifest, manifest_len, err);
	vf_buf_free(&out);
	free(file);
	return rc;
}
