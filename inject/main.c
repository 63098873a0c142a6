/* varinject: decrypts a machine's secrets and launches its hypervisor
 * with them as systemd credentials; or installs them on a host. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/args.h"
#include "base/secmem.h"
#include "varinject.h"
#include "vars_revision.h"

/* "varinject help [install]": that form's --help, which knows its
 * options. The launch form has no verb: "varinject help" is its help. */
static int help_command(int argc, char **argv)
{
	static char help_flag[] = "--help";
	if (argc == 0) {
		char *args[] = {(char *)"varinject", help_flag, NULL};
		return vi_run(2, args);
	}
	if (argc == 1 && !strcmp(argv[0], "install")) {
		char *args[] = {argv[0], help_flag, NULL};
		return vi_install(2, args);
	}
	vi_error("help %s: no such command (varinject help [install])", argv[0]);
	return 2;
}

/* The options install shares with the launch form: given before the word
 * install ("varinject -f SPEC -m M -i KEY install DIR") they are
 * install's, handed to it as if given after it. Without this the launch
 * form took "install" for the hypervisor. */
static const struct option source_options[] = {
	VI_STORE_OPTIONS,
	{0},
};

/* The index of "install" after leading source options, or 0. After a
 * "--" the next word is the hypervisor, whatever its name. */
static int install_after_options(int argc, char **argv)
{
	int verb;
	if (vf_args_leading(argc, argv, source_options, &verb, NULL) != VF_OK || verb == argc ||
	    !strcmp(argv[verb - 1], "--"))
		return 0;
	return strcmp(argv[verb], "install") ? 0 : verb;
}

int main(int argc, char **argv)
{
	vi_log_init();
	if (vf_harden_process() != 0)
		return vi_error("cannot disable core dumps or initialise libsodium");
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("varinject %s%s\n", VARS_VERSION, VARS_REVISION);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "help"))
		return help_command(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "install"))
		return vi_install(argc - 1, argv + 1);
	int verb = argc > 2 ? install_after_options(argc, argv) : 0;
	if (verb) {
		int n;
		char **args = vf_args_hoist(argc, argv, verb, 0, &n);
		if (!args)
			return vi_error("out of memory");
		int status = vi_install(n, args);
		free(args);
		return status;
	}
	return vi_run(argc, argv);
}
