/* vargen list: every file with its state; vargen check: only problems,
 * and a non-zero exit when there is any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vargen.h"

static const char list_usage[] = "vargen list [-f SPEC] [--store DIR] [--machine M]... "
				 "[--generator G]...";
static const char check_usage[] = "vargen check [-f SPEC] [--store DIR] [--machine M]... "
				  "[--generator G]...";
static const struct vg_help_row help_rows[] = {
	VG_SPEC_HELP,
	VG_SELECT_HELP,
	VG_HELP_OPTION,
};
static const struct vg_help list_help = {
	list_usage,
	"Lists the selected generators' files, kept machine keys and (nothing selected)\n"
	"orphans, one NAME<TAB>KIND<TAB>STATE line each.",
	VG_HELP_ROWS(help_rows),
};
static const struct vg_help check_help = {
	check_usage,
	"Lists what needs attention, as list does, and exits 1 when anything does,\n"
	"saying on standard error the command that fixes each state.",
	VG_HELP_ROWS(help_rows),
};

/* Prints the rows (only the problems with problems_only); returns the
 * number of problems, or -1 on error (reported). */
static int report(const struct vg_context *ctx, bool problems_only, struct vg_survey *s)
{
	if (vg_survey(ctx, s) != 0)
		return -1;
	for (size_t i = 0; i < s->n_rows; i++)
		if (!problems_only || !vf_state_sound(s->rows[i].st))
			vg_print_row(&s->rows[i]);
	return (int)vg_survey_problems(s);
}

int cmd_list(int argc, char **argv)
{
	struct vg_context ctx = {0};
	struct vg_survey s = {0};
	int status = vg_parse(argc, argv, &ctx, &list_help, NULL);
	if (status == 0 && report(&ctx, false, &s) < 0)
		status = 1;
	vg_survey_free(&s);
	vg_context_free(&ctx);
	return status < 0 ? 0 : status;
}

int cmd_check(int argc, char **argv)
{
	struct vg_context ctx = {0};
	struct vg_survey s = {0};
	int status = vg_parse(argc, argv, &ctx, &check_help, NULL);
	if (status == 0) {
		int bad = report(&ctx, true, &s);
		if (bad < 0) {
			status = 1;
		} else if (bad > 0) {
			fflush(stdout); /* the list first, then the verdict */
			fprintf(stderr, "vargen: check: %d of %zu need attention\n", bad, s.n_rows);
			vg_survey_hints(&s, &ctx);
			status = 1;
		} else {
			printf("check: all %zu ok\n", s.n_rows);
		}
	}
	vg_survey_free(&s);
	vg_context_free(&ctx);
	return status < 0 ? 0 : status;
}
