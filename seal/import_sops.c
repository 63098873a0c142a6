/* varseal import-sops FILE --to MACHINE|shared GEN: one SOPS file (YAML,
 * JSON, dotenv or binary) becomes one new generator of the spec, whose
 * files are the file's values, each decrypted (its MAC checked) and sealed
 * per the spec, in one store transaction written with the spec.
 *
 * A value's file name is its path of keys joined with '.', a list item by
 * its index ("nested.test.file", "a_list.0"); a binary file's one value is
 * "data". Names must be the spec's (printable ASCII, no space or '/', not
 * starting with '.') and distinct: a key that breaks either is refused,
 * naming it. Values sops left unencrypted (unencrypted_suffix and the
 * regexes) are already public in the file: they become public values.
 * Everything else is a secret. Each value is the text `sops -d` prints for
 * it (docs/import.md). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "sops/sops.h"
#include "vars/spec_add.h"
#include "vars/spec_write.h"
#include "vars/store.h"
#include "varseal.h"

static const char usage[] =
	"varseal import-sops [-f SPEC] [--store DIR] [-i IDENTITY]... [--plan] [--ignore-mac]\n"
	"                    FILE --to MACHINE|shared GENERATOR";
static const struct vf_help_row help_rows[] = {
	{NULL, "FILE", "the SOPS file (YAML, JSON, dotenv by its name; anything else binary)"},
	{NULL, "GENERATOR", "the new generator's name; its files are the file's values"},
	{"--to", "MACHINE|shared", "the machine that uses it, or shared (kept for the admins)"},
	VS_STORE_HELP,
	VS_IDENTITY_HELP("an identity that opens FILE's data key; repeatable"),
	{"--plan", NULL, "list the generator and the files it would import; needs no key"},
	{"--ignore-mac", NULL, "import a file whose SOPS MAC does not verify, with a warning"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Imports one SOPS file as a new generator (imported: sops) of the spec: one file per\n"
	"value, named by its keys joined with '.', each the text sops -d prints for it,\n"
	"sealed per the spec; spec and store are written together, or neither.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

struct import {
	struct vs_vars v;
	const char *file, *to, *gen;
	bool plan, ignore_mac;
	struct vf_sops_file *sops;
	struct vf_sops_plain plain;
	char **names; /* per leaf */
	struct vf_spec_new_file *files;
	char *text; /* the spec with the generator added */
	size_t text_len;
	struct vf_spec edited;
	bool have_edited;
};

/* ---- names ----------------------------------------------------------------- */

/* The leaf's file name: keys joined with '.', list items by index. */
static char *leaf_name(const struct vf_sops_leaf *l)
{
	struct vf_buf b;
	vf_buf_init(&b);
	bool ok = true;
	for (size_t i = 0; ok && i < l->n_parts; i++) {
		char index[32];
		const char *part = l->parts[i].key;
		if (!part) {
			snprintf(index, sizeof(index), "%zu", l->parts[i].index);
			part = index;
		}
		ok = (i == 0 || vf_buf_append_str(&b, ".", NULL) == VF_OK) &&
		     vf_buf_append_str(&b, part, NULL) == VF_OK;
	}
	char *name = ok ? strndup(b.data ? (const char *)b.data : "", b.len) : NULL;
	vf_buf_free(&b);
	return name;
}

/* "FILE:LINE:COLUMN: value of PATH", for a message about leaf i. */
static const char *leaf_where(const struct import *im, size_t i, char *buf, size_t cap)
{
	const struct vf_sops_leaf *l = &im->sops->leaves[i];
	char path[1024];
	vf_sops_leaf_path(l, path, sizeof(path));
	snprintf(buf, cap, "%s:%u:%u: value of %s", im->file, l->line, l->column, path);
	return buf;
}

