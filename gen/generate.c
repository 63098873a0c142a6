/* vargen generate: makes what is missing or stale, in dependency order,
 * seals each secret straight from memory to its machine's key and the
 * admins, and commits the whole run at once (a failing generator leaves
 * the store as it was). */
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/parallel.h"
#include "base/secmem.h"
#include "base/term.h"
#include "vars/store.h"
#include "vargen.h"

static const char usage[] =
	"vargen generate [-f SPEC] [--store DIR] [--machine M]... [--generator G]...\n"
	"                [--regenerate] [--prompt [GEN/]NAME=@FILE]... [-i IDENTITY]...\n"
	"                [--passphrase-file FILE]";

struct run {
	struct vg_context ctx;
	bool regenerate, insecure;
	const char *passphrase_file; /* for passphrase-protected identities */
	struct vf_strings prompt_args;
	struct vf_strings identity_files;
	struct vf_identities ids; /* loaded when an old secret is needed */
	bool ids_loaded;
	struct vg_item *items;
	size_t n;
	bool *wanted, *made;
	struct vf_value **values; /* per item, per file, when made or loaded */
	struct vf_txn txn;
	int lock_fd;
	/* Sealing jobs, run in parallel: one per file of every made item. */
	struct vf_strings *recipients; /* per item */
	struct job {
		size_t item, file;
	} *jobs;
	size_t n_jobs;
	struct vf_error job_err;
	atomic_flag job_failed; /* the first failing job records job_err */
};

static int parse(int argc, char **argv, struct run *r)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, OPT_STORE},
		{"machine", required_argument, NULL, 'm'},
		{"generator", required_argument, NULL, 'g'},
		{"regenerate", no_argument, NULL, OPT_REGENERATE},
		{"prompt", required_argument, NULL, OPT_PROMPT},
		{"identity", required_argument, NULL, 'i'},
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct vf_error err;
	enum vf_code rc = VF_OK;
	int c;
	while ((c = getopt_long(argc, argv, "f:m:g:i:h", opts, NULL)) != -1 && rc == VF_OK) {
		switch (c) {
		case 'f': r->ctx.spec_path = optarg; break;
		case OPT_STORE: r->ctx.store_opt = optarg; break;
		case 'm': rc = vf_strings_add(&r->ctx.machines, optarg, &err); break;
		case 'g': rc = vf_strings_add(&r->ctx.generators, optarg, &err); break;
		case OPT_REGENERATE: r->regenerate = true; break;
		case OPT_PROMPT:
			if (!strstr(optarg, "=@"))
				return vg_error("--prompt %s: expected NAME=@FILE", optarg);
			rc = vf_strings_add(&r->prompt_args, optarg, &err);
			break;
		case 'i': rc = vf_strings_add(&r->identity_files, optarg, &err); break;
		case OPT_INSECURE_PERMISSIONS: r->insecure = true; break;
		case OPT_PASSPHRASE_FILE: r->passphrase_file = optarg; break;
		case 'h': printf("Usage: %s\n", usage); return -1;
		default: return vg_usage(usage);
		}
	}
	if (rc != VF_OK)
		return vg_fail(&err);
	if (optind != argc)
		return vg_usage(usage);
	return vg_load(&r->ctx);
}

static bool same_owner(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static ssize_t find_item(const struct run *r, const char *machine,
			 const struct vf_spec_generator *g)
{
	const char *owner = g->share ? NULL : machine;
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].g == g && same_owner(r->items[i].machine, owner))
			return (ssize_t)i;
	return -1;
}

/* Selected generators, and (transitively) what they depend on. */
static void mark_wanted(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->wanted[i] = vg_selected_generator(&r->ctx, r->items[i].g->name);
	for (size_t i = r->n; i-- > 0;) {
		if (!r->wanted[i])
			continue;
		const struct vf_spec_generator *g = r->items[i].g;
		for (size_t d = 0; d < g->n_dependencies; d++) {
			ssize_t j = find_item(r, r->items[i].machine,
					      vf_spec_generator(&r->ctx.spec, g->dependencies[d]));
			if (j >= 0)
				r->wanted[j] = true;
		}
	}
}

