/* varseal rekey [--machine M]... [--rotate] -i IDENTITY: reseals every
 * secret whose manifest differs from what the spec says (a machine key
 * changed, an admin came or went). Only the header is rewritten, so the
 * payload bytes stay; --rotate makes a new file key and payload too.
 *
 * With --plan it decides exactly as it would (the same consider_file),
 * then prints each secret it would reseal and why instead of resealing:
 * no identity, no lock, nothing written; exit status 1 while there is
 * something to reseal, so that scripts can use it as a check. */
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "vars/store.h"
#include "varseal.h"

static const char usage[] = "varseal rekey [-f SPEC] [--store DIR] [--machine M]... [--rotate] "
			    "-i IDENTITY...\n"
			    "       varseal rekey --plan [-f SPEC] [--store DIR] [--machine M]... "
			    "[--rotate]";
static const struct vf_help_row help_rows[] = {
	VS_STORE_HELP,
	{"-m, --machine", "M", "only machine M's secrets and kept key; repeatable"},
	{"--rotate", NULL, "reseal every secret with a new file key, even those already right"},
	{"--plan", NULL, "list what would be resealed and write nothing (needs no -i)"},
	VS_IDENTITY_HELP("an admin's identity, to open the secrets; repeatable"),
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Reseals the secrets whose recipients differ from the spec's (an admin added or\n"
	"removed, a machine's key changed); values stay, and with --rotate file keys change.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

/* Only rekey has --plan: its code sits past vs_long_option's, which other
 * commands extend. */

/* One secret to reseal: decided sequentially (cheap), done in parallel.
 * Paths are relative to the store root. */
struct reseal_job {
	char *secret, *manifest_path;
	char *manifest; /* the new manifest text */
	size_t manifest_len;
	const struct vf_strings *recipients;
	char *name, *reason; /* --plan only: what the plan prints */
};

/* --plan: recipients already named (admin or machine, or NULL when the
 * spec has no such key), so that a key missing from many manifests is
 * looked up once. */
struct known_key {
	char *key;
	const char *owner;
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
	bool rotate, plan;
	struct known_key *known;
	size_t n_known;
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
	struct vf_progress progress; /* of the reseal jobs */
};

/* ---- --plan: why a file is resealed ----------------------------------- */

/* One line of a manifest. */
struct line {
	const char *s;
	size_t len;
};

/* The non-empty lines of text (NULL text: none). */
static int split_lines(const char *text, size_t len, struct line **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	for (size_t i = 0; text && i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (text + i)) : len - i;
		if (l) {
			if (*n == cap) {
				struct line *grown = realloc(*out, (cap = cap * 2 + 8) * sizeof(*grown));
				if (!grown)
					return vs_error("out of memory");
				*out = grown;
			}
			(*out)[(*n)++] = (struct line){text + i, l};
		}
		i += l + 1;
	}
	return 0;
}

/* Whether two recipient lines name the same key, as vf_manifest_same
 * decides (an SSH key's comment does not count). Only SSH lines can be
 * equal without being byte-equal, so only those cost a comparison. */
static bool same_key(struct line a, struct line b)
{
	if (a.len == b.len && !memcmp(a.s, b.s, a.len))
		return true;
	if (a.len < 4 || b.len < 4 || memcmp(a.s, "ssh-", 4) || memcmp(b.s, "ssh-", 4))
		return false;
	bool same = false;
	struct vf_error err;
	return vf_manifest_same(a.s, a.len, b.s, b.len, &same, &err) == VF_OK && same;
}

static bool has_key(const struct line *lines, size_t n, struct line key)
{
	for (size_t i = 0; i < n; i++)
		if (same_key(lines[i], key))
			return true;
	return false;
}

