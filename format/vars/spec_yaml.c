/* Reading a spec: the file (bounded, regular files only), libyaml's
 * event pass that enforces the limits before any document is used (and
 * builds the document from the same events where it can), and the
 * document parse that hands over to spec.c. */
#include "vars/spec_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"

/* libyaml's reader errors carry a byte offset, not a mark. */
static void offset_to_mark(const unsigned char *buf, size_t len, size_t offset, size_t *line,
			   size_t *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if ((buf[i] & 0xc0) != 0x80) { /* count characters, not bytes */
			(*column)++;
		}
	}
}

static enum vf_code yaml_failure(struct ctx *c, const yaml_parser_t *p,
				 const unsigned char *buf, size_t len)
{
	if (p->error == YAML_MEMORY_ERROR)
		return spec_nomem(c);
	size_t line = p->problem_mark.line + 1, column = p->problem_mark.column + 1;
	if (p->error == YAML_READER_ERROR)
		offset_to_mark(buf, len, p->problem_offset, &line, &column);
	char what[200];
	snprintf(what, sizeof(what), "%s%s%s", p->problem ? p->problem : "unknown problem",
		 p->context ? ", " : "", p->context ? p->context : "");
	return vf_fail(c->err, VF_E_ARG, "%s:%zu:%zu: YAML syntax error: %s (expected valid YAML)",
		       c->path, line, column, what);
}

static enum vf_code too_large(struct vf_error *err, const char *name)
{
	return vf_fail(err, VF_E_ARG, "%s: spec is larger than " MAX_SPEC_SIZE_TEXT
		       " (expected at most %u bytes)",
		       name, MAX_SPEC_SIZE);
}

static enum vf_code not_regular(struct vf_error *err, const char *path)
{
	return vf_fail(err, VF_E_ARG, "%s: not a regular file (expected a spec file)", path);
}

/* The whole file, at most MAX_SPEC_SIZE bytes. The path may be a symlink
 * (users keep specs in repositories and link them), but what it names must
 * be a regular file (vf_read_file refuses devices before open touches them
 * and decides on the opened descriptor). */
static enum vf_code read_spec(const char *path, unsigned char **out, size_t *len,
			      struct vf_error *err)
{
	static const struct vf_read_opts opts = {.max = MAX_SPEC_SIZE, .follow = VF_FOLLOW};
	struct vf_file f;
	enum vf_code rc = vf_read_file(AT_FDCWD, path, &opts, &f, err);
	if (rc == VF_OK) {
		*out = f.data;
		*len = f.len;
		return VF_OK;
	}
	switch (f.fail) {
	case VF_READ_TYPE: return not_regular(err, path);
	case VF_READ_SIZE: return too_large(err, path);
	case VF_READ_NOMEM: return rc;
	default: return vf_fail_errno(err, f.errnum ? f.errnum : EIO, "%s", path);
	}
}

/* ---- limits checked on libyaml's events -------------------------------
 * Before any document is built, the event parser runs over the text and
 * stops at the first event past a limit: its scanner reads only a little
 * ahead of the events, so a hostile spec costs no more than its part
 * within the limits. Syntax errors are reported here as the document
 * parser would report them. */

struct scan_anchor {
	char *name;
	size_t nodes; /* what an alias to it adds; 0 while it is still open */
};

struct scan {
	struct ctx *c;
	unsigned depth;
	size_t nodes[MAX_DEPTH + 1];  /* per open collection: its nodes so far */
	size_t anchor[MAX_DEPTH + 1]; /* per open collection: its anchor, or SIZE_MAX */
	struct scan_anchor anchors[MAX_ANCHORS];
	size_t n_anchors;
	size_t total; /* nodes of the stream, aliases counted as what they stand for */
};

static enum vf_code scan_fail(struct scan *s, const yaml_event_t *ev, const char *what)
{
	return spec_fail_line_col(s->c, ev->start_mark.line + 1, ev->start_mark.column + 1, "%s", what);
}

/* The latest anchor named name (YAML lets a name be defined again). */
static size_t scan_find(const struct scan *s, const yaml_char_t *name)
{
	for (size_t i = s->n_anchors; i-- > 0;)
		if (strcmp(s->anchors[i].name, (const char *)name) == 0)
			return i;
	return SIZE_MAX;
}

