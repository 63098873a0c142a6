/* vargen import clan DIR: a clan repository's vars and secrets become a
 * new spec and store of ours, in one step that either completes or leaves
 * nothing. What maps to what: ../docs/import.md.
 *
 * 1. The repository is read without a key (import_clan.c): admins,
 *    machines, generators, every file's metadata. --plan stops here.
 * 2. Every secret is decrypted (the machines' kept keys first, which then
 *    open their machines' files too), its MAC checked, into guarded
 *    memory. A failure here has written nothing.
 * 3. The new spec's text is made and read back with the spec parser, then
 *    written beside its place and synced; the store's directory is made
 *    (refused if it exists), every value sealed and staged, the machines'
 *    keys sealed to the admins, all in one store transaction; then the
 *    spec is renamed into place (refused if one appeared meanwhile). A
 *    failure after the directory was made removes the new store whole. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/parallel.h"
#include "base/secmem.h"
#include "base/tree.h"
#include "import.h"
#include "vars/machine_key.h"
#include "vars/spec_add.h"
#include "vars/spec_write.h"
#include "vars/store.h"

static const char usage[] =
	"vargen import clan DIR [-f SPEC] [--store DIR] [-i IDENTITY]... [--plan] [--ignore-mac]\n"
	"                [--insecure-permissions] [--passphrase-file FILE]";
static const struct vf_help_row help_rows[] = {
	{"-f, --file", "SPEC", "the spec to write (default: $VARS_SPEC, else ./vars.yaml); must "
			       "not exist"},
	{"--store", "DIR", "the new store's root, for DIR/vars (default: the spec's directory)"},
	{"-i, --identity", "FILE", "an admin's identity (or a machine's): opens the secrets; "
				   "repeatable"},
	{"--plan", NULL, "list each admin, machine, generator and file to import; needs no key"},
	{"--ignore-mac", NULL, "import a secret whose SOPS MAC does not verify, with a warning"},
	{"--insecure-permissions", NULL, "read identity files that group or others may read"},
	{"--passphrase-file", "FILE", "the passphrase of passphrase-protected identity files, "
				      "read from FILE"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Imports a clan repository's vars/ and sops/ trees (DIR) into a new spec and store:\n"
	"the same admins, machines, generators and values, each secret decrypted, its MAC\n"
	"checked and sealed anew, all or nothing. docs/import.md says what maps to what.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

struct import {
	const char *dir;
	const char *spec_path;
	const char *store_opt;
	char *root;
	bool plan, ignore_mac, insecure;
	const char *passphrase_file;
	struct vf_strings identity_files;
	struct vf_identities ids;
	struct vg_clan clan;
	char *text; /* the new spec */
	size_t text_len;
	struct vf_spec spec;
	bool have_spec;
	/* Writing */
	int root_fd, lock_fd;
	bool made_store;
	struct vf_txn txn;
	struct vf_error job_err;
	int job_failed;
};

/* ---- options ---------------------------------------------------------------- */

static int parse(int argc, char **argv, struct import *im)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, OPT_STORE},
		{"identity", required_argument, NULL, 'i'},
		{"plan", no_argument, NULL, OPT_PLAN},
		{"ignore-mac", no_argument, NULL, OPT_IGNORE_MAC},
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "f:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': im->spec_path = optarg; break;
		case OPT_STORE: im->store_opt = optarg; break;
		case 'i':
			if (vf_strings_add(&im->identity_files, optarg, NULL) != VF_OK)
				return vg_error("out of memory");
			break;
		case OPT_PLAN: im->plan = true; break;
		case OPT_IGNORE_MAC: im->ignore_mac = true; break;
		case OPT_INSECURE_PERMISSIONS: im->insecure = true; break;
		case OPT_PASSPHRASE_FILE: im->passphrase_file = optarg; break;
		case 'h': vf_help_print(stdout, &help); return -1;
		default: return vg_usage(usage);
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "clan"))
		return vg_usage(usage);
	im->dir = argv[optind + 1];
	if (!im->spec_path) {
		const char *env = getenv("VARS_SPEC");
		im->spec_path = env && *env ? env : VF_VARS_SPEC_DEFAULT;
	}
	if (im->store_opt)
		im->root = strdup(im->store_opt);
	else {
		char *copy = strdup(im->spec_path);
		im->root = copy ? strdup(dirname(copy)) : NULL;
		free(copy);
	}
	return im->root ? 0 : vg_error("out of memory");
}

