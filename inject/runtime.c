/* The private runtime directory for credential files: on a RAM file
 * system, 0700, files 0400, removed once the hypervisor has read them and
 * the directory when varinject ends (or, after a kill, at the next start). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/ramdir.h"
#include "base/tree.h"
#include "varinject.h"

/* RAM (ramfs or tmpfs) for the directory open at fd, shown as shown; a
 * tmpfs that may reach swap is used, with one warning. */
bool vi_on_ram_fd(int fd, const char *shown)
{
	bool may_swap;
	if (vf_ram_dir_check(fd, &may_swap) != 1)
		return false;
	if (may_swap)
		vi_warn("%s may reach swap: swap is active and this tmpfs is not mounted noswap "
			"(credentials could be written to the swap device)",
			shown);
	return true;
}

static const char *default_parent(void)
{
	const char *candidates[] = {getenv("RUNTIME_DIRECTORY"), getenv("XDG_RUNTIME_DIR")};
	for (size_t i = 0; i < 2; i++)
		/* RuntimeDirectory= may list several, separated by ':'. */
		if (candidates[i] && candidates[i][0] && !strchr(candidates[i], ':'))
			return candidates[i];
	return "/run";
}

/* "varinject.PID.XXXXXX": the pid of the run that made it. */
#define RUNTIME_PREFIX "varinject."

static bool runtime_name(const char *name, pid_t *pid)
{
	if (strncmp(name, RUNTIME_PREFIX, strlen(RUNTIME_PREFIX)))
		return false;
	const char *p = name + strlen(RUNTIME_PREFIX);
	char *end;
	errno = 0;
	long v = strtol(p, &end, 10);
	if (end == p || *p == '0' || *p == '-' || *p == '+' || errno || v <= 0 || v > INT_MAX ||
	    *end != '.' || strlen(end + 1) != 6)
		return false;
	for (const char *c = end + 1; *c; c++)
		if (!isalnum((unsigned char)*c))
			return false;
	*pid = (pid_t)v;
	return true;
}

/* What is in a runtime directory: our files and what the hypervisor left
 * (its API socket and lock). No subdirectories are ever made there, so
 * none is entered (max_depth 1): one there is not ours to remove. */
static const struct vf_tree_opts runtime_tree = {.max_depth = 1};

static void report_stale(const char *name, pid_t pid, void *ctx)
{
	vi_info("removed %s/%s, left behind by a run that was killed (pid %d)",
		(const char *)ctx, name, (int)pid);
}

/* Ours, private, and not in use (a live run holds its lock): the runs
 * that made them are gone. */
static void clean_stale(int parent_fd, const char *parent)
{
	const struct vf_tree_stale stale = {
		.parse = runtime_name,
		.private_mode = true,
		.locked = true,
		.tree = runtime_tree,
		.removed = report_stale,
		.ctx = (void *)parent,
	};
	vf_tree_sweep_stale(parent_fd, &stale);
}

/* A parent others may write to could have our directory renamed away and
 * another put in its place: only with the sticky bit, as /dev/shm has. */
static int check_parent(int fd, const char *parent)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))
		return vi_error("%s: not a directory (--credentials-dir)", parent);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return vi_error("%s is writable by others and not sticky: choose another "
				"--credentials-dir",
				parent);
	return 0;
}

static int make_dir(struct vi_runtime *rt, const char *parent)
{
	if (!mkdtemp(rt->dir))
		return vi_error("creating a directory in %s: %s", parent, strerror(errno));
	rt->created = true;
	const char *base = strrchr(rt->dir, '/') + 1;
	rt->fd = openat(rt->parent_fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (rt->fd < 0 || fstat(rt->fd, &st) != 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 07777) != 0700)
		return vi_error("%s: not the directory just made", rt->dir);
	/* Held until varinject ends: a later run leaves it alone meanwhile. */
	if (flock(rt->fd, LOCK_EX | LOCK_NB) != 0)
		return vi_error("%s: cannot lock: %s", rt->dir, strerror(errno));
	return 0;
}

int vi_runtime_open(struct vi_runtime *rt, const char *parent, bool allow_persistent,
		    bool dry_run)
{
	memset(rt, 0, sizeof(*rt));
	rt->fd = rt->parent_fd = -1;
	rt->opened = true;
	if (!parent)
		parent = default_parent();
	rt->parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rt->parent_fd < 0)
		return vi_error("%s: not a directory (--credentials-dir)", parent);
	int status = check_parent(rt->parent_fd, parent);
	if (status)
		return status;
	if (!vi_on_ram_fd(rt->parent_fd, parent) && !allow_persistent)
		return vi_error("%s is not a RAM file system: credentials would reach a persistent "
				"disk (choose a tmpfs with --credentials-dir, or --allow-persistent)",
				parent);
	size_t len = strlen(parent) + sizeof("/" RUNTIME_PREFIX ".XXXXXX") + 12;
	rt->dir = malloc(len);
	if (!rt->dir)
		return vi_error("out of memory");
	snprintf(rt->dir, len, "%s/" RUNTIME_PREFIX "%d.XXXXXX", parent, (int)getpid());
	if (dry_run)
		return 0;
	clean_stale(rt->parent_fd, parent);
	return make_dir(rt, parent);
}

