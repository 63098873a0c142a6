/* varinject stays the hypervisor's parent: systemd sees one service whose
 * main process forwards stop requests and exits with the VM's status. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "varinject.h"

static int exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}

static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* In the child: it dies with varinject. Without this a SIGKILLed
 * varinject leaves the VM running unsupervised, and a service restart
 * starts a second one on the same disk. SIGKILL, not SIGTERM: QEMU can be
 * told to only pause on SIGTERM (-no-shutdown, -action shutdown=pause). */
static void die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(127);
	/* The parent may have died before the line above. */
	if (getppid() != parent)
		_exit(127);
}

/* Starts argv; returns the pid, or -1 having reported why (exec failures
 * included: a CLOEXEC pipe carries the child's errno back). The child
 * keeps pass_fd (unless -1) open across exec. */
static pid_t spawn(const struct vi_argv *argv, int pass_fd)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return vi_error("pipe: %s", strerror(errno)), -1;
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return vi_error("fork: %s", strerror(errno)), -1;
	}
	if (pid == 0) {
		die_with_parent(parent);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(pipefd[0]);
		if (pass_fd >= 0 && fcntl(pass_fd, F_SETFD, 0) != 0)
			_exit(127);
		execvp(argv->v[0], argv->v);
		int e = errno;
		(void)!write(pipefd[1], &e, sizeof(e));
		_exit(127);
	}
	close(pipefd[1]);
	int child_errno = 0;
	ssize_t n;
	while ((n = read(pipefd[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	if (n > 0) {
		waitpid(pid, NULL, 0);
		return vi_error("%s: %s", argv->v[0], strerror(child_errno)), -1;
	}
	return pid;
}

/* Waits for the child up to timeout seconds (< 0: forever). Returns true
 * with *wstatus once it has exited; reacts to stop signals meanwhile. */
static bool wait_child(pid_t pid, double timeout, int *wstatus, int *stop_signal)
{
	sigset_t set;
	handled_signals(&set);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	double end = (double)deadline.tv_sec + (double)deadline.tv_nsec / 1e9 + timeout;
	for (;;) {
		if (waitpid(pid, wstatus, WNOHANG) == pid)
			return true;
		siginfo_t info;
		int sig;
		if (timeout < 0) {
			sig = sigwaitinfo(&set, &info);
		} else {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			double left = end - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
			if (left <= 0)
				return false;
			struct timespec ts = {.tv_sec = (time_t)left,
					      .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
			sig = sigtimedwait(&set, &info, &ts);
		}
		if (sig > 0 && sig != SIGCHLD && !*stop_signal)
			*stop_signal = sig;
		if (sig > 0 && sig != SIGCHLD)
			return false; /* let the caller act on the stop request */
	}
}

/* A stop request: graceful first (hook), then the signal itself, then
 * SIGKILL, each given stop_timeout seconds. */
static int stop(pid_t pid, int sig, const struct vi_child_hooks *hooks)
{
	int wstatus, ignored = 0;
	vi_notify("STOPPING=1\nSTATUS=Stopping the VM (signal %d)", sig);
	vi_info("stopping the VM (signal %d)", sig);
	if (hooks->stopping && hooks->stopping(hooks->ctx, pid) &&
	    wait_child(pid, hooks->stop_timeout, &wstatus, &ignored))
		return exit_status(wstatus);
	kill(pid, sig == SIGINT ? SIGINT : SIGTERM);
	if (wait_child(pid, hooks->stop_timeout, &wstatus, &ignored))
		return exit_status(wstatus);
	vi_warn("the hypervisor did not stop within %.0f s: killing it", hooks->stop_timeout);
	kill(pid, SIGKILL);
	waitpid(pid, &wstatus, 0);
	return exit_status(wstatus);
}

int vi_supervise(const struct vi_argv *argv, const struct vi_child_hooks *hooks)
{
	pid_t pid = spawn(argv, hooks->pass_fd);
	if (pid < 0)
		return 1;
	vi_notify("STATUS=Started %s (pid %d)", argv->v[0], (int)pid);
	if (hooks->started && hooks->started(hooks->ctx, pid) != 0) {
		int ignored = 0, wstatus;
		/* Could not bring the VM up: do not leave the VMM behind. */
		kill(pid, SIGTERM);
		if (!wait_child(pid, hooks->stop_timeout, &wstatus, &ignored)) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return 1;
	}
	vi_notify("READY=1\nSTATUS=VM running (pid %d)", (int)pid);
	for (;;) {
		int wstatus, sig = 0;
		if (wait_child(pid, -1, &wstatus, &sig)) {
			int status = exit_status(wstatus);
			vi_notify("STOPPING=1\nSTATUS=VM exited with status %d", status);
			return status;
		}
		if (sig)
			return stop(pid, sig, hooks);
	}
}
