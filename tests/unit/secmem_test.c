/* Unit tests of the guarded memory in 2 MiB blocks (format/base/secmem.c,
 * vf_huge_alloc), which holds the payload stream's ring: a decrypt's
 * plaintext.
 *  1. The block is at least the length asked, a whole number of 2 MiB
 *     pages, aligned to 2 MiB, zero-filled and writable.
 *  2. A guard page on each side: a read of the byte before the block or
 *     of the byte after it kills the process with SIGSEGV (in a child).
 *  3. The kernel's view of the mapping (/proc/self/smaps): locked in full
 *     (where RLIMIT_MEMLOCK allows it, and not under AddressSanitizer,
 *     whose mlock does nothing), excluded from core dumps ("dd"),
 *     huge pages asked for ("hg"); the huge pages it got are printed, not
 *     checked (the kernel may have none to give).
 *  4. Released: the block is wiped before it is unmapped (munmap is
 *     wrapped at link time, -Wl,--wrap, to look at it first), and the
 *     whole span with its guard pages is unmapped.
 *  5. A length of 0, or one whose rounding would overflow, gives NULL.
 *  6. Without transparent huge pages (prctl PR_SET_THP_DISABLE, as on a
 *     host where they are off): 1 to 3 hold all the same, and the kernel
 *     says no huge page may back the block (THPeligible: 0, where it
 *     says), nor does one (AnonHugePages: 0). The huge pages are advice,
 *     never a condition. */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "base/secmem.h"
#include "unit.h"

#define HUGE ((size_t)2 << 20)

/* AddressSanitizer's mlock is a no-op that reports success (it cannot
 * lock its shadow memory alike), so nothing is locked under it. */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOCK_WORKS 0
#endif
#endif
#ifndef MLOCK_WORKS
#define MLOCK_WORKS 1
#endif

/* What the last munmap was given, and whether the bytes inside the guard
 * pages were all zero at that moment. */
static uint8_t *watched;
static size_t watched_len;
static bool unmapped_zero, unmapped_seen;
static uint8_t *unmapped_at;
static size_t unmapped_len;

int __real_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len)
{
	uint8_t *a = addr;
	if (watched && a < watched && a + len > watched + watched_len) {
		unmapped_seen = true;
		unmapped_at = a;
		unmapped_len = len;
		unmapped_zero = true;
		for (size_t i = 0; i < watched_len; i++)
			if (watched[i]) {
				unmapped_zero = false;
				break;
			}
	}
	return __real_munmap(addr, len);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Reads p[at] in a child; true if the child died of SIGSEGV. */
static bool read_faults(const uint8_t *p, ptrdiff_t at)
{
	fflush(stdout);
	pid_t pid = fork();
	unit_must(pid >= 0, "fork");
	if (pid == 0) {
		/* The sanitizers' own handler would exit with a report instead. */
		signal(SIGSEGV, SIG_DFL);
		volatile uint8_t v = p[at];
		(void)v;
		_exit(0);
	}
	int status;
	unit_must(waitpid(pid, &status, 0) == pid, "waitpid");
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

static bool has_flag(const char *flags, const char *flag)
{
	char want[8];
	snprintf(want, sizeof(want), " %s", flag);
	const char *at = strstr(flags, want);
	return at && (at[3] == ' ' || at[3] == 0);
}

/* 1 to 3 on a new block of 3 MiB, which is returned. thp_off: huge
 * pages are off for the process; then none may back the block. */
static uint8_t *checked_block(bool thp_off, size_t *cap)
{
	const char *when = thp_off ? "huge pages off: " : "";
	size_t len = HUGE + HUGE / 2;
	uint8_t *p = vf_huge_alloc(len, cap);
	unit_must(p != NULL, "vf_huge_alloc of 3 MiB");

	/* 1 */
	CHECK(*cap >= len && *cap % HUGE == 0,
	      "%s3 MiB asked: a block of %zu bytes, whole 2 MiB pages", when, *cap);
	CHECK((uintptr_t)p % HUGE == 0, "%saligned to 2 MiB (%p)", when, (void *)p);
	CHECK(all_zero(p, *cap), "%szero-filled", when);
	memset(p, 0xa5, *cap);
	CHECK(p[0] == 0xa5 && p[*cap - 1] == 0xa5, "%swritable to its last byte", when);

	/* 2 */
	CHECK(read_faults(p, -1), "%sthe byte before the block: SIGSEGV (a guard page)", when);
	CHECK(read_faults(p, (ptrdiff_t)*cap), "%sthe byte after the block: SIGSEGV (a guard page)",
	      when);

	/* 3 */
	struct unit_smaps m;
	CHECK(unit_smaps_of(p, &m), "%s/proc/self/smaps has a mapping starting at the block", when);
	struct rlimit lim;
	unit_must(getrlimit(RLIMIT_MEMLOCK, &lim) == 0, "getrlimit");
	if (!MLOCK_WORKS)
		printf("skip locked: AddressSanitizer's mlock locks nothing\n");
	else if (geteuid() == 0 || lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= 2 * *cap)
		CHECK(m.locked_kib == (long)(*cap / 1024), "%slocked in full (Locked: %ld kB of %zu)",
		      when, m.locked_kib, *cap / 1024);
	else
		printf("skip locked: RLIMIT_MEMLOCK %llu bytes, not root\n",
		       (unsigned long long)lim.rlim_cur);
	CHECK(has_flag(m.flags, "dd"), "%sexcluded from core dumps (VmFlags has dd:%s)", when,
	      m.flags);
	if (!thp_off) {
		CHECK(has_flag(m.flags, "hg"), "huge pages asked for (VmFlags has hg)");
		printf("note: AnonHugePages: %ld kB of %zu\n", m.huge_kib, *cap / 1024);
		return p;
	}
	/* 6 */
	if (m.thp_eligible < 0)
		printf("skip THPeligible: this kernel's smaps does not say\n");
	else
		CHECK(m.thp_eligible == 0, "huge pages off: none may back the block (THPeligible: %ld)",
		      m.thp_eligible);
	CHECK(m.huge_kib == 0, "huge pages off: none backs it (AnonHugePages: %ld kB)", m.huge_kib);
	return p;
}

/* Frees the block through vf_huge_free, watching the munmap that takes
 * it: true if that munmap covered the block and found it all zero. */
static bool freed_wiped(uint8_t *p, size_t cap)
{
	watched = p;
	watched_len = cap;
	unmapped_seen = false;
	vf_huge_free(p, cap);
	watched = NULL;
	return unmapped_seen && unmapped_zero;
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "vf_init failed\n");
		return 2;
	}
	size_t cap = 0;
	uint8_t *p = checked_block(false, &cap);

	/* 4 */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	CHECK(freed_wiped(p, cap), "released: wiped before it is unmapped");
	CHECK(unmapped_at == p - page && unmapped_len == cap + 2 * page,
	      "released: the block and both guard pages unmapped");

	/* 5 */
	size_t ignored = 0;
	CHECK(vf_huge_alloc(0, &ignored) == NULL, "0 bytes: NULL");
	CHECK(vf_huge_alloc(SIZE_MAX - 4096, &ignored) == NULL, "SIZE_MAX - 4096 bytes: NULL");
	vf_huge_free(NULL, 0);

	/* 6: for the rest of the process, as a host with them off. */
	unit_must(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "prctl(PR_SET_THP_DISABLE)");
	p = checked_block(true, &cap);
	CHECK(freed_wiped(p, cap), "huge pages off: wiped before it is unmapped");
	return unit_done();
}
