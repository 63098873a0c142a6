/* The store's lower layer, used by vars.c on top of store.c (private to
 * format/vars/: the tools go through store.h and vars.h). */
#ifndef VF_STORE_INTERNAL_H
#define VF_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/crypto.h"
#include "base/error.h"
#include "vars/store.h"

/* Opens a store file by path relative to the root (see vf_store_rel): a
 * missing file is not an error, *fd is -1. A symlink at or above it
 * (beneath the root), a non-regular file or one larger than
 * VF_STORE_MAX_FILE are errors naming the path. */
enum vf_code vf_store_open(const char *root, const char *rel, int *fd, struct vf_error *err);

/* Stages rel's new contents (data) or its removal (data NULL) in phase.
 * Parents are created 0700 beneath the root as needed, never through a
 * symlink. Safe to call from several threads on one transaction. */
enum vf_code vf_txn_stage(struct vf_txn *t, const char *root, const char *rel,
			  enum vf_txn_phase phase, const void *data, size_t len,
			  struct vf_error *err);
enum vf_code vf_txn_remove(struct vf_txn *t, const char *root, const char *rel,
			   struct vf_error *err);
/* What the transaction will leave at rel, if it stages anything there in
 * phase VF_TXN_DATA: false when it does not (or when memory runs out);
 * else *removed, or the SHA-256 of the new contents in sha. Not to be
 * called while others stage. */
bool vf_txn_staged(struct vf_txn *t, const char *rel, bool *removed,
		   uint8_t sha[VF_SHA256_LEN]);

/* The names of the directories in rel_dir (a store path relative to the
 * root), sorted, into *names (malloc'd array of malloc'd strings; free
 * with vf_store_names_free). A missing rel_dir has none. Entries whose
 * name starts with '.' (records, temporaries) and regular files are not
 * listed; a symlink or special file is an error naming it, as everywhere
 * in the store. */
enum vf_code vf_store_list_dirs(const char *root, const char *rel_dir, char ***names, size_t *n,
				struct vf_error *err);
void vf_store_names_free(char **names, size_t n);
/* The directories directly in vars/ named as temporaries (".*.tmp"):
 * what vf_store_discard_dir took out of the store and a killed run did not
 * delete. */
enum vf_code vf_store_list_discarded(const char *root, char ***names, size_t *n,
				     struct vf_error *err);

/* Takes the directory rel_dir (and everything in it) out of the store in
 * one rename: it becomes a hidden temporary directly in vars/, which
 * vf_store_clean_temps removes. The caller holds the lock, and syncs
 * (vf_store_sync) before removing the temporaries. */
enum vf_code vf_store_discard_dir(const char *root, const char *rel_dir, struct vf_error *err);
enum vf_code vf_store_sync(const char *root, struct vf_error *err);

#endif
