/* varseal machine keygen M...: makes the machines' identities offline,
 * records their recipients in the spec (in place, comments kept) and
 * keeps the private keys in the store sealed to the admins: all of them
 * in one transaction, or none.
 * varseal machine key M -i ADMIN [-o FILE]: prints that identity (or
 * writes it to a private file), for installing it on the host that runs
 * the VM. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/secmem.h"
#include "vars/machine_key.h"
#include "vars/store.h"
#include "varseal.h"

static const char usage[] = "varseal machine keygen [-f SPEC] [--store DIR] [--force] [--pq] "
			    "[-i ADMIN_KEY...] MACHINE...\n"
			    "       varseal machine key [-f SPEC] [--store DIR] -i IDENTITY... "
			    "[-o FILE [--force]] MACHINE";
static const struct vf_help_row help_rows[] = {
	{NULL, "keygen|key", "make the MACHINEs' keys, or print MACHINE's"},
	{NULL, "MACHINE", "the machine, as the spec names it (keygen: one or more)"},
	VS_STORE_HELP,
	{"--force", NULL, "keygen: replace the machines' keys; key -o: replace FILE"},
	{"--pq", NULL, "keygen: hybrid post-quantum keys (age1pq1...), for post-quantum admins"},
	{"-o, --output", "FILE", "key: write the key to FILE, mode 0600, not standard output"},
	VS_IDENTITY_HELP("an admin's identity: key needs one; keygen restores a lost key: line"),
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"keygen makes each MACHINE's age identity offline, writes its recipient into the spec\n"
	"as key: and keeps the identity in the store, sealed to the admins: for every MACHINE\n"
	"in one transaction, or for none. The keys are X25519, or hybrid post-quantum with\n"
	"--pq: of the admins' kind, as a file may not mix the two. key prints MACHINE's\n"
	"identity (or writes it to a new file only you can read), to install on the host\n"
	"that runs MACHINE.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

/* age-keygen's format, so the decrypted file can be used as-is. */
static int identity_text(const struct vf_identity *id, const char *recipient,
			 struct vf_value *out)
{
	struct vf_error err;
	char *secret;
	if (vf_native_identity_encode(id, &secret, &err) != VF_OK)
		return vs_fail(NULL, &err);
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	size_t cap = strlen(secret) + strlen(recipient) + 96;
	char *text = vf_scratch_alloc(cap);
	int status = 0;
	if (!text)
		status = vs_error("out of memory");
	else {
		int n = snprintf(text, cap, "# created: %s\n# public key: %s\n%s\n", when, recipient,
				 secret);
		if (vf_value_set(out, text, (size_t)n, &err) != VF_OK)
			status = vs_fail(NULL, &err);
		vf_scratch_free(text, cap);
	}
	vf_secure_free(secret);
	return status;
}

/* The recipient of the one age identity in text (as keygen keeps it);
 * name stands for it in messages. */
