/* varseal set MACHINE GENERATOR/FILE: stores a value, sealed to the
 * machine (or every machine sharing it) and the admins when the file is
 * secret. The file is recorded as set by hand: vargen generate does not
 * replace it without --regenerate.
 *
 * The value: asked on the terminal when standard input is one (a secret
 * hidden and twice, stored exactly as typed, without the Enter), else the
 * bytes of standard input as they come, one trailing line ending dropped
 * with --strip-newline. An empty value is refused unless --allow-empty:
 * far more often a failed command in a pipe than a wish. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/io.h"
#include "base/secmem.h"
#include "base/term.h"
#include "vars/store.h"
#include "varseal.h"

#define MAX_VALUE (16u << 20)

/* set's own long options: codes beyond varseal's shared ones (varseal.h),
 * so none can collide with them in the one getopt table. */
enum { OPT_STRIP_NEWLINE = 0x200, OPT_ALLOW_EMPTY };

static const char usage[] =
	"varseal set [-f SPEC] [--store DIR] [--strip-newline] [--allow-empty]\n"
	"            MACHINE|shared GENERATOR/FILE [< VALUE]";
static const struct vf_help_row help_rows[] = {
	{NULL, "MACHINE|shared", "the machine, or shared for a shared generator's file"},
	{NULL, "GENERATOR/FILE", "the file, as the spec names it"},
	VS_STORE_HELP,
	{"--strip-newline", NULL, "drop one trailing line ending (\\n or \\r\\n) of standard input"},
	{"--allow-empty", NULL, "store an empty value (refused otherwise)"},
	/* Parsed with get's options; set seals to public keys and opens nothing. */
	{"-i, --identity", "FILE", "accepted and not used: set needs no key"},
	{"--insecure-permissions", NULL, "accepted and not used: set needs no key"},
	{"--passphrase-file", "FILE", "accepted and not used: set needs no key"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Stores a var, sealed to the spec's recipients when it is secret, and marks it set by\n"
	"hand: vargen generate keeps it. On a terminal it is asked for (a secret hidden, twice)\n"
	"and stored as typed; else read from standard input as it comes (at most 16 MiB).\n"
	"A key pair's private half is checked and its public half computed with it.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

struct set_options {
	bool strip_newline;
	bool allow_empty;
};

static int set_option(void *ctx, int c, const char *arg)
{
	struct set_options *o = ctx;
	(void)arg;
	switch (c) {
	case OPT_STRIP_NEWLINE: o->strip_newline = true; return 0;
	case OPT_ALLOW_EMPTY: o->allow_empty = true; return 0;
	default: return vs_usage(usage);
	}
}

static int parse(int argc, char **argv, struct vs_vars *v, struct set_options *o)
{
	static const struct option opts[] = {
		VS_VARS_OPTIONS,
		{"strip-newline", no_argument, NULL, OPT_STRIP_NEWLINE},
		{"allow-empty", no_argument, NULL, OPT_ALLOW_EMPTY},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int status = vs_vars_getopt(argc, argv, v, "f:i:h", opts, &help, set_option, o);
	if (status)
		return status;
	if (argc - optind != 2)
		return vs_usage(usage);
	return 0;
}

/* The value from standard input: a pipe or a file, into guarded memory. */
static int read_stdin(const struct set_options *so, struct vf_value *v)
{
	const struct vf_read_opts o = {.max = MAX_VALUE, .any_type = true, .guarded = true};
	struct vf_file f = {0};
	struct vf_error err;
	if (vf_read_fd(STDIN_FILENO, "standard input", &o, &f, &err) != VF_OK)
		return f.fail == VF_READ_SIZE ? vs_error("standard input: value larger than 16 MiB")
					      : vs_fail(NULL, &err);
	size_t len = f.len;
	/* One line ending, as `echo x |` adds: "\r\n" counts as one. */
	if (so->strip_newline && len && f.data[len - 1] == '\n') {
		len--;
		if (len && f.data[len - 1] == '\r')
			len--;
	}
	enum vf_code rc = vf_value_set(v, f.data, len, &err);
	vf_file_free(&f, &o);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

/* The value typed at the terminal, the Enter not included: a secret
 * hidden and twice (a typo would be sealed unseen), a public value shown
 * and once. The prompt names what is set; names from the spec are shown
 * with control bytes escaped. */
static int read_tty(const char *owner, const struct vf_spec_generator *g,
		    const struct vf_spec_file *f, struct vf_value *v)
{
	char what[512], safe[1024], prompt[1100], again[1100];
	snprintf(what, sizeof(what), "%s %s/%s", owner ? owner : "shared", g->name, f->name);
	vf_escape_controls(what, safe, sizeof(safe));
	snprintf(prompt, sizeof(prompt), "%s (%s): ", safe, f->secret ? "hidden" : "shown");
	snprintf(again, sizeof(again), "%s (again): ", safe);
	uint8_t *data = NULL;
	size_t len = 0;
	struct vf_error err;
	enum vf_code rc = f->secret ? vf_tty_read_confirmed(prompt, again, false, false, &data,
							   &len, &err)
				    : vf_tty_read(prompt, true, false, &data, &len, &err);
	if (rc != VF_OK)
		return vs_fail(NULL, &err);
	rc = vf_value_set(v, data, len, &err);
	vf_secure_free(data);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

int cmd_set(int argc, char **argv)
{
	struct vs_vars v = {.lock_fd = -1};
	struct set_options o = {0};
	const struct vf_spec_generator *g = NULL;
	const struct vf_spec_file *f = NULL;
	const char *owner = NULL;
	int status = parse(argc, argv, &v, &o);
	if (!status)
		status = vs_vars_load(&v);
	if (!status)
		status = vs_vars_target(&v, argv[optind], argv[optind + 1], &g, &f, &owner);
	/* Before asking: a refusal after the value was typed twice is rude. */
	if (!status)
		status = vs_vars_settable(owner, g, f);
	struct vf_value value = {0};
	if (!status)
		status = isatty(STDIN_FILENO) ? read_tty(owner, g, f, &value)
					      : read_stdin(&o, &value);
	if (!status && value.len == 0 && !o.allow_empty)
		status = vs_error("standard input: empty value, nothing stored (--allow-empty "
				  "stores one)");
	if (!status)
		status = vs_vars_store_hand_set(&v, owner, g, f, &value);
	vf_value_free(&value);
	vs_vars_free(&v);
	return status < 0 ? 0 : status;
}
