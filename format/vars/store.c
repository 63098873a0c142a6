#include "vars/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/io.h"

#include "base/atomic.h"
#include "base/parallel.h"
#include "base/tree.h"

struct vf_txn_item {
	char *rel;  /* where it goes, beneath the root */
	char *temp; /* the temporary's name in rel's directory; NULL for a removal */
	enum vf_txn_phase phase;
	uint8_t sha[VF_SHA256_LEN]; /* of the new contents */
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

char *vf_store_rel(const char *machine, const char *generator, const char *file,
		   const char *leaf)
{
	const char *parts[] = {"vars", machine ? "per-machine" : "shared", machine, generator,
			       file, leaf};
	return join(parts, sizeof(parts) / sizeof(parts[0]));
}

char *vf_store_machine_key_rel(const char *machine, const char *leaf)
{
	const char *parts[] = {"vars", "machine-keys", machine, leaf};
	return join(parts, sizeof(parts) / sizeof(parts[0]));
}

char *vf_store_path(const char *root, const char *machine, const char *generator,
		    const char *file, const char *leaf)
{
	const char *parts[] = {root,   "vars", machine ? "per-machine" : "shared", machine,
			       generator, file, leaf};
	return join(parts, sizeof(parts) / sizeof(parts[0]));
}

static const char *type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO: return "a FIFO";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFSOCK: return "a socket";
	case S_IFDIR: return "a directory";
	case S_IFLNK: return "a symlink";
	default: return "not a plain file";
	}
}

static const struct vf_read_opts store_read_opts = {.max = VF_STORE_MAX_FILE,
						   .follow = VF_NOFOLLOW};

/* The store's own wording of why a file could not be read. name is for
 * messages (with root, when given, in front). */
static enum vf_code read_failed(const struct vf_file *f, const char *root, const char *name,
				enum vf_code rc, struct vf_error *err)
{
	const char *sep = root ? "/" : "";
	root = root ? root : "";
	switch (f->fail) {
	case VF_READ_OPEN: return vf_fail_errno(err, f->errnum, "%s%s%s", root, sep, name);
	case VF_READ_TYPE:
		return vf_fail(err, VF_E_IO, "%s%s%s: not a regular file (%s); refusing to read it",
			       root, sep, name, type_name(f->mode));
	case VF_READ_SIZE:
		return vf_fail(err, VF_E_IO, "%s%s%s: larger than %u MiB; refusing to read it", root,
			       sep, name, VF_STORE_MAX_FILE >> 20);
	case VF_READ_IO:
		return vf_fail_errno(err, f->errnum, "reading %s%s%s", root, sep, name);
	case VF_READ_CHANGED:
		return vf_fail(err, VF_E_IO, "%s%s%s: short read", root, sep, name);
	case VF_READ_NOMEM:
	case VF_READ_NONE: break;
	}
	return rc;
}

/* Checks what fd is and reads it whole, NUL-terminated. */
static enum vf_code read_regular(int fd, const char *root, const char *name, uint8_t **data,
				 size_t *len, struct vf_error *err)
{
	struct vf_file f;
	enum vf_code rc = vf_read_fd(fd, name, &store_read_opts, &f, err);
	if (rc != VF_OK)
		return read_failed(&f, root, name, rc, err);
	*data = f.data;
	*len = f.len;
	return VF_OK;
}

enum vf_code vf_store_read(const char *path, uint8_t **data, size_t *len, struct vf_error *err)
{
	*data = NULL;
	*len = 0;
	struct vf_file f;
	enum vf_code rc = vf_read_file(AT_FDCWD, path, &store_read_opts, &f, err);
	if (rc != VF_OK)
		return f.fail == VF_READ_OPEN && f.errnum == ENOENT
			       ? VF_OK
			       : read_failed(&f, NULL, path, rc, err);
	*data = f.data;
	*len = f.len;
	return VF_OK;
}

/* ---- the root, resolved once -------------------------------------------- */

struct root_entry {
	char *name;
	int fd;
};
static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct root_entry *roots;
static size_t n_roots;

/* The root's descriptor (borrowed), or -1 with errno. The user may name the
 * root through a symlink; it is followed here, once per process and name,
 * and nothing beneath the root ever is. */
static int root_fd(const char *root)
{
	pthread_mutex_lock(&roots_lock);
	int fd = -1;
	for (size_t i = 0; i < n_roots && fd < 0; i++)
		if (!strcmp(roots[i].name, root))
			fd = roots[i].fd;
	if (fd < 0) {
		fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && errno == EACCES) /* searchable, not readable: enough to read */
			fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		struct root_entry *grown = fd >= 0 ? realloc(roots, (n_roots + 1) * sizeof(*roots))
						   : NULL;
		char *name = grown ? strdup(root) : NULL;
		if (grown)
			roots = grown;
		if (name) {
			roots[n_roots++] = (struct root_entry){name, fd};
		} else if (fd >= 0) {
			close(fd);
			fd = -1;
			errno = ENOMEM;
		}
	}
	int saved = errno;
	pthread_mutex_unlock(&roots_lock);
	errno = saved;
	return fd;
}

/* ---- resolving beneath the root ----------------------------------------- */

