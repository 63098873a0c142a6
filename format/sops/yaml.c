/* SOPS YAML files through libyaml's event parser, into the document tree.
 *
 * sops reads YAML with yaml.v3 and writes it back with its own emitter, so
 * a file it made holds one document, a mapping at the root, string keys, no
 * anchors, aliases or tags. Anything else is refused here with its place
 * rather than guessed at: a second document, an alias, a tag other than
 * !!str, a key that is not a scalar string. Limits (depth, nodes) stop the
 * parse at the first event past them. Comments never reach the events:
 * sops keeps them out of the MAC, and they are no values. */
#include "sops/sops_internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define TAG_STR "tag:yaml.org,2002:str"

struct ybuild {
	struct sops_parser *p;
	struct node *stack[VF_SOPS_MAX_DEPTH + 1];
	unsigned depth;
	/* A mapping's key waiting for its value, per open mapping. */
	bool have_key[VF_SOPS_MAX_DEPTH + 1];
	const char *key[VF_SOPS_MAX_DEPTH + 1];
	size_t key_len[VF_SOPS_MAX_DEPTH + 1];
	unsigned key_line[VF_SOPS_MAX_DEPTH + 1], key_column[VF_SOPS_MAX_DEPTH + 1];
	unsigned documents;
	struct node *root;
};

static unsigned line_of(const yaml_event_t *ev)
{
	return (unsigned)ev->start_mark.line + 1;
}

static unsigned column_of(const yaml_event_t *ev)
{
	return (unsigned)ev->start_mark.column + 1;
}

/* libyaml's reader errors carry a byte offset rather than a mark. */
static void offset_to_place(const uint8_t *buf, size_t len, size_t offset, unsigned *line,
			    unsigned *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if ((buf[i] & 0xc0) != 0x80) {
			(*column)++;
		}
	}
}

static enum vf_code syntax_error(struct sops_parser *p, const yaml_parser_t *yp,
				 const uint8_t *buf, size_t len)
{
	if (yp->error == YAML_MEMORY_ERROR)
		return sops_nomem(p);
	unsigned line = (unsigned)yp->problem_mark.line + 1;
	unsigned column = (unsigned)yp->problem_mark.column + 1;
	if (yp->error == YAML_READER_ERROR)
		offset_to_place(buf, len, yp->problem_offset, &line, &column);
	return sops_fail_at(p, line, column, "YAML syntax error: %s%s%s (expected valid YAML)",
			    yp->problem ? yp->problem : "unknown problem", yp->context ? ", " : "",
			    yp->context ? yp->context : "");
}

/* Places a finished value: the root, an item of the open list, or the
 * value of the open mapping's pending key. */
static enum vf_code attach(struct ybuild *b, struct node *value)
{
	if (b->depth == 0) {
		b->root = value;
		return VF_OK;
	}
	struct node *top = b->stack[b->depth];
	if (top->kind == NODE_SEQ)
		return node_seq_add(b->p, top, value);
	unsigned d = b->depth;
	b->have_key[d] = false;
	return node_map_add(b->p, top, b->key[d], b->key_len[d], b->key_line[d], b->key_column[d],
			    value);
}

static bool expecting_key(const struct ybuild *b)
{
	return b->depth > 0 && b->stack[b->depth]->kind == NODE_MAP && !b->have_key[b->depth];
}

static enum vf_code scalar_node(struct ybuild *b, const yaml_event_t *ev, struct node **out)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	if (tag && strcmp(tag, TAG_STR) != 0 && strcmp(tag, "!") != 0)
		return sops_fail_at(b->p, line_of(ev), column_of(ev),
				    "YAML tag %s (expected no tag: sops writes none)", tag);
	struct node *n = node_new(b->p, NODE_STRING, line_of(ev), column_of(ev));
	if (!n)
		return b->p->err->code;
	if (!(n->text = sops_strndup(b->p->mem, text, len)))
		return sops_nomem(b->p);
	n->len = len;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
	enum vf_code rc = plain ? yaml_resolve_plain(n->text, len, n) : VF_OK;
	if (rc == VF_E_NOMEM)
		return sops_nomem(b->p);
	if (rc != VF_OK)
		return sops_fail_at(b->p, n->line, n->column,
				    "plain scalar %.40s is an integer beyond 64 bits or a merge key "
				    "(sops cannot read it)", n->text);
	*out = n;
	return VF_OK;
}

