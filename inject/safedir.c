/* Descriptor-based resolution (safedir.h). The rule for a path
 * is systemd-tmpfiles' "unsafe path transition": a step from something
 * root owns may lead anywhere, a step from something a user owns must
 * stay with that user, or the user could point a privileged process at
 * files that are not theirs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safedir.h"
#include "varinject.h"

const char *vi_owner_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);
	if (uid == 0)
		snprintf(buf, cap, "root");
	else if (pw)
		snprintf(buf, cap, "%s (uid %lu)", pw->pw_name, (unsigned long)uid);
	else
		snprintf(buf, cap, "uid %lu", (unsigned long)uid);
	return buf;
}

static bool unsafe_transition(const struct stat *from, const struct stat *to)
{
	return from->st_uid != 0 && from->st_uid != to->st_uid;
}

/* Others may write it and the sticky bit does not stop them from renaming
 * entries they do not own. */
static bool swappable(const struct stat *st)
{
	return (st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX);
}

/* Where the walk is, for messages: the directory it is in, and the last
 * thing it stepped through (a directory or a symlink). */
struct walk {
	const char *path; /* as given */
	int fd;		  /* O_PATH, the current directory */
	struct stat from;
	char shown[PATH_MAX], from_shown[PATH_MAX];
	char *todo; /* what is left to resolve */
	unsigned links;
};

/* Display text only: a message may be cut short, a path in use never is. */
__attribute__((format(printf, 3, 4))) static void shown_printf(char *out, size_t cap,
							      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, cap, fmt, ap);
	va_end(ap);
}

static void shown_join(char *out, size_t cap, const char *dir, const char *name)
{
	if (!dir[0])
		shown_printf(out, cap, "%s", name);
	else if (!strcmp(dir, "/"))
		shown_printf(out, cap, "/%s", name);
	else
		shown_printf(out, cap, "%s/%s", dir, name);
}

static int refuse_transition(const char *path, const char *from_shown, const struct stat *from,
			     const char *to_shown, const struct stat *to)
{
	char a[128], b[128];
	return vi_error("%s: unsafe path transition from %s (owned by %s) to %s (owned by %s): "
			"a user could redirect it",
			path, from_shown, vi_owner_name(from->st_uid, a, sizeof(a)),
			to_shown[0] ? to_shown : ".", vi_owner_name(to->st_uid, b, sizeof(b)));
}

static int refuse_swappable(const char *shown)
{
	return vi_error("%s is writable by group or others and not sticky: they could replace "
			"what install puts there",
			shown[0] ? shown : ".");
}

/* The walk moves into the directory FD (stat ST, shown as SHOWN). */
static int enter_dir(struct walk *w, int fd, const struct stat *st, const char *shown)
{
	if (swappable(st)) {
		close(fd);
		return refuse_swappable(shown);
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	w->from = *st;
	snprintf(w->shown, sizeof(w->shown), "%s", shown);
	snprintf(w->from_shown, sizeof(w->from_shown), "%s", shown[0] ? shown : ".");
	return 0;
}

static int start_at(struct walk *w, const char *where, const char *shown)
{
	int fd = open(where, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vi_error("%s: %s", where, strerror(e));
	}
	return enter_dir(w, fd, &st, shown);
}

/* The symlink LINK (open O_PATH, stat ST): its target replaces it in what
 * is left to resolve. */
static int follow(struct walk *w, int link, const struct stat *st, const char *shown,
		  const char *rest)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(link, "", target, sizeof(target) - 1);
	int e = errno;
	close(link);
	if (n < 0)
		return vi_error("%s: %s", shown, strerror(e));
	target[n] = '\0';
	if (++w->links > VI_SAFEDIR_MAX_SYMLINKS)
		return vi_error("%s: more than %d symlinks", w->path, VI_SAFEDIR_MAX_SYMLINKS);
	size_t len = (size_t)n + 1 + strlen(rest) + 1;
	if (len > PATH_MAX)
		return vi_error("%s: %s", w->path, strerror(ENAMETOOLONG));
	char *todo = malloc(len);
	if (!todo)
		return vi_error("out of memory");
	memcpy(todo, target, (size_t)n);
	todo[n] = '/';
	memcpy(todo + n + 1, rest, strlen(rest) + 1);
	free(w->todo);
	w->todo = todo;
	/* The next step is judged from the link's owner, wherever it leads. */
	w->from = *st;
	snprintf(w->from_shown, sizeof(w->from_shown), "%s", shown);
	if (target[0] != '/')
		return 0;
	int status = start_at(w, "/", "/");
	if (!status && unsafe_transition(st, &w->from))
		status = refuse_transition(w->path, shown, st, "/", &w->from);
	return status;
}

/* One step: the component NAME of the current directory. */
static int step(struct walk *w, const char *name, const char *rest)
{
	char shown[PATH_MAX];
	shown_join(shown, sizeof(shown), w->shown, name);
	int fd = openat(w->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vi_error("%s: %s", shown, e == ENOENT ? "no such directory" : strerror(e));
	}
	if (unsafe_transition(&w->from, &st)) {
		close(fd);
		return refuse_transition(w->path, w->from_shown, &w->from, shown, &st);
	}
	if (S_ISLNK(st.st_mode))
		return follow(w, fd, &st, shown, rest);
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		return vi_error("%s: not a directory", shown);
	}
	return enter_dir(w, fd, &st, shown);
}

int vi_open_dir_path(const char *path, int *out)
{
	struct walk w = {.path = path, .fd = -1};
	w.todo = strdup(path);
	if (!w.todo)
		return vi_error("out of memory");
	int status = path[0] == '/' ? start_at(&w, "/", "/") : start_at(&w, ".", "");
	while (!status) {
		char *p = w.todo;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *end = strchr(p, '/');
		char *rest = end ? end + 1 : p + strlen(p);
		if (end)
			*end = '\0';
		char name[NAME_MAX + 1];
		if (strlen(p) > NAME_MAX) {
			status = vi_error("%s: %s", path, strerror(ENAMETOOLONG));
			break;
		}
		snprintf(name, sizeof(name), "%s", p);
		/* step() may replace w.todo: keep what is left apart. */
		char *left = strdup(rest);
		if (!left) {
			status = vi_error("out of memory");
			break;
		}
		free(w.todo);
		w.todo = left;
		if (strcmp(name, "."))
			status = step(&w, name, left);
	}
	free(w.todo);
	if (!status) {
		*out = openat(w.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*out < 0)
			status = vi_error("%s: %s", path, strerror(errno));
	}
	if (w.fd >= 0)
		close(w.fd);
	return status;
}