/* 0 unknown, 1 the kernel has openat2, -1 it has not (or a filter hides it). */
static atomic_int have_openat2;

static int openat2_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Why component comp (the first upto bytes of rel) of a store path could
 * not be opened as a directory. */
static enum vf_code refuse_dir(int dirfd, const char *comp, const char *root, const char *rel,
			       size_t upto, int errnum, struct vf_error *err)
{
	struct stat st;
	if (fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode))
			return vf_fail(err, VF_E_IO,
				       "%s/%.*s: a symlink inside the store; refusing to follow it",
				       root, (int)upto, rel);
		if (!S_ISDIR(st.st_mode))
			return vf_fail(err, VF_E_IO, "%s/%.*s: not a directory (%s)", root,
				       (int)upto, rel, type_name(st.st_mode));
	}
	return vf_fail_errno(err, errnum, "%s/%.*s", root, (int)upto, rel);
}

/* Opens (O_PATH) the directory made of the first dir_len bytes of rel, one
 * component at a time from start (a descriptor of the directory named by
 * the first `at` bytes of rel, 0 for the root; taken over and closed
 * here), never following a symlink; with create, missing directories are
 * made (0700), and with missing the component at `at` is known not to
 * exist. Returns the descriptor, or -1 with *absent set when a component
 * does not exist (only without create), or with err set. */
static int walk_from(int start, size_t at, bool missing, const char *root, const char *rel,
		     size_t dir_len, bool create, bool *absent, struct vf_error *err)
{
	int cur = start;
	while (at < dir_len) {
		size_t end = at;
		while (end < dir_len && rel[end] != '/')
			end++;
		char comp[NAME_MAX + 1];
		size_t n = end - at;
		if (n == 0 || n > NAME_MAX || (n == 1 && rel[at] == '.') ||
		    (n == 2 && rel[at] == '.' && rel[at + 1] == '.')) {
			vf_fail(err, VF_E_ARG, "%s/%.*s: not a plain store path", root,
				(int)dir_len, rel);
			close(cur);
			return -1;
		}
		memcpy(comp, rel + at, n);
		comp[n] = '\0';
		/* Below a directory just made nothing exists yet: it is made
		 * without looking first (and opened with O_NOFOLLOW either way). */
		int next = -1;
		errno = ENOENT;
		if (!missing)
			next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			missing = mkdirat(cur, comp, 0700) == 0;
			if (!missing && errno != EEXIST) {
				vf_fail_errno(err, errno, "creating %s/%.*s", root, (int)end, rel);
				close(cur);
				return -1;
			}
			next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			if (e == ENOENT && !create)
				*absent = true;
			else
				refuse_dir(cur, comp, root, rel, end, e, err);
			close(cur);
			return -1;
		}
		close(cur);
		cur = next;
		at = end + 1;
	}
	return cur;
}

/* walk_from the root itself. */
static int walk_dir(int root_fd_, const char *root, const char *rel, size_t dir_len, bool create,
		    bool *absent, struct vf_error *err)
{
	int cur = fcntl(root_fd_, F_DUPFD_CLOEXEC, 0);
	if (cur < 0) {
		vf_fail_errno(err, errno, "%s", root);
		return -1;
	}
	return walk_from(cur, 0, false, root, rel, dir_len, create, absent, err);
}

/* The descriptor of the deepest directory above the first dir_len bytes
 * of rel that exists, resolved beneath the root in one openat2 call, with
 * *at set to where the first missing component starts; or -1 when
 * something other than a missing directory is in the way (the caller's
 * walk then says what).
 * Staging thousands of secrets makes their directories here: each new
 * one then costs a mkdirat and an openat in its parent, not a walk of
 * every component from the root. */
static int deepest_existing(int rfd, const char *rel, size_t dir_len, size_t *at)
{
	char *dir = strndup(rel, dir_len);
	if (!dir)
		return -1;
	int fd = -1;
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		*slash = '\0';
		fd = openat2_beneath(rfd, dir, O_PATH | O_DIRECTORY);
		if (fd >= 0) {
			*at = (size_t)(slash - dir) + 1;
			break;
		}
		if (errno != ENOENT)
			break;
	}
	free(dir);
	return fd;
}

/* The directory of rel (everything before its last '/'), as walk_dir. */
static int open_parent(int rfd, const char *root, const char *rel, bool create, bool *absent,
		       struct vf_error *err)
{
	*absent = false;
	const char *slash = strrchr(rel, '/');
	if (!slash) {
		vf_fail(err, VF_E_ARG, "%s/%s: not a plain store path", root, rel);
		return -1;
	}
	size_t dir_len = (size_t)(slash - rel);
	if (atomic_load(&have_openat2) >= 0) {
		char *dir = strndup(rel, dir_len);
		if (!dir) {
			vf_fail(err, VF_E_NOMEM, "out of memory");
			return -1;
		}
		int fd = openat2_beneath(rfd, dir, O_PATH | O_DIRECTORY);
		int e = errno;
		free(dir);
		if (fd >= 0) {
			atomic_store(&have_openat2, 1);
			return fd;
		}
		/* ENOSYS: an older kernel; EPERM: a seccomp filter that does
		 * not know the call. The walk is as safe, only slower. */
		if (e == ENOSYS || e == EPERM)
			atomic_store(&have_openat2, -1);
		else if (e == ENOENT && !create) {
			*absent = true;
			return -1;
		} else if (e == ENOENT) {
			size_t at = 0;
			int start = deepest_existing(rfd, rel, dir_len, &at);
			if (start >= 0)
				return walk_from(start, at, true, root, rel, dir_len, true, absent, err);
		}
		/* Anything else (a symlink, a missing directory to create)
		 * goes through the walk, which creates or says exactly what
		 * is wrong where. */
	}
	return walk_dir(rfd, root, rel, dir_len, create, absent, err);
}

