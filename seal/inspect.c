/* varseal inspect [--json] [-f SPEC] [--max-work-factor N] FILE...: what an
 * age file is, without any key (age 1.3's age-inspect, and more): armor,
 * header size, stanza types and counts, post-quantum or not, payload size
 * and chunk count; for a store's secret, who its manifest says it is
 * sealed to, by the spec's names. Layout of the output: docs/varseal.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "age/header.h"
#include "age/inspect.h"
#include "age/recipient.h"
#include "vars/store.h"
#include "varseal.h"

static const char usage[] = "varseal inspect [--json] [-f SPEC] [--max-work-factor N] FILE...";
static const struct vf_help_row help_rows[] = {
	{NULL, "FILE", "an age file, armored or not; - is standard input (once); repeatable"},
	{"--json", NULL, "one JSON array, an object per file (its keys: varseal(1))"},
	{"-f, --file", "SPEC", "name a secret's recipients by this spec (default: its store's "
			       "vars.yaml)"},
	{"--max-work-factor", "N", "accept scrypt stanzas up to 2^N (1..40, default 22)"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Says what each age FILE is, without any key: armor, stanzas, post-quantum or\n"
	"not, sizes; for a store's secret, who its manifest says it is sealed to.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

/* A manifest lists a handful of keys; this is far above any real one. */
#define MANIFEST_MAX (1u << 20)

struct inspect_opts {
	bool json;
	const char *spec_path; /* -f: names recipients in every file */
	unsigned max_log_n;
};

/* The spec that names recipients: -f's, or the one at the root of the
 * store that holds the file (kept while files come from the same store). */
struct namer {
	bool fixed;	   /* from -f */
	char *root;	   /* the store root it was found for */
	char *path;	   /* NULL when there is no spec */
	struct vf_spec spec;
};

static void namer_drop(struct namer *n)
{
	if (n->path)
		vf_spec_free(&n->spec);
	free(n->path);
	free(n->root);
	n->path = n->root = NULL;
}

/* ---- the store a file is in ----------------------------------------------- */

/* The k-th component from the end of an absolute path (k = 1: the last),
 * its start in *at and its length; false when there are fewer. */
static bool component(const char *path, size_t k, const char **at, size_t *len)
{
	const char *end = path + strlen(path);
	for (;;) {
		const char *start = end;
		while (start > path && start[-1] != '/')
			start--;
		if (start == path)
			return false;
		if (--k == 0) {
			*at = start;
			*len = (size_t)(end - start);
			return true;
		}
		end = start - 1;
	}
}

static bool component_is(const char *path, size_t k, const char *name, const char **at)
{
	size_t len;
	return component(path, k, at, &len) && len == strlen(name) && !memcmp(*at, name, len);
}

/* The root of the store whose secret lives in dir (absolute), by the
 * store's layout: ROOT/vars/machine-keys/M, ROOT/vars/shared/G/F or
 * ROOT/vars/per-machine/M/G/F. NULL when dir is none of them. */
static char *store_root(const char *dir)
{
	static const struct {
		const char *parent;
		size_t depth; /* of the parent above dir, counting dir as 1 */
	} layouts[] = {{"machine-keys", 2}, {"shared", 3}, {"per-machine", 4}};
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const char *at, *vars;
		if (!component_is(dir, layouts[i].depth, layouts[i].parent, &at) ||
		    !component_is(dir, layouts[i].depth + 1, "vars", &vars))
			continue;
		size_t root_len = (size_t)(vars - 1 - dir);
		return root_len ? strndup(dir, root_len) : strdup("/");
	}
	return NULL;
}

/* The spec beside the store that holds dir, loaded into n (n->path NULL
 * when there is none). A vars.yaml that is not a regular file is passed
 * over: the store comes from others, and a symlink there could name any
 * file of the reader's. */