static int load_identities(struct run *r)
{
	if (r->ids_loaded)
		return 0;
	struct vf_error err;
	for (size_t i = 0; i < r->identity_files.n; i++) {
		const char *path = r->identity_files.items[i];
		if (vf_load_identities(path, true, r->insecure, r->passphrase_file, &r->ids, &err) !=
		    VF_OK)
			return vg_fail(&err);
	}
	r->ids_loaded = true;
	return 0;
}

/* Values of an item that was not made in this run, from the store. */
static int load_values(struct run *r, size_t i)
{
	const struct vg_item *it = &r->items[i];
	struct vf_error err;
	for (size_t f = 0; f < it->g->n_files; f++) {
		const struct vf_spec_file *file = &it->g->files[f];
		if (file->secret && r->identity_files.n == 0) {
			char *path = vf_store_path(r->ctx.root, it->machine, it->g->name, file->name,
						   "secret");
			int status = vg_error("%s is needed as input: give -i with an admin's "
					      "identity to read it",
					      path ? path : file->name);
			free(path);
			return status;
		}
		if (file->secret && load_identities(r))
			return 1;
		if (vf_vars_read(r->ctx.root, it->machine, it->g, file, &r->ids, &r->values[i][f],
				 &err) != VF_OK)
			return vg_fail(&err);
	}
	return 0;
}

static int read_prompt_file(const char *path, struct vf_value *v)
{
	uint8_t *secret;
	size_t len;
	struct vf_error err;
	/* Multi-line values are kept whole: read the file raw. */
	if (vf_read_key_file(path, false, true, (char **)&secret, &len, &err) != VF_OK)
		return vg_fail(&err);
	if (len && secret[len - 1] == '\n')
		len--;
	enum vf_code rc = vf_value_set(v, secret, len, &err);
	vf_secure_free(secret);
	return rc == VF_OK ? 0 : vg_fail(&err);
}

static int ask_prompt(const struct run *r, const struct vf_spec_generator *g,
		      const struct vf_spec_prompt *p, struct vf_value *v)
{
	size_t name_len = strlen(p->name), gen_len = strlen(g->name);
	for (size_t i = 0; i < r->prompt_args.n; i++) {
		const char *arg = r->prompt_args.items[i];
		const char *at = strstr(arg, "=@");
		size_t key_len = (size_t)(at - arg);
		bool plain = key_len == name_len && !strncmp(arg, p->name, name_len);
		bool qualified = key_len == gen_len + 1 + name_len && !strncmp(arg, g->name, gen_len) &&
				 arg[gen_len] == '/' && !strncmp(arg + gen_len + 1, p->name, name_len);
		if (plain || qualified)
			return read_prompt_file(at + 2, v);
	}
	char question[512];
	snprintf(question, sizeof(question), "%s/%s%s%s: ", g->name, p->name,
		 p->description ? " - " : "", p->description ? p->description : "");
	struct vf_error err;
	uint8_t *secret;
	size_t len;
	bool echo = p->type != VF_PROMPT_HIDDEN, multiline = p->type == VF_PROMPT_MULTILINE;
	if (multiline)
		snprintf(question + strlen(question), sizeof(question) - strlen(question),
			 "(end with Ctrl-D)\n");
	if (vf_tty_read(question, echo, multiline, &secret, &len, &err) != VF_OK)
		return vg_error("generator %s needs prompt %s: %s (or --prompt %s=@FILE)", g->name,
				p->name, err.msg, p->name);
	enum vf_code rc = vf_value_set(v, secret, len, &err);
	vf_secure_free(secret);
	return rc == VF_OK ? 0 : vg_fail(&err);
}

static int make_script_values(struct run *r, size_t i, struct vf_value *values)
{
	const struct vg_item *it = &r->items[i];
	const struct vf_spec_generator *g = it->g;
	const struct vf_value **deps = calloc(g->n_dependencies + 1, sizeof(*deps));
	struct vf_value *prompts = calloc(g->n_prompts + 1, sizeof(*prompts));
	int status = deps && prompts ? 0 : vg_error("out of memory");
	for (size_t d = 0; !status && d < g->n_dependencies; d++) {
		ssize_t j = find_item(r, it->machine, vf_spec_generator(&r->ctx.spec,
									 g->dependencies[d]));
		if (j < 0)
			status = vg_error("generator %s: dependency %s is not in scope", g->name,
					  g->dependencies[d]);
		else if (!r->made[j] && !r->values[j][0].data)
			status = load_values(r, (size_t)j);
		if (!status)
			deps[d] = r->values[j];
	}
	for (size_t p = 0; !status && p < g->n_prompts; p++)
		status = ask_prompt(r, g, &g->prompts[p], &prompts[p]);
	if (!status)
		status = vg_run_script(&r->ctx.spec, g, deps, prompts, values);
	for (size_t p = 0; prompts && p < g->n_prompts; p++)
		vf_value_free(&prompts[p]);
	free(prompts);
	free(deps);
	return status;
}