static const char *base_of(const char *rel)
{
	const char *slash = strrchr(rel, '/');
	return slash ? slash + 1 : rel;
}

/* Opens rel's last component in its directory dfd: a regular file only,
 * looked at before it is opened (a device is never opened), and again
 * after. *fd stays -1 when it does not exist. */
static enum vf_code open_leaf(int dfd, const char *root, const char *rel, int *fd,
			      struct vf_error *err)
{
	const char *base = base_of(rel);
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? VF_OK : vf_fail_errno(err, errno, "%s/%s", root, rel);
	if (S_ISLNK(st.st_mode))
		return vf_fail(err, VF_E_IO, "%s/%s: a symlink inside the store; refusing to follow it",
			       root, rel);
	if (!S_ISREG(st.st_mode))
		return vf_fail(err, VF_E_IO, "%s/%s: not a regular file (%s); refusing to read it",
			       root, rel, type_name(st.st_mode));
	int f = openat(dfd, base, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (f < 0) {
		if (errno == ENOENT)
			return VF_OK;
		if (errno == ELOOP)
			return vf_fail(err, VF_E_IO,
				       "%s/%s: a symlink inside the store; refusing to follow it", root,
				       rel);
		return vf_fail_errno(err, errno, "%s/%s", root, rel);
	}
	if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > VF_STORE_MAX_FILE) {
		close(f);
		return vf_fail(err, VF_E_IO,
			       "%s/%s: not a regular file of at most %u MiB; refusing to read it", root,
			       rel, VF_STORE_MAX_FILE >> 20);
	}
	*fd = f;
	return VF_OK;
}

enum vf_code vf_store_open(const char *root, const char *rel, int *fd, struct vf_error *err)
{
	*fd = -1;
	int rfd = root_fd(root);
	if (rfd < 0)
		return errno == ENOENT ? VF_OK : vf_fail_errno(err, errno, "%s", root);
	bool absent;
	int dfd = open_parent(rfd, root, rel, false, &absent, err);
	if (dfd < 0)
		return absent ? VF_OK : err ? err->code : VF_E_IO;
	enum vf_code rc = open_leaf(dfd, root, rel, fd, err);
	close(dfd);
	return rc;
}

enum vf_code vf_store_read_at(const char *root, const char *rel, uint8_t **data, size_t *len,
			      struct vf_error *err)
{
	*data = NULL;
	*len = 0;
	int fd;
	enum vf_code rc = vf_store_open(root, rel, &fd, err);
	if (rc != VF_OK || fd < 0)
		return rc;
	rc = read_regular(fd, root, rel, data, len, err);
	close(fd);
	return rc;
}

enum vf_code vf_store_dir_absent(const char *root, const char *rel, bool *absent,
				 struct vf_error *err)
{
	*absent = false;
	int rfd = root_fd(root);
	if (rfd < 0) {
		*absent = errno == ENOENT;
		return *absent ? VF_OK : vf_fail_errno(err, errno, "%s", root);
	}
	int dfd = open_parent(rfd, root, rel, false, absent, err);
	if (dfd >= 0)
		close(dfd);
	return dfd >= 0 || *absent ? VF_OK : err ? err->code : VF_E_IO;
}

enum vf_code vf_store_exists(const char *root, const char *rel, bool *exists,
			     struct vf_error *err)
{
	int fd;
	enum vf_code rc = vf_store_open(root, rel, &fd, err);
	*exists = rc == VF_OK && fd >= 0;
	if (fd >= 0)
		close(fd);
	return rc;
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
	if (n) { /* an empty list may come as NULL, which memcpy must not see */
		memcpy(sorted, recipients, n * sizeof(char *));
		qsort(sorted, n, sizeof(char *), cmp_str);
	}
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

size_t vf_manifest_key_len(const char *line, size_t len)
{
	if (len > 4 && !memcmp(line, "ssh-", 4)) {
		const char *sp = memchr(line, ' ', len);
		const char *sp2 = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line)) : NULL;
		if (sp2)
			len = (size_t)(sp2 - line);
	}
	return len;
}

static char *canonical_recipient(const char *line, size_t len)
{
	return strndup(line, vf_manifest_key_len(line, len));
}

/* The manifest text with every line canonical, sorted, without duplicates. */
static enum vf_code canonical_manifest(const char *text, size_t len, char **out,
				       struct vf_error *err)
{
	size_t n = 0, cap = 0;
	char **lines = NULL;
	enum vf_code rc = VF_OK;
	for (size_t i = 0; i < len && rc == VF_OK;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (text + i)) : len - i;
		if (l) {
			char **grown = n == cap ? realloc(lines, (cap = cap * 2 + 8) * sizeof(*lines))
						: lines;
			if (grown)
				lines = grown;
			if (!grown || !(lines[n] = canonical_recipient(text + i, l)))
				rc = vf_fail(err, VF_E_NOMEM, "out of memory");
			else
				n++;
		}
		i += l + 1;
	}
	size_t out_len;
	if (rc == VF_OK)
		rc = vf_manifest_format(lines, n, out, &out_len, err);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	return rc;
}

