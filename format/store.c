#include "store.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "crypto.h"

struct vf_txn_item {
	char *final; /* where it goes */
	char *temp;  /* where it is staged; NULL for a removal */
};

static char *join(const char *const *parts, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		if (parts[i])
			len += strlen(parts[i]) + 1;
	char *p = malloc(len);
	if (!p)
		return NULL;
	p[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!parts[i])
			continue;
		if (p[0])
			strcat(p, "/");
		strcat(p, parts[i]);
	}
	return p;
}

char *vf_store_path(const char *root, const char *machine, const char *generator,
		    const char *file, const char *leaf)
{
	const char *parts[] = {root,   "vars", machine ? "per-machine" : "shared", machine,
			       generator, file, leaf};
	return join(parts, sizeof(parts) / sizeof(parts[0]));
}

char *vf_store_machine_key_path(const char *root, const char *machine, const char *leaf)
{
	const char *parts[] = {root, "vars", "machine-keys", machine, leaf};
	return join(parts, sizeof(parts) / sizeof(parts[0]));
}

bool vf_store_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

enum vf_code vf_store_read(const char *path, uint8_t **data, size_t *len, struct vf_error *err)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? VF_OK : vf_fail_errno(err, errno, "%s", path);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
		close(fd);
		return vf_fail(err, VF_E_IO, "%s: not a regular file of a sane size", path);
	}
	size_t size = (size_t)st.st_size;
	uint8_t *buf = malloc(size + 1);
	size_t got = 0;
	while (buf && got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (got != size) {
		free(buf);
		return vf_fail(err, VF_E_IO, "%s: short read", path);
	}
	buf[size] = '\0';
	*data = buf;
	*len = size;
	return VF_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum vf_code vf_manifest_format(char **recipients, size_t n, char **text, size_t *len,
				struct vf_error *err)
{
	char **sorted = malloc((n ? n : 1) * sizeof(char *));
	if (!sorted)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	memcpy(sorted, recipients, n * sizeof(char *));
	qsort(sorted, n, sizeof(char *), cmp_str);
	size_t total = 1;
	for (size_t i = 0; i < n; i++)
		total += strlen(sorted[i]) + 1;
	char *out = malloc(total);
	if (!out) {
		free(sorted);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(sorted[i], sorted[i - 1]))
			continue;
		size_t l = strlen(sorted[i]);
		memcpy(out + o, sorted[i], l);
		o += l;
		out[o++] = '\n';
	}
	out[o] = '\0';
	free(sorted);
	*text = out;
	*len = o;
	return VF_OK;
}

/* Deepest first: in the common case the parent exists and one mkdir is
 * all it takes. */
enum vf_code vf_mkdirs(const char *dir, struct vf_error *err)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return VF_OK;
	if (errno != ENOENT)
		return vf_fail_errno(err, errno, "creating %s", dir);
	const char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return vf_fail_errno(err, ENOENT, "creating %s", dir);
	char *parent = strndup(dir, (size_t)(slash - dir));
	if (!parent)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_mkdirs(parent, err);
	free(parent);
	if (rc == VF_OK && mkdir(dir, 0700) != 0 && errno != EEXIST)
		rc = vf_fail_errno(err, errno, "creating %s", dir);
	return rc;
}

/* Staging may run on several threads at once (vf_parallel_for): only the
 * list itself needs the lock, file creation runs in parallel. */
static pthread_mutex_t txn_lock = PTHREAD_MUTEX_INITIALIZER;

static enum vf_code txn_push_locked(struct vf_txn *t, char *final, char *temp,
				    struct vf_error *err)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct vf_txn_item *items = realloc(t->items, cap * sizeof(*items));
		if (!items) {
			free(final);
			free(temp);
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		}
		t->items = items;
		t->cap = cap;
	}
	t->items[t->n].final = final;
	t->items[t->n].temp = temp;
	t->n++;
	return VF_OK;
}

static enum vf_code txn_push(struct vf_txn *t, char *final, char *temp, struct vf_error *err)
{
	pthread_mutex_lock(&txn_lock);
	enum vf_code rc = txn_push_locked(t, final, temp, err);
	pthread_mutex_unlock(&txn_lock);
	return rc;
}

