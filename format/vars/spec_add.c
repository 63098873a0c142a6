/* Spec text for imported generators: written whole (vargen import clan
 * writes a new spec) or added to the user's spec in place, comments and
 * layout kept (varseal import-sops), and checked by reading it back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/io.h"
#include "vars/spec.h"
#include "vars/spec_add.h"
#include "vars/store.h"

/* ---- writing ------------------------------------------------------------ */

/* Names are printable ASCII without spaces (vf_spec_name_problem); plain
 * when YAML would read them back as the same text and nothing else, in
 * double quotes otherwise. */
static bool plain_ok(const char *s)
{
	static const char *const nulls[] = {"null", "Null", "NULL", "~"};
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(s, nulls[i]))
			return false;
	if (!*s || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", *s))
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@+-", *p))
			return false;
	return true;
}

enum vf_code vf_spec_yaml_name(struct vf_buf *out, const char *s, struct vf_error *err)
{
	if (plain_ok(s))
		return vf_buf_append_str(out, s, err);
	enum vf_code rc = vf_buf_append_str(out, "\"", err);
	for (const char *p = s; rc == VF_OK && *p; p++) {
		char c[3] = {*p, 0, 0};
		if (*p == '"' || *p == '\\') {
			c[0] = '\\';
			c[1] = *p;
		}
		rc = vf_buf_append_str(out, c, err);
	}
	return rc == VF_OK ? vf_buf_append_str(out, "\"", err) : rc;
}

static enum vf_code put(struct vf_buf *out, const char *s, struct vf_error *err)
{
	return vf_buf_append_str(out, s, err);
}

static enum vf_code put_indent(struct vf_buf *out, unsigned n, struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (unsigned i = 0; rc == VF_OK && i < n; i++)
		rc = put(out, " ", err);
	return rc;
}

enum vf_code vf_spec_generator_yaml(const struct vf_spec_new_generator *g, unsigned indent,
				    struct vf_buf *out, struct vf_error *err)
{
	enum vf_code rc = put_indent(out, indent, err);
	if (rc == VF_OK)
		rc = vf_spec_yaml_name(out, g->name, err);
	if (rc == VF_OK)
		rc = put(out, ":\n", err);
	if (rc == VF_OK && g->share && (rc = put_indent(out, indent + 2, err)) == VF_OK)
		rc = put(out, "share: true\n", err);
	if (rc == VF_OK && (rc = put_indent(out, indent + 2, err)) == VF_OK)
		rc = put(out, "imported: ", err);
	if (rc == VF_OK && (rc = put(out, vf_imported_name(g->imported), err)) == VF_OK)
		rc = put(out, "\n", err);
	if (rc == VF_OK && (rc = put_indent(out, indent + 2, err)) == VF_OK)
		rc = put(out, "files:\n", err);
	for (size_t i = 0; rc == VF_OK && i < g->n_files; i++) {
		rc = put_indent(out, indent + 4, err);
		if (rc == VF_OK)
			rc = vf_spec_yaml_name(out, g->files[i].name, err);
		if (rc == VF_OK)
			rc = put(out, g->files[i].secret ? ": {secret: true}\n" : ": {secret: false}\n",
				 err);
	}
	return rc;
}

/* ---- adding to the user's spec -------------------------------------------- */

/* The text and its parsed document, with byte offsets for libyaml's marks
 * (whose columns count characters, not bytes). */
struct doc {
	const char *text;
	size_t len;
	yaml_document_t yaml;
	const char *path;
};

static size_t line_start(const struct doc *d, size_t line0)
{
	size_t off = 0;
	for (size_t l = 0; l < line0 && off < d->len; off++)
		if (d->text[off] == '\n')
			l++;
	return off;
}

static size_t mark_offset(const struct doc *d, yaml_mark_t m)
{
	size_t off = line_start(d, m.line);
	for (size_t c = 0; c < m.column && off < d->len && d->text[off] != '\n'; c++) {
		off++;
		while (off < d->len && ((unsigned char)d->text[off] & 0xc0) == 0x80)
			off++;
	}
	return off;
}

/* The start of the line after the one holding offset off (len at the end). */
static size_t next_line(const struct doc *d, size_t off)
{
	const char *nl = off < d->len ? memchr(d->text + off, '\n', d->len - off) : NULL;
	return nl ? (size_t)(nl - d->text) + 1 : d->len;
}

