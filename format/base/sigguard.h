/* Stopping signals held off while a secret sits in a file, and deadlines
 * for waiting on a child: what vargen's script runner (gen/script.c) and
 * varseal edit (seal/edit.c) share.
 *
 * From before such a file exists until it is wiped, the stopping signals
 * that the caller does not ignore (nohup stays nohup) are blocked and
 * taken with sigtimedwait, so none can end the process with the file in
 * place; the tool cleans up and then dies of the signal itself. SIGCHLD
 * is blocked too, to wake the wait for the child, and set to its default
 * action: an inherited SIG_IGN would have the kernel reap the child
 * before it can be waited for. */
#ifndef VF_SIGGUARD_H
#define VF_SIGGUARD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct vf_sigguard {
	sigset_t stop;	   /* the stopping signals that are not ignored */
	sigset_t old_mask; /* restored afterwards, and in the child before exec */
	struct sigaction old_chld;
	/* Leave SIGINT and SIGQUIT typed on the terminal to the child (an
	 * editor cancels a command with Ctrl-C): consumed, never reported. */
	bool child_owns_terminal;
};

/* Blocks SIGCHLD and those of stopping[] not ignored (for the calling
 * thread: pthread_sigmask). */
void vf_sigguard_block(struct vf_sigguard *g, const int *stopping, size_t n,
		       bool child_owns_terminal);
/* Puts back the mask and SIGCHLD's action. */
void vf_sigguard_restore(const struct vf_sigguard *g);
/* True for a signal the terminal sent (the kernel, to the foreground
 * process group) that the child owns, as set above; kill(1) sends SI_USER. */
bool vf_sigguard_from_terminal(const struct vf_sigguard *g, int sig, const siginfo_t *si);
/* The first stopping signal that arrived, now consumed, or 0. */
int vf_sigguard_pending(const struct vf_sigguard *g);

/* A CLOCK_MONOTONIC deadline seconds from now, whether it has passed, and
 * the time left until it (zero once passed), for sigtimedwait. */
struct timespec vf_deadline(long seconds);
bool vf_deadline_passed(const struct timespec *deadline);
struct timespec vf_time_left(const struct timespec *deadline);

#endif
