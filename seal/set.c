/* varseal set MACHINE GENERATOR/FILE: stores the value read from standard
 * input, sealed to the machine (or every machine sharing it) and the
 * admins when the file is secret. The file is recorded as set by hand:
 * vargen generate does not replace it without --regenerate. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/io.h"
#include "base/secmem.h"
#include "vars/store.h"
#include "varseal.h"

#define MAX_VALUE (16u << 20)

static const char usage[] = "varseal set [-f SPEC] [--store DIR] MACHINE|shared GENERATOR/FILE "
			    "< VALUE";
static const struct vs_help_row help_rows[] = {
	{NULL, "MACHINE|shared", "the machine, or shared for a shared generator's file"},
	{NULL, "GENERATOR/FILE", "the file, as the spec names it"},
	VS_STORE_HELP,
	/* Parsed with get's options; set seals to public keys and opens nothing. */
	{"-i, --identity", "FILE", "accepted and not used: set needs no key"},
	{"--insecure-permissions", NULL, "accepted and not used: set needs no key"},
	{"--passphrase-file", "FILE", "accepted and not used: set needs no key"},
	VS_HELP_OPTION,
};
static const struct vs_help help = {
	usage,
	"Stores a var read from standard input (at most 16 MiB), sealed to the spec's\n"
	"recipients when it is secret, and marks it set by hand: vargen generate keeps it.",
	VS_HELP_ROWS(help_rows),
};

/* The value from standard input: a pipe or a file, into guarded memory. */
static int read_stdin(struct vf_value *v)
{
	const struct vf_read_opts o = {.max = MAX_VALUE, .any_type = true, .guarded = true};
	struct vf_file f = {0};
	struct vf_error err;
	if (vf_read_fd(STDIN_FILENO, "standard input", &o, &f, &err) != VF_OK)
		return f.fail == VF_READ_SIZE ? vs_error("standard input: value larger than 16 MiB")
					      : vs_fail(NULL, &err);
	enum vf_code rc = vf_value_set(v, f.data, f.len, &err);
	vf_file_free(&f, &o);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

int cmd_set(int argc, char **argv)
{
	struct vs_vars v = {.lock_fd = -1};
	const struct vf_spec_generator *g = NULL;
	const struct vf_spec_file *f = NULL;
	const char *owner = NULL;
	int status = vs_vars_open_target(argc, argv, &v, &help, &g, &f, &owner);
	struct vf_value value = {0};
	if (!status)
		status = read_stdin(&value);
	if (!status)
		status = vs_vars_store_hand_set(&v, owner, g, f, &value);
	vf_value_free(&value);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
