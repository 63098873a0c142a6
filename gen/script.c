/* Script generators, with clan's contract: the script runs with $out,
 * $in/<dependency>/<file> and $prompts/<name> in a private directory on a
 * RAM file system (never a persistent disk), and that directory is removed
 * afterwards whatever happens. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic.h"
#include "secmem.h"
#include "vargen.h"

#define MAX_OUTPUT (1u << 20)

/* dir/name into out; an over-long path is an error, never a truncation. */
static int child_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return vg_error("path too long: %s/%s", dir, name);
	return 0;
}

static bool on_ram(const char *dir)
{
	struct statfs fs;
	return statfs(dir, &fs) == 0 &&
	       (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
}

/* $XDG_RUNTIME_DIR, then /dev/shm, then /run: the first that is RAM. */
static int private_dir(char *out, size_t cap)
{
	const char *candidates[] = {getenv("XDG_RUNTIME_DIR"), "/dev/shm", "/run"};
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		if (!candidates[i] || !on_ram(candidates[i]))
			continue;
		if (child_path(out, cap, candidates[i], "vargen.XXXXXX"))
			continue;
		if (mkdtemp(out))
			return 0;
	}
	return vg_error("no RAM file system to run generator scripts in "
			"(tried $XDG_RUNTIME_DIR, /dev/shm, /run)");
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char child[4096];
			struct stat st;
			if (child_path(child, sizeof(child), path, e->d_name) != 0)
				continue;
			if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(child);
			else
				unlink(child);
		}
		closedir(d);
	}
	rmdir(path);
}

static int write_file(const char *dir, const char *name, const struct vf_value *v)
{
	char path[4096];
	if (child_path(path, sizeof(path), dir, name) != 0)
		return 1;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return vg_error("%s: %s", path, strerror(errno));
	struct vf_error err;
	enum vf_code rc = vf_write_all(fd, v->data, v->len, path, &err);
	close(fd);
	return rc == VF_OK ? 0 : vg_fail(&err);
}

static int make_dir(const char *base, const char *name, char *out, size_t cap)
{
	if (child_path(out, cap, base, name) != 0)
		return 1;
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return vg_error("%s: %s", out, strerror(errno));
	return 0;
}

static int stage_inputs(const char *dir, const struct vf_spec *spec,
			const struct vf_spec_generator *g, const struct vf_value *const *deps_values,
			const struct vf_value *prompts)
{
	char sub[4096], dep_dir[4096];
	int status = make_dir(dir, "out", sub, sizeof(sub));
	if (!status)
		status = make_dir(dir, "in", sub, sizeof(sub));
	for (size_t d = 0; !status && d < g->n_dependencies; d++) {
		const struct vf_spec_generator *dep = vf_spec_generator(spec, g->dependencies[d]);
		status = make_dir(sub, dep->name, dep_dir, sizeof(dep_dir));
		for (size_t f = 0; !status && f < dep->n_files; f++)
			status = write_file(dep_dir, dep->files[f].name, &deps_values[d][f]);
	}
	if (!status)
		status = make_dir(dir, "prompts", sub, sizeof(sub));
	for (size_t p = 0; !status && p < g->n_prompts; p++)
		status = write_file(sub, g->prompts[p].name, &prompts[p]);
	return status;
}

static int run_shell(const char *dir, const struct vf_spec_generator *g)
{
	char out[4096], in[4096], prompts[4096];
	if (child_path(out, sizeof(out), dir, "out") || child_path(in, sizeof(in), dir, "in") ||
	    child_path(prompts, sizeof(prompts), dir, "prompts"))
		return 1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return vg_error("fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		/* The script's chatter goes to stderr: stdout is ours. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		if (chdir(dir) != 0 || setenv("out", out, 1) || setenv("in", in, 1) ||
		    setenv("prompts", prompts, 1))
			_exit(127);
		execl("/bin/sh", "sh", "-e", "-c", g->script, (char *)NULL);
		_exit(127);
	}
	int wstatus;
	while (waitpid(pid, &wstatus, 0) < 0)
		if (errno != EINTR)
			return vg_error("waitpid: %s", strerror(errno));
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
		return 0;
	if (WIFSIGNALED(wstatus))
		return vg_error("generator %s: script killed by signal %d", g->name,
				WTERMSIG(wstatus));
	return vg_error("generator %s: script failed with exit status %d", g->name,
			WEXITSTATUS(wstatus));
}

static int read_output(const char *dir, const struct vf_spec_generator *g, size_t i,
		       struct vf_value *v)
{
	char out[4096], path[4096];
	if (child_path(out, sizeof(out), dir, "out") ||
	    child_path(path, sizeof(path), out, g->files[i].name))
		return 1;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return vg_error("generator %s: the script did not write $out/%s", g->name,
				g->files[i].name);
	uint8_t *buf = vf_secure_alloc(MAX_OUTPUT + 1);
	size_t len = 0;
	ssize_t n = 0;
	while (buf && len <= MAX_OUTPUT && (n = read(fd, buf + len, MAX_OUTPUT + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	int status = 0;
	struct vf_error err;
	if (!buf)
		status = vg_error("out of memory");
	else if (n < 0)
		status = vg_error("%s: %s", path, strerror(errno));
	else if (len > MAX_OUTPUT)
		status = vg_error("generator %s: $out/%s is larger than 1 MiB", g->name,
				  g->files[i].name);
	else if (vf_value_set(v, buf, len, &err) != VF_OK)
		status = vg_fail(&err);
	vf_secure_free(buf);
	return status;
}

/* Everything in $out must be declared: a typo in a file name must not
 * silently drop a secret. */
static int check_no_extra(const char *dir, const struct vf_spec_generator *g)
{
	char path[4096];
	if (child_path(path, sizeof(path), dir, "out"))
		return 1;
	DIR *d = opendir(path);
	if (!d)
		return vg_error("%s: %s", path, strerror(errno));
	int status = 0;
	struct dirent *e;
	while (!status && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		bool known = false;
		for (size_t i = 0; i < g->n_files && !known; i++)
			known = !strcmp(g->files[i].name, e->d_name);
		if (!known)
			status = vg_error("generator %s: the script wrote $out/%s, which the spec "
					  "does not declare",
					  g->name, e->d_name);
	}
	closedir(d);
	return status;
}

int vg_run_script(const struct vf_spec *spec, const struct vf_spec_generator *g,
		  const struct vf_value *const *deps_values, const struct vf_value *prompts,
		  struct vf_value *values)
{
	char dir[4096];
	if (private_dir(dir, sizeof(dir)) != 0)
		return 1;
	int status = stage_inputs(dir, spec, g, deps_values, prompts);
	if (!status)
		status = run_shell(dir, g);
	if (!status)
		status = check_no_extra(dir, g);
	for (size_t i = 0; !status && i < g->n_files; i++)
		status = read_output(dir, g, i, &values[i]);
	remove_tree(dir);
	return status;
}
