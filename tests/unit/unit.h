/* The unit tests' harness (tests/unit/): one line per check, "ok" or
 * "FAIL" with where and what, and a closing line "N passed, M failed" that
 * CI looks for; unit_done() gives the exit status (0 only when nothing
 * failed). Header-only, so each test links nothing but the library it
 * tests. Setting up (a temporary directory, a file to read) is not a
 * check: unit_must() stops with status 2 when the machine fails us. */
#ifndef UNIT_H
#define UNIT_H

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int unit_passed, unit_failed;

__attribute__((format(printf, 4, 5))) static inline bool
unit_check(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s %s:%d: ", ok ? "ok  " : "FAIL", file, line);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (ok)
		unit_passed++;
	else
		unit_failed++;
	return ok;
}

__attribute__((format(printf, 5, 6))) static inline bool
unit_check_ok(bool ok, const char *msg, const char *file, int line, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return unit_check(ok, file, line, "%s%s%s", what, ok ? "" : ": ", ok ? "" : msg);
}

/* CHECK(cond, "what, printf-style"): counts, prints, returns cond. */
#define CHECK(cond, ...) unit_check((cond), __FILE__, __LINE__, __VA_ARGS__)
/* The same for two strings (either may be NULL): equal. Each argument is
 * evaluated once. */
#define CHECK_STR(a, b, what) unit_check_str((a), (b), (what), __FILE__, __LINE__)

/* CHECK_OK(call, err, "what, printf-style"): call must return VF_OK; on
 * failure the line ends with err.msg. */
#define CHECK_OK(call, err, ...)                                                                \
	unit_check_ok((call) == VF_OK, (err).msg, __FILE__, __LINE__, __VA_ARGS__)

static inline bool unit_check_str(const char *a, const char *b, const char *what,
				  const char *file, int line)
{
	return unit_check(a && b && strcmp(a, b) == 0, file, line, "%s (got \"%s\", want \"%s\")",
			  what, a ? a : "(null)", b ? b : "(null)");
}

static inline void unit_must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "setup failed: %s: %s\n", what, strerror(errno));
		exit(2);
	}
}

/* A fresh private directory under $TMPDIR (else /dev/shm, else /tmp),
 * written into buf. */
static inline void unit_tempdir(char *buf, size_t cap, const char *name)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int n = snprintf(buf, cap, "%s/%s.XXXXXX", base, name);
	unit_must(n > 0 && (size_t)n < cap, "temporary directory name");
	unit_must(mkdtemp(buf) != NULL, buf);
}

static inline int unit_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes dir and everything beneath it, never following a symlink. */
static inline void unit_rmtree(const char *dir)
{
	nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* What the kernel says of one mapping (/proc/self/smaps): Locked and
 * AnonHugePages in KiB, THPeligible (1: huge pages may back it, 0: not;
 * -1 where the kernel does not say), and its VmFlags line. */
struct unit_smaps {
	long locked_kib, huge_kib, thp_eligible;
	char flags[256];
};

/* The entry of the mapping that starts at p, in *m; false if none does. */
static inline bool unit_smaps_of(const void *p, struct unit_smaps *m)
{
	*m = (struct unit_smaps){-1, -1, -1, ""};
	FILE *f = fopen("/proc/self/smaps", "r");
	unit_must(f != NULL, "/proc/self/smaps");
	char line[512];
	bool in = false, found = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo == (uintptr_t)p;
			found = found || in;
			continue;
		}
		if (!in)
			continue;
		sscanf(line, "Locked: %ld kB", &m->locked_kib);
		sscanf(line, "AnonHugePages: %ld kB", &m->huge_kib);
		sscanf(line, "THPeligible: %ld", &m->thp_eligible);
		if (strncmp(line, "VmFlags:", 8) == 0) {
			size_t n = strcspn(line + 8, "\n");
			n = n < sizeof(m->flags) - 1 ? n : sizeof(m->flags) - 1;
			memcpy(m->flags, line + 8, n);
			m->flags[n] = 0;
		}
	}
	fclose(f);
	return found;
}

/* Prints the closing line and gives main's status. */
static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