/* Who key is in the spec: an admin's name, a machine's, or NULL. */
static const char *key_owner(const struct vf_spec *spec, struct line key)
{
	for (size_t i = 0; i < spec->n_admins; i++) {
		const char *rec = spec->admins[i].recipient;
		if (same_key((struct line){rec, strlen(rec)}, key))
			return spec->admins[i].name;
	}
	for (size_t i = 0; i < spec->n_machines; i++) {
		const char *rec = spec->machines[i].key;
		if (rec && same_key((struct line){rec, strlen(rec)}, key))
			return spec->machines[i].name;
	}
	return NULL;
}

/* key_owner, remembered: a removed admin's key is in every manifest. */
static int known_owner(struct rekey *r, struct line key, const char **owner)
{
	for (size_t i = 0; i < r->n_known; i++)
		if (strlen(r->known[i].key) == key.len && !memcmp(r->known[i].key, key.s, key.len)) {
			*owner = r->known[i].owner;
			return 0;
		}
	struct known_key *grown = realloc(r->known, (r->n_known + 1) * sizeof(*grown));
	char *copy = strndup(key.s, key.len);
	if (!grown || !copy) {
		if (grown)
			r->known = grown;
		free(copy);
		return vs_error("out of memory");
	}
	r->known = grown;
	*owner = key_owner(&r->v.spec, key);
	r->known[r->n_known++] = (struct known_key){copy, *owner};
	return 0;
}

/* A key short enough to read in a line: an SSH key as its type and the
 * end of its key (its comment is not part of it), anything else as its
 * start and end. Escaped: a manifest comes from the store, untrusted. */
static void print_key(FILE *out, struct line key)
{
	char shown[96], safe[sizeof(shown) * 4];
	const char *sp = memchr(key.s, ' ', key.len);
	if (key.len > 4 && !memcmp(key.s, "ssh-", 4) && sp) {
		const char *blob = sp + 1, *end = key.s + key.len;
		const char *blob_end = memchr(blob, ' ', (size_t)(end - blob));
		size_t blob_len = (size_t)((blob_end ? blob_end : end) - blob);
		size_t tail = blob_len < 8 ? blob_len : 8;
		snprintf(shown, sizeof(shown), "%.*s...%.*s", (int)(sp - key.s < 40 ? sp - key.s : 40),
			 key.s, (int)tail, blob + blob_len - tail);
	} else if (key.len > 20) {
		snprintf(shown, sizeof(shown), "%.10s...%.6s", key.s, key.s + key.len - 6);
	} else {
		snprintf(shown, sizeof(shown), "%.*s", (int)key.len, key.s);
	}
	vf_escape_controls(shown, safe, sizeof(safe));
	fputs(safe, out);
}

/* "+KEY(owner)" for each key of from missing in other (sign '+': added,
 * '-': removed). */
static int print_diff(struct rekey *r, FILE *out, char sign, const struct line *from,
		      size_t n_from, const struct line *other, size_t n_other, bool *first)
{
	for (size_t i = 0; i < n_from; i++) {
		if (has_key(other, n_other, from[i]))
			continue;
		const char *owner = NULL;
		if (known_owner(r, from[i], &owner))
			return 1;
		fprintf(out, "%s%c", *first ? "" : " ", sign);
		*first = false;
		print_key(out, from[i]);
		if (owner)
			fprintf(out, "(%s)", owner);
	}
	return 0;
}

/* Why the plan reseals a file: the recipients added and removed (have is
 * the stored manifest, NULL when missing; want the spec's), and --rotate. */
static int plan_reason(struct rekey *r, const uint8_t *have, size_t have_len, const char *want,
		       size_t want_len, bool same, char **reason)
{
	char *text = NULL;
	size_t text_len;
	FILE *out = open_memstream(&text, &text_len);
	if (!out)
		return vs_error("out of memory");
	struct line *old = NULL, *new = NULL;
	size_t n_old, n_new;
	int status = split_lines((const char *)have, have_len, &old, &n_old);
	if (!status)
		status = split_lines(want, want_len, &new, &n_new);
	if (!status && !same) {
		bool first = true;
		fputs("wrong-recipients: ", out);
		if (!have)
			fputs("no recipients file", out), first = false;
		else
			status = print_diff(r, out, '+', new, n_new, old, n_old, &first) ||
				 print_diff(r, out, '-', old, n_old, new, n_new, &first);
		if (first) /* reordered or repeated lines only */
			fputs("recipients file differs", out);
	}
	if (!status && r->rotate)
		fputs(same ? "--rotate: new file key" : "; --rotate: new file key", out);
	free(old);
	free(new);
	if (fclose(out) != 0 && !status)
		status = vs_error("out of memory");
	if (status)
		free(text);
	else
		*reason = text;
	return status;
}

