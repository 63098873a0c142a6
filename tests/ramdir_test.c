/* Checks the one RAM-directory check the tools share (format/base/ramdir.h):
 *  1. /proc/swaps text: a header alone is no swap, a listed area is;
 *  2. mountinfo: `noswap` is found in the mount or the super options, not
 *     as part of another word, and only on the line of the asked mount id;
 *  3. vf_ram_dir_check on real directories: /dev/shm is RAM, /tmp's file
 *     system (a disk here) is not, and a ramfs or tmpfs mounted for the
 *     test is RAM (mounts are tried only as root, skipped otherwise); a
 *     tmpfs mounted noswap never may_swap, and may_swap follows the
 *     machine's /proc/swaps for one that is not.
 * Prints one line per check and "ramdir: N passed, M failed"; exit status 0
 * only when nothing failed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "base/ramdir.h"

static int passed, failed;

static void check(bool ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

static const char *const header =
	"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

static void swaps(void)
{
	char one[256];
	snprintf(one, sizeof(one), "%s/swapfile                               file\t\t1048572\t\t0\t\t-2\n",
		 header);
	check(!vf_swaps_active(header), "a /proc/swaps header alone: no swap");
	check(!vf_swaps_active(""), "an empty /proc/swaps: no swap");
	check(vf_swaps_active(one), "a listed swap file: swap is active");
}

static void mountinfo(void)
{
	const char *info =
		"25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=100k\n"
		"26 24 0:24 / /run/a rw,noswap,relatime - tmpfs tmpfs rw\n"
		"27 24 0:25 / /run/b rw,relatime - tmpfs tmpfs rw,size=10k,noswap\n"
		"28 24 0:26 / /run/c rw,relatime - tmpfs noswap rw,noswapx,xnoswap\n"
		"29 24 0:27 / /run/noswap rw - tmpfs tmpfs rw";
	check(vf_mountinfo_noswap(info, 25) == 0, "mountinfo: a plain tmpfs is not noswap");
	check(vf_mountinfo_noswap(info, 26) == 1, "mountinfo: noswap among the mount options");
	check(vf_mountinfo_noswap(info, 27) == 1, "mountinfo: noswap last among the super options");
	check(vf_mountinfo_noswap(info, 28) == 0,
	      "mountinfo: noswap as a source or inside another option does not count");
	check(vf_mountinfo_noswap(info, 29) == 0,
	      "mountinfo: a mount point named noswap does not count (last line, no newline)");
	check(vf_mountinfo_noswap(info, 2) == -1, "mountinfo: an unknown mount id is not found");
}

static int check_dir(const char *path, bool *may_swap)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -2;
	int r = vf_ram_dir_check(fd, may_swap);
	close(fd);
	return r;
}

static bool machine_swaps(void)
{
	char buf[4096] = "";
	FILE *f = fopen("/proc/swaps", "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return vf_swaps_active(buf);
}

static void mounted(const char *type, const char *options, bool expect_may_swap,
		    const char *what)
{
	char dir[] = "/tmp/ramdir_test.XXXXXX";
	if (!mkdtemp(dir)) {
		check(false, "mkdtemp");
		return;
	}
	if (mount("ramdir_test", dir, type, 0, options) != 0) {
		printf("skip: %s (mount %s -o %s: not permitted here)\n", what, type,
		       options ? options : "");
		rmdir(dir);
		return;
	}
	bool may_swap = true;
	check(check_dir(dir, &may_swap) == 1 && may_swap == expect_may_swap, what);
	umount(dir);
	rmdir(dir);
}

static void real_dirs(void)
{
	bool may_swap = false;
	bool swap = machine_swaps();
	check(check_dir("/dev/shm", &may_swap) == 1, "/dev/shm is on RAM");
	int tmp = check_dir("/tmp", &may_swap);
	if (tmp == 0)
		check(true, "/tmp (a disk here) is not on RAM");
	else
		printf("skip: /tmp is on RAM here\n");
	mounted("ramfs", NULL, false, "a ramfs is on RAM and never reaches swap");
	mounted("tmpfs", "size=64k", swap, "a tmpfs reaches swap exactly when swap is active");
	mounted("tmpfs", "size=64k,noswap", false, "a tmpfs mounted noswap never reaches swap");
}

int main(void)
{
	swaps();
	mountinfo();
	real_dirs();
	printf("ramdir: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
