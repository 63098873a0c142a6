/* What vargen generate does with each generator, decided before anything
 * is made: values are made only where none exist, and replaced only where
 * --regenerate with a selection asks for it (clan's rule: a value changes
 * only when the user says so). Everything else that is not sound is left
 * as it is and said, with the command that deals with it. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"

bool vg_made(const struct run *r, size_t i)
{
	enum action a = r->dec[i].act;
	return a == ACT_MAKE || a == ACT_FILL || a == ACT_REPLACE;
}

static bool same_owner(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Items ordered by generator, then owner (shared first), then place. */
static int cmp_key(const struct vg_item *it, const struct vf_spec_generator *g,
		   const char *owner)
{
	if (it->g != g)
		return (uintptr_t)it->g < (uintptr_t)g ? -1 : 1;
	if (!it->machine || !owner)
		return (it->machine != NULL) - (owner != NULL);
	return strcmp(it->machine, owner);
}

static int cmp_items(const void *a, const void *b, void *ctx)
{
	const struct vg_item *items = ctx;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = cmp_key(&items[i], items[j].g, items[j].machine);
	return c ? c : (i > j) - (i < j);
}

void vg_index_items(struct run *r)
{
	free(r->item_index);
	r->item_index = malloc((r->n + 1) * sizeof(*r->item_index));
	if (!r->item_index)
		return; /* vg_find_item looks linearly */
	for (size_t i = 0; i < r->n; i++)
		r->item_index[i] = i;
	qsort_r(r->item_index, r->n, sizeof(*r->item_index), cmp_items, r->items);
}

ssize_t vg_find_item(const struct run *r, const char *machine, const struct vf_spec_generator *g)
{
	if (!g)
		return -1;
	const char *owner = g->share ? NULL : machine;
	if (!r->item_index) {
		for (size_t i = 0; i < r->n; i++)
			if (r->items[i].g == g && same_owner(r->items[i].machine, owner))
				return (ssize_t)i;
		return -1;
	}
	size_t lo = 0, hi = r->n; /* the first entry not below the key */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_key(&r->items[r->item_index[mid]], g, owner) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->n && cmp_key(&r->items[r->item_index[lo]], g, owner) == 0)
		return (ssize_t)r->item_index[lo];
	return -1;
}

static const char *owner_name(const struct vg_item *it)
{
	return it->machine ? it->machine : "shared";
}

/* Built-in values made file by file: a missing one can be made alone. Key
 * pairs and scripts make their files together. */
static bool independent(const struct vf_spec_generator *g)
{
	return g->kind != VF_KIND_AGE_KEYPAIR && g->kind != VF_KIND_WIREGUARD && !g->script;
}

static bool any_state(const struct run *r, size_t i, enum vf_state st)
{
	for (size_t f = 0; f < r->items[i].g->n_files; f++)
		if (r->before.states[i][f] == st)
			return true;
	return false;
}

static bool all_state(const struct run *r, size_t i, enum vf_state st)
{
	for (size_t f = 0; f < r->items[i].g->n_files; f++)
		if (r->before.states[i][f] != st)
			return false;
	return true;
}

/* --regenerate names this item: --all, or its generator with --generator,
 * or (no --generator) its machine with --machine. A shared generator is
 * replaced only when named (--generator or --all): selecting one machine
 * must not change what other machines share. */
static bool regen_selected(const struct run *r, size_t i)
{
	if (!r->regenerate)
		return false;
	if (r->all)
		return true;
	const struct vg_item *it = &r->items[i];
	if (r->ctx.generators.n)
		return vf_strings_has(&r->ctx.generators, it->g->name);
	return it->machine != NULL;
}

/* For every item, a value that exists and is made from it, directly or
 * through other items (NULL when none): making the item anew would change
 * that value's input. One pass from the last item to the first, since
 * dependents come after what they depend on: linear in the items and
 * their dependencies however the dependencies nest (a walk along every
 * path takes 2^N steps on N chained diamonds). */
static int find_existing_dependents(struct run *r)
{
	r->existing_dependent = calloc(r->n + 1, sizeof(*r->existing_dependent));
	if (!r->existing_dependent)
		return vg_error("out of memory");
	for (size_t j = r->n; j-- > 0;) {
		const struct vg_item *it = &r->items[j];
		const struct vg_item *mine =
			!all_state(r, j, VF_STATE_MISSING) && !regen_selected(r, j)
				? it
				: r->existing_dependent[j];
		for (size_t d = 0; mine && d < it->g->n_dependencies; d++) {
			ssize_t i = vg_find_item(r, it->machine,
						 vf_spec_generator(&r->ctx.spec, it->g->dependencies[d]));
			if (i >= 0 && !r->existing_dependent[i])
				r->existing_dependent[i] = mine;
		}
	}
	return 0;
}

