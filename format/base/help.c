/* The --help printer of the three tools (base/help.h). */
#include "base/help.h"

#include <string.h>

/* The left part of a row: "--opt ARG", but an optional argument of a
 * long option is glued on ("--opt[=ARG]"), and an operand stands alone.
 * Only "[=" glues: "--prompt [M:][G/]NAME=@FILE" is a required argument
 * that merely starts with a bracket. */
static void row_left(const struct vf_help_row *r, char *out, size_t cap)
{
	const char *option = r->option ? r->option : "";
	const char *argument = r->argument ? r->argument : "";
	const char *space = *option && *argument && strncmp(argument, "[=", 2) ? " " : "";
	snprintf(out, cap, "%s%s%s", option, space, argument);
}

void vf_help_print_rows(FILE *out, const char *title, const struct vf_help_row *rows, size_t n,
			bool options)
{
	/* One column for the descriptions of every row of the table, so that
	 * Arguments and Options line up; each description on its own line. */
	char left[128];
	int width = 0;
	for (size_t i = 0; i < n; i++) {
		row_left(&rows[i], left, sizeof(left));
		width = (int)strlen(left) > width ? (int)strlen(left) : width;
	}
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if ((rows[i].option != NULL) != options)
			continue;
		if (!any)
			fprintf(out, "\n%s:\n", title);
		any = true;
		row_left(&rows[i], left, sizeof(left));
		fprintf(out, "  %-*s  %s\n", width, left, rows[i].description);
	}
}

void vf_help_print(FILE *out, const struct vf_help *h)
{
	fprintf(out, "Usage: %s\n\n%s\n", h->usage, h->about);
	vf_help_print_rows(out, "Arguments", h->rows, h->n_rows, false);
	vf_help_print_rows(out, "Options", h->rows, h->n_rows, true);
	if (h->notes)
		fprintf(out, "\n%s\n", h->notes);
}
