/* -o FILE of varseal get and varseal machine key: the value (a secret, a
 * machine's identity) written to a file only this user may read, never
 * through the umask of a shell redirect, which left 0644 key files that
 * varinject then refused. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "varseal.h"

/* "root", "alice (uid 1000)" or "uid 1234". */
static const char *owner_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = uid ? getpwuid(uid) : NULL;
	if (uid == 0)
		snprintf(buf, cap, "root");
	else if (pw)
		snprintf(buf, cap, "%s (uid %lu)", pw->pw_name, (unsigned long)uid);
	else
		snprintf(buf, cap, "uid %lu", (unsigned long)uid);
	return buf;
}

/* The directory the file goes in, as opened: whoever else owns it, or may
 * write it without the sticky bit, could rename the file away and put
 * another in its place (a key of theirs where the host looks for the
 * machine's). */
static int check_directory(const struct vs_private_out *o)
{
	struct stat st;
	char who[128];
	if (fstat(o->file.dir_fd, &st) != 0)
		return vs_error("%s: %s", o->file.dir, strerror(errno));
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return vs_error("%s: the directory of %s is owned by %s: they could replace the "
				"file there (write it in a directory of yours or root's)",
				o->file.dir, o->path, owner_name(st.st_uid, who, sizeof(who)));
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return vs_error("%s: the directory of %s is writable by group or others and not "
				"sticky: they could replace the file there",
				o->file.dir, o->path);
	return 0;
}

/* What is at the name already: nothing, or (with --force) a file or a
 * symlink, which the rename replaces itself (a link is never followed). */
static int check_target(const struct vs_private_out *o)
{
	struct stat st;
	if (fstatat(o->file.dir_fd, o->file.base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : vs_error("%s: %s", o->path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return vs_error("%s: is a directory", o->path);
	if (!o->force)
		return vs_error("%s: exists (give --force to replace it)", o->path);
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return vs_error("%s: not a regular file or a symlink: not replaced", o->path);
	return 0;
}

int vs_private_open(struct vs_private_out *o, const char *path, bool force)
{
	o->path = path && strcmp(path, "-") ? path : NULL;
	o->force = force;
	o->open = false;
	if (!o->path)
		return 0;
	size_t len = strlen(path);
	if (!len || path[len - 1] == '/')
		return vs_error("%s: not a file name", path);
	struct vf_error err;
	/* The directory is opened once and everything happens beneath it;
	 * the file is created unnamed, mode 0600 (less the umask: never
	 * more), and has a name only once it is complete. */
	if (vf_atomic_open(&o->file, path, 0600, &err) != VF_OK)
		return vs_fail(NULL, &err);
	o->open = true;
	int status = check_directory(o);
	if (!status)
		status = check_target(o);
	if (!status && fchmod(o->file.fd, 0600) != 0)
		status = vs_error("%s: %s", path, strerror(errno));
	if (status)
		vs_private_abort(o);
	return status;
}

int vs_private_commit(struct vs_private_out *o, const void *data, size_t len)
{
	struct vf_error err;
	if (!o->path)
		return vf_write_all(STDOUT_FILENO, data, len, "standard output", &err) == VF_OK
			       ? 0
			       : vs_fail(NULL, &err);
	int status = 0;
	if (vf_write_all(o->file.fd, data, len, o->path, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	/* Without --force the rename itself refuses a name taken meanwhile. */
	else if (vf_atomic_commit(&o->file, o->force, &err) != VF_OK) {
		struct stat st;
		bool taken = !o->force && fstatat(AT_FDCWD, o->path, &st, AT_SYMLINK_NOFOLLOW) == 0;
		status = taken ? vs_error("%s: exists (give --force to replace it)", o->path)
			       : vs_fail(NULL, &err);
	}
	o->open = false; /* the commit closed everything, or removed the file */
	return status;
}

void vs_private_abort(struct vs_private_out *o)
{
	if (o->open)
		vf_atomic_abort(&o->file);
	o->open = false;
}
