/* Directories a root process works in although other users may write
 * nearby: resolved once to a descriptor, then walked (and removed, with
 * format/base/tree.h) only through descriptors, never by following a path
 * someone else could redirect. */
#ifndef VI_SAFEDIR_H
#define VI_SAFEDIR_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Symlinks followed while resolving one path, as the kernel's own limit. */
#define VI_SAFEDIR_MAX_SYMLINKS 40

/* "root", "alice (uid 1000)" or "uid 1234": an owner in a message. */
const char *vi_owner_name(uid_t uid, char *buf, size_t cap);

/* Opens the directory PATH (O_RDONLY|O_DIRECTORY) one component at a time,
 * following symlinks only when that is no "unsafe path transition" in
 * systemd-tmpfiles' sense: from anything not owned by root, the next step
 * must have the same owner. A directory on the way that group or others
 * may write must be sticky, or they could swap the next step. Errors are
 * reported (one line naming the path and the reason); returns 0 or 1. */
int vi_open_dir_path(const char *path, int *out);

#endif
