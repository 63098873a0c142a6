/* Script generators, with clan's contract: the script runs with $out,
 * $in/<dependency>/<file> and $prompts/<name> in a private directory on a
 * RAM file system (never a persistent disk), and that directory is removed
 * afterwards whatever happens:
 *
 * - the script runs in its own process group, under a time limit;
 *   SIGINT, SIGTERM and SIGHUP sent to vargen are forwarded to the group,
 *   SIGKILL follows after a grace period, and vargen exits 128+N after
 *   removing the directory;
 * - a run killed outright (SIGKILL, power cut aside) leaves a directory
 *   named vargen.<pid>.<random>, which the next run removes once that pid
 *   is dead;
 * - everything in the directory is reached through directory descriptors,
 *   never following a symlink, and $out must hold regular files only.
 *
 * Signals are taken synchronously (blocked, then sigtimedwait), so no work
 * happens in a signal handler. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/crypto.h"
#include "base/io.h"
#include "base/privdir.h"
#include "base/sigguard.h"
#include "base/secmem.h"
#include "base/tree.h"
#include "vargen.h"

/* Per $out file: secrets are small; the whole value is held in guarded
 * (locked) memory. */
#define MAX_OUTPUT (1u << 20)
/* The script's time limit when the spec gives no `timeout:`. */
#define DEFAULT_TIMEOUT 300u
/* Between SIGTERM (or the forwarded signal) and SIGKILL to the group. */
#define KILL_GRACE 5
/* After SIGKILL, how long to wait for the group to be reaped before
 * going on (a member's zombie may belong to a parent outside it). */
#define REAP_LIMIT 2
/* Directory levels walked when removing: one descriptor each. */
#define MAX_DEPTH 256

/* Script directories: vargen.<pid>.<random hex> (base/privdir.h). */
#define PREFIX "vargen."

/* dir/name into out; an over-long path is an error, never a truncation. */
static int child_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return vg_error("path too long: %s/%s", dir, name);
	return 0;
}

/* A script's directory may hold secrets and whatever the script made of
 * it: files are wiped before they go, the script's own removal of its
 * permissions is undone, and a mount or a symlink it left leads nowhere. */
static const struct vf_tree_opts script_tree = {
	.wipe = true,
	.one_fs = true,
	.restore_access = true,
	.max_depth = MAX_DEPTH,
};

/* ---- where scripts run ------------------------------------------------ */

/* Once per run (scripts run on several threads), and only where a
 * script directory is made: the same few bases serve every script. */
static void warn_swap_once(const char *base)
{
	static atomic_bool warned;
	if (atomic_exchange(&warned, true))
		return;
	char safe[PATH_MAX + 64];
	vf_escape_controls(base, safe, sizeof(safe));
	fprintf(stderr,
		"vargen: warning: %s may reach swap: swap is active and this tmpfs is not mounted "
		"noswap (script inputs and outputs could be written to the swap device)\n",
		safe);
}

/* Where script directories may be: $XDG_RUNTIME_DIR, then /dev/shm, then
 * /run, those of them that are on RAM, in order. */
#define N_BASES 3
static const char *base_candidate(size_t i)
{
	if (i == 0)
		return vf_runtime_dir();
	return i == 1 ? "/dev/shm" : "/run";
}

struct private_dir {
	int base_fd;		      /* the RAM directory it is in */
	int fd;			      /* the private directory */
	char name[64];		      /* vargen.<pid>.<random hex> */
	char path[PATH_MAX];	      /* base/name: for $out, $in and messages */
};

static bool private_dir_pid(const char *name, pid_t *pid)
{
	return vf_private_dir_pid(PREFIX, name, pid);
}

/* A script directory in base, when base is on RAM and one can be made
 * there; else -1 and the next base is tried (the caller says when none
 * would do, so err is not shown). */
static int make_private_dir_in(const char *base, struct private_dir *pd)
{
	bool may_swap;
	pd->base_fd = vf_ram_dir_open(base, &may_swap);
	if (pd->base_fd < 0)
		return -1;
	if (may_swap)
		warn_swap_once(base);
	struct vf_error err;
	if (vf_private_dir_make(pd->base_fd, base, PREFIX, pd->name, sizeof(pd->name), &pd->fd,
				&err) == VF_OK) {
		if (child_path(pd->path, sizeof(pd->path), base, pd->name) == 0)
			return 0;
		close(pd->fd);
		pd->fd = -1;
		unlinkat(pd->base_fd, pd->name, AT_REMOVEDIR); /* empty: nothing written yet */
	}
	close(pd->base_fd);
	pd->base_fd = -1;
	return -1;
}

