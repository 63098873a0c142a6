/* What the vars store commands share. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/secmem.h"
#include "base/term.h"
#include "vars/pair.h"
#include "vars/store.h"
#include "varseal.h"

int vs_vars_option(struct vs_vars *v, int c, const char *arg)
{
	struct vf_error err;
	switch (c) {
	case 'f': v->spec_path = arg; return 1;
	case OPT_STORE: v->store_opt = arg; return 1;
	case OPT_INSECURE_PERMISSIONS: v->insecure = true; return 1;
	case OPT_PASSPHRASE_FILE: v->passphrase_file = arg; return 1;
	case 'i':
		if (vf_strings_add(&v->identity_files, arg, &err) != VF_OK)
			return vs_fail(NULL, &err), -1;
		return 1;
	default: return 0;
	}
}

int vs_vars_load(struct vs_vars *v)
{
	struct vf_error err;
	v->lock_fd = -1;
	if (vf_vars_open(v->spec_path, v->store_opt, &v->spec, &v->root, &err) != VF_OK)
		return vs_fail(NULL, &err);
	v->spec_path = v->spec.path; /* the default filled in, for messages */
	/* A mistyped --store is not an empty store: rekey must not report
	 * "0 of 0 resealed", set must not start a store of one value. */
	if (!v->may_create && vf_vars_require_store(v->root, &err) != VF_OK)
		return vs_fail(NULL, &err);
	return 0;
}

int vs_vars_identities(struct vs_vars *v)
{
	struct vf_error err;
	if (v->identity_files.n == 0)
		return vs_error("no identity given: pass -i with an admin's (or the machine's) "
				"identity file");
	for (size_t i = 0; i < v->identity_files.n; i++) {
		const char *path = v->identity_files.items[i];
		if (vf_load_identities(path, true, v->insecure, v->passphrase_file, &v->ids, &err) !=
		    VF_OK)
			return vs_fail(NULL, &err);
	}
	return 0;
}

int vs_vars_identities_usable(const struct vs_vars *v)
{
	struct vf_error err;
	for (size_t i = 0; i < v->identity_files.n; i++) {
		const char *path = v->identity_files.items[i];
		struct vf_file f;
		struct stat st;
		/* Standard input, a pipe (-i <(pass show key)) or a device can
		 * be read only once: the load that opens the secrets reads it.
		 * A path that cannot be looked at is read, which says why. */
		if (strcmp(path, "-") == 0 || (stat(path, &st) == 0 && !S_ISREG(st.st_mode)))
			continue;
		if (vf_read_key_file(path, true, v->insecure, &f, &err) != VF_OK)
			return vs_fail(NULL, &err);
		vf_key_text_free(&f);
	}
	return 0;
}

int vs_vars_lock(struct vs_vars *v)
{
	struct vf_error err;
	/* Held already (edit compares the store under it before it saves):
	 * a second flock on another descriptor would refuse ourselves. */
	if (v->lock_fd >= 0)
		return 0;
	if (vf_store_lock(v->root, &v->lock_fd, &err) != VF_OK)
		return vs_fail(NULL, &err);
	vf_store_clean_temps(v->root);
	return 0;
}

int vs_vars_settable(const char *owner, const struct vf_spec_generator *g,
		     const struct vf_spec_file *f)
{
	if (f != vf_pair_public(g))
		return 0;
	return vs_error("%s %s/%s is the public half of a %s key pair: it follows from the "
			"private half; set %s/%s, and it is computed",
			owner ? owner : "shared", g->name, f->name, vf_pair_kind_name(g), g->name,
			vf_pair_private(g)->name);
}

/* A key pair's private half: the value checked, then stored as vargen
 * would have made it, with the public half computed from it (halves[0],
 * halves[1]). Nothing to do for any other file (0, halves left empty). */
static int pair_halves(const char *owner, const struct vf_spec_generator *g,
		       const struct vf_spec_file *f, const struct vf_value *value,
		       struct vf_value halves[2])
{
	if (f != vf_pair_private(g))
		return 0;
	struct vf_error err;
	if (vf_pair_derive(g, value->data, value->len, &halves[0], &halves[1], &err) == VF_OK)
		return 0;
	char what[512];
	snprintf(what, sizeof(what), "%s %s/%s", owner ? owner : "shared", g->name, f->name);
	return vs_fail(what, &err);
}