enum vf_code vf_manifest_same(const char *have, size_t have_len, const char *want,
			      size_t want_len, bool *same, struct vf_error *err)
{
	char *a = NULL, *b = NULL;
	enum vf_code rc = canonical_manifest(have, have_len, &a, err);
	if (rc == VF_OK)
		rc = canonical_manifest(want, want_len, &b, err);
	if (rc == VF_OK)
		*same = !strcmp(a, b);
	free(a);
	free(b);
	return rc;
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

enum vf_code vf_store_lock(const char *root, int *fd, struct vf_error *err)
{
	*fd = -1;
	enum vf_code rc = vf_mkdirs(root, err);
	if (rc != VF_OK)
		return rc;
	int rfd = root_fd(root);
	if (rfd < 0)
		return vf_fail_errno(err, errno, "%s", root);
	if (mkdirat(rfd, "vars", 0700) != 0 && errno != EEXIST)
		return vf_fail_errno(err, errno, "creating %s/vars", root);
	int lfd = openat(rfd, "vars", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (lfd < 0)
		return refuse_dir(rfd, "vars", root, "vars", 4, errno, err);
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		close(lfd);
		return vf_fail(err, VF_E_IO, "%s/vars: another vargen or varseal is writing this store",
			       root);
	}
	*fd = lfd;
	return VF_OK;
}

/* ---- transactions ------------------------------------------------------- */

/* Staging may run on several threads at once (vf_parallel_for): only the
 * list itself needs the lock, file creation runs in parallel. */
static pthread_mutex_t txn_lock = PTHREAD_MUTEX_INITIALIZER;

static enum vf_code txn_push_locked(struct vf_txn *t, const char *root,
				    const struct vf_txn_item *item, struct vf_error *err)
{
	if (!t->root) {
		t->root = strdup(root);
		if (!t->root)
			return vf_fail(err, VF_E_NOMEM, "out of memory");
	} else if (strcmp(t->root, root) != 0) {
		return vf_fail(err, VF_E_ARG, "one transaction, two stores (%s and %s)", t->root,
			       root);
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct vf_txn_item *items = realloc(t->items, cap * sizeof(*items));
		if (!items)
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		t->items = items;
		t->cap = cap;
	}
	t->items[t->n++] = *item;
	if (item->phase == VF_TXN_DATA)
		t->n_data++;
	return VF_OK;
}

static enum vf_code txn_push(struct vf_txn *t, const char *root, const struct vf_txn_item *item,
			     struct vf_error *err)
{
	pthread_mutex_lock(&txn_lock);
	enum vf_code rc = txn_push_locked(t, root, item, err);
	pthread_mutex_unlock(&txn_lock);
	return rc;
}

/* ".<base>.<random>.tmp", beside base. */
static char *temp_name(const char *base, struct vf_error *err)
{
	uint8_t rnd[6];
	if (vf_random(rnd, sizeof(rnd), err) != VF_OK)
		return NULL;
	size_t n = strlen(base) + 32;
	char *temp = malloc(n);
	if (!temp) {
		vf_fail(err, VF_E_NOMEM, "out of memory");
		return NULL;
	}
	snprintf(temp, n, ".%s.%02x%02x%02x%02x%02x%02x.tmp", base, rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5]);
	return temp;
}

/* Writes the temporary in dfd; *temp names it on success. */
static void remove_empty_dirs(int rfd, const char *root, const char *rel);

static enum vf_code write_temp(int dfd, const char *root, const char *rel, const void *data,
			       size_t len, char **temp, struct vf_error *err)
{
	char *name = temp_name(base_of(rel), err);
	if (!name)
		return err ? err->code : VF_E_IO;
	int fd = vf_create_private_at(dfd, name, 0600);
	if (fd < 0) {
		enum vf_code rc = vf_fail_errno(err, errno, "creating a temporary for %s/%s", root,
						rel);
		free(name);
		return rc;
	}
	enum vf_code rc = vf_write_all(fd, data, len, rel, NULL);
	if (rc != VF_OK)
		rc = vf_fail_errno(err, errno, "writing %s/%s", root, rel);
	if (close(fd) != 0 && rc == VF_OK)
		rc = vf_fail_errno(err, errno, "closing a temporary for %s/%s", root, rel);
	if (rc != VF_OK) {
		unlinkat(dfd, name, 0);
		free(name);
		return rc;
	}
	*temp = name;
	return VF_OK;
}