static int make_private_dir(struct private_dir *pd)
{
	*pd = (struct private_dir){.base_fd = -1, .fd = -1};
	for (size_t i = 0; i < N_BASES; i++)
		if (base_candidate(i) && make_private_dir_in(base_candidate(i), pd) == 0)
			return 0;
	return vg_error("no RAM file system to run generator scripts in "
			"(tried $XDG_RUNTIME_DIR, /dev/shm, /run)");
}

/* Removes the private directory; an error when anything is left, since
 * it may hold plaintext. */
static int remove_private_dir(struct private_dir *pd)
{
	if (pd->fd < 0)
		return 0;
	int status = vf_tree_empty(pd->fd, &script_tree);
	close(pd->fd);
	if (status == 0 && unlinkat(pd->base_fd, pd->name, AT_REMOVEDIR) != 0)
		status = -1;
	pd->fd = -1;
	close(pd->base_fd);
	pd->base_fd = -1;
	if (status != 0)
		return vg_error("%s: could not remove the script's directory (it may hold "
				"secrets): remove it by hand",
				pd->path);
	return 0;
}

/* Directories left by runs killed outright: ours by name and owner, and
 * their pid is gone. Not necessarily 0700: the script may have changed
 * that. */
void vg_clean_stale_script_dirs(void)
{
	const struct vf_tree_stale stale = {
		.parse = private_dir_pid,
		.tree = script_tree,
	};
	for (size_t i = 0; i < N_BASES; i++) {
		bool may_swap; /* sweeping writes nothing */
		int fd = base_candidate(i) ? vf_ram_dir_open(base_candidate(i), &may_swap) : -1;
		if (fd < 0)
			continue;
		vf_tree_sweep_stale(fd, &stale);
		close(fd);
	}
}

/* ---- the script's inputs ---------------------------------------------- */

static int make_dir(int parent, const char *name, const char *shown, int *fd)
{
	if (mkdirat(parent, name, 0700) != 0 && errno != EEXIST)
		return vg_error("%s/%s: %s", shown, name, strerror(errno));
	*fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return vg_error("%s/%s: %s", shown, name, strerror(errno));
	return 0;
}

static int write_file(int dir_fd, const char *shown, const char *name, const struct vf_value *v)
{
	char path[PATH_MAX + 256];
	snprintf(path, sizeof(path), "%s/%s", shown, name);
	int fd = vf_create_private_at(dir_fd, name, 0600);
	if (fd < 0)
		return vg_error("%s: %s", path, strerror(errno));
	struct vf_error err;
	enum vf_code rc = vf_write_all(fd, v->data, v->len, path, &err);
	close(fd);
	return rc == VF_OK ? 0 : vg_fail(&err);
}

static int stage_dependency(int in_fd, const char *in_path, const struct vf_spec_generator *dep,
			    const struct vf_value *values)
{
	char shown[PATH_MAX + 256];
	int fd = -1;
	snprintf(shown, sizeof(shown), "%s/%s", in_path, dep->name);
	int status = make_dir(in_fd, dep->name, in_path, &fd);
	for (size_t f = 0; !status && f < dep->n_files; f++)
		status = write_file(fd, shown, dep->files[f].name, &values[f]);
	if (fd >= 0)
		close(fd);
	return status;
}

static int stage_inputs(const struct private_dir *pd, const struct vf_spec *spec,
			const struct vf_spec_generator *g, const struct vf_value *const *deps_values,
			const struct vf_value *prompts)
{
	char in_path[PATH_MAX + 8], prompts_path[PATH_MAX + 16];
	snprintf(in_path, sizeof(in_path), "%s/in", pd->path);
	snprintf(prompts_path, sizeof(prompts_path), "%s/prompts", pd->path);
	int out_fd = -1, in_fd = -1, prompts_fd = -1;
	int status = make_dir(pd->fd, "out", pd->path, &out_fd);
	if (!status)
		status = make_dir(pd->fd, "in", pd->path, &in_fd);
	for (size_t d = 0; !status && d < g->n_dependencies; d++)
		status = stage_dependency(in_fd, in_path, vf_spec_generator(spec, g->dependencies[d]),
					  deps_values[d]);
	if (!status)
		status = make_dir(pd->fd, "prompts", pd->path, &prompts_fd);
	for (size_t p = 0; !status && p < g->n_prompts; p++)
		status = write_file(prompts_fd, prompts_path, g->prompts[p].name, &prompts[p]);
	if (out_fd >= 0)
		close(out_fd);
	if (in_fd >= 0)
		close(in_fd);
	if (prompts_fd >= 0)
		close(prompts_fd);
	return status;
}

