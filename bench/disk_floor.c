/* disk_floor - the floor for bench/disk_bench.sh: creates a tree of
 * directories and files read from a manifest with the tools' own sync
 * pattern, and nothing else (no YAML, no crypto, no guarded memory).
 *
 *   disk_floor txn   ROOT < MANIFEST
 *   disk_floor fsync ROOT < MANIFEST
 *
 * The manifest has one line per entry, parents before children:
 *   d REL        mkdir ROOT/REL (0700)
 *   f REL SIZE   write SIZE bytes to ROOT/REL (0600), atomically
 *   u REL        unlink ROOT/REL before the first sync (a record that
 *                vouched for files about to change: rekey's .commit;
 *                in fsync mode at once, so u lines go first)
 *
 * txn mirrors vf_txn_commit (format/vars/store.c): every file is first
 * written to a temporary ".<base>.<random>.tmp" beside it (no fsync of
 * its own), then syncfs, then every temporary is renamed into place
 * except the records (".commit", ".generator"), syncfs, the records
 * renamed, syncfs. A
 * file that exists already is replaced (rekey's case).
 *
 * fsync is the classic per-file pattern of vf_atomic (format/base/
 * atomic.c), for comparison: each temporary fsynced, renamed into place
 * and its directory fsynced, one file after the other.
 *
 * With DISK_FLOOR_PHASES set (txn only), one line is appended to the file
 * it names: the CPU seconds (user + sys) spent creating the tree, before
 * the first syncfs, and the wall seconds of the commit from that syncfs
 * on. disk_bench.sh adds them to the format's own arithmetic for the
 * least time a tool with no overhead of its own could take.
 *
 * Errors go to stderr and exit 1. Paths come from the benchmark itself,
 * not from an attacker: plain *at calls beneath ROOT. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct entry {
	char kind;
	char *rel;
	char *temp; /* NULL for a directory */
	size_t size;
};

static void die(const char *what, const char *rel)
{
	fprintf(stderr, "disk_floor: error: %s %s: %s\n", what, rel, strerror(errno));
	exit(1);
}

static const char *base_of(const char *rel)
{
	const char *slash = strrchr(rel, '/');
	return slash ? slash + 1 : rel;
}

static char *temp_for(const char *rel, unsigned long n)
{
	size_t dir_len = (size_t)(base_of(rel) - rel);
	size_t len = strlen(rel) + 32;
	char *temp = malloc(len);
	if (!temp) {
		errno = ENOMEM;
		die("allocating", rel);
	}
	snprintf(temp, len, "%.*s.%s.%012lx.tmp", (int)dir_len, rel, base_of(rel), n);
	return temp;
}

static void write_file(int rfd, const char *rel, size_t size)
{
	static char buf[65536];
	if (!buf[0])
		memset(buf, 'x', sizeof(buf));
	int fd = openat(rfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		die("creating", rel);
	while (size > 0) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);
		ssize_t w = write(fd, buf, n);
		if (w <= 0)
			die("writing", rel);
		size -= (size_t)w;
	}
	if (close(fd) != 0)
		die("closing", rel);
}

static void fsync_at(int rfd, const char *rel, int flags)
{
	int fd = openat(rfd, rel, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		die("fsync", rel);
	close(fd);
}

static bool is_record(const char *rel)
{
	return !strcmp(base_of(rel), ".commit") || !strcmp(base_of(rel), ".generator");
}

static void rename_all(int rfd, struct entry *e, size_t n, bool records)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].temp && is_record(e[i].rel) == records &&
		    renameat(rfd, e[i].temp, rfd, e[i].rel) != 0)
			die("renaming into", e[i].rel);
}

/* vf_atomic's commit (format/base/atomic.c): fsync, rename, fsync of
 * the directory, one file at a time. */
static void commit_one(int rfd, struct entry *e)
{
	fsync_at(rfd, e->temp, O_RDONLY);
	if (renameat(rfd, e->temp, rfd, e->rel) != 0)
		die("renaming into", e->rel);
	free(e->temp);
	e->temp = NULL;
	char *slash = strrchr(e->rel, '/');
	if (slash)
		*slash = '\0';
	fsync_at(rfd, slash ? e->rel : ".", O_RDONLY | O_DIRECTORY);
	if (slash)
		*slash = '/';
}

static void sync_root(int rfd, const char *root)
{
	if (syncfs(rfd) != 0)
		die("syncfs", root);
}

static double seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends "CREATE_CPU COMMIT_WALL" to the file DISK_FLOOR_PHASES names. */
static void report_phases(const char *path, double create_cpu, double commit_wall)
{
	FILE *f = fopen(path, "a");
	if (!f || fprintf(f, "%.6f %.6f\n", create_cpu, commit_wall) < 0 || fclose(f) != 0)
		die("writing", path);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "txn") && strcmp(argv[1], "fsync"))) {
		fprintf(stderr, "usage: disk_floor txn|fsync ROOT < MANIFEST\n");
		return 2;
	}
	bool per_file = !strcmp(argv[1], "fsync");
	const char *root = argv[2];
	if (mkdir(root, 0700) != 0 && errno != EEXIST)
		die("mkdir", root);
	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		die("opening", root);

	size_t n = 0, cap = 0;
	struct entry *e = NULL;
	char kind, rel[4096];
	size_t size;
	char line[8192];
	while (fgets(line, sizeof(line), stdin)) {
		int got = sscanf(line, "%c %4095s %zu", &kind, rel, &size);
		if (got < 2 || (kind == 'f' && got != 3) || !strchr("dfu", kind)) {
			errno = EINVAL;
			die("manifest line", line);
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			e = realloc(e, cap * sizeof(*e));
			if (!e)
				die("allocating", "the manifest");
		}
		e[n] = (struct entry){.kind = kind, .rel = strdup(rel), .size = kind == 'f' ? size : 0};
		if (!e[n].rel)
			die("allocating", rel);
		if (kind == 'd') {
			if (mkdirat(rfd, rel, 0700) != 0)
				die("mkdir", rel);
		} else if (kind == 'f') {
			e[n].temp = temp_for(rel, n);
			write_file(rfd, e[n].temp, size);
			if (per_file)
				commit_one(rfd, &e[n]);
		} else if (per_file && unlinkat(rfd, rel, 0) != 0) {
			die("unlinking", rel);
		}
		n++;
	}
	for (size_t i = 0; i < n && !per_file; i++)
		if (e[i].kind == 'u' && unlinkat(rfd, e[i].rel, 0) != 0)
			die("unlinking", e[i].rel);
	if (!per_file) {
		struct rusage ru;
		if (getrusage(RUSAGE_SELF, &ru) != 0)
			die("getrusage", root);
		double create_cpu = seconds(ru.ru_utime) + seconds(ru.ru_stime);
		double commit_from = now();
		sync_root(rfd, root); /* after the invalidation phase */
		rename_all(rfd, e, n, false);
		sync_root(rfd, root);
		rename_all(rfd, e, n, true);
		sync_root(rfd, root);
		const char *phases = getenv("DISK_FLOOR_PHASES");
		if (phases && *phases)
			report_phases(phases, create_cpu, now() - commit_from);
	}
	for (size_t i = 0; i < n; i++) {
		free(e[i].temp);
		free(e[i].rel);
	}
	free(e);
	close(rfd);
	return 0;
}
