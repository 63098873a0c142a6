/* varseal machine keygen M: makes machine M's identity offline, records
 * its recipient in the spec (in place, comments kept) and keeps the
 * private key in the store sealed to the admins.
 * varseal machine key M -i ADMIN: prints that identity, for installing it
 * on the host that runs the VM. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/secmem.h"
#include "vars/store.h"
#include "varseal.h"

static const char usage[] = "varseal machine keygen [-f SPEC] [--store DIR] [--force] MACHINE\n"
			    "       varseal machine key [-f SPEC] [--store DIR] -i IDENTITY... "
			    "MACHINE";

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

/* Writes the edited spec beside the original, checks that it loads with
 * the new key, then renames it over the original. */
static int write_spec(struct vs_vars *v, const char *machine, const char *recipient)
{
	struct vf_error err;
	char *text = NULL;
	size_t len = 0;
	if (vf_spec_edit_machine_key(&v->spec, machine, recipient, &text, &len, &err) != VF_OK)
		return vs_fail(NULL, &err);
	struct stat st;
	mode_t mode = stat(v->spec_path, &st) == 0 ? st.st_mode & 0777 : 0644;
	char check[4096];
	snprintf(check, sizeof(check), "%s.varseal-check", v->spec_path);
	struct vf_atomic out;
	int status = 0;
	FILE *f = fopen(check, "wx");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
		status = vs_error("%s: cannot write", check);
	struct vf_spec edited = {0};
	if (!status && vf_spec_load(check, &edited, &err) != VF_OK)
		status = vs_error("the edited spec does not load (%s); %s left unchanged", err.msg,
				  v->spec_path);
	const struct vf_spec_machine *m = status ? NULL : vf_spec_machine(&edited, machine);
	if (!status && (!m || !m->key || strcmp(m->key, recipient)))
		status = vs_error("could not record the key in %s: add 'key: %s' to machine %s",
				  v->spec_path, recipient, machine);
	vf_spec_free(&edited);
	unlink(check);
	if (!status && vf_atomic_open(&out, v->spec_path, mode, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	else if (!status) {
		fchmod(out.fd, mode);
		if (vf_write_all(out.fd, text, len, v->spec_path, &err) != VF_OK ||
		    vf_atomic_commit(&out, true, &err) != VF_OK) {
			vf_atomic_abort(&out);
			status = vs_fail(NULL, &err);
		}
	}
	free(text);
	return status;
}

static int keygen(struct vs_vars *v, const char *machine, bool force)
{
	const struct vf_spec_machine *m = vf_spec_machine(&v->spec, machine);
	if (!m)
		return vs_error("%s: no machine named %s", v->spec_path, machine);
	if (m->key && !force)
		return vs_error("machine %s already has a key (%s); --force replaces it, then run "
				"varseal rekey",
				machine, m->key);
	if (v->spec.n_admins == 0)
		return vs_error("%s: no admins: the machine's key would be sealed to nobody",
				v->spec_path);
	struct vf_error err;
	struct vf_identity *id = NULL;
	char *recipient = NULL;
	struct vf_value text = {0};
	struct vf_strings admins = {0};
	struct vf_txn txn = {0};
	int status = vs_vars_lock(v);
	if (!status && (vf_x25519_identity_generate(&id, &err) != VF_OK ||
			vf_x25519_identity_recipient(id, &recipient, &err) != VF_OK))
		status = vs_fail(NULL, &err);
	if (!status)
		status = identity_text(id, recipient, &text);
	for (size_t i = 0; !status && i < v->spec.n_admins; i++)
		if (vf_strings_add(&admins, v->spec.admins[i].recipient, &err) != VF_OK)
			status = vs_fail(NULL, &err);
	char *secret = vf_store_machine_key_rel(machine, "secret");
	char *manifest_path = vf_store_machine_key_rel(machine, "recipients");
	struct vf_buf sealed;
	vf_buf_init(&sealed);
	char *manifest = NULL;
	size_t manifest_len = 0;
	if (!status && (!secret || !manifest_path))
		status = vs_error("out of memory");
	if (!status && (vf_seal(&admins, text.data, text.len, &sealed, &err) != VF_OK ||
			vf_manifest_format(admins.items, admins.n, &manifest, &manifest_len, &err) !=
				VF_OK ||
			vf_txn_write(&txn, v->root, secret, sealed.data, sealed.len, &err) != VF_OK ||
			vf_txn_write(&txn, v->root, manifest_path, manifest, manifest_len, &err) !=
				VF_OK ||
			vf_txn_commit(&txn, &err) != VF_OK))
		status = vs_fail(NULL, &err);
	if (!status)
		status = write_spec(v, machine, recipient);
	if (!status)
		printf("machine %s: %s\n  recorded in %s; private key sealed to %zu admin(s) in "
		       "%s/%s\n",
		       machine, recipient, v->spec_path, admins.n, v->root, secret);
	vf_txn_abort(&txn);
	free(manifest);
	vf_buf_free(&sealed);
	free(secret);
	free(manifest_path);
	vf_strings_free(&admins);
	vf_value_free(&text);
	free(recipient);
	vf_identity_free(id);
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

static int print_key(struct vs_vars *v, const char *machine)
{
	if (!vf_spec_machine(&v->spec, machine))
		return vs_error("%s: no machine named %s", v->spec_path, machine);
	char *rel = vf_store_machine_key_rel(machine, "secret");
	struct vf_value key = {0};
	struct vf_error err;
	bool exists = false;
	int status = rel ? 0 : vs_error("out of memory");
	const struct vf_spec_machine *m = vf_spec_machine(&v->spec, machine);
	if (!status && vf_store_exists(v->root, rel, &exists, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && !exists)
		status = missing_kept_key(v, m, rel);
	if (!status)
		status = vs_vars_identities(v);
	if (!status && vf_unseal(v->root, rel, &v->ids, &key, &err) != VF_OK)
		status = vs_fail(NULL, &err);
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
		printf("Usage: %s\n", usage);
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
			status = 1;
		else if (used)
			continue;
		else if (c == OPT_FORCE)
			force = true;
		else if (c == 'h') {
			printf("Usage: %s\n", usage);
			status = -1;
		} else
			status = vs_usage(usage);
	}
	if (!status && argc - optind != 1)
		status = vs_usage(usage);
	if (!status)
		status = vs_vars_load(&v);
	if (!status)
		status = is_keygen ? keygen(&v, argv[optind], force) : print_key(&v, argv[optind]);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