static enum vf_code scan_anchor(struct scan *s, const yaml_event_t *ev, const yaml_char_t *name,
				size_t nodes, size_t *index)
{
	*index = SIZE_MAX;
	if (!name)
		return VF_OK;
	if (s->n_anchors == MAX_ANCHORS)
		return scan_fail(s, ev, "more than " STR(MAX_ANCHORS) " anchors (expected at most "
					STR(MAX_ANCHORS) ")");
	if (!(s->anchors[s->n_anchors].name = strdup((const char *)name)))
		return spec_nomem(s->c);
	s->anchors[s->n_anchors].nodes = nodes;
	*index = s->n_anchors++;
	return VF_OK;
}

/* A node of n nodes (aliases expanded) in the open collection. */
static enum vf_code scan_add(struct scan *s, const yaml_event_t *ev, size_t n)
{
	if (s->depth > 0)
		s->nodes[s->depth] += n;
	s->total += n;
	if (s->total > MAX_NODES)
		return scan_fail(s, ev, "aliases expand the spec beyond " STR(MAX_NODES)
					" nodes (expected fewer or smaller aliased nodes)");
	return VF_OK;
}

static enum vf_code scan_alias(struct scan *s, const yaml_event_t *ev)
{
	size_t i = scan_find(s, ev->data.alias.anchor);
	if (i == SIZE_MAX)
		return VF_OK; /* the document parser reports it */
	if (s->anchors[i].nodes == 0)
		return scan_fail(s, ev, "alias to a node that contains it (expected an alias "
					"of a complete node)");
	return scan_add(s, ev, s->anchors[i].nodes);
}

static enum vf_code scan_open(struct scan *s, const yaml_event_t *ev, const yaml_char_t *anchor)
{
	if (s->depth == MAX_DEPTH)
		return scan_fail(s, ev,
				 "nesting deeper than " STR(MAX_DEPTH) " levels (expected at most "
				 STR(MAX_DEPTH) " nested mappings and sequences)");
	enum vf_code rc = scan_add(s, ev, 1);
	if (rc != VF_OK)
		return rc;
	s->depth++;
	s->nodes[s->depth] = 1;
	return scan_anchor(s, ev, anchor, 0, &s->anchor[s->depth]);
}

static void scan_close(struct scan *s)
{
	size_t n = s->nodes[s->depth];
	if (s->anchor[s->depth] != SIZE_MAX)
		s->anchors[s->anchor[s->depth]].nodes = n;
	s->depth--;
	if (s->depth > 0)
		s->nodes[s->depth] += n - 1; /* its start was counted already */
}

static void scan_forget_anchors(struct scan *s)
{
	for (size_t i = 0; i < s->n_anchors; i++)
		free(s->anchors[i].name);
	s->n_anchors = 0;
}

