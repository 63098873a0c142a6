/* varinject install --machine M -i IDENTITY DIR: the machine's secrets as
 * files DIR/<generator>/<file> with the spec's owner, group and mode, for
 * hosts that consume them directly. A complete new set goes into a new
 * generation directory and DIR, a symlink, is switched to it with one
 * rename (as sops-nix does), so readers see the old set or the new one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "secmem.h"
#include "store.h"
#include "varinject.h"

static const char usage[] = "varinject install [-f SPEC] [--store DIR] --machine M -i IDENTITY "
			    "[--allow-persistent] DIR";

struct install {
	struct vi_store_source src;
	bool allow_persistent;
	const char *dir;
	char generations[4096]; /* DIR.generations */
	unsigned long number;	/* the new generation */
};

/* a/b into out; an over-long path is an error, never a truncation. */
static int join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= cap)
		return vi_error("path too long: %s/%s", a, b);
	return 0;
}

static int lookup_ids(const struct vf_spec_file *f, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(f->owner);
	if (!pw)
		return vi_error("file %s: owner %s does not exist on this host", f->name, f->owner);
	struct group *gr = getgrnam(f->group);
	if (!gr)
		return vi_error("file %s: group %s does not exist on this host", f->name, f->group);
	*uid = pw->pw_uid;
	*gid = gr->gr_gid;
	return 0;
}

static int write_var(const char *path, const struct vf_spec_file *f, const struct vf_value *v)
{
	uid_t uid = 0;
	gid_t gid = 0;
	int status = lookup_ids(f, &uid, &gid);
	if (status)
		return status;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return vi_error("%s: %s", path, strerror(errno));
	struct vf_error err;
	if (vf_write_all(fd, v->data, v->len, path, &err) != VF_OK)
		status = vi_fail(&err);
	/* Owner first, then the mode: chown clears setgid-like bits. */
	else if (fchown(fd, uid, gid) != 0 || fchmod(fd, (mode_t)f->mode) != 0)
		status = vi_error("%s: %s", path, strerror(errno));
	close(fd);
	return status;
}

/* The next generation number: one above the highest present. */
static unsigned long next_generation(const char *generations)
{
	unsigned long max = 0;
	DIR *d = opendir(generations);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char *end;
		unsigned long n = strtoul(e->d_name, &end, 10);
		if (!*end && e->d_name[0] != '\0' && n > max)
			max = n;
	}
	if (d)
		closedir(d);
	return max + 1;
}

static int make_dir(const char *path)
{
	/* 0711: services can reach their own files by name, not list them. */
	if (mkdir(path, 0711) != 0 && errno != EEXIST)
		return vi_error("%s: %s", path, strerror(errno));
	if (chmod(path, 0711) != 0)
		return vi_error("%s: %s", path, strerror(errno));
	return 0;
}

static int fill_generation(struct install *in, const char *gen_dir)
{
	struct vf_spec spec = {0};
	struct vf_identities ids = {0};
	struct vf_error err;
	const char *spec_path = in->src.spec_path ? in->src.spec_path : "vars.yaml";
	if (vf_spec_load(spec_path, &spec, &err) != VF_OK)
		return vi_fail(&err);
	char *copy = strdup(spec_path);
	char *root = in->src.store_opt ? strdup(in->src.store_opt)
				       : (copy ? strdup(dirname(copy)) : NULL);
	free(copy);
	const struct vf_spec_machine *m = vf_spec_machine(&spec, in->src.machine);
	const struct vf_spec_generator **gens = NULL;
	size_t n = 0;
	int status = root ? 0 : vi_error("out of memory");
	if (!status && !m)
		status = vi_error("%s: no machine named %s", spec_path, in->src.machine);
	if (!status)
		status = vi_identity_from(&in->src, &ids);
	if (!status && vf_vars_machine_generators(&spec, m, &gens, &n, &err) != VF_OK)
		status = vi_fail(&err);
	for (size_t i = 0; !status && i < n; i++) {
		char dir[4096];
		status = join(dir, sizeof(dir), gen_dir, gens[i]->name);
		if (!status)
			status = make_dir(dir);
		for (size_t k = 0; !status && k < gens[i]->n_files; k++) {
			const struct vf_spec_file *f = &gens[i]->files[k];
			struct vf_value v = {0};
			char path[4200];
			status = join(path, sizeof(path), dir, f->name);
			if (!status)
				status = vi_read_var(root, gens[i]->share ? NULL : m->name, gens[i], f, &ids, &v);
			if (!status)
				status = write_var(path, f, &v);
			vf_value_free(&v);
		}
	}
	free(gens);
	free(root);
	vf_identities_free(&ids);
	vf_spec_free(&spec);
	return status;
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char child[4096];
		struct stat st;
		if (join(child, sizeof(child), path, e->d_name))
			continue;
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(child);
		else
			unlink(child);
	}
	if (d)
		closedir(d);
	rmdir(path);
}