/* Every leaf's name, valid and distinct. */
static int name_leaves(struct import *im)
{
	size_t n = im->sops->n_leaves;
	if (n == 0)
		return vs_error("%s: no values to import", im->file);
	im->names = calloc(n, sizeof(*im->names));
	im->files = calloc(n, sizeof(*im->files));
	if (!im->names || !im->files)
		return vs_error("out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!(im->names[i] = leaf_name(&im->sops->leaves[i])))
			return vs_error("out of memory");
		const char *problem = vf_spec_name_problem(im->names[i]);
		char where[2048];
		if (problem)
			return vs_error("%s cannot be a file: its name '%.80s' %s (names join keys "
					"with '.': printable ASCII without spaces or '/', not "
					"starting with '.'); rename the key, or store it by hand with "
					"varseal set",
					leaf_where(im, i, where, sizeof(where)), im->names[i], problem);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(im->names[i], im->names[j])) {
				char other[1024];
				vf_sops_leaf_path(&im->sops->leaves[j], other, sizeof(other));
				return vs_error("%s would be file '%.80s', as value of %.200s would "
						"(names join keys with '.'); rename one of the keys",
						leaf_where(im, i, where, sizeof(where)), im->names[i],
						other);
			}
		im->files[i] = (struct vf_spec_new_file){im->names[i], im->sops->leaves[i].encrypted};
	}
	return 0;
}

/* ---- checks and the new spec ----------------------------------------------------- */

static int check_target(struct import *im)
{
	const char *problem = vf_spec_name_problem(im->gen);
	if (problem)
		return vs_error("generator name '%s' %s (expected printable ASCII without spaces or "
				"'/', not starting with '.')",
				im->gen, problem);
	if (vf_spec_generator(&im->v.spec, im->gen))
		return vs_error("%s already has a generator %s: import-sops adds a new one (choose "
				"another name, or remove it from the spec and run vargen prune first)",
				im->v.spec_path, im->gen);
	if (strcmp(im->to, "shared") && !vf_spec_machine(&im->v.spec, im->to))
		return vs_error("%s: no machine named %s (--to takes a machine of the spec, or "
				"shared)",
				im->v.spec_path, im->to);
	return 0;
}

static const struct vf_spec_new_generator *new_generator(const struct import *im,
							 struct vf_spec_new_generator *g)
{
	*g = (struct vf_spec_new_generator){im->gen, !strcmp(im->to, "shared"), VF_IMPORTED_SOPS,
					    im->files, im->sops->n_leaves};
	return g;
}

