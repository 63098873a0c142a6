/* varseal decrypt [-i FILE]... [-o OUT] [IN]: age -d. Armored input is
 * recognised by itself. Without -i, a passphrase-encrypted file asks for
 * its passphrase (terminal, or --passphrase-file). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/secmem.h"
#include "base/term.h"
#include "age/age.h"
#include "age/keys.h"
#include "varseal.h"

static const char usage[] =
	"varseal decrypt [-i IDENTITY]... [--passphrase-file FILE] [--max-work-factor N]\n"
	"                [--insecure-permissions] [--progress] [-o OUTPUT] [INPUT]";
static const struct vf_help_row help_rows[] = {
	{NULL, "INPUT", "the age file, binary or armored; standard input when absent or -"},
	{"-i, --identity", "FILE", "an identity file (age or SSH; - for standard input); "
				   "up to 64 of them"},
	{"--passphrase-file", "FILE", "the passphrase of the file or of an identity file, read "
				      "from FILE"},
	{"--max-work-factor", "N", "open passphrase files of scrypt cost up to 2^N (1..40, "
				   "default 22)"},
	{"--insecure-permissions", NULL, "read identity files that group or others may read"},
	{"--progress", NULL, "draw a progress line on standard error when it is a terminal"},
	{"-o, --output", "OUTPUT", "write to OUTPUT, made only once complete (default: "
				   "standard output)"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Decrypts an age file (age -d) with identities, or with a passphrase asked on the\n"
	"terminal (or read from --passphrase-file) when it was encrypted to one.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

struct decrypt_opts {
	const char *output, *input, *passphrase_file;
	const char *identity_files[64];
	size_t n_identity_files;
	bool insecure, progress;
	unsigned max_work_factor;
	/* Where the passphrase of a passphrase-encrypted file comes from; the
	 * scrypt identity asks through it only when it meets such a file, so
	 * it lives as long as the options. */
	struct vf_passphrase_source passphrase;
};

static int parse_args(int argc, char **argv, struct decrypt_opts *o)
{
	static const struct option opts[] = {
		{"identity", required_argument, NULL, 'i'},
		{"output", required_argument, NULL, 'o'},
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},
		{"max-work-factor", required_argument, NULL, OPT_MAX_WORK_FACTOR},
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "i:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (o->n_identity_files == 64)
				return vs_error("too many -i options");
			o->identity_files[o->n_identity_files++] = optarg;
			break;
		case 'o': o->output = optarg; break;
		case OPT_PASSPHRASE_FILE: o->passphrase_file = optarg; break;
		case OPT_INSECURE_PERMISSIONS: o->insecure = true; break;
		case OPT_PROGRESS: o->progress = true; break;
		case OPT_MAX_WORK_FACTOR: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > 40)
				return vs_error("--max-work-factor must be 1..40");
			o->max_work_factor = (unsigned)v;
			break;
		}
		case 'h': vf_help_print(stdout, &help); return -1;
		default: return vs_usage(usage);
		}
	}
	if (argc - optind > 1)
		return vs_usage(usage);
	o->input = optind < argc ? argv[optind] : NULL;
	bool input_is_stdin = !o->input || !strcmp(o->input, "-");
	bool stdin_taken = o->passphrase_file && !strcmp(o->passphrase_file, "-");
	for (size_t i = 0; i < o->n_identity_files; i++)
		if (!strcmp(o->identity_files[i], "-")) {
			if (stdin_taken)
				return vs_error("standard input can only be read once (-i - given twice?)");
			stdin_taken = true;
		}
	if (input_is_stdin && stdin_taken)
		return vs_error("standard input can't be both the input and a key or passphrase: "
				"name the input file");
	return 0;
}

static int load_identities(struct decrypt_opts *o, struct vf_identities *ids)
{
	struct vf_error err;
	for (size_t i = 0; i < o->n_identity_files; i++) {
		const char *path = o->identity_files[i];
		if (vf_load_identities(path, true, o->insecure, o->passphrase_file, ids, &err) != VF_OK)
			return vs_fail(NULL, &err);
	}
	/* The passphrase path: only when no keys were given, or asked for. */
	if (o->n_identity_files == 0 || o->passphrase_file) {
		struct vf_identity *id;
		unsigned max = o->max_work_factor ? o->max_work_factor : VF_SCRYPT_MAX_LOG_N;
		o->passphrase = (struct vf_passphrase_source){o->passphrase_file, NULL};
		if (vf_scrypt_identity_new(vf_passphrase_ask, &o->passphrase, max, &id, &err) != VF_OK ||
		    vf_identities_add(ids, id, &err) != VF_OK)
			return vs_fail(NULL, &err);
	}
	return 0;
}

static int decrypt_to(const struct decrypt_opts *o, struct vf_identities *ids, int in_fd,
		      const char *in_name)
{
	struct vf_error err;
	struct vs_output out;
	if (vs_output_open(&out, o->output, &err) != VF_OK)
		return vs_fail(NULL, &err);
	struct vf_fd_src src;
	vf_fd_src_init(&src, in_fd, in_name);
	struct vs_progress_input counted;
	struct vf_src *in = vs_progress_src(&counted, &src.base, in_fd, "varseal: decrypting",
					    o->progress);
	enum vf_code rc = vf_decrypt(ids->items, ids->n, in, VF_ARMOR_AUTO, &out.sink.base, &err);
	vf_progress_end(&counted.progress);
	if (rc == VF_E_NO_MATCH && o->n_identity_files == 0 && !o->passphrase_file &&
	    strcmp(err.msg, "wrong passphrase") != 0)
		vf_fail(&err, VF_E_NO_MATCH,
			"no identity given (use -i FILE): the file is not passphrase-encrypted");
	if (rc == VF_OK)
		rc = vs_output_commit(&out, &err);
	else
		vs_output_abort(&out);
	return rc == VF_OK ? 0 : vs_fail(in_name, &err);
}

int cmd_decrypt(int argc, char **argv)
{
	struct decrypt_opts o = {0};
	struct vf_identities ids = {0};
	int status = parse_args(argc, argv, &o);
	if (status == 0)
		status = load_identities(&o, &ids);
	const char *in_name = NULL;
	int in_fd = status == 0 ? vs_open_input(o.input, &in_name) : -1;
	if (status == 0 && in_fd < 0)
		status = 1;
	if (status == 0)
		status = decrypt_to(&o, &ids, in_fd, in_name);
	if (in_fd > STDIN_FILENO)
		close(in_fd);
	vf_identities_free(&ids);
	return status < 0 ? 0 : status;
}
