/* A command's --help, as all three tools print it: its usage, what it
 * does, one line per operand and per option (each described in one line,
 * the descriptions in one column), then notes. Every option of a getopt
 * table has its row: tests/help_test.py checks it. Printed on the stream
 * the tool hands over; nothing here exits. */
#ifndef VF_HELP_H
#define VF_HELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct vf_help_row {
	const char *option;	 /* "-o, --output"; NULL for an operand */
	const char *argument;	 /* "FILE", "[=DIR]" (glued on), or NULL */
	const char *description; /* one line */
};
struct vf_help {
	const char *usage;
	const char *about; /* a sentence or two */
	const struct vf_help_row *rows;
	size_t n_rows;
	const char *notes; /* after the options, or NULL */
};
#define VF_HELP_ROWS(rows) (rows), sizeof(rows) / sizeof((rows)[0])
#define VF_HELP_OPTION {"-h, --help", NULL, "show this help and exit"}

/* "\nTitle:\n" and the operand rows (options false) or the option rows,
 * when there is any, aligned on one column for the whole table (so that
 * Arguments and Options line up). */
void vf_help_print_rows(FILE *out, const char *title, const struct vf_help_row *rows, size_t n,
			bool options);
/* The whole help: usage, about, Arguments, Options, notes. */
void vf_help_print(FILE *out, const struct vf_help *h);

#endif