/* The import writes a new spec and a new store, never over old ones. */
static int refuse_existing(const struct import *im)
{
	struct stat st;
	if (lstat(im->spec_path, &st) == 0)
		return vg_error("%s exists: vargen import clan writes a new spec (give -f with a new "
				"file, or move it away)",
				im->spec_path);
	char vars[4096];
	snprintf(vars, sizeof(vars), "%s/vars", im->root);
	if (lstat(vars, &st) == 0)
		return vg_error("%s exists: vargen import clan writes a new store (give --store with "
				"another directory, or move it away)",
				vars);
	return 0;
}

/* ---- the plan ----------------------------------------------------------------- */

static const char *owner_of(const struct vg_imp_file *f)
{
	return f->owner ? f->owner : "shared";
}

/* What the files are refused for before any key is tried: Shamir key
 * groups, no age recipient (the reader's messages). */
static int check_key_types(const struct vf_sops_file *f)
{
	uint8_t *key = vf_scratch_alloc(VF_SOPS_DATA_KEY_LEN);
	if (!key)
		return vg_error("out of memory");
	struct vf_error err;
	enum vf_code rc = vf_sops_data_key(f, NULL, key, &err);
	vf_scratch_free(key, VF_SOPS_DATA_KEY_LEN);
	return rc == VF_E_NO_MATCH ? 0 : vg_fail(&err);
}

static void plan_generator(const struct vg_clan *c, const struct vg_imp_gen *g)
{
	char users[2048] = "";
	size_t at = 0;
	for (size_t i = 0; i < c->n_machines && at < sizeof(users); i++)
		if (vf_strings_has(&c->machines[i].generators, g->name))
			at += (size_t)snprintf(users + at, sizeof(users) - at, "%s%s", at ? ", " : "",
					       c->machines[i].name);
	printf("add\tgenerators/%s\timported: clan, %zu file%s, %s: %s\n", g->name, g->files.n,
	       g->files.n == 1 ? "" : "s",
	       g->legacy ? "a secret of sops/secrets, shared by" : g->share ? "shared by"
									 : "per machine",
	       at ? users : "no machine yet (kept for the admins)");
}

static int print_plan(const struct import *im)
{
	const struct vg_clan *c = &im->clan;
	for (size_t i = 0; i < c->n_admins; i++)
		printf("add\tadmins/%s\t%s, from %s/%s\n", c->admins[i].name, c->admins[i].recipient,
		       c->dir, c->admins[i].path);
	for (size_t i = 0; i < c->n_machines; i++) {
		const struct vg_imp_machine *m = &c->machines[i];
		if (m->key)
			printf("add\tmachines/%s\tkey %s, from %s/%s\n", m->name, m->key, c->dir,
			       m->key_path);
		else if (m->keys.n)
			printf("add\tmachines/%s\tkey: the one of %zu in %s/%s that its kept key is\n",
			       m->name, m->keys.n, c->dir, m->key_path);
		else
			printf("add\tmachines/%s\tno key (no sops/machines/%s/key.json)\n", m->name,
			       m->name);
	}
	for (size_t i = 0; i < c->n_gens; i++)
		plan_generator(c, &c->gens[i]);
	for (size_t i = 0; i < c->n_keys; i++)
		printf("import\tmachine-keys/%s\tkept key, from %s\n", c->keys[i].machine,
		       c->keys[i].path);
	size_t secrets = 0;
	for (size_t i = 0; i < c->n_files; i++) {
		const struct vg_imp_file *f = &c->files[i];
		secrets += f->secret;
		printf("import\t%s/%s/%s\t%s, from %s\n", owner_of(f), f->generator, f->name,
		       f->secret ? "secret" : "value", f->path);
	}
	printf("plan: %zu admin%s, %zu machine%s, %zu generator%s, %zu file%s (%zu secret%s) and "
	       "%zu machine key%s to import into %s and %s/vars; nothing written\n",
	       c->n_admins, c->n_admins == 1 ? "" : "s", c->n_machines,
	       c->n_machines == 1 ? "" : "s", c->n_gens, c->n_gens == 1 ? "" : "s", c->n_files,
	       c->n_files == 1 ? "" : "s", secrets, secrets == 1 ? "" : "s", c->n_keys,
	       c->n_keys == 1 ? "" : "s", im->spec_path, im->root);
	return VF_EXIT_ATTENTION;
}

