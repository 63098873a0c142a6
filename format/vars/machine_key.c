/* A machine's key, written to the spec and the store together (the scheme
 * is in machine_key.h): the spec's new text is prepared and synced beside
 * it before the store is touched, and renamed into place as the commit
 * point. */
#include "vars/machine_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "vars/spec_write.h"
#include "vars/store_internal.h"

/* ---- writing the spec ---------------------------------------------------- */

/* Everything short of the rename, before the store is touched: the new
 * text made and checked in memory, then written beside the spec and
 * synced (spec_write.h). What can fail here (a directory the user may not
 * write, a full disk, a file of another owner) fails while nothing has
 * changed. */
static enum vf_code spec_write_begin(struct vf_spec_write *w, const struct vf_spec *spec,
				     const struct vf_key_edit *edits, size_t n,
				     struct vf_error *err)
{
	memset(w, 0, sizeof(*w));
	char *text = NULL;
	size_t len = 0;
	enum vf_code rc = vf_spec_edit_machine_keys(spec, edits, n, &text, &len, err);
	if (rc != VF_OK)
		return rc;
	struct vf_error e;
	rc = vf_spec_write_begin(w, spec->path, text, len, &e);
	if (rc != VF_OK)
		return vf_fail(err, rc,
			       "%s: cannot rewrite the spec (%s); the spec and the store are "
			       "unchanged",
			       spec->path, e.msg);
	return VF_OK;
}

/* ---- a machine's key in the spec and the store ------------------------------ */

#define PENDING_SECRET "secret.pending"
#define PENDING_MANIFEST "recipients.pending"
#define PENDING_KEY "key.pending"

/* Where the record of machine's kept key is (malloc'd). */
static char *record_rel(const char *machine)
{
	return vf_store_rel(machine, ".machine-key", NULL, NULL);
}

/* "recipient\n": the record's contents (malloc'd). */
static char *key_line(const char *recipient, size_t *len)
{
	*len = strlen(recipient) + 1;
	char *line = malloc(*len + 1);
	if (line)
		snprintf(line, *len + 1, "%s\n", recipient);
	return line;
}

/* Whether the store file rel holds exactly recipient and a newline
 * (false when it is missing). */
static enum vf_code holds_key(const char *root, const char *rel, const char *recipient,
			      bool *holds, struct vf_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	*holds = false;
	enum vf_code rc = vf_store_read_at(root, rel, &data, &len, err);
	if (rc == VF_OK && data && recipient)
		*holds = len == strlen(recipient) + 1 && !memcmp(data, recipient, len - 1) &&
			 data[len - 1] == '\n';
	free(data);
	return rc;
}

enum vf_code vf_machine_key_record(const char *root, const char *machine, char **recipient,
				   struct vf_error *err)
{
	*recipient = NULL;
	char *rel = record_rel(machine);
	if (!rel)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t *data = NULL;
	size_t len = 0;
	enum vf_code rc = vf_store_read_at(root, rel, &data, &len, err);
	if (rc == VF_OK && data) {
		const char *nl = memchr(data, '\n', len);
		if (len < 2 || nl != (const char *)data + len - 1 || memchr(data, '\0', len))
			rc = vf_fail(err, VF_E_ARG, "%s/%s: not a recipient and a newline", root, rel);
		else if (!(*recipient = strndup((const char *)data, len - 1)))
			rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	free(data);
	free(rel);
	return rc;
}

/* One transaction of up to four steps on a machine's key files. */
struct key_step {
	const char *rel;
	enum vf_txn_phase phase;
	const void *data; /* NULL: remove */
	size_t len;
};

static enum vf_code run_steps(const char *root, const struct key_step *steps, size_t n,
			      struct vf_error *err)
{
	struct vf_txn t = {0};
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < n; i++)
		rc = vf_txn_stage(&t, root, steps[i].rel, steps[i].phase, steps[i].data,
				  steps[i].len, err);
	if (rc == VF_OK)
		rc = vf_txn_commit(&t, err);
	vf_txn_abort(&t);
	return rc;
}

/* The store paths of one machine's key. */
struct key_paths {
	char *secret, *manifest, *record;
	char *pending_secret, *pending_manifest, *pending_key;
};

static void key_paths_free(struct key_paths *p)
{
	free(p->secret);
	free(p->manifest);
	free(p->record);
	free(p->pending_secret);
	free(p->pending_manifest);
	free(p->pending_key);
}