static const struct vg_item *dependency_made(const struct run *r, size_t i)
{
	const struct vg_item *it = &r->items[i];
	for (size_t d = 0; d < it->g->n_dependencies; d++) {
		ssize_t j = vg_find_item(r, it->machine,
					 vf_spec_generator(&r->ctx.spec, it->g->dependencies[d]));
		if (j >= 0 && vg_made(r, (size_t)j))
			return &r->items[j];
	}
	return NULL;
}

/* Leaves item i as it is, saying why (vsnprintf: a long name is cut, not
 * overrun). */
__attribute__((format(printf, 3, 4))) static void leave(struct run *r, size_t i,
							 const char *fmt, ...)
{
	r->dec[i].act = ACT_LEAVE;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->dec[i].why, sizeof(r->dec[i].why), fmt, ap);
	va_end(ap);
}

/* The selection that names item i alone. */
static void item_selection(const struct vg_item *it, char *out, size_t cap)
{
	if (it->machine)
		snprintf(out, cap, "--machine %s --generator %s", it->machine, it->g->name);
	else
		snprintf(out, cap, "--generator %s", it->g->name);
}

/* Without --regenerate: make what is missing where nothing else would
 * change, else leave. */
static void decide_unselected(struct run *r, size_t i)
{
	const struct vg_item *it = &r->items[i];
	char sel[400];
	item_selection(it, sel, sizeof(sel));
	if (any_state(r, i, VF_STATE_STALE) && !any_state(r, i, VF_STATE_INCOMPLETE) &&
	    !any_state(r, i, VF_STATE_CORRUPT)) {
		leave(r, i, "vargen generate --regenerate %s replaces it; vargen accept %s keeps it",
		      sel, sel);
		return;
	}
	if (any_state(r, i, VF_STATE_STALE) || any_state(r, i, VF_STATE_INCOMPLETE) ||
	    any_state(r, i, VF_STATE_CORRUPT) || any_state(r, i, VF_STATE_PAIR_MISMATCH)) {
		leave(r, i, "vargen generate --regenerate %s replaces it", sel);
		return;
	}
	if (any_state(r, i, VF_STATE_NO_KEY)) {
		if (it->machine)
			leave(r, i, "machine %s has no key in the spec: varseal machine keygen %s "
				    "(with -i ADMIN_KEY when the store keeps its key)",
			      it->machine, it->machine);
		else
			leave(r, i, "a machine that uses it has no key in the spec: varseal "
				    "machine keygen MACHINE");
		return;
	}
	if (!any_state(r, i, VF_STATE_MISSING))
		return; /* ACT_NONE; maybe seals to renew */
	if (all_state(r, i, VF_STATE_MISSING))
		r->dec[i].act = ACT_MAKE;
	else if (independent(it->g))
		r->dec[i].act = ACT_FILL;
	else
		leave(r, i, "the files of %s are made together, and some exist: vargen generate "
			    "--regenerate %s",
		      it->g->name, sel);
}

/* An imported generator: nothing makes its values (there is no script),
 * so nothing is made or replaced, --regenerate included; what is not
 * sound is left, with what deals with it. Its seals are renewed as any
 * other's (decide_reseals). */
static void decide_imported(struct run *r, size_t i)
{
	const struct vg_item *it = &r->items[i];
	const char *from = vf_imported_name(it->g->imported);
	char sel[400];
	item_selection(it, sel, sizeof(sel));
	if (!r->wanted[i] && !regen_selected(r, i))
		return;
	bool trouble = false;
	for (size_t f = 0; f < it->g->n_files; f++) {
		enum vf_state st = r->before.states[i][f];
		trouble = trouble || (!vf_state_sound(st) && st != VF_STATE_WRONG_RECIPIENTS);
	}
	if (!trouble)
		return; /* ACT_NONE; maybe seals to renew */
	if (any_state(r, i, VF_STATE_NO_KEY) && it->machine)
		leave(r, i, "machine %s has no key in the spec: varseal machine keygen %s (with -i "
			    "ADMIN_KEY when the store keeps its key)",
		      it->machine, it->machine);
	else if (any_state(r, i, VF_STATE_NO_KEY))
		leave(r, i, "a machine that uses it has no key in the spec: varseal machine keygen "
			    "MACHINE");
	else if (any_state(r, i, VF_STATE_STALE) && !any_state(r, i, VF_STATE_MISSING))
		leave(r, i, "imported from %s, its definition changed since: vargen accept %s keeps "
			    "it (vargen makes no imported value)",
		      from, sel);
	else
		leave(r, i, "imported from %s: vargen makes no imported value; import it again, "
			    "restore it from git, or varseal set %s %s/FILE",
		      from, it->machine ? it->machine : "shared", it->g->name);
}

