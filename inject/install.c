/* varinject install --machine M -i IDENTITY DIR: the machine's secrets as
 * files DIR/<generator>/<file> with the spec's owner, group and mode, for
 * hosts that consume them directly. A complete new set goes into a new
 * generation directory and DIR, a symlink, is switched to it with one
 * rename (as sops-nix does), so readers see the old set or the new one.
 *
 * install runs as root beside paths other users may create (DIR's parent
 * may be a sticky world-writable directory such as /dev/shm). So it opens
 * the parent once and does everything relative to that descriptor, makes
 * its directories itself and checks them through descriptors, and
 * refuses, before writing anything, any DIR, DIR.generations or
 * generation it did not make: a planted symlink or directory must never
 * make root write secrets where others control them, or remove what the
 * link points to. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/atomic.h"
#include "safedir.h"
#include "base/secmem.h"
#include "base/tree.h"
#include "vars/store.h"
#include "varinject.h"

static const char usage[] =
	"varinject install [-f SPEC] [--store DIR] --machine M\n"
	"                         (-i IDENTITY | --identity-credential NAME) [--passphrase-file FILE]\n"
	"                         [--insecure-permissions] [--allow-persistent] DIR";
static const struct vf_help_row help_rows[] = {
	{NULL, "DIR", "where the files go: DIR/GENERATOR/FILE, DIR a symlink to the set"},
	VI_STORE_HELP,
	{"--allow-persistent", NULL, "allow DIR on a file system that is not in RAM"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Decrypts machine M's secrets into DIR/GENERATOR/FILE with the spec's owner, group\n"
	"and mode, for hosts that read them directly. A complete new set is written to\n"
	"DIR.generations/N/ and DIR, a symlink, switched to it with one rename.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

/* A failed install retries this often when a concurrent one removed the
 * DIR.generations it had opened (see open_generations). */
#define LOCK_ATTEMPTS 5

struct install {
	struct vi_store_source src;
	bool allow_persistent;
	uid_t self;			  /* who must own every path install uses */
	char dir[PATH_MAX];		  /* DIR without trailing slashes, for messages */
	char parent_path[PATH_MAX];	  /* its parent, for messages */
	char base[NAME_MAX + 1];	  /* DIR's last component */
	char gens_name[NAME_MAX + 1];	  /* BASE.generations */
	char gens_path[PATH_MAX + 16];	  /* DIR.generations, for messages */
	int parent;			  /* DIR's parent, opened once */
	int gens;			  /* DIR.generations, locked */
	bool made_gens;			  /* by this run: removed again on failure */
	bool link_exists;		  /* DIR is there (ours) */
	unsigned long number;		  /* the new generation */
};

/* ---- names ------------------------------------------------------------- */

/* "12": a generation number as install writes it (no sign, no leading
 * zero). Other names in DIR.generations are not install's. */
static bool generation_number(const char *name, unsigned long *n)
{
	if (name[0] < '1' || name[0] > '9' || strlen(name) > 19)
		return false;
	for (const char *p = name; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	*n = strtoul(name, NULL, 10);
	return errno == 0;
}

/* DIR as given: trailing slashes dropped, split into parent and name. */
static int split_target(struct install *in, const char *arg)
{
	size_t len = strlen(arg);
	while (len > 1 && arg[len - 1] == '/')
		len--;
	if (len == 0)
		return vi_error("DIR is empty: name the symlink install should manage");
	if (len >= sizeof(in->dir))
		return vi_error("%s: %s", arg, strerror(ENAMETOOLONG));
	memcpy(in->dir, arg, len);
	in->dir[len] = '\0';
	char *slash = strrchr(in->dir, '/');
	const char *base = slash ? slash + 1 : in->dir;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return vi_error("%s: not a name install can give its symlink (DIR must end in a "
				"name, such as /run/secrets)",
				arg);
	/* Room beside it for BASE.generations and BASE.new-N. */
	size_t base_len = strlen(base);
	if (base_len + sizeof(".new-18446744073709551615") > sizeof(in->base))
		return vi_error("%s: %s", arg, strerror(ENAMETOOLONG));
	memcpy(in->base, base, base_len + 1);
	memcpy(in->gens_name, base, base_len);
	memcpy(in->gens_name + base_len, ".generations", sizeof(".generations"));
	memcpy(in->gens_path, in->dir, len);
	memcpy(in->gens_path + len, ".generations", sizeof(".generations"));
	if (!slash)
		snprintf(in->parent_path, sizeof(in->parent_path), ".");
	else if (slash == in->dir)
		snprintf(in->parent_path, sizeof(in->parent_path), "/");
	else
		snprintf(in->parent_path, sizeof(in->parent_path), "%.*s", (int)(slash - in->dir),
			 in->dir);
	return 0;
}

static const char *type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFLNK: return "a symlink";
	case S_IFREG: return "a regular file";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFDIR: return "a directory";
	default: return "a special file";
	}
}

