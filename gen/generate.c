/* vargen generate: makes what is missing, in dependency order, seals each
 * secret straight from memory to its machine's key and the admins, reseals
 * (with -i) what is sealed to the wrong keys, and commits the whole run at
 * once (a failing generator leaves the store as it was). Existing values
 * are replaced only with --regenerate and a selection, confirmed; what it
 * leaves is said with the command for it, and its exit status is what
 * vargen check would say right after (decide.c decides, this file does). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/parallel.h"
#include "generate.h"

static const char usage[] =
	"vargen generate [-f SPEC] [--store DIR] [--machine M]... [--generator G]... [--plan]\n"
	"                [--regenerate (--machine M | --generator G | --all)... [--yes]]\n"
	"                [--prompt [MACHINE:][GEN/]NAME=@FILE]... [-i IDENTITY]...\n"
	"                [--passphrase-file FILE]";
static const struct vf_help_row help_rows[] = {
	VG_SPEC_HELP,
	VG_SELECT_HELP,
	{"--regenerate", NULL, "replace the selection's existing values, once confirmed"},
	{"--all", NULL, "with --regenerate: select everything"},
	{"--yes", NULL, "confirm replacing without asking (needed off a terminal)"},
	{"--plan", NULL, "list what would be made, replaced or resealed; write nothing"},
	{"--prompt", "[M:][G/]NAME=@FILE", "answer prompt NAME from FILE; the most specific wins"},
	{"-i, --identity", "FILE", "an admin's identity: reseals, and opens secret inputs; "
				   "repeatable"},
	{"--insecure-permissions", NULL, "read identity files that group or others may read"},
	{"--passphrase-file", "FILE", "the passphrase of passphrase-protected identity files, "
				      "read from FILE"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Makes what is missing, in dependency order, and commits the whole run at once.\n"
	"Existing values are replaced only with --regenerate and a selection; what is left\n"
	"is listed with the command for it, and the exit status is what check would say.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

static int parse(int argc, char **argv, struct run *r)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, OPT_STORE},
		{"machine", required_argument, NULL, 'm'},
		{"generator", required_argument, NULL, 'g'},
		{"regenerate", no_argument, NULL, OPT_REGENERATE},
		{"all", no_argument, NULL, OPT_ALL},
		{"yes", no_argument, NULL, OPT_YES},
		{"plan", no_argument, NULL, OPT_PLAN},
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
		case OPT_ALL: r->all = true; break;
		case OPT_YES: r->yes = true; break;
		case OPT_PLAN: r->plan = true; break;
		case OPT_PROMPT: {
			int status = vg_prompt_add(&r->prompts, optarg);
			if (status)
				return status;
			break;
		}
		case 'i': rc = vf_strings_add(&r->identity_files, optarg, &err); break;
		case OPT_INSECURE_PERMISSIONS: r->insecure = true; break;
		case OPT_PASSPHRASE_FILE: r->passphrase_file = optarg; break;
		case 'h': vf_help_print(stdout, &help); return -1;
		default: return vg_usage(usage);
		}
	}
	if (rc != VF_OK)
		return vg_fail(&err);
	if (optind != argc)
		return vg_usage(usage);
	if (r->all && !r->regenerate)
		return vg_error("--all selects what --regenerate replaces; without --regenerate, "
				"generate already makes everything missing");
	if (r->regenerate && !r->all && !r->ctx.machines.n && !r->ctx.generators.n)
		return vg_error("--regenerate replaces existing values: say which, with --machine M, "
				"--generator G, or --all");
	r->ctx.may_create = true;
	int status = vg_load(&r->ctx);
	/* An unknown --prompt is said before the store is even looked at. */
	return status ? status : vg_prompts_check(&r->prompts, &r->ctx.spec);
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
			ssize_t j = vg_find_item(r, r->items[i].machine,
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
		int status = file->secret ? load_identities(r) : 0;
		if (status)
			return status;
		if (vf_vars_read(r->ctx.root, it->machine, it->g, file, &r->ids, &r->values[i][f],
				 &err) != VF_OK)
			return vg_fail(&err);
	}
	return 0;
}