static int find_spec(struct namer *n, const char *dir)
{
	char *abs = realpath(dir, NULL);
	char *root = abs ? store_root(abs) : NULL;
	free(abs);
	if (n->root && root && !strcmp(n->root, root)) {
		free(root);
		return 0;
	}
	namer_drop(n);
	n->root = root;
	if (!root)
		return 0;
	char *path = malloc(strlen(root) + sizeof("/vars.yaml"));
	if (!path)
		return vs_error("out of memory");
	sprintf(path, "%s/%s", strcmp(root, "/") ? root : "", "vars.yaml");
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return 0;
	}
	struct vf_error err;
	if (vf_spec_load(path, &n->spec, &err) != VF_OK) {
		free(path);
		namer_drop(n); /* the next file of this store says it again */
		return vs_fail(NULL, &err);
	}
	n->path = path;
	return 0;
}

/* ---- the manifest beside a secret ----------------------------------------- */

/* Who a manifest line is in the spec: an admin or a machine (a key can be
 * both, or several admins'). */
struct name {
	const char *role; /* "admin" or "machine" */
	const char *name; /* the spec's */
};

struct recipient_line {
	const char *text; /* within the manifest's data, NUL-terminated */
	size_t len;
	struct name *names;
	size_t n_names;
};

struct manifest {
	char *path; /* as shown: beside FILE as it was named */
	struct vf_file file;
	struct recipient_line *lines;
	size_t n;
};

static const struct vf_read_opts manifest_opts = {.max = MANIFEST_MAX, .follow = VF_NOFOLLOW};

static void manifest_free(struct manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->lines[i].names);
	free(m->lines);
	if (m->file.data)
		vf_file_free(&m->file, &manifest_opts);
	free(m->path);
	memset(m, 0, sizeof(*m));
}

/* Whether a manifest line names the spec's recipient (an SSH key's comment
 * aside), as the store compares them. No allocation: a hostile manifest of
 * many short lines against a spec of many machines stays cheap. */
static bool same_key(const char *line, size_t len, const char *recipient)
{
	size_t a = vf_manifest_key_len(line, len);
	size_t b = vf_manifest_key_len(recipient, strlen(recipient));
	return a == b && !memcmp(line, recipient, a);
}

static int add_name(struct recipient_line *l, const char *role, const char *name)
{
	struct name *grown = realloc(l->names, (l->n_names + 1) * sizeof(*grown));
	if (!grown)
		return vs_error("out of memory");
	l->names = grown;
	l->names[l->n_names++] = (struct name){role, name};
	return 0;
}

static int name_line(const struct vf_spec *spec, struct recipient_line *l)
{
	int status = 0;
	for (size_t i = 0; !status && i < spec->n_admins; i++)
		if (same_key(l->text, l->len, spec->admins[i].recipient))
			status = add_name(l, "admin", spec->admins[i].name);
	for (size_t i = 0; !status && i < spec->n_machines; i++)
		if (spec->machines[i].key && same_key(l->text, l->len, spec->machines[i].key))
			status = add_name(l, "machine", spec->machines[i].name);
	return status;
}

/* Splits the manifest into its non-empty lines, in place. */
static int split_lines(struct manifest *m)
{
	char *p = (char *)m->file.data, *end = p + m->file.len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *stop = nl ? nl : end;
		*stop = '\0';
		if (stop > p) {
			struct recipient_line *grown;
			grown = realloc(m->lines, (m->n + 1) * sizeof(*grown));
			if (!grown)
				return vs_error("out of memory");
			m->lines = grown;
			m->lines[m->n++] = (struct recipient_line){p, (size_t)(stop - p), NULL, 0};
		}
		p = stop + 1;
	}
	return 0;
}

/* The manifest beside path when path is a store's secret (".../secret"
 * with a "recipients" file beside it): *found false otherwise. */
