/* The state of everything the spec and the store hold, as list and check
 * show it and as generate plans from it and verifies after its commit:
 * one scan, one set of rules, so that generate's verdict is check's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "vargen.h"
#include "vars/pair.h"

void vg_survey_free(struct vg_survey *s)
{
	for (size_t i = 0; s->states && i < s->n_items; i++)
		free(s->states[i]);
	free(s->states);
	free(s->items);
	for (size_t i = 0; i < s->n_rows; i++)
		free(s->rows[i].name);
	free(s->rows);
	vf_orphans_free(&s->orphans);
	memset(s, 0, sizeof(*s));
}

static int add_row(struct vg_survey *s, const char *name, const char *kind, enum vf_state st,
		   size_t item, size_t file)
{
	struct vg_row *grown = realloc(s->rows, (s->n_rows + 1) * sizeof(*grown));
	char *copy = strdup(name);
	if (!grown || !copy) {
		if (grown)
			s->rows = grown;
		free(copy);
		return vg_error("out of memory");
	}
	s->rows = grown;
	s->rows[s->n_rows++] = (struct vg_row){copy, kind, st, item, file};
	return 0;
}

/* Items surveyed a job each: below this many, one thread does it. */
#define PARALLEL_SURVEY_MIN 32

struct state_jobs {
	const struct vg_context *ctx;
	struct vg_survey *s;
};

/* Item i's files as the store has them: read and hashed, apart from every
 * other item's, so a large store's items are spread over the CPUs. */
static enum vf_code state_job(void *ctx, size_t i, struct vf_error *err)
{
	const struct state_jobs *j = ctx;
	const struct vg_item *it = &j->s->items[i];
	return vf_vars_state(&j->ctx->spec, j->ctx->root, it->machine, it->g, j->s->states[i],
			     err);
}

static int survey_items(const struct vg_context *ctx, struct vg_survey *s)
{
	if (vg_items(ctx, &s->items, &s->n_items) != 0)
		return 1;
	s->states = calloc(s->n_items + 1, sizeof(*s->states));
	if (!s->states)
		return vg_error("out of memory");
	for (size_t i = 0; i < s->n_items; i++)
		if (!(s->states[i] = calloc(s->items[i].g->n_files + 1, sizeof(enum vf_state))))
			return vg_error("out of memory");
	struct state_jobs jobs = {ctx, s};
	struct vf_error err;
	if (vf_parallel_try(s->n_items, PARALLEL_SURVEY_MIN, state_job, &jobs, &err) != VF_OK)
		return vg_fail(&err);
	for (size_t i = 0; i < s->n_items; i++) {
		const struct vg_item *it = &s->items[i];
		if (!vg_selected_generator(ctx, it->g->name))
			continue;
		/* check -i: what only the private half can tell. */
		if (ctx->verify_ids && vf_pair_verify(ctx->root, it->machine, it->g, ctx->verify_ids,
						      s->states[i], &err) != VF_OK)
			return vg_fail(&err);
		for (size_t f = 0; f < it->g->n_files; f++) {
			char name[1024];
			snprintf(name, sizeof(name), "%s/%s/%s", it->machine ? it->machine : "shared",
				 it->g->name, it->g->files[f].name);
			if (add_row(s, name, it->g->files[f].secret ? "secret" : "value",
				    s->states[i][f], i, f))
				return 1;
		}
	}
	return 0;
}

/* The kept keys of the selected machines: not a generator's, so left out
 * when generators are selected. */
static int survey_keys(const struct vg_context *ctx, struct vg_survey *s)
{
	if (ctx->generators.n)
		return 0;
	for (size_t m = 0; m < ctx->spec.n_machines; m++) {
		const struct vf_spec_machine *machine = &ctx->spec.machines[m];
		if (!vg_selected_machine(ctx, machine->name))
			continue;
		bool shown;
		enum vf_state st;
		struct vf_error err;
		if (vf_vars_machine_key_state(&ctx->spec, ctx->root, machine, &shown, &st, &err) !=
		    VF_OK)
			return vg_fail(&err);
		char name[1024];
		snprintf(name, sizeof(name), "machine-keys/%s", machine->name);
		if (shown && add_row(s, name, "key", st, SIZE_MAX, m))
			return 1;
	}
	return 0;
}

