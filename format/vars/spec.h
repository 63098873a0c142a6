/* The vars spec (YAML, read with libyaml): admins, machines and the
 * generators that make their secrets. Layout and meaning: docs/spec.md.
 *
 *   admins:
 *     alice: age1...
 *   machines:
 *     test-vm:
 *       key: age1...                  # the machine's recipient (optional
 *                                     # until `varseal machine keygen`)
 *       generators: [test-vm-secrets]
 *       credentials:                  # for varinject: guest name -> file
 *         HOST-API-KEY: test-vm-secrets/api-key
 *   generators:
 *     test-vm-secrets:
 *       share: false
 *       dependencies: []
 *       prompts:
 *         note: {type: line, description: "..."}
 *       files:
 *         api-key: {secret: true, mode: "0400", owner: root, group: root}
 *       script: |
 *         openssl rand -base64 32 | tr -d '\n' > "$out/api-key"
 *       timeout: 300                  # seconds the script may run
 *
 * Instead of a script, values can come from built-in kinds computed in C:
 * per file (`kind: random|password|uuid` with their parameters) or per
 * generator (`kind: age-keypair|wireguard`, which define their own files).
 */
#ifndef VF_SPEC_H
#define VF_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

enum vf_kind {
	VF_KIND_SCRIPT = 0,  /* the generator's script writes the file */
	VF_KIND_RANDOM,	     /* random bytes: length, encoding */
	VF_KIND_PASSWORD,    /* length characters from alphabet, unbiased */
	VF_KIND_UUID,	     /* random (version 4) UUID */
	VF_KIND_AGE_KEYPAIR, /* generator kind: files "identity" (secret) and
				"recipient" (public) */
	VF_KIND_WIREGUARD,   /* generator kind: files "private" (secret) and
				"public" (public), base64 as wg(8) prints them */
};

/* Where a generator's values came from when no script or kind makes
 * them: imported from another store (vargen import clan, varseal
 * import-sops). vargen never makes such values; they are kept as
 * imported (docs/import.md). */
enum vf_imported {
	VF_IMPORTED_NONE = 0,
	VF_IMPORTED_CLAN, /* a clan repository's vars/ and sops/ trees */
	VF_IMPORTED_SOPS, /* one SOPS file */
};
/* "clan", "sops" ("" for none). */
const char *vf_imported_name(enum vf_imported imported);

enum vf_encoding { VF_ENC_BASE64 = 0, VF_ENC_BASE64URL, VF_ENC_HEX, VF_ENC_RAW };

enum vf_prompt_type { VF_PROMPT_HIDDEN = 0, VF_PROMPT_LINE, VF_PROMPT_MULTILINE };

/* Where something was written in the spec, for messages (1-based). */
struct vf_pos {
	unsigned line, column;
};

struct vf_spec_file {
	char *name;
	bool secret;	  /* default true */
	unsigned mode;	  /* default 0400 */
	char *owner;	  /* default "root" */
	char *group;	  /* default "root" */
	enum vf_kind kind; /* VF_KIND_SCRIPT unless a built-in kind is given */
	size_t length;	  /* random: bytes (default 32); password: characters
			     (default 32) */
	enum vf_encoding encoding; /* random: default base64 */
	char *alphabet;	  /* password: default A-Z a-z 0-9 */
	struct vf_pos pos;
};

struct vf_spec_prompt {
	char *name;
	enum vf_prompt_type type; /* default hidden */
	char *description;	  /* may be NULL */
	struct vf_pos pos;
};

struct vf_spec_generator {
	char *name;
	bool share;			/* default false */
	enum vf_kind kind;		/* VF_KIND_SCRIPT, or a key-pair kind */
	bool pq;			/* age-keypair: `pq: true`, a hybrid
					   post-quantum identity (AGE-SECRET-KEY-PQ-1)
					   and recipient (age1pq1) */
	char *script;			/* NULL unless given */
	enum vf_imported imported;	/* `imported:`: no script, no kinds */
	char **dependencies;		/* names of other generators */
	size_t n_dependencies;
	struct vf_spec_prompt *prompts;
	size_t n_prompts;
	struct vf_spec_file *files; /* for key-pair kinds, filled in by the
					   parser with the kind's files (their
					   attributes may be overridden) */
	size_t n_files;
	/* SHA-256 (hex) over everything that decides the values (kind and
	 * parameters, script, file names and secrecy, prompts, dependencies),
	 * not over install attributes (mode, owner, group): a change makes
	 * the stored values stale. */
	char hash[65];
	/* Script generators: the script's time limit in seconds (`timeout:`),
	 * 0 when the spec gives none (the tool's default applies). Not part
	 * of the hash: it does not decide the values. */
	unsigned timeout_seconds;
	struct vf_pos pos;
};

