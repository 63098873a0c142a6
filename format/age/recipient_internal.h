/* The parsers of each recipient and identity type, which keys.c
 * dispatches to (private to format/age/: the tools go through keys.h). */
#ifndef VF_RECIPIENT_INTERNAL_H
#define VF_RECIPIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "age/recipient.h"
#include "base/crypto.h"

/* X25519 (x25519.c). */
/* Parses "age1..."; VF_E_KEY when malformed. */
enum vf_code vf_x25519_recipient_parse(const char *s, struct vf_recipient **out,
				       struct vf_error *err);

/* Hybrid post-quantum (hybrid.c). */
/* Parses "age1pq1..." (lower case); VF_E_KEY when malformed or when its
 * ML-KEM-768 key fails the modulus check of FIPS 203. */
enum vf_code vf_hybrid_recipient_parse(const char *s, struct vf_recipient **out,
				       struct vf_error *err);

/* Wrapping a file key to an X25519 public key (x25519.c), shared by the
 * X25519 and ssh-ed25519 stanzas, which differ only in their label and in
 * ssh-ed25519's tweak of the shared secret:
 *   shared = X25519(ephemeral, recipient) [tweaked: X25519(HKDF("", tweak_salt,
 *   label), shared)], key = HKDF(shared, share || recipient, label),
 *   body = ChaCha20-Poly1305(key, zero nonce, file key). */
#define VF_SHARE_WRAPPED_LEN (VF_FILE_KEY_LEN + VF_AEAD_TAG_LEN)
struct vf_share_kdf {
	const char *type;  /* the stanza type, for messages */
	const char *label; /* HKDF info */
	const uint8_t *tweak_salt; /* NULL: no tweak */
	size_t tweak_salt_len;
};
/* Makes an ephemeral share for recipient and wraps file_key into body. */
enum vf_code vf_share_wrap(const struct vf_share_kdf *kdf, const uint8_t recipient[VF_X25519_LEN],
			   const uint8_t file_key[VF_FILE_KEY_LEN], uint8_t share[VF_X25519_LEN],
			   uint8_t body[VF_SHARE_WRAPPED_LEN], struct vf_error *err);
/* The identity's side: dh(key, share) gives the shared secret (the key in
 * whatever form the identity holds it); recipient is the identity's own
 * public key. VF_E_HEADER for a low-order share, VF_E_AUTH when the body
 * does not open with this key. */
typedef enum vf_code (*vf_share_dh_fn)(const void *key, const uint8_t share[VF_X25519_LEN],
				       uint8_t shared[VF_X25519_LEN], struct vf_error *err);
enum vf_code vf_share_unwrap(const struct vf_share_kdf *kdf, vf_share_dh_fn dh, const void *key,
			     const uint8_t share[VF_X25519_LEN],
			     const uint8_t recipient[VF_X25519_LEN],
			     const uint8_t body[VF_SHARE_WRAPPED_LEN],
			     uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err);

/* The checks of each stanza type that need no key: its arguments and body
 * as the format defines them. Each identity runs them before trying its
 * key, and varseal inspect on every stanza, so that both refuse a stanza
 * with the same VF_E_HEADER message. */
/* X25519: one argument, the canonical base64 of a 32-byte share; a
 * wrapped file key as the body. */
enum vf_code vf_x25519_stanza_share(const struct vf_stanza *s, uint8_t share[VF_X25519_LEN],
				    struct vf_error *err);
/* Refuses a low-order share (one whose X25519 with any key is all zero,
 * which age forbids) as decryption does: "TYPE stanza with a low-order
 * share". */
enum vf_code vf_share_check_order(const char *type, const uint8_t share[VF_X25519_LEN],
				  struct vf_error *err);
/* scrypt: the canonical base64 of a 16-byte salt and a decimal work factor
 * (no sign, no leading zero) at most max_log_n; a wrapped file key. */
#define VF_SCRYPT_SALT_LEN 16
enum vf_code vf_scrypt_stanza_params(const struct vf_stanza *s, unsigned max_log_n,
				     uint8_t salt[VF_SCRYPT_SALT_LEN], unsigned *log_n,
				     struct vf_error *err);
/* ssh-ed25519: a key tag and the canonical base64 of a 32-byte share (the
 * body is checked by vf_stanza_wrapped_key once the tag names the key). */
enum vf_code vf_ssh_ed25519_stanza_share(const struct vf_stanza *s, uint8_t share[VF_X25519_LEN],
					 struct vf_error *err);
/* mlkem768x25519: exactly one argument, the canonical unpadded base64 of
 * the 1,120-byte HPKE enc (ML-KEM-768 ciphertext || X25519 share), and a
 * wrapped file key (32 bytes) as the body: checked before any decryption.
 * The share's order is checked as for X25519 (vf_share_check_order). */
#define VF_HYBRID_ENC_LEN 1120
enum vf_code vf_hybrid_stanza_enc(const struct vf_stanza *s, uint8_t enc[VF_HYBRID_ENC_LEN],
				  struct vf_error *err);
/* ssh-rsa: a key tag; the body's length depends on the key. */
enum vf_code vf_ssh_rsa_stanza_check(const struct vf_stanza *s, struct vf_error *err);

/* SSH keys (ssh.c): a public key line as in authorized_keys or a .pub
 * file (options and comment allowed), ssh-ed25519 or ssh-rsa (2048 bits or
 * more); an unencrypted OpenSSH private key file. */
enum vf_code vf_ssh_recipient_parse(const char *line, struct vf_recipient **out,
				    struct vf_error *err);
bool vf_ssh_is_private_key(const char *text, size_t len);
enum vf_code vf_ssh_identity_parse(const char *text, size_t len, struct vf_identity **out,
				   struct vf_error *err);

#endif
