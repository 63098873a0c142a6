/* The vars model on top of the spec and the store: which generators a
 * machine has, who each secret is sealed to, and the state of every
 * stored file. Shared by vargen (generate, list, check) and varseal (get,
 * set, rekey, machine keys). */
#ifndef VF_VARS_H
#define VF_VARS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/io.h"
#include "age/keys.h"
#include "vars/spec.h"
#include "vars/values.h"

/* A list of strings (malloc'd, owned). */
struct vf_strings {
	char **items;
	size_t n;
};
enum vf_code vf_strings_add(struct vf_strings *l, const char *s, struct vf_error *err);
bool vf_strings_has(const struct vf_strings *l, const char *s);
void vf_strings_free(struct vf_strings *l);

/* The spec read when none is named: vars.yaml in the working directory. */
#define VF_VARS_SPEC_DEFAULT "vars.yaml"

/* Loads the spec at spec_path (NULL: VF_VARS_SPEC_DEFAULT) into *spec and
 * names its store in *root (malloc'd): store when given, else the spec's
 * directory. spec->path is spec_path as used, for messages. On error
 * nothing is left to free. */
enum vf_code vf_vars_open(const char *spec_path, const char *store, struct vf_spec *spec,
			  char **root, struct vf_error *err);

/* Whether root holds a store (root/vars): *present. A mistyped --store
 * must not read as an empty store (everything "missing", "0 of 0
 * resealed") nor start a new one unannounced. */
enum vf_code vf_vars_store_present(const char *root, bool *present, struct vf_error *err);
/* VF_E_IO "no store at ROOT (...)" when there is none: every command but
 * vargen generate and varseal machine keygen begins with it. */
enum vf_code vf_vars_require_store(const char *root, struct vf_error *err);

/* Whether machine uses generator g: listed, or a dependency (transitively)
 * of one it lists. */
bool vf_vars_machine_uses(const struct vf_spec *spec, const struct vf_spec_machine *m,
			  const struct vf_spec_generator *g);

/* Whether g is an imported shared generator that no machine uses (yet):
 * its values are kept in vars/shared/G sealed to the admins alone, until
 * a machine lists it (then varseal rekey seals them to that machine
 * too). Every other generator no machine uses is an orphan in the store. */
bool vf_vars_kept_unused(const struct vf_spec *spec, const struct vf_spec_generator *g);

/* The generators of machine m in dependency order (dependencies first). */
enum vf_code vf_vars_machine_generators(const struct vf_spec *spec,
					const struct vf_spec_machine *m,
					const struct vf_spec_generator ***out, size_t *n,
					struct vf_error *err);

/* Recipients of g's secrets: the machine's key, or for a shared generator
 * every machine that uses it, then the admins. VF_E_KEY when a machine has
 * no key yet (the message says how to make one). */
enum vf_code vf_vars_recipients(const struct vf_spec *spec, const char *machine,
				const struct vf_spec_generator *g, struct vf_strings *out,
				struct vf_error *err);

enum vf_state {
	VF_STATE_OK,
	VF_STATE_MISSING,	   /* not generated yet */
	VF_STATE_STALE,		   /* the generator's spec changed since */
	VF_STATE_WRONG_RECIPIENTS, /* sealed to other keys than the spec says */
	VF_STATE_NO_KEY,	   /* the machine has no key: cannot be sealed */
	VF_STATE_CORRUPT,	   /* unreadable, or secret where a value belongs */
	VF_STATE_INCOMPLETE,	   /* not what the generator's last complete
				      commit made: an interrupted commit, or
				      files of two generations put together */
	VF_STATE_HAND_SET,	   /* set by hand (varseal set), not by the
				      generator: never stale, and replaced only
				      by an explicit --regenerate */
	VF_STATE_ORPHAN,	   /* in the store, not in the spec */
	VF_STATE_WRONG_KEY,	   /* a kept machine key that is not the key
				      the spec names */
	VF_STATE_PAIR_MISMATCH,	   /* a key pair's public half that is not a
				      public key of its kind, or (verified
				      with a key: vf_pair_verify) not the
				      private half's */
};
/* Whether a state needs nothing done: check passes on it. */
bool vf_state_sound(enum vf_state s);
const char *vf_state_name(enum vf_state s);

