/* varinject: decrypts a machine's secrets and launches its hypervisor
 * with them as systemd credentials; or installs them on a host. */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "secmem.h"
#include "varinject.h"

int main(int argc, char **argv)
{
	umask(077);
	vi_log_init();
	struct rlimit none = {0, 0};
	if (setrlimit(RLIMIT_CORE, &none) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return vi_error("cannot disable core dumps");
	if (vf_init() != 0)
		return vi_error("cannot initialise libsodium");
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("varinject %s\n", VARS_VERSION);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "install"))
		return vi_install(argc - 1, argv + 1);
	return vi_run(argc, argv);
}