/* ---- running the script ----------------------------------------------- */

/* SIGINT, SIGTERM and SIGHUP are held while a script's directory exists
 * (base/sigguard.h); a Ctrl-C typed at the terminal stops vargen too. */
static const int stopping[] = {SIGINT, SIGTERM, SIGHUP};

static const char *signal_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
}

/* In the child: its own process group, killed with vargen, the caller's
 * signal state, stdin from /dev/null, stdout to stderr (stdout is
 * vargen's), then sh. */
static void exec_script(const struct private_dir *pd, const struct vf_spec_generator *g,
			const struct vf_sigguard *s, pid_t parent)
{
	char out[PATH_MAX], in[PATH_MAX], prompts[PATH_MAX];
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	vf_sigguard_restore(s);
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);
	dup2(STDERR_FILENO, STDOUT_FILENO);
	if (child_path(out, sizeof(out), pd->path, "out") ||
	    child_path(in, sizeof(in), pd->path, "in") ||
	    child_path(prompts, sizeof(prompts), pd->path, "prompts") || fchdir(pd->fd) != 0 ||
	    setenv("out", out, 1) || setenv("in", in, 1) || setenv("prompts", prompts, 1))
		_exit(127);
	execl("/bin/sh", "sh", "-e", "-c", g->script, (char *)NULL);
	_exit(127);
}

/* The script's process group while it runs and while it is stopped. */
struct script {
	pid_t pid; /* the shell: leader of the group, so also its id */
	int wstatus;
	bool reaped;
	int stop_signal;	 /* what stopped vargen, or 0 */
	bool timed_out;
	int tty_stop;		 /* SIGTTIN/SIGTTOU that stopped the shell, or 0 */
	bool terminating;	 /* a signal went to the group; SIGKILL at kill_at */
	bool term_sent, killed;
	struct timespec kill_at;
};

/* Reaps every child: the shell, and members of its group orphaned to us
 * (vargen is their subreaper while the script runs). */
static void reap(struct script *sc)
{
	int wstatus;
	pid_t pid;
	while ((pid = waitpid(-1, &wstatus, WNOHANG | WUNTRACED)) > 0) {
		if (pid != sc->pid)
			continue;
		if (WIFSTOPPED(wstatus)) {
			int sig = WSTOPSIG(wstatus);
			if (sig == SIGTTIN || sig == SIGTTOU)
				sc->tty_stop = sig;
			continue;
		}
		sc->wstatus = wstatus;
		sc->reaped = true;
	}
}

static bool group_alive(const struct script *sc)
{
	return killpg(sc->pid, 0) == 0 || errno == EPERM;
}

/* sig to the group (continued, in case it is stopped); SIGKILL follows
 * after the grace. */
static void terminate(struct script *sc, int sig)
{
	killpg(sc->pid, sig);
	killpg(sc->pid, SIGCONT);
	if (sig == SIGTERM)
		sc->term_sent = true;
	if (!sc->terminating) {
		sc->terminating = true;
		sc->kill_at = vf_deadline(KILL_GRACE);
	}
}

static void kill_group(struct script *sc)
{
	killpg(sc->pid, SIGKILL);
	sc->killed = true;
	sc->kill_at = vf_deadline(REAP_LIMIT);
}

/* Waits until the script's whole group is gone (or, after SIGKILL, for at
 * most REAP_LIMIT), acting on the time limit and on stopping signals. */
