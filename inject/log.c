/* Messages and readiness notification for systemd. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "varinject.h"

static bool to_journal;

/* The left part of a row: "--opt ARG", but an optional argument is glued
 * on ("--opt[=ARG]"), and an operand alone. */
static void row_left(const struct vi_help_row *r, char *out, size_t cap)
{
	const char *option = r->option ? r->option : "";
	const char *argument = r->argument ? r->argument : "";
	const char *space = *option && *argument && *argument != '[' ? " " : "";
	snprintf(out, cap, "%s%s%s", option, space, argument);
}

static void print_rows(const char *title, const struct vi_help_row *rows, size_t n, bool options)
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
			printf("\n%s:\n", title);
		any = true;
		row_left(&rows[i], left, sizeof(left));
		printf("  %-*s  %s\n", width, left, rows[i].description);
	}
}

/* Help is no message, but it is what the tool says about itself: here
 * beside the other things it says. */
void vi_print_help(const struct vi_help *h)
{
	printf("Usage: %s\n\n%s\n", h->usage, h->about);
	print_rows("Arguments", h->rows, h->n_rows, false);
	print_rows("Options", h->rows, h->n_rows, true);
	if (h->notes)
		printf("\n%s\n", h->notes);
}

/* JOURNAL_STREAM names the journal socket systemd gave us as stderr: then
 * structured journal entries are better than lines on a stream. */
void vi_log_init(void)
{
	to_journal = getenv("JOURNAL_STREAM") != NULL && getenv("INVOCATION_ID") != NULL;
}

__attribute__((format(printf, 3, 0))) static void emit(int priority, const char *label,
						       const char *fmt, va_list ap)
{
	char raw[4096], safe[4096];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	vf_escape_controls(raw, safe, sizeof(safe));
	if (to_journal)
		sd_journal_print(priority, "%s%s", label, safe);
	else
		fprintf(stderr, "varinject: %s%s\n", label, safe);
}

void vi_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

void vi_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

int vi_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_ERR, "error: ", fmt, ap);
	va_end(ap);
	return VF_EXIT_ERROR;
}

int vi_fail(const struct vf_error *err)
{
	vi_error("%s", err->msg);
	return vf_exit_status(err->code);
}

void vi_notify(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sd_notify(0, msg);
}
