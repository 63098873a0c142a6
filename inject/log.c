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
