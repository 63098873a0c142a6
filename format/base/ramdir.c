#include "base/ramdir.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* /proc/self/mountinfo of a machine with many mounts (containers) stays
 * well below this; a longer file is read only this far (the mount is then
 * "not found" and judged by swap alone). */
#define MAX_PROC_TEXT (1u << 20)

bool vf_swaps_active(const char *proc_swaps)
{
	/* A header line, then one line per active swap area. */
	const char *nl = proc_swaps ? strchr(proc_swaps, '\n') : NULL;
	return nl && nl[1] != '\0' && nl[1] != '\n';
}

/* Whether the comma-separated options in [p, end) include `noswap`. */
static bool has_noswap(const char *p, const char *end)
{
	const size_t n = strlen("noswap");
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		if ((size_t)(stop - p) == n && !memcmp(p, "noswap", n))
			return true;
		p = stop + 1;
	}
	return false;
}

/* The index-th space-separated field of [line, end), or NULL. */
static const char *field(const char *line, const char *end, int index, const char **fend)
{
	const char *p = line;
	for (int i = 0; p < end; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *stop = sp ? sp : end;
		if (i == index) {
			*fend = stop;
			return p;
		}
		if (!sp)
			break;
		p = sp + 1;
	}
	return NULL;
}

int vf_mountinfo_noswap(const char *mountinfo, unsigned long long mnt_id)
{
	for (const char *line = mountinfo; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);
		char *after;
		unsigned long long id = strtoull(line, &after, 10);
		if (after != line && id == mnt_id) {
			/* Field 5 holds the mount options; after the " - "
			 * separator come type, source and the super options. */
			const char *fend;
			const char *opts = field(line, end, 5, &fend);
			if (opts && has_noswap(opts, fend))
				return 1;
			const char *dash = strstr(line, " - ");
			if (dash && dash < end) {
				const char *sup = field(dash + 3, end, 2, &fend);
				if (sup && has_noswap(sup, fend))
					return 1;
			}
			return 0;
		}
		line = nl ? nl + 1 : end;
	}
	return -1;
}

/* A /proc file as text, NUL-terminated (at most MAX_PROC_TEXT); NULL on
 * any failure. Not vf_read_file: /proc files say their size is 0, so its
 * check that a regular file did not change while read would refuse them. */
static char *proc_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(MAX_PROC_TEXT + 1);
	size_t len = 0;
	while (buf && len < MAX_PROC_TEXT) {
		ssize_t n = read(fd, buf + len, MAX_PROC_TEXT - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				free(buf);
				buf = NULL;
			}
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* Whether the tmpfs holding fd is mounted noswap; unknown counts as not. */
static bool mount_noswap(int fd)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0 || !(stx.stx_mask & STATX_MNT_ID))
		return false;
	char *info = proc_text("/proc/self/mountinfo");
	bool noswap = info && vf_mountinfo_noswap(info, stx.stx_mnt_id) == 1;
	free(info);
	return noswap;
}

int vf_ram_dir_check(int fd, bool *may_swap)
{
	*may_swap = false;
	struct statfs fs;
	if (fstatfs(fd, &fs) != 0)
		return -1;
	if (fs.f_type == RAMFS_MAGIC)
		return 1; /* ramfs pages are never swapped */
	if (fs.f_type != TMPFS_MAGIC)
		return 0;
	char *swaps = proc_text("/proc/swaps");
	/* No /proc/swaps: no swap support in the kernel. */
	bool swap = swaps && vf_swaps_active(swaps);
	free(swaps);
	*may_swap = swap && !mount_noswap(fd);
	return 1;
}
