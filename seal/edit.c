/* varseal edit MACHINE GENERATOR/FILE [-i IDENTITY]...: changes a stored
 * var in an editor, as `sops FILE` and `agenix -e` do.
 *
 * The value (a secret decrypted with the identities given) goes into a
 * private file (0600) in a directory of our own (0700) on a RAM file
 * system; $VISUAL, else $EDITOR, else vi edits it; it is resealed to the
 * spec's recipients only when its bytes changed. Whatever happens (the
 * editor fails, the save fails, SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to
 * varseal), the file is overwritten with zeros and removed with its
 * directory before varseal ends. A Ctrl-C typed on the terminal goes to
 * the editor, which shares varseal's process group: varseal ignores the
 * terminal's SIGINT and SIGQUIT while the editor runs, as git does. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/privdir.h"
#include "base/sigguard.h"
#include "base/secmem.h"
#include "base/tree.h"
#include "vars/store.h"
#include "varseal.h"

/* As varseal set: a value is at most 16 MiB. */
#define MAX_VALUE (16u << 20)
/* Seconds a stopped editor has between SIGTERM and SIGKILL (it may be
 * saving a swap file), then for SIGKILL to take effect. */
#define EDITOR_GRACE 5
#define REAP_LIMIT 5
/* Our directories: varseal-edit.<pid>.<random hex> (base/privdir.h). */
#define PREFIX "varseal-edit."
/* Directory levels an editor's leftovers may nest to (swap and backup
 * files sit beside the file; deeper is not an editor's doing). */
#define MAX_DEPTH 16

static const char usage[] = "varseal edit [-f SPEC] [--store DIR] [-i IDENTITY]... "
			    "MACHINE|shared GENERATOR/FILE";
