#include "base/term.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/secmem.h"

#define MAX_SECRET 4096

/* Reads one byte from fd, or notices a signal written to wake (when
 * wake >= 0: the terminal). 1: a byte, 0: end of input, -1: error
 * (errno), -2: a signal, in *sig. */
static int next_byte(int fd, int wake, uint8_t *c, int *sig)
{
	for (;;) {
		if (wake >= 0) {
			struct pollfd p[2] = {{.fd = wake, .events = POLLIN},
					      {.fd = fd, .events = POLLIN}};
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			/* A signal wins over input typed at the same moment. */
			unsigned char s;
			if (p[0].revents && read(wake, &s, 1) == 1) {
				*sig = s;
				return -2;
			}
			if (!p[1].revents)
				continue;
		}
		ssize_t got = read(fd, c, 1);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue; /* the signal, if it was one, is in the pipe */
		return got < 0 ? -1 : (int)got;
	}
}

/* Reads up to the first LF (or EOF, with multiline) from fd into guarded
 * memory. With wake >= 0, a signal number arriving there stops the read:
 * what was read is wiped, *sig is set and VF_E_CANCELED returned. */
static enum vf_code read_until(int fd, int wake, int *sig, const char *name, bool multiline,
			       uint8_t **secret, size_t *len, struct vf_error *err)
{
	uint8_t *buf = vf_secure_alloc(MAX_SECRET);
	if (!buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t n = 0;
	for (;;) {
		uint8_t c;
		int got = next_byte(fd, wake, &c, sig);
		if (got == -2) {
			vf_secure_free(buf);
			return vf_fail(err, VF_E_CANCELED, "interrupted");
		}
		if (got < 0) {
			vf_secure_free(buf);
			return vf_fail_errno(err, errno, "reading %s", name);
		}
		if (got == 0 || (c == '\n' && !multiline))
			break;
		if (n == MAX_SECRET) {
			vf_secure_free(buf);
			return vf_fail(err, VF_E_ARG, "%s: longer than %d bytes", name,
				       MAX_SECRET);
		}
		buf[n++] = c;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	if (multiline && n && buf[n - 1] == '\n')
		n--;
	if (n == 0) {
		vf_secure_free(buf);
		return vf_fail(err, VF_E_ARG, "%s: nothing entered", name);
	}
	*secret = buf;
	*len = n;
	return VF_OK;
}

static enum vf_code read_line_secret(int fd, const char *name, uint8_t **secret, size_t *len,
				     struct vf_error *err)
{
	int sig = 0;
	return read_until(fd, -1, &sig, name, false, secret, len, err);
}

enum vf_code vf_tty_read_secret(const char *prompt, uint8_t **secret, size_t *len,
				struct vf_error *err)
{
	return vf_tty_read(prompt, false, false, secret, len, err);
}

/* Signals at a prompt. The terminal must never be left with echo off,
 * so each is caught, the terminal restored, and the signal then given back
 * to whatever the program had for it (usually: die at once, as age does).
 * SIGTSTP (Ctrl-Z) stops with the terminal restored and asks again after
 * SIGCONT. The tty driver sends them (ISIG stays on) and discards the line
 * being typed. */
static const int prompt_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
#define N_PROMPT_SIGNALS (sizeof(prompt_signals) / sizeof(prompt_signals[0]))

/* The handler reaches the reader through this pipe, whichever thread it
 * runs on (a flag alone could be set just before a blocking read). One
 * prompt at a time: there is one terminal. */
static volatile sig_atomic_t wake_fd = -1;

static void note_signal(int sig)
{
	int saved = errno;
	unsigned char s = (unsigned char)sig;
	if (wake_fd >= 0)
		(void)!write(wake_fd, &s, 1);
	errno = saved;
}

struct prompt_guard {
	int pipe[2];
	struct sigaction old[N_PROMPT_SIGNALS];
	bool caught[N_PROMPT_SIGNALS];
	sigset_t old_mask;
};

static enum vf_code catch_signals(struct prompt_guard *g, struct vf_error *err)
{
	memset(g, 0, sizeof(*g));
	if (pipe2(g->pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return vf_fail_errno(err, errno, "creating a pipe");
	wake_fd = g->pipe[1];
	pthread_sigmask(SIG_SETMASK, NULL, &g->old_mask);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = note_signal;
	sigfillset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns EINTR */
	sigset_t unblock;
	sigemptyset(&unblock);
	for (size_t i = 0; i < N_PROMPT_SIGNALS; i++) {
		int s = prompt_signals[i];
		sigaction(s, NULL, &g->old[i]);
		/* Ignored (nohup, a background job without job control) stays
		 * ignored; a caller that blocks stops does not want them. */
		if (g->old[i].sa_handler == SIG_IGN ||
		    (s == SIGTSTP && sigismember(&g->old_mask, SIGTSTP)))
			continue;
		sigaction(s, &sa, NULL);
		g->caught[i] = true;
		/* A prompt must be interruptible even where the caller blocks
		 * these signals for later (it gets them back afterwards). */
		sigaddset(&unblock, s);
	}
	pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
	return VF_OK;
}

/* Puts back the program's own handlers and mask, then hands it any signal
 * that came too late to stop the read (none is lost). */
static void release_signals(struct prompt_guard *g)
{
	for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
		if (g->caught[i])
			sigaction(prompt_signals[i], &g->old[i], NULL);
	pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
	wake_fd = -1;
	unsigned char late;
	while (read(g->pipe[0], &late, 1) == 1)
		raise(late);
	close(g->pipe[0]);
	close(g->pipe[1]);
}

/* Ctrl-Z: stop as the program would have (the terminal is restored
 * already), and catch SIGTSTP again once continued. */
static void stop_here(struct prompt_guard *g)
{
	size_t i = 0;
	while (prompt_signals[i] != SIGTSTP)
		i++;
	struct sigaction ours;
	sigaction(SIGTSTP, &g->old[i], &ours);
	raise(SIGTSTP);
	sigaction(SIGTSTP, &ours, NULL);
}

/* Asks once: quiet terminal, prompt, one answer, terminal as it was. */
static enum vf_code ask(int fd, const struct termios *old, const struct termios *quiet,
			const char *prompt, bool echo, bool multiline, int wake, int *sig,
			uint8_t **secret, size_t *len, struct vf_error *err)
{
	/* Settings first, flushing type-ahead, then the prompt: what is
	 * typed once it shows is read with echo already off. */
	enum vf_code rc = VF_OK;
	if (tcsetattr(fd, TCSAFLUSH, quiet) != 0)
		rc = vf_fail_errno(err, errno, "/dev/tty");
	if (rc == VF_OK)
		rc = vf_write_all(fd, prompt, strlen(prompt), "/dev/tty", err);
	/* Non-blocking while reading: poll can call the terminal readable
	 * and a Ctrl-C then flush the line before read runs; a blocking read
	 * would then sleep with the signal already noted in the pipe, and the
	 * prompt would ignore Ctrl-C until Enter. This descriptor is our own
	 * open of /dev/tty, so the flag touches no one else's. */
	int flags = fcntl(fd, F_GETFL);
	if (rc == VF_OK && (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0))
		rc = vf_fail_errno(err, errno, "/dev/tty");
	if (rc == VF_OK)
		rc = read_until(fd, wake, sig, "terminal input", multiline, secret, len, err);
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags);
	tcsetattr(fd, TCSAFLUSH, old);
	if (!echo || *sig)
		(void)!write(fd, "\n", 1);
	return rc;
}

enum vf_code vf_tty_read(const char *prompt, bool echo, bool multiline, uint8_t **secret,
			 size_t *len, struct vf_error *err)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return vf_fail(err, VF_E_IO,
			       "no terminal to ask for a passphrase (use --passphrase-file)");
	struct termios old, quiet;
	if (tcgetattr(fd, &old) != 0) {
		close(fd);
		return vf_fail_errno(err, errno, "/dev/tty");
	}
	quiet = old;
	if (!echo)
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	/* ISIG: Ctrl-C, Ctrl-\ and Ctrl-Z reach us as signals; !NOFLSH: the
	 * driver then throws away what was typed on the line. */
	quiet.c_lflag |= ICANON | ISIG;
	quiet.c_lflag &= ~(tcflag_t)NOFLSH;
	struct prompt_guard guard;
	enum vf_code rc = catch_signals(&guard, err);
	if (rc != VF_OK) {
		close(fd);
		return rc;
	}
	int sig = 0;
	while (rc == VF_OK) {
		sig = 0;
		rc = ask(fd, &old, &quiet, prompt, echo, multiline, guard.pipe[0], &sig, secret,
			 len, err);
		if (rc != VF_E_CANCELED || sig != SIGTSTP)
			break;
		stop_here(&guard);
		rc = VF_OK; /* continued: ask again from the start */
	}
	release_signals(&guard);
	close(fd);
	/* Hand the signal back: by default the program dies of it now, as
	 * if it had come outside the prompt (status 128+N in a shell). If
	 * it survives (a handler, or the caller blocks it), say so. */
	if (rc == VF_E_CANCELED && sig)
		raise(sig);
	return rc;
}

/* Tells the typist, on the terminal itself: the message is about what
 * they typed, not an error of the program's. */
static void tell_tty(const char *msg)
{
	int fd = open("/dev/tty", O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		(void)!write(fd, msg, strlen(msg));
		close(fd);
	}
}

enum vf_code vf_tty_read_confirmed(const char *prompt, const char *again_prompt, bool echo,
				   bool multiline, uint8_t **secret, size_t *len,
				   struct vf_error *err)
{
	for (int attempt = 0; attempt < VF_TTY_CONFIRM_TRIES; attempt++) {
		uint8_t *first = NULL, *second = NULL;
		size_t n1 = 0, n2 = 0;
		enum vf_code rc = vf_tty_read(prompt, echo, multiline, &first, &n1, err);
		if (rc != VF_OK)
			return rc;
		rc = vf_tty_read(again_prompt, echo, multiline, &second, &n2, err);
		if (rc != VF_OK) {
			vf_secure_free(first);
			return rc;
		}
		/* Constant time: a typo's position is nobody's business. */
		bool same = n1 == n2 && (n1 == 0 || sodium_memcmp(first, second, n1) == 0);
		vf_secure_free(second);
		if (same) {
			*secret = first;
			*len = n1;
			return VF_OK;
		}
		vf_secure_free(first);
		tell_tty("The two entries differ; again.\n");
	}
	return vf_fail(err, VF_E_ARG, "the entries did not match (%d tries)",
		       VF_TTY_CONFIRM_TRIES);
}

enum vf_code vf_file_read_secret(const char *path, uint8_t **secret, size_t *len,
				 struct vf_error *err)
{
	if (strcmp(path, "-") == 0)
		return read_line_secret(STDIN_FILENO, "standard input", secret, len, err);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return vf_fail_errno(err, errno, "%s", path);
	enum vf_code rc = read_line_secret(fd, path, secret, len, err);
	close(fd);
	return rc;
}

enum vf_code vf_passphrase_ask(void *ctx, uint8_t **pass, size_t *len, struct vf_error *err)
{
	const struct vf_passphrase_source *src = ctx;
	if (src->file)
		return vf_file_read_secret(src->file, pass, len, err);
	return vf_tty_read_secret(src->prompt ? src->prompt : "Enter passphrase: ", pass, len, err);
}
