/* Times one run of a command, for bench/small_bench.sh: the wall time from
 * just before posix_spawn to the return of waitpid, with stdin, stdout and
 * stderr on /dev/null. Prints the microseconds; exits with the command's
 * status (127 if it could not be started, 128 + N if signal N killed it).
 *
 * Why not the shell's own clock around the command: bash forks itself
 * first, and on a VM where a page's first touch is dear that fork costs
 * milliseconds, more as the script's arrays of samples grow. It is the
 * same for both tools, so it only pulls every ratio toward 1, and it is
 * the harness's cost, not the tool's. posix_spawn (a vfork and an exec
 * here) times what a user's script or unit pays for the tool itself.
 *
 * With -r first (bench/stream_bench.sh) it prints the child's resource
 * use after the microseconds, from wait4: "US MAXRSS_KIB USER_S SYS_S".
 * GNU time, which the stream benchmark used for that before, is a
 * process of its own between the shell and the tool: about 8 ms more on
 * every run here, a tenth of what separated varseal from the floor. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	int usage = argc > 1 && strcmp(argv[1], "-r") == 0;
	argv += usage;
	argc -= usage;
	if (argc < 2) {
		fprintf(stderr, "usage: spawn_timer [-r] COMMAND [ARGS...]\n");
		return 2;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int fd = 0; fd <= 2; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	pid_t pid;
	double start = now_us();
	int rc = posix_spawnp(&pid, argv[1], &fa, NULL, argv + 1, environ);
	if (rc != 0) {
		fprintf(stderr, "spawn_timer: %s: %s\n", argv[1], strerror(rc));
		return 127;
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return 127;
	double end = now_us();
	posix_spawn_file_actions_destroy(&fa);
	if (usage)
		printf("%.0f %ld %ld.%06ld %ld.%06ld\n", end - start, ru.ru_maxrss,
		       (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec,
		       (long)ru.ru_stime.tv_usec);
	else
		printf("%.0f\n", end - start);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
