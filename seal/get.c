/* varseal get MACHINE GENERATOR/FILE [-i IDENTITY]...: prints a stored
 * value; secrets are decrypted with the identities given. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "varseal.h"

static const char usage[] =
	"varseal get [-f SPEC] [--store DIR] [-i IDENTITY]... MACHINE|shared GENERATOR/FILE";

int cmd_get(int argc, char **argv)
{
	struct vs_vars v = {.lock_fd = -1};
	int status = vs_vars_parse(argc, argv, &v, usage);
	if (!status && argc - optind != 2)
		status = vs_usage(usage);
	const struct vf_spec_generator *g;
	const struct vf_spec_file *f;
	const char *owner;
	if (!status)
		status = vs_vars_load(&v);
	if (!status)
		status = vs_vars_target(&v, argv[optind], argv[optind + 1], &g, &f, &owner);
	char *path = NULL;
	struct vf_value value = {0};
	struct vf_error err;
	if (!status) {
		path = vf_store_path(v.root, owner, g->name, f->name, f->secret ? "secret" : "value");
		if (!vf_store_exists(path))
			status = vs_error("%s: not generated yet (vargen generate)", path);
	}
	if (!status && f->secret) {
		status = vs_vars_identities(&v);
		if (!status && vf_unseal(path, &v.ids, &value, &err) != VF_OK)
			status = vs_fail(path, &err);
	} else if (!status) {
		uint8_t *data;
		size_t len;
		if (vf_store_read(path, &data, &len, &err) != VF_OK)
			status = vs_fail(NULL, &err);
		else if (vf_value_set(&value, data, len, &err) != VF_OK)
			status = vs_fail(NULL, &err);
		free(data);
	}
	if (!status && vf_write_all(STDOUT_FILENO, value.data, value.len, "standard output",
				    &err) != VF_OK)
		status = vs_fail(NULL, &err);
	vf_value_free(&value);
	free(path);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