static enum vf_code scan_event(struct scan *s, const yaml_event_t *ev)
{
	size_t ignored;
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		scan_forget_anchors(s); /* anchors are per document */
		return VF_OK;
	case YAML_SCALAR_EVENT: {
		enum vf_code rc = scan_add(s, ev, 1);
		return rc == VF_OK ? scan_anchor(s, ev, ev->data.scalar.anchor, 1, &ignored) : rc;
	}
	case YAML_ALIAS_EVENT: return scan_alias(s, ev);
	case YAML_SEQUENCE_START_EVENT: return scan_open(s, ev, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT: return scan_open(s, ev, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (s->depth > 0)
			scan_close(s);
		return VF_OK;
	default: return VF_OK;
	}
}

/* ---- the document, built from the same events ------------------------
 * A spec without anchors or aliases (nearly every one) is built into a
 * document here, node by node as libyaml's loader builds it (the same
 * nodes in the same order, with the events' marks, styles and tags): the
 * loader would read and parse the whole text a second time, about half of
 * reading a spec. One with an anchor or an alias anywhere is left to the
 * loader, which resolves them (parse_document). */

struct compose {
	yaml_document_t doc;
	bool started;  /* doc initialised */
	bool plain;    /* no anchor or alias so far: doc is being built */
	bool failed;   /* out of memory */
	unsigned documents; /* documents begun */
	unsigned depth;
	int open[MAX_DEPTH + 1]; /* the open collections' node ids */
	int key[MAX_DEPTH + 1];	 /* per open mapping, its key awaiting a value (0: none) */
	bool second_root;	 /* the second document has a node: where it starts */
	yaml_mark_t second_mark;
};

/* The loader's rule: no tag, or the non-specific "!", is the kind's
 * default (what the document calls give for NULL). */
static const yaml_char_t *node_tag(const yaml_char_t *tag)
{
	return tag && strcmp((const char *)tag, "!") != 0 ? tag : NULL;
}

static bool compose_start(struct compose *cp)
{
	if (!cp->started && !yaml_document_initialize(&cp->doc, NULL, NULL, NULL, 1, 1))
		return false;
	cp->started = true;
	return true;
}

/* Puts node id into the open collection, as an item or a key or a value. */
static bool compose_attach(struct compose *cp, int id)
{
	if (cp->depth == 0)
		return true; /* the root: the document's first node */
	int parent = cp->open[cp->depth - 1];
	if (cp->doc.nodes.start[parent - 1].type == YAML_SEQUENCE_NODE)
		return yaml_document_append_sequence_item(&cp->doc, parent, id);
	int *key = &cp->key[cp->depth - 1];
	if (!*key) {
		*key = id;
		return true;
	}
	int k = *key;
	*key = 0;
	return yaml_document_append_mapping_pair(&cp->doc, parent, k, id);
}

/* A node just added: its marks, its place, and for a collection its
 * opening. */
static bool compose_node(struct compose *cp, int id, const yaml_event_t *ev, bool collection)
{
	if (!id)
		return false;
	yaml_node_t *n = &cp->doc.nodes.start[id - 1];
	n->start_mark = ev->start_mark;
	n->end_mark = ev->end_mark;
	if (!compose_attach(cp, id))
		return false;
	if (collection) {
		cp->open[cp->depth] = id;
		cp->key[cp->depth] = 0;
		cp->depth++;
	}
	return true;
}

static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT: return ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT: return ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT: return ev->data.mapping_start.anchor;
	default: return NULL;
	}
}

static bool is_node_event(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT || ev->type == YAML_ALIAS_EVENT ||
	       ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT;
}

/* One event, after the limits passed it. */
static void compose_event(struct compose *cp, const yaml_event_t *ev)
{
	if (!cp->plain)
		return;
	if (ev->type == YAML_ALIAS_EVENT || event_anchor(ev)) {
		cp->plain = false; /* the loader's work */
		return;
	}
	if (ev->type == YAML_DOCUMENT_START_EVENT && ++cp->documents == 1) {
		cp->failed |= !compose_start(cp);
		return;
	}
	if (cp->documents != 1) {
		/* The first node of the second document is where it is refused;
		 * a third is not looked at, as the loader path does not. */
		if (cp->documents == 2 && !cp->second_root && is_node_event(ev)) {
			cp->second_root = true;
			cp->second_mark = ev->start_mark;
		}
		return;
	}
	int id;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		id = yaml_document_add_scalar(&cp->doc, node_tag(ev->data.scalar.tag),
					      ev->data.scalar.value, (int)ev->data.scalar.length,
					      ev->data.scalar.style);
		break;
	case YAML_SEQUENCE_START_EVENT:
		id = yaml_document_add_sequence(&cp->doc, node_tag(ev->data.sequence_start.tag),
						ev->data.sequence_start.style);
		break;
	case YAML_MAPPING_START_EVENT:
		id = yaml_document_add_mapping(&cp->doc, node_tag(ev->data.mapping_start.tag),
					       ev->data.mapping_start.style);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (cp->depth > 0) {
			cp->depth--;
			cp->doc.nodes.start[cp->open[cp->depth] - 1].end_mark = ev->end_mark;
		}
		return;
	default: return;
	}
	cp->failed |= !compose_node(cp, id, ev, ev->type != YAML_SCALAR_EVENT);
}

static void compose_free(struct compose *cp)
{
	if (cp->started)
		yaml_document_delete(&cp->doc);
	cp->started = false;
}

