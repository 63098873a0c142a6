/* What the store holds beyond the generators' files: the machines' kept
 * keys, and orphans (what the spec no longer names). vargen list and check
 * report both; vargen prune removes the orphans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vars/store_internal.h"
#include "vars/vars.h"

/* ---- kept machine keys --------------------------------------------------- */

/* The marker's recipient (its one line), or NULL when there is no marker. */
static enum vf_code read_marker(const char *root, const char *machine, char **recipient,
				struct vf_error *err)
{
	*recipient = NULL;
	char *rel = vf_store_rel(machine, ".machine-key", NULL, NULL);
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t *data = NULL;
	size_t len = 0;
	enum vf_code rc = vf_store_read_at(root, rel, &data, &len, err);
	free(rel);
	if (rc != VF_OK || !data)
		return rc;
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	data[len] = '\0';
	*recipient = (char *)data;
	return VF_OK;
}

static enum vf_code admins_manifest(const struct vf_spec *spec, char **text, size_t *len,
				    struct vf_error *err)
{
	struct vf_strings admins = {0};
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < spec->n_admins; i++)
		if (!vf_strings_has(&admins, spec->admins[i].recipient))
			rc = vf_strings_add(&admins, spec->admins[i].recipient, err);
	if (rc == VF_OK)
		rc = vf_manifest_format(admins.items, admins.n, text, len, err);
	vf_strings_free(&admins);
	return rc;
}

/* Sealed to exactly the admins, judged by the manifest as for secrets. */
static enum vf_code key_sealing(const struct vf_spec *spec, const char *root,
				const char *machine, enum vf_state *st, struct vf_error *err)
{
	char *secret_rel = vf_store_machine_key_rel(machine, "secret");
	char *manifest_rel = vf_store_machine_key_rel(machine, "recipients");
	uint8_t *secret = NULL, *have = NULL;
	size_t secret_len = 0, have_len = 0, want_len = 0;
	char *want = NULL;
	bool same = false;
	enum vf_code rc = secret_rel && manifest_rel ? VF_OK
						      : vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK)
		rc = vf_store_read_at(root, secret_rel, &secret, &secret_len, err);
	if (rc == VF_OK && secret)
		rc = vf_store_read_at(root, manifest_rel, &have, &have_len, err);
	if (rc == VF_OK && secret && have)
		rc = admins_manifest(spec, &want, &want_len, err);
	if (rc == VF_OK && secret && have)
		rc = vf_manifest_same((const char *)have, have_len, want, want_len, &same, err);
	if (rc == VF_OK)
		*st = !secret					 ? VF_STATE_MISSING
		      : !vf_vars_looks_sealed(secret, secret_len) ? VF_STATE_CORRUPT
		      : same					 ? VF_STATE_OK
								 : VF_STATE_WRONG_RECIPIENTS;
	free(secret_rel);
	free(manifest_rel);
	free(secret);
	free(have);
	free(want);
	return rc;
}

/* Whether an interrupted varseal machine keygen left the key the spec
 * names pending (machine_key.h): the spec was written, the store not yet
 * finished. A pending key the spec does not name never was the machine's
 * (the next keygen drops it) and changes nothing here. */
static enum vf_code pending_install(const char *root, const struct vf_spec_machine *m,
				    bool *pending, struct vf_error *err)
{
	*pending = false;
	char *rel = vf_store_machine_key_rel(m->name, "key.pending");
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t *data = NULL;
	size_t len = 0;
	enum vf_code rc = vf_store_read_at(root, rel, &data, &len, err);
	free(rel);
	if (rc == VF_OK && data && m->key) {
		while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
			len--;
		*pending = len == strlen(m->key) && !memcmp(data, m->key, len);
	}
	free(data);
	return rc;
}

enum vf_code vf_vars_machine_key_state(const struct vf_spec *spec, const char *root,
				       const struct vf_spec_machine *m, bool *shown,
				       enum vf_state *st, struct vf_error *err)
{
	*shown = false;
	char *marker = NULL;
	enum vf_code rc = read_marker(root, m->name, &marker, err);
	/* No machine-keys/M/ (a machine whose key was never made here): no
	 * kept key and none pending, found in one lookup. */
	bool absent = false;
	char *key_rel = rc == VF_OK ? vf_store_machine_key_rel(m->name, "secret") : NULL;
	if (key_rel)
		(void)vf_store_dir_absent(root, key_rel, &absent, NULL);
	free(key_rel);
	*st = VF_STATE_MISSING;
	if (rc == VF_OK && !absent)
		rc = key_sealing(spec, root, m->name, st, err);
	if (rc != VF_OK) {
		free(marker);
		return rc;
	}
	bool pending = false;
	if (rc == VF_OK && !absent)
		rc = pending_install(root, m, &pending, err);
	if (rc != VF_OK) {
		free(marker);
		return rc;
	}
	bool kept = *st != VF_STATE_MISSING;
	*shown = kept || marker || pending;
	if (pending) {
		/* keygen was interrupted: the spec may name the pending key
		 * already. Running keygen again finishes or undoes it. */
		*st = VF_STATE_INCOMPLETE;
		free(marker);
		return VF_OK;
	}
	/* What is kept must be what the spec names: the key line lost in a
	 * merge, or replaced by another key, is said before the sealing. */
	if (*shown && *st != VF_STATE_MISSING && *st != VF_STATE_CORRUPT) {
		if (!m->key)
			*st = VF_STATE_NO_KEY;
		else if (marker ? strcmp(marker, m->key) != 0 : !strncmp(m->key, "ssh-", 4))
			*st = VF_STATE_WRONG_KEY;
	}
	free(marker);
	return VF_OK;
}