static void decide_item(struct run *r, size_t i)
{
	struct decision *d = &r->dec[i];
	const struct vg_item *it = &r->items[i];
	if (it->g->imported) {
		decide_imported(r, i);
		return;
	}
	const struct vg_item *cause = dependency_made(r, i);
	bool exists = !all_state(r, i, VF_STATE_MISSING);
	if (regen_selected(r, i)) {
		d->act = exists ? ACT_REPLACE : ACT_MAKE;
	} else if (cause) {
		/* Its input is made anew: so must it be, which replaces
		 * existing values only under --regenerate. */
		if (!exists)
			d->act = ACT_MAKE;
		else if (r->regenerate) {
			d->act = ACT_REPLACE;
			d->cause = cause;
		} else {
			char what[300];
			snprintf(what, sizeof(what), "%s/%s", owner_name(cause), cause->g->name);
			leave(r, i, "its input %s is made anew, which would replace it: "
				    "vargen generate --regenerate --generator %s",
			      what, cause->g->name);
		}
	} else if (r->wanted[i]) {
		decide_unselected(r, i);
	}
	if ((d->act == ACT_MAKE || d->act == ACT_FILL) && !r->regenerate) {
		const struct vg_item *dep = r->existing_dependent[i];
		if (dep) {
			char what[300];
			snprintf(what, sizeof(what), "%s/%s", owner_name(dep), dep->g->name);
			leave(r, i, "%s, made from it, exists and would be replaced: vargen generate "
				    "--regenerate --generator %s",
			      what, it->g->name);
		}
	}
	if (vg_made(r, i)) {
		struct vf_strings recipients = {0};
		struct vf_error err;
		if (vf_vars_recipients(&r->ctx.spec, it->machine, it->g, &recipients, &err) != VF_OK)
			leave(r, i, "%s", err.msg);
		vf_strings_free(&recipients);
	}
}

/* A stale secret's seal, compared with the spec's recipients: stale
 * hides wrong-recipients in list and check, but a removed admin must lose
 * access to a value that stays (left stale) as to any other. */
static bool seal_is_wrong(const struct run *r, size_t i, size_t f)
{
	const struct vg_item *it = &r->items[i];
	if (!it->g->files[f].secret)
		return false;
	struct vf_strings want = {0};
	char *text = NULL;
	size_t len = 0, have_len = 0;
	uint8_t *have = NULL;
	bool same = true;
	char *rel = vf_store_rel(it->machine, it->g->name, it->g->files[f].name, "recipients");
	if (rel && vf_vars_recipients(&r->ctx.spec, it->machine, it->g, &want, NULL) == VF_OK &&
	    vf_manifest_format(want.items, want.n, &text, &len, NULL) == VF_OK &&
	    vf_store_read_at(r->ctx.root, rel, &have, &have_len, NULL) == VF_OK && have)
		vf_manifest_same((const char *)have, have_len, text, len, &same, NULL);
	free(rel);
	free(text);
	free(have);
	vf_strings_free(&want);
	return !same;
}

/* Which of item i's files -i reseals: those of a generator kept as it is
 * (not made anew) sealed to other keys than the spec's. */
static int decide_reseals(struct run *r, size_t i)
{
	struct decision *d = &r->dec[i];
	const struct vg_item *it = &r->items[i];
	if (!r->wanted[i] || vg_made(r, i))
		return 0;
	if (!(d->reseal_file = calloc(it->g->n_files + 1, sizeof(bool))))
		return vg_error("out of memory");
	for (size_t f = 0; f < it->g->n_files; f++) {
		enum vf_state st = r->before.states[i][f];
		d->reseal_file[f] = st == VF_STATE_WRONG_RECIPIENTS ||
				    (st == VF_STATE_STALE && seal_is_wrong(r, i, f));
		d->reseal = d->reseal || d->reseal_file[f];
	}
	return 0;
}