static yaml_node_t *node(const struct doc *d, int i)
{
	return yaml_document_get_node((yaml_document_t *)&d->yaml, i);
}

static bool is_key(const yaml_node_t *k, const char *s)
{
	return k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(s) &&
	       !memcmp(k->data.scalar.value, s, k->data.scalar.length);
}

/* The pair of map whose key is s: its key and value (NULL when absent). */
static bool find(const struct doc *d, const yaml_node_t *map, const char *s, yaml_node_t **key,
		 yaml_node_t **val)
{
	*key = *val = NULL;
	if (!map || map->type != YAML_MAPPING_NODE)
		return false;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(d, p->key);
		if (is_key(k, s)) {
			*key = k;
			*val = node(d, p->value);
			return true;
		}
	}
	return false;
}

static bool empty_null(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0 &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* Whether the line holding key k ends with its ':' (then blanks or a
 * comment): the value is on the lines below, or empty. *after: just past
 * the ':'. */
static bool key_ends_line(const struct doc *d, const yaml_node_t *k, size_t *after)
{
	size_t off = mark_offset(d, k->end_mark);
	while (off < d->len && (d->text[off] == ' ' || d->text[off] == '\t'))
		off++;
	if (off >= d->len || d->text[off] != ':')
		return false;
	*after = ++off;
	while (off < d->len && (d->text[off] == ' ' || d->text[off] == '\t' || d->text[off] == '\r'))
		off++;
	return off >= d->len || d->text[off] == '\n' || d->text[off] == '#';
}

/* One change to the text: the cut bytes at at replaced by text (an
 * insertion when cut is 0). */
struct splice {
	size_t at;
	size_t cut;
	char *text; /* malloc'd */
};

static enum vf_code by_hand(const struct doc *d, const char *what, struct vf_error *err)
{
	return vf_fail(err, VF_E_ARG, "%s: %s is not written in a form this edit knows (block "
				      "style); add the generator to it by hand, then import again",
		       d->path, what);
}

/* Where the generators: section that starts at from ends: after its last
 * indented line, before the next line that starts at column 0 with
 * anything but a comment (the next top-level key, a document marker), or
 * at the end. */
static size_t section_end(const struct doc *d, size_t from)
{
	size_t end = from;
	for (size_t off = from; off < d->len;) {
		size_t nl = next_line(d, off), i = off;
		while (i < nl && (d->text[i] == ' ' || d->text[i] == '\t' || d->text[i] == '\r'))
			i++;
		bool blank = i == nl || d->text[i] == '\n';
		if (!blank && i == off && d->text[off] != '#')
			break;
		if (!blank && i > off)
			end = nl;
		off = nl;
	}
	return end;
}

static enum vf_code text_of(const struct vf_buf *b, char **out, struct vf_error *err)
{
	*out = malloc(b->len + 1);
	if (!*out)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	memcpy(*out, b->data, b->len);
	(*out)[b->len] = '\0';
	return VF_OK;
}

/* Whether v is an empty flow mapping `{}` on the line of its key k, a
 * top-level key, with nothing but blanks or a comment after it. */
static bool empty_flow_mapping_on_key_line(const struct doc *d, const yaml_node_t *k,
					   const yaml_node_t *v)
{
	if (k->start_mark.column != 0 || v->type != YAML_MAPPING_NODE ||
	    v->data.mapping.style != YAML_FLOW_MAPPING_STYLE ||
	    v->data.mapping.pairs.top != v->data.mapping.pairs.start ||
	    v->start_mark.line != k->start_mark.line || v->end_mark.line != k->start_mark.line)
		return false;
	size_t off = mark_offset(d, v->end_mark);
	while (off < d->len && (d->text[off] == ' ' || d->text[off] == '\t' || d->text[off] == '\r'))
		off++;
	return off >= d->len || d->text[off] == '\n' || d->text[off] == '#';
}

/* The generator's entry under generators: (made when there is none). */
static enum vf_code add_generator(const struct doc *d, const yaml_node_t *root,
				  const struct vf_spec_new_generator *g, struct splice *s,
				  struct vf_error *err)
{
	yaml_node_t *k, *v;
	struct vf_buf b;
	vf_buf_init(&b);
	enum vf_code rc = VF_OK;
	if (!find(d, root, "generators", &k, &v)) {
		s->at = d->len;
		if (d->len && d->text[d->len - 1] != '\n')
			rc = put(&b, "\n", err);
		if (rc == VF_OK)
			rc = put(&b, "generators:\n", err);
		if (rc == VF_OK)
			rc = vf_spec_generator_yaml(g, 2, &b, err);
	} else if (empty_flow_mapping_on_key_line(d, k, v)) {
		/* `generators: {}`, as a spec with none yet is often written:
		 * the braces (and the blanks before them) give way to a block
		 * mapping of one entry below the key; a comment after them
		 * stays on the key's line. */
		size_t braces = mark_offset(d, v->start_mark), end = mark_offset(d, v->end_mark);
		size_t line_end = end;
		while (line_end < d->len && d->text[line_end] != '\n')
			line_end++;
		s->at = braces;
		while (s->at > 0 && (d->text[s->at - 1] == ' ' || d->text[s->at - 1] == '\t'))
			s->at--;
		s->cut = line_end - s->at;
		rc = vf_buf_append(&b, d->text + end, line_end - end, err);
		if (rc == VF_OK)
			rc = put(&b, "\n", err);
		if (rc == VF_OK)
			rc = vf_spec_generator_yaml(g, 2, &b, err);
		/* The line's own newline, kept after the cut, ends the entry. */
		if (rc == VF_OK && line_end < d->len && b.len && b.data[b.len - 1] == '\n')
			b.len--;
	} else {
		size_t after;
		if (k->start_mark.column != 0 || !key_ends_line(d, k, &after) ||
		    (v->type != YAML_MAPPING_NODE && !empty_null(v)) ||
		    (v->type == YAML_MAPPING_NODE && v->data.mapping.style != YAML_BLOCK_MAPPING_STYLE))
			return by_hand(d, "generators:", err);
		unsigned indent = 2;
		if (v->type == YAML_MAPPING_NODE && v->data.mapping.pairs.top > v->data.mapping.pairs.start)
			indent = (unsigned)node(d, v->data.mapping.pairs.start->key)->start_mark.column;
		s->at = section_end(d, next_line(d, after));
		if (s->at == d->len && d->len && d->text[d->len - 1] != '\n')
			rc = put(&b, "\n", err);
		if (rc == VF_OK)
			rc = vf_spec_generator_yaml(g, indent, &b, err);
	}
	if (rc == VF_OK)
		rc = text_of(&b, &s->text, err);
	vf_buf_free(&b);
	return rc;
}

/* "NAME" as an item of a flow sequence, or "- NAME" on a line of its own. */
static enum vf_code list_item(const struct vf_spec_new_generator *g, const char *before,
			      const char *after, struct splice *s, struct vf_error *err)
{
	struct vf_buf b;
	vf_buf_init(&b);
	enum vf_code rc = put(&b, before, err);
	if (rc == VF_OK)
		rc = vf_spec_yaml_name(&b, g->name, err);
	if (rc == VF_OK)
		rc = put(&b, after, err);
	if (rc == VF_OK)
		rc = text_of(&b, &s->text, err);
	vf_buf_free(&b);
	return rc;
}

/* Adds the generator to a machine's existing generators: list. */
static enum vf_code extend_list(const struct doc *d, const yaml_node_t *k, const yaml_node_t *v,
				const struct vf_spec_new_generator *g, struct splice *s,
				struct vf_error *err)
{
	size_t after;
	if (empty_null(v)) {
		if (!key_ends_line(d, k, &after))
			return by_hand(d, "the machine's generators:", err);
		s->at = after;
		return list_item(g, " [", "]", s, err);
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return by_hand(d, "the machine's generators:", err);
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (v->data.sequence.style == YAML_FLOW_SEQUENCE_STYLE) {
		/* Right after the last item, or inside the empty [ ]. */
		size_t end = mark_offset(d, v->end_mark);
		if (end == 0 || d->text[end - 1] != ']')
			return by_hand(d, "the machine's generators:", err);
		s->at = n ? mark_offset(d, node(d, v->data.sequence.items.top[-1])->end_mark) : end - 1;
		return list_item(g, n ? ", " : "", "", s, err);
	}
	/* A block sequence: "- NAME" after the last item, at the first's dash. */
	const yaml_node_t *first = node(d, v->data.sequence.items.start[0]);
	const yaml_node_t *last = node(d, v->data.sequence.items.top[-1]);
	size_t at = mark_offset(d, first->start_mark), line = line_start(d, first->start_mark.line);
	while (at > line && d->text[at - 1] != '-')
		at--;
	if (at == line || last->type != YAML_SCALAR_NODE ||
	    last->start_mark.line != last->end_mark.line)
		return by_hand(d, "the machine's generators:", err);
	char indent[300];
	size_t dash = at - 1 - line;
	if (dash >= sizeof(indent) - 3)
		return by_hand(d, "the machine's generators:", err);
	memset(indent, ' ', dash);
	memcpy(indent + dash, "- ", 3);
	s->at = next_line(d, mark_offset(d, last->end_mark));
	bool newline = s->at == d->len && d->len && d->text[d->len - 1] != '\n';
	char before[310];
	snprintf(before, sizeof(before), "%s%s", newline ? "\n" : "", indent);
	return list_item(g, before, "\n", s, err);
}

/* The generator added to machine's generators: list (made when absent). */
static enum vf_code add_to_machine(const struct doc *d, const yaml_node_t *root,
				   const char *machine, const struct vf_spec_new_generator *g,
				   struct splice *s, struct vf_error *err)
{
	yaml_node_t *mk, *mv, *k, *v, *m, *mval;
	if (!find(d, root, "machines", &mk, &mv) || !find(d, mv, machine, &m, &mval))
		return vf_fail(err, VF_E_ARG, "%s: no machine named %s", d->path, machine);
	if (find(d, mval, "generators", &k, &v))
		return extend_list(d, k, v, g, s, err);
	size_t after;
	if (mval->type == YAML_MAPPING_NODE && mval->data.mapping.style == YAML_BLOCK_MAPPING_STYLE &&
	    mval->data.mapping.pairs.top > mval->data.mapping.pairs.start) {
		/* A line of its own before the machine's first key, at its indent. */
		const yaml_node_t *first = node(d, mval->data.mapping.pairs.start->key);
		char indent[300];
		if (first->start_mark.column >= sizeof(indent) - 16)
			return by_hand(d, "the machine", err);
		snprintf(indent, sizeof(indent), "%*sgenerators: [", (int)first->start_mark.column, "");
		s->at = line_start(d, first->start_mark.line);
		if (mark_offset(d, first->start_mark) != s->at + first->start_mark.column)
			return by_hand(d, "the machine", err);
		return list_item(g, indent, "]\n", s, err);
	}
	if (!empty_null(mval) || !key_ends_line(d, m, &after))
		return by_hand(d, "the machine", err);
	char indent[300];
	if (m->start_mark.column >= sizeof(indent) - 32)
		return by_hand(d, "the machine", err);
	s->at = next_line(d, after);
	bool newline = s->at == d->len && d->len && d->text[d->len - 1] != '\n';
	snprintf(indent, sizeof(indent), "%s%*sgenerators: [", newline ? "\n" : "",
		 (int)m->start_mark.column + 2, "");
	return list_item(g, indent, "]\n", s, err);
}

/* The text with the splices made (at most two, in any order). */
static enum vf_code apply(const struct doc *d, struct splice *s, size_t n, char **out,
			  size_t *out_len, struct vf_error *err)
{
	if (n == 2 && s[0].at > s[1].at) {
		struct splice t = s[0];
		s[0] = s[1];
		s[1] = t;
	}
	struct vf_buf b;
	vf_buf_init(&b);
	size_t from = 0;
	enum vf_code rc = VF_OK;
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		rc = vf_buf_append(&b, d->text + from, s[i].at - from, err);
		if (rc == VF_OK)
			rc = put(&b, s[i].text, err);
		from = s[i].at + s[i].cut;
	}
	if (rc == VF_OK)
		rc = vf_buf_append(&b, d->text + from, d->len - from, err);
	if (rc == VF_OK)
		rc = text_of(&b, out, err);
	*out_len = b.len;
	vf_buf_free(&b);
	return rc;
}

/* ---- checking the result -------------------------------------------------- */

static bool same_string(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static const char *machines_differ(const struct vf_spec *a, const struct vf_spec *b,
				   const char *machine, const char *gen)
{
	if (a->n_machines != b->n_machines)
		return "the machines";
	for (size_t i = 0; i < a->n_machines; i++) {
		const struct vf_spec_machine *x = &a->machines[i], *y = &b->machines[i];
		size_t added = machine && !strcmp(x->name, machine) ? 1 : 0;
		if (strcmp(x->name, y->name) || !same_string(x->key, y->key) ||
		    x->n_credentials != y->n_credentials || x->n_generators + added != y->n_generators)
			return "the machines";
		for (size_t j = 0; j < x->n_generators; j++)
			if (strcmp(x->generators[j], y->generators[j]))
				return "the machines' generators";
		if (added && strcmp(y->generators[x->n_generators], gen))
			return "the machine's new generator";
	}
	return NULL;
}

/* What tells edited apart from spec plus the new generator (and machine
 * using it): NULL when nothing. */
static const char *differs(const struct vf_spec *spec, const struct vf_spec *edited,
			   const struct vf_spec_new_generator *g, const char *machine)
{
	if (spec->n_admins != edited->n_admins)
		return "the admins";
	for (size_t i = 0; i < spec->n_admins; i++)
		if (strcmp(spec->admins[i].name, edited->admins[i].name) ||
		    strcmp(spec->admins[i].recipient, edited->admins[i].recipient))
			return "the admins";
	const char *m = machines_differ(spec, edited, machine, g->name);
	if (m)
		return m;
	if (spec->n_generators + 1 != edited->n_generators)
		return "the generators";
	for (size_t i = 0; i < spec->n_generators; i++)
		if (strcmp(spec->generators[i].name, edited->generators[i].name) ||
		    strcmp(spec->generators[i].hash, edited->generators[i].hash))
			return "the generators";
	const struct vf_spec_generator *n = &edited->generators[spec->n_generators];
	if (strcmp(n->name, g->name) || n->share != g->share || n->imported != g->imported ||
	    n->n_files != g->n_files)
		return "the new generator";
	for (size_t i = 0; i < g->n_files; i++)
		if (strcmp(n->files[i].name, g->files[i].name) || n->files[i].secret != g->files[i].secret)
			return "the new generator's files";
	return NULL;
}

static enum vf_code edit(const struct vf_spec *spec, const char *text, size_t len,
			 const struct vf_spec_new_generator *g, const char *machine, char **out,
			 size_t *out_len, struct vf_error *err)
{
	struct doc d = {.text = text, .len = len, .path = spec->path};
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	bool loaded = yaml_parser_load(&parser, &d.yaml);
	yaml_parser_delete(&parser);
	if (!loaded)
		return vf_fail(err, VF_E_ARG, "%s: no longer reads as YAML (changed meanwhile?)",
			       spec->path);
	const yaml_node_t *root = yaml_document_get_root_node(&d.yaml);
	struct splice s[2] = {{0, 0, NULL}, {0, 0, NULL}};
	enum vf_code rc = VF_OK;
	if (!root || root->type != YAML_MAPPING_NODE ||
	    root->data.mapping.style != YAML_BLOCK_MAPPING_STYLE)
		rc = by_hand(&d, "the spec", err);
	if (rc == VF_OK)
		rc = add_generator(&d, root, g, &s[0], err);
	if (rc == VF_OK && machine)
		rc = add_to_machine(&d, root, machine, g, &s[1], err);
	if (rc == VF_OK)
		rc = apply(&d, s, machine ? 2 : 1, out, out_len, err);
	free(s[0].text);
	free(s[1].text);
	yaml_document_delete(&d.yaml);
	return rc;
}

enum vf_code vf_spec_edit_add_generator(const struct vf_spec *spec,
					const struct vf_spec_new_generator *g, const char *machine,
					char **out, size_t *out_len, struct vf_error *err)
{
	*out = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	enum vf_code rc = vf_store_read(spec->path, &data, &len, err);
	if (rc == VF_OK && !data)
		rc = vf_fail(err, VF_E_IO, "%s: vanished", spec->path);
	if (rc == VF_OK)
		rc = edit(spec, (const char *)data, len, g, machine, out, out_len, err);
	free(data);
	if (rc != VF_OK)
		return rc;
	struct vf_spec edited;
	struct vf_error e;
	if (vf_spec_parse(spec->path, *out, *out_len, &edited, &e) != VF_OK) {
		rc = vf_fail(err, VF_E_ARG,
			     "%s: the spec with generator %s added would not load (%s); add it by "
			     "hand, then import again",
			     spec->path, g->name, e.msg);
	} else {
		const char *what = differs(spec, &edited, g, machine);
		if (what)
			rc = vf_fail(err, VF_E_ARG,
				     "%s: the spec with generator %s added does not read back as this "
				     "spec with only that generator added (%s differ: was the file "
				     "changed meanwhile?); add it by hand, then import again",
				     spec->path, g->name, what);
		vf_spec_free(&edited);
	}
	if (rc != VF_OK) {
		free(*out);
		*out = NULL;
	}
	return rc;
}
