/* The vm.create body: the user's VmConfig (the JSON ch-remote takes),
 * read with libyaml (JSON is YAML's flow syntax), written back as JSON with
 * platform.oem_strings merged in: the file's own strings first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "io.h"
#include "secmem.h"
#include "varinject.h"

struct out {
	struct vf_buf real, shown; /* the body, and its --dry-run twin */
	bool ok;
};

static void put2(struct out *o, const char *s, size_t n, const char *shown, size_t shown_n)
{
	o->ok &= vf_buf_append(&o->real, s, n, NULL) == VF_OK;
	o->ok &= vf_buf_append(&o->shown, shown, shown_n, NULL) == VF_OK;
}

static void put(struct out *o, const char *s)
{
	put2(o, s, strlen(s), s, strlen(s));
}

/* A JSON string; bytes >= 0x80 pass through (the text is UTF-8). */
static void json_string(struct vf_buf *b, const uint8_t *s, size_t n, bool *ok)
{
	*ok &= vf_buf_append(b, "\"", 1, NULL) == VF_OK;
	for (size_t i = 0; i < n; i++) {
		char esc[8];
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			*ok &= vf_buf_append(b, esc, 2, NULL) == VF_OK;
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
			*ok &= vf_buf_append(b, esc, 6, NULL) == VF_OK;
		} else {
			*ok &= vf_buf_append(b, &s[i], 1, NULL) == VF_OK;
		}
	}
	*ok &= vf_buf_append(b, "\"", 1, NULL) == VF_OK;
}

static void put_string(struct out *o, const uint8_t *s, size_t n)
{
	json_string(&o->real, s, n, &o->ok);
	json_string(&o->shown, s, n, &o->ok);
}

/* Plain scalars that JSON writes bare: numbers, true, false, null. */
static bool bare(const yaml_node_t *n)
{
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = (const char *)n->data.scalar.value;
	if (!strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "null"))
		return true;
	char *end;
	strtod(s, &end);
	return *s && !*end;
}

static void emit(struct out *o, yaml_document_t *doc, yaml_node_t *n, int depth);

static void emit_pairs(struct out *o, yaml_document_t *doc, yaml_node_t *n, int depth,
		       const char *skip, bool *first)
{
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (skip && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, skip))
			continue;
		if (!*first)
			put(o, ",");
		*first = false;
		put_string(o, k->data.scalar.value, k->data.scalar.length);
		put(o, ":");
		emit(o, doc, yaml_document_get_node(doc, p->value), depth + 1);
	}
}

static void emit(struct out *o, yaml_document_t *doc, yaml_node_t *n, int depth)
{
	if (depth > 64) {
		o->ok = false;
		return;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		if (bare(n))
			put(o, (const char *)n->data.scalar.value);
		else
			put_string(o, n->data.scalar.value, n->data.scalar.length);
		break;
	case YAML_SEQUENCE_NODE:
		put(o, "[");
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
		     i++) {
			if (i != n->data.sequence.items.start)
				put(o, ",");
			emit(o, doc, yaml_document_get_node(doc, *i), depth + 1);
		}
		put(o, "]");
		break;
	case YAML_MAPPING_NODE: {
		bool first = true;
		put(o, "{");
		emit_pairs(o, doc, n, depth, NULL, &first);
		put(o, "}");
		break;
	}
	default:
		o->ok = false;
	}
}

static yaml_node_t *lookup(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static void emit_oem_strings(struct out *o, yaml_document_t *doc, yaml_node_t *existing,
			     const struct vf_value *strings, const bool *secret, size_t n)
{
	bool first = true;
	put(o, "\"oem_strings\":[");
	if (existing && existing->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = existing->data.sequence.items.start;
		     i < existing->data.sequence.items.top; i++, first = false) {
			if (!first)
				put(o, ",");
			emit(o, doc, yaml_document_get_node(doc, *i), 1);
		}
	}
	for (size_t i = 0; i < n; i++, first = false) {
		if (!first)
			put(o, ",");
		json_string(&o->real, strings[i].data, strings[i].len, &o->ok);
		if (secret[i]) {
			char placeholder[64];
			vi_secret_placeholder(strings[i].len, placeholder, sizeof(placeholder));
			json_string(&o->shown, (const uint8_t *)placeholder, strlen(placeholder),
				    &o->ok);
		} else {
			json_string(&o->shown, strings[i].data, strings[i].len, &o->ok);
		}
	}
	put(o, "]");
}

static int load(const char *path, yaml_document_t *doc)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return vi_error("--vm-config %s: cannot open", path);
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int ok = yaml_parser_load(&parser, doc);
	int status = 0;
	if (!ok)
		status = vi_error("%s:%zu:%zu: not valid JSON: %s", path, parser.problem_mark.line + 1,
				  parser.problem_mark.column + 1,
				  parser.problem ? parser.problem : "syntax error");
	else if (!yaml_document_get_root_node(doc) ||
		 yaml_document_get_root_node(doc)->type != YAML_MAPPING_NODE) {
		yaml_document_delete(doc);
		status = vi_error("%s: a VmConfig is a JSON object", path);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return status;
}

int vi_vm_config(const char *path, const struct vf_value *strings, const bool *secret, size_t n,
		 struct vf_value *body, char **shown)
{
	yaml_document_t doc;
	int status = load(path, &doc);
	if (status)
		return status;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *platform = lookup(&doc, root, "platform");
	if (platform && platform->type != YAML_MAPPING_NODE) {
		yaml_document_delete(&doc);
		return vi_error("%s: \"platform\" must be an object", path);
	}
	struct out o = {.ok = true};
	vf_buf_init(&o.real);
	vf_buf_init(&o.shown);
	bool first = true;
	put(&o, "{");
	emit_pairs(&o, &doc, root, 0, "platform", &first);
	put(&o, first ? "\"platform\":{" : ",\"platform\":{");
	bool pfirst = true;
	if (platform)
		emit_pairs(&o, &doc, platform, 1, "oem_strings", &pfirst);
	if (!pfirst)
		put(&o, ",");
	emit_oem_strings(&o, &doc, platform ? lookup(&doc, platform, "oem_strings") : NULL, strings,
			 secret, n);
	put(&o, "}}");
	yaml_document_delete(&doc);
	struct vf_error err;
	if (!o.ok)
		status = vi_error("%s: cannot rewrite the VmConfig", path);
	else if (vf_value_set(body, o.real.data, o.real.len, &err) != VF_OK)
		status = vi_fail(&err);
	else if (!(*shown = strdup((char *)o.shown.data)))
		status = vi_error("out of memory");
	vf_buf_free(&o.real);
	vf_buf_free(&o.shown);
	return status;
}