static int make_values(struct run *r, size_t i)
{
	const struct vf_spec_generator *g = r->items[i].g;
	struct vf_value *values = r->values[i];
	struct vf_error err;
	if (g->kind == VF_KIND_AGE_KEYPAIR || g->kind == VF_KIND_WIREGUARD)
		return vf_make_keypair(g, values, &err) == VF_OK ? 0 : vg_fail(&err);
	if (g->script)
		return make_script_values(r, i, values);
	for (size_t f = 0; f < g->n_files; f++)
		if (vf_make_value(&g->files[f], &values[f], &err) != VF_OK)
			return vg_fail(&err);
	return 0;
}

static bool needs_making(const struct run *r, size_t i, bool *any_dep_made)
{
	const struct vg_item *it = &r->items[i];
	const struct vf_spec_generator *g = it->g;
	*any_dep_made = false;
	for (size_t d = 0; d < g->n_dependencies; d++) {
		ssize_t j = find_item(r, it->machine, vf_spec_generator(&r->ctx.spec,
									 g->dependencies[d]));
		if (j >= 0 && r->made[j])
			*any_dep_made = true;
	}
	if (*any_dep_made || (r->regenerate && vg_selected_generator(&r->ctx, g->name)))
		return true;
	enum vf_state *states = calloc(g->n_files + 1, sizeof(*states));
	struct vf_error err;
	bool need = !states ||
		    vf_vars_state(&r->ctx.spec, r->ctx.root, it->machine, g, states, &err) != VF_OK;
	for (size_t f = 0; !need && f < g->n_files; f++)
		need = states[f] == VF_STATE_MISSING || states[f] == VF_STATE_STALE ||
		       states[f] == VF_STATE_CORRUPT || states[f] == VF_STATE_INCOMPLETE;
	free(states);
	return need;
}

static int seal_job(void *ctx, size_t j)
{
	struct run *r = ctx;
	const struct job *job = &r->jobs[j];
	const struct vg_item *it = &r->items[job->item];
	struct vf_error err;
	if (vf_vars_stage_file(&r->txn, r->ctx.root, it->machine, it->g, &it->g->files[job->file],
			       &r->recipients[job->item], &r->values[job->item][job->file],
			       &err) == VF_OK)
		return 0;
	if (!atomic_flag_test_and_set(&r->job_failed))
		r->job_err = err;
	return 1;
}

/* Seals and stages every made file: X25519 for thousands of recipients
 * is the expensive part, and the jobs are independent. */
static int stage_all(struct run *r)
{
	struct vf_error err;
	r->recipients = calloc(r->n + 1, sizeof(*r->recipients));
	r->jobs = calloc(1, sizeof(*r->jobs));
	if (!r->recipients || !r->jobs)
		return vg_error("out of memory");
	for (size_t i = 0; i < r->n; i++) {
		if (!r->made[i])
			continue;
		const struct vg_item *it = &r->items[i];
		if (vf_vars_recipients(&r->ctx.spec, it->machine, it->g, &r->recipients[i], &err) !=
		    VF_OK)
			return vg_fail(&err);
		struct job *grown = realloc(r->jobs, (r->n_jobs + it->g->n_files) * sizeof(*grown));
		if (!grown)
			return vg_error("out of memory");
		r->jobs = grown;
		for (size_t f = 0; f < it->g->n_files; f++)
			r->jobs[r->n_jobs++] = (struct job){i, f};
	}
	/* vf_parallel_for stops handing out jobs after the first failure;
	 * jobs already running may fail too, but only the first one reports. */
	if (vf_parallel_for(r->n_jobs, seal_job, r))
		return vg_fail(&r->job_err);
	/* The records go last: the transaction first removes the old commit
	 * records, then renames the files, then puts the new records in
	 * place (store.h), so a run killed half-way leaves files without a
	 * record that names them (reported incomplete, made again), never a
	 * record over a mix of old and new files. */
	for (size_t i = 0; i < r->n; i++)
		if (r->made[i] && vf_vars_stage_hash(&r->txn, r->ctx.root, r->items[i].machine,
						     r->items[i].g, &err) != VF_OK)
			return vg_fail(&err);
	return 0;
}