enum vf_code vf_txn_stage(struct vf_txn *t, const char *root, const char *rel,
			  enum vf_txn_phase phase, const void *data, size_t len,
			  struct vf_error *err)
{
	struct vf_txn_item item = {.phase = phase};
	item.rel = strdup(rel);
	if (!item.rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = VF_OK;
	int dfd = -1, rfd = -1;
	if (data) {
		rfd = root_fd(root);
		bool absent;
		if (rfd < 0)
			rc = vf_fail_errno(err, errno, "%s", root);
		else if ((dfd = open_parent(rfd, root, rel, true, &absent, err)) < 0)
			rc = err ? err->code : VF_E_IO;
		if (rc == VF_OK)
			rc = vf_sha256(data, len, item.sha, err);
		if (rc == VF_OK)
			rc = write_temp(dfd, root, rel, data, len, &item.temp, err);
	}
	if (rc == VF_OK)
		rc = txn_push(t, root, &item, err);
	if (rc != VF_OK) {
		if (item.temp && dfd >= 0)
			unlinkat(dfd, item.temp, 0);
		/* The directories made for rel, when its temporary could not
		 * be written (a full disk): the abort only knows staged items. */
		if (data && rfd >= 0)
			remove_empty_dirs(rfd, root, rel);
		free(item.temp);
		free(item.rel);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}

enum vf_code vf_txn_write(struct vf_txn *t, const char *root, const char *rel, const void *data,
			  size_t len, struct vf_error *err)
{
	/* A zero-length value still needs a non-NULL pointer to be a write. */
	return vf_txn_stage(t, root, rel, VF_TXN_DATA, data ? data : "", len, err);
}

enum vf_code vf_txn_remove(struct vf_txn *t, const char *root, const char *rel,
			   struct vf_error *err)
{
	return vf_txn_stage(t, root, rel, VF_TXN_DATA, NULL, 0, err);
}

static int cmp_item(const void *a, const void *b, void *ctx)
{
	const struct vf_txn *t = ctx;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(t->items[i].rel, t->items[j].rel);
	return c ? c : (i > j) - (i < j);
}

/* Sorted by path, then by when staged: lookups stay cheap when a run
 * stages the files of thousands of generators and then their records. */
static bool index_data(struct vf_txn *t)
{
	if (t->index && t->n_indexed == t->n_data)
		return true;
	size_t *index = realloc(t->index, (t->n_data + 1) * sizeof(*index));
	if (!index)
		return false;
	t->index = index;
	size_t k = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->items[i].phase == VF_TXN_DATA)
			index[k++] = i;
	qsort_r(index, k, sizeof(*index), cmp_item, t);
	t->n_indexed = k;
	return true;
}

bool vf_txn_staged(struct vf_txn *t, const char *rel, bool *removed,
		   uint8_t sha[VF_SHA256_LEN])
{
	if (!index_data(t))
		return false;
	size_t lo = 0, hi = t->n_indexed; /* the first entry not below rel */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->items[t->index[mid]].rel, rel) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t found = SIZE_MAX;
	for (; lo < t->n_indexed && !strcmp(t->items[t->index[lo]].rel, rel); lo++)
		found = t->index[lo]; /* the last one staged wins */
	if (found == SIZE_MAX)
		return false;
	const struct vf_txn_item *it = &t->items[found];
	*removed = !it->temp;
	if (it->temp)
		memcpy(sha, it->sha, VF_SHA256_LEN);
	return true;
}

/* One syncfs for the whole batch: a file system's worth of fsyncs at once
 * costs about as much as one fsync, where thousands would take seconds. */
