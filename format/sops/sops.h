/* SOPS files (getsops/sops) read without sops: what an importer needs.
 *
 * vf_sops_parse reads a file in any of its four forms (YAML, JSON, dotenv,
 * binary) and gives its metadata and the list of its values ("leaves") in
 * document order, without any key: enough to plan an import. vf_sops_decrypt
 * then opens the data key from one of the file's age stanzas with the
 * caller's identities (through the age code of this project), decrypts
 * every value into guarded memory, and checks the file's MAC.
 *
 * What is read (docs: ../shared/reference/sops-format.md):
 * - values `ENC[AES256_GCM,data:B64,iv:B64,tag:B64,type:T]`, AES-256-GCM
 *   with a 32-byte IV, AAD the path of keys joined with ':' plus ':' (a
 *   list item has its parent's path); an empty string is stored as "";
 *   nulls are no values at all;
 * - which values are encrypted: unencrypted_suffix (default _unencrypted),
 *   encrypted_suffix, unencrypted_regex, encrypted_regex;
 * - the MAC: SHA-512 over the values in document order (only the encrypted
 *   ones, after sha256("sops"), with mac_only_encrypted), 128 upper-case
 *   hex digits stored encrypted with AAD the lastmodified time.
 *
 * What is refused, each with its own one-line reason naming the file: Shamir
 * key groups, files whose data key is sealed to no age recipient (pgp, kms,
 * ...), the comment-regex rules (libyaml does not show comments), several
 * YAML documents, YAML aliases and tags, duplicate keys, keys that are not
 * strings, and values past the limits below. Comments are no values: sops
 * leaves them out of the MAC, and they are skipped.
 *
 * Layering: sops sits on age and base; vars never includes sops, and sops
 * never includes vars. */
#ifndef VF_SOPS_H
#define VF_SOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/io.h"
#include "base/secmem.h"
#include "age/keys.h"

/* Limits against hostile files (sops files are small: a clan store's are a
 * few KiB each). */
#define VF_SOPS_MAX_FILE (16u << 20)	/* bytes of one file */
#define VF_SOPS_MAX_DEPTH 64		/* nested mappings and lists */
#define VF_SOPS_MAX_NODES (1u << 18)	/* mappings, lists, keys and scalars */
#define VF_SOPS_MAX_LEAVES 65536	/* values of one file */
#define VF_SOPS_MAX_KEYS 256		/* key stanzas (age, pgp, ...) of one file */

#define VF_SOPS_DATA_KEY_LEN 32
#define VF_SOPS_IV_LEN 32
#define VF_SOPS_TAG_LEN 16

enum vf_sops_format {
	VF_SOPS_AUTO,	/* from the file name, as sops decides (vf_sops_format_for_name) */
	VF_SOPS_YAML,
	VF_SOPS_JSON,
	VF_SOPS_DOTENV,
	VF_SOPS_BINARY, /* JSON {"data": "ENC[...]", "sops": {...}}: the raw file bytes */
	VF_SOPS_INI,	/* sops's INI form: named so that it can be refused clearly */
};

/* sops's rule: .yaml and .yml are YAML, .json JSON, .env dotenv, .ini INI
 * (which this reader refuses), anything else binary. */
enum vf_sops_format vf_sops_format_for_name(const char *name);
const char *vf_sops_format_name(enum vf_sops_format format); /* "yaml", ... */

/* The type of a value, as the `type` of its ENC[] (a value left in clear has
 * the type sops gives it when it reads the file: a YAML plain scalar may be
 * an int, float or bool, a JSON number is always a float). */
enum vf_sops_type {
	VF_SOPS_STR,
	VF_SOPS_INT,
	VF_SOPS_FLOAT,
	VF_SOPS_BOOL,
	VF_SOPS_BYTES,
	VF_SOPS_TIME,
};
const char *vf_sops_type_name(enum vf_sops_type type); /* "str", "int", ... */

/* One step of a value's path: a mapping key, or (key NULL) item `index` of
 * a list. */
struct vf_sops_part {
	const char *key;
	size_t index;
};

struct vf_sops_leaf {
	const struct vf_sops_part *parts;
	size_t n_parts;
	enum vf_sops_type type;
	bool encrypted; /* false: left in clear by the file's rules (its MAC still covers it) */
	unsigned line, column; /* where the value is, 1-based (0: not known) */
};

/* Writes the path as errors show it: keys joined with ':' and a trailing
 * ':', a list item as "[i]" after its list ("complex:array[2]:"). Returns
 * the length it needed (as snprintf); buf is always NUL-terminated. */
size_t vf_sops_leaf_path(const struct vf_sops_leaf *leaf, char *buf, size_t cap);

/* Kinds of keys that can hold a file's data key. */
enum {
	VF_SOPS_KEY_AGE = 1u << 0,
	VF_SOPS_KEY_PGP = 1u << 1,
	VF_SOPS_KEY_KMS = 1u << 2,
	VF_SOPS_KEY_GCP_KMS = 1u << 3,
	VF_SOPS_KEY_AZURE_KV = 1u << 4,
	VF_SOPS_KEY_HC_VAULT = 1u << 5,
	VF_SOPS_KEY_OTHER = 1u << 6, /* a kind this reader does not know */
};

struct vf_sops_meta {
	const char *version;	  /* "3.9.2"; "" when absent */
	const char *lastmodified; /* as written ("2025-06-03T22:56:08Z") */
	bool mac_only_encrypted;
	const char *const *age_recipients; /* "age1..." of each age stanza, in order */
	size_t n_age;
	unsigned key_types;	   /* VF_SOPS_KEY_* present (with at least one key) */
	const char *key_type_names; /* those present, "age, pgp" ("" when none) */
	size_t n_key_groups;	   /* 1 for the usual flat keys; more is Shamir */
	bool shamir;
	unsigned shamir_threshold; /* 0 when absent */
};

