/* varseal: age-compatible encryption for the vars tools.
 *
 * One file per subcommand; this one hardens the process and dispatches. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/args.h"
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

/* The commands on the vars store, which all take the options below: those
 * may come before the command too ("varseal -f SPEC get ..."). The others
 * (keygen, encrypt...) are age's, and take none of them before their name.
 * By name, so that a store command added to the table is one here. */
static const char *const store_commands[] = {"get", "set", "edit", "rekey", "machine",
					     "import-sops"};
static const struct option global_options[] = {VS_VARS_OPTIONS, {0}};

static const struct vf_help_row options[] = {
	VS_STORE_HELP,
	VS_IDENTITY_HELP("an identity, for the store commands that open secrets"),
	VF_HELP_OPTION,
	{"--version", NULL, "print the version and exit"},
};

static bool is_help(const char *word)
{
	return !strcmp(word, "--help") || !strcmp(word, "-h");
}

static bool is_store_command(const char *name)
{
	for (size_t i = 0; i < sizeof(store_commands) / sizeof(store_commands[0]); i++)
		if (!strcmp(name, store_commands[i]))
			return true;
	return false;
}

/* "get, set, rekey, machine": the store commands this varseal has. */
static void store_command_list(char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (is_store_command(commands[i].name) && len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
						commands[i].name);
}

#define USAGE_LINE "varseal [-f SPEC] [--store DIR] [-i IDENTITY]... <command> [options]"

static void usage(FILE *out)
{
	fprintf(out, "Usage: varseal <command> [options]\n"
		     "       " USAGE_LINE "\n"
		     "       varseal help <command>\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
	vf_help_print_rows(out, "Options", options, sizeof(options) / sizeof(options[0]), true);
	char list[128];
	store_command_list(list, sizeof(list));
	fprintf(out, "\nThe store commands (%s) take -f, --store and -i\n"
		     "before or after their name. 'varseal help <command>' or 'varseal <command> "
		     "--help'\nshows a command's options.\n",
		list);
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

/* The command after the global options: a store command, run with them
 * after its name (and after machine's sub-verb). */
static int run_after_options(int argc, char **argv)
{
	struct vf_error err;
	int verb;
	if (vf_args_leading(argc, argv, global_options, &verb, &err) != VF_OK) {
		if (is_help(argv[verb])) {
			usage(stdout);
			return 0;
		}
		/* The word is the user's: no control byte reaches the terminal. */
		char safe[sizeof(err.msg) * 4];
		vf_escape_controls(err.msg, safe, sizeof(safe));
		fprintf(stderr, "varseal: usage: before the command: %s (" USAGE_LINE ")\n", safe);
		return 2;
	}
	if (verb == argc) {
		fprintf(stderr, "varseal: usage: no command after the options (" USAGE_LINE ")\n");
		return 2;
	}
	if (!strcmp(argv[verb], "help"))
		return verb + 1 < argc ? help_command(argc - verb - 1, argv + verb + 1)
				       : (usage(stdout), 0);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[verb], commands[i].name))
			continue;
		if (verb > 1 && !is_store_command(commands[i].name)) {
			char list[128];
			store_command_list(list, sizeof(list));
			fprintf(stderr, "varseal: usage: the options before the command are the store "
					"commands' (%s); give %s's options after it (varseal %s "
					"--help)\n",
				list, commands[i].name, commands[i].name);
			return 2;
		}
		/* "machine key": the sub-verb (or --help) stays first. */
		int keep = !strcmp(commands[i].name, "machine") && verb + 1 < argc &&
			   (argv[verb + 1][0] != '-' || is_help(argv[verb + 1]));
		int n;
		char **args = vf_args_hoist(argc, argv, verb, keep, &n);
		if (!args)
			return vs_error("out of memory");
		int status = commands[i].run(n, args);
		free(args);
		return status;
	}
	vs_error("unknown command '%s'", argv[verb]);
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
	return run_after_options(argc, argv);
}
