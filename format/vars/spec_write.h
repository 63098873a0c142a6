/* A spec written together with the store: its new text is made, written
 * beside the file and synced before the store is touched, and renamed into
 * place as the commit point (varseal machine keygen, vargen import clan,
 * varseal import-sops). A failure before the rename leaves the spec as it
 * was; after it, the spec holds the new text whole. */
#ifndef VF_SPEC_WRITE_H
#define VF_SPEC_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/atomic.h"
#include "base/error.h"

struct vf_spec_write {
	const char *path; /* the caller's, kept until the write ends */
	char *text;	  /* owned */
	size_t len;
	struct vf_atomic file;
	bool open;
};

/* Takes text (malloc'd: freed by vf_spec_write_abort, also on failure)
 * and writes it beside path (as an unnamed file where the kernel allows,
 * gone if we are killed), with the replaced spec's owner, group and mode
 * (a new spec gets 0644 less the umask), synced. path is the user's file:
 * a symlink there is followed, and the file it leads to is replaced. */
enum vf_code vf_spec_write_begin(struct vf_spec_write *w, const char *path, char *text,
				 size_t len, struct vf_error *err);

/* Renames the new spec into place: over the old one (replace), or only
 * if there is none (!replace: a spec that appeared meanwhile is not
 * overwritten, VF_E_IO). *landed: whether the file at path now holds the
 * new text, also when an error came after the rename (a failed sync of
 * the directory). */
enum vf_code vf_spec_write_commit(struct vf_spec_write *w, bool replace, bool *landed,
				  struct vf_error *err);

/* Removes the temporary (if any) and frees the text; safe twice. */
void vf_spec_write_abort(struct vf_spec_write *w);

#endif
