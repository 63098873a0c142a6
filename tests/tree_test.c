/* Checks the tree remover all three tools use (format/base/tree.h):
 *  1. a tree with files, FIFOs, nested directories and symlinks goes; what
 *     the symlinks point to stays;
 *  2. a file with one link is zero-filled before it goes (seen through a
 *     descriptor held open), one with two links is not;
 *  3. with check_owner, another owner's directory is not entered (EPERM)
 *     and is left; beyond max_depth, ELOOP and the deep part is left;
 *  4. restore_access: a tree whose writer took its own permissions away
 *     is still emptied (checked as an unprivileged user when run as root);
 *  5. the stale sweeper removes only recognised, dead, owned, private,
 *     unlocked directories, never through a symlink, and reports each.
 * Works in a mkdtemp directory under /tmp, removed afterwards. Prints one
 * line per check and "tree: N passed, M failed"; exit status 0 only when
 * nothing failed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/tree.h"

static int passed, failed;
static char dir[64];
static int dir_fd = -1;

static void check(bool ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

/* Setting up: a failure here is the machine's, not the remover's. */
static void must(int rc, const char *what)
{
	if (rc != 0) {
		perror(what);
		exit(2);
	}
}

static void make(const char *rel, mode_t mode)
{
	if (mkdirat(dir_fd, rel, mode) != 0) {
		perror(rel);
		exit(2);
	}
}

static void put(const char *rel, const char *text)
{
	int fd = openat(dir_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(rel);
		exit(2);
	}
	close(fd);
}

