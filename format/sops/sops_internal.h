/* The inside of the SOPS reader: the document tree the three parsers
 * (YAML, JSON, dotenv) build, and what the metadata pass leaves for the
 * decryption pass. Not for callers outside format/sops/. */
#ifndef VF_SOPS_INTERNAL_H
#define VF_SOPS_INTERNAL_H

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sops/sops.h"

/* ---- memory: one arena for the whole (public) document ---- */

struct sops_block;
struct sops_arena {
	struct sops_block *head;
};
void *sops_alloc(struct sops_arena *a, size_t len); /* zeroed; NULL when out of memory */
char *sops_strndup(struct sops_arena *a, const char *s, size_t len);
void sops_arena_free(struct sops_arena *a);

/* ---- the document tree ----
 * Scalars keep the text they were written with (unescaped), and what it
 * means in the file's own format: YAML resolves plain scalars as yaml.v3
 * does for sops (ints, floats, bools, nulls), JSON has its own types, dotenv
 * has strings only. */
enum node_kind {
	NODE_NULL,
	NODE_STRING,
	NODE_INT,
	NODE_FLOAT,
	NODE_BOOL,
	NODE_MAP,
	NODE_SEQ,
};

struct node;
struct node_entry {
	const char *key; /* NUL-free, NUL-terminated */
	size_t key_len;
	unsigned line, column; /* of the key */
	struct node *value;
};

struct node {
	enum node_kind kind;
	unsigned line, column;
	const char *text; /* scalars: NUL-terminated, may hold NULs (len counts) */
	size_t len;
	union {
		int64_t i;
		double f;
		bool b;
	} v;
	/* NODE_MAP: entries; NODE_SEQ: items. Heap arrays (grown as parsed). */
	struct node_entry *entries;
	struct node **items;
	size_t n, cap;
};

/* One parse: the document and what bounds it. */
struct sops_parser {
	const char *name;
	struct vf_error *err;
	struct sops_arena *mem;
	size_t nodes; /* made so far (VF_SOPS_MAX_NODES) */
};

struct node *node_new(struct sops_parser *p, enum node_kind kind, unsigned line, unsigned column);
/* Appends to a NODE_MAP (key copied) or a NODE_SEQ. */
enum vf_code node_map_add(struct sops_parser *p, struct node *map, const char *key,
			  size_t key_len, unsigned line, unsigned column, struct node *value);
enum vf_code node_seq_add(struct sops_parser *p, struct node *seq, struct node *item);
/* The value of key in a NODE_MAP, or NULL. */
struct node *node_get(const struct node *map, const char *key);
/* Refuses a mapping that has a key twice, anywhere in the tree (sops keeps
 * both and an import could not tell which is meant). */
enum vf_code node_check_unique(struct sops_parser *p, const struct node *root);
/* Releases the heap arrays of the tree (the nodes are in the arena). */
void node_free_arrays(struct node *n);

/* Errors of a parse: "name:line:column: what", or "name: what" when line
 * is 0. */
enum vf_code sops_fail_at(struct sops_parser *p, unsigned line, unsigned column, const char *fmt,
			  ...) __attribute__((format(printf, 4, 5)));
enum vf_code sops_nomem(struct sops_parser *p);

/* The parsers: each leaves the document's root mapping in *root. */
enum vf_code sops_parse_yaml(struct sops_parser *p, const uint8_t *data, size_t len,
			     struct node **root);
enum vf_code sops_parse_json(struct sops_parser *p, const uint8_t *data, size_t len,
			     struct node **root);
/* dotenv: the data entries, and the sops_* keys unflattened into a "sops"
 * entry as sops's UnflattenMetadata does. */
enum vf_code sops_parse_dotenv(struct sops_parser *p, const uint8_t *data, size_t len,
			       struct node **root);

/* ---- scalars as Go reads and prints them (value.c) ---- */

/* yaml.v3's resolution of a plain scalar without a tag, into n. VF_E_ARG
 * (nothing recorded in an error) for an integer sops cannot hold (beyond
 * int64) and for the merge key "<<"; VF_E_NOMEM. */
enum vf_code yaml_resolve_plain(const char *s, size_t len, struct node *n);
/* strconv.Atoi, ParseFloat and ParseBool, as sops uses them on decrypted
 * values (false: not of that form). */
bool go_parse_int(const char *s, size_t len, int64_t *out);
bool go_parse_float(const char *s, size_t len, double *out);
bool go_parse_bool(const char *s, size_t len, bool *out);

/* How a float is printed. FLOAT_TEXT_MAX holds any of them with its NUL:
 * 'f' spells 1e308 with 309 digits and 5e-324 with 327 characters. */
enum float_style {
	FLOAT_MAC,    /* strconv.FormatFloat(f, 'f', -1, 64): sops's ToBytes, the MAC */
	FLOAT_YAML,   /* yaml.v3: FormatFloat(f, 'g', -1, 64), .inf/-.inf/.nan */
	FLOAT_JSON,   /* encoding/json: 'f', or 'e' below 1e-6 and from 1e21 */
	FLOAT_DOTENV, /* sops's dotenv writer: as the MAC */
};
#define FLOAT_TEXT_MAX 400
/* Writes v in style to out; false where the style has no form for it
 * (JSON: NaN and infinities). */
bool go_format_float(double v, enum float_style style, char out[FLOAT_TEXT_MAX]);

/* RFC 3339 as Go's time.Parse(time.RFC3339, s) then Format(time.RFC3339)
 * rewrites it: fractional seconds dropped, a zero offset as "Z". out needs
 * 26 bytes. false when s is not RFC 3339; *fraction tells whether there was
 * a fractional part. */
bool rfc3339_normalize(const char *s, size_t len, char out[26], bool *fraction);

/* ENC[] parsing into a caller's buffer for the ciphertext (cap bytes). */
enum vf_code sops_enc_parse_into(const char *s, size_t len, struct vf_sops_enc *e,
				 uint8_t *buf, size_t cap, struct vf_error *err);

/* ---- what parsing leaves for decryption ---- */

struct sops_stanza {
	const char *recipient;
	const char *enc; /* the armored age file holding the data key */
	size_t enc_len;
};

struct sops_leaf_x {
	const struct node *value;
	bool empty;		/* an encrypted value stored as "": no ciphertext */
	struct vf_sops_enc enc; /* when encrypted and not empty; data in the arena */
	const char *aad;	/* keys joined with ':' plus ':' */
	size_t aad_len;
};

struct vf_sops_doc {
	struct sops_arena mem;
	struct node *root;
	struct vf_sops_leaf *leaves;
	struct sops_leaf_x *x; /* one per leaf */
	struct sops_stanza *age;
	const char **age_recipients;
	size_t n_age;
	bool has_mac;
	struct vf_sops_enc mac;
	char mac_aad[26]; /* lastmodified as sops re-formats it (the MAC's AAD) */
	char key_type_names[160];
};

#endif
