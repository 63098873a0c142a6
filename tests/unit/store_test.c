/* Unit tests of the store (format/vars/store.h, and the phases of
 * store_internal.h, the lower layer vars.c builds on):
 *  1. paths: the layout of docs/store.md;
 *  2. the transaction: staged writes stay invisible (temporaries only)
 *     until commit, which makes them visible, in 0700 directories, with
 *     nothing left over; removals; the last write of a path wins; abort
 *     leaves neither the files nor a temporary;
 *  3. the phases: a commit record (.commit) staged for VF_TXN_RECORD and
 *     its removal for VF_TXN_INVALIDATE apply in phase order, not in
 *     staging order; within a directory the data apply in staging order
 *     (a secret before its recipients), also when a large phase is
 *     applied by several threads; when the data phase fails, the old
 *     record is gone
 *     and the new one is not there (no record vouches for a mix);
 *  4. reading back with vf_store_read_at and vf_store_exists: a missing
 *     file is no error; a symlink (as the file or a directory above it), a
 *     FIFO (without blocking), a directory and a file above
 *     VF_STORE_MAX_FILE are refused, naming the path; writing through a
 *     symlinked directory, or making directories beneath one, is refused
 *     and writes nothing there; two threads staging into the same new
 *     directories at once both succeed; a stage that fails takes back the
 *     directories it made, and nothing through a symlink;
 *  5. vf_manifest_format: sorted, deduplicated, one LF-terminated line;
 *     vf_manifest_same: SSH recipients compared by type and key, not comment
 *     each;
 *  6. vf_store_clean_temps removes only ".*.tmp" regular files under vars/;
 *  7. vf_store_lock: one writer at a time.
 * Everything happens in a private directory under $TMPDIR or /dev/shm,
 * removed at the end. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>

#include "base/secmem.h"
#include "vars/store.h"
#include "vars/store_internal.h"
#include "unit.h"

static char top[256];
static unsigned n_roots;

/* A fresh store root (each its own name: the library resolves a root once
 * per process). */
static char *new_root(void)
{
	char *root = NULL;
	unit_must(asprintf(&root, "%s/root%u", top, n_roots++) > 0, "asprintf");
	unit_must(mkdir(root, 0700) == 0, root);
	return root;
}

static char *join(const char *root, const char *rel)
{
	char *p = NULL;
	unit_must(asprintf(&p, "%s/%s", root, rel) > 0, "asprintf");
	return p;
}

/* Creates root/rel with text, making the directories on the way. */
static void put(const char *root, const char *rel, const char *text)
{
	char *path = join(root, rel);
	for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		unit_must(mkdir(path, 0700) == 0 || errno == EEXIST, path);
		*s = '/';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unit_must(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), path);
	close(fd);
	free(path);
}