int vi_runtime_write(struct vi_runtime *rt, const char *name, const uint8_t *data, size_t len,
		     const char **path, bool dry_run)
{
	char full[4096];
	int n = snprintf(full, sizeof(full), "%s/%s", rt->dir, name);
	struct vf_error err;
	if (n < 0 || (size_t)n >= sizeof(full))
		return vi_error("%s/%s: path too long", rt->dir, name);
	if (vf_strings_add(&rt->files, full, &err) != VF_OK ||
	    vf_strings_add(&rt->names, name, &err) != VF_OK)
		return vi_fail(&err);
	*path = rt->files.items[rt->files.n - 1];
	if (dry_run)
		return 0;
	int fd = vf_create_private_at(rt->fd, name, 0400);
	if (fd < 0)
		return vi_error("%s: %s", full, strerror(errno));
	enum vf_code rc = vf_write_all(fd, data, len, full, &err);
	if (close(fd) != 0 && rc == VF_OK)
		rc = vf_fail_errno(&err, errno, "closing %s", full);
	return rc == VF_OK ? 0 : vi_fail(&err);
}

void vi_runtime_remove_files(struct vi_runtime *rt)
{
	for (size_t i = 0; rt->fd >= 0 && i < rt->names.n; i++)
		if (unlinkat(rt->fd, rt->names.items[i], 0) != 0 && errno != ENOENT)
			vi_warn("%s: %s", rt->files.items[i], strerror(errno));
	vf_strings_free(&rt->names);
}

/* The directory is ours alone: whatever is in it goes, our files and what
 * the hypervisor left (its API socket and lock). */
void vi_runtime_close(struct vi_runtime *rt)
{
	if (!rt->opened)
		return;
	vi_runtime_remove_files(rt);
	if (rt->created && rt->fd >= 0) {
		(void)vf_tree_empty(rt->fd, &runtime_tree);
		unlinkat(rt->parent_fd, strrchr(rt->dir, '/') + 1, AT_REMOVEDIR);
	}
	if (rt->fd >= 0)
		close(rt->fd);
	if (rt->parent_fd >= 0)
		close(rt->parent_fd);
	vf_strings_free(&rt->files);
	free(rt->dir);
	memset(rt, 0, sizeof(*rt));
	rt->fd = rt->parent_fd = -1;
}

int vi_argv_add(struct vi_argv *a, const char *arg, const char *shown)
{
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 16;
		char **v = realloc(a->v, cap * sizeof(char *));
		if (v)
			a->v = v;
		char **s = v ? realloc(a->shown, cap * sizeof(char *)) : NULL;
		if (!v || !s)
			return vi_error("out of memory");
		a->shown = s;
		a->cap = cap;
	}
	a->v[a->n] = strdup(arg);
	a->shown[a->n] = strdup(shown ? shown : arg);
	if (!a->v[a->n] || !a->shown[a->n])
		return vi_error("out of memory");
	a->n++;
	a->v[a->n] = a->shown[a->n] = NULL;
	return 0;
}

void vi_argv_free(struct vi_argv *a)
{
	for (size_t i = 0; i < a->n; i++) {
		/* An argv-mode argument carries secrets. */
		explicit_bzero(a->v[i], strlen(a->v[i]));
		free(a->v[i]);
		free(a->shown[i]);
	}
	free(a->v);
	free(a->shown);
	memset(a, 0, sizeof(*a));
}

/* Shell-quoted, so the printed line can be read back exactly. */
void vi_argv_print(const struct vi_argv *a)
{
	fputs("command:", stdout);
	for (size_t i = 0; i < a->n; i++) {
		const char *s = a->shown[i];
		bool plain = *s != '\0';
		for (const char *p = s; *p && plain; p++)
			plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				       "-_./=:,+@%",
				       *p) != NULL;
		if (plain) {
			printf(" %s", s);
			continue;
		}
		fputs(" '", stdout);
		for (const char *p = s; *p; p++)
			if (*p == '\'')
				fputs("'\\''", stdout);
			else
				putchar(*p);
		putchar('\'');
	}
	putchar('\n');
}

void vi_secret_placeholder(size_t len, char *out, size_t cap)
{
	snprintf(out, cap, "<secret: %zu bytes>", len);
}