/* ---- orphans ------------------------------------------------------------- */

void vf_orphans_free(struct vf_orphans *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->items[i].rel);
		free(o->items[i].name);
		free(o->items[i].why);
	}
	free(o->items);
	o->items = NULL;
	o->n = 0;
}

static enum vf_code add_orphan(struct vf_orphans *o, char *rel, const char *name,
			       const char *kind, const char *why, struct vf_error *err)
{
	struct vf_orphan *grown = realloc(o->items, (o->n + 1) * sizeof(*grown));
	char *n = strdup(name), *w = strdup(why);
	if (!rel || !grown || !n || !w) {
		if (grown)
			o->items = grown;
		free(rel);
		free(n);
		free(w);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	o->items = grown;
	o->items[o->n++] = (struct vf_orphan){rel, n, kind, w};
	return VF_OK;
}

/* A file's kind, from what its directory holds. */
static const char *file_kind(const char *root, const char *rel)
{
	size_t n = strlen(rel);
	char *secret = malloc(n + sizeof("/secret"));
	bool exists = false;
	if (secret) {
		memcpy(secret, rel, n);
		memcpy(secret + n, "/secret", sizeof("/secret"));
		vf_store_exists(root, secret, &exists, NULL);
	}
	free(secret);
	return exists ? "secret" : "value";
}

/* The files in rel (a generator's directory) that g does not have. */
static enum vf_code file_orphans(const char *root, const char *owner_name, const char *rel,
				 const struct vf_spec_generator *g, struct vf_orphans *o,
				 struct vf_error *err)
{
	char **files;
	size_t n;
	enum vf_code rc = vf_store_list_dirs(root, rel, &files, &n, err);
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		if (vf_spec_file(g, files[i]))
			continue;
		char name[1024], why[1024], path[4096];
		snprintf(name, sizeof(name), "%s/%s/%s", owner_name, g->name, files[i]);
		snprintf(why, sizeof(why), "generator %s has no file %s", g->name, files[i]);
		snprintf(path, sizeof(path), "%s/%s", rel, files[i]);
		rc = add_orphan(o, strdup(path), name, file_kind(root, path), why, err);
	}
	vf_store_names_free(files, n);
	return rc;
}

static bool listed(const struct vf_spec_generator *const *gens, size_t n,
		   const struct vf_spec_generator *g)
{
	for (size_t i = 0; i < n; i++)
		if (gens[i] == g)
			return true;
	return false;
}

/* A generator's directory rel (dir, under owner: a machine, or "shared"):
 * when the spec keeps it (why is NULL), the files in it that g does not
 * have; else the directory itself, an orphan for that reason. Takes rel. */
static enum vf_code generator_orphans(const char *root, const char *owner, const char *dir,
				      char *rel, const struct vf_spec_generator *g,
				      const char *why, struct vf_orphans *o, struct vf_error *err)
{
	if (!why) {
		enum vf_code rc = rel ? file_orphans(root, owner, rel, g, o, err)
				      : vf_fail(err, VF_E_NOMEM, "out of memory");
		free(rel);
		return rc;
	}
	char name[1024];
	snprintf(name, sizeof(name), "%s/%s", owner, dir);
	return add_orphan(o, rel, name, "generator", why, err);
}

/* vars/per-machine/M/G for a machine in the spec. */
static enum vf_code machine_orphans(const struct vf_spec *spec, const char *root,
				    const struct vf_spec_machine *m, struct vf_orphans *o,
				    struct vf_error *err)
{
	const struct vf_spec_generator **gens = NULL;
	size_t n_gens = 0;
	char **dirs = NULL;
	size_t n = 0;
	char *rel = vf_store_rel(m->name, NULL, NULL, NULL);
	enum vf_code rc = rel ? vf_vars_machine_generators(spec, m, &gens, &n_gens, err)
			      : vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK)
		rc = vf_store_list_dirs(root, rel, &dirs, &n, err);
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		const struct vf_spec_generator *g = vf_spec_generator(spec, dirs[i]);
		char why[1024];
		const char *orphaned = why;
		if (!g)
			snprintf(why, sizeof(why), "generator %s is not in the spec", dirs[i]);
		else if (g->share)
			snprintf(why, sizeof(why), "generator %s is shared now (kept in shared/%s)",
				 g->name, g->name);
		else if (!listed(gens, n_gens, g))
			snprintf(why, sizeof(why), "machine %s does not use generator %s", m->name,
				 g->name);
		else
			orphaned = NULL;
		rc = generator_orphans(root, m->name, dirs[i],
				       vf_store_rel(m->name, dirs[i], NULL, NULL), g, orphaned, o,
				       err);
	}
	vf_store_names_free(dirs, n);
	free(gens);
	free(rel);
	return rc;
}