/* Orphans belong to no machine or generator of the spec: shown when
 * nothing is selected. */
static int survey_orphans(const struct vg_context *ctx, struct vg_survey *s)
{
	if (ctx->generators.n || ctx->machines.n)
		return 0;
	struct vf_error err;
	if (vf_vars_orphans(&ctx->spec, ctx->root, &s->orphans, &err) != VF_OK)
		return vg_fail(&err);
	for (size_t i = 0; i < s->orphans.n; i++)
		if (add_row(s, s->orphans.items[i].name, s->orphans.items[i].kind, VF_STATE_ORPHAN,
			    SIZE_MAX, i))
			return 1;
	return 0;
}

int vg_survey(const struct vg_context *ctx, struct vg_survey *s)
{
	memset(s, 0, sizeof(*s));
	int status = survey_items(ctx, s);
	if (!status)
		status = survey_keys(ctx, s);
	if (!status)
		status = survey_orphans(ctx, s);
	if (status)
		vg_survey_free(s);
	return status;
}

size_t vg_survey_problems(const struct vg_survey *s)
{
	size_t bad = 0;
	for (size_t i = 0; i < s->n_rows; i++)
		bad += !vf_state_sound(s->rows[i].st);
	return bad;
}

void vg_print_row(const struct vg_row *r)
{
	printf("%s\t%s\t%s\n", r->name, r->kind, vf_state_name(r->st));
}

/* ---- what to do about each state ----------------------------------------- */

/* Adds name to a set of at most 3; false when it would be a fourth. */
static bool add_name(const char **set, size_t *n, const char *name)
{
	for (size_t k = 0; k < *n; k++)
		if (!strcmp(set[k], name))
			return true;
	if (*n == 3)
		return false;
	set[(*n)++] = name;
	return true;
}

/* Whether every item of the generators named is in state st (somewhere
 * in its files). */
static bool covers_generators(const struct vg_survey *s, enum vf_state st, const char **gens,
			      size_t n_gens)
{
	for (size_t i = 0; i < s->n_items; i++) {
		const struct vg_item *it = &s->items[i];
		bool named = false, in_state = false;
		for (size_t k = 0; k < n_gens; k++)
			named = named || !strcmp(gens[k], it->g->name);
		for (size_t f = 0; named && f < it->g->n_files; f++)
			in_state = in_state || s->states[i][f] == st;
		if (named && !in_state)
			return false;
	}
	return true;
}

/* The --machine/--generator selection that covers the rows in state st
 * (of generators' files): up to three of each, else --all. */
static void selection(const struct vg_survey *s, enum vf_state st, char *out, size_t cap)
{
	const char *gens[3], *machines[3];
	size_t n_gens = 0, n_machines = 0;
	bool few_gens = true, few_machines = true;
	for (size_t i = 0; i < s->n_rows; i++) {
		const struct vg_row *r = &s->rows[i];
		if (r->st != st || r->item == SIZE_MAX)
			continue;
		const struct vg_item *it = &s->items[r->item];
		few_gens = few_gens && add_name(gens, &n_gens, it->g->name);
		/* A shared generator is not any one machine's. */
		few_machines = few_machines && it->machine &&
			       add_name(machines, &n_machines, it->machine);
	}
	if (!few_gens || n_gens == 0) {
		snprintf(out, cap, "--all");
		return;
	}
	/* Every machine's files of those generators: the generators say it. */
	if (covers_generators(s, st, gens, n_gens))
		few_machines = false;
	size_t at = 0;
	for (size_t k = 0; few_machines && k < n_machines && at < cap; k++)
		at += (size_t)snprintf(out + at, cap - at, "--machine %s ", machines[k]);
	for (size_t k = 0; k < n_gens && at < cap; k++)
		at += (size_t)snprintf(out + at, cap - at, "--generator %s%s", gens[k],
				       k + 1 < n_gens ? " " : "");
}

