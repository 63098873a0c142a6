/* What the parts of the spec reader share (private to vars/spec*.c):
 * the parse context, the limits, and the helpers for messages and nodes.
 *
 *   spec.c        the document into struct vf_spec: sections, generators,
 *                 files, prompts, machines, admins; messages; freeing
 *   spec_yaml.c   reading the file and libyaml, with the limits checked
 *                 on its events before the document is built
 *   spec_check.c  checks across the document: names, the name index,
 *                 a generator's sources, dependency cycles, credentials,
 *                 age's mixing of post-quantum and classic recipients
 *   spec_hash.c   the generator hash that decides when values are stale */
#ifndef VF_SPEC_INTERNAL_H
#define VF_SPEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "vars/spec.h"

/* Limits on what is handed to libyaml, whose scanner slows down with
 * every level of nesting on every token (80,000 nested flow sequences,
 * 160 KB, took over 10 s): varinject loads the spec as root on VM hosts.
 * Real specs are a few KB deep in 5 levels, but a post-quantum recipient
 * is 1,959 characters: 1,000 machines with hybrid keys make a 2 MB spec,
 * and 8 MiB leaves room for 4,000 (libyaml reads 8 MiB in well under a
 * second; the node limit below does not grow with it). */
#define MAX_SPEC_SIZE (8u << 20)
#define MAX_SPEC_SIZE_TEXT "8 MiB"
#define MAX_DEPTH 64
/* Aliases make libyaml's loader search its list of anchors, which grows
 * with each one (150,000 anchors in 1 MiB took 55 s), and every alias
 * stands for a whole node that the checks below walk again: without a
 * bound, a spec of a few KB can stand for billions of nodes. No more nodes
 * than 1 MiB of YAML could hold without aliases: a spec has a few per
 * machine and file, whatever the length of its keys. */
#define MAX_ANCHORS 256
#define MAX_NODES 1048576
#define STR_(x) #x
#define STR(x) STR_(x)
#define MAX_NAME 255
#define SHOW_MAX 64   /* bytes of user text quoted in a message */
#define MAX_FIELDS 9  /* keys of the largest fixed-key mapping (a generator) */

#define RANDOM_DEFAULT 32
#define RANDOM_MAX 65536
#define PASSWORD_DEFAULT 32
#define PASSWORD_MAX 4096
#define TIMEOUT_MAX 86400u /* a day: longer is a hang, not a slow script */
#define DEFAULT_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* Names sorted for lookups and for finding repeats; at is the element's
 * position in its array, which is also its pair's or item's in YAML. */
struct entry {
	const char *name;
	size_t at;
};

struct index {
	struct entry *e;
	size_t n;
};

struct ctx {
	const char *path;
	yaml_document_t *doc;
	struct vf_spec *spec;
	struct vf_error *err;
	struct index generators; /* of spec->generators */
	struct index *files;	 /* per generator, of its files */
};

/* Characters refused beyond those of a path component: chown(1) reads
 * "user:group"; systemd's LoadCredential= and SetCredential= end the name
 * at ':', and it splits "io.systemd.credential:NAME=VALUE" at the first
 * '=', so "DB=HOST" would reach the guest as credential DB holding
 * "HOST=" and the value. */
#define ACCOUNT_REFUSED ":"
#define CREDENTIAL_REFUSED ":="

/* User text quoted in a message: clipped, and anything but printable ASCII
 * shown as '?', so that a message stays one harmless line. Returned by
 * value so that it can be used inline as an argument. */
struct shown {
	char s[SHOW_MAX + 4];
};

/* ---- messages (spec.c) */
struct shown spec_show_n(const char *s, size_t len);
struct shown spec_show(const char *s);
/* An error at a line and column (1-based). */
__attribute__((format(printf, 4, 5))) enum vf_code
spec_fail_line_col(struct ctx *c, size_t line, size_t column, const char *fmt, ...);
/* An error at a node (its first character). */
__attribute__((format(printf, 3, 4))) enum vf_code
spec_fail_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...);
/* An error at a position already recorded in the spec. */
__attribute__((format(printf, 3, 4))) enum vf_code
spec_fail_pos(struct ctx *c, struct vf_pos p, const char *fmt, ...);
enum vf_code spec_nomem(struct ctx *c);

/* ---- nodes and the document (spec.c) */
const char *spec_text(const yaml_node_t *n);
bool spec_is_null(const yaml_node_t *n);
const char *spec_type_name(const yaml_node_t *n);
enum vf_code spec_get_string(struct ctx *c, const yaml_node_t *n, const char *what, char **out);
size_t spec_find_generator(const struct ctx *c, const char *name);
const char *spec_kind_name(enum vf_kind kind);
extern const char *const spec_encodings[];
extern const char *const spec_prompt_types[];
/* The document's root mapping into c->spec. */
enum vf_code spec_parse_root(struct ctx *c);

/* ---- checks (spec_check.c) */
const char *spec_name_problem(const char *s, size_t len, const char *refused);
enum vf_code spec_check_name(struct ctx *c, const yaml_node_t *n, const char *what,
			     bool credential);
enum vf_code spec_index_build(struct ctx *c, const void *base, size_t n, size_t stride,
			      struct index *ix);
size_t spec_index_find(const struct index *ix, const char *name);
size_t spec_index_repeat(const struct index *ix);
void spec_index_free(struct index *ix);
/* Sorts the spec's machines and generators by name for the lookups
 * (spec.c; on failure they stay linear). */
void spec_index_names(struct vf_spec *spec);
enum vf_code spec_check_sources(struct ctx *c, const char *where, struct vf_spec_generator *g);
enum vf_code spec_check_cycles(struct ctx *c);
enum vf_code spec_credential_target(struct ctx *c, const struct vf_spec_machine *m,
				    const struct index *uses, const yaml_node_t *val,
				    struct vf_spec_credential *cr);
/* age's mixing rule over the admins, the machines' keys and the shared
 * generators (spec.h, vf_spec_load). */
enum vf_code spec_check_mixing(struct ctx *c);

/* ---- the generator hash (spec_hash.c) */
enum vf_code spec_hash_generator(struct ctx *c, struct vf_spec_generator *g);

#endif
