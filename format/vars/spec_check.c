/* The spec's checks across the document: safe names, the sorted name
 * index (lookups and repeats), a generator's sources, dependency cycles
 * and what a machine's credentials point at. */
#include "vars/spec_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why a name is not a safe path component, or NULL; the characters in
 * refused are not allowed either. Stricter than systemd's
 * credential_name_valid() (non-empty, not "." or "..", no '/' or ':',
 * 0x20..0x7e, at most NAME_MAX bytes): no leading '.', no space. */
const char *spec_name_problem(const char *s, size_t len, const char *refused)
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

enum vf_code spec_check_name(struct ctx *c, const yaml_node_t *n, const char *what,
			     bool credential)
{
	if (n->type != YAML_SCALAR_NODE || spec_is_null(n))
		return spec_fail_at(c, n, "%s name is %s (expected a name)", what, spec_type_name(n));
	const char *problem = spec_name_problem(spec_text(n), n->data.scalar.length,
						credential ? CREDENTIAL_REFUSED : "");
	if (!problem)
		return VF_OK;
	return spec_fail_at(c, n,
			    "bad %s name '%s': %s (expected printable ASCII without spaces, "
			    "'/'%s, not starting with '.')",
			    what, spec_show_n(spec_text(n), n->data.scalar.length).s, problem,
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
enum vf_code spec_index_build(struct ctx *c, const void *base, size_t n, size_t stride,
			      struct index *ix)
{
	if (!(ix->e = calloc(n ? n : 1, sizeof(*ix->e))))
		return spec_nomem(c);
	ix->n = n;
	for (size_t i = 0; i < n; i++) {
		char *const *name = (const void *)((const char *)base + i * stride);
		ix->e[i] = (struct entry){*name, i};
	}
	qsort(ix->e, n, sizeof(*ix->e), cmp_entry);
	return VF_OK;
}

/* The element named name, or SIZE_MAX. */
size_t spec_index_find(const struct index *ix, const char *name)
{
	const struct entry *e =
		ix->n ? bsearch(name, ix->e, ix->n, sizeof(*ix->e), cmp_key_entry) : NULL;
	return e ? e->at : SIZE_MAX;
}

/* The first element, in document order, whose name an earlier one has
 * (equal names sort together, in document order), or SIZE_MAX. */
size_t spec_index_repeat(const struct index *ix)
{
	size_t first = SIZE_MAX;
	for (size_t i = 1; i < ix->n; i++)
		if (strcmp(ix->e[i - 1].name, ix->e[i].name) == 0 && ix->e[i].at < first)
			first = ix->e[i].at;
	return first;
}

void spec_index_free(struct index *ix)
{
	free(ix->e);
	ix->e = NULL;
	ix->n = 0;
}

/* Either a script that writes files without kinds, or no script and a
 * kind on every file, or imported values (files without kinds). */
const char *vf_spec_name_problem(const char *name)
{
	return spec_name_problem(name, strlen(name), "");
}

enum vf_code spec_check_sources(struct ctx *c, const char *where, struct vf_spec_generator *g)
{
	if (g->imported && g->n_files == 0)
		return spec_fail_pos(c, g->pos, "%s was imported and has no files (expected the files "
					   "that were imported)",
				     where);
	if (g->imported)
		return VF_OK; /* no file has a kind: parse_file refused them */
	if (g->script && g->n_files == 0)
		return spec_fail_pos(c, g->pos, "%s has no files (expected files naming what the script "
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
		return spec_fail_pos(c, g->pos,
				     "%s has no script (expected a script, a kind, or files that all "
				     "have a kind)",
				     where);
	return spec_fail_pos(c, g->files[first_plain].pos,
			     "file '%s' has no kind and %s has no script (expected a kind on every "
			     "file, or a script)",
			     spec_show(g->files[first_plain].name).s, where);
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
				 spec_show(gs[g].name).s);
		used += w > 0 ? (size_t)w : 0;
	}
	return spec_fail_pos(c, gs[target].pos, "dependency cycle: %s (expected no cycles)", path);
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
	size_t v = spec_find_generator(c, g->dependencies[d->next[u]++]);
	if (d->color[v] == 1)
		return report_cycle(c, d, v);
	if (d->color[v] == 0) {
		d->color[v] = 1;
		d->stack[d->depth++] = v;
	}
	return VF_OK;
}

enum vf_code spec_check_cycles(struct ctx *c)
{
	size_t n = c->spec->n_generators;
	struct dfs d = {calloc(n + 1, 1), calloc(n + 1, sizeof(size_t)),
			calloc(n + 1, sizeof(size_t)), 0};
	enum vf_code rc = d.color && d.stack && d.next ? VF_OK : spec_nomem(c);
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

/* "generator/file", a file of a generator the machine uses (uses: the
 * index of the machine's generators). */
enum vf_code spec_credential_target(struct ctx *c, const struct vf_spec_machine *m,
				    const struct index *uses, const yaml_node_t *val,
				    struct vf_spec_credential *cr)
{
	char what[128];
	snprintf(what, sizeof(what), "credential '%s'", cr->name);
	char *target = NULL;
	enum vf_code rc = spec_get_string(c, val, what, &target);
	if (rc != VF_OK)
		return rc;
	char *slash = strchr(target, '/');
	if (slash)
		*slash = '\0';
	if (!slash || !target[0] || !slash[1] || strchr(slash + 1, '/'))
		rc = spec_fail_at(c, val, "%s has source '%s' (expected generator/file)", what,
				  spec_show_n(spec_text(val), val->data.scalar.length).s);
	else if (spec_index_find(uses, target) == SIZE_MAX)
		rc = spec_fail_at(c, val,
				  "%s names generator '%s', which machine '%s' does not use "
				  "(expected one of the machine's generators)",
				  what, spec_show(target).s, m->name);
	else if (spec_index_find(&c->files[spec_find_generator(c, target)], slash + 1) == SIZE_MAX)
		rc = spec_fail_at(c, val, "%s names file '%s', which generator '%s' does not have "
				     "(expected one of its files)",
			     what, spec_show(slash + 1).s, target);
	if (rc == VF_OK && (!(cr->generator = strdup(target)) || !(cr->file = strdup(slash + 1))))
		rc = spec_nomem(c);
	free(target);
	return rc;
}

/* ---- age's mixing rule --------------------------------------------------- */

/* age 1.3 refuses to seal a file to post-quantum and classic recipients
 * together: a classic stanza beside a hybrid one gives away what the hybrid
 * one protects against (whoever breaks X25519 later reads the file through
 * the classic stanza). Every file of the store is sealed to the admins and
 * to the machine (or, shared, to every machine using it) that it is for,
 * and every kept machine key to the admins: so the admins are all of one
 * kind, each machine's key is of theirs, and, when there are no admins,
 * the machines sharing a generator are of one kind. */

#define MIX_RULE                                                                          \
	"age refuses to seal a file to post-quantum and classic recipients together, and " \
	"every file is sealed to the admins and its machines (docs/spec.md)"
#define MIX_NAMED 3 /* classic recipients named in a message, then "and N more" */

static const char *kind_name(bool post_quantum)
{
	return post_quantum ? "post-quantum" : "classic";
}

/* "name key, name key, and N more": the classic admins, for messages. */
static void classic_admins(const struct vf_spec *spec, char *out, size_t cap)
{
	size_t used = 0, named = 0, more = 0;
	out[0] = '\0';
	for (size_t i = 0; i < spec->n_admins; i++) {
		const struct vf_spec_admin *a = &spec->admins[i];
		if (a->post_quantum)
			continue;
		if (named == MIX_NAMED) {
			more++;
			continue;
		}
		int w = snprintf(out + used, cap - used, "%s%s %s", named ? ", " : "",
				 spec_show(a->name).s, spec_show(a->recipient).s);
		used += w > 0 && (size_t)w < cap - used ? (size_t)w : 0;
		named++;
	}
	if (more)
		snprintf(out + used, cap - used, ", and %zu more", more);
}

/* The admins, all of one kind: reported at the first whose kind is not
 * the first admin's. */
static enum vf_code check_admins(struct ctx *c, bool *post_quantum)
{
	const struct vf_spec *spec = c->spec;
	*post_quantum = spec->n_admins && spec->admins[0].post_quantum;
	for (size_t i = 1; i < spec->n_admins; i++) {
		const struct vf_spec_admin *a = &spec->admins[i];
		if (a->post_quantum == *post_quantum)
			continue;
		char classic[4 * (SHOW_MAX + 8)];
		classic_admins(spec, classic, sizeof(classic));
		return spec_fail_pos(c, a->pos,
				     "admin '%s' has a %s key while admin '%s' has a %s one: %s "
				     "(classic: %s; expected the admins all post-quantum or all "
				     "classic)",
				     spec_show(a->name).s, kind_name(a->post_quantum),
				     spec_show(spec->admins[0].name).s, kind_name(*post_quantum),
				     MIX_RULE, classic);
	}
	return VF_OK;
}

/* Each machine's key, of the admins' kind: reported at the key. */
static enum vf_code check_machines(struct ctx *c, bool admins_pq)
{
	const struct vf_spec *spec = c->spec;
	for (size_t i = 0; spec->n_admins && i < spec->n_machines; i++) {
		const struct vf_spec_machine *m = &spec->machines[i];
		if (!m->key || m->key_post_quantum == admins_pq)
			continue;
		char classic[4 * (SHOW_MAX + 8)];
		if (admins_pq)
			snprintf(classic, sizeof(classic), "machine %s's key %s", spec_show(m->name).s,
				 spec_show(m->key).s);
		else
			classic_admins(spec, classic, sizeof(classic));
		return spec_fail_pos(c, m->key_pos,
				     "machine '%s' has a %s key while the admins' keys are %s: %s "
				     "(classic: %s; expected a %s key for it: varseal machine keygen "
				     "%s--force %s)",
				     spec_show(m->name).s, kind_name(m->key_post_quantum),
				     kind_name(admins_pq), MIX_RULE, classic, kind_name(admins_pq),
				     admins_pq ? "--pq " : "", spec_show(m->name).s);
	}
	return VF_OK;
}

/* The shared generators reached from machine m (its generators and their
 * dependencies), each marked in seen[] once per machine (stamp). */
struct reach {
	size_t *stack;
	size_t *seen; /* per generator: the stamp of the last machine that reached it */
	const struct vf_spec_machine **first; /* per generator: the first machine with a key */
};

static enum vf_code reach_shared(struct ctx *c, struct reach *r, const struct vf_spec_machine *m,
				 size_t stamp)
{
	const struct vf_spec *spec = c->spec;
	size_t depth = 0;
	for (size_t i = 0; i < m->n_generators; i++) {
		size_t g = spec_find_generator(c, m->generators[i]);
		if (r->seen[g] != stamp) {
			r->seen[g] = stamp;
			r->stack[depth++] = g;
		}
	}
	while (depth > 0) {
		const struct vf_spec_generator *g = &spec->generators[r->stack[--depth]];
		const struct vf_spec_machine **first = &r->first[g - spec->generators];
		if (g->share && !*first) {
			*first = m;
		} else if (g->share && (*first)->key_post_quantum != m->key_post_quantum) {
			const struct vf_spec_machine *classic = m->key_post_quantum ? *first : m;
			const struct vf_spec_machine *pq = m->key_post_quantum ? m : *first;
			return spec_fail_pos(c, g->pos,
					     "generator '%s' is shared by machines with post-quantum "
					     "keys ('%s') and classic keys ('%s'): %s (classic: machine "
					     "%s's key %s; expected the machines sharing it all "
					     "post-quantum or all classic)",
					     spec_show(g->name).s, spec_show(pq->name).s,
					     spec_show(classic->name).s, MIX_RULE,
					     spec_show(classic->name).s, spec_show(classic->key).s);
		}
		for (size_t i = 0; i < g->n_dependencies; i++) {
			size_t d = spec_find_generator(c, g->dependencies[i]);
			if (r->seen[d] != stamp) {
				r->seen[d] = stamp;
				r->stack[depth++] = d;
			}
		}
	}
	return VF_OK;
}

/* Without admins, the machines sharing a generator are its only
 * recipients: all of one kind (with admins, check_machines has made every
 * machine the admins' kind already). */
static enum vf_code check_shared(struct ctx *c)
{
	const struct vf_spec *spec = c->spec;
	size_t n = spec->n_generators;
	if (spec->n_admins || n == 0)
		return VF_OK;
	struct reach r = {calloc(n, sizeof(size_t)), calloc(n, sizeof(size_t)),
			  calloc(n, sizeof(*r.first))};
	enum vf_code rc = r.stack && r.seen && r.first ? VF_OK : spec_nomem(c);
	for (size_t i = 0; rc == VF_OK && i < spec->n_machines; i++)
		if (spec->machines[i].key)
			rc = reach_shared(c, &r, &spec->machines[i], i + 1);
	free(r.stack);
	free(r.seen);
	free(r.first);
	return rc;
}

enum vf_code spec_check_mixing(struct ctx *c)
{
	bool admins_pq;
	enum vf_code rc = check_admins(c, &admins_pq);
	if (rc == VF_OK)
		rc = check_machines(c, admins_pq);
	if (rc == VF_OK)
		rc = check_shared(c);
	return rc;
}
