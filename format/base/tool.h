/* A tool's main() after the process is hardened: vargen's and varseal's
 * dispatch, written once. "TOOL help [COMMAND...]", "TOOL --help",
 * "TOOL --version", and "TOOL [GLOBAL OPTIONS] COMMAND [options]": the
 * global options found before the command (base/args.h) are handed to it
 * after its name. What it says goes to the streams the tool hands over,
 * as "TOOL: usage: ..." and "TOOL: error: ..." lines; it returns the exit
 * status and never exits. */
#ifndef VF_TOOL_H
#define VF_TOOL_H

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* A command of the tool's table. */
struct vf_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	unsigned flags;
};
enum {
	/* Takes the tool's global options before its name too. */
	VF_COMMAND_GLOBAL = 1u << 0,
	/* Its first word is a sub-verb ("machine key") that stays first when
	 * global options are handed over. */
	VF_COMMAND_SUBVERB = 1u << 1,
};

struct vf_tool {
	const char *name;	/* "vargen" */
	const char *version;	/* "0.1.0 (git abc1234)" */
	const char *usage_line; /* quoted in the usage errors about global options */
	/* "vargen help [<command>]": taking up to help_words words. */
	const char *help_usage;
	int help_words;
	/* Which commands take the global options, as the refusal names them:
	 * "the store commands'". */
	const char *global_commands;
	const struct vf_command *commands;
	size_t n_commands;
	const struct option *global_options; /* {0}-terminated */
	/* The tool's usage (the command list, options, notes). */
	void (*usage)(FILE *out);
};

/* The exit status of the tool given argv (argc >= 1). First of all the
 * process is hardened (vf_harden_process): secrets must not end up in a
 * core file, nor be readable through ptrace by other processes of the
 * same user, nor land in files others can read. */
int vf_tool_main(const struct vf_tool *t, int argc, char **argv, FILE *out, FILE *err);

/* "TOOL: error: MESSAGE" on out, the message formatted whole and then
 * escaped (vf_escape_controls): the names in messages are user data.
 * Returns VF_EXIT_ERROR. */
__attribute__((format(printf, 3, 0))) int vf_tool_verror(FILE *out, const char *tool,
							  const char *fmt, va_list ap);

/* "get, set, rekey": the commands with VF_COMMAND_GLOBAL, in table order,
 * ", "-separated (cut short at cap). */
void vf_tool_global_commands(const struct vf_tool *t, char *out, size_t cap);

#endif