static int read_manifest(const char *path, struct manifest *m, bool *found, char **dir_out)
{
	*found = false;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (strcmp(base, "secret") != 0)
		return 0;
	char *dir = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup(".");
	m->path = malloc(strlen(path) + sizeof("recipients"));
	if (!dir || !m->path) {
		free(dir);
		return vs_error("out of memory");
	}
	sprintf(m->path, "%.*s%s", (int)(base - path), path, "recipients");
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct vf_error err;
	enum vf_code rc = dir_fd < 0 ? VF_E_IO
				     : vf_read_file(dir_fd, "recipients", &manifest_opts, &m->file,
						    &err);
	if (dir_fd >= 0)
		close(dir_fd);
	*dir_out = dir;
	if (dir_fd < 0 || (rc != VF_OK && m->file.fail == VF_READ_OPEN && m->file.errnum == ENOENT))
		return 0;
	if (rc != VF_OK && m->file.fail == VF_READ_OPEN && m->file.errnum == ELOOP)
		return vs_error("%s: a symlink; not followed", m->path);
	if (rc != VF_OK)
		return vs_error("%.*s%s", (int)(base - path), path, err.msg);
	*found = true;
	return split_lines(m);
}

/* ---- output --------------------------------------------------------------- */

struct out {
	struct vf_buf b;
	bool ok;
};

static void put(struct out *o, const char *s)
{
	o->ok &= vf_buf_append_str(&o->b, s, NULL) == VF_OK;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	put(o, line);
}

static void put_json(struct out *o, const char *s, size_t len)
{
	o->ok &= vf_json_string(&o->b, s, len, VF_JSON_REPLACE, NULL) == VF_OK;
}

static void put_json_str(struct out *o, const char *s)
{
	if (s)
		put_json(o, s, strlen(s));
	else
		put(o, "null");
}