static enum vf_code sync_store(int rfd, const char *root, struct vf_error *err)
{
	if (syncfs(rfd) == 0)
		return VF_OK;
	if (errno != EBADF)
		return vf_fail_errno(err, errno, "syncing %s", root);
	/* A root opened O_PATH (not readable): vars/ is on the same file
	 * system, and a writer has just made it its own. */
	int fd = openat(rfd, "vars", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	enum vf_code rc = fd >= 0 && syncfs(fd) == 0 ? VF_OK
						      : vf_fail_errno(err, errno, "syncing %s", root);
	if (fd >= 0)
		close(fd);
	return rc;
}


/* Renames or removes one item in its directory dfd. */
static enum vf_code apply_item(struct vf_txn *t, struct vf_txn_item *it, int dfd,
			       struct vf_error *err)
{
	const char *base = base_of(it->rel);
	if (it->temp) {
		if (renameat(dfd, it->temp, dfd, base) != 0)
			return vf_fail_errno(err, errno, "renaming into %s/%s", t->root, it->rel);
		free(it->temp);
		it->temp = NULL;
	} else if (unlinkat(dfd, base, 0) != 0 && errno != ENOENT) {
		return vf_fail_errno(err, errno, "removing %s/%s", t->root, it->rel);
	}
	return VF_OK;
}

/* The length of rel's directory part (0 for none: refused when applied). */
static size_t dir_len(const char *rel)
{
	const char *slash = strrchr(rel, '/');
	return slash ? (size_t)(slash - rel) : 0;
}

/* Whether two store paths name files in the same directory. */
static bool same_dir(const char *a, const char *b)
{
	size_t n = dir_len(a);
	return n && n == dir_len(b) && !memcmp(a, b, n);
}

/* Directory first, then the order staged. */
static int cmp_dir_then_staged(const void *a, const void *b, void *ctx)
{
	const struct vf_txn *t = ctx;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const char *ri = t->items[i].rel, *rj = t->items[j].rel;
	size_t li = dir_len(ri), lj = dir_len(rj);
	int c = memcmp(ri, rj, li < lj ? li : lj);
	if (!c)
		c = (li > lj) - (li < lj);
	return c ? c : (i > j) - (i < j);
}

/* The items of phase, in the order they are applied (malloc'd, *n of
 * them), or NULL when memory runs out (then they go in the order staged). */
static size_t *apply_order(const struct vf_txn *t, enum vf_txn_phase phase, size_t *n)
{
	size_t *order = malloc((t->n + 1) * sizeof(*order));
	*n = 0;
	if (!order)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		if (t->items[i].phase == phase)
			order[(*n)++] = i;
	qsort_r(order, *n, sizeof(*order), cmp_dir_then_staged, (void *)t);
	return order;
}

/* Renames or removes the items order[from..to) of phase (k itself when
 * order is NULL), each in its directory resolved again beneath the root
 * (so a directory swapped for a symlink since staging is refused, not
 * followed); consecutive items in one directory share one resolution.
 * Stops at the first failure. */
static enum vf_code apply_items(struct vf_txn *t, int rfd, enum vf_txn_phase phase,
				const size_t *order, size_t from, size_t to, struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	int dfd = -1;
	const char *dir = NULL; /* an item in the directory dfd is */
	for (size_t k = from; k < to && rc == VF_OK; k++) {
		struct vf_txn_item *it = &t->items[order ? order[k] : k];
		if (it->phase != phase) /* only in the staged order */
			continue;
		if (dfd < 0 || !same_dir(dir, it->rel)) {
			if (dfd >= 0)
				close(dfd);
			bool absent;
			dir = it->rel;
			dfd = open_parent(rfd, t->root, it->rel, false, &absent, err);
			if (dfd < 0 && absent && !it->temp)
				continue; /* nothing there to remove */
			if (dfd < 0 && absent)
				rc = vf_fail(err, VF_E_IO, "%s/%s: its directory vanished", t->root,
					     it->rel);
			else if (dfd < 0)
				rc = err ? err->code : VF_E_IO;
			if (dfd < 0)
				continue;
		}
		rc = apply_item(t, it, dfd, err);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* A phase this large is applied by every CPU, a directory to a job: the
 * renames of different directories do not wait on each other in the
 * kernel. Below it, a thread costs more than it saves. */
#define PARALLEL_APPLY_MIN 256

/* A phase applied a directory to a job: job g is the g-th directory's
 * items, order[starts[g] .. starts[g + 1]). */
struct apply_jobs {
	struct vf_txn *t;
	int rfd;
	enum vf_txn_phase phase;
	const size_t *order, *starts;
};

static enum vf_code apply_job(void *ctx, size_t g, struct vf_error *err)
{
	const struct apply_jobs *j = ctx;
	return apply_items(j->t, j->rfd, j->phase, j->order, j->starts[g], j->starts[g + 1], err);
}

/* The start of each directory's items in order[0..count), and count at
 * the end (malloc'd, *n_dirs + 1 of them), or NULL. */
static size_t *directory_starts(const struct vf_txn *t, const size_t *order, size_t count,
				size_t *n_dirs)
{
	size_t *starts = malloc((count + 1) * sizeof(*starts));
	*n_dirs = 0;
	if (!starts)
		return NULL;
	for (size_t k = 0; k < count; k++)
		if (!k || !same_dir(t->items[order[k - 1]].rel, t->items[order[k]].rel))
			starts[(*n_dirs)++] = k;
	starts[*n_dirs] = count;
	return starts;
}

/* Renames or removes every item of phase. They are applied directory by
 * directory (two threads stage a directory's files between each other's,
 * so sorted they come together and share one resolution), and within a
 * directory in the order staged. That order is the point: a secret goes
 * before its recipients, so that a kill in between never leaves a
 * manifest naming someone the secret is not sealed to. Nothing orders one
 * directory's items against another's (the phases are the barriers), so
 * a large phase spreads its directories over the CPUs. */
static enum vf_code apply_phase(struct vf_txn *t, int rfd, enum vf_txn_phase phase,
				struct vf_error *err)
{
	size_t count, n_dirs = 0;
	size_t *order = apply_order(t, phase, &count);
	if (!order) /* out of memory: one pass in the staged order */
		return apply_items(t, rfd, phase, NULL, 0, t->n, err);
	size_t *starts = NULL;
	if (count >= PARALLEL_APPLY_MIN && vf_cpu_count() > 1)
		starts = directory_starts(t, order, count, &n_dirs);
	enum vf_code rc;
	if (!starts) {
		rc = apply_items(t, rfd, phase, order, 0, count, err);
	} else {
		struct apply_jobs j = {t, rfd, phase, order, starts};
		rc = vf_parallel_try(n_dirs, 0, apply_job, &j, err);
	}
	free(starts);
	free(order);
	return rc;
}

static bool has_phase(const struct vf_txn *t, enum vf_txn_phase phase)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->items[i].phase == phase)
			return true;
	return false;
}

/* The order is the point: records vouching for the old files go before
 * any file changes, and new records come only once every new file is
 * durable. A kill anywhere leaves no record that vouches for a mix. */
enum vf_code vf_txn_commit(struct vf_txn *t, struct vf_error *err)
{
	if (!t->n) {
		vf_txn_abort(t);
		return VF_OK;
	}
	int rfd = root_fd(t->root);
	enum vf_code rc = rfd >= 0 ? VF_OK : vf_fail_errno(err, errno, "%s", t->root);
	if (rc == VF_OK)
		rc = apply_phase(t, rfd, VF_TXN_INVALIDATE, err);
	if (rc == VF_OK)
		rc = sync_store(rfd, t->root, err);
	if (rc == VF_OK)
		rc = apply_phase(t, rfd, VF_TXN_DATA, err);
	if (rc == VF_OK && has_phase(t, VF_TXN_RECORD)) {
		rc = sync_store(rfd, t->root, err);
		if (rc == VF_OK)
			rc = apply_phase(t, rfd, VF_TXN_RECORD, err);
	}
	if (rc == VF_OK)
		rc = sync_store(rfd, t->root, err);
	vf_txn_abort(t);
	return rc;
}

/* After an abort, the directories staging made for rel may be empty
 * again (a generate that fails after its first batches has staged
 * thousands): each is removed, from rel's own up, while it is empty
 * (rmdir removes nothing else), resolved beneath the root like any store
 * path. vars/ and the directories directly in it stay. */
static void remove_empty_dirs(int rfd, const char *root, const char *rel)
{
	char *dir = strdup(rel);
	for (char *slash = dir ? strrchr(dir, '/') : NULL; slash; slash = strrchr(dir, '/')) {
		*slash = '\0';
		if (!strchr(dir, '/') || strchr(dir, '/') == strrchr(dir, '/'))
			break; /* "vars" or "vars/per-machine": the layout */
		bool absent;
		int pfd = open_parent(rfd, root, dir, false, &absent, NULL);
		if (pfd < 0)
			break;
		int rc = unlinkat(pfd, base_of(dir), AT_REMOVEDIR);
		close(pfd);
		if (rc != 0 && errno != ENOENT)
			break; /* not empty: nor is anything above it */
	}
	free(dir);
}

void vf_txn_abort(struct vf_txn *t)
{
	int rfd = t->root ? root_fd(t->root) : -1;
	for (size_t i = 0; i < t->n; i++) {
		struct vf_txn_item *it = &t->items[i];
		if (it->temp && rfd >= 0) {
			bool absent;
			int dfd = open_parent(rfd, t->root, it->rel, false, &absent, NULL);
			if (dfd >= 0) {
				unlinkat(dfd, it->temp, 0);
				close(dfd);
				remove_empty_dirs(rfd, t->root, it->rel);
			}
		}
		free(it->temp);
		free(it->rel);
	}
	free(t->items);
	free(t->root);
	free(t->index);
	memset(t, 0, sizeof(*t));
}

/* ---- leftovers ---------------------------------------------------------- */

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
		unsigned char type = e->d_type;
		struct stat st;
		if (type == DT_UNKNOWN && fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		if (type == DT_DIR && depth == 0 && is_temp(e->d_name)) {
			/* A directory vf_store_discard_dir took out of the store:
			 * removed without following anything, on this file
			 * system only. */
			const struct vf_tree_opts o = {.one_fs = true, .max_depth = 16};
			vf_tree_remove_at(dirfd, e->d_name, &o);
		} else if (type == DT_DIR && depth < 8) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				clean_dir(sub, depth + 1);
		} else if (type == DT_REG && is_temp(e->d_name)) {
			unlinkat(dirfd, e->d_name, 0);
		}
	}
	closedir(d);
}