/* State of one generator's files for one owner (machine, or NULL for
 * shared). states has g->n_files entries. A symlink or a special file where
 * a store file belongs is an error (naming it), not a state. */
enum vf_code vf_vars_state(const struct vf_spec *spec, const char *root, const char *machine,
			   const struct vf_spec_generator *g, enum vf_state *states,
			   struct vf_error *err);

/* A stored secret must at least be a well-formed age header. */
bool vf_vars_looks_sealed(const uint8_t *data, size_t len);

/* The state of machine m's kept key (vars/machine-keys/M, vouched for by
 * the marker vars/per-machine/M/.machine-key that varseal machine keygen
 * writes with the key's recipient): *shown false when the store keeps no
 * key for m and none is expected. Otherwise ok, missing (the marker says
 * a key is kept, the key is gone), no-key (kept, but the spec has no key
 * line: varseal machine keygen -i ADMIN restores it), wrong-key (the spec
 * names another key), wrong-recipients (not sealed to exactly the
 * admins), corrupt, or incomplete (an interrupted keygen left the key the
 * spec names pending: machine_key.h). A key from before markers is compared with the
 * admins only. */
enum vf_code vf_vars_machine_key_state(const struct vf_spec *spec, const char *root,
				       const struct vf_spec_machine *m, bool *shown,
				       enum vf_state *st, struct vf_error *err);

/* What the store holds that the spec does not account for, one entry per
 * directory that goes whole: a machine's, a generator's, a file's, or a
 * kept machine key's. */
struct vf_orphan {
	char *rel;	  /* "vars/per-machine/web2": what vargen prune removes */
	char *name;	  /* as vargen list names it: "web2", "web1/gen",
			     "web1/gen/file", "shared/gen", "machine-keys/web2" */
	const char *kind; /* "machine", "generator", "secret", "value", "key",
			     "leftover" (of a killed prune) */
	char *why;	  /* "machine web2 is not in the spec" */
};
struct vf_orphans {
	struct vf_orphan *items;
	size_t n;
};
enum vf_code vf_vars_orphans(const struct vf_spec *spec, const char *root, struct vf_orphans *out,
			     struct vf_error *err);
void vf_orphans_free(struct vf_orphans *o);
/* Removes every orphan, the caller holding the store's lock: each goes in
 * one rename out of the store (whole, or not at all; a kill leaves the
 * rest for the next prune), one sync makes the renames durable, then the
 * renamed trees are deleted. */
enum vf_code vf_vars_remove_orphans(const char *root, const struct vf_orphans *o,
				    struct vf_error *err);

/* Takes the store directory rel_dir (vf_store_rel of a generator's, say)
 * out of the store in one rename, as vf_vars_remove_orphans does, syncs and
 * deletes it; the caller holds the store's lock. A missing one is no
 * error. For a step that staged a new generator and then could not write
 * the spec that names it (varseal import-sops). */
enum vf_code vf_vars_remove_dir(const char *root, const char *rel_dir, struct vf_error *err);

/* Seals plaintext to the recipient strings into out (an age file). */
enum vf_code vf_seal(const struct vf_strings *recipients, const uint8_t *data, size_t len,
		     struct vf_buf *out, struct vf_error *err);
/* Decrypts the stored secret rel (a store path relative to root, see
 * vf_store_rel) with the identities into guarded memory. Messages name the
 * file; a missing one is VF_E_IO "PATH: not generated yet". */
enum vf_code vf_unseal(const char *root, const char *rel, const struct vf_identities *ids,
		       struct vf_value *out, struct vf_error *err);

/* Reads one stored var: a value as it is, a secret decrypted with ids.
 * A var not generated yet is VF_E_IO "PATH: not generated yet". */
enum vf_code vf_vars_read(const char *root, const char *owner, const struct vf_spec_generator *g,
			  const struct vf_spec_file *f, const struct vf_identities *ids,
			  struct vf_value *out, struct vf_error *err);

