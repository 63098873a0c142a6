/* Machine keys kept in the store by varseal machine keygen: installed
 * with the spec's key line in one kill-safe step, restored, settled after
 * an interruption, and found by readers. */
#ifndef VF_MACHINE_KEY_H
#define VF_MACHINE_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "vars/spec.h"

/* A machine's key, as `varseal machine keygen` keeps it: the recipient in
 * the spec (`key:`) and, in the store under root,
 *
 *   vars/machine-keys/M/secret      the identity (age-keygen's text),
 *   vars/machine-keys/M/recipients  sealed to the admins, and its manifest
 *   vars/per-machine/M/.machine-key the record: the recipient and LF,
 *                                   mode 0600; "M's key is kept in the
 *                                   store, and this is its public key"
 *
 * The record lives outside machine-keys/M so that a removed key is told
 * apart from one never kept. While a new key is installed it also has
 *
 *   vars/machine-keys/M/secret.pending, recipients.pending  the new key
 *   vars/machine-keys/M/key.pending  its recipient and LF: "the files
 *                                    beside me are complete"
 *
 * An install (vf_machine_keys_install, with the store's lock held) goes:
 * the new spec text made, checked and written beside the spec, synced;
 * (1) the pending files, key.pending renamed last after a sync; (2) the
 * spec renamed into place (the commit point); (3) the pending key copied
 * over the kept one, the record removed before and written after (synced
 * between); (4) the pending files removed, key.pending first. A failure
 * before (2) undoes (1); a kill anywhere leaves the spec naming either the
 * old key, still kept as secret, or the new one, kept as secret or, until
 * (3) is done, as secret.pending with key.pending naming it. Whoever next
 * writes the machine's key calls vf_machine_key_settle first, and readers
 * find the key the spec names with vf_machine_key_secret_rel.
 *
 * Several machines (keygen M1 M2...) share the one commit point: (1) for
 * each before the one rename of the spec that names every new key, (3)
 * and (4) for each after it. Each machine's files follow the rule above
 * on their own, judged by that machine's line in the spec, which the
 * rename changes for all of them at once: killed before it, every
 * machine's pending files are dropped by its next settle (the spec names
 * none of them); after it, each is finished by its next settle, and
 * readers already find every new key. */

/* Finishes or undoes an install that was interrupted, by spec_key (the
 * spec's key for machine, NULL when it has none): pending files that
 * key.pending says are spec_key are copied over the kept key (3) and
 * removed (4); any others never were the machine's key and are removed.
 * The caller holds the store's lock. */
enum vf_key_settled {
	VF_KEY_NOTHING_PENDING,
	VF_KEY_PENDING_FINISHED, /* an interrupted install is now complete */
	VF_KEY_PENDING_DROPPED,	 /* it never reached the spec: undone */
};
enum vf_code vf_machine_key_settle(const char *root, const char *machine, const char *spec_key,
				   enum vf_key_settled *done, struct vf_error *err);

/* The store path (relative to root, malloc'd) of the kept identity of
 * machine whose spec key is spec_key (may be NULL): secret.pending while
 * an interrupted install leaves it there, else secret. */
enum vf_code vf_machine_key_secret_rel(const char *root, const char *machine,
				       const char *spec_key, char **rel, struct vf_error *err);

/* The recipient recorded in vars/per-machine/M/.machine-key (malloc'd),
 * NULL when there is no record; a record that is not one line is
 * VF_E_ARG. */
enum vf_code vf_machine_key_record(const char *root, const char *machine, char **recipient,
				   struct vf_error *err);

/* One machine's key for vf_machine_keys_install: a new key (sealed, the
 * identity sealed to the admins, and manifest, their recipients), or with
 * sealed NULL the key the store keeps, whose `key:` line is written back
 * (the caller decrypted it to learn recipient). */
struct vf_machine_key_new {
	const char *machine;
	const char *recipient;
	const void *sealed;
	size_t sealed_len;
	const void *manifest;
	size_t manifest_len;
};

/* Installs the keys of n distinct machines in one transaction, as
 * described above, with one rewrite of the spec naming all of them as the
 * commit point: (1) is done for every new key (and a missing record
 * written for every restored one) before (2), and (3) and (4) for every
 * new key after it. A kill leaves each machine as the scheme says, and
 * the spec naming either every new key or none. Errors before the spec
 * changed leave spec and store as they were ("...; the spec and the store
 * are unchanged" when the spec cannot be written); VF_E_KEY when a
 * restored key is not the one its record names. After the spec changed,
 * every machine is finished that can be, and the message says what is
 * left for the next keygen. */
enum vf_code vf_machine_keys_install(const struct vf_spec *spec, const char *root,
				     const struct vf_machine_key_new *keys, size_t n,
				     struct vf_error *err);

/* Stages a kept key for machine in t, as keygen keeps one: the identity
 * sealed to the admins (sealed) and its manifest as data, the record
 * naming recipient as a record (written once the data is durable). For a
 * machine whose key the store does not keep yet, in a transaction that
 * commits together with the spec naming recipient (vargen import clan:
 * the machine's key comes from elsewhere, ready-made). */
struct vf_txn;
enum vf_code vf_machine_key_stage(struct vf_txn *t, const char *root, const char *machine,
				  const char *recipient, const void *sealed, size_t sealed_len,
				  const void *manifest, size_t manifest_len, struct vf_error *err);

#endif
