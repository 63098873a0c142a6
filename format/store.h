/* The vars store: where sealed secrets and public values live, in a layout
 * that users keep in git (docs/store.md):
 *
 *   vars/per-machine/<machine>/<generator>/<file>/secret      age file
 *   vars/per-machine/<machine>/<generator>/<file>/recipients  manifest
 *   vars/per-machine/<machine>/<generator>/<file>/value       public value
 *   vars/per-machine/<machine>/<generator>/.generator         spec hash
 *   vars/shared/<generator>/...                               same, shared
 *   vars/machine-keys/<machine>/secret (+ recipients)         machine key,
 *                                                             sealed to admins
 *
 * Writes go through a transaction: every new file is written under a
 * temporary name, all are made durable with one sync, then renamed into
 * place and synced again. Killed at any moment, each file is either the old
 * one or the new one; leftover temporaries (".*.tmp") are ignored, and
 * removed by the next command that writes the store. */
#ifndef VF_STORE_H
#define VF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Path of an element; machine NULL means shared; file and leaf may be NULL.
 * Returned malloc'd. */
char *vf_store_path(const char *root, const char *machine, const char *generator,
		    const char *file, const char *leaf);
char *vf_store_machine_key_path(const char *root, const char *machine, const char *leaf);

/* Reads a whole (non-secret) file: NULL data and VF_OK when it does not
 * exist. The result is NUL-terminated. */
enum vf_code vf_store_read(const char *path, uint8_t **data, size_t *len, struct vf_error *err);
bool vf_store_exists(const char *path);

/* The manifest: recipients one per line, sorted, without duplicates. */
enum vf_code vf_manifest_format(char **recipients, size_t n, char **text, size_t *len,
				struct vf_error *err);

struct vf_txn_item;
struct vf_txn {
	struct vf_txn_item *items;
	size_t n, cap;
};

/* Stages path's new contents (parents created 0700 as needed). Safe to
 * call from several threads on one transaction. */
enum vf_code vf_txn_write(struct vf_txn *t, const char *path, const void *data, size_t len,
			  struct vf_error *err);
/* Stages the removal of path (a no-op if it does not exist then). */
enum vf_code vf_txn_remove(struct vf_txn *t, const char *path, struct vf_error *err);
/* Makes everything durable and visible: sync, rename, sync. */
enum vf_code vf_txn_commit(struct vf_txn *t, struct vf_error *err);
/* Drops what was staged (removes the temporaries). */
void vf_txn_abort(struct vf_txn *t);

/* Removes temporaries a killed run left under root/vars (the caller holds
 * the store's lock). */
void vf_store_clean_temps(const char *root);

/* Creates dir and its missing parents with mode 0700. */
enum vf_code vf_mkdirs(const char *dir, struct vf_error *err);

#endif