static int identity_recipient(const struct vf_value *text, const char *name, char **recipient)
{
	struct vf_identities ids = {0};
	struct vf_error err;
	int status = 0;
	if (vf_identities_parse((const char *)text->data, text->len, name, &ids, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	else if (ids.n != 1 || !vf_is_native_identity(ids.items[0]))
		status = vs_error("%s: not one age identity", name);
	else if (vf_identity_recipient(ids.items[0], recipient, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	vf_identities_free(&ids);
	return status;
}

/* Whether root/vars is missing: then keygen makes a new store, and says so. */
static bool store_missing(const struct vs_vars *v)
{
	size_t n = strlen(v->root) + sizeof("/vars");
	char *path = malloc(n);
	struct stat st;
	bool missing = false;
	if (path) {
		snprintf(path, n, "%s/vars", v->root);
		missing = lstat(path, &st) != 0 && errno == ENOENT;
	}
	free(path);
	return missing;
}

/* A new store that keygen failed to fill goes again, if it is still
 * empty; returns whether it went. */
static bool remove_new_store(const struct vs_vars *v)
{
	size_t n = strlen(v->root) + sizeof("/vars");
	char *path = malloc(n);
	bool removed = false;
	if (path) {
		snprintf(path, n, "%s/vars", v->root);
		removed = rmdir(path) == 0;
	}
	free(path);
	return removed;
}

static int kept_exists(const struct vs_vars *v, const char *machine, bool *kept)
{
	struct vf_error err;
	char *rel = vf_store_machine_key_rel(machine, "secret");
	if (!rel)
		return vs_error("out of memory");
	int status = 0;
	if (vf_store_exists(v->root, rel, kept, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	free(rel);
	return status;
}

/* Why keygen does not replace machine m's key, said as it is. */
static int refuse_existing(const struct vs_vars *v, const struct vf_spec_machine *m)
{
	struct vf_error err;
	bool kept = false;
	char *recorded = NULL;
	int status = kept_exists(v, m->name, &kept);
	if (status)
		return status;
	if (vf_machine_key_record(v->root, m->name, &recorded, &err) != VF_OK)
		return vs_fail(NULL, &err);
	const char *dir = "vars/machine-keys";
	if (!strncmp(m->key, "ssh-", 4))
		status = vs_error("machine %s's key in %s is an SSH host key, whose private key "
				  "stays on its host; --force replaces it with a new age key kept in "
				  "the store, then run varseal rekey",
				  m->name, v->spec_path);
	else if (kept && recorded && strcmp(recorded, m->key))
		status = vs_error("machine %s: %s names the key %s, but the key kept in %s/%s/%s is "
				  "%s; --force replaces both with a new key, then run varseal rekey",
				  m->name, v->spec_path, m->key, v->root, dir, m->name, recorded);
	else if (kept)
		status = vs_error("machine %s already has a key (%s), kept in %s/%s/%s; --force "
				  "replaces it, then run varseal rekey",
				  m->name, m->key, v->root, dir, m->name);
	else if (recorded && !strcmp(recorded, m->key))
		status = vs_error("machine %s's key (%s) is missing from the store: varseal machine "
				  "keygen made it, and %s/%s/%s/secret is gone; restore it (e.g. from "
				  "git), or --force makes a new key (install it on the host, then run "
				  "varseal rekey)",
				  m->name, m->key, v->root, dir, m->name);
	else if (recorded)
		status = vs_error("machine %s's key in %s (%s) is not kept in the store, which "
				  "records another key (%s) and keeps none; --force makes a new key, "
				  "then run varseal rekey",
				  m->name, v->spec_path, m->key, recorded);
	else
		status = vs_error("machine %s already has a key (%s), not made by varseal machine "
				  "keygen (the store keeps no key for it and records none); --force "
				  "replaces it with a new key kept in the store, then run varseal rekey",
				  m->name, m->key);
	free(recorded);
	return status;
}

/* One machine of a keygen: what it gets, and (for the transaction) its
 * new key sealed to the admins, or the recipient of the key restored. */
enum job_kind {
	JOB_NEW,      /* a new key */
	JOB_RESTORE,  /* the spec's line written back from the kept key */
	JOB_FINISHED, /* an interrupted keygen of it, finished by the settle */
};
struct job {
	const struct vf_spec_machine *m;
	enum job_kind kind;
	enum vf_key_settled settled;
	char *recipient;
	struct vf_buf sealed;
};

/* What keygen does for each machine in one run. */
struct keygen {
	struct vs_vars *v;
	struct job *jobs;
	size_t n;
	bool force;
	bool pq; /* --pq: hybrid post-quantum keys */
	struct vf_strings admins;
	char *manifest; /* the admins' recipients, as every kept key's manifest */
	size_t manifest_len;
};

static void keygen_free(struct keygen *k)
{
	for (size_t i = 0; k->jobs && i < k->n; i++) {
		free(k->jobs[i].recipient);
		vf_buf_free(&k->jobs[i].sealed);
	}
	free(k->jobs);
	vf_strings_free(&k->admins);
	free(k->manifest);
}

/* Every name a machine of the spec, none twice: checked before anything
 * is read or written. */
static int find_machines(struct keygen *k, char **names, size_t n)
{
	if (!(k->jobs = calloc(n, sizeof(*k->jobs))))
		return vs_error("out of memory");
	k->n = n;
	for (size_t i = 0; i < n; i++)
		vf_buf_init(&k->jobs[i].sealed);
	for (size_t i = 0; i < n; i++) {
		k->jobs[i].m = vf_spec_machine(&k->v->spec, names[i]);
		if (!k->jobs[i].m)
			return vs_error("%s: no machine named %s", k->v->spec_path, names[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(names[j], names[i])) {
				vs_error("machine %s is named twice", names[i]);
				return VF_EXIT_USAGE;
			}
	}
	return 0;
}

/* Takes the lock and settles what interrupted keygens left of the
 * machines' keys. */
static int lock_store(struct keygen *k)
{
	struct vf_error err;
	int status = vs_vars_lock(k->v);
	if (status)
		return status;
	vf_spec_clean_temps(k->v->spec_path);
	for (size_t i = 0; i < k->n; i++) {
		const struct vf_spec_machine *m = k->jobs[i].m;
		if (vf_machine_key_settle(k->v->root, m->name, m->key, &k->jobs[i].settled, &err) !=
		    VF_OK)
			return vs_fail(NULL, &err);
	}
	return 0;
}

/* keygen never replaces a kept key unless forced: with a key in the spec
 * it refuses (saying why); without one, a key the store keeps is restored
 * rather than replaced. One machine refused refuses them all. */
static int decide(struct keygen *k)
{
	for (size_t i = 0; i < k->n; i++) {
		struct job *j = &k->jobs[i];
		bool kept = false;
		int status;
		if (j->settled == VF_KEY_PENDING_FINISHED && !k->force)
			j->kind = JOB_FINISHED;
		else if (j->m->key && !k->force)
			return refuse_existing(k->v, j->m);
		else if (!j->m->key && !k->force && (status = kept_exists(k->v, j->m->name, &kept)))
			return status;
		else
			j->kind = kept ? JOB_RESTORE : JOB_NEW;
	}
	return 0;
}

/* A new identity for j's machine, sealed to the admins; its text (the
 * secret) is gone once sealed. */
static int make_key(struct keygen *k, struct job *j)
{
	struct vf_error err;
	struct vf_identity *id = NULL;
	struct vf_value text = {0};
	int status = 0;
	if (vf_native_identity_generate(k->pq, &id, &err) != VF_OK ||
	    vf_identity_recipient(id, &j->recipient, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		status = identity_text(id, j->recipient, &text);
	if (!status && vf_seal(&k->admins, text.data, text.len, &j->sealed, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	vf_value_free(&text);
	vf_identity_free(id);
	return status;
}

/* The spec lost j's machine's `key:` (a bad merge) while the store keeps
 * its key: the line is written back from the kept key, which an admin's
 * identity opens, so the key installed on the host stays the machine's. */
static int restored_recipient(struct keygen *k, struct job *j)
{
	struct vs_vars *v = k->v;
	struct vf_error err;
	char *rel = vf_store_machine_key_rel(j->m->name, "secret");
	struct vf_value text = {0};
	int status = rel ? 0 : vs_error("out of memory");
	if (!status && v->identity_files.n == 0)
		status = vs_error("machine %s has no key in %s, but the store keeps one (%s/%s): "
				  "varseal machine keygen -i ADMIN_KEY %s restores it (--force makes "
				  "a new one)",
				  j->m->name, v->spec_path, v->root, rel, j->m->name);
	if (!status && v->ids.n == 0)
		status = vs_vars_identities(v);
	if (!status && vf_unseal(v->root, rel, &v->ids, &text, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		status = identity_recipient(&text, rel, &j->recipient);
	vf_value_free(&text);
	free(rel);
	return status;
}

/* Everything the transaction writes, made in memory first. */
static int prepare(struct keygen *k)
{
	struct vf_error err;
	for (size_t i = 0; i < k->v->spec.n_admins; i++)
		if (vf_strings_add(&k->admins, k->v->spec.admins[i].recipient, &err) != VF_OK)
			return vs_fail(NULL, &err);
	if (vf_manifest_format(k->admins.items, k->admins.n, &k->manifest, &k->manifest_len,
			       &err) != VF_OK)
		return vs_fail(NULL, &err);
	int status = 0;
	for (size_t i = 0; !status && i < k->n; i++)
		if (k->jobs[i].kind == JOB_RESTORE)
			status = restored_recipient(k, &k->jobs[i]);
		else if (k->jobs[i].kind == JOB_NEW)
			status = make_key(k, &k->jobs[i]);
	return status;
}

/* The spec and the store, for every machine at once
 * (vf_machine_keys_install). */
static int install(struct keygen *k)
{
	struct vf_machine_key_new *keys = calloc(k->n, sizeof(*keys));
	if (!keys)
		return vs_error("out of memory");
	size_t n = 0;
	for (size_t i = 0; i < k->n; i++) {
		const struct job *j = &k->jobs[i];
		if (j->kind == JOB_FINISHED)
			continue;
		keys[n] = (struct vf_machine_key_new){j->m->name, j->recipient, NULL, 0, NULL, 0};
		if (j->kind == JOB_NEW)
			keys[n] = (struct vf_machine_key_new){j->m->name,    j->recipient,
							      j->sealed.data, j->sealed.len,
							      k->manifest,   k->manifest_len};
		n++;
	}
	struct vf_error err;
	int status = 0;
	if (n && vf_machine_keys_install(&k->v->spec, k->v->root, keys, n, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	free(keys);
	return status;
}

/* What became of each machine, in the order they were named. */
static void report(const struct keygen *k)
{
	const struct vs_vars *v = k->v;
	for (size_t i = 0; i < k->n; i++) {
		const struct job *j = &k->jobs[i];
		const char *name = j->m->name;
		if (j->kind == JOB_FINISHED)
			printf("machine %s: %s\n  an interrupted varseal machine keygen, now finished: "
			       "recorded in %s; private key kept in %s/vars/machine-keys/%s/secret\n",
			       name, j->m->key, v->spec_path, v->root, name);
		else if (j->kind == JOB_RESTORE)
			printf("machine %s: %s\n  restored in %s from the key kept in "
			       "%s/vars/machine-keys/%s/secret\n",
			       name, j->recipient, v->spec_path, v->root, name);
		else
			printf("machine %s: %s\n  recorded in %s; private key sealed to %zu admin(s) in "
			       "%s/vars/machine-keys/%s/secret\n",
			       name, j->recipient, v->spec_path, k->admins.n, v->root, name);
	}
}

/* A new key of the other kind than the admins' would make the machine's
 * files mix post-quantum and classic recipients, which age refuses (and
 * the spec check after it): said before any key is made. The spec has
 * checked that the admins are of one kind. A key restored is whatever
 * kind it was. */
static int check_kind(const struct keygen *k)
{
	const struct vf_spec *spec = &k->v->spec;
	bool admins_pq = spec->admins[0].post_quantum, making = false;
	for (size_t i = 0; i < k->n; i++)
		making |= k->jobs[i].kind == JOB_NEW;
	if (!making || k->pq == admins_pq)
		return 0;
	/* The admins, named (with their keys when classic, the ones to blame). */
	char admins[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < spec->n_admins && used < sizeof(admins) - 1; i++) {
		int w = snprintf(admins + used, sizeof(admins) - used, "%s%s%s%s", i ? ", " : "",
				 spec->admins[i].name, admins_pq ? "" : " ",
				 admins_pq ? "" : spec->admins[i].recipient);
		used += w > 0 ? (size_t)w : 0;
	}
	if (admins_pq)
		return vs_error("%s: the admins' keys are post-quantum (%s): a classic machine key "
				"would make the machines' files mix post-quantum and classic "
				"recipients, which age refuses; give --pq",
				k->v->spec_path, admins);
	return vs_error("%s: the admins' keys are classic (%s): a post-quantum machine key would "
			"make the machines' files mix post-quantum and classic recipients, which age "
			"refuses; leave out --pq, or give the admins post-quantum keys first",
			k->v->spec_path, admins);
}

/* The store's lock is held from the settle to the install; a missing
 * store is made only once every machine is decided and its key made. */
static int keygen(struct vs_vars *v, char **names, size_t n, bool force, bool pq)
{
	struct keygen k = {.v = v, .force = force, .pq = pq};
	int status = find_machines(&k, names, n);
	if (!status && v->spec.n_admins == 0)
		status = vs_error("%s: no admins: the machines' keys would be sealed to nobody",
				  v->spec_path);

	bool new_store = !status && store_missing(v);
	if (!status && !new_store)
		status = lock_store(&k);
	if (!status)
		status = decide(&k);
	if (!status)
		status = check_kind(&k);
	if (!status)
		status = prepare(&k);
	bool made = !status && new_store;
	if (made)
		status = lock_store(&k);
	if (!status)
		status = install(&k);
	if (!status)
		report(&k);
	fflush(stdout);
	if (made && (!status || !remove_new_store(v)))
		fprintf(stderr, "varseal: creating a new store at %s/vars\n", v->root);
	keygen_free(&k);
	return status;
}

/* Why machine m has no kept key, said as it is: an SSH host key never had
 * one (its private key stays on its host); an age key made by keygen had
 * one that is now missing from the store; no key at all was never made. */
static int missing_kept_key(const struct vs_vars *v, const struct vf_spec_machine *m,
			    const char *rel)
{
	if (!m->key)
		return vs_error("%s/%s: no key kept for machine %s (varseal machine keygen %s)",
				v->root, rel, m->name, m->name);
	if (!strncmp(m->key, "ssh-", 4))
		return vs_error("%s/%s: no key kept for machine %s: its key in the spec is an SSH "
				"host key, whose private key stays on its host",
				v->root, rel, m->name);
	return vs_error("%s/%s: missing: machine %s's key is in the spec but not in the store "
			"(restore the file, e.g. from git, or make a new key with varseal machine "
			"keygen --force %s and install it on the host)",
			v->root, rel, m->name, m->name);
}

/* The kept key is printed only if it is the key the spec names (when it
 * names one): a key installed on the host that the spec does not name
 * would leave the machine unable to open its secrets. */
static int check_printed(const struct vs_vars *v, const struct vf_spec_machine *m,
			 const struct vf_value *key, const char *rel)
{
	char *recipient = NULL;
	int status = m->key ? identity_recipient(key, rel, &recipient) : 0;
	if (!status && m->key && strcmp(recipient, m->key))
		status = vs_error("%s/%s holds the key %s, but %s names %s for machine %s; "
				  "varseal machine keygen --force %s makes a new one",
				  v->root, rel, recipient, v->spec_path, m->key, m->name, m->name);
	free(recipient);
	return status;
}

static int print_key(struct vs_vars *v, const char *machine, const char *output, bool force)
{
	const struct vf_spec_machine *m = vf_spec_machine(&v->spec, machine);
	if (!m)
		return vs_error("%s: no machine named %s", v->spec_path, machine);
	char *rel = NULL;
	struct vf_value key = {0};
	struct vf_error err;
	struct vs_private_out out = {0};
	bool exists = false;
	int status = 0;
	/* An interrupted keygen may keep the key the spec names as pending. */
	if (vf_machine_key_secret_rel(v->root, machine, m->key, &rel, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && vf_store_exists(v->root, rel, &exists, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && !exists)
		status = missing_kept_key(v, m, rel);
	/* Where it goes is settled before the key is decrypted. */
	if (!status)
		status = vs_private_open(&out, output, force);
	if (!status)
		status = vs_vars_identities(v);
	if (!status && vf_unseal(v->root, rel, &v->ids, &key, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		status = check_printed(v, m, &key, rel);
	if (!status)
		status = vs_private_commit(&out, key.data, key.len);
	vs_private_abort(&out);
	vf_value_free(&key);
	free(rel);
	return status;
}

int cmd_machine(int argc, char **argv)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"force", no_argument, NULL, OPT_FORCE},
		{"pq", no_argument, NULL, OPT_PQ},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		vf_help_print(stdout, &help);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "keygen") && strcmp(argv[1], "key")))
		return vs_usage(usage);
	bool is_keygen = !strcmp(argv[1], "keygen");
	argc--;
	argv++;
	struct vs_vars v = {.lock_fd = -1};
	bool force = false, pq = false;
	const char *output = NULL;
	int c, status = 0;
	while (!status && (c = getopt_long(argc, argv, "f:i:o:h", opts, NULL)) != -1) {
		int used = vs_vars_option(&v, c, optarg);
		if (used < 0)
			status = VF_EXIT_ERROR;
		else if (used)
			continue;
		else if (c == OPT_FORCE)
			force = true;
		else if (c == OPT_PQ)
			pq = true;
		else if (c == 'o')
			output = optarg;
		else if (c == 'h') {
			vf_help_print(stdout, &help);
			status = -1;
		} else
			status = vs_usage(usage);
	}
	/* keygen takes machines, key one machine and perhaps a file. */
	if (!status && (is_keygen ? argc == optind || output : argc - optind != 1 ||
							(force && !output) || pq))
		status = vs_usage(usage);
	v.may_create = is_keygen; /* keygen comes before the first generate */
	if (!status)
		status = vs_vars_load(&v);
	if (!status)
		status = is_keygen ? keygen(&v, argv + optind, (size_t)(argc - optind), force, pq)
				   : print_key(&v, argv[optind], output, force);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
