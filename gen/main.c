/* vargen: generates secrets from a declarative spec and keeps them sealed
 * per machine in the vars store. One file per subcommand; this one hardens
 * the process and dispatches. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/args.h"
#include "base/secmem.h"
#include "vargen.h"
#include "vars_revision.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"generate", cmd_generate, "make what is missing; --regenerate replaces; --plan shows"},
	{"list", cmd_list, "show every file, kept key and orphan with its state"},
	{"check", cmd_check, "exit non-zero when anything needs attention, saying what fixes it"},
	{"accept", cmd_accept, "keep the values of a changed (stale) generator"},
	{"prune", cmd_prune, "remove what the spec no longer names (orphans)"},
	{"import", cmd_import, "clan DIR: a clan repository's vars and secrets as a new store"},
};

/* The options every command takes, also before the command ("vargen -f
 * SPEC check"): they are handed to the command as if given after it. */
static const struct option global_options[] = {
	{"file", required_argument, NULL, 'f'},
	{"store", required_argument, NULL, OPT_STORE},
	{0},
};

static const struct vf_help_row options[] = {
	VG_SPEC_HELP,
	VF_HELP_OPTION,
	{"--version", NULL, "print the version and exit"},
};

#define USAGE_LINE "vargen [-f SPEC] [--store DIR] <command> [options]"

static void usage(FILE *out)
{
	fprintf(out, "Usage: " USAGE_LINE "\n"
		     "       vargen help <command>\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	vf_help_print_rows(out, "Options", options, sizeof(options) / sizeof(options[0]), true);
	fprintf(out, "\nThe spec defaults to $VARS_SPEC, else vars.yaml here or in the nearest "
		     "parent;\nthe store to the spec's directory. -f and --store go before or after "
		     "the command.\n"
		     "'vargen help <command>' or 'vargen <command> --help' shows a command's "
		     "options.\n");
}

/* "vargen help COMMAND" is "vargen COMMAND --help": the command prints
 * its own help, as it knows its options. */
static int help_command(int argc, char **argv)
{
	static char help_flag[] = "--help";
	if (argc > 1)
		return vg_usage("vargen help [<command>]");
	char *args[] = {argv[0], help_flag, NULL};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[0], commands[i].name))
			return commands[i].run(2, args);
	vg_error("unknown command '%s'", argv[0]);
	usage(stderr);
	return 2;
}

static bool is_help(const char *word)
{
	return !strcmp(word, "--help") || !strcmp(word, "-h");
}

/* The command after the global options: run with them after its name. */
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
		fprintf(stderr, "vargen: usage: before the command: %s (" USAGE_LINE ")\n", safe);
		return 2;
	}
	if (verb == argc) {
		fprintf(stderr, "vargen: usage: no command after the options (" USAGE_LINE ")\n");
		return 2;
	}
	if (!strcmp(argv[verb], "help")) {
		if (verb + 1 < argc)
			return help_command(argc - verb - 1, argv + verb + 1);
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[verb], commands[i].name))
			continue;
		int n;
		char **args = vf_args_hoist(argc, argv, verb, 0, &n);
		if (!args)
			return vg_error("out of memory");
		int status = commands[i].run(n, args);
		free(args);
		return status;
	}
	vg_error("unknown command '%s'", argv[verb]);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	if (vf_harden_process() != 0)
		return vg_error("cannot disable core dumps or initialise libsodium");
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
		printf("vargen %s%s\n", VARS_VERSION, VARS_REVISION);
		return 0;
	}
	return run_after_options(argc, argv);
}
