/* In-place edits of the spec file: the user's comments and layout are
 * theirs, so only the bytes of one value change. (Writing the edited spec
 * together with the store is machine_key.c's.) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "vars/spec.h"
#include "vars/store_internal.h"

/* Offset of the start of 1-based line `line`, or len if past the end. */
static size_t line_start(const char *text, size_t len, unsigned line)
{
	size_t off = 0;
	for (unsigned l = 1; l < line && off < len; off++)
		if (text[off] == '\n')
			l++;
	return off;
}

/* Length of the scalar token at text[off]: quoted, or plain up to a
 * comment, a flow delimiter or the end of the line. */
static size_t token_len(const char *text, size_t len, size_t off)
{
	size_t end = off;
	if (off < len && (text[off] == '"' || text[off] == '\'')) {
		char quote = text[off];
		for (end = off + 1; end < len && text[end] != quote && text[end] != '\n'; end++)
			if (quote == '"' && text[end] == '\\')
				end++;
		return end < len && text[end] == quote ? end + 1 - off : 0;
	}
	while (end < len && text[end] != '\n' && text[end] != '#' && text[end] != ',' &&
	       text[end] != '}' && text[end] != ']')
		end++;
	while (end > off && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\r'))
		end--;
	return end - off;
}

static size_t indent_of(const char *text, size_t len, size_t off)
{
	size_t n = 0;
	while (off + n < len && text[off + n] == ' ')
		n++;
	return n;
}

static enum vf_code splice_text(const char *text, size_t len, size_t at, size_t cut,
			   const char *insert, char **out, size_t *out_len, struct vf_error *err)
{
	size_t ins = strlen(insert);
	char *p = malloc(len - cut + ins + 1);
	if (!p)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	memcpy(p, text, at);
	memcpy(p + at, insert, ins);
	memcpy(p + at + ins, text + at + cut, len - at - cut);
	*out_len = len - cut + ins;
	p[*out_len] = '\0';
	*out = p;
	return VF_OK;
}

/* text (len bytes, a copy of the spec file) with machine's key set to
 * recipient: spliced where spec, parsed from that text, has the key or
 * the machine's name; not yet checked. */
static enum vf_code edit_key(const struct vf_spec *spec, const char *machine,
			     const char *recipient, const char *text, size_t len, char **out,
			     size_t *out_len, struct vf_error *err)
{
	const struct vf_spec_machine *m = vf_spec_machine(spec, machine);
	if (!m)
		return vf_fail(err, VF_E_ARG, "%s: no machine named %s", spec->path, machine);
	enum vf_code rc;
	if (m->key_pos.line) {
		size_t at = line_start(text, len, m->key_pos.line) + m->key_pos.column - 1;
		if (at > len)
			at = len;
		size_t cut = token_len(text, len, at);
		/* An empty `key:` has its position right after the colon. A
		 * post-quantum recipient is 1,959 characters: sized to fit. */
		bool space = at && text[at - 1] == ':';
		size_t cap = strlen(recipient) + 2;
		char *value = malloc(cap);
		if (!value)
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		snprintf(value, cap, "%s%s", space ? " " : "", recipient);
		rc = splice_text(text, len, at, cut, value, out, out_len, err);
		free(value);
	} else {
		/* Insert "key: ..." as the first entry under the machine's name. */
		size_t name_line = line_start(text, len, m->pos.line);
		size_t name_indent = indent_of(text, len, name_line);
		const char *eol = memchr(text + name_line, '\n', len - name_line);
		size_t next = eol ? (size_t)(eol - text) + 1 : len;
		size_t child_indent = name_indent + 2;
		for (size_t probe = next; probe < len;) {
			const char *e = memchr(text + probe, '\n', len - probe);
			size_t end = e ? (size_t)(e - text) : len;
			size_t ind = indent_of(text, len, probe);
			if (probe + ind < end && text[probe + ind] != '#') {
				if (ind > name_indent)
					child_indent = ind;
				break;
			}
			probe = end + 1;
		}
		const char *colon = eol ? memchr(text + name_line, ':', (size_t)(eol - text) - name_line)
					: NULL;
		const char *after = colon ? colon + 1 : NULL;
		while (after && (*after == ' ' || *after == '\t'))
			after++;
		if (!colon || (after && *after != '\n' && *after != '#' && *after != '\r'))
			return vf_fail(err, VF_E_ARG,
				       "%s:%u: machine %s is not written as a block mapping; add "
				       "'key: %s' to it by hand",
				       spec->path, m->pos.line, machine, recipient);
		size_t cap = child_indent + strlen("key: \n") + strlen(recipient) + 1;
		char *line = malloc(cap);
		if (!line)
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		snprintf(line, cap, "%*skey: %s\n", (int)child_indent, "", recipient);
		if (!eol) {
			rc = splice_text(text, len, len, 0, "\n", out, out_len, err);
			if (rc == VF_OK) {
				char *first = *out;
				rc = splice_text(first, *out_len, *out_len, 0, line, out, out_len, err);
				free(first);
			}
		} else {
			rc = splice_text(text, len, next, 0, line, out, out_len, err);
		}
		free(line);
	}
	return rc;
}

static bool same_string(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The key edits[] gives machine, if any. */
static const struct vf_key_edit *edit_of(const struct vf_key_edit *edits, size_t n,
					 const char *machine)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(edits[i].machine, machine))
			return &edits[i];
	return NULL;
}

