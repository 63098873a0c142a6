/* The private runtime directory for credential files: on a RAM file
 * system, 0700, files 0400, removed when varinject ends. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "atomic.h"
#include "varinject.h"

bool vi_on_ram(const char *dir)
{
	struct statfs fs;
	return statfs(dir, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
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

int vi_runtime_open(struct vi_runtime *rt, const char *parent, bool allow_persistent,
		    bool dry_run)
{
	memset(rt, 0, sizeof(*rt));
	if (!parent)
		parent = default_parent();
	struct stat st;
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
		return vi_error("%s: not a directory (--credentials-dir)", parent);
	if (!vi_on_ram(parent) && !allow_persistent)
		return vi_error("%s is not a RAM file system: credentials would reach a persistent "
				"disk (choose a tmpfs with --credentials-dir, or --allow-persistent)",
				parent);
	size_t len = strlen(parent) + sizeof("/varinject.XXXXXX");
	rt->dir = malloc(len);
	if (!rt->dir)
		return vi_error("out of memory");
	snprintf(rt->dir, len, "%s/varinject.XXXXXX", parent);
	if (dry_run)
		return 0;
	if (!mkdtemp(rt->dir)) {
		int e = errno;
		free(rt->dir);
		rt->dir = NULL;
		return vi_error("creating a directory in %s: %s", parent, strerror(e));
	}
	rt->created = true;
	return 0;
}

int vi_runtime_write(struct vi_runtime *rt, const char *name, const uint8_t *data, size_t len,
		     const char **path, bool dry_run)
{
	char full[4096];
	int n = snprintf(full, sizeof(full), "%s/%s", rt->dir, name);
	struct vf_error err;
	if (n < 0 || (size_t)n >= sizeof(full))
		return vi_error("%s/%s: path too long", rt->dir, name);
	if (vf_strings_add(&rt->files, full, &err) != VF_OK)
		return vi_fail(&err);
	*path = rt->files.items[rt->files.n - 1];
	if (dry_run)
		return 0;
	int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0)
		return vi_error("%s: %s", full, strerror(errno));
	enum vf_code rc = vf_write_all(fd, data, len, full, &err);
	if (close(fd) != 0 && rc == VF_OK)
		rc = vf_fail_errno(&err, errno, "closing %s", full);
	return rc == VF_OK ? 0 : vi_fail(&err);
}

/* The directory is ours alone: whatever is in it goes, our files and what
 * the hypervisor left (its API socket and lock). */
static void empty_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    unlinkat(fd, e->d_name, 0) != 0 && errno == EISDIR)
			unlinkat(fd, e->d_name, AT_REMOVEDIR);
	closedir(d);
}

void vi_runtime_close(struct vi_runtime *rt)
{
	for (size_t i = 0; rt->dir && i < rt->files.n; i++)
		unlink(rt->files.items[i]);
	if (rt->created) {
		empty_dir(rt->dir);
		rmdir(rt->dir);
	}
	vf_strings_free(&rt->files);
	free(rt->dir);
	rt->dir = NULL;
	rt->created = false;
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