/* Queues the secret for resealing if its manifest differs from the
 * recipients (or always, with --rotate); name is what --plan calls it. */
static int consider_file(struct rekey *r, const char *name, const char *secret,
			 const char *manifest_path, const struct vf_strings *recipients)
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
	if (rc != VF_OK || (same && !r->rotate)) {
		free(have);
		free(want);
		return rc != VF_OK ? vs_fail(NULL, &err) : 0;
	}
	char *reason = NULL, *plan_name = NULL;
	int status = 0;
	if (r->plan) {
		status = plan_reason(r, have, have_len, want, want_len, same, &reason);
		if (!status && !(plan_name = strdup(name)))
			status = vs_error("out of memory");
	}
	free(have);
	struct reseal_job *grown = status ? NULL : realloc(r->jobs, (r->n_jobs + 1) * sizeof(*grown));
	char *s = grown ? strdup(secret) : NULL, *m = grown ? strdup(manifest_path) : NULL;
	if (!grown || !s || !m) {
		if (grown)
			r->jobs = grown;
		free(s);
		free(m);
		free(want);
		free(reason);
		free(plan_name);
		return status ? status : vs_error("out of memory");
	}
	r->jobs = grown;
	r->jobs[r->n_jobs++] =
		(struct reseal_job){s, m, want, want_len, recipients, plan_name, reason};
	return 0;
}

static int reseal_job(void *ctx, size_t i)
{
	struct rekey *r = ctx;
	struct reseal_job *job = &r->jobs[i];
	struct vf_error err;
	if (vf_vars_stage_reseal(&r->txn, r->v.root, job->secret, job->manifest_path, job->manifest,
				 job->manifest_len, &r->v.ids, job->recipients, r->rotate,
				 &err) == VF_OK) {
		vf_progress_add(&r->progress, 1);
		return 0;
	}
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
		char *name = NULL;
		char *secret = vf_store_rel(owner, g->name, g->files[f].name, "secret");
		char *manifest = vf_store_rel(owner, g->name, g->files[f].name, "recipients");
		if (asprintf(&name, "%s/%s/%s", owner ? owner : "shared", g->name,
			     g->files[f].name) < 0)
			name = NULL;
		status = secret && manifest && name
				 ? consider_file(r, name, secret, manifest, recipients)
				 : vs_error("out of memory");
		free(name);
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
	char *name = NULL;
	char *secret = vf_store_machine_key_rel(machine, "secret");
	char *manifest = vf_store_machine_key_rel(machine, "recipients");
	if (asprintf(&name, "machine-keys/%s", machine) < 0)
		name = NULL;
	if (!status)
		status = secret && manifest && name ? consider_file(r, name, secret, manifest, admins)
						    : vs_error("out of memory");
	free(name);
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
	/* Imported shared generators no machine uses: sealed to the admins. */
	for (size_t i = 0; !status && !r->machines.n && i < spec->n_generators; i++)
		if (vf_vars_kept_unused(spec, &spec->generators[i]))
			status = rekey_generator(r, NULL, &spec->generators[i]);
	vf_strings_free(&shared_done);
	return status;
}

/* The plan's lines (the same format as vargen generate --plan and vargen
 * prune --plan) and its exit status: 1 while there is something to do. */
