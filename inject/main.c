/* varinject: decrypts a machine's secrets and launches its hypervisor
 * with them as systemd credentials; or installs them on a host. */
#include <stdio.h>
#include <string.h>

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
	return vi_run(argc, argv);
}
