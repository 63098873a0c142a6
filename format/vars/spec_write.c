/* Writing the spec as the commit point of a change to spec and store
 * (spec_write.h). */
#include "vars/spec_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vars/store.h"

void vf_spec_write_abort(struct vf_spec_write *w)
{
	if (w->open)
		vf_atomic_abort(&w->file);
	w->open = false;
	free(w->text);
	w->text = NULL;
}

#define SPEC_NEW_MODE 0644

/* The temporary given the replaced file's owner, group and mode, and
 * synced: what vf_atomic_commit would do first, done early. */
static enum vf_code prepare(struct vf_spec_write *w, struct vf_error *err)
{
	struct vf_atomic *a = &w->file;
	enum vf_code rc = vf_write_all(a->fd, w->text, w->len, "the new spec", err);
	struct stat st;
	if (rc == VF_OK && a->keep.set) {
		if (fstat(a->fd, &st) != 0)
			rc = vf_fail_errno(err, errno, "the new spec");
		else if ((st.st_uid != a->keep.uid || st.st_gid != a->keep.gid) &&
			 fchown(a->fd, a->keep.uid, a->keep.gid) != 0)
			rc = vf_fail_errno(err, errno, "giving the new spec the owner %lu:%lu",
					   (unsigned long)a->keep.uid, (unsigned long)a->keep.gid);
		else if (fchmod(a->fd, a->keep.mode) != 0)
			rc = vf_fail_errno(err, errno, "giving the new spec mode %04o",
					   (unsigned)a->keep.mode);
	}
	/* A new spec holds names and public keys only, and is kept in git
	 * beside the store: 0644, not the 0600 that the tools' umask 077
	 * (there for secrets) would make of it. */
	if (rc == VF_OK && !a->keep.set && fchmod(a->fd, SPEC_NEW_MODE) != 0)
		rc = vf_fail_errno(err, errno, "giving the new spec mode %04o",
				   (unsigned)SPEC_NEW_MODE);
	if (rc == VF_OK && fsync(a->fd) != 0)
		rc = vf_fail_errno(err, errno, "syncing the new spec");
	return rc;
}

enum vf_code vf_spec_write_begin(struct vf_spec_write *w, const char *path, char *text,
				 size_t len, struct vf_error *err)
{
	memset(w, 0, sizeof(*w));
	w->path = path;
	w->text = text;
	w->len = len;
	enum vf_code rc = vf_atomic_open_output(&w->file, path, SPEC_NEW_MODE, err);
	w->open = rc == VF_OK;
	if (rc == VF_OK)
		rc = prepare(w, err);
	if (rc != VF_OK)
		vf_spec_write_abort(w);
	return rc;
}

/* Whether the file at path holds text now. */
static bool file_holds(const char *path, const char *text, size_t len)
{
	uint8_t *now = NULL;
	size_t n = 0;
	bool same = vf_store_read(path, &now, &n, NULL) == VF_OK && now && n == len &&
		    !memcmp(now, text, len);
	free(now);
	return same;
}

enum vf_code vf_spec_write_commit(struct vf_spec_write *w, bool replace, bool *landed,
				  struct vf_error *err)
{
	enum vf_code rc = vf_atomic_commit(&w->file, replace, err);
	w->open = false;
	*landed = rc == VF_OK || (replace && file_holds(w->path, w->text, w->len));
	return rc;
}
