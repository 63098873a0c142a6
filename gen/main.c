/* vargen: generates secrets from a declarative spec and keeps them sealed
 * per machine in the vars store. One file per subcommand; this one hardens
 * the process and dispatches. */
#include <getopt.h>
#include <stdio.h>

#include "base/tool.h"
#include "vargen.h"
#include "vars_revision.h"

static const struct vf_command commands[] = {
	{"generate", cmd_generate, "make what is missing; --regenerate replaces; --plan shows",
	 VF_COMMAND_GLOBAL},
	{"list", cmd_list, "show every file, kept key and orphan with its state", VF_COMMAND_GLOBAL},
	{"check", cmd_check, "exit non-zero when anything needs attention, saying what fixes it",
	 VF_COMMAND_GLOBAL},
	{"accept", cmd_accept, "keep the values of a changed (stale) generator", VF_COMMAND_GLOBAL},
	{"prune", cmd_prune, "remove what the spec no longer names (orphans)", VF_COMMAND_GLOBAL},
	{"import", cmd_import, "clan DIR: a clan repository's vars and secrets as a new store",
	 VF_COMMAND_GLOBAL},
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

static const struct vf_tool vargen = {
	.name = "vargen",
	.version = VARS_VERSION VARS_REVISION,
	.usage_line = USAGE_LINE,
	.help_usage = "vargen help [<command>]",
	.help_words = 1,
	.global_commands = "the commands'",
	.commands = commands,
	.n_commands = sizeof(commands) / sizeof(commands[0]),
	.global_options = global_options,
	.usage = usage,
};

int main(int argc, char **argv)
{
	return vf_tool_main(&vargen, argc, argv, stdout, stderr);
}
