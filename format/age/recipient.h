/* Recipients wrap a file key into a stanza; identities unwrap it. Each
 * stanza type is one file implementing these two interfaces (x25519.c,
 * scrypt.c, ...), so a new type never touches the header or payload code. */
#ifndef VF_RECIPIENT_H
#define VF_RECIPIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "age/header.h"

struct vf_recipient;
struct vf_identity;

struct vf_recipient_ops {
	const char *type; /* the stanza type it writes */
	/* Stanzas of this type must be the only one in a header (scrypt). */
	bool must_be_alone;
	/* A post-quantum type (mlkem768x25519): a header is sealed to such
	 * recipients only or to classic ones only (vf_wrap_header), as age
	 * 1.3 refuses to mix them: a classic stanza beside it would undo what
	 * it protects against. */
	bool post_quantum;
	enum vf_code (*wrap)(const struct vf_recipient *r, const uint8_t file_key[VF_FILE_KEY_LEN],
			     struct vf_stanza *out, struct vf_error *err);
	void (*free)(struct vf_recipient *r);
};

struct vf_recipient {
	const struct vf_recipient_ops *ops;
	/* The string it was parsed from (vf_recipient_parse sets it), for
	 * messages that must name it; NULL otherwise. Freed with it. */
	char *name;
};

struct vf_identity_ops {
	const char *type;
	/* VF_OK with file_key set; VF_E_NO_MATCH when the stanza is not for
	 * this identity (other type, or its AEAD tag fails); any other code
	 * is a malformed stanza and stops decryption (VF_E_HEADER). */
	enum vf_code (*unwrap)(struct vf_identity *id, const struct vf_stanza *s,
			       uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err);
	/* The recipient string that this identity opens (malloc'd). */
	enum vf_code (*recipient)(const struct vf_identity *id, char **out, struct vf_error *err);
	void (*free)(struct vf_identity *id);
};

struct vf_identity {
	const struct vf_identity_ops *ops;
};

static inline void vf_recipient_free(struct vf_recipient *r)
{
	if (r) {
		free(r->name);
		r->ops->free(r);
	}
}

static inline enum vf_code vf_identity_recipient(const struct vf_identity *id, char **out,
						 struct vf_error *err)
{
	if (!id->ops->recipient)
		return vf_fail(err, VF_E_ARG, "a %s identity has no recipient string",
			       id->ops->type);
	return id->ops->recipient(id, out, err);
}

static inline void vf_identity_free(struct vf_identity *id)
{
	if (id)
		id->ops->free(id);
}

/* X25519 (x25519.c). */
#define VF_X25519_RECIPIENT_HRP "age"
#define VF_X25519_IDENTITY_HRP "AGE-SECRET-KEY-"
/* Parses "AGE-SECRET-KEY-1..." (s_len characters). */
enum vf_code vf_x25519_identity_parse(const char *s, size_t s_len, struct vf_identity **out,
				      struct vf_error *err);
/* A fresh random identity. */
enum vf_code vf_x25519_identity_generate(struct vf_identity **out, struct vf_error *err);
/* The identity's secret key string (guarded memory, free with
 * vf_secure_free) and its recipient string ("age1...", malloc'd). */
enum vf_code vf_x25519_identity_encode(const struct vf_identity *id, char **secret,
				       struct vf_error *err);
enum vf_code vf_x25519_identity_recipient(const struct vf_identity *id, char **recipient,
					  struct vf_error *err);

/* Hybrid post-quantum, age 1.3's mlkem768x25519 (hybrid.c): X-Wing
 * (ML-KEM-768 + X25519) keys. The identity is a 32-byte seed. */
#define VF_HYBRID_STANZA_TYPE "mlkem768x25519"
#define VF_HYBRID_RECIPIENT_HRP "age1pq"
#define VF_HYBRID_IDENTITY_HRP "AGE-SECRET-KEY-PQ-"
/* Parses "AGE-SECRET-KEY-PQ-1..." (s_len characters, upper case). */
enum vf_code vf_hybrid_identity_parse(const char *s, size_t s_len, struct vf_identity **out,
				      struct vf_error *err);
/* A fresh random identity. */
enum vf_code vf_hybrid_identity_generate(struct vf_identity **out, struct vf_error *err);
bool vf_is_hybrid_identity(const struct vf_identity *id);
/* The identity's secret key string (guarded memory, free with
 * vf_secure_free) and its recipient string ("age1pq1...", about 1,960
 * characters, malloc'd). VF_E_ARG for an identity of another type. */
enum vf_code vf_hybrid_identity_encode(const struct vf_identity *id, char **secret,
				       struct vf_error *err);
enum vf_code vf_hybrid_identity_recipient(const struct vf_identity *id, char **recipient,
					  struct vf_error *err);

/* scrypt passphrase (scrypt.c). The passphrase is copied into guarded
 * memory. log_n: work factor to encrypt with. */
enum vf_code vf_scrypt_recipient_new(const uint8_t *pass, size_t pass_len, unsigned log_n,
				     struct vf_recipient **out, struct vf_error *err);

/* Supplies the passphrase when an scrypt stanza is met (so that nothing is
 * asked for files that do not need it). Returns VF_OK and a guarded buffer
 * (ownership passes to the identity), or an error. */
typedef enum vf_code (*vf_passphrase_fn)(void *ctx, uint8_t **pass, size_t *pass_len,
					 struct vf_error *err);
enum vf_code vf_scrypt_identity_new(vf_passphrase_fn get, void *ctx, unsigned max_log_n,
				    struct vf_identity **out, struct vf_error *err);

/* SSH keys (ssh.c), X25519 and hybrid recipients are parsed through keys.h
 * (vf_recipient_parse, vf_identities_parse); the per-type parsers are
 * in recipient_internal.h. */

#define VF_SCRYPT_DEFAULT_LOG_N 18
#define VF_SCRYPT_MAX_LOG_N 22

#endif
