/* varseal rekey [--machine M]... [--rotate] -i IDENTITY: reseals every
 * secret whose manifest differs from what the spec says (a machine key
 * changed, an admin came or went). Only the header is rewritten, so the
 * payload bytes stay; --rotate makes a new file key and payload too. */
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "vars/store.h"
#include "varseal.h"

static const char usage[] = "varseal rekey [-f SPEC] [--store DIR] [--machine M]... [--rotate] "
			    "-i IDENTITY...";

/* One secret to reseal: decided sequentially (cheap), done in parallel.
 * Paths are relative to the store root. */
struct reseal_job {
	char *secret, *manifest_path;
	char *manifest; /* the new manifest text */
	size_t manifest_len;
	const struct vf_strings *recipients;
};

/* A generator some of whose files are resealed: its commit record is
 * rewritten to name their new bytes. */
struct touched {
	const char *owner;
	const struct vf_spec_generator *g;
};

struct rekey {
	struct vs_vars v;
	struct vf_strings machines;
	bool rotate;
	struct vf_txn txn;
	size_t checked;
	struct vf_strings **recipient_sets; /* owned, one per generator owner */
	size_t n_sets;
	struct reseal_job *jobs;
	size_t n_jobs;
	struct touched *touched;
	size_t n_touched;
	struct vf_error job_err;
	atomic_flag job_failed;
};

/* Queues the secret for resealing if its manifest differs from the
 * recipients (or always, with --rotate). */
static int consider_file(struct rekey *r, const char *secret, const char *manifest_path,
			 const struct vf_strings *recipients)
{
	struct vf_error err;
	char *want = NULL;
	size_t want_len;
	uint8_t *have = NULL;
	size_t have_len;
	bool exists;
	if (vf_store_exists(r->v.root, secret, &exists, &err) != VF_OK)
		return vs_fail(NULL, &err);
	if (!exists)
		return 0; /* missing: vargen generate's business */
	r->checked++;
	if (vf_manifest_format(recipients->items, recipients->n, &want, &want_len, &err) != VF_OK ||
	    vf_store_read_at(r->v.root, manifest_path, &have, &have_len, &err) != VF_OK) {
		free(want);
		return vs_fail(NULL, &err);
	}
	bool same = false;
	enum vf_code rc = have ? vf_manifest_same((const char *)have, have_len, want, want_len,
						  &same, &err)
			       : VF_OK;
	free(have);
	if (rc != VF_OK) {
		free(want);
		return vs_fail(NULL, &err);
	}
	if (same && !r->rotate) {
		free(want);
		return 0;
	}
	struct reseal_job *grown = realloc(r->jobs, (r->n_jobs + 1) * sizeof(*grown));
	char *s = strdup(secret), *m = strdup(manifest_path);
	if (!grown || !s || !m) {
		if (grown)
			r->jobs = grown;
		free(s);
		free(m);
		free(want);
		return vs_error("out of memory");
	}
	r->jobs = grown;
	r->jobs[r->n_jobs++] = (struct reseal_job){s, m, want, want_len, recipients};
	return 0;
}

static int reseal_job(void *ctx, size_t i)
{
	struct rekey *r = ctx;
	struct reseal_job *job = &r->jobs[i];
	struct vf_error err;
	if (vf_vars_stage_reseal(&r->txn, r->v.root, job->secret, job->manifest_path, job->manifest,
				 job->manifest_len, &r->v.ids, job->recipients, r->rotate,
				 &err) == VF_OK)
		return 0;
	if (!atomic_flag_test_and_set(&r->job_failed))
		r->job_err = err;
	return 1;
}

/* Keeps a recipient set alive for the jobs that point at it. */
static struct vf_strings *new_set(struct rekey *r)
{
	struct vf_strings **grown = realloc(r->recipient_sets, (r->n_sets + 1) * sizeof(*grown));
	struct vf_strings *set = calloc(1, sizeof(*set));
	if (!grown || !set) {
		if (grown)
			r->recipient_sets = grown;
		free(set);
		return NULL;
	}
	r->recipient_sets = grown;
	r->recipient_sets[r->n_sets++] = set;
	return set;
}

static int rekey_generator(struct rekey *r, const char *owner, const struct vf_spec_generator *g)
{
	struct vf_strings *recipients = new_set(r);
	struct vf_error err;
	if (!recipients)
		return vs_error("out of memory");
	if (vf_vars_recipients(&r->v.spec, owner, g, recipients, &err) != VF_OK)
		return vs_fail(NULL, &err);
	int status = 0;
	size_t jobs_before = r->n_jobs;
	for (size_t f = 0; !status && f < g->n_files; f++) {
		if (!g->files[f].secret)
			continue;
		char *secret = vf_store_rel(owner, g->name, g->files[f].name, "secret");
		char *manifest = vf_store_rel(owner, g->name, g->files[f].name, "recipients");
		status = secret && manifest ? consider_file(r, secret, manifest, recipients)
					    : vs_error("out of memory");
		free(secret);
		free(manifest);
	}
	if (!status && r->n_jobs > jobs_before) {
		struct touched *grown = realloc(r->touched, (r->n_touched + 1) * sizeof(*grown));
		if (!grown)
			return vs_error("out of memory");
		r->touched = grown;
		r->touched[r->n_touched++] = (struct touched){owner, g};
	}
	return status;
}