int vg_decide(struct run *r)
{
	r->dec = calloc(r->n + 1, sizeof(*r->dec));
	if (!r->dec)
		return vg_error("out of memory");
	if (find_existing_dependents(r))
		return 1;
	for (size_t i = 0; i < r->n; i++)
		decide_item(r, i);
	for (size_t i = 0; i < r->n; i++)
		if (decide_reseals(r, i))
			return 1;
	return 0;
}

/* ---- reseals --------------------------------------------------------------- */

static int add_reseal(struct run *r, const char *name, char *secret, char *manifest_rel,
		      struct vf_strings *recipients)
{
	struct vf_error err;
	struct reseal *grown = realloc(r->reseals, (r->n_reseals + 1) * sizeof(*grown));
	char *copy = strdup(name);
	if (!grown || !copy || !secret || !manifest_rel) {
		if (grown)
			r->reseals = grown;
		free(copy);
		free(secret);
		free(manifest_rel);
		vf_strings_free(recipients);
		return vg_error("out of memory");
	}
	r->reseals = grown;
	struct reseal *rs = &r->reseals[r->n_reseals++];
	*rs = (struct reseal){.name = copy, .secret = secret, .manifest_rel = manifest_rel,
			      .recipients = *recipients};
	if (vf_manifest_format(rs->recipients.items, rs->recipients.n, &rs->manifest,
			       &rs->manifest_len, &err) != VF_OK)
		return vg_fail(&err);
	return 0;
}

static int plan_item_reseals(struct run *r, size_t i)
{
	const struct vg_item *it = &r->items[i];
	for (size_t f = 0; f < it->g->n_files; f++) {
		if (!r->dec[i].reseal_file[f])
			continue;
		struct vf_strings recipients = {0};
		struct vf_error err;
		if (vf_vars_recipients(&r->ctx.spec, it->machine, it->g, &recipients, &err) != VF_OK)
			return vg_fail(&err);
		char name[1024];
		snprintf(name, sizeof(name), "%s/%s/%s", owner_name(it), it->g->name,
			 it->g->files[f].name);
		if (add_reseal(r, name, vf_store_rel(it->machine, it->g->name, it->g->files[f].name,
						     "secret"),
			       vf_store_rel(it->machine, it->g->name, it->g->files[f].name,
					    "recipients"),
			       &recipients))
			return 1;
	}
	return 0;
}

/* A kept machine key sealed to other admins than the spec's. */
static int plan_key_reseal(struct run *r, const struct vg_row *row)
{
	const char *machine = r->ctx.spec.machines[row->file].name;
	struct vf_strings admins = {0};
	struct vf_error err;
	for (size_t a = 0; a < r->ctx.spec.n_admins; a++)
		if (!vf_strings_has(&admins, r->ctx.spec.admins[a].recipient) &&
		    vf_strings_add(&admins, r->ctx.spec.admins[a].recipient, &err) != VF_OK) {
			vf_strings_free(&admins);
			return vg_fail(&err);
		}
	return add_reseal(r, row->name, vf_store_machine_key_rel(machine, "secret"),
			  vf_store_machine_key_rel(machine, "recipients"), &admins);
}

int vg_plan_reseals(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->dec[i].reseal && plan_item_reseals(r, i))
			return 1;
	for (size_t k = 0; k < r->before.n_rows; k++) {
		const struct vg_row *row = &r->before.rows[k];
		if (row->item == SIZE_MAX && !strcmp(row->kind, "key") &&
		    row->st == VF_STATE_WRONG_RECIPIENTS && plan_key_reseal(r, row))
			return 1;
	}
	return 0;
}

/* ---- the plan ---------------------------------------------------------------- */

static const char *const actions[N_PLAN] = {"make", "replace", "reseal", "left"};

static void count(struct vg_plan_count *c, const char *action)
{
	for (int a = 0; c && a < N_PLAN; a++)
		if (!strcmp(actions[a], action))
			c->n[a]++;
}

static void line(FILE *out, struct vg_plan_count *c, const char *action, const struct vg_item *it,
		 size_t f, const char *why)
{
	count(c, action);
	if (out)
		fprintf(out, "%s\t%s/%s/%s\t%s\n", action, owner_name(it), it->g->name,
			it->g->files[f].name, why);
}

