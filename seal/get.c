/* varseal get MACHINE GENERATOR/FILE [-i IDENTITY]...: prints a stored
 * value; secrets are decrypted with the identities given. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vars/store.h"
#include "varseal.h"

static const char usage[] =
	"varseal get [-f SPEC] [--store DIR] [-i IDENTITY]... MACHINE|shared GENERATOR/FILE";
static const struct vs_help_row help_rows[] = {
	{NULL, "MACHINE|shared", "the machine, or shared for a shared generator's file"},
	{NULL, "GENERATOR/FILE", "the file, as the spec names it"},
	VS_STORE_HELP,
	VS_IDENTITY_HELP("an admin's or the machine's identity, to open a secret; "
			 "repeatable"),
	VS_HELP_OPTION,
};
static const struct vs_help help = {
	usage,
	"Prints one stored var on standard output; a secret is decrypted with the identities\n"
	"given (needed only for secrets).",
	VS_HELP_ROWS(help_rows),
};

int cmd_get(int argc, char **argv)
{
	struct vs_vars v = {.lock_fd = -1};
	const struct vf_spec_generator *g = NULL;
	const struct vf_spec_file *f = NULL;
	const char *owner = NULL;
	int status = vs_vars_open_target(argc, argv, &v, &help, &g, &f, &owner);
	struct vf_value value = {0};
	struct vf_error err;
	/* Keys are only needed, and asked for, when a secret is there to open. */
	if (!status && f->secret) {
		char *rel = vf_store_rel(owner, g->name, f->name, "secret");
		bool exists = false;
		if (!rel)
			status = vs_error("out of memory");
		else if (vf_store_exists(v.root, rel, &exists, &err) != VF_OK)
			status = vs_fail(NULL, &err);
		else if (exists)
			status = vs_vars_identities(&v);
		free(rel);
	}
	if (!status && vf_vars_read(v.root, owner, g, f, &v.ids, &value, &err) != VF_OK)
		status = vs_fail(NULL, &err);
	if (!status && vf_write_all(STDOUT_FILENO, value.data, value.len, "standard output",
				    &err) != VF_OK)
		status = vs_fail(NULL, &err);
	vf_value_free(&value);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
