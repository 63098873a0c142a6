#include "term.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "atomic.h"
#include "secmem.h"

#define MAX_SECRET 4096

/* Reads up to the first LF (or EOF, with multiline) from fd into guarded
 * memory. */
static enum vf_code read_until(int fd, const char *name, bool multiline, uint8_t **secret,
			       size_t *len, struct vf_error *err)
{
	uint8_t *buf = vf_secure_alloc(MAX_SECRET);
	if (!buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t n = 0;
	for (;;) {
		uint8_t c;
		ssize_t got = read(fd, &c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			vf_secure_free(buf);
			return vf_fail_errno(err, errno, "reading %s", name);
		}
		if (got == 0 || (c == '\n' && !multiline))
			break;
		if (n == MAX_SECRET) {
			vf_secure_free(buf);
			return vf_fail(err, VF_E_ARG, "%s: passphrase longer than %d bytes", name,
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
		return vf_fail(err, VF_E_ARG, "%s: empty passphrase", name);
	}
	*secret = buf;
	*len = n;
	return VF_OK;
}

static enum vf_code read_line_secret(int fd, const char *name, uint8_t **secret, size_t *len,
				     struct vf_error *err)
{
	return read_until(fd, name, false, secret, len, err);
}

enum vf_code vf_tty_read_secret(const char *prompt, uint8_t **secret, size_t *len,
				struct vf_error *err)
{
	return vf_tty_read(prompt, false, false, secret, len, err);
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
	quiet.c_lflag |= ICANON;
	/* Keep the terminal sane if we are stopped or interrupted mid-read. */
	sigset_t block, saved;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGTSTP);
	sigprocmask(SIG_BLOCK, &block, &saved);
	enum vf_code rc = vf_write_all(fd, prompt, strlen(prompt), "/dev/tty", err);
	if (rc == VF_OK && tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		rc = vf_fail_errno(err, errno, "/dev/tty");
	if (rc == VF_OK)
		rc = read_until(fd, "terminal input", multiline, secret, len, err);
	tcsetattr(fd, TCSAFLUSH, &old);
	if (!echo)
		(void)!write(fd, "\n", 1);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(fd);
	return rc;
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