static const struct vf_help_row help_rows[] = {
	{NULL, "MACHINE|shared", "the machine, or shared for a shared generator's file"},
	{NULL, "GENERATOR/FILE", "the file, as the spec names it"},
	VS_STORE_HELP,
	VS_IDENTITY_HELP("an admin's identity, to open a secret; repeatable"),
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Opens a stored var in $VISUAL, else $EDITOR, else vi, in a private file on a RAM file\n"
	"system ($XDG_RUNTIME_DIR, else /dev/shm), and reseals it to the spec's recipients if\n"
	"and only if it changed (marked set by hand, as set does). The file is wiped and\n"
	"removed in every case: the editor failing, the save failing, SIGINT, SIGTERM, SIGHUP\n"
	"or SIGQUIT sent to varseal (which then stops the editor and dies of the signal).\n"
	"Ctrl-C typed on the terminal belongs to the editor and does not abort the edit.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

/* ---- the sealed file as it was ---------------------------------------- */

/* What the store held when the edit began, to tell at the save whether
 * another writer changed it meanwhile. */
struct snapshot {
	bool exists;
	uint8_t hash[VF_SHA256_LEN];
};

static int take_snapshot(const struct vs_vars *v, const char *rel, struct snapshot *s)
{
	uint8_t *data = NULL;
	size_t len = 0;
	struct vf_error err;
	*s = (struct snapshot){0};
	enum vf_code rc = vf_store_read_at(v->root, rel, &data, &len, &err);
	if (rc == VF_OK && data) {
		s->exists = true;
		rc = vf_sha256(data, len, s->hash, &err);
	}
	free(data);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

/* ---- where the file goes ---------------------------------------------- */

struct edit_dir {
	int base_fd;		/* the RAM directory ours is in */
	const char *base;	/* its path */
	bool may_swap;
	int fd;			/* ours */
	char name[64];		/* varseal-edit.<pid>.<hex> */
	char path[PATH_MAX];	/* base/name/file: what the editor is given */
	int file_fd;		/* the file as we made it, kept for the wipe */
};

/* The editor may have made swap and backup files beside ours: each is
 * wiped and removed, whatever the editor did to the permissions; a mount
 * or a symlink leads nowhere. */
static const struct vf_tree_opts edit_tree = {
	.wipe = true,
	.one_fs = true,
	.restore_access = true,
	.max_depth = MAX_DEPTH,
};

static bool edit_dir_pid(const char *name, pid_t *pid)
{
	return vf_private_dir_pid(PREFIX, name, pid);
}

/* $XDG_RUNTIME_DIR when it is on RAM, else /dev/shm when it is: opened
 * into d->base_fd, directories a killed edit left there removed. */
static int find_ram_base(struct edit_dir *d)
{
	const char *candidates[] = {vf_runtime_dir(), "/dev/shm"};
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		if (!candidates[i])
			continue;
		int fd = vf_ram_dir_open(candidates[i], &d->may_swap);
		if (fd >= 0) {
			d->base_fd = fd;
			d->base = candidates[i];
			const struct vf_tree_stale stale = {
				.parse = edit_dir_pid,
				.private_mode = true,
				.tree = edit_tree,
			};
			vf_tree_sweep_stale(fd, &stale);
			return 0;
		}
	}
	return vs_error("no RAM file system to hold the file being edited (tried "
			"$XDG_RUNTIME_DIR and /dev/shm): nothing was decrypted");
}

/* A fresh directory of ours, private, checked on what was opened. */
static int make_edit_dir(struct edit_dir *d)
{
	struct vf_error err;
	if (vf_private_dir_make(d->base_fd, d->base, PREFIX, d->name, sizeof(d->name), &d->fd,
				&err) != VF_OK)
		return vs_fail(NULL, &err);
	return 0;
}

/* The file, named as the spec names it (editors choose their syntax by
 * the extension), holding value; its descriptor stays open for the wipe. */
static int write_edit_file(struct edit_dir *d, const char *name, const struct vf_value *value)
{
	int n = snprintf(d->path, sizeof(d->path), "%s/%s/%s", d->base, d->name, name);
	if (n < 0 || (size_t)n >= sizeof(d->path))
		return vs_error("%s/%s/%s: path too long", d->base, d->name, name);
	d->file_fd = vf_create_private_at(d->fd, name, 0600);
	if (d->file_fd < 0)
		return vs_error("%s: %s", d->path, strerror(errno));
	struct vf_error err;
	if (value->len && vf_write_all(d->file_fd, value->data, value->len, d->path, &err) != VF_OK)
		return vs_fail(NULL, &err);
	return 0;
}

/* Zeros over the file we made (even if the editor renamed it away), then
 * over everything in the directory, which then goes. 0, or an error
 * saying what may be left. */
static int remove_edit_dir(struct edit_dir *d)
{
	static const uint8_t zeros[65536];
	if (d->file_fd >= 0) {
		struct stat st;
		off_t at = 0;
		if (fstat(d->file_fd, &st) == 0)
			while (at < st.st_size) {
				size_t chunk = (size_t)(st.st_size - at) < sizeof(zeros)
						       ? (size_t)(st.st_size - at)
						       : sizeof(zeros);
				ssize_t w = pwrite(d->file_fd, zeros, chunk, at);
				if (w <= 0)
					break;
				at += w;
			}
		fsync(d->file_fd);
		close(d->file_fd);
		d->file_fd = -1;
	}
	int status = 0;
	if (d->fd >= 0) {
		if (vf_tree_empty(d->fd, &edit_tree) != 0 ||
		    unlinkat(d->base_fd, d->name, AT_REMOVEDIR) != 0)
			status = vs_error("%s/%s: could not remove the edit directory (it may hold "
					  "the secret): %s; remove it by hand",
					  d->base, d->name, strerror(errno));
		close(d->fd);
		d->fd = -1;
	}
	if (d->base_fd >= 0)
		close(d->base_fd);
	d->base_fd = -1;
	return status;
}

/* ---- signals ------------------------------------------------------------ */

/* From before the file exists until it is gone, the stopping signals
 * are held (base/sigguard.h), SIGQUIT among them: a Ctrl-\ typed at the
 * terminal belongs to the editor as much as a Ctrl-C. */
static const int stopping[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* Dies of sig as if it had not been caught (a shell reports 128+sig). */
static void die_of(int sig)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(sig, &dfl, NULL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	raise(sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	_exit(128 + sig);
}

/* ---- the editor --------------------------------------------------------- */

/* $VISUAL, else $EDITOR, else vi; a variable set empty (or blank) is unset. */
static const char *editor_command(void)
{
	const char *names[] = {"VISUAL", "EDITOR"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *e = getenv(names[i]);
		if (e && e[strspn(e, " \t\n")])
			return e;
	}
	return "vi";
}

/* The editor's command line is the user's own shell text, run as git runs
 * it ("vim", "code --wait", "emacsclient -t -a ''"); the path is the
 * shell's "$@", never part of the text. exec, so that the editor is the
 * process varseal signals (dash would otherwise stay in between). */
static char *editor_script(const char *editor)
{
	static const char before[] = "exec ", after[] = " \"$@\"";
	size_t len = strlen(before) + strlen(editor) + strlen(after) + 1;
	char *text = malloc(len);
	if (text)
		snprintf(text, len, "%s%s%s", before, editor, after);
	return text;
}

static void exec_editor(const char *script, const char *path, const struct vf_sigguard *s,
			pid_t parent)
{
	/* varseal killed outright: the editor goes too. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(127);
	vf_sigguard_restore(s);
	execl("/bin/sh", "sh", "-c", script, "sh", path, (char *)NULL);
	_exit(127);
}

struct editor_run {
	int wstatus;	 /* when it was reaped */
	int stop_signal; /* what stopped varseal, or 0 */
};

/* Waits for the editor. A stopping signal (not the terminal's Ctrl-C)
 * sends it SIGTERM, then SIGKILL after EDITOR_GRACE or at a second
 * signal; after SIGKILL, waits at most REAP_LIMIT. */
static void wait_editor(pid_t pid, const struct vf_sigguard *s, struct editor_run *r)
{
	sigset_t wake = s->stop;
	sigaddset(&wake, SIGCHLD);
	bool killed = false;
	struct timespec deadline = {0, 0};
	for (;;) {
		if (waitpid(pid, &r->wstatus, WNOHANG) == pid)
			return;
		siginfo_t si;
		int sig;
		if (r->stop_signal) {
			struct timespec left = vf_time_left(&deadline);
			sig = sigtimedwait(&wake, &si, &left);
		} else {
			sig = sigwaitinfo(&wake, &si);
		}
		if (sig < 0) {
			if (errno != EAGAIN)
				continue; /* EINTR */
			if (killed)
				return; /* past REAP_LIMIT: a zombie that cannot go */
			kill(pid, SIGKILL); /* past EDITOR_GRACE */
			killed = true;
			deadline = vf_deadline(REAP_LIMIT);
			continue;
		}
		if (sig == SIGCHLD || vf_sigguard_from_terminal(s, sig, &si))
			continue;
		if (!r->stop_signal) {
			r->stop_signal = sig;
			kill(pid, SIGTERM);
			kill(pid, SIGCONT); /* stopped (Ctrl-Z): it must run to end */
			deadline = vf_deadline(EDITOR_GRACE);
		} else if (!killed) {
			kill(pid, SIGKILL);
			killed = true;
			deadline = vf_deadline(REAP_LIMIT);
		}
	}
}

/* Runs the editor on d->path: 0 when it exited 0, else an error saying
 * nothing was saved; *stop_signal when varseal was told to stop. */
static int run_editor(const struct edit_dir *d, const struct vf_sigguard *s, int *stop_signal)
{
	const char *editor = editor_command();
	char shown[256];
	vf_escape_controls(editor, shown, sizeof(shown));
	char *script = editor_script(editor);
	if (!script)
		return vs_error("out of memory");
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		exec_editor(script, d->path, s, parent);
	free(script);
	if (pid < 0)
		return vs_error("fork: %s: nothing saved", strerror(errno));
	struct editor_run r = {0};
	wait_editor(pid, s, &r);
	*stop_signal = r.stop_signal;
	if (r.stop_signal)
		return VF_EXIT_ERROR;
	if (WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0)
		return 0;
	if (WIFEXITED(r.wstatus))
		return vs_error("the editor (%s) exited with status %d: nothing saved", shown,
				WEXITSTATUS(r.wstatus));
	return vs_error("the editor (%s) was killed by signal %d: nothing saved", shown,
			WTERMSIG(r.wstatus));
}

/* ---- reading back and saving ------------------------------------------- */

/* The file as the editor left it (it may have replaced it), into guarded
 * memory. */
static int read_back(const struct edit_dir *d, const char *name, struct vf_value *out)
{
	const struct vf_read_opts o = {.max = MAX_VALUE, .guarded = true};
	struct vf_file file = {0};
	struct vf_error err;
	if (vf_read_file(d->fd, name, &o, &file, &err) != VF_OK) {
		if (file.fail == VF_READ_OPEN && file.errnum == ENOENT)
			return vs_error("%s: the editor removed the file: nothing saved", d->path);
		if (file.fail == VF_READ_SIZE)
			return vs_error("%s: larger than 16 MiB: nothing saved", d->path);
		return vs_fail("nothing saved", &err);
	}
	enum vf_code rc = vf_value_set(out, file.data, file.len, &err);
	vf_file_free(&file, &o);
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

static bool same_value(const struct vf_value *a, const struct vf_value *b)
{
	return a->len == b->len && (a->len == 0 || vf_equal(a->data, b->data, a->len));
}

/* Under the store's writer lock: the sealed file still as the edit found
 * it, then the new value stored as set stores it. */
static int save(struct vs_vars *v, const char *owner, const struct vf_spec_generator *g,
		const struct vf_spec_file *f, const char *rel, const struct snapshot *before,
		const struct vf_value *value)
{
	struct snapshot now = {0};
	int status = vs_vars_lock(v);
	if (!status)
		status = take_snapshot(v, rel, &now);
	if (!status && (now.exists != before->exists ||
			(now.exists && !vf_equal(now.hash, before->hash, sizeof(now.hash)))))
		return vs_error("%s/%s changed while the editor ran (another vargen or varseal "
				"wrote it): nothing saved; edit it again",
				v->root, rel);
	if (!status)
		status = vs_vars_store_hand_set(v, owner, g, f, value);
	if (status)
		fprintf(stderr, "varseal: edit: nothing saved: %s/%s keeps its old value\n",
			v->root, rel);
	return status;
}

/* ---- the whole edit ----------------------------------------------------- */

struct edit {
	struct vs_vars v;
	const struct vf_spec_generator *g;
	const struct vf_spec_file *f;
	const char *owner;
	char *rel; /* the sealed file (or public value), from the root */
	struct snapshot before;
	struct vf_value old, edited;
	struct edit_dir dir;
};

/* The value as stored (a secret decrypted), or empty when not set yet. */
static int load(struct edit *e)
{
	struct vf_error err;
	e->rel = vf_store_rel(e->owner, e->g->name, e->f->name, e->f->secret ? "secret" : "value");
	if (!e->rel)
		return vs_error("out of memory");
	int status = take_snapshot(&e->v, e->rel, &e->before);
	if (!status)
		status = find_ram_base(&e->dir);
	if (status)
		return status;
	if (!e->before.exists) {
		fprintf(stderr, "varseal: edit: %s %s/%s is not set yet: starting from an empty "
				"file\n",
			e->owner ? e->owner : "shared", e->g->name, e->f->name);
		return 0;
	}
	if (e->f->secret && (status = vs_vars_identities(&e->v)) != 0)
		return status;
	if (vf_vars_read(e->v.root, e->owner, e->g, e->f, &e->v.ids, &e->old, &err) != VF_OK)
		return vs_fail(NULL, &err);
	if (e->f->secret && e->dir.may_swap)
		fprintf(stderr, "varseal: warning: %s may reach swap: swap is active and this "
				"tmpfs is not mounted noswap (the decrypted file could be written "
				"to the swap device)\n",
			e->dir.base);
	return 0;
}

/* From the file's creation to its removal, with the stopping signals
 * held: *stop_signal is the one that arrived, if any. */
static int edit_in_ram(struct edit *e, int *stop_signal)
{
	struct vf_sigguard s;
	vf_sigguard_block(&s, stopping, sizeof(stopping) / sizeof(stopping[0]), true);
	int status = make_edit_dir(&e->dir);
	if (!status)
		status = write_edit_file(&e->dir, e->f->name, &e->old);
	if (!status && !(*stop_signal = vf_sigguard_pending(&s)))
		status = run_editor(&e->dir, &s, stop_signal);
	if (!status && !*stop_signal)
		status = read_back(&e->dir, e->f->name, &e->edited);
	/* A signal while the editor was closing: nothing is saved. */
	if (!status && !*stop_signal && !(*stop_signal = vf_sigguard_pending(&s))) {
		if (same_value(&e->old, &e->edited))
			fprintf(stderr, "varseal: edit: no change; nothing resealed\n");
		else
			status = save(&e->v, e->owner, e->g, e->f, e->rel, &e->before, &e->edited);
	}
	int removed = remove_edit_dir(&e->dir);
	if (!status)
		status = removed;
	if (!*stop_signal)
		*stop_signal = vf_sigguard_pending(&s);
	vf_sigguard_restore(&s);
	return status;
}

int cmd_edit(int argc, char **argv)
{
	struct edit e = {
		.v = {.lock_fd = -1},
		.dir = {.base_fd = -1, .fd = -1, .file_fd = -1},
	};
	int stop_signal = 0;
	int status = vs_vars_open_target(argc, argv, &e.v, &help, &e.g, &e.f, &e.owner);
	/* A key pair's public half follows from its private half: say so
	 * before an editor opens, not after the work is done. */
	if (!status)
		status = vs_vars_settable(e.owner, e.g, e.f);
	if (!status)
		status = load(&e);
	if (!status)
		status = edit_in_ram(&e, &stop_signal);
	else
		remove_edit_dir(&e.dir); /* only the base is open */
	vf_value_free(&e.old);
	vf_value_free(&e.edited);
	free(e.rel);
	vs_vars_free(&e.v);
	if (stop_signal)
		die_of(stop_signal);
	return status < 0 ? 0 : status;
}
