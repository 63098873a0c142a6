/* Whether a directory keeps its files in RAM: where vargen runs generator
 * scripts and where varinject puts credential files (and install its
 * generations) must be ramfs or tmpfs, never a disk. A tmpfs may still be
 * written to swap; as systemd reasons for its credentials, that is the
 * case when swap is active and the tmpfs is not mounted `noswap` (Linux
 * 6.4+). One copy here, for all three callers. */
#ifndef VF_RAMDIR_H
#define VF_RAMDIR_H

#include <stdbool.h>

/* The directory open at fd: 1 when it is on ramfs or tmpfs, 0 when not,
 * -1 when fstatfs fails (errno). On 1, *may_swap tells whether its pages
 * can reach swap (a tmpfs, swap active, not `noswap`; when the mount
 * cannot be found, true if swap is active): the caller warns once. */
int vf_ram_dir_check(int fd, bool *may_swap);

/* The parts, for tests: whether /proc/swaps text lists a swap area; and
 * whether the mountinfo line of mount mnt_id has the option `noswap`
 * (mount or super options), -1 when no line has that id. */
bool vf_swaps_active(const char *proc_swaps);
int vf_mountinfo_noswap(const char *mountinfo, unsigned long long mnt_id);

#endif
