/* varseal pubkey [FILE|-]: the recipient of each identity in a file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "age/keys.h"
#include "varseal.h"

static const char usage[] = "varseal pubkey [--insecure-permissions] [FILE|-]";
static const struct vf_help_row help_rows[] = {
	{NULL, "FILE", "the identity file; standard input when absent or -"},
	{"--insecure-permissions", NULL, "read an identity file that group or others may read"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Prints the recipient (public key) of each identity in an identity file, as\n"
	"age-keygen -y does.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

int cmd_pubkey(int argc, char **argv)
{
	static const struct option opts[] = {
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool insecure = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == OPT_INSECURE_PERMISSIONS)
			insecure = true;
		else if (c == 'h') {
			vf_help_print(stdout, &help);
			return 0;
		} else
			return vs_usage(usage);
	}
	if (argc - optind > 1)
		return vs_usage(usage);
	const char *path = optind < argc ? argv[optind] : "-";
	const char *name = strcmp(path, "-") ? path : "standard input";

	struct vf_error err;
	struct vf_identities ids = {0};
	struct vf_file f = {0};
	enum vf_code rc = vf_read_key_file(path, true, insecure, &f, &err);
	if (rc == VF_OK)
		rc = vf_identities_parse((const char *)f.data, f.len, name, &ids, &err);
	vf_key_text_free(&f);
	for (size_t i = 0; rc == VF_OK && i < ids.n; i++) {
		char *recipient;
		rc = vf_identity_recipient(ids.items[i], &recipient, &err);
		if (rc == VF_OK) {
			printf("%s\n", recipient);
			free(recipient);
		}
	}
	vf_identities_free(&ids);
	if (rc != VF_OK)
		return vs_fail(NULL, &err);
	if (fflush(stdout) != 0)
		return vs_error("writing standard output failed");
	return 0;
}
