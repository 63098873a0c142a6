/* vargen accept: a generator whose definition changed (stale) keeps its
 * values; only its commit record is written anew, naming the current
 * definition. For a change that does not change what the values should
 * be: a comment in a script, a reformatted command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vars/store.h"
#include "vargen.h"

static const char usage[] = "vargen accept [-f SPEC] [--store DIR] (--machine M | --generator G | "
			    "--all)... [--plan]";
static const struct vf_help_row help_rows[] = {
	VG_SPEC_HELP,
	VG_SELECT_HELP,
	{"--all", NULL, "select every stale generator"},
	{"--plan", NULL, "list what would be accepted; write nothing"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Keeps the values of stale generators (whose definition changed in a way that does\n"
	"not change them) and records them as made by the current definition.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

static bool stale(const enum vf_state *states, size_t n)
{
	for (size_t f = 0; f < n; f++)
		if (states[f] == VF_STATE_STALE)
			return true;
	return false;
}

static void print_item(const char *action, const struct vg_item *it, const enum vf_state *st)
{
	for (size_t f = 0; f < it->g->n_files; f++)
		if (st[f] == VF_STATE_STALE)
			printf("%s\t%s/%s/%s\tstale\n", action, it->machine ? it->machine : "shared",
			       it->g->name, it->g->files[f].name);
}

/* Stages the new records of every selected stale generator; returns how
 * many, or -1 (reported). */
static int stage(const struct vg_context *ctx, const struct vg_survey *s, struct vf_txn *txn,
		 bool plan)
{
	int n = 0;
	for (size_t i = 0; i < s->n_items; i++) {
		const struct vg_item *it = &s->items[i];
		if (!vg_selected_generator(ctx, it->g->name) || !stale(s->states[i], it->g->n_files))
			continue;
		print_item(plan ? "accept" : "accepted", it, s->states[i]);
		n++;
		struct vf_update u = {.accept = true};
		struct vf_error err;
		if (!plan &&
		    vf_vars_stage_update(txn, ctx->root, it->machine, it->g, &u, &err) != VF_OK)
			return vg_fail(&err), -1;
	}
	return n;
}

int cmd_accept(int argc, char **argv)
{
	struct vg_context ctx = {0};
	struct vg_flags flags = {0};
	struct vg_survey s = {0};
	struct vf_txn txn = {0};
	struct vf_error err;
	int lock_fd = -1;
	int status = vg_parse(argc, argv, &ctx, &help, &flags);
	if (!status && flags.yes)
		status = vg_usage(usage);
	/* Accepting says "these values are right for the new definition":
	 * said of what is named, not of everything by default. */
	if (!status && !flags.all && !ctx.machines.n && !ctx.generators.n)
		status = vg_error("accept keeps values made by an older definition: say which, with "
				  "--machine M, --generator G, or --all");
	if (!status && !flags.plan && vf_store_lock(ctx.root, &lock_fd, &err) != VF_OK)
		status = vg_fail(&err);
	if (!status && !flags.plan)
		vf_store_clean_temps(ctx.root);
	if (!status)
		status = vg_survey(&ctx, &s);
	int n = status ? 0 : stage(&ctx, &s, &txn, flags.plan);
	if (n < 0)
		status = VF_EXIT_ERROR;
	if (!status && !flags.plan && vf_txn_commit(&txn, &err) != VF_OK)
		status = vg_fail(&err);
	if (!status && flags.plan) {
		if (n)
			printf("plan: %d generator%s to accept; nothing written\n", n,
			       n == 1 ? "" : "s");
		else
			printf("plan: nothing to accept; nothing written\n");
		status = n ? VF_EXIT_ATTENTION : VF_EXIT_OK;
	} else if (!status) {
		printf("accept: %d generator%s recorded as made by the current spec, values kept\n", n,
		       n == 1 ? "" : "s");
	}
	vf_txn_abort(&txn);
	vg_survey_free(&s);
	vg_context_free(&ctx);
	if (lock_fd >= 0)
		close(lock_fd);
	return status < 0 ? 0 : status;
}
