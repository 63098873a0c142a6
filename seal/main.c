/* varseal: age-compatible encryption for the vars tools.
 *
 * One file per subcommand; this one hardens the process and dispatches. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/secmem.h"
#include "varseal.h"
#include "vars_revision.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"keygen", cmd_keygen, "generate an X25519 identity (age-keygen)"},
	{"pubkey", cmd_pubkey, "print the recipients of an identity file (age-keygen -y)"},
	{"encrypt", cmd_encrypt, "encrypt to recipients or a passphrase (age -e)"},
	{"decrypt", cmd_decrypt, "decrypt with identities or a passphrase (age -d)"},
	{"inspect", cmd_inspect, "describe age files without a key (age-inspect)"},
	{"get", cmd_get, "print a stored var (decrypting secrets with -i)"},
	{"set", cmd_set, "store a var read from standard input, sealed per the spec"},
	{"edit", cmd_edit, "change a stored var in $EDITOR, resealed if it changed"},
	{"rekey", cmd_rekey, "reseal secrets whose recipients differ from the spec"},
	{"machine", cmd_machine, "keygen M: make a machine key offline; key M: print it"},
	{"import-sops", cmd_import_sops, "import one SOPS file as a new generator of the spec"},
};

static const struct vs_help_row options[] = {
	VS_HELP_OPTION,
	{"--version", NULL, "print the version and exit"},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: varseal <command> [options]\n"
		     "       varseal help <command>\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
	vs_print_rows(out, "Options", options, sizeof(options) / sizeof(options[0]), true);
	fprintf(out, "\n'varseal help <command>' or 'varseal <command> --help' shows a command's "
		     "options.\n");
}

/* "varseal help COMMAND [SUBCOMMAND]" is "varseal COMMAND [SUBCOMMAND]
 * --help": the command prints its own help, as it knows its options. */
static int help_command(int argc, char **argv)
{
	static char help_flag[] = "--help";
	if (argc > 2)
		return vs_usage("varseal help [<command> [<subcommand>]]");
	char *args[4] = {argv[0]};
	int n = 1;
	if (argc > 1)
		args[n++] = argv[1];
	args[n++] = help_flag;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[0], commands[i].name))
			return commands[i].run(n, args);
	vs_error("unknown command '%s'", argv[0]);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	/* Secrets must not end up in a core file, nor be readable through
	 * ptrace by other processes of the same user, nor land in files others
	 * can read. */
	if (vf_harden_process() != 0)
		return vs_error("cannot disable core dumps or initialise libsodium");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") && argc > 2)
		return help_command(argc - 2, argv + 2);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("varseal %s%s\n", VARS_VERSION, VARS_REVISION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	vs_error("unknown command '%s'", argv[1]);
	usage(stderr);
	return 2;
}
