#include "base/sigguard.h"

#include <pthread.h>

void vf_sigguard_block(struct vf_sigguard *g, const int *stopping, size_t n,
		       bool child_owns_terminal)
{
	g->child_owns_terminal = child_owns_terminal;
	sigemptyset(&g->stop);
	for (size_t i = 0; i < n; i++) {
		struct sigaction sa;
		if (sigaction(stopping[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(&g->stop, stopping[i]);
	}
	sigset_t block = g->stop;
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, &g->old_mask);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(SIGCHLD, &dfl, &g->old_chld);
}

void vf_sigguard_restore(const struct vf_sigguard *g)
{
	sigaction(SIGCHLD, &g->old_chld, NULL);
	pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
}

bool vf_sigguard_from_terminal(const struct vf_sigguard *g, int sig, const siginfo_t *si)
{
	return g->child_owns_terminal && (sig == SIGINT || sig == SIGQUIT) &&
	       si->si_code == SI_KERNEL;
}

int vf_sigguard_pending(const struct vf_sigguard *g)
{
	static const struct timespec now = {0, 0};
	siginfo_t si;
	int sig;
	while ((sig = sigtimedwait(&g->stop, &si, &now)) > 0)
		if (!vf_sigguard_from_terminal(g, sig, &si))
			return sig;
	return 0;
}

struct timespec vf_deadline(long seconds)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += seconds;
	return t;
}

bool vf_deadline_passed(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

struct timespec vf_time_left(const struct timespec *t)
{
	struct timespec now, left = {0, 0};
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ns = (long long)(t->tv_sec - now.tv_sec) * 1000000000LL + (t->tv_nsec - now.tv_nsec);
	if (ns > 0) {
		left.tv_sec = (time_t)(ns / 1000000000LL);
		left.tv_nsec = (long)(ns % 1000000000LL);
	}
	return left;
}
