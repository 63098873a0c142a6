#include "vars.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "header.h"
#include "secmem.h"
#include "store.h"

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

enum vf_code vf_vars_recipients(const struct vf_spec *spec, const char *machine,
				const struct vf_spec_generator *g, struct vf_strings *out,
				struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < spec->n_admins; i++)
		if (!vf_strings_has(out, spec->admins[i].recipient))
			rc = vf_strings_add(out, spec->admins[i].recipient, err);
	if (rc != VF_OK)
		return rc;
	if (machine) {
		const struct vf_spec_machine *m = vf_spec_machine(spec, machine);
		if (!m)
			return vf_fail(err, VF_E_ARG, "no machine %s in the spec", machine);
		return add_machine_key(m, out, err);
	}
	for (size_t i = 0; rc == VF_OK && i < spec->n_machines; i++)
		if (vf_vars_machine_uses(spec, &spec->machines[i], g))
			rc = add_machine_key(&spec->machines[i], out, err);
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
	}
	return "unknown";
}

/* A stored secret must at least be a well-formed age header. */
static bool looks_sealed(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	struct vf_fd_src src;
	struct vf_bufreader br;
	struct vf_header h;
	vf_fd_src_init(&src, fd, path);
	bool ok = vf_bufreader_init(&br, &src.base, 16384, NULL) == VF_OK &&
		  vf_header_parse(&h, &br, NULL) == VF_OK;
	if (ok)
		vf_header_free(&h);
	vf_bufreader_free(&br);
	close(fd);
	return ok;
}

static enum vf_state secret_state(const char *root, const char *machine,
				  const struct vf_spec_generator *g, const struct vf_spec_file *f,
				  const char *expected_manifest)
{
	char *secret = vf_store_path(root, machine, g->name, f->name, "secret");
	char *manifest = vf_store_path(root, machine, g->name, f->name, "recipients");
	enum vf_state st = VF_STATE_OK;
	uint8_t *have = NULL;
	size_t have_len = 0;
	if (!secret || !manifest)
		st = VF_STATE_CORRUPT;
	else if (!vf_store_exists(secret))
		st = VF_STATE_MISSING;
	else if (!looks_sealed(secret))
		st = VF_STATE_CORRUPT;
	else if (!expected_manifest)
		st = VF_STATE_NO_KEY;
	else if (vf_store_read(manifest, &have, &have_len, NULL) != VF_OK || !have ||
		 strcmp((char *)have, expected_manifest) != 0)
		st = VF_STATE_WRONG_RECIPIENTS;
	free(have);
	free(secret);
	free(manifest);
	return st;
}

static enum vf_state value_state(const char *root, const char *machine,
				 const struct vf_spec_generator *g, const struct vf_spec_file *f)
{
	char *value = vf_store_path(root, machine, g->name, f->name, "value");
	enum vf_state st = !value ? VF_STATE_CORRUPT
			   : vf_store_exists(value) ? VF_STATE_OK
						    : VF_STATE_MISSING;
	free(value);
	return st;
}

static bool hash_matches(const char *root, const char *machine,
			 const struct vf_spec_generator *g)
{
	char *path = vf_store_path(root, machine, g->name, ".generator", NULL);
	uint8_t *have = NULL;
	size_t len = 0;
	bool ok = path && vf_store_read(path, &have, &len, NULL) == VF_OK && have &&
		  len == 65 && !memcmp(have, g->hash, 64) && have[64] == '\n';
	free(have);
	free(path);
	return ok;
}

enum vf_code vf_vars_state(const struct vf_spec *spec, const char *root, const char *machine,
			   const struct vf_spec_generator *g, enum vf_state *states,
			   struct vf_error *err)
{
	struct vf_strings recipients = {0};
	char *manifest = NULL;
	size_t len;
	struct vf_error key_err;
	enum vf_code rc = vf_vars_recipients(spec, machine, g, &recipients, &key_err);
	if (rc == VF_OK)
		rc = vf_manifest_format(recipients.items, recipients.n, &manifest, &len, err);
	else if (rc == VF_E_KEY)
		rc = VF_OK; /* reported per file as no-key */
	else if (err)
		*err = key_err;
	bool fresh = hash_matches(root, machine, g);
	for (size_t i = 0; rc == VF_OK && i < g->n_files; i++) {
		const struct vf_spec_file *f = &g->files[i];
		enum vf_state st = f->secret ? secret_state(root, machine, g, f, manifest)
					     : value_state(root, machine, g, f);
		if (!fresh && (st == VF_STATE_OK || st == VF_STATE_WRONG_RECIPIENTS))
			st = VF_STATE_STALE;
		states[i] = st;
	}
	free(manifest);
	vf_strings_free(&recipients);
	return rc;
}

