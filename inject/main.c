/* varinject: decrypts a machine's secrets and launches its hypervisor
 * with them as systemd credentials; or installs them on a host. */
#include <stdio.h>
#include <string.h>

#include "base/secmem.h"
#include "varinject.h"
#include "vars_revision.h"

int main(int argc, char **argv)
{
	vi_log_init();
	if (vf_harden_process() != 0)
		return vi_error("cannot disable core dumps or initialise libsodium");
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("varinject %s%s\n", VARS_VERSION, VARS_REVISION);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "install"))
		return vi_install(argc - 1, argv + 1);
	return vi_run(argc, argv);
}
