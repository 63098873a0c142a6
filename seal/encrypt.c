/* varseal encrypt [-a] [-r RECIPIENT]... [-R FILE]... [-p] [-o OUT] [IN]
 * with age's flag letters and meanings. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/secmem.h"
#include "base/term.h"
#include "age/age.h"
#include "age/armor.h"
#include "age/keys.h"
#include "varseal.h"

static const char usage[] =
	"varseal encrypt [-a] [-r RECIPIENT]... [-R FILE]... [-p [--passphrase-file FILE]]\n"
	"                [--work-factor N] [--progress] [-o OUTPUT] [INPUT]";
static const struct vf_help_row help_rows[] = {
	{NULL, "INPUT", "the file to encrypt; standard input when absent or -"},
	{"-a, --armor", NULL, "write PEM-armored text instead of binary"},
	{"-r, --recipient", "RECIPIENT", "encrypt to this public key (age1... or ssh-...); "
					 "repeatable"},
	{"-R, --recipients-file", "FILE", "encrypt to every recipient listed in FILE; repeatable"},
	{"-p, --passphrase", NULL, "encrypt with a passphrase, asked twice on the terminal"},
	{"--passphrase-file", "FILE", "read the passphrase from FILE (- standard input); implies -p"},
	{"--work-factor", "N", "the passphrase's scrypt cost, 2^N (default 18)"},
	{"--progress", NULL, "draw a progress line on standard error when it is a terminal"},
	{"-o, --output", "OUTPUT", "write to OUTPUT, made only once complete (default: "
				   "standard output)"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Encrypts INPUT in age's format (age -e), to recipients (-r, -R) or to a\n"
	"passphrase (-p), which must then be the only one.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

struct encrypt_opts {
	bool armor, passphrase, progress;
	const char *output, *input, *passphrase_file;
	unsigned work_factor;
	struct vf_recipients recipients;
};

/* A recipient named in a message: whole up to 100 characters, else its
 * first and last 40 (a post-quantum one is 1,959 characters; its end,
 * with the checksum, tells it apart). */
#define ARG_SHOWN 100
#define ARG_PART 40

static int add_recipient_arg(struct encrypt_opts *o, const char *arg)
{
	struct vf_error err;
	struct vf_recipient *r;
	if (vf_recipient_parse(arg, &r, &err) == VF_OK &&
	    vf_recipients_add(&o->recipients, r, &err) == VF_OK)
		return 0;
	size_t len = strlen(arg);
	if (len <= ARG_SHOWN)
		return vs_error("recipient %s: %s", arg, err.msg);
	return vs_error("recipient %.*s...%s: %s", ARG_PART, arg, arg + len - ARG_PART, err.msg);
}