/* What, if anything, tells edited apart from spec other than the keys of
 * edits[]: the edit touched something else, or the file changed on disk
 * since spec was read from it. NULL when nothing. */
static const char *differs(const struct vf_spec *spec, const struct vf_spec *edited,
			   const struct vf_key_edit *edits, size_t n)
{
	if (spec->n_admins != edited->n_admins || spec->n_machines != edited->n_machines ||
	    spec->n_generators != edited->n_generators)
		return "the number of admins, machines or generators";
	for (size_t i = 0; i < spec->n_admins; i++)
		if (strcmp(spec->admins[i].name, edited->admins[i].name) ||
		    strcmp(spec->admins[i].recipient, edited->admins[i].recipient))
			return "the admins";
	for (size_t i = 0; i < spec->n_machines; i++) {
		const struct vf_spec_machine *a = &spec->machines[i], *b = &edited->machines[i];
		const struct vf_key_edit *target = edit_of(edits, n, a->name);
		if (strcmp(a->name, b->name) || a->n_generators != b->n_generators ||
		    a->n_credentials != b->n_credentials)
			return "the machines";
		if (!same_string(target ? target->recipient : a->key, b->key))
			return target ? "the new key" : "another machine's key";
		for (size_t j = 0; j < a->n_generators; j++)
			if (strcmp(a->generators[j], b->generators[j]))
				return "the machines' generators";
	}
	for (size_t i = 0; i < spec->n_generators; i++)
		if (strcmp(spec->generators[i].name, edited->generators[i].name) ||
		    strcmp(spec->generators[i].hash, edited->generators[i].hash))
			return "the generators";
	return NULL;
}

/* "machine web1's new key" or "the machines' new keys", for messages. */
static void keys_named(const struct vf_key_edit *edits, size_t n, char *out, size_t cap)
{
	if (n == 1)
		snprintf(out, cap, "machine %s's new key", edits[0].machine);
	else
		snprintf(out, cap, "the %zu machines' new keys", n);
}

/* text, parsed as the spec would be (named spec->path in messages): what
 * the next edit finds its positions in. */
static enum vf_code reparse(const struct vf_spec *spec, const char *text, size_t len,
			    const struct vf_key_edit *done, struct vf_spec *out,
			    struct vf_error *err)
{
	struct vf_error e;
	if (vf_spec_parse(spec->path, text, len, out, &e) == VF_OK)
		return VF_OK;
	return vf_fail(err, VF_E_ARG,
		       "%s: the spec with machine %s's new key would not load (%s); add "
		       "'key: %s' to it by hand",
		       spec->path, done->machine, e.msg, done->recipient);
}