static int make_script_values(struct run *r, size_t i, struct vf_value *values)
{
	const struct vg_item *it = &r->items[i];
	const struct vf_spec_generator *g = it->g;
	const struct vf_value **deps = calloc(g->n_dependencies + 1, sizeof(*deps));
	struct vf_value *prompts = calloc(g->n_prompts + 1, sizeof(*prompts));
	int status = deps && prompts ? 0 : vg_error("out of memory");
	for (size_t d = 0; !status && d < g->n_dependencies; d++) {
		ssize_t j = vg_find_item(r, it->machine, vf_spec_generator(&r->ctx.spec,
									 g->dependencies[d]));
		if (j < 0)
			status = vg_error("generator %s: dependency %s is not in scope", g->name,
					  g->dependencies[d]);
		else if (!vg_made(r, (size_t)j) && !r->values[j][0].data)
			status = load_values(r, (size_t)j);
		if (!status)
			deps[d] = r->values[j];
	}
	for (size_t p = 0; !status && p < g->n_prompts; p++)
		status = vg_prompt_answer(&r->prompts, it, &g->prompts[p], &prompts[p]);
	if (!status)
		status = vg_run_script(&r->ctx.spec, g, deps, prompts, values);
	for (size_t p = 0; prompts && p < g->n_prompts; p++)
		vf_value_free(&prompts[p]);
	free(prompts);
	free(deps);
	return status;
}

/* arena: where built-in values may go (NULL: each its own allocation). */
static int make_values(struct run *r, size_t i, struct vf_arena *arena)
{
	const struct vf_spec_generator *g = r->items[i].g;
	struct vf_value *values = r->values[i];
	struct vf_error err;
	if (g->kind == VF_KIND_AGE_KEYPAIR || g->kind == VF_KIND_WIREGUARD)
		return vf_make_keypair(g, values, &err) == VF_OK ? 0 : vg_fail(&err);
	if (g->script)
		return make_script_values(r, i, values);
	for (size_t f = 0; f < g->n_files; f++)
		if (vf_make_value_in(&g->files[f], arena, &values[f], &err) != VF_OK)
			return vg_fail(&err);
	return 0;
}

/* Whether file f of item i is written by this run's making: all of a
 * made or replaced generator, only the missing ones of a filled one. */
static bool file_made(const struct run *r, size_t i, size_t f)
{
	enum action a = r->dec[i].act;
	return a == ACT_MAKE || a == ACT_REPLACE ||
	       (a == ACT_FILL && r->before.states[i][f] == VF_STATE_MISSING);
}

static bool resealing(const struct run *r, size_t i)
{
	return r->dec[i].reseal && r->identity_files.n > 0;
}

static int seal_job(void *ctx, size_t j)
{
	struct run *r = ctx;
	struct vf_error err;
	enum vf_code rc;
	if (j < r->n_jobs) {
		const struct job *job = &r->jobs[j];
		const struct vg_item *it = &r->items[job->item];
		rc = vf_vars_stage_file(&r->txn, r->ctx.root, it->machine, it->g,
					&it->g->files[job->file], &r->recipients[job->item],
					&r->values[job->item][job->file], &err);
	} else {
		const struct reseal *rs = &r->reseals[j - r->n_jobs];
		rc = vf_vars_stage_reseal(&r->txn, r->ctx.root, rs->secret, rs->manifest_rel,
					  rs->manifest, rs->manifest_len, &r->ids, &rs->recipients,
					  false, &err);
	}
	if (rc == VF_OK) {
		vf_progress_add(&r->progress, 1);
		return 0;
	}
	if (!atomic_flag_test_and_set(&r->job_failed))
		r->job_err = err;
	return 1;
}

/* The records of every generator the run changes, staged after its files:
 * the transaction first removes the old commit records, then renames the
 * files, then puts the new records in place (store.h), so a run killed
 * half-way leaves files without a record that names them (reported
 * incomplete), never a record over a mix of old and new files. */
static int stage_records(struct run *r)
{
	struct vf_error err;
	for (size_t i = 0; i < r->n; i++) {
		const struct vg_item *it = &r->items[i];
		enum action a = r->dec[i].act;
		enum vf_code rc = VF_OK;
		if (a == ACT_MAKE || a == ACT_REPLACE) {
			rc = vf_vars_stage_hash(&r->txn, r->ctx.root, it->machine, it->g, &err);
		} else if (a == ACT_FILL || resealing(r, i)) {
			bool *made = calloc(it->g->n_files + 1, sizeof(bool));
			if (!made)
				return vg_error("out of memory");
			for (size_t f = 0; f < it->g->n_files; f++)
				made[f] = file_made(r, i, f);
			struct vf_update u = {.made = made};
			rc = vf_vars_stage_update(&r->txn, r->ctx.root, it->machine, it->g, &u, &err);
			free(made);
		}
		if (rc != VF_OK)
			return vg_fail(&err);
	}
	return 0;
}