/* After the reseal jobs: the commit records of the generators touched. */
static int stage_records(struct rekey *r)
{
	struct vf_error err;
	for (size_t i = 0; i < r->n_touched; i++)
		if (vf_vars_stage_amend(&r->txn, r->v.root, r->touched[i].owner, r->touched[i].g,
					false, &err) != VF_OK)
			return vs_fail(NULL, &err);
	return 0;
}

/* A machine's own key is sealed to the admins alone. */
static int rekey_machine_key(struct rekey *r, const char *machine)
{
	struct vf_strings *admins = new_set(r);
	struct vf_error err;
	int status = admins ? 0 : vs_error("out of memory");
	for (size_t i = 0; !status && i < r->v.spec.n_admins; i++)
		if (vf_strings_add(admins, r->v.spec.admins[i].recipient, &err) != VF_OK)
			status = vs_fail(NULL, &err);
	char *secret = vf_store_machine_key_rel(machine, "secret");
	char *manifest = vf_store_machine_key_rel(machine, "recipients");
	if (!status)
		status = secret && manifest ? consider_file(r, secret, manifest, admins)
					    : vs_error("out of memory");
	free(secret);
	free(manifest);
	return status;
}

static int rekey_all(struct rekey *r)
{
	const struct vf_spec *spec = &r->v.spec;
	struct vf_strings shared_done = {0};
	struct vf_error err;
	int status = 0;
	for (size_t m = 0; !status && m < spec->n_machines; m++) {
		const struct vf_spec_machine *machine = &spec->machines[m];
		if (r->machines.n && !vf_strings_has(&r->machines, machine->name))
			continue;
		const struct vf_spec_generator **gens = NULL;
		size_t n = 0;
		if (vf_vars_machine_generators(spec, machine, &gens, &n, &err) != VF_OK)
			status = vs_fail(NULL, &err);
		for (size_t i = 0; !status && i < n; i++) {
			if (gens[i]->share) {
				if (vf_strings_has(&shared_done, gens[i]->name))
					continue;
				vf_strings_add(&shared_done, gens[i]->name, NULL);
			}
			status = rekey_generator(r, gens[i]->share ? NULL : machine->name, gens[i]);
		}
		free(gens);
		if (!status)
			status = rekey_machine_key(r, machine->name);
	}
	vf_strings_free(&shared_done);
	return status;
}

int cmd_rekey(int argc, char **argv)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"machine", required_argument, NULL, 'm'},
		{"rotate", no_argument, NULL, OPT_ROTATE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct rekey r = {.v.lock_fd = -1, .job_failed = ATOMIC_FLAG_INIT};
	struct vf_error err;
	int c, status = 0;
	while (!status && (c = getopt_long(argc, argv, "f:i:m:h", opts, NULL)) != -1) {
		int used = vs_vars_option(&r.v, c, optarg);
		if (used < 0)
			status = 1;
		else if (used)
			continue;
		else if (c == 'm') {
			if (vf_strings_add(&r.machines, optarg, &err) != VF_OK)
				status = vs_fail(NULL, &err);
		} else if (c == OPT_ROTATE)
			r.rotate = true;
		else if (c == 'h') {
			printf("Usage: %s\n", usage);
			status = -1;
		} else
			status = vs_usage(usage);
	}
	if (!status && optind != argc)
		status = vs_usage(usage);
	if (!status)
		status = vs_vars_load(&r.v);
	for (size_t i = 0; !status && i < r.machines.n; i++)
		if (!vf_spec_machine(&r.v.spec, r.machines.items[i]))
			status = vs_error("%s: no machine named %s", r.v.spec_path,
					  r.machines.items[i]);
	if (!status)
		status = vs_vars_lock(&r.v);
	if (!status)
		status = rekey_all(&r);
	/* Keys are needed only when something must be resealed. */
	if (!status && r.n_jobs)
		status = vs_vars_identities(&r.v);
	if (!status && vf_parallel_for(r.n_jobs, reseal_job, &r) != 0)
		status = vs_fail(NULL, &r.job_err);
	if (!status)
		status = stage_records(&r);
	if (!status && vf_txn_commit(&r.txn, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		printf("rekey: %zu of %zu secrets resealed%s\n", r.n_jobs, r.checked,
		       r.rotate ? " with new file keys" : "");
	vf_txn_abort(&r.txn);
	for (size_t i = 0; i < r.n_jobs; i++) {
		free(r.jobs[i].secret);
		free(r.jobs[i].manifest_path);
		free(r.jobs[i].manifest);
	}
	free(r.jobs);
	free(r.touched);
	for (size_t i = 0; i < r.n_sets; i++) {
		vf_strings_free(r.recipient_sets[i]);
		free(r.recipient_sets[i]);
	}
	free(r.recipient_sets);
	vf_strings_free(&r.machines);
	vs_vars_free(&r.v);
	return status < 0 ? 0 : status;
}