static void supervise(struct script *sc, const struct vf_sigguard *s, unsigned timeout)
{
	struct timespec deadline = vf_deadline(timeout);
	sigset_t wake = s->stop;
	sigaddset(&wake, SIGCHLD);
	for (;;) {
		reap(sc);
		bool alive = group_alive(sc);
		if (sc->reaped && !alive)
			return;
		/* Leftovers of a finished script (background jobs) are stopped:
		 * nothing may outlive its directory. */
		if (sc->reaped && !sc->term_sent && !sc->killed)
			terminate(sc, SIGTERM);
		/* Not the terminal's foreground group, the script cannot use
		 * the terminal: fail now rather than at the time limit. */
		if (sc->tty_stop && !sc->terminating)
			terminate(sc, SIGTERM);
		const struct timespec *next = sc->terminating ? &sc->kill_at : &deadline;
		if (vf_deadline_passed(next)) {
			if (!sc->terminating) {
				sc->timed_out = true;
				terminate(sc, SIGTERM);
			} else if (!sc->killed) {
				kill_group(sc);
			} else {
				return; /* only zombies can be left */
			}
			continue;
		}
		struct timespec left = vf_time_left(next);
		int sig = sigtimedwait(&wake, NULL, &left);
		if (sig <= 0 || sig == SIGCHLD)
			continue;
		if (!sc->stop_signal)
			sc->stop_signal = sig;
		if (!sc->terminating)
			terminate(sc, sig);
		else if (!sc->killed)
			kill_group(sc); /* asked twice: no more patience */
	}
}

static int run_shell(const struct private_dir *pd, const struct vf_spec_generator *g,
		     const struct vf_sigguard *s, int *stop_signal)
{
	unsigned timeout = g->timeout_seconds ? g->timeout_seconds : DEFAULT_TIMEOUT;
	pid_t parent = getpid();
	fflush(NULL);
	/* Orphans of the script come to us, so SIGCHLD tells when they end. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct script sc = {.pid = fork()};
	if (sc.pid < 0) {
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		return vg_error("fork: %s", strerror(errno));
	}
	if (sc.pid == 0)
		exec_script(pd, g, s, parent);
	/* Also here: the group must exist before a signal is forwarded to it. */
	setpgid(sc.pid, sc.pid);
	supervise(&sc, s, timeout);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	*stop_signal = sc.stop_signal;
	if (sc.stop_signal)
		return 1;
	if (sc.tty_stop)
		return vg_error("generator %s: script stopped by %s: it tried to use the terminal "
				"(scripts get their input from prompts:)",
				g->name, sc.tty_stop == SIGTTIN ? "SIGTTIN" : "SIGTTOU");
	if (sc.timed_out) {
		if (g->timeout_seconds)
			return vg_error("generator %s: script killed after %u s (timeout: %u in "
					"the spec)",
					g->name, timeout, timeout);
		return vg_error("generator %s: script killed after %u s (the default limit; "
				"set timeout: in the spec for longer)",
				g->name, timeout);
	}
	if (!sc.reaped)
		return vg_error("generator %s: script could not be reaped", g->name);
	if (WIFEXITED(sc.wstatus) && WEXITSTATUS(sc.wstatus) == 0)
		return 0;
	if (WIFSIGNALED(sc.wstatus))
		return vg_error("generator %s: script killed by signal %d", g->name,
				WTERMSIG(sc.wstatus));
	return vg_error("generator %s: script failed with exit status %d", g->name,
			WEXITSTATUS(sc.wstatus));
}

/* ---- the script's outputs --------------------------------------------- */

static const char *type_name(mode_t mode)
{
	return S_ISDIR(mode)    ? "a directory"
	       : S_ISFIFO(mode) ? "a FIFO"
	       : S_ISSOCK(mode) ? "a socket"
	       : S_ISCHR(mode)  ? "a character device"
	       : S_ISBLK(mode)  ? "a block device"
				: "a special file";
}

