/* Messages and readiness notification for systemd.
 *
 * libsystemd is loaded only when systemd is there to talk to: linked at
 * start, it and the six libraries it needs (libgcrypt, libzstd, liblzma,
 * liblz4, libcap, libgpg-error) cost every run of varinject about 3 ms
 * and 65 page faults on the loader's side (bench/README.md), a run at a
 * terminal or from a script as much as one under systemd, which alone uses
 * it. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "varinject.h"

/* The library's soname, stable since systemd 209 merged its libraries:
 * the same name a link would have recorded in DT_NEEDED, found the same
 * way (the loader's cache and default directories). */
#define LIBSYSTEMD_SONAME "libsystemd.so.0"

/* The entry points, typed from the library's own headers so that a
 * changed prototype fails the build, as a link against it would. */
static struct {
	__typeof__(sd_notify) *notify;
	__typeof__(sd_journal_print) *journal_print;
	char why[256]; /* dlerror()'s text when the library could not be loaded */
} libsystemd;
static pthread_once_t libsystemd_once = PTHREAD_ONCE_INIT;

static void libsystemd_load(void)
{
	/* RTLD_NOW: every symbol bound here, as -z now does for the tools'
	 * own; RTLD_LOCAL: nothing of it leaks into later lookups. Never
	 * closed: it is loaded at most once and used until exit. */
	void *h = dlopen(LIBSYSTEMD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h != NULL) {
		*(void **)&libsystemd.notify = dlsym(h, "sd_notify");
		*(void **)&libsystemd.journal_print = dlsym(h, "sd_journal_print");
	}
	if (libsystemd.notify == NULL || libsystemd.journal_print == NULL) {
		const char *e = dlerror();
		snprintf(libsystemd.why, sizeof(libsystemd.why), "%s",
			 e != NULL ? e : LIBSYSTEMD_SONAME ": sd_notify or sd_journal_print missing");
		libsystemd.notify = NULL;
		libsystemd.journal_print = NULL;
	}
}

static bool libsystemd_ready(void)
{
	pthread_once(&libsystemd_once, libsystemd_load);
	return libsystemd.notify != NULL;
}

static bool to_journal;

/* One decimal number at *s, digits only (strtoull alone would take a
 * sign or leading blanks), in range; *s moves past it. */
static bool parse_decimal(const char **s, unsigned long long *out)
{
	if (**s < '0' || **s > '9')
		return false;
	char *end;
	errno = 0;
	*out = strtoull(*s, &end, 10);
	*s = end;
	return errno == 0;
}

/* JOURNAL_STREAM holds the device and inode of the journal stream systemd
 * gave a unit as stderr: then structured entries are better than lines on
 * the stream. systemd.exec(5) says to compare them with stderr's own, and
 * that matters: the variable is inherited by everything the unit runs,
 * also with stderr redirected to a file or a pipe, where the message must
 * go instead. */
void vi_log_init(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	to_journal = stream != NULL && parse_decimal(&stream, &dev) && *stream++ == ':' &&
		     parse_decimal(&stream, &ino) && *stream == '\0' &&
		     fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
		     (unsigned long long)st.st_ino == ino;
}

/* A message the journal did not take (the library could not be loaded, or
 * refused it) goes to stderr, which is the journal's stream anyway: an
 * error must never vanish because the richer route failed. (Without a
 * journal socket libsystemd drops the entry and reports success; stderr
 * matching JOURNAL_STREAM says systemd, and so its journal, is there.) */
__attribute__((format(printf, 3, 0))) static void emit(int priority, const char *label,
						       const char *fmt, va_list ap)
{
	char raw[4096], safe[4096];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	vf_escape_controls(raw, safe, sizeof(safe));
	if (to_journal && libsystemd_ready() &&
	    libsystemd.journal_print(priority, "%s%s", label, safe) >= 0)
		return;
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

/* Only under a unit that asked for notifications (NOTIFY_SOCKET) is there
 * anyone to tell, and only then is libsystemd loaded. If it cannot be, say
 * so once: a Type=notify unit would otherwise wait out its start timeout
 * with no word of why. */
void vi_notify(const char *fmt, ...)
{
	static bool warned;
	char msg[512];
	va_list ap;
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	if (!libsystemd_ready()) {
		if (!warned)
			vi_warn("cannot notify systemd: %s", libsystemd.why);
		warned = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	libsystemd.notify(0, msg);
}