static int not_ours(uid_t self_uid, const char *path, const struct stat *st, const char *what)
{
	char who[128], self[128];
	return vi_error("%s: owned by %s, not by %s: refusing to use %s install did not make",
			path, vi_owner_name(st->st_uid, who, sizeof(who)),
			vi_owner_name(self_uid, self, sizeof(self)), what);
}

/* ---- owners ------------------------------------------------------------ */

/* As chown(1) and install(1): a name is looked up first; a string of
 * digits that names no one is the id itself. (uid_t)-1 means "leave
 * unchanged" to fchown, so it is no id. */
static bool numeric_id(const char *s, unsigned long *id)
{
	if (!*s || strlen(s) > 10)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	*id = strtoul(s, NULL, 10);
	return *id < (unsigned long)(uid_t)-1;
}

static int lookup_ids(const struct vf_spec_file *f, uid_t *uid, gid_t *gid)
{
	unsigned long id;
	struct passwd *pw = getpwnam(f->owner);
	if (pw)
		*uid = pw->pw_uid;
	else if (numeric_id(f->owner, &id))
		*uid = (uid_t)id;
	else
		return vi_error("file %s: owner %s does not exist on this host", f->name, f->owner);
	struct group *gr = getgrnam(f->group);
	if (gr)
		*gid = gr->gr_gid;
	else if (numeric_id(f->group, &id))
		*gid = (gid_t)id;
	else
		return vi_error("file %s: group %s does not exist on this host", f->name, f->group);
	return 0;
}

/* ---- making the generation ----------------------------------------------- */

/* A new directory NAME beneath DIRFD, 0711 (services reach their own
 * files by name, they list nothing), opened and checked as ours. */
static int make_dir_at(int dirfd, const char *name, const char *shown, uid_t self, int *out)
{
	if (mkdirat(dirfd, name, 0700) != 0)
		return vi_error("%s: %s", shown, strerror(errno));
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vi_error("%s: %s", shown, strerror(e));
	}
	if (st.st_uid != self) {
		close(fd);
		return not_ours(self, shown, &st, "a directory");
	}
	if (fchmod(fd, 0711) != 0) {
		int e = errno;
		close(fd);
		return vi_error("%s: %s", shown, strerror(e));
	}
	*out = fd;
	return 0;
}

static int write_var(int dirfd, const char *shown, const struct vf_spec_file *f,
		     const struct vf_value *v)
{
	uid_t uid = 0;
	gid_t gid = 0;
	int status = lookup_ids(f, &uid, &gid);
	if (status)
		return status;
	int fd = vf_create_private_at(dirfd, f->name, 0600);
	if (fd < 0)
		return vi_error("%s: %s", shown, strerror(errno));
	struct vf_error err;
	if (vf_write_all(fd, v->data, v->len, shown, &err) != VF_OK)
		status = vi_fail(&err);
	/* Owner first, then the mode: chown clears setgid-like bits. */
	else if (fchown(fd, uid, gid) != 0 || fchmod(fd, (mode_t)f->mode) != 0)
		status = vi_error("%s: %s", shown, strerror(errno));
	close(fd);
	return status;
}

static int fill_generator(struct install *in, int gen_fd, const char *gen_shown, const char *root,
			  const struct vf_spec_machine *m, const struct vf_spec_generator *g,
			  const struct vf_identities *ids)
{
	char shown[PATH_MAX + 300];
	snprintf(shown, sizeof(shown), "%s/%s", gen_shown, g->name);
	int dir = -1;
	int status = make_dir_at(gen_fd, g->name, shown, in->self, &dir);
	for (size_t k = 0; !status && k < g->n_files; k++) {
		const struct vf_spec_file *f = &g->files[k];
		char file_shown[sizeof(shown) + 300];
		snprintf(file_shown, sizeof(file_shown), "%s/%s", shown, f->name);
		struct vf_value v = {0};
		status = vi_read_var(root, g->share ? NULL : m->name, g, f, ids, &v);
		if (!status)
			status = write_var(dir, file_shown, f, &v);
		vf_value_free(&v);
	}
	if (dir >= 0)
		close(dir);
	return status;
}

