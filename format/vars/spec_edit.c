/* In-place edits of the spec file: the user's comments and layout are
 * theirs, so only the bytes of one value change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vars/spec.h"
#include "vars/store.h"

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

static enum vf_code splice(const char *text, size_t len, size_t at, size_t cut,
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

enum vf_code vf_spec_edit_machine_key(const struct vf_spec *spec, const char *machine,
				      const char *recipient, char **out, size_t *out_len,
				      struct vf_error *err)
{
	const struct vf_spec_machine *m = vf_spec_machine(spec, machine);
	if (!m)
		return vf_fail(err, VF_E_ARG, "%s: no machine named %s", spec->path, machine);
	uint8_t *data;
	size_t len;
	enum vf_code rc = vf_store_read(spec->path, &data, &len, err);
	if (rc != VF_OK)
		return rc;
	if (!data)
		return vf_fail(err, VF_E_IO, "%s: vanished", spec->path);
	const char *text = (const char *)data;
	if (m->key_pos.line) {
		size_t at = line_start(text, len, m->key_pos.line) + m->key_pos.column - 1;
		if (at > len)
			at = len;
		size_t cut = token_len(text, len, at);
		/* An empty `key:` has its position right after the colon. */
		char value[1024];
		snprintf(value, sizeof(value), "%s%s", at && text[at - 1] == ':' ? " " : "",
			 recipient);
		rc = splice(text, len, at, cut, value, out, out_len, err);
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
		if (!colon || (after && *after != '\n' && *after != '#' && *after != '\r')) {
			free(data);
			return vf_fail(err, VF_E_ARG,
				       "%s:%u: machine %s is not written as a block mapping; add "
				       "'key: %s' to it by hand",
				       spec->path, m->pos.line, machine, recipient);
		}
		char line[1024];
		snprintf(line, sizeof(line), "%*skey: %s\n", (int)child_indent, "", recipient);
		if (!eol) {
			rc = splice(text, len, len, 0, "\n", out, out_len, err);
			if (rc == VF_OK) {
				char *first = *out;
				rc = splice(first, *out_len, *out_len, 0, line, out, out_len, err);
				free(first);
			}
		} else {
			rc = splice(text, len, next, 0, line, out, out_len, err);
		}
	}
	free(data);
	return rc;
}