/* $out itself: a directory, not a symlink the script put in its place. */
static int open_out(const struct private_dir *pd, const struct vf_spec_generator *g, int *fd)
{
	struct stat st;
	if (fstatat(pd->fd, "out", &st, AT_SYMLINK_NOFOLLOW) != 0)
		return vg_error("generator %s: the script removed $out", g->name);
	if (S_ISLNK(st.st_mode))
		return vg_error("generator %s: $out is a symlink (not followed)", g->name);
	if (!S_ISDIR(st.st_mode))
		return vg_error("generator %s: $out is %s, not a directory", g->name,
				type_name(st.st_mode));
	*fd = openat(pd->fd, "out", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return vg_error("generator %s: $out: %s", g->name, strerror(errno));
	return 0;
}

/* Into guarded memory, at most MAX_OUTPUT bytes: a regular file, opened
 * without following a symlink and without blocking (a FIFO would block
 * open() until a writer came). */
static int read_output(int out_fd, const struct vf_spec_generator *g, size_t i,
		       struct vf_value *v)
{
	static const struct vf_read_opts opts = {
		.max = MAX_OUTPUT, .follow = VF_NOFOLLOW, .guarded = true};
	const char *name = g->files[i].name;
	struct vf_error err;
	struct vf_file f;
	if (vf_read_file(out_fd, name, &opts, &f, &err) != VF_OK) {
		switch (f.fail) {
		case VF_READ_OPEN:
			if (f.errnum == ENOENT)
				return vg_error("generator %s: the script did not write $out/%s",
						g->name, name);
			if (f.errnum == ELOOP)
				return vg_error("generator %s: $out/%s is a symlink (not followed)",
						g->name, name);
			break;
		case VF_READ_TYPE:
			return vg_error("generator %s: $out/%s is %s, not a regular file", g->name,
					name, type_name(f.mode));
		case VF_READ_SIZE:
			return vg_error("generator %s: $out/%s is larger than 1 MiB", g->name, name);
		case VF_READ_CHANGED:
			return vg_error("generator %s: $out/%s changed while being read", g->name,
					name);
		case VF_READ_NOMEM: return vg_error("out of memory");
		default: break;
		}
		return vg_error("generator %s: $out/%s: %s", g->name, name, strerror(f.errnum));
	}
	int status = vf_value_set(v, f.data, f.len, &err) != VF_OK ? vg_fail(&err) : 0;
	vf_file_free(&f, &opts);
	return status;
}

/* Everything in $out must be declared: a typo in a file name must not
 * silently drop a secret. */
static int check_no_extra(int out_fd, const struct vf_spec_generator *g)
{
	int fd = dup(out_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return vg_error("generator %s: $out: %s", g->name, strerror(errno));
	}
	int status = 0;
	struct dirent *e;
	while (!status && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!vf_spec_file(g, e->d_name))
			status = vg_error("generator %s: the script wrote $out/%s, which the spec "
					  "does not declare",
					  g->name, e->d_name);
	}
	closedir(d);
	return status;
}

static int read_outputs(const struct private_dir *pd, const struct vf_spec_generator *g,
			struct vf_value *values)
{
	int out_fd = -1;
	if (open_out(pd, g, &out_fd) != 0)
		return 1;
	int status = check_no_extra(out_fd, g);
	for (size_t i = 0; !status && i < g->n_files; i++)
		status = read_output(out_fd, g, i, &values[i]);
	close(out_fd);
	return status;
}

int vg_run_script(const struct vf_spec *spec, const struct vf_spec_generator *g,
		  const struct vf_value *const *deps_values, const struct vf_value *prompts,
		  struct vf_value *values)
{
	struct vf_sigguard s;
	struct private_dir pd;
	int stop_signal = 0;
	/* From before the directory exists until it is gone, a stopping
	 * signal only marks the run as interrupted. */
	vf_sigguard_block(&s, stopping, sizeof(stopping) / sizeof(stopping[0]), false);
	int status = make_private_dir(&pd);
	if (!status)
		status = stage_inputs(&pd, spec, g, deps_values, prompts);
	if (!status)
		stop_signal = vf_sigguard_pending(&s);
	if (!status && !stop_signal)
		status = run_shell(&pd, g, &s, &stop_signal);
	if (!status && !stop_signal)
		status = read_outputs(&pd, g, values);
	if (remove_private_dir(&pd) != 0 && !status)
		status = 1;
	if (!stop_signal)
		stop_signal = vf_sigguard_pending(&s);
	vf_sigguard_restore(&s);
	if (!stop_signal)
		return status;
	for (size_t i = 0; i < g->n_files; i++)
		vf_value_free(&values[i]);
	vg_error("generator %s: interrupted by %s: script stopped, its directory removed, "
		 "nothing committed",
		 g->name, signal_name(stop_signal));
	return 128 + stop_signal;
}