static enum vf_code key_paths(const char *machine, struct key_paths *p, struct vf_error *err)
{
	p->secret = vf_store_machine_key_rel(machine, "secret");
	p->manifest = vf_store_machine_key_rel(machine, "recipients");
	p->record = record_rel(machine);
	p->pending_secret = vf_store_machine_key_rel(machine, PENDING_SECRET);
	p->pending_manifest = vf_store_machine_key_rel(machine, PENDING_MANIFEST);
	p->pending_key = vf_store_machine_key_rel(machine, PENDING_KEY);
	if (p->secret && p->manifest && p->record && p->pending_secret && p->pending_manifest &&
	    p->pending_key)
		return VF_OK;
	key_paths_free(p);
	return vf_fail(err, VF_E_NOMEM, "out of memory");
}

/* (1) The new key beside the kept one; key.pending only once the others
 * are durable, so that it vouches for them. */
static enum vf_code stage_pending(const char *root, const struct key_paths *p,
				  const char *recipient, const void *sealed, size_t sealed_len,
				  const void *manifest, size_t manifest_len, struct vf_error *err)
{
	size_t line_len;
	char *line = key_line(recipient, &line_len);
	if (!line)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	const struct key_step steps[] = {
		{p->pending_secret, VF_TXN_DATA, sealed, sealed_len},
		{p->pending_manifest, VF_TXN_DATA, manifest, manifest_len},
		{p->pending_key, VF_TXN_RECORD, line, line_len},
	};
	enum vf_code rc = run_steps(root, steps, 3, err);
	free(line);
	return rc;
}

/* (3) The key kept as the machine's: the record of the key it replaces
 * goes first, the new record last, so that a record always names the
 * key kept beside it (or there is none). */
static enum vf_code keep_key(const char *root, const struct key_paths *p, const char *recipient,
			     const void *sealed, size_t sealed_len, const void *manifest,
			     size_t manifest_len, struct vf_error *err)
{
	size_t line_len;
	char *line = key_line(recipient, &line_len);
	if (!line)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	const struct key_step steps[] = {
		{p->record, VF_TXN_INVALIDATE, NULL, 0},
		{p->secret, VF_TXN_DATA, sealed, sealed_len},
		{p->manifest, VF_TXN_DATA, manifest, manifest_len},
		{p->record, VF_TXN_RECORD, line, line_len},
	};
	enum vf_code rc = run_steps(root, steps, 4, err);
	free(line);
	return rc;
}

/* (4) The pending files removed, key.pending first (and synced), so that
 * it never names files that are gone. */
static enum vf_code drop_pending(const char *root, const struct key_paths *p,
				 struct vf_error *err)
{
	const struct key_step steps[] = {
		{p->pending_key, VF_TXN_INVALIDATE, NULL, 0},
		{p->pending_secret, VF_TXN_DATA, NULL, 0},
		{p->pending_manifest, VF_TXN_DATA, NULL, 0},
	};
	return run_steps(root, steps, 3, err);
}

/* What is left of an interrupted install: true when any pending file is. */
static enum vf_code any_pending(const char *root, const struct key_paths *p, bool *any,
				struct vf_error *err)
{
	const char *rels[] = {p->pending_key, p->pending_secret, p->pending_manifest};
	*any = false;
	for (size_t i = 0; i < 3 && !*any; i++) {
		enum vf_code rc = vf_store_exists(root, rels[i], any, err);
		if (rc != VF_OK)
			return rc;
	}
	return VF_OK;
}

/* Copies the pending key over the kept one. */
static enum vf_code finish_pending(const char *root, const struct key_paths *p,
				   const char *recipient, struct vf_error *err)
{
	uint8_t *sealed = NULL, *manifest = NULL;
	size_t sealed_len = 0, manifest_len = 0;
	enum vf_code rc = vf_store_read_at(root, p->pending_secret, &sealed, &sealed_len, err);
	if (rc == VF_OK)
		rc = vf_store_read_at(root, p->pending_manifest, &manifest, &manifest_len, err);
	if (rc == VF_OK && (!sealed || !manifest))
		rc = vf_fail(err, VF_E_IO,
			     "%s/%s names the spec's key, but %s/%s is missing: restore it (e.g. "
			     "from git)",
			     root, p->pending_key, root, sealed ? p->pending_manifest : p->pending_secret);
	if (rc == VF_OK)
		rc = keep_key(root, p, recipient, sealed, sealed_len, manifest, manifest_len, err);
	free(sealed);
	free(manifest);
	return rc;
}