/* What vf_vars_read_with hands a value to: its result is returned. */
typedef enum vf_code (*vf_value_fn)(void *ctx, const uint8_t *data, size_t len,
				    struct vf_error *err);
/* What vf_vars_read_with asks for the identities (*ids), once a secret is
 * open: never for a value, nor for a var not generated yet, so that keys
 * are loaded only when there is something to open. */
typedef enum vf_code (*vf_identities_fn)(void *ctx, const struct vf_identities **ids,
					 struct vf_error *err);

/* vf_vars_read for a caller that only passes the value on (varseal get):
 * use(ctx, data, len, err) sees it, and it is wiped and released when use
 * returns. A small secret's plaintext is then kept on the thread's scratch
 * stack rather than in a guarded block of its own. The secret is opened
 * once: the file keys(ctx, ...) was asked for is the file read. */
enum vf_code vf_vars_read_with(const char *root, const char *owner,
			       const struct vf_spec_generator *g, const struct vf_spec_file *f,
			       vf_identities_fn keys, vf_value_fn use, void *ctx,
			       struct vf_error *err);

/* Stages a generated file: the secret plus its manifest, or the value
 * (removing a leftover of the other kind). */
struct vf_txn;
enum vf_code vf_vars_stage_file(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, const struct vf_spec_file *f,
				const struct vf_strings *recipients, const struct vf_value *v,
				struct vf_error *err);
/* Stages the records of a generator made anew, once all its files are
 * staged: both records of the old commit are removed before any file is
 * replaced, and the hash record (.generator) and the commit record
 * (.commit: the spec hash and the SHA-256 of every file) are renamed into
 * place only after all files are durable. */
enum vf_code vf_vars_stage_hash(struct vf_txn *t, const char *root, const char *machine,
				const struct vf_spec_generator *g, struct vf_error *err);
/* Stages the records of a generator whose files were changed in place:
 * the commit record is removed first and written again naming the files
 * as they will be, others carried over from it, with the files set by
 * hand marked as such.
 * - accept: the generator is recorded as made by the current definition
 *   (vargen accept: a changed definition whose values are kept); without,
 *   its recorded hash is kept, and a generator with no record gets none
 *   (varseal rekey, vargen generate making missing files).
 * - hand_set: this file was set by hand (varseal set); the record keeps
 *   the hash the other files were made by (the current one when there is
 *   no record yet), so that they stay stale if they were.
 * - hand_set_derived: with hand_set, a file computed from it in the same
 *   transaction (a key pair's public half), marked set by hand as well:
 *   the generator made neither.
 * - made: per file, those generated anew in this transaction (their marks
 *   of hand-set values go); may be NULL. */
struct vf_update {
	bool accept;
	const char *hand_set;
	const char *hand_set_derived;
	const bool *made;
};
enum vf_code vf_vars_stage_update(struct vf_txn *t, const char *root, const char *machine,
				  const struct vf_spec_generator *g, const struct vf_update *u,
				  struct vf_error *err);
/* vf_vars_stage_update keeping the hash (fresh false), for varseal rekey. */
enum vf_code vf_vars_stage_amend(struct vf_txn *t, const char *root, const char *machine,
				 const struct vf_spec_generator *g, bool fresh,
				 struct vf_error *err);

/* Stages the secret at secret_rel resealed to recipients (vf_reseal with
 * ids and rotate) and manifest (its text) at manifest_rel. Messages name
 * the file. Safe to call from several threads on one transaction. */
enum vf_code vf_vars_stage_reseal(struct vf_txn *t, const char *root, const char *secret_rel,
				  const char *manifest_rel, const char *manifest, size_t manifest_len,
				  const struct vf_identities *ids, const struct vf_strings *recipients,
				  bool rotate, struct vf_error *err);

/* Re-seals an age file to new recipients keeping its payload: the file key
 * is unwrapped with ids, wrapped again for recipients, and the new header
 * is followed by the old payload bytes unchanged. With rotate, a new file
 * key and payload are made instead. out receives the new file. */
enum vf_code vf_reseal(const uint8_t *file, size_t len, const struct vf_identities *ids,
		       const struct vf_strings *recipients, bool rotate, struct vf_buf *out,
		       struct vf_error *err);

#endif