/* Values are made, sealed and let go a batch of about this many files at
 * a time: each is its own guarded allocation (sodium_malloc: an mmap cut
 * in three or four by guard pages, and a locked page), so holding a whole
 * store's at once ran 10,000 machines out of mappings (vm.max_map_count)
 * and past RLIMIT_MEMLOCK. 256 keep a batch's guarded memory near 2 MiB
 * and about a thousand mappings, and still give every core hundreds of
 * jobs per batch. The transaction keeps no value: what it stages is on
 * disk, sealed. */
#define SEAL_BATCH_FILES 256u

/* Per item, the last item that needs its values: itself if made, or the
 * latest made item that depends on it (items come in dependency order,
 * so dependencies come first). SIZE_MAX: none. */
static size_t *last_uses(struct run *r)
{
	size_t *last = malloc((r->n + 1) * sizeof(*last));
	if (!last)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		last[i] = vg_made(r, i) ? i : SIZE_MAX;
	for (size_t i = 0; i < r->n; i++) {
		const struct vf_spec_generator *g = r->items[i].g;
		if (!vg_made(r, i) || !g->script)
			continue;
		for (size_t d = 0; d < g->n_dependencies; d++) {
			ssize_t j = vg_find_item(r, r->items[i].machine,
					      vf_spec_generator(&r->ctx.spec, g->dependencies[d]));
			if (j >= 0 && (last[j] == SIZE_MAX || last[j] < i))
				last[j] = i;
		}
	}
	return last;
}

/* Wipes the values (made or loaded) and recipients no item from `done`
 * on needs any more. */
static void release_done(struct run *r, const size_t *last, size_t done)
{
	for (size_t i = 0; i < done; i++) {
		if (last[i] != SIZE_MAX && last[i] >= done)
			continue;
		for (size_t f = 0; f < r->items[i].g->n_files; f++)
			vf_value_free(&r->values[i][f]);
		vf_strings_free(&r->recipients[i]);
	}
}

static int seal_batch_job(void *ctx, size_t k)
{
	struct run *r = ctx;
	return seal_job(r, r->batch_first + k);
}

/* The jobs of items [lo, hi): their values made, their recipients known.
 * The values release_done lets go at hi (no later item needs them) go in
 * the batch's arena: a guarded allocation each cost 5,000 mmaps, mlocks
 * and their undoing for 1,000 machines x 3 secrets. */
static int prepare_items(struct run *r, const size_t *last, size_t lo, size_t hi)
{
	struct vf_error err;
	for (size_t i = lo; i < hi; i++) {
		if (!vg_made(r, i))
			continue;
		const struct vg_item *it = &r->items[i];
		bool batch_only = last[i] != SIZE_MAX && last[i] < hi;
		int status = make_values(r, i, batch_only ? &r->batch_values : NULL);
		if (status)
			return status;
		if (vf_vars_recipients(&r->ctx.spec, it->machine, it->g, &r->recipients[i], &err) !=
		    VF_OK)
			return vg_fail(&err);
	}
	return 0;
}

/* Makes, seals and stages the made files a batch at a time, releasing
 * each batch's values before the next is made (but those a later script
 * still needs as input); then the reseals, which hold nothing between
 * jobs. X25519 for thousands of recipients is the expensive part, and the
 * jobs of a batch are independent: they run in parallel. */