/* ---- decrypting ----------------------------------------------------------------- */

static int load_identities(struct import *im)
{
	struct vf_error err;
	if (im->identity_files.n == 0)
		return vg_error("no identity given: pass -i with an admin's identity file (--plan "
				"needs none)");
	for (size_t i = 0; i < im->identity_files.n; i++)
		if (vf_load_identities(im->identity_files.items[i], true, im->insecure,
				       im->passphrase_file, &im->ids, &err) != VF_OK)
			return vg_fail(&err);
	return 0;
}

static void mac_warning(const struct vf_sops_plain *p, const char *path)
{
	if (!p->mac_verified)
		fprintf(stderr, "vargen: warning: %s: MAC does not verify; imported anyway "
				"(--ignore-mac)\n",
			path);
}

/* With ids, or else (no identity of ids opens the data key) with the kept
 * keys of the machines that may: the file's owner, or the machines a
 * shared generator is used by. Only those are tried, not every machine's:
 * each identity costs an X25519 per stanza. */
static int decrypt(struct import *im, const struct vf_sops_file *f, const char *path,
		   const struct vg_imp_file *file, struct vf_sops_plain *out)
{
	struct vf_error err, other;
	unsigned flags = im->ignore_mac ? VF_SOPS_IGNORE_MAC : 0;
	enum vf_code rc = vf_sops_decrypt(f, &im->ids, flags, out, &err);
	struct vg_clan *c = &im->clan;
	const struct vg_imp_gen *g = file ? vg_clan_gen(c, file->generator) : NULL;
	for (size_t i = 0; rc == VF_E_NO_MATCH && g && i < c->n_machines; i++) {
		const struct vg_imp_machine *m = &c->machines[i];
		bool may = file->owner ? !strcmp(file->owner, m->name)
				       : vf_strings_has(&m->generators, g->name);
		if (!may || !m->kept || !m->kept->ids.n)
			continue;
		vf_sops_plain_free(out);
		enum vf_code again = vf_sops_decrypt(f, &m->kept->ids, flags, out, &other);
		if (again != VF_E_NO_MATCH) {
			rc = again;
			err = other;
		}
	}
	if (rc != VF_OK)
		return vg_fail(&err);
	mac_warning(out, path);
	if (out->n != 1)
		return vg_error("%s: %zu values (expected clan's one, in sops's binary form)", path,
				out->n);
	return 0;
}

/* A machine's kept key: one age identity, whose recipient is the one
 * key.json lists (of several, the one it picks); it then opens the
 * machine's files as well. */
static int open_kept_key(struct import *im, struct vg_imp_key *k)
{
	struct vg_imp_machine *m = vg_clan_machine(&im->clan, k->machine);
	int status = decrypt(im, k->sops, k->path, NULL, &k->plain);
	if (status)
		return status;
	struct vf_identities one = {0};
	struct vf_error err;
	char *recipient = NULL;
	const struct vf_sops_value *v = &k->plain.values[0];
	if (vf_identities_parse((const char *)v->data, v->len, k->path, &one, &err) != VF_OK)
		status = vg_fail(&err);
	else if (one.n != 1 || !vf_is_native_identity(one.items[0]))
		status = vg_error("%s: not one age identity", k->path);
	else if (vf_identity_recipient(one.items[0], &recipient, &err) != VF_OK)
		status = vg_fail(&err);
	else if (m->keys.n && !vf_strings_has(&m->keys, recipient))
		status = vg_error("%s holds the key %s, which %s/%s does not list", k->path, recipient,
				  im->clan.dir, m->key_path);
	else if (!m->key && !(m->key = strdup(recipient)))
		status = vg_error("out of memory");
	else if (vf_identities_add(&k->ids, one.items[0], &err) != VF_OK)
		status = vg_fail(&err);
	else
		one.n = 0; /* now k->ids's */
	free(recipient);
	vf_identities_free(&one);
	return status;
}

