/* varseal: age-compatible encryption for the vars tools.
 *
 * One file per subcommand; this one hardens the process and dispatches. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "base/tool.h"
#include "varseal.h"
#include "vars_revision.h"

/* The commands on the vars store (VF_COMMAND_GLOBAL) all take the options
 * below: those may come before the command too ("varseal -f SPEC get
 * ..."). The others (keygen, encrypt...) are age's, and take none of them
 * before their name. */
static const struct vf_command commands[] = {
	{"keygen", cmd_keygen, "generate an X25519 identity (age-keygen)", 0},
	{"pubkey", cmd_pubkey, "print the recipients of an identity file (age-keygen -y)", 0},
	{"encrypt", cmd_encrypt, "encrypt to recipients or a passphrase (age -e)", 0},
	{"decrypt", cmd_decrypt, "decrypt with identities or a passphrase (age -d)", 0},
	{"inspect", cmd_inspect, "describe age files without a key (age-inspect)", 0},
	{"get", cmd_get, "print a stored var (decrypting secrets with -i)", VF_COMMAND_GLOBAL},
	{"set", cmd_set, "store a var read from standard input, sealed per the spec",
	 VF_COMMAND_GLOBAL},
	{"edit", cmd_edit, "change a stored var in $EDITOR, resealed if it changed",
	 VF_COMMAND_GLOBAL},
	{"rekey", cmd_rekey, "reseal secrets whose recipients differ from the spec",
	 VF_COMMAND_GLOBAL},
	{"machine", cmd_machine, "keygen M: make a machine key offline; key M: print it",
	 VF_COMMAND_GLOBAL | VF_COMMAND_SUBVERB},
	{"import-sops", cmd_import_sops, "import one SOPS file as a new generator of the spec",
	 VF_COMMAND_GLOBAL},
};
static const struct option global_options[] = {VS_VARS_OPTIONS, {0}};

static const struct vf_help_row options[] = {
	VS_STORE_HELP,
	VS_IDENTITY_HELP("an identity, for the store commands that open secrets"),
	VF_HELP_OPTION,
	{"--version", NULL, "print the version and exit"},
};

/* usage() names the store commands, which the tool's table tells. */
static const struct vf_tool varseal;

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
	vf_tool_global_commands(&varseal, list, sizeof(list));
	fprintf(out, "\nThe store commands (%s) take -f, --store and -i\n"
		     "before or after their name. 'varseal help <command>' or 'varseal <command> "
		     "--help'\nshows a command's options.\n",
		list);
}

static const struct vf_tool varseal = {
	.name = "varseal",
	.version = VARS_VERSION VARS_REVISION,
	.usage_line = USAGE_LINE,
	.help_usage = "varseal help [<command> [<subcommand>]]",
	.help_words = 2,
	.global_commands = "the store commands'",
	.commands = commands,
	.n_commands = sizeof(commands) / sizeof(commands[0]),
	.global_options = global_options,
	.usage = usage,
};

int main(int argc, char **argv)
{
	return vf_tool_main(&varseal, argc, argv, stdout, stderr);
}