static int stage_all(struct run *r)
{
	r->recipients = calloc(r->n + 1, sizeof(*r->recipients));
	r->jobs = calloc(1, sizeof(*r->jobs));
	size_t *last = last_uses(r);
	int status = r->recipients && r->jobs && last ? 0 : vg_error("out of memory");
	for (size_t i = 0; !status && i < r->n; i++) {
		if (!vg_made(r, i))
			continue;
		size_t files = r->items[i].g->n_files;
		struct job *grown = realloc(r->jobs, (r->n_jobs + files + 1) * sizeof(*grown));
		if (!grown) {
			status = vg_error("out of memory");
			break;
		}
		r->jobs = grown;
		for (size_t f = 0; f < files; f++)
			if (file_made(r, i, f))
				r->jobs[r->n_jobs++] = (struct job){i, f};
	}
	if (status) {
		free(last);
		return status;
	}
	size_t n = r->n_jobs + r->n_reseals;
	vg_progress_begin(&r->progress, "vargen: sealing", n, n >= VG_PROGRESS_MIN_FILES);
	/* A batch takes whole items: a script's files are made together. */
	size_t item = 0;
	for (size_t first = 0; !status && first < r->n_jobs;) {
		size_t end = first;
		while (end < r->n_jobs && (end == first || end - first < SEAL_BATCH_FILES ||
					   r->jobs[end].item == r->jobs[end - 1].item))
			end++;
		size_t next_item = end < r->n_jobs ? r->jobs[end].item : r->n;
		status = prepare_items(r, last, item, next_item);
		/* vf_parallel_for stops handing out jobs after the first
		 * failure; jobs already running may fail too, but only the
		 * first one reports. */
		r->batch_first = first;
		if (!status && vf_parallel_for(end - first, seal_batch_job, r))
			status = vg_fail(&r->job_err);
		release_done(r, last, next_item);
		vf_arena_free(&r->batch_values);
		item = next_item;
		first = end;
	}
	/* Made items after the last one with a file to stage: their values
	 * are made all the same (a script's run is part of generating). */
	if (!status)
		status = prepare_items(r, last, item, r->n);
	if (!status) {
		release_done(r, last, r->n);
		vf_arena_free(&r->batch_values);
		r->batch_first = r->n_jobs;
		if (vf_parallel_for(r->n_reseals, seal_batch_job, r))
			status = vg_fail(&r->job_err);
	}
	vf_progress_end(&r->progress);
	free(last);
	return status ? status : stage_records(r);
}

/* One writer at a time: two runs interleaving renames would mix seals.
 * The lock is on the vars directory itself (vf_store_lock, as varseal
 * takes it), so no lock file ends up in the user's git tree. */
static int lock_store(struct run *r)
{
	struct vf_error err;
	if (r->ctx.new_store)
		fprintf(stderr, "vargen: creating a new store at %s/vars\n", r->ctx.root);
	return vf_store_lock(r->ctx.root, &r->lock_fd, &err) == VF_OK ? 0 : vg_fail(&err);
}

static int generate_all(struct run *r)
{
	int loaded = r->n_reseals ? load_identities(r) : 0;
	if (loaded)
		return loaded;
	return stage_all(r);
}

/* Replacing existing values is asked once on a terminal (default no), and
 * refused elsewhere without --yes: a plain run never replaces anything. */
static int confirm_replace(struct run *r)
{
	size_t n = vg_count_replaced(r);
	if (n == 0 || r->yes)
		return 0;
	int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (tty >= 0) { /* the list only where someone can answer */
		close(tty);
		fflush(stdout);
		vg_print_plan(r, stderr, true, NULL);
	}
	char question[128];
	snprintf(question, sizeof(question), "Replace these %zu existing value%s? [y/N] ", n,
		 n == 1 ? "" : "s");
	char what[64];
	snprintf(what, sizeof(what), "replace %zu existing value%s", n, n == 1 ? "" : "s");
	return vg_confirm(question, n, what, false);
}

static void report(const struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (!vg_made(r, i))
			continue;
		printf("generated %s/%s:", r->items[i].machine ? r->items[i].machine : "shared",
		       r->items[i].g->name);
		for (size_t f = 0; f < r->items[i].g->n_files; f++)
			if (file_made(r, i, f))
				printf(" %s", r->items[i].g->files[f].name);
		printf("\n");
	}
	for (size_t k = 0; k < r->n_reseals; k++)
		printf("resealed %s\n", r->reseals[k].name);
}

/* After the commit, the store is judged as vargen check judges it, so
 * that generate exits 0 exactly when check would. When the plan left
 * nothing, every row check shows was sound or has just been made, replaced
 * or resealed: the verdict is known without reading the store again (on
 * a thousand machines that second scan is a tenth of the run). */
static int verdict(struct run *r, bool did_something)
{
	struct vg_plan_count c = {0};
	vg_print_plan(r, NULL, false, &c);
	if (c.n[PLAN_LEFT] == 0) {
		if (!did_something)
			printf("generate: everything is up to date\n");
		return 0;
	}
	struct vg_survey after;
	int status = vg_survey(&r->ctx, &after);
	if (status)
		return status;
	size_t bad = vg_survey_problems(&after);
	/* The same machines, so the same items in the same order: a row's
	 * item is the one decided on. */
	bool same = after.n_items == r->n;
	for (size_t i = 0; i < after.n_rows; i++) {
		const struct vg_row *row = &after.rows[i];
		if (vf_state_sound(row->st))
			continue;
		const struct decision *d = same && row->item != SIZE_MAX ? &r->dec[row->item] : NULL;
		if (d && d->act == ACT_LEAVE)
			printf("left\t%s\t%s: %s\n", row->name, vf_state_name(row->st), d->why);
		else if (row->item == SIZE_MAX)
			printf("left\t%s\t%s: %s\n", row->name, vf_state_name(row->st),
			       vg_row_why(row));
		else
			printf("left\t%s\t%s\n", row->name, vf_state_name(row->st));
	}
	if (bad) {
		fflush(stdout);
		fprintf(stderr, "vargen: generate: %zu left as they are (vargen check lists them):\n",
			bad);
		vg_survey_hints(&after, &r->ctx);
	} else if (!did_something) {
		printf("generate: everything is up to date\n");
	}
	vg_survey_free(&after);
	return bad ? VF_EXIT_ATTENTION : VF_EXIT_OK;
}