/* A missing file of a generator whose files are made together (a script,
 * a key pair) and some of which exist: plain generate leaves it. */
static bool partly_made(const struct vg_survey *s)
{
	for (size_t i = 0; i < s->n_rows; i++) {
		const struct vg_row *r = &s->rows[i];
		if (r->st != VF_STATE_MISSING || r->item == SIZE_MAX)
			continue;
		const struct vg_item *it = &s->items[r->item];
		if (!it->g->script && it->g->kind != VF_KIND_AGE_KEYPAIR &&
		    it->g->kind != VF_KIND_WIREGUARD)
			continue;
		for (size_t f = 0; f < it->g->n_files; f++)
			if (s->states[r->item][f] != VF_STATE_MISSING)
				return true;
	}
	return false;
}

/* Whether the rows in state st are all (any) of imported generators,
 * whose values vargen does not make. */
static bool imported_rows(const struct vg_survey *s, enum vf_state st, bool all)
{
	bool seen = false;
	for (size_t i = 0; i < s->n_rows; i++) {
		const struct vg_row *r = &s->rows[i];
		if (r->st != st || r->item == SIZE_MAX)
			continue;
		bool imported = s->items[r->item].g->imported != VF_IMPORTED_NONE;
		if (imported && !all)
			return true;
		if (!imported && all)
			return false;
		seen = true;
	}
	return all && seen;
}

/* The one item with files in state st, or NULL when there are several. */
static const struct vg_item *only_item(const struct vg_survey *s, enum vf_state st)
{
	const struct vg_item *found = NULL;
	for (size_t i = 0; i < s->n_rows; i++) {
		const struct vg_row *r = &s->rows[i];
		if (r->st != st || r->item == SIZE_MAX)
			continue;
		if (found && found != &s->items[r->item])
			return NULL;
		found = &s->items[r->item];
	}
	return found;
}

/* A public half that is not its private half's: computed again from the
 * private half (set keeps the private key, and marks the pair set by
 * hand), or a new pair. */
static void pair_fix(const struct vg_survey *s, const char *sel, char *out, size_t cap)
{
	const struct vg_item *it = only_item(s, VF_STATE_PAIR_MISMATCH);
	const struct vf_spec_file *priv = it ? vf_pair_private(it->g) : NULL;
	if (!priv) {
		snprintf(out, cap, "not the public key of the private half: varseal get -i ADMIN_KEY "
				   "M G/PRIVATE | varseal set M G/PRIVATE computes it again, or vargen "
				   "generate --regenerate %s makes new pairs",
			 sel);
		return;
	}
	const char *owner = it->machine ? it->machine : "shared";
	snprintf(out, cap, "not the public key of the private half: varseal get -i ADMIN_KEY %s "
			   "%s/%s | varseal set %s %s/%s computes it again, or vargen generate "
			   "--regenerate %s makes a new pair",
		 owner, it->g->name, priv->name, owner, it->g->name, priv->name, sel);
}

/* A missing file whose owner (or a machine sharing it) has no key yet. */
static bool keyless_missing(const struct vg_survey *s, const struct vg_context *ctx)
{
	for (size_t i = 0; i < s->n_rows; i++) {
		const struct vg_row *r = &s->rows[i];
		if (r->st != VF_STATE_MISSING || r->item == SIZE_MAX)
			continue;
		const struct vg_item *it = &s->items[r->item];
		struct vf_strings out = {0};
		bool keyless = vf_vars_recipients(&ctx->spec, it->machine, it->g, &out, NULL) ==
			       VF_E_KEY;
		vf_strings_free(&out);
		if (keyless)
			return true;
	}
	return false;
}