int vs_vars_store_hand_set(struct vs_vars *v, const char *owner,
			   const struct vf_spec_generator *g, const struct vf_spec_file *f,
			   const struct vf_value *value)
{
	struct vf_strings recipients = {0};
	struct vf_txn txn = {0};
	struct vf_error err;
	struct vf_value halves[2] = {{0}, {0}};
	/* Refused before the store is touched: the public half alone, or a
	 * private half that is not a key of its kind. */
	int status = vs_vars_settable(owner, g, f);
	if (!status)
		status = pair_halves(owner, g, f, value, halves);
	const struct vf_spec_file *derived = NULL;
	if (!status && f == vf_pair_private(g)) {
		derived = vf_pair_public(g);
		value = &halves[0];
	}
	if (!status)
		status = vs_vars_lock(v);
	if (!status && vf_vars_recipients(&v->spec, owner, g, &recipients, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	/* The commit record names the new bytes beside the other files' and
	 * marks this one set by hand (with a key pair's public half, which
	 * changes in the same commit: the pair is never seen half set); the
	 * generator keeps the definition hash its other files were made by,
	 * so a stale sibling stays stale, and generate leaves the value
	 * alone. */
	struct vf_update hand = {.hand_set = f->name,
				 .hand_set_derived = derived ? derived->name : NULL};
	if (!status &&
	    (vf_vars_stage_file(&txn, v->root, owner, g, f, &recipients, value, &err) != VF_OK ||
	     (derived && vf_vars_stage_file(&txn, v->root, owner, g, derived, &recipients,
					    &halves[1], &err) != VF_OK) ||
	     vf_vars_stage_update(&txn, v->root, owner, g, &hand, &err) != VF_OK ||
	     vf_txn_commit(&txn, &err) != VF_OK))
		status = vs_fail(NULL, &err);
	vf_txn_abort(&txn);
	vf_strings_free(&recipients);
	vf_value_free(&halves[0]);
	vf_value_free(&halves[1]);
	return status;
}

void vs_vars_free(struct vs_vars *v)
{
	vf_spec_free(&v->spec);
	free(v->root);
	vf_strings_free(&v->identity_files);
	vf_identities_free(&v->ids);
	if (v->lock_fd >= 0)
		close(v->lock_fd);
}

int vs_vars_target(struct vs_vars *v, const char *machine, const char *gen_file,
		   const struct vf_spec_generator **g, const struct vf_spec_file **f,
		   const char **owner)
{
	const char *slash = strchr(gen_file, '/');
	if (!slash || strchr(slash + 1, '/'))
		return vs_error("%s: expected GENERATOR/FILE", gen_file);
	char *gen_name = strndup(gen_file, (size_t)(slash - gen_file));
	*g = gen_name ? vf_spec_generator(&v->spec, gen_name) : NULL;
	free(gen_name);
	if (!*g)
		return vs_error("%s: no generator %.*s in %s", gen_file, (int)(slash - gen_file),
				gen_file, v->spec_path);
	*f = vf_spec_file(*g, slash + 1);
	if (!*f)
		return vs_error("%s: generator %s has no file %s", gen_file, (*g)->name, slash + 1);
	if ((*g)->share && !strcmp(machine, "shared")) {
		*owner = NULL;
		return 0;
	}
	const struct vf_spec_machine *m = vf_spec_machine(&v->spec, machine);
	if (!m)
		return vs_error("%s: no machine named %s", v->spec_path, machine);
	if (!vf_vars_machine_uses(&v->spec, m, *g))
		return vs_error("machine %s does not use generator %s", machine, (*g)->name);
	*owner = (*g)->share ? NULL : m->name;
	return 0;
}

int vs_vars_getopt(int argc, char **argv, struct vs_vars *v, const char *shortopts,
		   const struct option *opts, const struct vf_help *help, vs_option_fn own,
		   void *ctx)
{
	int c;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		int used = vs_vars_option(v, c, optarg);
		if (used < 0)
			return VF_EXIT_ERROR;
		if (used)
			continue;
		if (c == 'h') {
			vf_help_print(stdout, help);
			return -1;
		}
		/* getopt has said what was wrong with an unknown or incomplete
		 * option ('?', ':'): only the usage is left to print. */
		int status = own && c != '?' && c != ':' ? own(ctx, c, optarg) : vs_usage(help->usage);
		if (status)
			return status;
	}
	return 0;
}

int vs_vars_parse(int argc, char **argv, struct vs_vars *v, const struct vf_help *help)
{
	static const struct option opts[] = {VS_VARS_OPTIONS, {"help", no_argument, NULL, 'h'}, {0}};
	return vs_vars_getopt(argc, argv, v, "f:i:h", opts, help, NULL, NULL);
}

int vs_vars_open_target(int argc, char **argv, struct vs_vars *v, const struct vf_help *help,
			const struct vf_spec_generator **g, const struct vf_spec_file **f,
			const char **owner)
{
	int status = vs_vars_parse(argc, argv, v, help);
	if (!status && argc - optind != 2)
		status = vs_usage(help->usage);
	if (!status)
		status = vs_vars_load(v);
	if (!status)
		status = vs_vars_target(v, argv[optind], argv[optind + 1], g, f, owner);
	return status;
}