static int fill_generation(struct install *in, int gen_fd, const char *gen_shown)
{
	struct vf_spec spec = {0};
	struct vf_identities ids = {0};
	struct vf_error err;
	char *root = NULL;
	if (vf_vars_open(in->src.spec_path, in->src.store_opt, &spec, &root, &err) != VF_OK)
		return vi_fail(&err);
	if (vf_vars_require_store(root, &err) != VF_OK) {
		vf_spec_free(&spec);
		free(root);
		return vi_fail(&err);
	}
	const struct vf_spec_machine *m = vf_spec_machine(&spec, in->src.machine);
	const struct vf_spec_generator **gens = NULL;
	size_t n = 0;
	int status = 0;
	if (!m)
		status = vi_error("%s: no machine named %s", spec.path, in->src.machine);
	if (!status)
		status = vi_identity_from(&in->src, &ids);
	if (!status && vf_vars_machine_generators(&spec, m, &gens, &n, &err) != VF_OK)
		status = vi_fail(&err);
	for (size_t i = 0; !status && i < n; i++)
		status = fill_generator(in, gen_fd, gen_shown, root, m, gens[i], &ids);
	free(gens);
	free(root);
	vf_identities_free(&ids);
	vf_spec_free(&spec);
	return status;
}

/* ---- what is already there ------------------------------------------------- */

/* DIR's parent: opened once, safely (safedir.c), then used for everything.
 * Whoever owns it could rename what install puts there, so it must be root
 * or the user running install; the group-or-others-writable case (without
 * the sticky bit) is refused by the walk. */
static int open_parent(struct install *in)
{
	int status = vi_open_dir_path(in->parent_path, &in->parent);
	if (status)
		return status;
	struct stat st;
	char who[128];
	if (fstat(in->parent, &st) != 0)
		return vi_error("%s: %s", in->parent_path, strerror(errno));
	if (st.st_uid != 0 && st.st_uid != in->self)
		return vi_error("%s: owned by %s: they could rename or replace what install puts "
				"there (use a directory owned by root)",
				in->parent_path, vi_owner_name(st.st_uid, who, sizeof(who)));
	if (!vi_on_ram_fd(in->parent, in->parent_path) && !in->allow_persistent)
		return vi_error("%s is not on a RAM file system: secrets would reach a persistent "
				"disk (use /run/..., or --allow-persistent)",
				in->parent_path);
	return 0;
}

/* DIR: absent, or the symlink an earlier install made (ours, pointing to
 * BASE.generations/N). */
