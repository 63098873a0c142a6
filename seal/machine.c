/* varseal machine keygen M: makes machine M's identity offline, records
 * its recipient in the spec (in place, comments kept) and keeps the
 * private key in the store sealed to the admins.
 * varseal machine key M -i ADMIN: prints that identity, for installing it
 * on the host that runs the VM. */
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

static const char usage[] = "varseal machine keygen [-f SPEC] [--store DIR] [--force] "
			    "[-i ADMIN_KEY...] MACHINE\n"
			    "       varseal machine key [-f SPEC] [--store DIR] -i IDENTITY... "
			    "MACHINE";
static const struct vs_help_row help_rows[] = {
	{NULL, "keygen|key", "make MACHINE's key, or print it"},
	{NULL, "MACHINE", "the machine, as the spec names it"},
	VS_STORE_HELP,
	{"--force", NULL, "keygen: replace the machine's key with a new one"},
	VS_IDENTITY_HELP("an admin's identity: key needs one; keygen restores a lost key: line"),
	VS_HELP_OPTION,
};
static const struct vs_help help = {
	usage,
	"keygen makes MACHINE's age identity offline, writes its recipient into the spec as\n"
	"key: and keeps the identity in the store, sealed to the admins. key prints that\n"
	"identity, to install on the host that runs MACHINE.",
	VS_HELP_ROWS(help_rows),
};

