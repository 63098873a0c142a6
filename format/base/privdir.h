/* A private directory of the tool's own on a RAM file system, for
 * plaintext work files: what vargen's script runner (gen/script.c) and
 * varseal edit (seal/edit.c) share. The base is a directory on ramfs or
 * tmpfs (base/ramdir.h); in it each run makes PREFIX<pid>.<16 hex digits>,
 * mode 0700, checked on what was opened. A run killed outright leaves its
 * directory behind: the name gives its pid, for vf_tree_sweep_stale. */
#ifndef VF_PRIVDIR_H
#define VF_PRIVDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

/* Hex digits of randomness in a name: guessing it is hopeless. */
#define VF_PRIVATE_DIR_RANDOM_HEX 16

/* $XDG_RUNTIME_DIR, the first place to look, or NULL when it is unset or
 * not an absolute path (then it is not a runtime directory). */
const char *vf_runtime_dir(void);

/* path opened (O_DIRECTORY) when it is on RAM, else -1; *may_swap as
 * vf_ram_dir_check tells. */
int vf_ram_dir_open(const char *path, bool *may_swap);

/* Makes prefix<pid>.<hex> in the directory base_fd (shown as base in
 * messages), 0700, and opens it (O_NOFOLLOW) into *fd, its name in
 * name[cap]. What was opened must be a directory of geteuid()'s that
 * group and others cannot reach, else it is removed again (nothing is in
 * it yet) and VF_E_IO says so ("BASE/NAME: not the private directory just
 * made"); likewise when mkdirat fails, or no fresh name is found in 8
 * tries. */
enum vf_code vf_private_dir_make(int base_fd, const char *base, const char *prefix, char *name,
				 size_t cap, int *fd, struct vf_error *err);

/* Whether name is prefix<pid>.<VF_PRIVATE_DIR_RANDOM_HEX hex digits>, the
 * pid (decimal digits only) in *pid. */
bool vf_private_dir_pid(const char *prefix, const char *name, pid_t *pid);

#endif