static size_t item_lines(const struct run *r, size_t i, FILE *out, bool only_replace,
			 struct vg_plan_count *c)
{
	const struct decision *d = &r->dec[i];
	const struct vg_item *it = &r->items[i];
	const enum vf_state *st = r->before.states[i];
	size_t n = 0;
	for (size_t f = 0; f < it->g->n_files; f++) {
		char why[700];
		const char *state = vf_state_name(st[f]);
		bool missing = st[f] == VF_STATE_MISSING;
		if (only_replace && !(d->act == ACT_REPLACE && !missing))
			continue;
		switch (d->act) {
		case ACT_MAKE: line(out, c, "make", it, f, "missing"), n++; break;
		case ACT_FILL:
			if (missing)
				line(out, c, "make", it, f, "missing"), n++;
			break;
		case ACT_REPLACE:
			if (d->cause)
				snprintf(why, sizeof(why), "%s; its input %s/%s is made anew", state,
					 owner_name(d->cause), d->cause->g->name);
			else
				snprintf(why, sizeof(why), "%s; --regenerate", state);
			line(out, c, missing ? "make" : "replace", it, f, missing ? "missing" : why), n++;
			break;
		case ACT_LEAVE:
			/* A wrong seal has its own line, below. */
			if (vf_state_sound(st[f]) || (d->reseal_file && d->reseal_file[f] &&
						      st[f] == VF_STATE_WRONG_RECIPIENTS))
				break;
			snprintf(why, sizeof(why), "%s: %s", state, d->why);
			line(out, c, "left", it, f, why), n++;
			break;
		case ACT_NONE: break;
		}
		if (only_replace || !d->reseal_file || !d->reseal_file[f])
			continue;
		bool stale = st[f] == VF_STATE_STALE;
		if (r->identity_files.n)
			line(out, c, "reseal", it, f,
			     stale ? "stale, and sealed to other keys than the spec's: resealed, "
				     "left stale"
				   : "wrong-recipients"),
				n++;
		else if (!stale)
			line(out, c, "left", it, f,
			     "wrong-recipients: vargen generate -i ADMIN_KEY (or varseal rekey) "
			     "reseals it"),
				n++;
	}
	return n;
}

const char *vg_row_why(const struct vg_row *row)
{
	switch (row->st) {
	case VF_STATE_ORPHAN:
		return !strcmp(row->kind, "leftover") ? "left by a killed vargen prune: vargen prune "
							"removes it"
						      : "vargen prune removes it";
	case VF_STATE_WRONG_RECIPIENTS:
		return "vargen generate -i ADMIN_KEY (or varseal rekey) reseals it";
	case VF_STATE_NO_KEY:
		return "the spec lost its key line: varseal machine keygen -i ADMIN_KEY M restores it";
	case VF_STATE_WRONG_KEY:
		return "the spec names another key: restore the key line, or varseal machine keygen "
		       "--force M";
	case VF_STATE_MISSING:
		return "the kept key is gone: restore it from git, or varseal machine keygen --force M";
	case VF_STATE_INCOMPLETE:
		return "an interrupted varseal machine keygen: run it again to finish it";
	default: return "restore it from git";
	}
}

/* Rows other than the generators' files: kept keys and orphans. */
static size_t other_lines(const struct run *r, FILE *out, struct vg_plan_count *c)
{
	size_t n = 0;
	for (size_t k = 0; k < r->before.n_rows; k++) {
		const struct vg_row *row = &r->before.rows[k];
		if (row->item != SIZE_MAX || vf_state_sound(row->st))
			continue;
		bool reseal = row->st == VF_STATE_WRONG_RECIPIENTS && r->identity_files.n;
		if (out && reseal)
			fprintf(out, "reseal\t%s\twrong-recipients\n", row->name);
		else if (out)
			fprintf(out, "left\t%s\t%s: %s\n", row->name, vf_state_name(row->st),
				vg_row_why(row));
		count(c, reseal ? "reseal" : "left");
		n++;
	}
	return n;
}

size_t vg_print_plan(const struct run *r, FILE *out, bool only_replace, struct vg_plan_count *c)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += item_lines(r, i, out, only_replace, c);
	if (!only_replace)
		n += other_lines(r, out, c);
	return n;
}

void vg_plan_summary(const struct vg_plan_count *c, char *out, size_t cap)
{
	static const char *const what[N_PLAN] = {"to make", "to replace", "to reseal",
						 "left as they are"};
	size_t at = 0;
	out[0] = '\0';
	for (int a = 0; a < N_PLAN && at < cap; a++)
		if (c->n[a])
			at += (size_t)snprintf(out + at, cap - at, "%s%zu %s", at ? ", " : "",
					       c->n[a], what[a]);
}

size_t vg_count_replaced(const struct run *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		for (size_t f = 0; r->dec[i].act == ACT_REPLACE && f < r->items[i].g->n_files; f++)
			n += r->before.states[i][f] != VF_STATE_MISSING;
	return n;
}