/* root/rel's contents read without the library (NULL when absent). */
static char *slurp(const char *root, const char *rel)
{
	char *path = join(root, rel);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return NULL;
	static char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static bool has(const char *root, const char *rel, const char *text)
{
	const char *got = slurp(root, rel);
	return got && !strcmp(got, text);
}

static bool absent(const char *root, const char *rel)
{
	char *path = join(root, rel);
	struct stat st;
	bool gone = lstat(path, &st) != 0 && errno == ENOENT;
	free(path);
	return gone;
}

static unsigned n_temps;
static int count_temp(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	const char *name = path + f->base;
	size_t n = strlen(name);
	if (flag == FTW_F && S_ISREG(st->st_mode) && name[0] == '.' && n > 4 &&
	    !strcmp(name + n - 4, ".tmp"))
		n_temps++;
	return 0;
}

/* Temporaries (".*.tmp" files) anywhere under root. */
static unsigned temps(const char *root)
{
	n_temps = 0;
	nftw(root, count_temp, 16, FTW_PHYS);
	return n_temps;
}

static bool mode_is(const char *root, const char *rel, mode_t mode)
{
	char *path = join(root, rel);
	struct stat st;
	bool ok = lstat(path, &st) == 0 && (st.st_mode & 07777) == mode;
	free(path);
	return ok;
}

static void paths(void)
{
	char *s;
	CHECK_STR(s = vf_store_rel("m", "g", "f", "secret"), "vars/per-machine/m/g/f/secret",
		  "a machine's file");
	free(s);
	CHECK_STR(s = vf_store_rel(NULL, "g", "f", "value"), "vars/shared/g/f/value",
		  "a shared file");
	free(s);
	CHECK_STR(s = vf_store_rel("m", "g", NULL, ".commit"), "vars/per-machine/m/g/.commit",
		  "a generator's record");
	free(s);
	CHECK_STR(s = vf_store_machine_key_rel("m", "recipients"), "vars/machine-keys/m/recipients",
		  "a machine key's manifest");
	free(s);
	CHECK_STR(s = vf_store_path("/r", "m", "g", "f", NULL), "/r/vars/per-machine/m/g/f",
		  "a full path, without leaf");
	free(s);
}

static void transaction(void)
{
	char *root = new_root();
	struct vf_error err = {0};
	struct vf_txn t = {0};
	const char *a = "vars/shared/g/a/value", *b = "vars/per-machine/m/g/b/secret";

	CHECK_OK(vf_txn_write(&t, root, a, "alpha", 5, &err), err, "staging a write");
	CHECK_OK(vf_txn_write(&t, root, b, "beta", 4, &err), err, "staging a second write");
	CHECK_OK(vf_txn_write(&t, root, "vars/shared/g/empty", NULL, 0, &err), err,
		 "staging an empty file");
	CHECK(absent(root, a) && absent(root, b) && temps(root) == 3,
	      "before commit: no file, one temporary each (%u)", temps(root));
	bool exists = true;
	CHECK(vf_store_exists(root, a, &exists, &err) == VF_OK && !exists,
	      "before commit: vf_store_exists says no");
	CHECK(mode_is(root, "vars", 0700) && mode_is(root, "vars/per-machine/m/g/b", 0700),
	      "staging made the directories 0700");

	CHECK_OK(vf_txn_commit(&t, &err), err, "commit");
	CHECK(has(root, a, "alpha") && has(root, b, "beta") && has(root, "vars/shared/g/empty", ""),
	      "after commit: the new contents");
	CHECK(temps(root) == 0, "after commit: no temporary left");
	CHECK(mode_is(root, a, 0600) && mode_is(root, b, 0600), "files are 0600");
	CHECK(t.n == 0 && t.items == NULL && t.root == NULL, "commit leaves the txn empty");

	/* Replace one, remove one, remove one that is not there, and write
	 * one path twice: the last staged wins. */
	CHECK_OK(vf_txn_write(&t, root, a, "ALPHA", 5, &err), err, "staging a replacement");
	CHECK_OK(vf_txn_remove(&t, root, b, &err), err, "staging a removal");
	CHECK_OK(vf_txn_remove(&t, root, "vars/shared/none/x", &err), err,
		 "staging the removal of a file in no directory");
	CHECK_OK(vf_txn_write(&t, root, "vars/shared/g/twice", "first", 5, &err), err, "write 1");
	CHECK_OK(vf_txn_write(&t, root, "vars/shared/g/twice", "second", 6, &err), err, "write 2");
	CHECK(has(root, b, "beta"), "a staged removal is not done yet");
	CHECK_OK(vf_txn_commit(&t, &err), err, "commit of replace and remove");
	CHECK(has(root, a, "ALPHA") && absent(root, b), "replaced, and removed");
	CHECK(has(root, "vars/shared/g/twice", "second"), "the last write staged wins");
	CHECK(temps(root) == 0, "no temporary left");

	/* Abort: nothing appears, no temporary stays. */
	CHECK_OK(vf_txn_write(&t, root, "vars/shared/new/f/value", "x", 1, &err), err,
		 "staging in a new directory");
	CHECK_OK(vf_txn_write(&t, root, a, "changed", 7, &err), err, "staging a change");
	CHECK(temps(root) == 2, "two temporaries staged");
	vf_txn_abort(&t);
	CHECK(temps(root) == 0 && absent(root, "vars/shared/new/f/value") && has(root, a, "ALPHA"),
	      "abort: no temporary, nothing new, nothing changed");
	CHECK(t.n == 0 && t.root == NULL, "abort leaves the txn empty");
	CHECK_OK(vf_txn_commit(&t, &err), err, "committing an empty txn is a no-op");

	/* One transaction, one store. */
	char *other = new_root();
	CHECK_OK(vf_txn_write(&t, root, a, "1", 1, &err), err, "staging in one store");
	CHECK(vf_txn_write(&t, other, a, "2", 1, &err) == VF_E_ARG && absent(other, a),
	      "staging in a second store is refused");
	vf_txn_abort(&t);
	CHECK(temps(root) == 0 && temps(other) == 0, "and abort cleans both");
	CHECK(vf_txn_write(&t, root, "vars/../../escape", "x", 1, &err) != VF_OK &&
		      temps(top) == 0,
	      "a store path climbing out of the root is refused, nothing staged");
	vf_txn_abort(&t);
	free(other);
	free(root);
}

static void phases(void)
{
	char *root = new_root();
	struct vf_error err = {0};
	struct vf_txn t = {0};
	const char *rec = "vars/shared/g/.commit", *data = "vars/shared/g/f/value";

	/* Staged backwards: the new record first, the old one's removal
	 * last. Phase order still removes first and records last. */
	put(root, rec, "old record");
	put(root, data, "old value");
	CHECK_OK(vf_txn_stage(&t, root, rec, VF_TXN_RECORD, "new record", 10, &err), err,
		 "staging a record");
	CHECK_OK(vf_txn_write(&t, root, data, "new value", 9, &err), err, "staging its data");
	CHECK_OK(vf_txn_stage(&t, root, rec, VF_TXN_INVALIDATE, NULL, 0, &err), err,
		 "staging the old record's removal");
	CHECK(has(root, rec, "old record"), "before commit the old record stands");
	CHECK_OK(vf_txn_commit(&t, &err), err, "commit in three phases");
	CHECK(has(root, rec, "new record") && has(root, data, "new value"),
	      "invalidate, data, record: the new record and data are there");
	CHECK(temps(root) == 0, "no temporary left");

	/* The data phase fails (its directory became a symlink after
	 * staging): the invalidation has happened, the record has not. */
	CHECK_OK(vf_txn_stage(&t, root, rec, VF_TXN_INVALIDATE, NULL, 0, &err), err, "invalidate");
	CHECK_OK(vf_txn_write(&t, root, data, "newer value", 11, &err), err, "data");
	CHECK_OK(vf_txn_stage(&t, root, rec, VF_TXN_RECORD, "newer record", 12, &err), err,
		 "record");
	char *dir = join(root, "vars/shared/g/f"), *moved = join(root, "vars/shared/g/moved");
	unit_must(rename(dir, moved) == 0 && symlink("moved", dir) == 0, "swapping in a symlink");
	err = (struct vf_error){0};
	CHECK(vf_txn_commit(&t, &err) != VF_OK && strstr(err.msg, "symlink"),
	      "commit fails on the symlinked directory (%s)", err.msg);
	CHECK(absent(root, rec), "the old record was removed and no new one written");
	CHECK(has(root, "vars/shared/g/moved/value", "new value"),
	      "nothing was renamed through the symlink");
	CHECK(t.n == 0, "a failed commit leaves the txn empty");
	free(dir);
	free(moved);

	/* Only records: they land, with no data phase. */
	CHECK_OK(vf_txn_stage(&t, root, rec, VF_TXN_RECORD, "only", 4, &err), err, "record only");
	CHECK_OK(vf_txn_commit(&t, &err), err, "commit of a record alone");
	CHECK(has(root, rec, "only"), "the record is there");
	free(root);
}

static void reading(void)
{
	char *root = new_root();
	struct vf_error err = {0};
	uint8_t *data = (uint8_t *)"unset";
	size_t len = 99;
	bool exists = true;

	put(root, "vars/shared/g/f/value", "public");
	if (CHECK_OK(vf_store_read_at(root, "vars/shared/g/f/value", &data, &len, &err), err,
		     "reading a file"))
		CHECK(len == 6 && data && !memcmp(data, "public", 7), "its bytes, NUL-terminated");
	free(data);
	CHECK(vf_store_exists(root, "vars/shared/g/f/value", &exists, &err) == VF_OK && exists,
	      "vf_store_exists says yes");
	CHECK(vf_store_read_at(root, "vars/shared/g/f/none", &data, &len, &err) == VF_OK &&
		      data == NULL && len == 0,
	      "a missing file: VF_OK and no data");
	CHECK(vf_store_read_at(root, "vars/shared/nodir/f/value", &data, &len, &err) == VF_OK &&
		      data == NULL,
	      "a missing directory: VF_OK and no data");

	/* Hostile entries inside the store. */
	char *p = join(root, "vars/shared/g/f/link");
	unit_must(symlink("value", p) == 0, p);
	free(p);
	p = join(root, "vars/shared/g/linkdir");
	unit_must(symlink("f", p) == 0, p);
	free(p);
	p = join(root, "vars/shared/g/f/fifo");
	unit_must(mkfifo(p, 0600) == 0, p);
	free(p);
	p = join(root, "vars/shared/g/f/huge");
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	unit_must(fd >= 0 && ftruncate(fd, (off_t)VF_STORE_MAX_FILE + 1) == 0, p);
	close(fd);
	p[strlen(p) - 4] = '\0';
	strcat(p, "max");
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	unit_must(fd >= 0 && ftruncate(fd, (off_t)VF_STORE_MAX_FILE) == 0, p);
	close(fd);
	free(p);

	static const struct {
		const char *rel, *why, *named; /* the message names the culprit */
	} refused[] = {
		{"vars/shared/g/f/link", "symlink", "vars/shared/g/f/link"},
		{"vars/shared/g/linkdir/value", "symlink", "vars/shared/g/linkdir"},
		{"vars/shared/g/f/fifo", "FIFO", "vars/shared/g/f/fifo"},
		{"vars/shared/g/f", "directory", "vars/shared/g/f"},
		{"vars/shared/g/f/huge", "MiB", "vars/shared/g/f/huge"},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err = (struct vf_error){0};
		data = NULL;
		CHECK(vf_store_read_at(root, refused[i].rel, &data, &len, &err) != VF_OK &&
			      data == NULL && strstr(err.msg, refused[i].named) &&
			      strstr(err.msg, refused[i].why),
		      "%s is refused (%s)", refused[i].rel, err.msg);
		free(data);
		exists = true;
		CHECK(vf_store_exists(root, refused[i].rel, &exists, &err) != VF_OK && !exists,
		      "vf_store_exists refuses %s too", refused[i].rel);
	}
	data = NULL;
	if (CHECK_OK(vf_store_read_at(root, "vars/shared/g/f/max", &data, &len, &err), err,
		     "a file of exactly VF_STORE_MAX_FILE is read"))
		CHECK(len == VF_STORE_MAX_FILE, "all of it");
	free(data);

	/* A file named by the user: a FIFO is refused without blocking too. */
	p = join(root, "vars/shared/g/f/fifo");
	err = (struct vf_error){0};
	CHECK(vf_store_read(p, &data, &len, &err) != VF_OK && strstr(err.msg, "FIFO"),
	      "vf_store_read refuses a FIFO (%s)", err.msg);
	free(p);
	p = join(root, "nothing");
	CHECK(vf_store_read(p, &data, &len, &err) == VF_OK && data == NULL,
	      "vf_store_read: a missing file is no error");
	free(p);

	/* Writing through a symlinked directory: refused, nothing lands. */
	struct vf_txn t = {0};
	err = (struct vf_error){0};
	CHECK(vf_txn_write(&t, root, "vars/shared/g/linkdir/new", "x", 1, &err) != VF_OK &&
		      strstr(err.msg, "symlink"),
	      "staging through a symlinked directory is refused (%s)", err.msg);
	vf_txn_abort(&t);
	CHECK(absent(root, "vars/shared/g/f/new") && temps(root) == 0,
	      "nothing was written where the symlink points");
	/* Directories to make below the symlink: none is made there. */
	err = (struct vf_error){0};
	CHECK(vf_txn_write(&t, root, "vars/shared/g/linkdir/deeper/still/new", "x", 1, &err) !=
			      VF_OK &&
		      strstr(err.msg, "symlink"),
	      "making directories beneath a symlinked directory is refused (%s)", err.msg);
	vf_txn_abort(&t);
	CHECK(absent(root, "vars/shared/g/f/deeper") && temps(root) == 0,
	      "no directory was made where the symlink points");
	free(root);
}

/* Within a directory the data are applied in the order staged, whatever
 * is staged elsewhere in between: a secret before its recipients, so that
 * a commit stopped between them (here: the recipients' rename fails, a
 * directory being in its place) leaves the new secret with the old
 * manifest, never a new manifest beside the old secret. */
static void data_order(void)
{
	char *root = new_root();
	put(root, "vars/per-machine/m/g/f/secret", "old secret");
	put(root, "vars/per-machine/m/g/f/recipients/blocker", "x");
	struct vf_txn t = {0};
	struct vf_error err = {0};
	CHECK_OK(vf_txn_write(&t, root, "vars/per-machine/m/g/f/secret", "new secret", 10, &err),
		 err, "staging the secret");
	CHECK_OK(vf_txn_write(&t, root, "vars/per-machine/m/g/e/secret", "other", 5, &err), err,
		 "staging a file in another directory in between");
	CHECK_OK(vf_txn_write(&t, root, "vars/per-machine/m/g/f/recipients", "age1new\n", 8, &err),
		 err, "staging its recipients");
	CHECK(vf_txn_commit(&t, &err) != VF_OK, "the commit fails at the recipients (%s)",
	      err.msg);
	CHECK(has(root, "vars/per-machine/m/g/f/secret", "new secret"),
	      "the secret, staged first, was applied first");
	CHECK(temps(root) == 0, "no temporary is left");
	free(root);
}

/* The same with a data phase large enough to be applied by every CPU,
 * a directory to a job (PARALLEL_APPLY_MIN in store.c): every directory
 * still gets its secret before its recipients, and with two directories
 * failing at once, the error is the first one's in the commit's order (by
 * directory), whichever thread met its failure first. */
#define MANY_DIRS 400
static void data_order_parallel(void)
{
	char *root = new_root();
	char rel[256], blocked[2][128];
	/* Two blocked directories next to each other: each thread meets one. */
	const unsigned block[2] = {37, 38};
	for (unsigned b = 0; b < 2; b++) {
		snprintf(blocked[b], sizeof(blocked[b]), "vars/per-machine/m%03u/g/f/recipients",
			 block[b]);
		snprintf(rel, sizeof(rel), "%s/blocker", blocked[b]);
		put(root, rel, "x");
	}
	struct vf_txn t = {0};
	struct vf_error err = {0};
	bool staged = true;
	/* Staged from the last directory to the first, so that the commit's
	 * order is not the staging order. */
	for (unsigned i = MANY_DIRS; i-- > 0 && staged;) {
		snprintf(rel, sizeof(rel), "vars/per-machine/m%03u/g/f/secret", i);
		staged = vf_txn_write(&t, root, rel, "new secret", 10, &err) == VF_OK;
		snprintf(rel, sizeof(rel), "vars/per-machine/m%03u/g/f/recipients", i);
		staged = staged && vf_txn_write(&t, root, rel, "age1new\n", 8, &err) == VF_OK;
	}
	CHECK(staged, "staging %u directories of two files (%s)", MANY_DIRS, err.msg);
	CHECK(vf_txn_commit(&t, &err) != VF_OK && strstr(err.msg, blocked[0]),
	      "the commit fails, naming the first blocked directory's recipients (%s)", err.msg);
	unsigned secrets = 0, bad = 0;
	for (unsigned i = 0; i < MANY_DIRS; i++) {
		snprintf(rel, sizeof(rel), "vars/per-machine/m%03u/g/f/secret", i);
		bool secret = has(root, rel, "new secret");
		snprintf(rel, sizeof(rel), "vars/per-machine/m%03u/g/f/recipients", i);
		bool recipients = has(root, rel, "age1new\n");
		secrets += secret;
		bad += recipients && !secret; /* a manifest ahead of its secret */
	}
	CHECK(bad == 0, "no directory has its recipients without its secret (%u)", bad);
	snprintf(rel, sizeof(rel), "vars/per-machine/m%03u/g/f/secret", block[0]);
	CHECK(has(root, rel, "new secret"), "the first blocked directory's secret was applied");
	CHECK(secrets > block[0], "the directories before it were applied (%u secrets)", secrets);
	CHECK(temps(root) == 0, "no temporary is left");
	free(root);
}

/* A stage that fails after making directories (here a name too long for
 * its temporary; a full disk in tests/full_disk_test.py) takes them back,
 * and only them: not what holds files, and nothing a symlink in the store
 * points to. */
static void failed_stage(void)
{
	char *root = new_root();
	char leaf[NAME_MAX - 2];
	memset(leaf, 'x', sizeof(leaf) - 1);
	leaf[sizeof(leaf) - 1] = '\0'; /* fits as a name; ".<leaf>.<random>.tmp" does not */
	char rel[512];
	put(root, "vars/per-machine/kept/g/f/secret", "sealed");
	struct vf_txn t = {0};
	struct vf_error err = {0};
	snprintf(rel, sizeof(rel), "vars/per-machine/new/g/f/%s", leaf);
	CHECK(vf_txn_write(&t, root, rel, "x", 1, &err) != VF_OK,
	      "staging fails when the temporary cannot be created (%s)", err.msg);
	snprintf(rel, sizeof(rel), "vars/per-machine/kept/g/h/%s", leaf);
	CHECK(vf_txn_write(&t, root, rel, "x", 1, &err) != VF_OK,
	      "and beside existing files (%s)", err.msg);
	vf_txn_abort(&t);
	CHECK(absent(root, "vars/per-machine/new") && absent(root, "vars/per-machine/kept/g/h"),
	      "the directories it made are gone");
	CHECK(has(root, "vars/per-machine/kept/g/f/secret", "sealed") && temps(root) == 0,
	      "the directories holding files stay, with them; no temporary is left");

	/* A machine directory that is a symlink to an empty directory
	 * elsewhere: the stage is refused, and the cleanup removes nothing
	 * through it. */
	char *outside = join(root, "outside");
	char *inside = join(root, "outside/g");
	unit_must(mkdir(outside, 0700) == 0 && mkdir(inside, 0700) == 0, outside);
	char *link = join(root, "vars/per-machine/linked");
	unit_must(symlink(outside, link) == 0, link);
	snprintf(rel, sizeof(rel), "vars/per-machine/linked/g/%s", leaf);
	CHECK(vf_txn_write(&t, root, rel, "x", 1, &err) != VF_OK && strstr(err.msg, "symlink"),
	      "staging through the symlinked machine is refused (%s)", err.msg);
	vf_txn_abort(&t);
	CHECK(!absent(root, "outside/g") && !absent(root, "vars/per-machine/linked"),
	      "the empty directory it points to, and the symlink, stay");
	free(outside);
	free(inside);
	free(link);
	free(root);
}

/* Two threads stage files into the same new directories at once (as
 * generate's workers do): each directory is made once, by either, and
 * every file lands. */
enum { RACE_FILES = 64 };
struct race {
	struct vf_txn *t;
	const char *root;
	unsigned first;
	int failed;
};

/* File i: 8 per machine, two per directory (one from each thread). */
static void race_rel(unsigned i, char rel[96])
{
	snprintf(rel, 96, "vars/per-machine/m%u/g/f%u/%s", i / 8, i / 2 % 4,
		 i % 2 ? "secret" : "recipients");
}

static void *race_stage(void *arg)
{
	struct race *r = arg;
	for (unsigned i = r->first; i < RACE_FILES && !r->failed; i += 2) {
		char rel[96];
		race_rel(i, rel);
		struct vf_error err = {0};
		r->failed = vf_txn_write(r->t, r->root, rel, rel, strlen(rel), &err) != VF_OK;
	}
	return NULL;
}

static void racing_directories(void)
{
	char *root = new_root();
	struct vf_txn t = {0};
	struct race a = {&t, root, 0, 0}, b = {&t, root, 1, 0};
	pthread_t ta, tb;
	unit_must(pthread_create(&ta, NULL, race_stage, &a) == 0, "pthread_create");
	unit_must(pthread_create(&tb, NULL, race_stage, &b) == 0, "pthread_create");
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	struct vf_error err = {0};
	CHECK(!a.failed && !b.failed, "two threads staged into the same new directories");
	CHECK_OK(vf_txn_commit(&t, &err), err, "their transaction commits");
	unsigned landed = 0;
	for (unsigned i = 0; i < RACE_FILES; i++) {
		char rel[96];
		race_rel(i, rel);
		landed += has(root, rel, rel);
	}
	CHECK(landed == RACE_FILES, "every file landed with its contents (%u of %u)", landed,
	      RACE_FILES);
	CHECK(mode_is(root, "vars/per-machine/m7/g/f3", 0700) && temps(root) == 0,
	      "the directories are 0700, no temporary is left");
	free(root);
}

static bool manifest_is(char **in, size_t n, const char *want)
{
	char *text = NULL;
	size_t len = 0;
	struct vf_error err = {0};
	bool ok = vf_manifest_format(in, n, &text, &len, &err) == VF_OK && text &&
		  len == strlen(want) && !strcmp(text, want);
	free(text);
	return ok;
}

static void manifest(void)
{
	char *list[] = {"age1zzz", "age1aaa", "ssh-ed25519 AAAA bob", "age1aaa", "age1mmm",
			"age1zzz"};
	CHECK(manifest_is(list, 6, "age1aaa\nage1mmm\nage1zzz\nssh-ed25519 AAAA bob\n"),
	      "sorted, deduplicated, one LF-terminated line each");
	CHECK(!strcmp(list[0], "age1zzz") && !strcmp(list[1], "age1aaa"),
	      "the caller's list is left in its order");
	CHECK(manifest_is(list, 1, "age1zzz\n"), "one recipient");
	CHECK(manifest_is(list, 0, ""), "no recipient: empty");
	char *same[] = {"x", "x", "x"};
	CHECK(manifest_is(same, 3, "x\n"), "all the same: one line");
}

static bool manifests_same(const char *a, const char *b)
{
	struct vf_error err = {0};
	bool same = false;
	return vf_manifest_same(a, strlen(a), b, strlen(b), &same, &err) == VF_OK && same;
}

static void manifest_comparison(void)
{
	CHECK(manifests_same("age1a\nssh-ed25519 AAAA alice@laptop\n",
			     "age1a\nssh-ed25519 AAAA alice@desktop\n"),
	      "an SSH recipient's comment does not make it another recipient");
	CHECK(manifests_same("ssh-ed25519 AAAA\nage1a\n", "age1a\nssh-ed25519 AAAA x y z\n"),
	      "with or without a comment, in any order");
	CHECK(!manifests_same("ssh-ed25519 AAAA c\n", "ssh-ed25519 BBBB c\n"),
	      "another key with the same comment is another recipient");
	CHECK(!manifests_same("ssh-rsa AAAA c\n", "ssh-ed25519 AAAA c\n"),
	      "the key type counts");
	CHECK(!manifests_same("age1a\n", "age1a\nage1b\n"), "a recipient more");
	CHECK(manifests_same("", ""), "two empty manifests");
}

static void clean_temps(void)
{
	char *root = new_root();
	put(root, "vars/.top.0a1b2c.tmp", "t");
	put(root, "vars/shared/g/f/.value.0a1b2c3d4e5f.tmp", "t");
	put(root, "vars/per-machine/m/g/f/.secret.ffffff.tmp", "t");
	put(root, "vars/shared/g/f/value", "keep");
	put(root, "vars/shared/g/f/plain.tmp", "keep"); /* not hidden: not ours */
	put(root, "vars/shared/g/.commit", "keep");
	put(root, ".outside.tmp", "keep"); /* not under vars/ */
	put(root, "elsewhere/.target.tmp", "keep");
	char *link = join(root, "vars/shared/g/.link.tmp");
	unit_must(symlink("../../../elsewhere/.target.tmp", link) == 0, link);
	free(link);

	vf_store_clean_temps(root);
	CHECK(absent(root, "vars/.top.0a1b2c.tmp") &&
		      absent(root, "vars/shared/g/f/.value.0a1b2c3d4e5f.tmp") &&
		      absent(root, "vars/per-machine/m/g/f/.secret.ffffff.tmp"),
	      "temporaries at every depth are gone");
	CHECK(has(root, "vars/shared/g/f/value", "keep") &&
		      has(root, "vars/shared/g/f/plain.tmp", "keep") &&
		      has(root, "vars/shared/g/.commit", "keep"),
	      "values, records and other names stay");
	CHECK(has(root, ".outside.tmp", "keep"), "nothing outside vars/ is touched");
	CHECK(!absent(root, "vars/shared/g/.link.tmp") && has(root, "elsewhere/.target.tmp", "keep"),
	      "a symlink named like a temporary stays, and so does its target");
	free(root);
}

static void locking(void)
{
	char *root = new_root();
	struct vf_error err = {0};
	int fd = -1, fd2 = -1;
	if (CHECK_OK(vf_store_lock(root, &fd, &err), err, "taking the store lock"))
		CHECK(fd >= 0 && mode_is(root, "vars", 0700), "held on vars/, made 0700");
	err = (struct vf_error){0};
	CHECK(vf_store_lock(root, &fd2, &err) != VF_OK && fd2 < 0 && strstr(err.msg, "another"),
	      "a second writer is refused (%s)", err.msg);
	if (fd >= 0)
		close(fd);
	if (CHECK_OK(vf_store_lock(root, &fd2, &err), err, "once released, it can be taken"))
		close(fd2);
	free(root);
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "unit_store: cannot initialise the library\n");
		return 2;
	}
	/* A FIFO that blocked a read would hang forever: stop instead. */
	alarm(120);
	unit_tempdir(top, sizeof(top), "unit_store");
	paths();
	transaction();
	phases();
	reading();
	data_order();
	data_order_parallel();
	failed_stage();
	racing_directories();
	manifest();
	manifest_comparison();
	clean_temps();
	locking();
	unit_rmtree(top);
	return unit_done();
}