static int decrypt_all(struct import *im)
{
	struct vg_clan *c = &im->clan;
	int status = 0;
	for (size_t i = 0; !status && i < c->n_keys; i++)
		status = open_kept_key(im, &c->keys[i]);
	for (size_t i = 0; !status && i < c->n_files; i++)
		if (c->files[i].secret)
			status = decrypt(im, c->files[i].sops, c->files[i].path, &c->files[i],
					 &c->files[i].plain);
	return status;
}

/* ---- the new spec ---------------------------------------------------------------- */

static enum vf_code spec_text(struct import *im, struct vf_buf *b, struct vf_error *err)
{
	const struct vg_clan *c = &im->clan;
	enum vf_code rc = vf_buf_append_str(b, "# Imported from a clan repository by vargen import "
					       "clan: the values as they were\n# (imported: clan). "
					       "The Nix code that made them is not carried over\n# "
					       "(docs/import.md).\nadmins:\n",
					    err);
	for (size_t i = 0; rc == VF_OK && i < c->n_admins; i++) {
		rc = vf_buf_append_str(b, "  ", err);
		if (rc == VF_OK)
			rc = vf_spec_yaml_name(b, c->admins[i].name, err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(b, ": ", err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(b, c->admins[i].recipient, err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(b, "\n", err);
	}
	if (rc == VF_OK)
		rc = vf_buf_append_str(b, "machines:\n", err);
	for (size_t i = 0; rc == VF_OK && i < c->n_machines; i++) {
		const struct vg_imp_machine *m = &c->machines[i];
		rc = vf_buf_append_str(b, "  ", err);
		if (rc == VF_OK)
			rc = vf_spec_yaml_name(b, m->name, err);
		if (rc == VF_OK)
			rc = vf_buf_append_str(b, ":\n", err);
		if (rc == VF_OK && m->key && (rc = vf_buf_append_str(b, "    key: ", err)) == VF_OK &&
		    (rc = vf_buf_append_str(b, m->key, err)) == VF_OK)
			rc = vf_buf_append_str(b, "\n", err);
		if (rc == VF_OK && m->generators.n)
			rc = vf_buf_append_str(b, "    generators: [", err);
		for (size_t g = 0; rc == VF_OK && g < m->generators.n; g++) {
			if (g)
				rc = vf_buf_append_str(b, ", ", err);
			if (rc == VF_OK)
				rc = vf_spec_yaml_name(b, m->generators.items[g], err);
		}
		if (rc == VF_OK && m->generators.n)
			rc = vf_buf_append_str(b, "]\n", err);
	}
	if (rc == VF_OK)
		rc = vf_buf_append_str(b, "generators:\n", err);
	for (size_t i = 0; rc == VF_OK && i < c->n_gens; i++) {
		const struct vg_imp_gen *g = &c->gens[i];
		struct vf_spec_new_file *files = calloc(g->files.n + 1, sizeof(*files));
		if (!files)
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		for (size_t f = 0; f < g->files.n; f++)
			files[f] = (struct vf_spec_new_file){g->files.items[f], g->secret[f]};
		const struct vf_spec_new_generator ng = {g->name, g->share, VF_IMPORTED_CLAN, files,
							 g->files.n};
		rc = vf_spec_generator_yaml(&ng, 2, b, err);
		free(files);
	}
	return rc;
}

static int make_spec(struct import *im)
{
	struct vf_buf b;
	vf_buf_init(&b);
	struct vf_error err;
	int status = 0;
	if (spec_text(im, &b, &err) != VF_OK)
		status = vg_fail(&err);
	if (!status && !(im->text = strndup((const char *)b.data, b.len)))
		status = vg_error("out of memory");
	im->text_len = b.len;
	vf_buf_free(&b);
	if (!status && vf_spec_parse(im->spec_path, im->text, im->text_len, &im->spec, &err) !=
			       VF_OK)
		status = vg_error("the new spec does not read back (%s)", err.msg);
	im->have_spec = !status;
	return status;
}

/* ---- writing ---------------------------------------------------------------------- */

/* ROOT/vars, made here or refused: a store that appeared meanwhile is not
 * written into (or removed after a failure). */
static int make_store(struct import *im)
{
	struct vf_error err;
	if (vf_mkdirs(im->root, &err) != VF_OK)
		return vg_fail(&err);
	im->root_fd = open(im->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im->root_fd < 0)
		return vg_error("%s: %s", im->root, strerror(errno));
	if (mkdirat(im->root_fd, "vars", 0700) != 0)
		return vg_error("%s/vars: %s", im->root,
				errno == EEXIST ? "exists: vargen import clan writes a new store"
						: strerror(errno));
	im->made_store = true;
	fprintf(stderr, "vargen: creating a new store at %s/vars\n", im->root);
	return vf_store_lock(im->root, &im->lock_fd, &err) == VF_OK ? 0 : vg_fail(&err);
}

static void remove_store(struct import *im)
{
	vf_txn_abort(&im->txn);
	if (!im->made_store)
		return;
	const struct vf_tree_opts o = {.one_fs = true, .max_depth = 16};
	vf_tree_remove_at(im->root_fd, "vars", &o);
	fsync(im->root_fd);
	im->made_store = false;
}

static int stage_job(void *ctx, size_t i)
{
	struct import *im = ctx;
	const struct vg_imp_file *f = &im->clan.files[i];
	const struct vf_spec_generator *g = vf_spec_generator(&im->spec, f->generator);
	const struct vf_spec_file *sf = g ? vf_spec_file(g, f->name) : NULL;
	struct vf_strings recipients = {0};
	struct vf_error err;
	enum vf_code rc = sf ? VF_OK : vf_fail(&err, VF_E_ARG, "%s: not in the new spec", f->path);
	if (rc == VF_OK && f->secret)
		rc = vf_vars_recipients(&im->spec, g->share ? NULL : f->owner, g, &recipients, &err);
	/* The values stay where they are (guarded, or public): not copied. */
	struct vf_value v = f->secret ? (struct vf_value){(uint8_t *)f->plain.values[0].data,
							  f->plain.values[0].len, true}
				      : (struct vf_value){f->value, f->value_len, true};
	if (rc == VF_OK)
		rc = vf_vars_stage_file(&im->txn, im->root, g->share ? NULL : f->owner, g, sf,
					&recipients, &v, &err);
	vf_strings_free(&recipients);
	if (rc == VF_OK)
		return 0;
	if (!__atomic_exchange_n(&im->job_failed, 1, __ATOMIC_SEQ_CST))
		im->job_err = err;
	return 1;
}

/* The records of each (owner, generator) once all its files are staged. */
static int stage_records(struct import *im)
{
	const struct vg_clan *c = &im->clan;
	struct vf_error err;
	/* The files are in order of owner and generator (vg_clan_read). */
	for (size_t i = 0; i < c->n_files; i++) {
		const struct vg_imp_file *f = &c->files[i];
		bool first = i == 0 || strcmp(c->files[i - 1].generator, f->generator) ||
			     strcmp(owner_of(&c->files[i - 1]), owner_of(f));
		const struct vf_spec_generator *g = vf_spec_generator(&im->spec, f->generator);
		if (first && vf_vars_stage_hash(&im->txn, im->root, g->share ? NULL : f->owner, g,
						&err) != VF_OK)
			return vg_fail(&err);
	}
	return 0;
}

/* Each kept key, sealed to the admins, recorded as keygen records one. */
static int stage_keys(struct import *im)
{
	struct vf_strings admins = {0};
	struct vf_error err;
	char *manifest = NULL;
	size_t manifest_len = 0;
	int status = 0;
	for (size_t a = 0; !status && a < im->spec.n_admins; a++)
		if (!vf_strings_has(&admins, im->spec.admins[a].recipient) &&
		    vf_strings_add(&admins, im->spec.admins[a].recipient, &err) != VF_OK)
			status = vg_fail(&err);
	if (!status && vf_manifest_format(admins.items, admins.n, &manifest, &manifest_len, &err) !=
			       VF_OK)
		status = vg_fail(&err);
	for (size_t i = 0; !status && i < im->clan.n_keys; i++) {
		const struct vg_imp_key *k = &im->clan.keys[i];
		const struct vg_imp_machine *m = vg_clan_machine(&im->clan, k->machine);
		struct vf_buf sealed;
		vf_buf_init(&sealed);
		if (vf_seal(&admins, k->plain.values[0].data, k->plain.values[0].len, &sealed, &err) !=
			    VF_OK ||
		    vf_machine_key_stage(&im->txn, im->root, m->name, m->key, sealed.data, sealed.len,
					 manifest, manifest_len, &err) != VF_OK)
			status = vg_fail(&err);
		vf_buf_free(&sealed);
	}
	free(manifest);
	vf_strings_free(&admins);
	return status;
}

static int write_all(struct import *im)
{
	struct vf_spec_write w;
	struct vf_error err;
	memset(&w, 0, sizeof(w));
	char *text = strndup(im->text, im->text_len);
	int status = text ? 0 : vg_error("out of memory");
	if (!status && vf_spec_write_begin(&w, im->spec_path, text, im->text_len, &err) != VF_OK)
		status = vg_error("%s: cannot write the spec (%s); nothing was written", im->spec_path,
				  err.msg);
	if (!status)
		status = make_store(im);
	if (!status && vf_parallel_for(im->clan.n_files, stage_job, im))
		status = vg_fail(&im->job_err);
	if (!status)
		status = stage_records(im);
	if (!status)
		status = stage_keys(im);
	if (!status && vf_txn_commit(&im->txn, &err) != VF_OK)
		status = vg_fail(&err);
	bool landed = false;
	if (!status && vf_spec_write_commit(&w, false, &landed, &err) != VF_OK && !landed)
		status = vg_error("%s: %s; the new store is removed again", im->spec_path, err.msg);
	if (status)
		remove_store(im);
	vf_spec_write_abort(&w);
	return status;
}

static void report(const struct import *im)
{
	const struct vg_clan *c = &im->clan;
	for (size_t i = 0; i < c->n_keys; i++)
		printf("imported machine-keys/%s\n", c->keys[i].machine);
	for (size_t i = 0; i < c->n_files; i++) {
		const struct vg_imp_file *f = &c->files[i];
		bool first = i == 0 || strcmp(c->files[i - 1].generator, f->generator) ||
			     strcmp(owner_of(&c->files[i - 1]), owner_of(f));
		if (first)
			printf("%simported %s/%s:", i ? "\n" : "", owner_of(f), f->generator);
		printf(" %s", f->name);
	}
	if (c->n_files)
		printf("\n");
	printf("import: %zu admin%s, %zu machine%s, %zu generator%s, %zu file%s and %zu machine "
	       "key%s into %s and %s/vars; vargen check verifies them\n",
	       c->n_admins, c->n_admins == 1 ? "" : "s", c->n_machines,
	       c->n_machines == 1 ? "" : "s", c->n_gens, c->n_gens == 1 ? "" : "s", c->n_files,
	       c->n_files == 1 ? "" : "s", c->n_keys, c->n_keys == 1 ? "" : "s", im->spec_path,
	       im->root);
}

static void free_import(struct import *im)
{
	vf_txn_abort(&im->txn);
	if (im->lock_fd >= 0)
		close(im->lock_fd);
	if (im->root_fd >= 0)
		close(im->root_fd);
	vg_clan_free(&im->clan);
	if (im->have_spec)
		vf_spec_free(&im->spec);
	free(im->text);
	free(im->root);
	vf_identities_free(&im->ids);
	vf_strings_free(&im->identity_files);
}

static int import_clan(struct import *im)
{
	int status = refuse_existing(im);
	if (!status)
		status = vg_clan_read(im->dir, &im->clan);
	for (size_t i = 0; !status && i < im->clan.notes.n; i++)
		fprintf(stderr, "vargen: note: %s\n", im->clan.notes.items[i]);
	for (size_t i = 0; !status && i < im->clan.n_keys; i++)
		status = check_key_types(im->clan.keys[i].sops);
	for (size_t i = 0; !status && i < im->clan.n_files; i++)
		if (im->clan.files[i].secret)
			status = check_key_types(im->clan.files[i].sops);
	if (!status && im->plan)
		return print_plan(im);
	if (!status)
		status = load_identities(im);
	if (!status)
		status = decrypt_all(im);
	if (!status)
		status = make_spec(im);
	if (!status)
		status = write_all(im);
	if (!status)
		report(im);
	return status;
}

int cmd_import(int argc, char **argv)
{
	struct import im = {.root_fd = -1, .lock_fd = -1};
	int status = parse(argc, argv, &im);
	if (!status)
		status = import_clan(&im);
	free_import(&im);
	return status < 0 ? 0 : status;
}