/* Text meant for a terminal: control characters escaped. */
static void put_text(struct out *o, const char *s)
{
	size_t cap = 4 * strlen(s) + 8;
	char *safe = malloc(cap);
	if (!safe) {
		o->ok = false;
		return;
	}
	vf_escape_controls(s, safe, cap);
	put(o, safe);
	free(safe);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

#define LABEL "  %-14s"

#define UNNAMED "(not in the spec)"

/* "admin alice, machine web1", or UNNAMED; its length when out is NULL. */
static size_t names_label(const struct recipient_line *l, struct out *o)
{
	size_t len = l->n_names ? 0 : strlen(UNNAMED);
	if (o && !l->n_names)
		put(o, UNNAMED);
	for (size_t i = 0; i < l->n_names; i++) {
		len += (i ? 2 : 0) + strlen(l->names[i].role) + 1 + strlen(l->names[i].name);
		if (o)
			putf(o, "%s%s ", i ? ", " : "", l->names[i].role);
		if (o)
			put_text(o, l->names[i].name);
	}
	return len;
}

/* One line per recipient: the names aligned, then the manifest line. */
static void text_recipients(struct out *o, const struct manifest *m, bool named)
{
	size_t width = 0;
	for (size_t i = 0; named && i < m->n; i++) {
		size_t w = names_label(&m->lines[i], NULL);
		width = w > width ? w : width;
	}
	for (size_t i = 0; i < m->n; i++) {
		putf(o, LABEL, i ? "" : "recipients");
		if (named) {
			size_t w = names_label(&m->lines[i], o);
			putf(o, "%*s", (int)(width - w + 2), "");
		}
		put_text(o, m->lines[i].text);
		put(o, "\n");
	}
}

static void text_report(struct out *o, const char *file, const struct vf_inspection *x,
			const struct manifest *m, const struct namer *n)
{
	put_text(o, file);
	put(o, "\n");
	putf(o, LABEL "%s\n", "version", VF_INTRO);
	putf(o, LABEL "%s\n", "armored", x->armored ? "yes" : "no");
	putf(o, LABEL "%s\n", "post-quantum", vf_postquantum_name(x->postquantum));
	putf(o, LABEL "%zu: ", "stanzas", x->n_stanzas);
	for (size_t i = 0; i < x->n_types; i++)
		putf(o, "%s%s (%zu)", i ? ", " : "", x->types[i].type, x->types[i].count);
	put(o, "\n");
	putf(o, LABEL "%llu bytes\n", "header", (unsigned long long)x->header_len);
	putf(o, LABEL "%llu bytes in %llu %s\n", "payload", (unsigned long long)x->payload_len,
	     (unsigned long long)x->chunks, plural(x->chunks, "chunk", "chunks"));
	putf(o, LABEL "%llu bytes (nonce and tags)\n", "overhead",
	     (unsigned long long)x->overhead_len);
	putf(o, LABEL "%llu bytes", "file", (unsigned long long)x->file_len);
	if (x->armored)
		putf(o, " (%llu of armor)", (unsigned long long)x->armor_len);
	put(o, "\n");
	if (m && n->path) {
		putf(o, LABEL, "spec");
		put_text(o, n->path);
		put(o, "\n");
	}
	if (m)
		text_recipients(o, m, n->path != NULL);
}

static void json_store(struct out *o, const struct manifest *m, const struct namer *n)
{
	put(o, "{\"manifest\":");
	put_json_str(o, m->path);
	put(o, ",\"spec\":");
	put_json_str(o, n->path);
	put(o, ",\"recipients\":[");
	for (size_t i = 0; i < m->n; i++) {
		put(o, i ? ",{\"recipient\":" : "{\"recipient\":");
		put_json(o, m->lines[i].text, m->lines[i].len);
		put(o, ",\"names\":[");
		for (size_t k = 0; k < m->lines[i].n_names; k++) {
			putf(o, "%s{\"role\":\"%s\",\"name\":", k ? "," : "",
			     m->lines[i].names[k].role);
			put_json_str(o, m->lines[i].names[k].name);
			put(o, "}");
		}
		put(o, "]}");
	}
	put(o, "]}");
}

static void json_report(struct out *o, const char *file, const struct vf_inspection *x,
			const struct manifest *m, const struct namer *n)
{
	put(o, "{\"file\":");
	put_json_str(o, file);
	putf(o, ",\"version\":\"%s\",\"armored\":%s,\"postquantum\":\"%s\",\"stanza_count\":%zu",
	     VF_INTRO, x->armored ? "true" : "false", vf_postquantum_name(x->postquantum),
	     x->n_stanzas);
	put(o, ",\"stanza_types\":[");
	for (size_t i = 0; i < x->n_types; i++) {
		put(o, i ? ",{\"type\":" : "{\"type\":");
		put_json_str(o, x->types[i].type);
		putf(o, ",\"count\":%zu}", x->types[i].count);
	}
	putf(o, "],\"sizes\":{\"file\":%llu,\"armor\":%llu,\"header\":%llu,\"overhead\":%llu,"
		"\"payload\":%llu},\"chunks\":%llu,\"store\":",
	     (unsigned long long)x->file_len, (unsigned long long)x->armor_len,
	     (unsigned long long)x->header_len, (unsigned long long)x->overhead_len,
	     (unsigned long long)x->payload_len, (unsigned long long)x->chunks);
	if (m)
		json_store(o, m, n);
	else
		put(o, "null");
	put(o, "}");
}

/* ---- one file ------------------------------------------------------------- */

/* The bytes fd holds from where it stands, or -1 when that is not known
 * (a pipe, a terminal): then it is read to its end. */
static off_t remaining(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	off_t at = lseek(fd, 0, SEEK_CUR);
	return at < 0 || at > st.st_size ? -1 : st.st_size - at;
}

static int inspect_fd(const struct inspect_opts *opts, int fd, const char *name,
		      struct vf_inspection *x)
{
	struct vf_error err;
	struct vf_fd_src src;
	vf_fd_src_init(&src, fd, name);
	if (vf_inspect(&src.base, remaining(fd), opts->max_log_n, x, &err) != VF_OK)
		return vs_fail(name, &err);
	return 0;
}

/* The manifest and the spec naming its lines, for a store's secret. */
static int store_part(const char *path, struct namer *n, struct manifest *m, bool *found)
{
	char *dir = NULL;
	int status = read_manifest(path, m, found, &dir);
	if (!status && *found && !n->fixed)
		status = find_spec(n, dir);
	for (size_t i = 0; !status && *found && n->path && i < m->n; i++)
		status = name_line(&n->spec, &m->lines[i]);
	free(dir);
	return status;
}

static int inspect_one(const struct inspect_opts *opts, const char *arg, struct namer *n,
		       struct out *o)
{
	const char *name;
	int fd = vs_open_input(arg, &name);
	if (fd < 0)
		return 1;
	struct vf_inspection x;
	struct manifest m = {0};
	bool in_store = false;
	int status = inspect_fd(opts, fd, name, &x);
	if (fd > STDIN_FILENO)
		close(fd);
	if (status)
		return status;
	if (strcmp(arg, "-") != 0)
		status = store_part(arg, n, &m, &in_store);
	if (!status && opts->json)
		json_report(o, arg, &x, in_store ? &m : NULL, n);
	else if (!status)
		text_report(o, arg, &x, in_store ? &m : NULL, n);
	vf_inspection_free(&x);
	manifest_free(&m);
	return status;
}

/* ---- the command ---------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct inspect_opts *o)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"file", required_argument, NULL, 'f'},
		{"max-work-factor", required_argument, NULL, OPT_MAX_WORK_FACTOR},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	o->max_log_n = VF_SCRYPT_MAX_LOG_N;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: o->json = true; break;
		case 'f': o->spec_path = optarg; break;
		case OPT_MAX_WORK_FACTOR: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > 40)
				return vs_error("--max-work-factor must be 1..40");
			o->max_log_n = (unsigned)v;
			break;
		}
		case 'h': vf_help_print(stdout, &help); return -1;
		default: return vs_usage(usage);
		}
	}
	if (optind == argc)
		return vs_usage(usage);
	size_t stdin_uses = 0;
	for (int i = optind; i < argc; i++)
		stdin_uses += !strcmp(argv[i], "-");
	if (stdin_uses > 1)
		return vs_error("standard input can only be read once ('-' given twice)");
	return 0;
}

/* Each file's report is written whole once it is complete, so that a
 * file that fails half way leaves nothing of itself in the output. */
static int flush(struct out *o)
{
	if (!o->ok)
		return vs_error("out of memory");
	if (o->b.len && fwrite(o->b.data, 1, o->b.len, stdout) != o->b.len)
		return vs_error("standard output: write failed");
	o->b.len = 0;
	return 0;
}

int cmd_inspect(int argc, char **argv)
{
	struct inspect_opts opts = {0};
	int status = parse_args(argc, argv, &opts);
	if (status)
		return status < 0 ? 0 : status;
	struct namer n = {0};
	struct vf_error err;
	if (opts.spec_path) {
		if (vf_spec_load(opts.spec_path, &n.spec, &err) != VF_OK)
			return vs_fail(NULL, &err);
		n.fixed = true;
		n.path = strdup(opts.spec_path);
		if (!n.path) {
			vf_spec_free(&n.spec);
			return vs_error("out of memory");
		}
	}
	struct out o = {.ok = true};
	vf_buf_init(&o.b);
	size_t shown = 0;
	if (opts.json)
		put(&o, "[");
	for (int i = optind; i < argc; i++) {
		size_t before = o.b.len;
		if (shown)
			put(&o, opts.json ? ",\n" : "\n");
		if (inspect_one(&opts, argv[i], &n, &o) != 0) {
			o.b.len = before; /* nothing of a file that failed */
			status = 1;
		} else {
			shown++;
		}
		if (flush(&o) != 0)
			status = 1;
	}
	if (opts.json)
		put(&o, "]\n");
	if (flush(&o) != 0 || fflush(stdout) != 0)
		status = 1;
	vf_buf_free(&o.b);
	namer_drop(&n);
	return status;
}