/* The limits over the whole stream, and the document built meanwhile
 * where it can be (cp->plain). */
static enum vf_code read_events(struct ctx *c, const unsigned char *buf, size_t len,
				struct compose *cp)
{
	struct scan *s = calloc(1, sizeof(*s));
	yaml_parser_t parser;
	if (!s || !yaml_parser_initialize(&parser)) {
		free(s);
		return spec_nomem(c);
	}
	s->c = c;
	yaml_parser_set_input_string(&parser, buf, len);
	enum vf_code rc = VF_OK;
	for (bool done = false; rc == VF_OK && !done;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = yaml_failure(c, &parser, buf, len);
			break;
		}
		rc = scan_event(s, &ev);
		if (rc == VF_OK)
			compose_event(cp, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	scan_forget_anchors(s);
	free(s);
	/* A stream without a document: the loader's empty document. */
	if (rc == VF_OK && cp->plain && !cp->failed)
		cp->failed = !compose_start(cp);
	if (rc == VF_OK && cp->failed)
		rc = spec_nomem(c);
	return rc;
}

/* The document built in read_events, then the check that nothing follows
 * it, in parse_document's order and words. */
static enum vf_code parse_composed(struct ctx *c, struct compose *cp)
{
	c->doc = &cp->doc;
	enum vf_code rc = spec_parse_root(c);
	c->doc = NULL;
	if (rc == VF_OK && cp->second_root)
		rc = spec_fail_line_col(c, cp->second_mark.line + 1, cp->second_mark.column + 1,
					"a second YAML document (expected a single document)");
	return rc;
}

/* One document only: a second one would be silently ignored otherwise. */
static enum vf_code parse_document(struct ctx *c, yaml_parser_t *parser,
				   const unsigned char *buf, size_t len)
{
	yaml_document_t doc, extra;
	if (!yaml_parser_load(parser, &doc))
		return yaml_failure(c, parser, buf, len);
	c->doc = &doc;
	enum vf_code rc = spec_parse_root(c);
	yaml_document_delete(&doc);
	c->doc = NULL;
	if (rc != VF_OK)
		return rc;
	if (!yaml_parser_load(parser, &extra))
		return yaml_failure(c, parser, buf, len);
	const yaml_node_t *root = yaml_document_get_root_node(&extra);
	if (root)
		rc = spec_fail_at(c, root, "a second YAML document (expected a single document)");
	yaml_document_delete(&extra);
	return rc;
}

enum vf_code vf_spec_parse(const char *name, const char *text, size_t len, struct vf_spec *spec,
			   struct vf_error *err)
{
	memset(spec, 0, sizeof(*spec));
	if (len > MAX_SPEC_SIZE)
		return too_large(err, name);
	const unsigned char *buf = len ? (const unsigned char *)text : (const unsigned char *)"";
	struct ctx c = {.path = name, .spec = spec, .err = err};
	struct compose cp = {.plain = true};
	enum vf_code rc = read_events(&c, buf, len, &cp);
	if (rc == VF_OK && !(spec->path = strdup(name)))
		rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK && cp.plain) {
		rc = parse_composed(&c, &cp);
	} else if (rc == VF_OK) {
		yaml_parser_t parser;
		if (yaml_parser_initialize(&parser)) {
			yaml_parser_set_input_string(&parser, buf, len);
			rc = parse_document(&c, &parser, buf, len);
			yaml_parser_delete(&parser);
		} else {
			rc = vf_fail(err, VF_E_NOMEM, "out of memory");
		}
	}
	compose_free(&cp);
	for (size_t i = 0; c.files && i < spec->n_generators; i++)
		spec_index_free(&c.files[i]);
	free(c.files);
	spec_index_free(&c.generators);
	if (rc != VF_OK)
		vf_spec_free(spec);
	else
		spec_index_names(spec);
	return rc;
}

enum vf_code vf_spec_load(const char *path, struct vf_spec *spec, struct vf_error *err)
{
	memset(spec, 0, sizeof(*spec));
	unsigned char *buf = NULL;
	size_t len = 0;
	enum vf_code rc = read_spec(path, &buf, &len, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_spec_parse(path, (const char *)buf, len, spec, err);
	free(buf);
	return rc;
}