/* DIR -> DIR.generations/N, replaced in one rename. */
static int switch_link(struct install *in)
{
	char target[4200], temp[4200];
	char *copy = strdup(in->dir);
	if (!copy)
		return vi_error("out of memory");
	snprintf(target, sizeof(target), "%s.generations/%lu", basename(copy), in->number);
	free(copy);
	snprintf(temp, sizeof(temp), "%s.new-%lu", in->dir, in->number);
	unlink(temp);
	if (symlink(target, temp) != 0)
		return vi_error("%s: %s", temp, strerror(errno));
	if (rename(temp, in->dir) != 0) {
		int e = errno;
		unlink(temp);
		return vi_error("%s: %s", in->dir, strerror(e));
	}
	return 0;
}

static void remove_old(struct install *in)
{
	DIR *d = opendir(in->generations);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char *end;
		unsigned long n = strtoul(e->d_name, &end, 10);
		if (*end || !e->d_name[0] || n == in->number)
			continue;
		char path[4200];
		if (!join(path, sizeof(path), in->generations, e->d_name))
			remove_tree(path);
	}
	if (d)
		closedir(d);
}

static int check_target(struct install *in)
{
	struct stat st;
	if (lstat(in->dir, &st) == 0 && !S_ISLNK(st.st_mode))
		return vi_error("%s exists and is not a symlink: varinject install manages DIR as a "
				"symlink to DIR.generations/N",
				in->dir);
	char *copy = strdup(in->dir);
	if (!copy)
		return vi_error("out of memory");
	const char *parent = dirname(copy);
	int status = 0;
	struct stat pst;
	if (stat(parent, &pst) != 0 || !S_ISDIR(pst.st_mode))
		status = vi_error("%s: %s", parent,
				  errno == ENOENT ? "no such directory" : "not a directory");
	else if (!vi_on_ram(parent) && !in->allow_persistent)
		status = vi_error("%s is not on a RAM file system: secrets would reach a persistent "
				  "disk (use /run/..., or --allow-persistent)",
				  parent);
	free(copy);
	snprintf(in->generations, sizeof(in->generations), "%s.generations", in->dir);
	return status;
}

int vi_install(int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, 'S'},
		{"machine", required_argument, NULL, 'm'},
		{"identity", required_argument, NULL, 'i'},
		{"identity-credential", required_argument, NULL, 'I'},
		{"insecure-permissions", no_argument, NULL, 'P'},
		{"passphrase-file", required_argument, NULL, 'F'},
		{"allow-persistent", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct install in = {0};
	int c;
	while ((c = getopt_long(argc, argv, "f:m:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': in.src.spec_path = optarg; break;
		case 'S': in.src.store_opt = optarg; break;
		case 'm': in.src.machine = optarg; break;
		case 'i': in.src.identity_file = optarg; break;
		case 'I': in.src.identity_credential = optarg; break;
		case 'P': in.src.insecure = true; break;
		case 'F': in.src.passphrase_file = optarg; break;
		case 'A': in.allow_persistent = true; break;
		case 'h': printf("Usage: %s\n", usage); return 0;
		default: fprintf(stderr, "Usage: %s\n", usage); return 2;
		}
	}
	if (argc - optind != 1 || !in.src.machine) {
		fprintf(stderr, "Usage: %s\n", usage);
		return 2;
	}
	in.dir = argv[optind];
	int status = check_target(&in);
	if (!status)
		status = make_dir(in.generations);
	/* One install at a time: two would pick the same generation number,
	 * or remove the one the other just switched to. */
	int lock = status ? -1 : open(in.generations, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!status && (lock < 0 || flock(lock, LOCK_EX) != 0))
		status = vi_error("%s: cannot lock: %s", in.generations, strerror(errno));
	char gen_dir[4300], number[32];
	if (!status) {
		in.number = next_generation(in.generations);
		snprintf(number, sizeof(number), "%lu", in.number);
		status = join(gen_dir, sizeof(gen_dir), in.generations, number);
		if (!status)
			status = make_dir(gen_dir);
		if (!status)
			status = fill_generation(&in, gen_dir);
		if (status)
			remove_tree(gen_dir); /* nothing half-made stays */
	}
	if (!status)
		status = switch_link(&in);
	if (!status) {
		remove_old(&in);
		printf("installed %s's secrets in %s (generation %lu)\n", in.src.machine, in.dir,
		       in.number);
	}
	if (lock >= 0)
		close(lock);
	return status;
}