static enum vf_code per_machine_orphans(const struct vf_spec *spec, const char *root,
					struct vf_orphans *o, struct vf_error *err)
{
	char **dirs;
	size_t n;
	enum vf_code rc = vf_store_list_dirs(root, "vars/per-machine", &dirs, &n, err);
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		const struct vf_spec_machine *m = vf_spec_machine(spec, dirs[i]);
		if (m) {
			rc = machine_orphans(spec, root, m, o, err);
			continue;
		}
		char why[1024];
		snprintf(why, sizeof(why), "machine %s is not in the spec", dirs[i]);
		rc = add_orphan(o, vf_store_rel(dirs[i], NULL, NULL, NULL), dirs[i], "machine", why,
				err);
	}
	vf_store_names_free(dirs, n);
	return rc;
}

static bool shared_in_use(const struct vf_spec *spec, const struct vf_spec_generator *g)
{
	for (size_t i = 0; i < spec->n_machines; i++)
		if (vf_vars_machine_uses(spec, &spec->machines[i], g))
			return true;
	return false;
}

static enum vf_code shared_orphans(const struct vf_spec *spec, const char *root,
				   struct vf_orphans *o, struct vf_error *err)
{
	char **dirs;
	size_t n;
	enum vf_code rc = vf_store_list_dirs(root, "vars/shared", &dirs, &n, err);
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		const struct vf_spec_generator *g = vf_spec_generator(spec, dirs[i]);
		char why[1024];
		const char *orphaned = why;
		if (!g)
			snprintf(why, sizeof(why), "generator %s is not in the spec", dirs[i]);
		else if (!g->share)
			snprintf(why, sizeof(why), "generator %s is not shared now", g->name);
		else if (!shared_in_use(spec, g) && !vf_vars_kept_unused(spec, g))
			snprintf(why, sizeof(why), "no machine uses generator %s", g->name);
		else
			orphaned = NULL;
		rc = generator_orphans(root, "shared", dirs[i], vf_store_rel(NULL, dirs[i], NULL, NULL),
				       g, orphaned, o, err);
	}
	vf_store_names_free(dirs, n);
	return rc;
}

static enum vf_code key_orphans(const struct vf_spec *spec, const char *root,
				struct vf_orphans *o, struct vf_error *err)
{
	char **dirs;
	size_t n;
	enum vf_code rc = vf_store_list_dirs(root, "vars/machine-keys", &dirs, &n, err);
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		if (vf_spec_machine(spec, dirs[i]))
			continue;
		char name[1024], why[1024];
		snprintf(name, sizeof(name), "machine-keys/%s", dirs[i]);
		snprintf(why, sizeof(why), "machine %s is not in the spec", dirs[i]);
		rc = add_orphan(o, vf_store_machine_key_rel(dirs[i], NULL), name, "key", why, err);
	}
	vf_store_names_free(dirs, n);
	return rc;
}

/* What a killed prune took out of the store but did not delete: still
 * secrets, maybe sealed to a removed admin, and still in the directory
 * git sees. */
static enum vf_code discarded_orphans(const char *root, struct vf_orphans *o,
				      struct vf_error *err)
{
	char **dirs;
	size_t n;
	enum vf_code rc = vf_store_list_discarded(root, &dirs, &n, err);
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "vars/%s", dirs[i]);
		rc = add_orphan(o, strdup(path), dirs[i], "leftover",
				"left by a killed vargen prune", err);
	}
	vf_store_names_free(dirs, n);
	return rc;
}

enum vf_code vf_vars_orphans(const struct vf_spec *spec, const char *root, struct vf_orphans *out,
			     struct vf_error *err)
{
	*out = (struct vf_orphans){0};
	enum vf_code rc = discarded_orphans(root, out, err);
	if (rc == VF_OK)
		rc = per_machine_orphans(spec, root, out, err);
	if (rc == VF_OK)
		rc = shared_orphans(spec, root, out, err);
	if (rc == VF_OK)
		rc = key_orphans(spec, root, out, err);
	if (rc != VF_OK)
		vf_orphans_free(out);
	return rc;
}

enum vf_code vf_vars_remove_orphans(const char *root, const struct vf_orphans *o,
				    struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < o->n; i++)
		rc = vf_store_discard_dir(root, o->items[i].rel, err);
	if (rc == VF_OK)
		rc = vf_store_sync(root, err);
	if (rc == VF_OK)
		vf_store_clean_temps(root);
	return rc;
}

enum vf_code vf_vars_remove_dir(const char *root, const char *rel_dir, struct vf_error *err)
{
	enum vf_code rc = vf_store_discard_dir(root, rel_dir, err);
	if (rc == VF_OK)
		rc = vf_store_sync(root, err);
	if (rc == VF_OK)
		vf_store_clean_temps(root);
	return rc;
}
