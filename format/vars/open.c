/* Opening a spec and its store: what every vargen, varseal and varinject
 * command that works on the store does first. */
#include "vars/vars.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

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

enum vf_code vf_vars_open(const char *spec_path, const char *store, struct vf_spec *spec,
			  char **root, struct vf_error *err)
{
	*root = NULL;
	if (!spec_path)
		spec_path = VF_VARS_SPEC_DEFAULT;
	enum vf_code rc = vf_spec_load(spec_path, spec, err);
	if (rc != VF_OK)
		return rc;
	*root = store ? strdup(store) : spec_dir(spec_path);
	if (!*root) {
		vf_spec_free(spec);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	return VF_OK;
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