void vf_store_clean_temps(const char *root)
{
	int rfd = root_fd(root);
	if (rfd < 0)
		return;
	int fd = openat(rfd, "vars", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		clean_dir(fd, 0);
}

/* ---- listing and discarding directories (vargen prune) ------------------ */

void vf_store_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens rel_dir beneath the root for reading, never through a symlink:
 * -1 with *absent when it does not exist. */
static int open_store_dir(const char *root, const char *rel_dir, bool *absent,
			  struct vf_error *err)
{
	*absent = false;
	int rfd = root_fd(root);
	if (rfd < 0) {
		if (errno == ENOENT)
			*absent = true;
		else
			vf_fail_errno(err, errno, "%s", root);
		return -1;
	}
	size_t n = strlen(rel_dir);
	char *probe = malloc(n + 3);
	if (!probe) {
		vf_fail(err, VF_E_NOMEM, "out of memory");
		return -1;
	}
	memcpy(probe, rel_dir, n);
	memcpy(probe + n, "/x", 3); /* open_parent opens what precedes the last '/' */
	int pfd = open_parent(rfd, root, probe, false, absent, err);
	free(probe);
	if (pfd < 0)
		return -1;
	int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = errno;
	close(pfd);
	if (fd < 0)
		vf_fail_errno(err, e, "%s/%s", root, rel_dir);
	return fd;
}

static enum vf_code list_entry(int dfd, const struct dirent *e, const char *root,
			       const char *rel_dir, bool *is_dir, struct vf_error *err)
{
	mode_t mode = 0;
	switch (e->d_type) {
	case DT_DIR: mode = S_IFDIR; break;
	case DT_REG: mode = S_IFREG; break;
	case DT_LNK: mode = S_IFLNK; break;
	default: {
		struct stat st;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return errno == ENOENT ? VF_OK
					       : vf_fail_errno(err, errno, "%s/%s/%s", root, rel_dir,
							       e->d_name);
		mode = st.st_mode;
	}
	}
	*is_dir = S_ISDIR(mode);
	if (S_ISLNK(mode))
		return vf_fail(err, VF_E_IO, "%s/%s/%s: a symlink inside the store; refusing to "
					     "follow it",
			       root, rel_dir, e->d_name);
	if (!S_ISDIR(mode) && !S_ISREG(mode))
		return vf_fail(err, VF_E_IO, "%s/%s/%s: not a regular file or directory (%s)", root,
			       rel_dir, e->d_name, type_name(mode));
	return VF_OK;
}

static enum vf_code list_dirs(const char *root, const char *rel_dir, bool temps, char ***names,
			      size_t *n, struct vf_error *err);

enum vf_code vf_store_list_dirs(const char *root, const char *rel_dir, char ***names, size_t *n,
				struct vf_error *err)
{
	return list_dirs(root, rel_dir, false, names, n, err);
}

enum vf_code vf_store_list_discarded(const char *root, char ***names, size_t *n,
				     struct vf_error *err)
{
	return list_dirs(root, "vars", true, names, n, err);
}

/* The directories in rel_dir: with temps, only those named as
 * temporaries; without, only those not starting with '.'. */
static enum vf_code list_dirs(const char *root, const char *rel_dir, bool temps, char ***names,
			      size_t *n, struct vf_error *err)
{
	*names = NULL;
	*n = 0;
	bool absent;
	int fd = open_store_dir(root, rel_dir, &absent, err);
	if (fd < 0)
		return absent ? VF_OK : (err ? err->code : VF_E_IO);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return vf_fail_errno(err, errno, "%s/%s", root, rel_dir);
	}
	enum vf_code rc = VF_OK;
	size_t cap = 0;
	struct dirent *e;
	while (rc == VF_OK && (e = readdir(d))) {
		if (temps ? !is_temp(e->d_name) : e->d_name[0] == '.')
			continue;
		bool is_dir = false;
		rc = list_entry(dirfd(d), e, root, rel_dir, &is_dir, err);
		if (rc != VF_OK || !is_dir)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			char **grown = realloc(*names, cap * sizeof(*grown));
			if (!grown) {
				rc = vf_fail(err, VF_E_NOMEM, "out of memory");
				break;
			}
			*names = grown;
		}
		if (!((*names)[*n] = strdup(e->d_name)))
			rc = vf_fail(err, VF_E_NOMEM, "out of memory");
		else
			(*n)++;
	}
	closedir(d);
	if (rc != VF_OK) {
		vf_store_names_free(*names, *n);
		*names = NULL;
		*n = 0;
		return rc;
	}
	if (*n)
		qsort(*names, *n, sizeof(**names), cmp_name);
	return VF_OK;
}