void vg_survey_fix(const struct vg_survey *s, const struct vg_context *ctx, enum vf_state st,
		   bool keys, char *out, size_t cap)
{
	char sel[512];
	selection(s, st, sel, sizeof(sel));
	switch (st) {
	case VF_STATE_MISSING:
		if (keys)
			snprintf(out, cap, "restore vars/machine-keys/M from git, or make a new key "
					   "with varseal machine keygen --force M");
		else if (imported_rows(s, st, true))
			snprintf(out, cap, "imported values are not made by vargen: import them "
					   "again, restore them from git, or varseal set M GEN/FILE");
		else if (imported_rows(s, st, false))
			snprintf(out, cap, "vargen generate; imported values it does not make: "
					   "import them again, restore them from git, or varseal set "
					   "M GEN/FILE");
		else if (partly_made(s))
			snprintf(out, cap, "vargen generate makes them, but a script or "
					   "key-pair generator some of whose files exist is made "
					   "whole: vargen generate --regenerate %s",
				 sel);
		else if (keyless_missing(s, ctx))
			snprintf(out, cap, "vargen generate (a machine without a key first needs "
					   "varseal machine keygen M)");
		else
			snprintf(out, cap, "vargen generate");
		break;
	case VF_STATE_STALE:
		if (imported_rows(s, st, true)) {
			snprintf(out, cap, "vargen accept %s keeps them (vargen makes no imported "
					   "value)",
				 sel);
			break;
		}
		snprintf(out, cap, "vargen generate --regenerate %s replaces them; vargen accept %s "
				   "keeps them",
			 sel, sel);
		break;
	case VF_STATE_INCOMPLETE:
	case VF_STATE_CORRUPT:
		if (keys && st == VF_STATE_INCOMPLETE)
			snprintf(out, cap, "an interrupted varseal machine keygen M: run it "
					   "again to finish it");
		else if (keys)
			snprintf(out, cap, "restore vars/machine-keys/M from git");
		else if (imported_rows(s, st, true))
			snprintf(out, cap, "restore them from git, import them again, or varseal set "
					   "M GEN/FILE (vargen makes no imported value)");
		else
			snprintf(out, cap, "vargen generate --regenerate %s", sel);
		break;
	case VF_STATE_WRONG_RECIPIENTS:
		snprintf(out, cap, "varseal rekey -i ADMIN_KEY (or vargen generate -i ADMIN_KEY)");
		break;
	case VF_STATE_NO_KEY:
		if (keys)
			snprintf(out, cap, "the spec lost the key line of a kept key: varseal "
					   "machine keygen -i ADMIN_KEY M restores it");
		else
			snprintf(out, cap, "varseal machine keygen M (with -i ADMIN_KEY when the "
					   "store keeps M's key: it restores the key line)");
		break;
	case VF_STATE_WRONG_KEY:
		snprintf(out, cap, "the spec names another key than the one kept: restore the "
				   "spec's key line, or varseal machine keygen --force M");
		break;
	case VF_STATE_ORPHAN:
		snprintf(out, cap, "not in the spec: vargen prune removes them (--plan first)");
		break;
	case VF_STATE_PAIR_MISMATCH: pair_fix(s, sel, out, cap); break;
	case VF_STATE_OK:
	case VF_STATE_HAND_SET: snprintf(out, cap, "nothing to do"); break;
	}
}

bool vg_row_is_kept_key(const struct vg_row *r)
{
	return !strcmp(r->kind, "key") && r->item == SIZE_MAX && r->st != VF_STATE_ORPHAN;
}

void vg_survey_hints(const struct vg_survey *s, const struct vg_context *ctx)
{
	for (int keys = 0; keys < 2; keys++)
		for (enum vf_state st = 0; st <= VG_STATE_LAST; st++) {
			if (vf_state_sound(st))
				continue;
			size_t count = 0;
			for (size_t i = 0; i < s->n_rows; i++)
				count += s->rows[i].st == st &&
					 vg_row_is_kept_key(&s->rows[i]) == (keys == 1);
			if (!count)
				continue;
			char fix[1024];
			vg_survey_fix(s, ctx, st, keys == 1, fix, sizeof(fix));
			const char *what = keys ? "machine key" : st == VF_STATE_ORPHAN ? "orphan"
										  : "file";
			fprintf(stderr, "  %s: %zu %s%s: %s\n", vf_state_name(st), count, what,
				count == 1 ? "" : "s", fix);
		}
}