/* One writer at a time: two runs interleaving renames would mix seals.
 * The lock is on the vars directory itself (vf_store_lock, as varseal
 * takes it), so no lock file ends up in the user's git tree. */
static int lock_store(struct run *r)
{
	struct vf_error err;
	return vf_store_lock(r->ctx.root, &r->lock_fd, &err) == VF_OK ? 0 : vg_fail(&err);
}

static int generate_all(struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		/* What depends on something made in this run is made again too,
		 * selected or not: its inputs changed. */
		bool dep_made;
		bool need = needs_making(r, i, &dep_made);
		if (!r->wanted[i] && !dep_made)
			continue;
		if (!need)
			continue;
		int status = make_values(r, i);
		if (status)
			return status;
		r->made[i] = true;
	}
	return stage_all(r);
}

static void report(const struct run *r)
{
	size_t made = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (!r->made[i])
			continue;
		made++;
		printf("generated %s/%s:", r->items[i].machine ? r->items[i].machine : "shared",
		       r->items[i].g->name);
		for (size_t f = 0; f < r->items[i].g->n_files; f++)
			printf(" %s", r->items[i].g->files[f].name);
		printf("\n");
	}
	if (!made)
		printf("generate: everything is up to date\n");
}

static void free_run(struct run *r)
{
	for (size_t i = 0; r->values && i < r->n; i++) {
		for (size_t f = 0; r->values[i] && f < r->items[i].g->n_files; f++)
			vf_value_free(&r->values[i][f]);
		free(r->values[i]);
	}
	free(r->values);
	for (size_t i = 0; r->recipients && i < r->n; i++)
		vf_strings_free(&r->recipients[i]);
	free(r->recipients);
	free(r->jobs);
	free(r->wanted);
	free(r->made);
	free(r->items);
	vf_txn_abort(&r->txn);
	vf_identities_free(&r->ids);
	vf_strings_free(&r->prompt_args);
	vf_strings_free(&r->identity_files);
	vg_context_free(&r->ctx);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
}

/* One row of values per item. Every row is checked, not only the last;
 * the rows made before a failure are left for free_run, which skips the
 * NULL ones (r->values is zeroed). */
static bool alloc_values(struct run *r)
{
	r->values = calloc(r->n + 1, sizeof(*r->values));
	for (size_t i = 0; r->values && i < r->n; i++)
		if (!(r->values[i] = calloc(r->items[i].g->n_files + 1, sizeof(struct vf_value))))
			return false;
	return r->values != NULL;
}

int cmd_generate(int argc, char **argv)
{
	struct run r = {.lock_fd = -1, .job_failed = ATOMIC_FLAG_INIT};
	int status = parse(argc, argv, &r);
	/* Plaintext that killed runs left on the RAM file system goes first. */
	if (!status)
		vg_clean_stale_script_dirs();
	if (!status)
		status = lock_store(&r);
	if (!status)
		vf_store_clean_temps(r.ctx.root);
	if (!status)
		status = vg_items(&r.ctx, &r.items, &r.n);
	if (!status) {
		r.wanted = calloc(r.n + 1, sizeof(bool));
		r.made = calloc(r.n + 1, sizeof(bool));
		if (!r.wanted || !r.made || !alloc_values(&r))
			status = vg_error("out of memory");
	}
	if (!status) {
		mark_wanted(&r);
		status = generate_all(&r);
		struct vf_error err;
		if (!status && vf_txn_commit(&r.txn, &err) != VF_OK)
			status = vg_fail(&err);
		if (!status)
			report(&r);
	}
	free_run(&r);
	return status < 0 ? 0 : status;
}