static enum vf_code on_scalar(struct ybuild *b, const yaml_event_t *ev)
{
	struct node *n = NULL;
	enum vf_code rc = scalar_node(b, ev, &n);
	if (rc != VF_OK)
		return rc;
	if (!expecting_key(b))
		return attach(b, n);
	/* sops refuses keys that yaml.v3 reads as anything but a string. */
	if (n->kind != NODE_STRING)
		return sops_fail_at(b->p, n->line, n->column,
				    "key %.40s is not a string (sops takes string keys only; "
				    "quote it)", n->text);
	unsigned d = b->depth;
	b->have_key[d] = true;
	b->key[d] = n->text;
	b->key_len[d] = n->len;
	b->key_line[d] = n->line;
	b->key_column[d] = n->column;
	return VF_OK;
}

static enum vf_code on_open(struct ybuild *b, const yaml_event_t *ev, enum node_kind kind,
			    const yaml_char_t *tag)
{
	if (expecting_key(b))
		return sops_fail_at(b->p, line_of(ev), column_of(ev),
				    "a %s as a mapping key (expected a string key)",
				    kind == NODE_MAP ? "mapping" : "list");
	if (tag)
		return sops_fail_at(b->p, line_of(ev), column_of(ev),
				    "YAML tag %s (expected no tag: sops writes none)",
				    (const char *)tag);
	if (b->depth == VF_SOPS_MAX_DEPTH)
		return sops_fail_at(b->p, line_of(ev), column_of(ev),
				    "nesting deeper than %u levels (expected at most %u nested "
				    "mappings and lists)", VF_SOPS_MAX_DEPTH, VF_SOPS_MAX_DEPTH);
	struct node *n = node_new(b->p, kind, line_of(ev), column_of(ev));
	if (!n)
		return b->p->err->code;
	enum vf_code rc = attach(b, n);
	if (rc != VF_OK)
		return rc;
	b->depth++;
	b->stack[b->depth] = n;
	b->have_key[b->depth] = false;
	return VF_OK;
}

static enum vf_code on_event(struct ybuild *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return sops_fail_at(b->p, line_of(ev), column_of(ev),
					    "a second YAML document (expected one: files of "
					    "several documents are not supported)");
		return VF_OK;
	case YAML_SCALAR_EVENT: return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_open(b, ev, NODE_SEQ, ev->data.sequence_start.tag);
	case YAML_MAPPING_START_EVENT:
		return on_open(b, ev, NODE_MAP, ev->data.mapping_start.tag);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return VF_OK;
	case YAML_ALIAS_EVENT:
		return sops_fail_at(b->p, line_of(ev), column_of(ev),
				    "YAML alias *%s (expected none: sops writes no aliases)",
				    (const char *)ev->data.alias.anchor);
	default: return VF_OK;
	}
}

enum vf_code sops_parse_yaml(struct sops_parser *p, const uint8_t *data, size_t len,
			     struct node **root)
{
	struct ybuild *b = calloc(1, sizeof(*b));
	yaml_parser_t yp;
	if (!b || !yaml_parser_initialize(&yp)) {
		free(b);
		return sops_nomem(p);
	}
	b->p = p;
	yaml_parser_set_input_string(&yp, data, len);
	enum vf_code rc = VF_OK;
	for (bool done = false; rc == VF_OK && !done;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&yp, &ev)) {
			rc = syntax_error(p, &yp, data, len);
			break;
		}
		rc = on_event(b, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&yp);
	if (rc == VF_OK && (!b->root || b->root->kind != NODE_MAP))
		rc = sops_fail_at(p, b->root ? b->root->line : 0, b->root ? b->root->column : 0,
				  "no mapping at the top of the YAML document (expected a sops "
				  "file: keys and a sops: entry)");
	/* The tree is the caller's to release even on failure. */
	*root = b->root;
	free(b);
	return rc;
}