static int print_plan(struct run *r)
{
	struct vg_plan_count c = {0};
	size_t n = vg_print_plan(r, stdout, false, &c);
	if (r->ctx.new_store)
		printf("plan: no store at %s yet: generate would create %s/vars\n", r->ctx.root,
		       r->ctx.root);
	char summary[256];
	vg_plan_summary(&c, summary, sizeof(summary));
	printf("plan: %s; nothing written\n", n ? summary : "nothing to do");
	return n || r->ctx.new_store ? VF_EXIT_ATTENTION : VF_EXIT_OK;
}

static void free_run(struct run *r)
{
	for (size_t i = 0; r->values && i < r->n; i++) {
		for (size_t f = 0; r->values[i] && f < r->items[i].g->n_files; f++)
			vf_value_free(&r->values[i][f]);
		free(r->values[i]);
	}
	free(r->values);
	vf_arena_free(&r->batch_values); /* after the values in it were wiped */
	for (size_t i = 0; r->recipients && i < r->n; i++)
		vf_strings_free(&r->recipients[i]);
	free(r->recipients);
	free(r->jobs);
	for (size_t k = 0; k < r->n_reseals; k++) {
		free(r->reseals[k].name);
		free(r->reseals[k].secret);
		free(r->reseals[k].manifest_rel);
		free(r->reseals[k].manifest);
		vf_strings_free(&r->reseals[k].recipients);
	}
	free(r->reseals);
	free(r->wanted);
	free(r->item_index);
	for (size_t i = 0; r->dec && i < r->n; i++)
		free(r->dec[i].reseal_file);
	free(r->dec);
	free(r->existing_dependent);
	vg_survey_free(&r->before);
	vf_txn_abort(&r->txn);
	vf_identities_free(&r->ids);
	vg_prompts_free(&r->prompts);
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

/* The store as found, and what to do with each generator. */
static int survey_and_decide(struct run *r)
{
	int status = vg_survey(&r->ctx, &r->before);
	if (status)
		return status;
	r->items = r->before.items;
	r->n = r->before.n_items;
	vg_index_items(r);
	r->wanted = calloc(r->n + 1, sizeof(bool));
	if (!r->wanted || !alloc_values(r))
		return vg_error("out of memory");
	mark_wanted(r);
	status = vg_decide(r);
	if (!status && r->identity_files.n)
		status = vg_plan_reseals(r);
	/* An unused --prompt is said before anything is made. */
	return status ? status : vg_prompts_check_used(&r->prompts, r);
}

int cmd_generate(int argc, char **argv)
{
	struct run r = {.lock_fd = -1, .job_failed = ATOMIC_FLAG_INIT};
	int status = parse(argc, argv, &r);
	if (!status && r.plan) {
		status = survey_and_decide(&r);
		if (!status)
			status = print_plan(&r);
		free_run(&r);
		return status;
	}
	/* Plaintext that killed runs left on the RAM file system goes first. */
	if (!status)
		vg_clean_stale_script_dirs();
	if (!status)
		status = lock_store(&r);
	if (!status)
		vf_store_clean_temps(r.ctx.root);
	if (!status)
		status = survey_and_decide(&r);
	/* Prompt files read and a terminal found for the rest before asking
	 * to replace, and before any script runs. */
	if (!status)
		status = vg_prompts_prepare(&r.prompts, &r);
	if (!status)
		status = confirm_replace(&r);
	if (!status) {
		status = generate_all(&r);
		struct vf_error err;
		if (!status && vf_txn_commit(&r.txn, &err) != VF_OK)
			status = vg_fail(&err);
		if (!status) {
			report(&r);
			status = verdict(&r, r.n_jobs + r.n_reseals > 0);
		}
	}
	free_run(&r);
	return status < 0 ? 0 : status;
}
