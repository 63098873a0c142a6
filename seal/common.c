/* What the subcommands share: messages, input and output files. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "base/tool.h"
#include "varseal.h"

int vs_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int status = vf_tool_verror(stderr, "varseal", fmt, ap);
	va_end(ap);
	return status;
}

int vs_fail(const char *what, const struct vf_error *err)
{
	if (what)
		vs_error("%s: %s", what, err->msg);
	else
		vs_error("%s", err->msg);
	return vf_exit_status(err->code);
}

int vs_usage(const char *usage)
{
	fprintf(stderr, "varseal: usage: %s\n", usage);
	return VF_EXIT_USAGE;
}

int vs_open_input(const char *path, const char **name)
{
	if (!path || !strcmp(path, "-")) {
		*name = "standard input";
		return STDIN_FILENO;
	}
	*name = path;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		vs_error("%s: %s", path, strerror(errno));
	return fd;
}

/* A signal must not leave a named temporary file behind (the unnamed
 * O_TMPFILE kind, the usual one, disappears by itself). */
static char pending_path[4096];
static volatile sig_atomic_t have_pending;

static void remove_temp_and_die(int sig)
{
	if (have_pending)
		unlink(pending_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void watch_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = remove_temp_and_die;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Keeps the handler's copy of the temporary path current. */
static void track_temp(const struct vs_output *o)
{
	const char *temp = o ? vf_atomic_temp_path(&o->file) : NULL;
	have_pending = 0;
	if (temp) {
		snprintf(pending_path, sizeof(pending_path), "%s/%s", o->file.dir, temp);
		have_pending = 1;
	}
}

enum vf_code vs_output_open(struct vs_output *o, const char *path, struct vf_error *err)
{
	memset(o, 0, sizeof(*o));
	o->file.fd = o->file.dir_fd = o->direct_fd = -1;
	if (!path || !strcmp(path, "-")) {
		o->to_stdout = true;
		o->name = "standard output";
		vf_fd_sink_init(&o->sink, STDOUT_FILENO, o->name);
		return VF_OK;
	}
	o->name = path;
	/* Only regular files are replaced: renaming over /dev/null or a FIFO
	 * would destroy it. Those are written in place, as age does. */
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return vf_fail(err, VF_E_IO, "%s: is a directory", path);
		o->direct_fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (o->direct_fd < 0)
			return vf_fail_errno(err, errno, "%s", path);
		vf_fd_sink_init(&o->sink, o->direct_fd, path);
		return VF_OK;
	}
	/* As age: through a symlink (even a dangling one) the file it names
	 * is written, and the link stays; an existing file keeps its owner,
	 * group and mode. A new one is private: it may hold plaintext. */
	watch_signals();
	enum vf_code rc = vf_atomic_open_output(&o->file, path, 0600, err);
	if (rc != VF_OK)
		return rc;
	track_temp(o);
	vf_fd_sink_init(&o->sink, o->file.fd, path);
	return VF_OK;
}

static enum vf_code close_direct(struct vs_output *o, struct vf_error *err)
{
	int rc = close(o->direct_fd);
	o->direct_fd = -1;
	return rc == 0 ? VF_OK : vf_fail_errno(err, errno, "closing %s", o->name);
}

enum vf_code vs_output_commit(struct vs_output *o, struct vf_error *err)
{
	if (o->to_stdout)
		return VF_OK;
	if (o->direct_fd >= 0)
		return close_direct(o, err);
	/* Between naming and renaming, a named temporary exists: track it. */
	enum vf_code rc = vf_atomic_commit(&o->file, true, err);
	track_temp(NULL);
	return rc;
}

void vs_output_abort(struct vs_output *o)
{
	if (o->to_stdout)
		return;
	if (o->direct_fd >= 0) {
		close_direct(o, NULL);
		return;
	}
	vf_atomic_abort(&o->file);
	track_temp(NULL);
}

static void progress_draw(const char *line, void *ctx)
{
	(void)ctx;
	fputs(line, stderr);
	fflush(stderr);
}

void vs_progress_begin(struct vf_progress *p, const char *label, uint64_t total, bool bytes,
		       bool show)
{
	vf_progress_begin(p, label, total, bytes,
			  show && isatty(STDERR_FILENO) ? progress_draw : NULL, NULL);
}

struct vf_src *vs_progress_src(struct vs_progress_input *in, struct vf_src *src, int fd,
			       const char *label, bool show)
{
	struct stat st;
	uint64_t total = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	vs_progress_begin(&in->progress, label, total, true, show);
	vf_progress_src_init(&in->src, src, &in->progress);
	return &in->src.base;
}
