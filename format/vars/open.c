/* Opening a spec and its store: what every vargen, varseal and varinject
 * command that works on the store does first. */
#include "vars/vars.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vars/store.h"

/* The store sits beside the spec unless told otherwise: the spec's
 * directory, as dirname(3) names it ("." for a bare file name). */
static char *spec_dir(const char *spec_path)
{
	char *copy = strdup(spec_path);
	char *dir = copy ? strdup(dirname(copy)) : NULL;
	free(copy);
	return dir;
}

/* The spec when none is named, found as git finds its repository:
 * $VARS_SPEC, else VF_VARS_SPEC_DEFAULT in the working directory or the
 * nearest parent that has one, so that every command works from anywhere
 * in the tree (inside vars/ too). The path is relative to the working
 * directory ("vars.yaml", "../../vars.yaml"), as messages show it.
 * *found NULL when there is none. */
static enum vf_code find_spec(char **found, struct vf_error *err)
{
	*found = NULL;
	const char *env = getenv("VARS_SPEC");
	if (env && *env)
		return (*found = strdup(env)) ? VF_OK : vf_fail(err, VF_E_NOMEM, "out of memory");
	char up[PATH_MAX];
	up[0] = '\0';
	struct stat here, st;
	if (stat(".", &here) != 0)
		return vf_fail_errno(err, errno, "the working directory");
	/* At most as many levels as a path can have; the root's parent is
	 * itself, which ends the walk. */
	for (size_t level = 0; level < PATH_MAX / 3; level++) {
		char candidate[PATH_MAX + 16];
		snprintf(candidate, sizeof(candidate), "%s%s", up, VF_VARS_SPEC_DEFAULT);
		if (stat(candidate, &st) == 0 && !S_ISDIR(st.st_mode))
			return (*found = strdup(candidate)) ? VF_OK
							    : vf_fail(err, VF_E_NOMEM, "out of memory");
		char parent[PATH_MAX + 4];
		snprintf(parent, sizeof(parent), "%s..", up);
		struct stat p;
		if (stat(parent, &p) != 0 || (p.st_dev == here.st_dev && p.st_ino == here.st_ino) ||
		    strlen(up) + 4 >= sizeof(up))
			break;
		here = p;
		strcat(up, "../");
	}
	return VF_OK;
}

enum vf_code vf_vars_open(const char *spec_path, const char *store, struct vf_spec *spec,
			  char **root, struct vf_error *err)
{
	*root = NULL;
	char *found = NULL;
	if (!spec_path) {
		enum vf_code rc = find_spec(&found, err);
		if (rc != VF_OK)
			return rc;
		if (!found)
			return vf_fail(err, VF_E_IO,
				       "no %s here or in any parent directory (give -f SPEC, or set "
				       "VARS_SPEC)",
				       VF_VARS_SPEC_DEFAULT);
		spec_path = found;
	}
	enum vf_code rc = vf_spec_load(spec_path, spec, err);
	if (rc == VF_OK)
		*root = store ? strdup(store) : spec_dir(spec_path);
	free(found);
	if (rc == VF_OK && !*root) {
		vf_spec_free(spec);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	return rc;
}

enum vf_code vf_vars_store_present(const char *root, bool *present, struct vf_error *err)
{
	return vf_store_present(root, present, err);
}

enum vf_code vf_vars_require_store(const char *root, struct vf_error *err)
{
	bool present;
	enum vf_code rc = vf_store_present(root, &present, err);
	if (rc == VF_OK && !present)
		rc = vf_fail(err, VF_E_IO,
			     "no store at %s (no vars/ directory there; vargen generate makes one)",
			     root);
	return rc;
}
