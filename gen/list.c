/* vargen list: every file with its state; vargen check: only problems,
 * and a non-zero exit when there is any. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vargen.h"

static const char list_usage[] = "vargen list [-f SPEC] [--store DIR] [--machine M]... "
				 "[--generator G]...";
static const char check_usage[] = "vargen check [-f SPEC] [--store DIR] [--machine M]... "
				  "[--generator G]...";

static int parse(int argc, char **argv, struct vg_context *ctx, const char *usage)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, OPT_STORE},
		{"machine", required_argument, NULL, 'm'},
		{"generator", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	struct vf_error err;
	while ((c = getopt_long(argc, argv, "f:m:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': ctx->spec_path = optarg; break;
		case OPT_STORE: ctx->store_opt = optarg; break;
		case 'm':
			if (vf_strings_add(&ctx->machines, optarg, &err) != VF_OK)
				return vg_fail(&err);
			break;
		case 'g':
			if (vf_strings_add(&ctx->generators, optarg, &err) != VF_OK)
				return vg_fail(&err);
			break;
		case 'h': printf("Usage: %s\n", usage); return -1;
		default: return vg_usage(usage);
		}
	}
	if (optind != argc)
		return vg_usage(usage);
	return vg_load(ctx);
}

/* Prints the states; returns the number of files not ok. */
static int report(const struct vg_context *ctx, bool problems_only, size_t *total)
{
	struct vg_item *items;
	size_t n;
	if (vg_items(ctx, &items, &n) != 0)
		return -1;
	int bad = 0;
	*total = 0;
	for (size_t i = 0; i < n; i++) {
		const struct vf_spec_generator *g = items[i].g;
		if (!vg_selected_generator(ctx, g->name))
			continue;
		enum vf_state *states = calloc(g->n_files + 1, sizeof(*states));
		struct vf_error err;
		if (!states)
			vf_fail(&err, VF_E_NOMEM, "out of memory");
		if (!states || vf_vars_state(&ctx->spec, ctx->root, items[i].machine, g, states,
					     &err) != VF_OK) {
			vg_fail(&err);
			free(states);
			free(items);
			return -1;
		}
		for (size_t f = 0; f < g->n_files; f++) {
			(*total)++;
			if (states[f] != VF_STATE_OK)
				bad++;
			if (problems_only && states[f] == VF_STATE_OK)
				continue;
			printf("%s/%s/%s\t%s\t%s\n", items[i].machine ? items[i].machine : "shared",
			       g->name, g->files[f].name, g->files[f].secret ? "secret" : "value",
			       vf_state_name(states[f]));
		}
		free(states);
	}
	free(items);
	return bad;
}

int cmd_list(int argc, char **argv)
{
	struct vg_context ctx = {0};
	int status = parse(argc, argv, &ctx, list_usage);
	size_t total = 0;
	if (status == 0 && report(&ctx, false, &total) < 0)
		status = 1;
	vg_context_free(&ctx);
	return status < 0 ? 0 : status;
}

int cmd_check(int argc, char **argv)
{
	struct vg_context ctx = {0};
	int status = parse(argc, argv, &ctx, check_usage);
	size_t total = 0;
	if (status == 0) {
		int bad = report(&ctx, true, &total);
		if (bad < 0)
			status = 1;
		else if (bad > 0) {
			fflush(stdout); /* the list first, then the verdict */
			fprintf(stderr, "vargen: check: %d of %zu files need attention "
					"(vargen generate; varseal rekey for wrong-recipients)\n",
				bad, total);
			status = 1;
		} else {
			printf("check: all %zu files ok\n", total);
		}
	}
	vg_context_free(&ctx);
	return status < 0 ? 0 : status;
}