static int print_plan(const struct rekey *r)
{
	for (size_t i = 0; i < r->n_jobs; i++)
		printf("reseal\t%s\t%s\n", r->jobs[i].name, r->jobs[i].reason);
	if (r->n_jobs)
		printf("plan: %zu of %zu secrets would be resealed; nothing written\n", r->n_jobs,
		       r->checked);
	else
		printf("plan: nothing to reseal (%zu secrets checked); nothing written\n", r->checked);
	if (fflush(stdout) != 0)
		return vs_error("writing the plan: standard output failed");
	return r->n_jobs ? VF_EXIT_ATTENTION : VF_EXIT_OK;
}

/* The real run: identities only when something must be resealed. */
static int reseal_all(struct rekey *r)
{
	struct vf_error err;
	int status = r->n_jobs ? vs_vars_identities(&r->v) : 0;
	vs_progress_begin(&r->progress, "varseal: resealing", r->n_jobs, false,
			  r->n_jobs >= VS_PROGRESS_MIN_FILES);
	if (!status && vf_parallel_for(r->n_jobs, reseal_job, r) != 0)
		status = vs_fail(NULL, &r->job_err);
	vf_progress_end(&r->progress);
	if (!status)
		status = stage_records(r);
	if (!status && vf_txn_commit(&r->txn, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		printf("rekey: %zu of %zu secrets resealed%s\n", r->n_jobs, r->checked,
		       r->rotate ? " with new file keys" : "");
	return status;
}

static void rekey_free(struct rekey *r)
{
	vf_txn_abort(&r->txn);
	for (size_t i = 0; i < r->n_jobs; i++) {
		free(r->jobs[i].secret);
		free(r->jobs[i].manifest_path);
		free(r->jobs[i].manifest);
		free(r->jobs[i].name);
		free(r->jobs[i].reason);
	}
	free(r->jobs);
	free(r->touched);
	for (size_t i = 0; i < r->n_sets; i++) {
		vf_strings_free(r->recipient_sets[i]);
		free(r->recipient_sets[i]);
	}
	free(r->recipient_sets);
	for (size_t i = 0; i < r->n_known; i++)
		free(r->known[i].key);
	free(r->known);
	vf_strings_free(&r->machines);
	vs_vars_free(&r->v);
}

static int rekey_option(void *ctx, int c, const char *arg)
{
	struct rekey *r = ctx;
	struct vf_error err;
	switch (c) {
	case 'm': return vf_strings_add(&r->machines, arg, &err) == VF_OK ? 0 : vs_fail(NULL, &err);
	case OPT_ROTATE: r->rotate = true; return 0;
	case OPT_PLAN: r->plan = true; return 0; /* -i, if given, is parsed and not used */
	default: return vs_usage(usage);
	}
}

int cmd_rekey(int argc, char **argv)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"machine", required_argument, NULL, 'm'},
		{"rotate", no_argument, NULL, OPT_ROTATE},
		{"plan", no_argument, NULL, OPT_PLAN},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct rekey r = {.v.lock_fd = -1, .job_failed = ATOMIC_FLAG_INIT};
	int status = vs_vars_getopt(argc, argv, &r.v, "f:i:m:h", opts, &help, rekey_option, &r);
	if (!status && optind != argc)
		status = vs_usage(usage);
	if (!status)
		status = vs_vars_load(&r.v);
	for (size_t i = 0; !status && i < r.machines.n; i++)
		if (!vf_spec_machine(&r.v.spec, r.machines.items[i]))
			status = vs_error("%s: no machine named %s", r.v.spec_path,
					  r.machines.items[i]);
	/* The plan reads what rekey would read and writes nothing: no lock
	 * (which would create vars/), no clean-up of temporaries. */
	if (!status && !r.plan)
		status = vs_vars_identities_usable(&r.v);
	if (!status && !r.plan)
		status = vs_vars_lock(&r.v);
	if (!status)
		status = rekey_all(&r);
	if (!status)
		status = r.plan ? print_plan(&r) : reseal_all(&r);
	rekey_free(&r);
	return status < 0 ? 0 : status;
}