/* age-keygen's format, so the decrypted file can be used as-is. */
static int identity_text(const struct vf_identity *id, const char *recipient,
			 struct vf_value *out)
{
	struct vf_error err;
	char *secret;
	if (vf_x25519_identity_encode(id, &secret, &err) != VF_OK)
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
	else if (ids.n != 1 || strcmp(ids.items[0]->ops->type, "X25519"))
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

/* A new identity for machine m, sealed to the admins, installed in the
 * spec and the store together (vf_machine_key_install). */
static int make_key(struct vs_vars *v, const struct vf_spec_machine *m)
{
	struct vf_error err;
	struct vf_identity *id = NULL;
	char *recipient = NULL;
	struct vf_value text = {0};
	struct vf_strings admins = {0};
	struct vf_buf sealed;
	vf_buf_init(&sealed);
	char *manifest = NULL;
	size_t manifest_len = 0;
	int status = 0;
	if (vf_x25519_identity_generate(&id, &err) != VF_OK ||
	    vf_x25519_identity_recipient(id, &recipient, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		status = identity_text(id, recipient, &text);
	for (size_t i = 0; !status && i < v->spec.n_admins; i++)
		if (vf_strings_add(&admins, v->spec.admins[i].recipient, &err) != VF_OK)
			status = vs_fail(NULL, &err);
	if (!status && (vf_seal(&admins, text.data, text.len, &sealed, &err) != VF_OK ||
			vf_manifest_format(admins.items, admins.n, &manifest, &manifest_len, &err) !=
				VF_OK ||
			vf_machine_key_install(&v->spec, v->root, m->name, recipient, sealed.data,
					       sealed.len, manifest, manifest_len, &err) != VF_OK))
		status = vs_fail(NULL, &err);
	if (!status)
		printf("machine %s: %s\n  recorded in %s; private key sealed to %zu admin(s) in "
		       "%s/vars/machine-keys/%s/secret\n",
		       m->name, recipient, v->spec_path, admins.n, v->root, m->name);
	free(manifest);
	vf_buf_free(&sealed);
	vf_strings_free(&admins);
	vf_value_free(&text);
	free(recipient);
	vf_identity_free(id);
	return status;
}

/* The spec lost machine m's `key:` (a bad merge) while the store keeps
 * its key: the line is written back from the kept key, which an admin's
 * identity opens, so the key installed on the host stays the machine's. */
static int restore_key(struct vs_vars *v, const struct vf_spec_machine *m)
{
	struct vf_error err;
	char *rel = vf_store_machine_key_rel(m->name, "secret");
	struct vf_value text = {0};
	char *recipient = NULL;
	int status = rel ? 0 : vs_error("out of memory");
	if (!status && v->identity_files.n == 0)
		status = vs_error("machine %s has no key in %s, but the store keeps one (%s/%s): "
				  "varseal machine keygen -i ADMIN_KEY %s restores it (--force makes "
				  "a new one)",
				  m->name, v->spec_path, v->root, rel, m->name);
	if (!status)
		status = vs_vars_identities(v);
	if (!status && vf_unseal(v->root, rel, &v->ids, &text, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		status = identity_recipient(&text, rel, &recipient);
	if (!status &&
	    vf_machine_key_restore(&v->spec, v->root, m->name, recipient, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		printf("machine %s: %s\n  restored in %s from the key kept in %s/%s\n", m->name,
		       recipient, v->spec_path, v->root, rel);
	free(recipient);
	vf_value_free(&text);
	free(rel);
	return status;
}

/* Takes the lock and settles what an interrupted keygen left. */
static int lock_store(struct vs_vars *v, const struct vf_spec_machine *m,
		      enum vf_key_settled *settled)
{
	struct vf_error err;
	int status = vs_vars_lock(v);
	if (status)
		return status;
	vf_spec_clean_temps(v->spec_path);
	if (vf_machine_key_settle(v->root, m->name, m->key, settled, &err) != VF_OK)
		return vs_fail(NULL, &err);
	return 0;
}

/* keygen never replaces a kept key unless forced: with a key in the spec
 * it refuses (saying why); without one, a key the store keeps is restored
 * rather than replaced. The store's lock is held throughout. */
static int keygen(struct vs_vars *v, const char *machine, bool force)
{
	const struct vf_spec_machine *m = vf_spec_machine(&v->spec, machine);
	if (!m)
		return vs_error("%s: no machine named %s", v->spec_path, machine);
	if (v->spec.n_admins == 0)
		return vs_error("%s: no admins: the machine's key would be sealed to nobody",
				v->spec_path);
	bool new_store = store_missing(v);
	enum vf_key_settled settled = VF_KEY_NOTHING_PENDING;
	int status = new_store ? 0 : lock_store(v, m, &settled);
	if (status)
		return status;
	if (settled == VF_KEY_PENDING_FINISHED && !force) {
		printf("machine %s: %s\n  an interrupted varseal machine keygen, now finished: "
		       "recorded in %s; private key kept in %s/vars/machine-keys/%s/secret\n",
		       m->name, m->key, v->spec_path, v->root, m->name);
		return 0;
	}
	if (m->key && !force)
		return refuse_existing(v, m);
	bool kept = false;
	if (!m->key && !force && (status = kept_exists(v, m->name, &kept)) != 0)
		return status;
	if (kept)
		return restore_key(v, m);
	if (!new_store)
		return make_key(v, m);
	if ((status = lock_store(v, m, &settled)) != 0)
		return status;
	status = make_key(v, m);
	if (!status || !remove_new_store(v))
		fprintf(stderr, "varseal: creating a new store at %s/vars\n", v->root);
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

static int print_key(struct vs_vars *v, const char *machine)
{
	const struct vf_spec_machine *m = vf_spec_machine(&v->spec, machine);
	if (!m)
		return vs_error("%s: no machine named %s", v->spec_path, machine);
	char *rel = NULL;
	struct vf_value key = {0};
	struct vf_error err;
	bool exists = false;
	int status = 0;
	/* An interrupted keygen may keep the key the spec names as pending. */
	if (vf_machine_key_secret_rel(v->root, machine, m->key, &rel, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && vf_store_exists(v->root, rel, &exists, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && !exists)
		status = missing_kept_key(v, m, rel);
	if (!status)
		status = vs_vars_identities(v);
	if (!status && vf_unseal(v->root, rel, &v->ids, &key, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		status = check_printed(v, m, &key, rel);
	if (!status && vf_write_all(STDOUT_FILENO, key.data, key.len, "standard output", &err) !=
			       VF_OK)
		status = vs_fail(NULL, &err);
	vf_value_free(&key);
	free(rel);
	return status;
}

int cmd_machine(int argc, char **argv)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"force", no_argument, NULL, OPT_FORCE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		vs_print_help(&help);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "keygen") && strcmp(argv[1], "key")))
		return vs_usage(usage);
	bool is_keygen = !strcmp(argv[1], "keygen");
	argc--;
	argv++;
	struct vs_vars v = {.lock_fd = -1};
	bool force = false;
	int c, status = 0;
	while (!status && (c = getopt_long(argc, argv, "f:i:h", opts, NULL)) != -1) {
		int used = vs_vars_option(&v, c, optarg);
		if (used < 0)
			status = VF_EXIT_ERROR;
		else if (used)
			continue;
		else if (c == OPT_FORCE)
			force = true;
		else if (c == 'h') {
			vs_print_help(&help);
			status = -1;
		} else
			status = vs_usage(usage);
	}
	if (!status && argc - optind != 1)
		status = vs_usage(usage);
	v.may_create = is_keygen; /* keygen comes before the first generate */
	if (!status)
		status = vs_vars_load(&v);
	if (!status)
		status = is_keygen ? keygen(&v, argv[optind], force) : print_key(&v, argv[optind]);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