/* "<dir>/.<base>.<random>.tmp" beside path. */
static char *temp_beside(const char *path, struct vf_error *err)
{
	uint8_t rnd[6];
	if (vf_random(rnd, sizeof(rnd), err) != VF_OK)
		return NULL;
	const char *slash = strrchr(path, '/');
	size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
	size_t n = strlen(path) + 32;
	char *temp = malloc(n);
	if (!temp) {
		vf_fail(err, VF_E_NOMEM, "out of memory");
		return NULL;
	}
	snprintf(temp, n, "%.*s.%s.%02x%02x%02x%02x%02x%02x.tmp", (int)dir_len, path,
		 path + dir_len, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	return temp;
}

static enum vf_code parent_dirs(const char *path, struct vf_error *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return VF_OK;
	char *dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_mkdirs(dir, err);
	free(dir);
	return rc;
}

enum vf_code vf_txn_write(struct vf_txn *t, const char *path, const void *data, size_t len,
			  struct vf_error *err)
{
	enum vf_code rc = parent_dirs(path, err);
	if (rc != VF_OK)
		return rc;
	char *temp = temp_beside(path, err);
	if (!temp)
		return err ? err->code : VF_E_IO;
	int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = vf_fail_errno(err, errno, "creating %s", temp);
		free(temp);
		return rc;
	}
	rc = vf_write_all(fd, data, len, temp, err);
	if (close(fd) != 0 && rc == VF_OK)
		rc = vf_fail_errno(err, errno, "closing %s", temp);
	char *final = rc == VF_OK ? strdup(path) : NULL;
	if (rc == VF_OK && !final)
		rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc != VF_OK) {
		unlink(temp);
		free(temp);
		return rc;
	}
	return txn_push(t, final, temp, err);
}

enum vf_code vf_txn_remove(struct vf_txn *t, const char *path, struct vf_error *err)
{
	char *final = strdup(path);
	if (!final)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	return txn_push(t, final, NULL, err);
}

/* One syncfs for the whole batch: a file system's worth of fsyncs at once
 * costs about as much as one fsync, where thousands would take seconds. */
static enum vf_code sync_store(const struct vf_txn *t, struct vf_error *err)
{
	if (!t->n)
		return VF_OK;
	const char *any = t->items[0].temp ? t->items[0].temp : t->items[0].final;
	char *dir = strdup(any);
	if (!dir)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum vf_code rc = VF_OK;
	if (fd < 0 || syncfs(fd) != 0)
		rc = vf_fail_errno(err, errno, "syncing the store");
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

enum vf_code vf_txn_commit(struct vf_txn *t, struct vf_error *err)
{
	enum vf_code rc = sync_store(t, err);
	for (size_t i = 0; rc == VF_OK && i < t->n; i++) {
		struct vf_txn_item *it = &t->items[i];
		if (it->temp) {
			if (rename(it->temp, it->final) != 0)
				rc = vf_fail_errno(err, errno, "renaming into %s", it->final);
			else {
				free(it->temp);
				it->temp = NULL;
			}
		} else if (unlink(it->final) != 0 && errno != ENOENT) {
			rc = vf_fail_errno(err, errno, "removing %s", it->final);
		}
	}
	if (rc == VF_OK)
		rc = sync_store(t, err);
	vf_txn_abort(t);
	return rc;
}

void vf_txn_abort(struct vf_txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->items[i].temp) {
			unlink(t->items[i].temp);
			free(t->items[i].temp);
		}
		free(t->items[i].final);
	}
	free(t->items);
	memset(t, 0, sizeof(*t));
}

static bool is_temp(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' && n > 5 && !strcmp(name + n - 4, ".tmp");
}

static void clean_dir(int dirfd, unsigned depth)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type == DT_DIR && depth < 8) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				clean_dir(sub, depth + 1);
		} else if (e->d_type == DT_REG && is_temp(e->d_name)) {
			unlinkat(dirfd, e->d_name, 0);
		}
	}
	closedir(d);
}

void vf_store_clean_temps(const char *root)
{
	char *vars = vf_store_path(root, NULL, NULL, NULL, NULL);
	if (!vars)
		return;
	char *slash = strrchr(vars, '/'); /* .../vars/shared -> .../vars */
	if (slash)
		*slash = '\0';
	int fd = open(vars, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		clean_dir(fd, 0);
	free(vars);
}