struct vf_spec_credential {
	char *name;	 /* the credential's name in the guest */
	char *generator; /* source: generator/file */
	char *file;
	struct vf_pos pos;
};

struct vf_spec_machine {
	char *name;
	char *key; /* recipient string, or NULL when not yet provisioned */
	bool key_post_quantum; /* key is a hybrid post-quantum recipient */
	char **generators;
	size_t n_generators;
	struct vf_spec_credential *credentials;
	size_t n_credentials;
	struct vf_pos pos;     /* of the machine's name */
	struct vf_pos key_pos; /* of the key's value, when present */
};

struct vf_spec_admin {
	char *name;
	char *recipient;
	bool post_quantum; /* a hybrid post-quantum (age1pq1...) recipient */
	struct vf_pos pos;
};

struct vf_spec {
	char *path;
	struct vf_spec_admin *admins;
	size_t n_admins;
	struct vf_spec_machine *machines;
	size_t n_machines;
	struct vf_spec_generator *generators;
	size_t n_generators;
	/* Element indices sorted by name, for vf_spec_machine and
	 * vf_spec_generator: a store of 10,000 machines looks each of them
	 * up several times. Built by the parser; NULL (out of memory, or a
	 * spec put together by hand) makes those look linearly. */
	size_t *machines_by_name, *generators_by_name;
};

/* Loads and validates path. Errors are VF_E_ARG with a message of the form
 * "FILE:LINE:COLUMN: what is wrong (what is expected)". Unknown keys are
 * errors. Checks: names are valid path components (non-empty, no '/', not
 * starting with '.'; credential names also without ':' or '=', which
 * systemd reads as separators), every referenced generator exists,
 * dependencies have no cycle, recipients parse (vf_recipient_parse),
 * built-in parameters are sane, a script generator has a script, a key-pair
 * generator has none, an imported generator has files and neither a script
 * nor kinds, `timeout` only on a script generator, credentials
 * name an existing generator/file the machine uses.
 * Limits, checked before libyaml builds the document: at most 8 MiB
 * ("FILE: spec is larger than 8 MiB ...", checked on the open descriptor
 * before reading) and at most 64 nested mappings and sequences
 * ("FILE:LINE:COLUMN: nesting deeper than 64 levels ..."), at most 256
 * anchors per document, and aliases expanding the spec to at most 2^20
 * nodes. path may be a symlink; it must lead to a regular file (a FIFO or
 * a device is refused without blocking or reading). */
enum vf_code vf_spec_load(const char *path, struct vf_spec *spec, struct vf_error *err);

/* The same from len bytes of text in memory (no terminating NUL needed),
 * with the same checks and limits; name stands for the file in messages
 * and becomes spec->path. vf_spec_load reads the file and calls this. */
enum vf_code vf_spec_parse(const char *name, const char *text, size_t len, struct vf_spec *spec,
			   struct vf_error *err);
void vf_spec_free(struct vf_spec *spec);

const struct vf_spec_generator *vf_spec_generator(const struct vf_spec *spec, const char *name);
const struct vf_spec_machine *vf_spec_machine(const struct vf_spec *spec, const char *name);
/* Why name cannot name a machine, generator or file (not a safe path
 * component: empty, longer than 255 bytes, a '/', a leading '.', a space
 * or a byte that is not printable ASCII), or NULL when it can. */
const char *vf_spec_name_problem(const char *name);

/* Generator g's file called name, or NULL. */
const struct vf_spec_file *vf_spec_file(const struct vf_spec_generator *g, const char *name);

/* The text of the spec file at spec->path with each edit's machine's
 * `key:` set to its recipient (the machines distinct): an existing value
 * replaced in place, or a `key:` line inserted under the machine's name,
 * everything else (comments, order) kept byte for byte. The edits are
 * made one after the other, each where the text so far has its machine.
 * Checked in memory before it is returned: the text parses
 * (vf_spec_parse) as spec with only those keys changed, else VF_E_ARG
 * saying so (nothing is written anywhere). */
struct vf_key_edit {
	const char *machine;
	const char *recipient;
};
enum vf_code vf_spec_edit_machine_keys(const struct vf_spec *spec, const struct vf_key_edit *edits,
				       size_t n, char **text, size_t *len,
				       struct vf_error *err);

/* Removes the temporaries a killed rewrite of the spec at path left
 * beside the file it leads to (".BASE.<12 hex>.tmp", regular, ours). */
void vf_spec_clean_temps(const char *path);

#endif