enum vf_code vf_machine_key_settle(const char *root, const char *machine, const char *spec_key,
				   enum vf_key_settled *done, struct vf_error *err)
{
	*done = VF_KEY_NOTHING_PENDING;
	struct key_paths p;
	enum vf_code rc = key_paths(machine, &p, err);
	if (rc != VF_OK)
		return rc;
	bool any = false, named = false;
	rc = any_pending(root, &p, &any, err);
	if (rc == VF_OK && any)
		rc = holds_key(root, p.pending_key, spec_key, &named, err);
	if (rc == VF_OK && any && named) {
		/* The spec was written: the install goes on from (3). */
		rc = finish_pending(root, &p, spec_key, err);
		if (rc == VF_OK)
			rc = drop_pending(root, &p, err);
		*done = VF_KEY_PENDING_FINISHED;
	} else if (rc == VF_OK && any) {
		/* Killed before the spec named it: never the machine's key. */
		rc = drop_pending(root, &p, err);
		*done = VF_KEY_PENDING_DROPPED;
	}
	key_paths_free(&p);
	return rc;
}

enum vf_code vf_machine_key_secret_rel(const char *root, const char *machine,
				       const char *spec_key, char **rel, struct vf_error *err)
{
	*rel = NULL;
	struct key_paths p;
	enum vf_code rc = key_paths(machine, &p, err);
	if (rc != VF_OK)
		return rc;
	bool named = false, there = false;
	rc = holds_key(root, p.pending_key, spec_key, &named, err);
	if (rc == VF_OK && named)
		rc = vf_store_exists(root, p.pending_secret, &there, err);
	if (rc == VF_OK) {
		*rel = named && there ? p.pending_secret : p.secret;
		if (named && there)
			p.pending_secret = NULL;
		else
			p.secret = NULL;
	}
	key_paths_free(&p);
	return rc;
}

/* One machine of an install: its store paths, and what was done so far
 * (for undoing it if the spec is not written). */
struct install_item {
	const struct vf_machine_key_new *key;
	struct key_paths p;
	bool have_paths, staged, wrote_record;
	bool need_record; /* a restored key whose record is missing */
};

/* A restored key must be the one the record names, when there is one. */
static enum vf_code check_record(const char *root, struct install_item *it, struct vf_error *err)
{
	const char *machine = it->key->machine, *recipient = it->key->recipient;
	char *recorded = NULL;
	enum vf_code rc = vf_machine_key_record(root, machine, &recorded, err);
	if (rc == VF_OK && recorded && strcmp(recorded, recipient))
		rc = vf_fail(err, VF_E_KEY,
			     "machine %s: the key kept in %s/%s is %s, but %s/%s records %s as the "
			     "key keygen made; restore the one that is right (e.g. from git), or "
			     "varseal machine keygen --force %s makes a new one",
			     machine, root, it->p.secret, recipient, root, it->p.record, recorded,
			     machine);
	it->need_record = rc == VF_OK && !recorded;
	free(recorded);
	return rc;
}

/* (1) for every new key, and the missing records of restored keys: all
 * before the spec is renamed. */
static enum vf_code stage_all(const char *root, struct install_item *items, size_t n,
			      struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		const struct vf_machine_key_new *k = items[i].key;
		if (k->sealed) {
			items[i].staged = true; /* a failure may leave some of them */
			rc = stage_pending(root, &items[i].p, k->recipient, k->sealed, k->sealed_len,
					   k->manifest, k->manifest_len, err);
		} else if (items[i].need_record) {
			/* A store made before keygen kept records gets one now. */
			size_t line_len;
			char *line = key_line(k->recipient, &line_len);
			const struct key_step steps[] = {
				{items[i].p.record, VF_TXN_RECORD, line, line_len}};
			rc = line ? run_steps(root, steps, 1, err)
				  : vf_fail(err, VF_E_NOMEM, "out of memory");
			items[i].wrote_record = rc == VF_OK;
			free(line);
		}
	}
	return rc;
}

