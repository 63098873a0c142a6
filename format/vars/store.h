/* The vars store: where sealed secrets and public values live, in a layout
 * that users keep in git (docs/store.md):
 *
 *   vars/per-machine/<machine>/<generator>/<file>/secret      age file
 *   vars/per-machine/<machine>/<generator>/<file>/recipients  manifest
 *   vars/per-machine/<machine>/<generator>/<file>/value       public value
 *   vars/per-machine/<machine>/<generator>/.generator         spec hash
 *   vars/per-machine/<machine>/<generator>/.commit            commit record
 *   vars/shared/<generator>/...                               same, shared
 *   vars/machine-keys/<machine>/secret (+ recipients)         machine key,
 *                                                             sealed to admins
 *
 * The store is shared through git, so its contents are not trusted: every
 * path beneath the root is resolved one component at a time without
 * following any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a
 * walk with O_NOFOLLOW where the kernel lacks openat2), and only regular
 * files of a bounded size are read, opened O_NONBLOCK so that a FIFO cannot
 * block. The root itself is the user's: it may be named through a symlink,
 * and is resolved once per process.
 *
 * Writes go through a transaction in three phases: records of the commits
 * being replaced are removed first, then every new file is renamed into
 * place, then the new records; the phases are separated by syncs. A kill at
 * any moment leaves each file either the old one or the new one, and a
 * generator either as it was or without a record that vouches for it.
 * Leftover temporaries (".*.tmp") are ignored, and removed by the next
 * command that writes the store. */
#ifndef VF_STORE_H
#define VF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/crypto.h"
#include "base/error.h"

/* The largest file read from the store (or as a spec or config): far above
 * any secret (values are at most 16 MiB), far below what would hurt. */
#define VF_STORE_MAX_FILE (64u << 20)

/* Path of an element; machine NULL means shared; file and leaf may be NULL.
 * Returned malloc'd. The _rel forms are relative to the root ("vars/..."),
 * the others are root + "/" + that, for messages. */
char *vf_store_path(const char *root, const char *machine, const char *generator,
		    const char *file, const char *leaf);
char *vf_store_rel(const char *machine, const char *generator, const char *file,
		   const char *leaf);
char *vf_store_machine_key_rel(const char *machine, const char *leaf);

/* Reads a whole file named by the user (a spec, a config; not a store
 * path): NULL data and VF_OK when it does not exist. A FIFO, device or
 * directory is refused without blocking, as is a file larger than
 * VF_STORE_MAX_FILE. The result is NUL-terminated. */
enum vf_code vf_store_read(const char *path, uint8_t **data, size_t *len, struct vf_error *err);

/* Store files, by path relative to the root (see vf_store_rel). A missing
 * file is not an error: *data NULL, *exists false. A symlink at
 * or above it (beneath the root), a non-regular file or one larger than
 * VF_STORE_MAX_FILE are errors naming the path. */
enum vf_code vf_store_read_at(const char *root, const char *rel, uint8_t **data, size_t *len,
			      struct vf_error *err);
enum vf_code vf_store_exists(const char *root, const char *rel, bool *exists,
			     struct vf_error *err);
/* Whether rel's directory is missing (so is every file in it): one lookup
 * instead of one per file, where a new store has none of them. *absent
 * stays false for anything but a missing directory; the reads then say
 * what is in the way. */
enum vf_code vf_store_dir_absent(const char *root, const char *rel, bool *absent,
				 struct vf_error *err);

/* The manifest: recipients one per line, sorted, without duplicates. */
enum vf_code vf_manifest_format(char **recipients, size_t n, char **text, size_t *len,
				struct vf_error *err);
/* How much of a manifest line identifies its key: all of it, but an SSH
 * recipient's type and key without the comment, which names a key but does
 * not change it. */
size_t vf_manifest_key_len(const char *line, size_t len);
/* Whether two manifests name the same keys: line by line, an SSH recipient
 * compared by its type and key, not its comment (a comment changed in the
 * spec does not change who can decrypt). */
enum vf_code vf_manifest_same(const char *have, size_t have_len, const char *want,
			      size_t want_len, bool *same, struct vf_error *err);

/* When a staged change takes effect within vf_txn_commit. */
enum vf_txn_phase {
	VF_TXN_INVALIDATE, /* removals done (and synced) before anything else */
	VF_TXN_DATA,	   /* the files themselves */
	VF_TXN_RECORD,	   /* renamed only once every data file is durable */
};

struct vf_txn_item;
struct vf_txn {
	struct vf_txn_item *items;
	size_t n, cap;
	char *root; /* of every item: set by the first one staged */
	/* For vf_txn_staged: the VF_TXN_DATA items sorted by path, built
	 * when first needed and again after more data is staged. */
	size_t *index, n_indexed, n_data;
};

/* Stages rel's new contents in phase VF_TXN_DATA (vf_txn_stage in
 * store_internal.h does the other phases and removals). Parents are
 * created 0700 beneath the root as needed, never through a symlink. Safe
 * to call from several threads on one transaction. */
enum vf_code vf_txn_write(struct vf_txn *t, const char *root, const char *rel, const void *data,
			  size_t len, struct vf_error *err);
/* Makes everything durable and visible: invalidations, sync, data, sync,
 * records, sync (a phase with nothing staged costs nothing). */
enum vf_code vf_txn_commit(struct vf_txn *t, struct vf_error *err);
/* Drops what was staged (removes the temporaries). */
void vf_txn_abort(struct vf_txn *t);

/* Removes temporaries a killed run left under root/vars, files and the
 * directories vf_store_discard_dir made (the caller holds the store's
 * lock). */
void vf_store_clean_temps(const char *root);

/* Whether root/vars exists (a directory: anything else is an error). */
enum vf_code vf_store_present(const char *root, bool *present, struct vf_error *err);

/* Creates dir and its missing parents with mode 0700 (for the root and
 * paths outside the store; beneath the root, staging creates directories). */
enum vf_code vf_mkdirs(const char *dir, struct vf_error *err);

/* Makes root/vars (never through a symlink) and takes the writers' lock on
 * it: *fd holds the lock until closed. */
enum vf_code vf_store_lock(const char *root, int *fd, struct vf_error *err);

#endif
