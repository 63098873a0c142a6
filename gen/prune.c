/* vargen prune: removes from the store what the spec no longer names
 * (orphans: retired machines, dropped generators and files, keys of
 * machines that are gone), so that nothing stays sealed to admins who
 * were removed since. Git history still holds what was removed: see
 * docs/store.md on --rotate and regeneration. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vars/store.h"
#include "vargen.h"

static const char usage[] = "vargen prune [-f SPEC] [--store DIR] [--plan] [--yes]";
static const struct vf_help_row help_rows[] = {
	VG_SPEC_HELP,
	{"--plan", NULL, "list what would be removed; write nothing"},
	{"--yes", NULL, "remove without asking (needed off a terminal)"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Removes from the store what the spec no longer names (orphans: retired machines,\n"
	"dropped generators and files, keys of machines that are gone), once confirmed.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

static void print_orphans(const struct vf_orphans *o, const char *action, FILE *out)
{
	for (size_t i = 0; i < o->n; i++)
		fprintf(out, "%s\t%s\t%s\n", action, o->items[i].name, o->items[i].why);
}

static int remove_all(const struct vg_context *ctx, const struct vf_orphans *o)
{
	struct vf_error err;
	return vf_vars_remove_orphans(ctx->root, o, &err) == VF_OK ? 0 : vg_fail(&err);
}

int cmd_prune(int argc, char **argv)
{
	struct vg_context ctx = {0};
	struct vg_flags flags = {0};
	struct vf_orphans o = {0};
	struct vf_error err;
	int lock_fd = -1;
	int status = vg_parse(argc, argv, &ctx, &help, &flags);
	if (!status && (flags.all || ctx.machines.n || ctx.generators.n))
		status = vg_usage(usage);
	if (!status && !flags.plan && vf_store_lock(ctx.root, &lock_fd, &err) != VF_OK)
		status = vg_fail(&err);
	/* What a killed prune took out of the store goes first, also when
	 * there is nothing else to remove. */
	if (!status && !flags.plan)
		vf_store_clean_temps(ctx.root);
	if (!status && vf_vars_orphans(&ctx.spec, ctx.root, &o, &err) != VF_OK)
		status = vg_fail(&err);
	if (!status && flags.plan) {
		print_orphans(&o, "remove", stdout);
		if (o.n)
			printf("plan: %zu orphan%s to remove; nothing written\n", o.n,
			       o.n == 1 ? "" : "s");
		else
			printf("plan: nothing to remove; nothing written\n");
		status = o.n ? VF_EXIT_ATTENTION : VF_EXIT_OK;
	} else if (!status && o.n) {
		char question[128];
		snprintf(question, sizeof(question), "Remove these %zu orphan%s? [y/N] ", o.n,
			 o.n == 1 ? "" : "s");
		int tty = flags.yes ? -1 : open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
		if (tty >= 0) { /* the list only where someone can answer */
			close(tty);
			print_orphans(&o, "remove", stderr);
		}
		char what[64];
		snprintf(what, sizeof(what), "remove %zu orphan%s", o.n, o.n == 1 ? "" : "s");
		status = vg_confirm(question, o.n, what, flags.yes);
		if (!status)
			status = remove_all(&ctx, &o);
		if (!status) {
			print_orphans(&o, "removed", stdout);
			printf("prune: %zu orphan%s removed (git history still has them)\n", o.n,
			       o.n == 1 ? "" : "s");
		}
	} else if (!status) {
		printf("prune: nothing to remove\n");
	}
	vf_orphans_free(&o);
	vg_context_free(&ctx);
	if (lock_fd >= 0)
		close(lock_fd);
	return status < 0 ? 0 : status;
}