/* The spec was not written: what stage_all did goes. */
static void unstage_all(const char *root, struct install_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].staged)
			drop_pending(root, &items[i].p, NULL);
		if (items[i].wrote_record) {
			const struct key_step undo[] = {{items[i].p.record, VF_TXN_DATA, NULL, 0}};
			run_steps(root, undo, 1, NULL);
		}
	}
}

/* (3) and (4) for every new key, once the spec names them all. A failure
 * for one machine does not stop the others: each is settled on its own
 * by the next keygen of it. The first failure is the one reported. */
static enum vf_code finish_all(const struct vf_spec *spec, const char *root,
			       struct install_item *items, size_t n, struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (size_t i = 0; i < n; i++) {
		const struct vf_machine_key_new *k = items[i].key;
		if (!k->sealed)
			continue;
		struct vf_error e;
		const char *machine = k->machine;
		if (keep_key(root, &items[i].p, k->recipient, k->sealed, k->sealed_len, k->manifest,
			     k->manifest_len, &e) != VF_OK) {
			if (rc == VF_OK)
				rc = vf_fail(err, e.code,
					     "%s now names machine %s's new key %s, which the store "
					     "keeps in %s/%s until varseal machine keygen %s finishes "
					     "what failed here: %s",
					     spec->path, machine, k->recipient, root,
					     items[i].p.pending_secret, machine, e.msg);
		} else if (drop_pending(root, &items[i].p, &e) != VF_OK && rc == VF_OK) {
			rc = vf_fail(err, e.code,
				     "machine %s's new key is in place, but its copy in %s/%s stays "
				     "until the next varseal machine keygen %s: %s",
				     machine, root, items[i].p.pending_secret, machine, e.msg);
		}
	}
	return rc;
}

enum vf_code vf_machine_keys_install(const struct vf_spec *spec, const char *root,
				     const struct vf_machine_key_new *keys, size_t n,
				     struct vf_error *err)
{
	struct install_item *items = calloc(n ? n : 1, sizeof(*items));
	struct vf_key_edit *edits = calloc(n ? n : 1, sizeof(*edits));
	enum vf_code rc = items && edits ? VF_OK : vf_fail(err, VF_E_NOMEM, "out of memory");
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		items[i].key = &keys[i];
		edits[i] = (struct vf_key_edit){keys[i].machine, keys[i].recipient};
		rc = key_paths(keys[i].machine, &items[i].p, err);
		items[i].have_paths = rc == VF_OK;
		if (rc == VF_OK && !keys[i].sealed)
			rc = check_record(root, &items[i], err);
	}
	struct vf_spec_write w;
	bool begun = false;
	if (rc == VF_OK)
		begun = (rc = spec_write_begin(&w, spec, edits, n, err)) == VF_OK;
	if (rc == VF_OK)
		rc = stage_all(root, items, n, err);
	/* (2) the commit point, for every machine at once. */
	bool landed = false;
	enum vf_code spec_rc = VF_OK;
	if (rc == VF_OK) {
		spec_rc = vf_spec_write_commit(&w, true, &landed, err);
		if (!landed)
			rc = spec_rc;
	}
	if (rc != VF_OK)
		unstage_all(root, items, n);
	else
		rc = finish_all(spec, root, items, n, err);
	if (rc == VF_OK)
		rc = spec_rc; /* the new spec is in place, but its directory is not synced */
	if (begun)
		vf_spec_write_abort(&w);
	for (size_t i = 0; items && i < n; i++)
		if (items[i].have_paths)
			key_paths_free(&items[i].p);
	free(items);
	free(edits);
	return rc;
}

enum vf_code vf_machine_key_stage(struct vf_txn *t, const char *root, const char *machine,
				  const char *recipient, const void *sealed, size_t sealed_len,
				  const void *manifest, size_t manifest_len, struct vf_error *err)
{
	struct key_paths p;
	enum vf_code rc = key_paths(machine, &p, err);
	if (rc != VF_OK)
		return rc;
	size_t line_len;
	char *line = key_line(recipient, &line_len);
	if (!line)
		rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK)
		rc = vf_txn_stage(t, root, p.secret, VF_TXN_DATA, sealed, sealed_len, err);
	if (rc == VF_OK)
		rc = vf_txn_stage(t, root, p.manifest, VF_TXN_DATA, manifest, manifest_len, err);
	if (rc == VF_OK)
		rc = vf_txn_stage(t, root, p.record, VF_TXN_RECORD, line, line_len, err);
	free(line);
	key_paths_free(&p);
	return rc;
}