static int check_link(struct install *in)
{
	struct stat st;
	in->link_exists = false;
	if (fstatat(in->parent, in->base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : vi_error("%s: %s", in->dir, strerror(errno));
	if (!S_ISLNK(st.st_mode))
		return vi_error("%s exists and is not a symlink: varinject install manages DIR as a "
				"symlink to DIR.generations/N",
				in->dir);
	if (st.st_uid != in->self)
		return not_ours(in->self, in->dir, &st, "a symlink");
	char target[PATH_MAX];
	ssize_t n = readlinkat(in->parent, in->base, target, sizeof(target) - 1);
	if (n < 0)
		return vi_error("%s: %s", in->dir, strerror(errno));
	target[n] = '\0';
	size_t len = strlen(in->gens_name);
	unsigned long number;
	if (strncmp(target, in->gens_name, len) || target[len] != '/' ||
	    !generation_number(target + len + 1, &number))
		return vi_error("%s points to %s, not to %s/N: not a link install made", in->dir,
				target, in->gens_name);
	in->link_exists = true;
	return 0;
}

/* BASE.new-N beside DIR, the link that replaces DIR: left over from a
 * killed install it is ours and removed; anything else is refused. */
static int clear_temp_link(struct install *in, const char *temp, const char *shown)
{
	struct stat st;
	if (fstatat(in->parent, temp, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : vi_error("%s: %s", shown, strerror(errno));
	if (!S_ISLNK(st.st_mode))
		return vi_error("%s is %s, not a symlink install made", shown,
				type_name(st.st_mode));
	if (st.st_uid != in->self)
		return not_ours(in->self, shown, &st, "a symlink");
	if (unlinkat(in->parent, temp, 0) != 0)
		return vi_error("%s: %s", shown, strerror(errno));
	return 0;
}

/* DIR.generations, made now or made by an earlier install: a real
 * directory, ours, that nobody else may write. */
static int open_generations_once(struct install *in)
{
	in->made_gens = mkdirat(in->parent, in->gens_name, 0700) == 0;
	if (!in->made_gens && errno != EEXIST)
		return vi_error("%s: %s", in->gens_path, strerror(errno));
	in->gens =
		openat(in->parent, in->gens_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (in->gens < 0) {
		int e = errno;
		if (fstatat(in->parent, in->gens_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(st.st_mode))
			return vi_error("%s is %s, not a directory install made", in->gens_path,
					type_name(st.st_mode));
		return vi_error("%s: %s", in->gens_path, strerror(e));
	}
	if (fstat(in->gens, &st) != 0)
		return vi_error("%s: %s", in->gens_path, strerror(errno));
	if (st.st_uid != in->self)
		return not_ours(in->self, in->gens_path, &st, "a directory");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return vi_error("%s is writable by group or others: refusing to use a directory "
				"others may have put things in",
				in->gens_path);
	if ((st.st_mode & 07777) != 0711 && fchmod(in->gens, 0711) != 0)
		return vi_error("%s: %s", in->gens_path, strerror(errno));
	return 0;
}

/* Opens and locks DIR.generations: one install at a time, or two would
 * pick the same generation number, or remove the one the other just
 * switched to. A failed install removes the DIR.generations it made
 * (holding the lock); whoever waited for that lock then holds a removed
 * directory and starts again. */
static int open_generations(struct install *in)
{
	for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
		int status = open_generations_once(in);
		if (status)
			return status;
		if (flock(in->gens, LOCK_EX) != 0)
			return vi_error("%s: cannot lock: %s", in->gens_path, strerror(errno));
		struct stat held, named;
		if (fstat(in->gens, &held) == 0 &&
		    fstatat(in->parent, in->gens_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
		    held.st_dev == named.st_dev && held.st_ino == named.st_ino)
			return 0;
		close(in->gens);
		in->gens = -1;
		in->made_gens = false;
	}
	return vi_error("%s: removed and made again by other installs %d times, giving up",
			in->gens_path, LOCK_ATTEMPTS);
}

/* Every generation in DIR.generations must be a directory of ours, or
 * removing the old ones would remove what someone else planted (or what
 * their symlink points to). Returns the next number in in->number. */
static int check_generations(struct install *in)
{
	int list = openat(in->gens, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = list >= 0 ? fdopendir(list) : NULL;
	if (!d) {
		if (list >= 0)
			close(list);
		return vi_error("%s: %s", in->gens_path, strerror(errno));
	}
	unsigned long max = 0, n;
	int status = 0;
	struct dirent *e;
	while (!status && (e = readdir(d))) {
		if (!generation_number(e->d_name, &n))
			continue;
		char shown[sizeof(in->gens_path) + 32];
		snprintf(shown, sizeof(shown), "%s/%.20s", in->gens_path, e->d_name);
		struct stat st;
		if (fstatat(in->gens, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			status = vi_error("%s: %s", shown, strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			status = vi_error("%s is %s, not a generation install made: refusing to "
					  "remove it",
					  shown, type_name(st.st_mode));
		else if (st.st_uid != in->self)
			status = not_ours(in->self, shown, &st, "a generation");
		else if (n > max)
			max = n;
	}
	closedir(d);
	if (!status && max == ULONG_MAX)
		status = vi_error("%s: no generation number left", in->gens_path);
	in->number = max + 1;
	return status;
}

/* ---- switching and cleaning up --------------------------------------------- */

/* DIR -> BASE.generations/N, replaced in one rename, relative to the
 * parent's descriptor. A first install must not replace a DIR that
 * appeared meanwhile. */
static int switch_link(struct install *in)
{
	char target[NAME_MAX + 32], temp[NAME_MAX + 32], shown[PATH_MAX + 32];
	snprintf(target, sizeof(target), "%s/%lu", in->gens_name, in->number);
	snprintf(temp, sizeof(temp), "%s.new-%lu", in->base, in->number);
	snprintf(shown, sizeof(shown), "%s.new-%lu", in->dir, in->number);
	int status = check_link(in);
	if (!status)
		status = clear_temp_link(in, temp, shown);
	if (status)
		return status;
	if (symlinkat(target, in->parent, temp) != 0)
		return vi_error("%s: %s", shown, strerror(errno));
	int rc = renameat2(in->parent, temp, in->parent, in->base,
			   in->link_exists ? 0 : RENAME_NOREPLACE);
	if (rc != 0 && errno == EINVAL && !in->link_exists) {
		/* A file system without RENAME_NOREPLACE: link(2) never
		 * replaces either. */
		rc = linkat(in->parent, temp, in->parent, in->base, 0);
		if (rc == 0)
			unlinkat(in->parent, temp, 0);
	}
	if (rc != 0) {
		int e = errno;
		unlinkat(in->parent, temp, 0);
		return e == EEXIST ? vi_error("%s appeared during the install: not replacing it",
					      in->dir)
				   : vi_error("%s: %s", in->dir, strerror(e));
	}
	return 0;
}

/* Directory levels removed: generations are three deep; anything deeper
 * is not a tree install made. */
#define GENERATION_MAX_DEPTH 16

/* A generation and what is in it, entering only directories install's
 * user owns: one that is not was put there by someone else, and from
 * there a planted symlink or directory could lead root's removal to what
 * is not install's. Returns 0, or -1 with errno (EPERM, ELOOP, ...). */
static int remove_generation(const struct install *in, const char *name)
{
	const struct vf_tree_opts o = {
		.check_owner = true,
		.owner = in->self,
		.max_depth = GENERATION_MAX_DEPTH,
	};
	return vf_tree_remove_at(in->gens, name, &o);
}

static void remove_old(struct install *in)
{
	int list = openat(in->gens, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = list >= 0 ? fdopendir(list) : NULL;
	if (!d) {
		if (list >= 0)
			close(list);
		vi_warn("%s: old generations not removed: %s", in->gens_path, strerror(errno));
		return;
	}
	struct dirent *e;
	unsigned long n;
	while ((e = readdir(d))) {
		if (!generation_number(e->d_name, &n) || n == in->number)
			continue;
		if (remove_generation(in, e->d_name) != 0)
			vi_warn("%s/%s: old generation not removed: %s", in->gens_path, e->d_name,
				strerror(errno));
	}
	closedir(d);
}

/* A failed install leaves what it found: its own generation goes, and
 * DIR.generations too if this run made it (it is empty then, unless
 * another install already uses it: rmdir leaves it). */
static void undo(struct install *in, bool made_generation)
{
	char number[32];
	snprintf(number, sizeof(number), "%lu", in->number);
	if (made_generation && in->gens >= 0 && remove_generation(in, number) != 0)
		vi_warn("%s/%s: not removed: %s", in->gens_path, number, strerror(errno));
	if (in->made_gens && in->parent >= 0)
		unlinkat(in->parent, in->gens_name, AT_REMOVEDIR);
}

static int install_generation(struct install *in)
{
	char number[32], shown[sizeof(in->gens_path) + 32];
	int status = open_parent(in);
	if (!status)
		status = check_link(in); /* before making anything */
	if (!status)
		status = open_generations(in);
	if (!status)
		status = check_link(in); /* again, now that no install runs beside us */
	if (!status)
		status = check_generations(in);
	if (status) {
		undo(in, false);
		return status;
	}
	snprintf(number, sizeof(number), "%lu", in->number);
	snprintf(shown, sizeof(shown), "%s/%s", in->gens_path, number);
	int gen = -1;
	status = make_dir_at(in->gens, number, shown, in->self, &gen);
	if (status) {
		undo(in, false);
		return status;
	}
	status = fill_generation(in, gen, shown);
	close(gen);
	if (!status)
		status = switch_link(in);
	if (status) {
		undo(in, true); /* nothing half-made stays */
		return status;
	}
	remove_old(in);
	return 0;
}

int vi_install(int argc, char **argv)
{
	static const struct option opts[] = {
		VI_STORE_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct install in = {.parent = -1, .gens = -1};
	int c;
	while ((c = getopt_long(argc, argv, "f:m:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': in.src.spec_path = optarg; break;
		case OPT_STORE: in.src.store_opt = optarg; break;
		case 'm': in.src.machine = optarg; break;
		case 'i': in.src.identity_file = optarg; break;
		case OPT_IDENTITY_CREDENTIAL: in.src.identity_credential = optarg; break;
		case OPT_INSECURE_PERMISSIONS: in.src.insecure = true; break;
		case OPT_PASSPHRASE_FILE: in.src.passphrase_file = optarg; break;
		case OPT_ALLOW_PERSISTENT: in.allow_persistent = true; break;
		case 'h': vf_help_print(stdout, &help); return 0;
		default: fprintf(stderr, "Usage: %s\n", usage); return 2;
		}
	}
	if (argc - optind != 1 || !in.src.machine) {
		fprintf(stderr, "Usage: %s\n", usage);
		return 2;
	}
	in.self = geteuid();
	int status = split_target(&in, argv[optind]);
	if (!status)
		status = install_generation(&in);
	if (!status)
		printf("installed %s's secrets in %s (generation %lu)\n", in.src.machine, in.dir,
		       in.number);
	if (in.gens >= 0)
		close(in.gens); /* and with it the lock */
	if (in.parent >= 0)
		close(in.parent);
	return status;
}