static int add_recipients_file(struct encrypt_opts *o, const char *path)
{
	struct vf_error err;
	struct vf_file f;
	if (vf_read_key_file(path, false, true, &f, &err) != VF_OK)
		return vs_fail(NULL, &err);
	enum vf_code rc = vf_recipients_parse((const char *)f.data, f.len, path, &o->recipients,
					      &err);
	vf_key_text_free(&f);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

/* Asks twice on the terminal, or reads the file. */
static int passphrase_recipient(struct encrypt_opts *o)
{
	struct vf_error err;
	uint8_t *pass = NULL, *again = NULL;
	size_t len = 0, again_len = 0;
	enum vf_code rc;
	if (o->passphrase_file) {
		rc = vf_file_read_secret(o->passphrase_file, &pass, &len, &err);
	} else {
		rc = vf_tty_read_secret("Enter passphrase: ", &pass, &len, &err);
		if (rc == VF_OK)
			rc = vf_tty_read_secret("Confirm passphrase: ", &again, &again_len, &err);
		if (rc == VF_OK && (len != again_len || !vf_equal(pass, again, len)))
			rc = vf_fail(&err, VF_E_ARG, "passphrases didn't match");
		vf_secure_free(again);
	}
	struct vf_recipient *r = NULL;
	if (rc == VF_OK)
		rc = vf_scrypt_recipient_new(pass, len, o->work_factor, &r, &err);
	vf_secure_free(pass);
	if (rc == VF_OK)
		rc = vf_recipients_add(&o->recipients, r, &err);
	return rc == VF_OK ? 0 : vs_fail("passphrase", &err);
}

static int parse_args(int argc, char **argv, struct encrypt_opts *o)
{
	static const struct option opts[] = {
		{"armor", no_argument, NULL, 'a'},
		{"recipient", required_argument, NULL, 'r'},
		{"recipients-file", required_argument, NULL, 'R'},
		{"passphrase", no_argument, NULL, 'p'},
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},
		{"work-factor", required_argument, NULL, OPT_WORK_FACTOR},
		{"output", required_argument, NULL, 'o'},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "ar:R:po:h", opts, NULL)) != -1) {
		int status = 0;
		switch (c) {
		case 'a': o->armor = true; break;
		case 'r': status = add_recipient_arg(o, optarg); break;
		case 'R': status = add_recipients_file(o, optarg); break;
		case 'p': o->passphrase = true; break;
		case OPT_PASSPHRASE_FILE: o->passphrase_file = optarg; break;
		case 'o': o->output = optarg; break;
		case OPT_PROGRESS: o->progress = true; break;
		case OPT_WORK_FACTOR: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > VF_SCRYPT_MAX_LOG_N)
				return vs_error("--work-factor must be 1..%d", VF_SCRYPT_MAX_LOG_N);
			o->work_factor = (unsigned)v;
			break;
		}
		case 'h': vf_help_print(stdout, &help); return -1;
		default: return vs_usage(usage);
		}
		if (status)
			return status;
	}
	if (argc - optind > 1)
		return vs_usage(usage);
	o->input = optind < argc ? argv[optind] : NULL;
	if ((!o->input || !strcmp(o->input, "-")) && o->passphrase_file &&
	    !strcmp(o->passphrase_file, "-"))
		return vs_error("standard input can't be both the input and the passphrase: "
				"name the input file");
	if (o->passphrase_file && !o->passphrase)
		o->passphrase = true;
	if (o->passphrase && o->recipients.n)
		return vs_error("-p can't be combined with -r or -R: a passphrase must be the only "
				"recipient");
	if (!o->passphrase && o->recipients.n == 0)
		return vs_error("no recipients: give -r, -R or -p");
	return 0;
}

static int encrypt_to(struct encrypt_opts *o, int in_fd, const char *in_name)
{
	struct vf_error err;
	struct vs_output out;
	if (vs_output_open(&out, o->output, &err) != VF_OK)
		return vs_fail(NULL, &err);
	if (out.to_stdout && !o->armor && isatty(STDOUT_FILENO)) {
		vs_output_abort(&out);
		return vs_error("refusing to write binary to a terminal: use -a or -o");
	}
	struct vf_fd_src src;
	vf_fd_src_init(&src, in_fd, in_name);
	struct vf_armor_writer armor;
	struct vf_sink *sink = &out.sink.base;
	enum vf_code rc = VF_OK;
	if (o->armor) {
		rc = vf_armor_writer_init(&armor, sink, &err);
		sink = &armor.base;
	}
	struct vs_progress_input counted;
	struct vf_src *in = vs_progress_src(&counted, &src.base, in_fd, "varseal: encrypting",
					    o->progress);
	if (rc == VF_OK)
		rc = vf_encrypt(o->recipients.items, o->recipients.n, in, sink, &err);
	vf_progress_end(&counted.progress);
	if (o->armor)
		vf_armor_writer_free(&armor);
	if (rc == VF_OK)
		rc = vs_output_commit(&out, &err);
	else
		vs_output_abort(&out);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

int cmd_encrypt(int argc, char **argv)
{
	struct encrypt_opts o = {.work_factor = VF_SCRYPT_DEFAULT_LOG_N};
	int status = parse_args(argc, argv, &o);
	if (status == 0 && o.passphrase)
		status = passphrase_recipient(&o);
	const char *in_name = NULL;
	int in_fd = status == 0 ? vs_open_input(o.input, &in_name) : -1;
	if (status == 0 && in_fd < 0)
		status = 1;
	if (status == 0)
		status = encrypt_to(&o, in_fd, in_name);
	if (in_fd > STDIN_FILENO)
		close(in_fd);
	vf_recipients_free(&o.recipients);
	return status < 0 ? 0 : status;
}