enum vf_code vf_seal(const struct vf_strings *recipients, const uint8_t *data, size_t len,
		     struct vf_buf *out, struct vf_error *err)
{
	struct vf_recipients parsed = {0};
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < recipients->n; i++) {
		struct vf_recipient *r;
		rc = vf_recipient_parse(recipients->items[i], &r, err);
		if (rc == VF_OK)
			rc = vf_recipients_add(&parsed, r, err);
	}
	struct vf_mem_src src;
	vf_mem_src_init(&src, data, len);
	if (rc == VF_OK)
		rc = vf_encrypt(parsed.items, parsed.n, &src.base, &out->sink, err);
	vf_recipients_free(&parsed);
	return rc;
}

enum vf_code vf_unseal(const char *path, const struct vf_identities *ids, struct vf_value *out,
		       struct vf_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return vf_fail_errno(err, errno, "%s", path);
	struct vf_fd_src src;
	vf_fd_src_init(&src, fd, path);
	struct vf_buf plain;
	vf_buf_init(&plain);
	enum vf_code rc = vf_decrypt(ids->items, ids->n, &src.base, VF_ARMOR_AUTO, &plain.sink, err);
	close(fd);
	if (rc == VF_OK)
		rc = vf_value_set(out, plain.data, plain.len, err);
	vf_buf_free(&plain);
	return rc;
}

enum vf_code vf_vars_read(const char *root, const char *owner, const struct vf_spec_generator *g,
			  const struct vf_spec_file *f, const struct vf_identities *ids,
			  struct vf_value *out, struct vf_error *err)
{
	char *path = vf_store_path(root, owner, g->name, f->name, f->secret ? "secret" : "value");
	if (!path)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = VF_OK;
	struct vf_error e;
	if (!vf_store_exists(path)) {
		rc = vf_fail(err, VF_E_IO, "%s: not generated yet (vargen generate)", path);
	} else if (f->secret) {
		rc = vf_unseal(path, ids, out, &e);
		if (rc != VF_OK)
			vf_fail(err, rc, "%s: %s", path, e.msg);
	} else {
		uint8_t *data;
		size_t len;
		rc = vf_store_read(path, &data, &len, err);
		if (rc == VF_OK)
			rc = vf_value_set(out, data, len, err);
		free(data);
	}
	free(path);
	return rc;
}

enum vf_code vf_vars_stage_file(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, const struct vf_spec_file *f,
				const struct vf_strings *recipients, const struct vf_value *v,
				struct vf_error *err)
{
	char *secret = vf_store_path(root, machine, g->name, f->name, "secret");
	char *manifest_path = vf_store_path(root, machine, g->name, f->name, "recipients");
	char *value = vf_store_path(root, machine, g->name, f->name, "value");
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
			rc = vf_txn_write(t, secret, sealed.data, sealed.len, err);
		if (rc == VF_OK)
			rc = vf_txn_write(t, manifest_path, manifest, len, err);
		if (rc == VF_OK)
			rc = vf_txn_remove(t, value, err);
		free(manifest);
		vf_buf_free(&sealed);
	} else if (rc == VF_OK) {
		rc = vf_txn_write(t, value, v->data, v->len, err);
		if (rc == VF_OK)
			rc = vf_txn_remove(t, secret, err);
		if (rc == VF_OK)
			rc = vf_txn_remove(t, manifest_path, err);
	}
	free(secret);
	free(manifest_path);
	free(value);
	return rc;
}

enum vf_code vf_vars_stage_hash(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, struct vf_error *err)
{
	char *path = vf_store_path(root, machine, g->name, ".generator", NULL);
	if (!path)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	char line[66];
	memcpy(line, g->hash, 64);
	line[64] = '\n';
	enum vf_code rc = vf_txn_write(t, path, line, 65, err);
	free(path);
	return rc;
}

static enum vf_code reseal_header_only(const uint8_t *file, size_t len,
				       const struct vf_identities *ids,
				       const struct vf_strings *recipients, struct vf_buf *out,
				       struct vf_error *err)
{
	struct vf_mem_src src;
	struct vf_bufreader br;
	struct vf_header old = {0}, fresh = {0};
	struct vf_recipients parsed = {0};
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
	for (size_t i = 0; rc == VF_OK && i < recipients->n; i++) {
		struct vf_recipient *r;
		rc = vf_recipient_parse(recipients->items[i], &r, err);
		if (rc == VF_OK)
			rc = vf_recipients_add(&parsed, r, err);
	}
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
	vf_recipients_free(&parsed);
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
	struct vf_buf plain;
	vf_mem_src_init(&src, file, len);
	vf_buf_init(&plain);
	enum vf_code rc = vf_decrypt(ids->items, ids->n, &src.base, VF_ARMOR_AUTO, &plain.sink, err);
	if (rc == VF_OK)
		rc = vf_seal(recipients, plain.data, plain.len, out, err);
	vf_buf_free(&plain);
	return rc;
}