static int edit_spec(struct import *im)
{
	struct vf_spec_new_generator g;
	struct vf_error err;
	const char *machine = strcmp(im->to, "shared") ? im->to : NULL;
	if (vf_spec_edit_add_generator(&im->v.spec, new_generator(im, &g), machine, &im->text,
				       &im->text_len, &err) != VF_OK)
		return vs_fail(NULL, &err);
	if (vf_spec_parse(im->v.spec_path, im->text, im->text_len, &im->edited, &err) != VF_OK)
		return vs_fail(NULL, &err);
	im->have_edited = true;
	/* Said now, not after the secrets are open: a machine without a key. */
	const struct vf_spec_generator *ng = vf_spec_generator(&im->edited, im->gen);
	struct vf_strings recipients = {0};
	enum vf_code rc = vf_vars_recipients(&im->edited, machine, ng, &recipients, &err);
	vf_strings_free(&recipients);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

/* Refused before any key is tried, as the decryption would: Shamir key
 * groups, no age recipient. */
static int check_key_types(const struct import *im)
{
	uint8_t *key = vf_scratch_alloc(VF_SOPS_DATA_KEY_LEN);
	if (!key)
		return vs_error("out of memory");
	struct vf_error err;
	enum vf_code rc = vf_sops_data_key(im->sops, NULL, key, &err);
	vf_scratch_free(key, VF_SOPS_DATA_KEY_LEN);
	return rc == VF_E_NO_MATCH ? 0 : vs_fail(NULL, &err);
}

static const char *owner(const struct import *im)
{
	return strcmp(im->to, "shared") ? im->to : "shared";
}

static int print_plan(const struct import *im)
{
	bool shared = !strcmp(im->to, "shared");
	bool used = !shared || !vf_vars_kept_unused(&im->edited,
						    vf_spec_generator(&im->edited, im->gen));
	printf("add\tgenerators/%s\timported: sops, %zu file%s, %s%s, from %s (%s, sops %s)\n",
	       im->gen, im->sops->n_leaves, im->sops->n_leaves == 1 ? "" : "s",
	       shared ? "shared" : "per machine: ",
	       shared ? (used ? "" : ", kept for the admins until a machine lists it") : im->to,
	       im->file, vf_sops_format_name(im->sops->format), im->sops->meta.version);
	for (size_t i = 0; i < im->sops->n_leaves; i++) {
		const struct vf_sops_leaf *l = &im->sops->leaves[i];
		char path[1024];
		vf_sops_leaf_path(l, path, sizeof(path));
		printf("import\t%s/%s/%s\t%s %s, from %s:%u:%u %s\n", owner(im), im->gen,
		       im->names[i], l->encrypted ? "secret" : "value (unencrypted in the file)",
		       vf_sops_type_name(l->type), im->file, l->line, l->column, path);
	}
	printf("plan: 1 generator and %zu file%s to import into %s and %s/vars; nothing written\n",
	       im->sops->n_leaves, im->sops->n_leaves == 1 ? "" : "s", im->v.spec_path,
	       im->v.root);
	return VF_EXIT_ATTENTION;
}

/* ---- decrypting and writing ---------------------------------------------------------- */

static int decrypt(struct import *im)
{
	struct vf_error err;
	int status = vs_vars_identities(&im->v);
	if (!status && vf_sops_decrypt(im->sops, &im->v.ids, im->ignore_mac ? VF_SOPS_IGNORE_MAC : 0,
				       &im->plain, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && !im->plain.mac_verified)
		fprintf(stderr, "varseal: warning: %s: MAC does not verify; imported anyway "
				"(--ignore-mac)\n",
			im->file);
	return status;
}

/* The generator's files and records, staged. */
static int stage(struct import *im, struct vf_txn *txn)
{
	const struct vf_spec_generator *g = vf_spec_generator(&im->edited, im->gen);
	const char *machine = g->share ? NULL : im->to;
	struct vf_strings recipients = {0};
	struct vf_error err;
	enum vf_code rc = vf_vars_recipients(&im->edited, machine, g, &recipients, &err);
	for (size_t i = 0; rc == VF_OK && i < im->plain.n; i++) {
		/* Straight from the reader's guarded block: not copied. */
		const struct vf_value v = {(uint8_t *)im->plain.values[i].data,
					   im->plain.values[i].len, true};
		const struct vf_spec_file *f = vf_spec_file(g, im->names[i]);
		rc = f ? vf_vars_stage_file(txn, im->v.root, machine, g, f, &recipients, &v, &err)
		       : vf_fail(&err, VF_E_ARG, "%s: no file %s in the new spec", im->v.spec_path,
				 im->names[i]);
	}
	if (rc == VF_OK)
		rc = vf_vars_stage_hash(txn, im->v.root, machine, g, &err);
	vf_strings_free(&recipients);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

/* The spec's new text written beside it and synced; the store's
 * transaction committed; the spec renamed into place (the commit point).
 * When the spec cannot be renamed, the generator leaves the store again. */
static int write_all(struct import *im)
{
	struct vf_spec_write w;
	struct vf_error err;
	struct vf_txn txn = {0};
	memset(&w, 0, sizeof(w));
	bool present = true;
	char *text = strndup(im->text, im->text_len);
	int status = text ? 0 : vs_error("out of memory");
	if (!status && vf_vars_store_present(im->v.root, &present, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && vf_spec_write_begin(&w, im->v.spec_path, text, im->text_len, &err) != VF_OK)
		status = vs_error("%s: cannot rewrite the spec (%s); the spec and the store are "
				  "unchanged",
				  im->v.spec_path, err.msg);
	if (!status && !present)
		fprintf(stderr, "varseal: creating a new store at %s/vars\n", im->v.root);
	if (!status)
		status = vs_vars_lock(&im->v);
	if (!status)
		status = stage(im, &txn);
	if (!status && vf_txn_commit(&txn, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	bool landed = false;
	if (!status && vf_spec_write_commit(&w, true, &landed, &err) != VF_OK && !landed) {
		const struct vf_spec_generator *g = vf_spec_generator(&im->edited, im->gen);
		char *rel = vf_store_rel(g->share ? NULL : im->to, g->name, NULL, NULL);
		struct vf_error e;
		if (rel && vf_vars_remove_dir(im->v.root, rel, &e) == VF_OK)
			status = vs_error("%s: %s; the imported files are removed again",
					  im->v.spec_path, err.msg);
		else
			status = vs_error("%s: %s; vargen prune removes the imported files (%s/%s)",
					  im->v.spec_path, err.msg, im->v.root, rel ? rel : "");
		free(rel);
	}
	vf_txn_abort(&txn);
	vf_spec_write_abort(&w);
	return status;
}

static void report(const struct import *im)
{
	printf("imported %s/%s:", owner(im), im->gen);
	for (size_t i = 0; i < im->sops->n_leaves; i++)
		printf(" %s", im->names[i]);
	printf("\nimport-sops: %zu file%s from %s into generator %s of %s\n", im->sops->n_leaves,
	       im->sops->n_leaves == 1 ? "" : "s", im->file, im->gen, im->v.spec_path);
	const struct vf_spec_generator *g = vf_spec_generator(&im->edited, im->gen);
	if (vf_vars_kept_unused(&im->edited, g))
		printf("  no machine uses shared generator %s yet: its secrets are sealed to the "
		       "admins alone; list it under a machine's generators:, then varseal rekey -i "
		       "ADMIN_KEY\n",
		       im->gen);
}

static int parse(int argc, char **argv, struct import *im)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"to", required_argument, NULL, OPT_TO},
		{"plan", no_argument, NULL, OPT_PLAN},
		{"ignore-mac", no_argument, NULL, OPT_IGNORE_MAC},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "f:i:h", opts, NULL)) != -1) {
		int used = vs_vars_option(&im->v, c, optarg);
		if (used < 0)
			return VF_EXIT_ERROR;
		if (used)
			continue;
		switch (c) {
		case OPT_TO: im->to = optarg; break;
		case OPT_PLAN: im->plan = true; break;
		case OPT_IGNORE_MAC: im->ignore_mac = true; break;
		case 'h': vf_help_print(stdout, &help); return -1;
		default: return vs_usage(usage);
		}
	}
	if (argc - optind != 2 || !im->to)
		return vs_usage(usage);
	im->file = argv[optind];
	im->gen = argv[optind + 1];
	im->v.may_create = true; /* an import may come first in a store's life */
	return vs_vars_load(&im->v);
}

static int read_file(struct import *im)
{
	struct vf_error err;
	if (vf_sops_read(AT_FDCWD, im->file, VF_FOLLOW, VF_SOPS_AUTO, &im->sops, &err) != VF_OK)
		return vs_fail(NULL, &err);
	return 0;
}

int cmd_import_sops(int argc, char **argv)
{
	struct import im = {.v = {.lock_fd = -1}};
	int status = parse(argc, argv, &im);
	if (!status)
		status = check_target(&im);
	if (!status)
		status = read_file(&im);
	if (!status)
		status = name_leaves(&im);
	if (!status)
		status = check_key_types(&im);
	if (!status)
		status = edit_spec(&im);
	if (!status && im.plan)
		status = print_plan(&im);
	else if (!status) {
		status = decrypt(&im);
		if (!status)
			status = write_all(&im);
		if (!status)
			report(&im);
	}
	for (size_t i = 0; im.names && im.sops && i < im.sops->n_leaves; i++)
		free(im.names[i]);
	free(im.names);
	free(im.files);
	free(im.text);
	if (im.have_edited)
		vf_spec_free(&im.edited);
	vf_sops_plain_free(&im.plain);
	vf_sops_free(im.sops);
	vs_vars_free(&im.v);
	return status < 0 ? 0 : status;
}
