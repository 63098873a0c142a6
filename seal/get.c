/* varseal get MACHINE GENERATOR/FILE [-i IDENTITY]... [-o FILE]: prints a
 * stored value, or writes it to a private file; secrets are decrypted
 * with the identities given. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "varseal.h"

static const char usage[] = "varseal get [-f SPEC] [--store DIR] [-i IDENTITY]... "
			    "[-o FILE [--force]]\n"
			    "                   MACHINE|shared GENERATOR/FILE";
static const struct vf_help_row help_rows[] = {
	{NULL, "MACHINE|shared", "the machine, or shared for a shared generator's file"},
	{NULL, "GENERATOR/FILE", "the file, as the spec names it"},
	VS_STORE_HELP,
	VS_IDENTITY_HELP("an admin's or the machine's identity, to open a secret; "
			 "repeatable"),
	{"-o, --output", "FILE", "write the value to FILE, mode 0600, not standard output"},
	{"--force", NULL, "with -o: replace FILE if it exists"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Prints one stored var on standard output, or with -o writes it to a new file only\n"
	"you can read; a secret is decrypted with the identities given (needed only for\n"
	"secrets).",
	VF_HELP_ROWS(help_rows),
	NULL,
};

struct get_options {
	const char *output;
	bool force;
};

static int get_option(void *ctx, int c, const char *arg)
{
	struct get_options *o = ctx;
	switch (c) {
	case 'o': o->output = arg; return 0;
	case OPT_FORCE: o->force = true; return 0;
	default: return vs_usage(usage);
	}
}

/* The store options, -o and --force: 0, -1 after --help, or the exit
 * status of a usage error. */
static int parse(int argc, char **argv, struct vs_vars *v, struct get_options *o)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"output", required_argument, NULL, 'o'},
		{"force", no_argument, NULL, OPT_FORCE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int status = vs_vars_getopt(argc, argv, v, "f:i:o:h", opts, &help, get_option, o);
	if (status)
		return status;
	if (argc - optind != 2 || (o->force && !o->output))
		return vs_usage(usage);
	return 0;
}

/* One get's state, for the two calls vf_vars_read_with makes back. */
struct reading {
	struct vs_vars *v;
	struct vs_private_out *out;
	int status; /* the tool's own, which has said why it failed */
};

/* Keys are only needed, and asked for, when a secret is there to open. */
static enum vf_code load_keys(void *ctx, const struct vf_identities **ids, struct vf_error *err)
{
	struct reading *r = ctx;
	r->status = vs_vars_identities(r->v);
	*ids = &r->v->ids;
	return r->status ? vf_fail(err, VF_E_IO, "loading the identities failed") : VF_OK;
}

/* The value goes where it was asked to while it is still at hand: a small
 * secret's plaintext never gets a guarded block of its own. */
static enum vf_code commit_value(void *ctx, const uint8_t *data, size_t len, struct vf_error *err)
{
	struct reading *r = ctx;
	r->status = vs_private_commit(r->out, data, len);
	return r->status ? vf_fail(err, VF_E_IO, "writing the value failed") : VF_OK;
}

int cmd_get(int argc, char **argv)
{
	struct vs_vars v = {.lock_fd = -1};
	struct get_options o = {0};
	struct vs_private_out out = {0};
	const struct vf_spec_generator *g = NULL;
	const struct vf_spec_file *f = NULL;
	const char *owner = NULL;
	int status = parse(argc, argv, &v, &o);
	if (!status)
		status = vs_vars_load(&v);
	if (!status)
		status = vs_vars_target(&v, argv[optind], argv[optind + 1], &g, &f, &owner);
	/* Where it goes is settled before anything is decrypted. */
	if (!status)
		status = vs_private_open(&out, o.output, o.force);
	struct reading r = {&v, &out, 0};
	struct vf_error err;
	if (!status &&
	    vf_vars_read_with(v.root, owner, g, f, load_keys, commit_value, &r, &err) != VF_OK)
		status = r.status ? r.status : vs_fail(NULL, &err);
	vs_private_abort(&out);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