static bool exists(const char *rel)
{
	struct stat st;
	return fstatat(dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static const struct vf_tree_opts plain = {.max_depth = 16};

static void test_symlinks_not_followed(void)
{
	char target[128];
	make("outside", 0700);
	put("outside/keep", "keep");
	make("t", 0700);
	make("t/a", 0700);
	make("t/a/b", 0700);
	put("t/a/b/f", "x");
	must(mkfifoat(dir_fd, "t/a/fifo", 0600), "mkfifoat");
	snprintf(target, sizeof(target), "%s/outside", dir);
	must(symlinkat(target, dir_fd, "t/a/b/dirlink"), "symlinkat");
	must(symlinkat("../../../outside/keep", dir_fd, "t/a/filelink"), "symlinkat");
	check(vf_tree_remove_at(dir_fd, "t", &plain) == 0 && !exists("t"), "tree removed");
	check(exists("outside/keep"), "symlink targets kept");
	check(vf_tree_remove_at(dir_fd, "outside/keep", &plain) == -1 && errno == ENOTDIR &&
		      exists("outside/keep"),
	      "a file as the top: ENOTDIR, kept");
	must(symlinkat("outside", dir_fd, "toplink"), "symlinkat");
	check(vf_tree_remove_at(dir_fd, "toplink", &plain) == -1 && exists("outside/keep"),
	      "a symlink as the top: not followed");
	unlinkat(dir_fd, "toplink", 0);
}

static void test_wipe(void)
{
	const struct vf_tree_opts wipe = {.wipe = true, .max_depth = 16};
	make("w", 0700);
	put("w/secret", "plaintext");
	put("w/shared", "shared");
	must(linkat(dir_fd, "w/shared", dir_fd, "shared-link", 0), "linkat");
	int held = openat(dir_fd, "w/secret", O_RDONLY | O_CLOEXEC);
	check(vf_tree_remove_at(dir_fd, "w", &wipe) == 0 && !exists("w"), "wiped tree removed");
	char buf[16] = {1};
	ssize_t n = pread(held, buf, sizeof(buf), 0);
	check(n == 9 && !memcmp(buf, "\0\0\0\0\0\0\0\0\0", 9), "single-link file zero-filled");
	close(held);
	int fd = openat(dir_fd, "shared-link", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	check(n == 6 && !memcmp(buf, "shared", 6), "a file with another link is not wiped");
	if (fd >= 0)
		close(fd);
	unlinkat(dir_fd, "shared-link", 0);
}

static void test_owner_and_depth(void)
{
	if (geteuid() == 0) {
		const struct vf_tree_opts own = {.check_owner = true, .owner = 0, .max_depth = 16};
		make("o", 0700);
		make("o/theirs", 0700);
		put("o/theirs/f", "x");
		put("o/mine", "x");
		check(fchownat(dir_fd, "o/theirs", 65534, 65534, AT_SYMLINK_NOFOLLOW) == 0,
		      "chown to nobody");
		check(vf_tree_remove_at(dir_fd, "o", &own) == -1 && errno == EPERM,
		      "another owner's directory: EPERM");
		check(exists("o/theirs/f") && !exists("o/mine"), "it is left, the rest goes");
		check(vf_tree_remove_at(dir_fd, "o", &plain) == 0, "cleanup");
	}
	const struct vf_tree_opts shallow = {.max_depth = 2};
	make("d", 0700);
	make("d/1", 0700);
	make("d/1/2", 0700);
	put("d/1/2/f", "x");
	check(vf_tree_remove_at(dir_fd, "d", &shallow) == -1 && errno == ELOOP &&
		      exists("d/1/2/f"),
	      "deeper than max_depth: ELOOP, left");
	const struct vf_tree_opts flat = {.max_depth = 1};
	int fd = openat(dir_fd, "d", O_RDONLY | O_DIRECTORY);
	put("d/top", "x");
	check(vf_tree_empty(fd, &flat) == -1 && errno == ELOOP && !exists("d/top") &&
		      exists("d/1"),
	      "max_depth 1: files go, directories stay");
	close(fd);
	vf_tree_remove_at(dir_fd, "d", &plain);
}

/* As an unprivileged user (permissions bind): directories of mode 0. */
static void test_restore_access(void)
{
	if (geteuid() != 0) {
		printf("skip: restore_access (needs root to become nobody)\n");
		return;
	}
	make("r", 0700);
	must(fchownat(dir_fd, "r", 65534, 65534, 0), "fchownat");
	must(fchmod(dir_fd, 0711), "fchmod"); /* nobody passes through to r */
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		const struct vf_tree_opts o = {.restore_access = true, .max_depth = 16};
		int fd = openat(dir_fd, "r", O_RDONLY | O_DIRECTORY);
		if (fd < 0 || mkdirat(fd, "locked", 0700) || mkdirat(fd, "locked/in", 0700) ||
		    fchmodat(fd, "locked/in", 0, 0) || fchmodat(fd, "locked", 0, 0) ||
		    fchmod(fd, 0500))
			_exit(3);
		_exit(vf_tree_empty(fd, &o) == 0 ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && !exists("r/locked"),
	      "restore_access: directories of mode 0 emptied");
	vf_tree_remove_at(dir_fd, "r", &plain);
}

/* "stale.<pid>.x" */
static bool parse_stale(const char *name, pid_t *pid)
{
	char tail;
	int p;
	if (sscanf(name, "stale.%d.%c", &p, &tail) != 2)
		return false;
	*pid = p;
	return true;
}

static char reported[512];

static void removed(const char *name, pid_t pid, void *ctx)
{
	(void)pid;
	strncat(reported, name, sizeof(reported) - strlen(reported) - 2);
	strcat(reported, (const char *)ctx);
}

static void test_sweep(void)
{
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	char name[64], link_name[64], loose[64], locked[64], live[64];
	snprintf(name, sizeof(name), "stale.%d.x", (int)gone);
	snprintf(link_name, sizeof(link_name), "stale.%d.l", (int)gone);
	snprintf(loose, sizeof(loose), "stale.%d.m", (int)gone);
	snprintf(locked, sizeof(locked), "stale.%d.k", (int)gone);
	snprintf(live, sizeof(live), "stale.%d.v", (int)getppid());
	make("s", 0700);
	int s = openat(dir_fd, "s", O_RDONLY | O_DIRECTORY);
	mkdirat(s, name, 0700);
	mkdirat(s, loose, 0755);
	mkdirat(s, locked, 0700);
	mkdirat(s, live, 0700);
	mkdirat(s, "other", 0700);
	make("outside2", 0700);
	must(symlinkat("../outside2", s, link_name), "symlinkat");
	int lock = openat(s, locked, O_RDONLY | O_DIRECTORY);
	flock(lock, LOCK_EX);
	const struct vf_tree_stale st = {
		.parse = parse_stale,
		.private_mode = true,
		.locked = true,
		.tree = plain,
		.removed = removed,
		.ctx = ";",
	};
	vf_tree_sweep_stale(s, &st);
	char expect[80];
	snprintf(expect, sizeof(expect), "%s;", name);
	check(faccessat(s, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0 && !strcmp(reported, expect),
	      "the stale directory removed and reported");
	check(faccessat(s, loose, F_OK, AT_SYMLINK_NOFOLLOW) == 0, "mode 0755: kept");
	check(faccessat(s, locked, F_OK, AT_SYMLINK_NOFOLLOW) == 0, "locked: kept");
	check(faccessat(s, live, F_OK, AT_SYMLINK_NOFOLLOW) == 0, "live pid: kept");
	check(faccessat(s, "other", F_OK, AT_SYMLINK_NOFOLLOW) == 0, "other name: kept");
	check(faccessat(s, link_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 && exists("outside2"),
	      "symlink: kept, not followed");
	close(lock);
	close(s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tree-test.XXXXXX");
	if (!mkdtemp(dir) || (dir_fd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
		perror("mkdtemp");
		return 2;
	}
	test_symlinks_not_followed();
	test_wipe();
	test_owner_and_depth();
	test_restore_access();
	test_sweep();
	int parent = open("/tmp", O_RDONLY | O_DIRECTORY);
	vf_tree_remove_at(parent, dir + strlen("/tmp/"), &plain);
	close(parent);
	printf("tree: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
