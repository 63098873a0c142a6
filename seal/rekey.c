/* varseal rekey [--machine M]... [--rotate] -i IDENTITY: reseals every
 * secret whose manifest differs from what the spec says (a machine key
 * changed, an admin came or went). Only the header is rewritten, so the
 * payload bytes stay; --rotate makes a new file key and payload too. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "varseal.h"

static const char usage[] = "varseal rekey [-f SPEC] [--store DIR] [--machine M]... [--rotate] "
			    "-i IDENTITY...";

struct rekey {
	struct vs_vars v;
	struct vf_strings machines;
	bool rotate;
	struct vf_txn txn;
	size_t resealed, checked;
};

/* Reseals one secret at dir/{secret,recipients} if needed. */
static int rekey_file(struct rekey *r, const char *secret, const char *manifest_path,
		      const struct vf_strings *recipients)
{
	struct vf_error err;
	char *want = NULL;
	size_t want_len;
	uint8_t *have = NULL, *file = NULL;
	size_t have_len, file_len;
	int status = 0;
	if (!vf_store_exists(secret))
		return 0; /* missing: vargen generate's business */
	r->checked++;
	if (vf_manifest_format(recipients->items, recipients->n, &want, &want_len, &err) != VF_OK ||
	    vf_store_read(manifest_path, &have, &have_len, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	bool same = !status && have && !strcmp((char *)have, want);
	if (!status && (!same || r->rotate)) {
		struct vf_buf out;
		vf_buf_init(&out);
		if (!r->v.ids.n)
			status = vs_vars_identities(&r->v);
		if (!status && vf_store_read(secret, &file, &file_len, &err) != VF_OK)
			status = vs_fail(NULL, &err);
		if (!status && vf_reseal(file, file_len, &r->v.ids, recipients, r->rotate, &out,
					 &err) != VF_OK)
			status = vs_fail(secret, &err);
		if (!status && (vf_txn_write(&r->txn, secret, out.data, out.len, &err) != VF_OK ||
				vf_txn_write(&r->txn, manifest_path, want, want_len, &err) != VF_OK))
			status = vs_fail(NULL, &err);
		if (!status)
			r->resealed++;
		vf_buf_free(&out);
	}
	free(file);
	free(have);
	free(want);
	return status;
}

static int rekey_generator(struct rekey *r, const char *owner, const struct vf_spec_generator *g)
{
	struct vf_strings recipients = {0};
	struct vf_error err;
	if (vf_vars_recipients(&r->v.spec, owner, g, &recipients, &err) != VF_OK)
		return vs_fail(NULL, &err);
	int status = 0;
	for (size_t f = 0; !status && f < g->n_files; f++) {
		if (!g->files[f].secret)
			continue;
		char *secret = vf_store_path(r->v.root, owner, g->name, g->files[f].name, "secret");
		char *manifest = vf_store_path(r->v.root, owner, g->name, g->files[f].name,
					       "recipients");
		status = secret && manifest ? rekey_file(r, secret, manifest, &recipients)
					    : vs_error("out of memory");
		free(secret);
		free(manifest);
	}
	vf_strings_free(&recipients);
	return status;
}

/* A machine's own key is sealed to the admins alone. */
static int rekey_machine_key(struct rekey *r, const char *machine)
{
	struct vf_strings admins = {0};
	struct vf_error err;
	int status = 0;
	for (size_t i = 0; !status && i < r->v.spec.n_admins; i++)
		if (vf_strings_add(&admins, r->v.spec.admins[i].recipient, &err) != VF_OK)
			status = vs_fail(NULL, &err);
	char *secret = vf_store_machine_key_path(r->v.root, machine, "secret");
	char *manifest = vf_store_machine_key_path(r->v.root, machine, "recipients");
	if (!status)
		status = secret && manifest ? rekey_file(r, secret, manifest, &admins)
					    : vs_error("out of memory");
	free(secret);
	free(manifest);
	vf_strings_free(&admins);
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
		{"rotate", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct rekey r = {.v.lock_fd = -1};
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
		} else if (c == 'r')
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
	if (!status && vf_txn_commit(&r.txn, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status)
		printf("rekey: %zu of %zu secrets resealed%s\n", r.resealed, r.checked,
		       r.rotate ? " with new file keys" : "");
	vf_txn_abort(&r.txn);
	vf_strings_free(&r.machines);
	vs_vars_free(&r.v);
	return status < 0 ? 0 : status;
}