/* The edits made one after the other on the file's text, each where the
 * text so far (parsed again) has its machine. */
static enum vf_code edit_keys(const struct vf_spec *spec, const struct vf_key_edit *edits,
			      size_t n, char **out, size_t *out_len, struct vf_error *err)
{
	uint8_t *data;
	size_t len;
	enum vf_code rc = vf_store_read(spec->path, &data, &len, err);
	if (rc != VF_OK)
		return rc;
	if (!data)
		return vf_fail(err, VF_E_IO, "%s: vanished", spec->path);
	char *text = (char *)data;
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		struct vf_spec now;
		const struct vf_spec *at = spec; /* the first edit: the spec as loaded */
		if (i > 0 && (rc = reparse(spec, text, len, &edits[i - 1], &now, err)) == VF_OK)
			at = &now;
		char *next = NULL;
		size_t next_len = 0;
		if (rc == VF_OK)
			rc = edit_key(at, edits[i].machine, edits[i].recipient, text, len, &next,
				      &next_len, err);
		if (at == &now)
			vf_spec_free(&now);
		if (rc == VF_OK) {
			free(text);
			text = next;
			len = next_len;
		}
	}
	if (rc != VF_OK) {
		free(text);
		return rc;
	}
	*out = text;
	*out_len = len;
	return VF_OK;
}

/* The edit is checked in memory, with the parser that reads the spec:
 * nothing is written (not even beside the spec) until it reads back as
 * the same spec with only the keys changed. */
enum vf_code vf_spec_edit_machine_keys(const struct vf_spec *spec, const struct vf_key_edit *edits,
				       size_t n, char **out, size_t *out_len,
				       struct vf_error *err)
{
	*out = NULL;
	enum vf_code rc = edit_keys(spec, edits, n, out, out_len, err);
	if (rc != VF_OK)
		return rc;
	struct vf_spec edited;
	struct vf_error e;
	char what[256];
	keys_named(edits, n, what, sizeof(what));
	if (vf_spec_parse(spec->path, *out, *out_len, &edited, &e) != VF_OK) {
		rc = vf_fail(err, VF_E_ARG,
			     "%s: the spec with %s would not load (%s); add 'key: %s' to machine "
			     "%s by hand",
			     spec->path, what, e.msg, edits[n - 1].recipient, edits[n - 1].machine);
	} else {
		const char *where = differs(spec, &edited, edits, n);
		if (where)
			rc = vf_fail(err, VF_E_ARG,
				     "%s: the spec with %s does not read back as this spec with only "
				     "%s changed (%s differ: was the file changed meanwhile?); add "
				     "'key: %s' to machine %s by hand",
				     spec->path, what, n == 1 ? "that key" : "those keys", where,
				     edits[0].recipient, edits[0].machine);
		vf_spec_free(&edited);
	}
	if (rc != VF_OK) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* Removes what vf_atomic_open_output leaves beside path when killed
 * between naming its file and renaming it: regular files of ours named
 * ".BASE.<12 hex digits>.tmp" in the directory of the file path leads to. */
static bool is_spec_temp(const char *name, const char *base)
{
	size_t b = strlen(base), n = strlen(name);
	if (n != b + 18 || name[0] != '.' || strncmp(name + 1, base, b) || name[b + 1] != '.' ||
	    strcmp(name + n - 4, ".tmp"))
		return false;
	for (size_t i = b + 2; i < n - 4; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

void vf_spec_clean_temps(const char *path)
{
	char *real = realpath(path, NULL);
	char *d = real ? strdup(real) : NULL, *b = real ? strdup(real) : NULL;
	int dfd = d && b ? open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!dir && dfd >= 0)
		close(dfd);
	const char *base = b ? basename(b) : NULL;
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		struct stat st;
		if (is_spec_temp(e->d_name, base) &&
		    fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid())
			unlinkat(dfd, e->d_name, 0);
	}
	if (dir)
		closedir(dir);
	free(real);
	free(d);
	free(b);
}