enum vf_code vf_store_discard_dir(const char *root, const char *rel_dir, struct vf_error *err)
{
	int rfd = root_fd(root);
	if (rfd < 0)
		return vf_fail_errno(err, errno, "%s", root);
	bool absent;
	int pfd = open_parent(rfd, root, rel_dir, false, &absent, err);
	if (pfd < 0)
		return absent ? VF_OK : (err ? err->code : VF_E_IO);
	const char *base = base_of(rel_dir);
	struct stat st;
	enum vf_code rc = VF_OK;
	int vfd = openat(rfd, "vars", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char *temp = vfd >= 0 ? temp_name(base, err) : NULL;
	if (vfd < 0)
		rc = vf_fail_errno(err, errno, "%s/vars", root);
	else if (!temp)
		rc = err ? err->code : VF_E_NOMEM;
	else if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		rc = errno == ENOENT ? VF_OK : vf_fail_errno(err, errno, "%s/%s", root, rel_dir);
	else if (!S_ISDIR(st.st_mode))
		rc = vf_fail(err, VF_E_IO, "%s/%s: not a directory (%s)", root, rel_dir,
			     type_name(st.st_mode));
	/* One rename: the directory is in the store whole, or gone whole
	 * (into vars/, under a name every reader skips). */
	else if (renameat(pfd, base, vfd, temp) != 0)
		rc = vf_fail_errno(err, errno, "removing %s/%s", root, rel_dir);
	free(temp);
	if (vfd >= 0)
		close(vfd);
	close(pfd);
	return rc;
}

enum vf_code vf_store_sync(const char *root, struct vf_error *err)
{
	int rfd = root_fd(root);
	return rfd < 0 ? vf_fail_errno(err, errno, "%s", root) : sync_store(rfd, root, err);
}

enum vf_code vf_store_present(const char *root, bool *present, struct vf_error *err)
{
	*present = false;
	struct stat st;
	const char *parts[] = {root, "vars"};
	char *path = join(parts, 2);
	if (!path)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = VF_OK;
	if (lstat(root, &st) == 0 && fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			*present = true;
		else
			rc = vf_fail(err, VF_E_IO, "%s: not a directory (%s)", path,
				     type_name(st.st_mode));
	} else if (errno != ENOENT && errno != ENOTDIR) {
		rc = vf_fail_errno(err, errno, "%s", path);
	}
	free(path);
	return rc;
}