struct vf_sops_doc; /* the parsed document (sops_internal.h) */

struct vf_sops_file {
	const char *name; /* as given, for messages */
	enum vf_sops_format format;
	struct vf_sops_meta meta;
	const struct vf_sops_leaf *leaves; /* in document order, the MAC's order */
	size_t n_leaves;
	struct vf_sops_doc *doc;
};

/* Parses a whole file (len bytes at data, not necessarily NUL-terminated)
 * named name; format VF_SOPS_AUTO decides from the name. Errors are one line
 * "name:line:column: reason" (or "name: reason" where there is no place).
 * Nothing is decrypted: every ENC[] is checked for form only. */
enum vf_code vf_sops_parse(const char *name, const uint8_t *data, size_t len,
			   enum vf_sops_format format, struct vf_sops_file **out,
			   struct vf_error *err);

/* vf_sops_parse of the regular file path (beneath dirfd or AT_FDCWD), read
 * whole with vf_read_file, at most VF_SOPS_MAX_FILE bytes. */
enum vf_code vf_sops_read(int dirfd, const char *path, enum vf_follow follow,
			  enum vf_sops_format format, struct vf_sops_file **out,
			  struct vf_error *err);

void vf_sops_free(struct vf_sops_file *f);

/* The decrypted values of a file: values[i] is the text of f->leaves[i],
 * exactly as `sops -d` prints it for the file's format (an int as its
 * digits, a float as Go prints it, a bool as true/false, a binary file's
 * bytes as they are), in guarded memory, NUL-terminated (not counted). */
struct vf_sops_value {
	const uint8_t *data;
	size_t len;
};

#define VF_SOPS_IGNORE_MAC 1u /* a MAC that does not verify is no error */

struct vf_sops_plain {
	struct vf_sops_value *values;
	size_t n;
	/* False only when VF_SOPS_IGNORE_MAC let a bad MAC through; then
	 * mac_warning says what was wrong ("name: the MAC does not match ..."),
	 * for the tool to print as a warning. */
	bool mac_verified;
	char mac_warning[512];
	/* The guarded block the values live in (vf_secure_alloc). */
	uint8_t *mem;
	size_t mem_cap, mem_used;
};

/* Opens the data key from the file's age stanzas with ids: VF_E_NO_MATCH
 * when none of them opens any stanza (a tool exits 3); refuses Shamir key
 * groups and files without an age recipient, naming their key types. key
 * must be VF_SOPS_DATA_KEY_LEN bytes of guarded memory. */
enum vf_code vf_sops_data_key(const struct vf_sops_file *f, const struct vf_identities *ids,
			      uint8_t key[VF_SOPS_DATA_KEY_LEN], struct vf_error *err);

/* Decrypts every value with key and checks the MAC (VF_E_AUTH when a value
 * or the MAC does not decrypt, or the MAC does not match, unless flags has
 * VF_SOPS_IGNORE_MAC for the MAC). out is set up here; free it with
 * vf_sops_plain_free, also after a failure. */
enum vf_code vf_sops_decrypt_with_key(const struct vf_sops_file *f,
				      const uint8_t key[VF_SOPS_DATA_KEY_LEN], unsigned flags,
				      struct vf_sops_plain *out, struct vf_error *err);

/* vf_sops_data_key, then vf_sops_decrypt_with_key. */
enum vf_code vf_sops_decrypt(const struct vf_sops_file *f, const struct vf_identities *ids,
			     unsigned flags, struct vf_sops_plain *out, struct vf_error *err);

/* Wipes and releases every value. */
void vf_sops_plain_free(struct vf_sops_plain *p);

/* ---- one ENC[] value, for tests and tools that check single values ---- */

enum vf_sops_enc_type {
	VF_SOPS_ENC_STR,
	VF_SOPS_ENC_INT,
	VF_SOPS_ENC_FLOAT,
	VF_SOPS_ENC_BOOL,
	VF_SOPS_ENC_BYTES,
	VF_SOPS_ENC_TIME,
	VF_SOPS_ENC_COMMENT,
};

struct vf_sops_enc {
	const uint8_t *data; /* the ciphertext, without the tag */
	size_t data_len;
	uint8_t iv[VF_SOPS_IV_LEN];
	uint8_t tag[VF_SOPS_TAG_LEN];
	enum vf_sops_enc_type type;
};

/* Parses "ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]" (len bytes at
 * s) strictly: the four fields once each in this order, standard base64
 * with padding, a 32-byte IV, a 16-byte tag, a known type, nothing after
 * ']'. The ciphertext is copied (vf_sops_enc_clear releases it). Errors say
 * what is wrong without a place ("ENC[] iv is 31 bytes (expected 32)"): the
 * caller knows where the value was. */
enum vf_code vf_sops_enc_parse(const char *s, size_t len, struct vf_sops_enc *out,
			       struct vf_error *err);
void vf_sops_enc_clear(struct vf_sops_enc *e);

/* Decrypts e with the data key and aad into out (e->data_len bytes; guarded
 * memory is the caller's to give): VF_E_AUTH, out wiped, when the tag does
 * not verify. */
enum vf_code vf_sops_enc_open(const struct vf_sops_enc *e, const uint8_t key[VF_SOPS_DATA_KEY_LEN],
			      const char *aad, size_t aad_len, uint8_t *out, struct vf_error *err);

/* The name of an ENC[] type ("str", ..., "comment"). */
const char *vf_sops_enc_type_name(enum vf_sops_enc_type type);

#endif
