/* A stand-in hypervisor for the launch benchmark: prints the wall clock
 * (ns) the moment it runs, and how many arguments it got, then exits. */
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
	(void)argv;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	printf("%lld %d\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec, argc);
	return 0;
}
