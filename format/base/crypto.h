/* Every cryptographic primitive the tools use, as thin wrappers over
 * OpenSSL 3. Nothing here is hand-written cryptography: the wrappers fix the
 * parameters age needs and turn OpenSSL's failures into vf_error values. */
#ifndef VF_CRYPTO_H
#define VF_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define VF_X25519_LEN 32
#define VF_AEAD_KEY_LEN 32
#define VF_AEAD_NONCE_LEN 12
#define VF_AEAD_TAG_LEN 16
#define VF_SHA256_LEN 32

/* Fills buf from OpenSSL's CSPRNG. */
enum vf_code vf_random(void *buf, size_t len, struct vf_error *err);

/* pub = X25519(secret, basepoint). */
enum vf_code vf_x25519_public(const uint8_t secret[VF_X25519_LEN],
			      uint8_t pub[VF_X25519_LEN], struct vf_error *err);

/* shared = X25519(secret, peer). An all-zero result (a low-order peer
 * point) is refused with VF_E_KEY, as age requires. */
enum vf_code vf_x25519(const uint8_t secret[VF_X25519_LEN], const uint8_t peer[VF_X25519_LEN],
		       uint8_t shared[VF_X25519_LEN], struct vf_error *err);

/* Wrapping to a recipient: a fresh ephemeral key pair, used once. share is
 * its public key, shared = X25519(ephemeral, peer). Two scalar
 * multiplications, the minimum (the ephemeral secret never leaves
 * OpenSSL). All-zero results are refused with VF_E_KEY. */
enum vf_code vf_x25519_ephemeral(const uint8_t peer[VF_X25519_LEN], uint8_t share[VF_X25519_LEN],
				 uint8_t shared[VF_X25519_LEN], struct vf_error *err);

/* An imported private key, for identities that unwrap many stanzas: the
 * import (which computes the public key) happens once. */
struct vf_x25519_key;
enum vf_code vf_x25519_key_new(struct vf_x25519_key **out, const uint8_t secret[VF_X25519_LEN],
			       struct vf_error *err);
enum vf_code vf_x25519_key_dh(const struct vf_x25519_key *key, const uint8_t peer[VF_X25519_LEN],
			      uint8_t shared[VF_X25519_LEN], struct vf_error *err);
/* The key's public half, as computed by the import: no second scalar
 * multiplication (vf_x25519_public would do one). */
enum vf_code vf_x25519_key_public(const struct vf_x25519_key *key, uint8_t pub[VF_X25519_LEN],
				  struct vf_error *err);
/* The key's secret half, back out of OpenSSL's secure heap (for writing a
 * key file): the key keeps no other copy. */
enum vf_code vf_x25519_key_secret(const struct vf_x25519_key *key, uint8_t secret[VF_X25519_LEN],
				  struct vf_error *err);
void vf_x25519_key_free(struct vf_x25519_key *key);

/* HKDF-SHA-256 (RFC 5869), extract and expand. */
enum vf_code vf_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
			    size_t salt_len, const void *info, size_t info_len, uint8_t *out,
			    size_t out_len, struct vf_error *err);

/* SHA-3 (FIPS 202) over the concatenation of n pieces, so that callers
 * hashing a prefix and a message (ML-KEM's G(m || H(ek)), X-Wing's
 * combiner) need no copy of secrets into one buffer. */
struct vf_iov {
	const void *p;
	size_t len;
};
#define VF_SHA3_256_LEN 32
#define VF_SHA3_512_LEN 64
enum vf_code vf_sha3_256(const struct vf_iov *in, size_t n, uint8_t out[VF_SHA3_256_LEN],
			 struct vf_error *err);
enum vf_code vf_sha3_512(const struct vf_iov *in, size_t n, uint8_t out[VF_SHA3_512_LEN],
			 struct vf_error *err);
/* SHAKE128 and SHAKE256: out_len bytes of the XOF over the pieces. One
 * call gives one output of a length fixed in advance: OpenSSL 3.0 has no
 * EVP_DigestSqueeze, so a caller that finds it needs more calls again
 * with a longer out_len (the shorter output is a prefix of the longer). */
enum vf_code vf_shake128(const struct vf_iov *in, size_t n, uint8_t *out, size_t out_len,
			 struct vf_error *err);
enum vf_code vf_shake256(const struct vf_iov *in, size_t n, uint8_t *out, size_t out_len,
			 struct vf_error *err);

/* The two halves of HKDF-SHA-256 (RFC 5869) apart, for HPKE's labeled
 * extract and expand (RFC 9180): prk = HMAC(salt, ikm); expand gives
 * out_len bytes (at most 255 * 32) of T(1) || T(2) ... */
enum vf_code vf_hkdf_sha256_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
				    size_t ikm_len, uint8_t prk[VF_SHA256_LEN],
				    struct vf_error *err);
enum vf_code vf_hkdf_sha256_expand(const uint8_t prk[VF_SHA256_LEN], const void *info,
				   size_t info_len, uint8_t *out, size_t out_len,
				   struct vf_error *err);

/* HMAC-SHA-256 over one message. */
enum vf_code vf_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
			    uint8_t out[VF_SHA256_LEN], struct vf_error *err);

enum vf_code vf_sha256(const void *msg, size_t len, uint8_t out[VF_SHA256_LEN],
		       struct vf_error *err);

/* One-shot ChaCha20-Poly1305 (RFC 8439). seal writes len bytes of
 * ciphertext to out and the tag to tag; open verifies tag and writes len
 * bytes of plaintext, or returns VF_E_AUTH and leaves out wiped. Only the
 * standard 12-byte nonce is accepted. */
enum vf_code vf_aead_seal(const uint8_t key[VF_AEAD_KEY_LEN], const uint8_t *nonce,
			  size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *in,
			  size_t len, uint8_t *out, uint8_t tag[VF_AEAD_TAG_LEN],
			  struct vf_error *err);
enum vf_code vf_aead_open(const uint8_t key[VF_AEAD_KEY_LEN], const uint8_t *nonce,
			  size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *in,
			  size_t len, const uint8_t tag[VF_AEAD_TAG_LEN], uint8_t *out,
			  struct vf_error *err);

/* A keyed ChaCha20-Poly1305 context for many messages under one key (the
 * STREAM payload): the key schedule is set once, each call sets the nonce.
 * in and out may be the same buffer. */
struct vf_aead;
enum vf_code vf_aead_new(struct vf_aead **out, const uint8_t key[VF_AEAD_KEY_LEN], int encrypt,
			 struct vf_error *err);
/* Seals len bytes; writes len bytes plus the 16-byte tag to out. */
enum vf_code vf_aead_seal_chunk(struct vf_aead *ctx, const uint8_t nonce[VF_AEAD_NONCE_LEN],
				const uint8_t *in, size_t len, uint8_t *out);
/* Opens len bytes (tag included); writes len - 16 bytes to out. */
enum vf_code vf_aead_open_chunk(struct vf_aead *ctx, const uint8_t nonce[VF_AEAD_NONCE_LEN],
				const uint8_t *in, size_t len, uint8_t *out);
void vf_aead_free(struct vf_aead *ctx);

/* scrypt(pass, salt, N = 2^log_n, r = 8, p = 1) -> out. */
enum vf_code vf_scrypt(const uint8_t *pass, size_t pass_len, const uint8_t *salt,
		       size_t salt_len, unsigned log_n, uint8_t *out, size_t out_len,
		       struct vf_error *err);

/* AES-256-GCM with a nonce of any length from 1 to 64 bytes: SOPS values
 * use 32-byte nonces, which GCM hashes into its first counter block (as
 * Go's cipher.NewGCMWithNonceSize does). seal writes len bytes of
 * ciphertext and the tag; open verifies the tag and writes len bytes of
 * plaintext, or returns VF_E_AUTH and leaves out wiped. */
#define VF_AES_GCM_KEY_LEN 32
#define VF_AES_GCM_TAG_LEN 16
#define VF_AES_GCM_MAX_NONCE_LEN 64
enum vf_code vf_aes256gcm_seal(const uint8_t key[VF_AES_GCM_KEY_LEN], const uint8_t *nonce,
			       size_t nonce_len, const uint8_t *aad, size_t aad_len,
			       const uint8_t *in, size_t len, uint8_t *out,
			       uint8_t tag[VF_AES_GCM_TAG_LEN], struct vf_error *err);
enum vf_code vf_aes256gcm_open(const uint8_t key[VF_AES_GCM_KEY_LEN], const uint8_t *nonce,
			       size_t nonce_len, const uint8_t *aad, size_t aad_len,
			       const uint8_t *in, size_t len, const uint8_t tag[VF_AES_GCM_TAG_LEN],
			       uint8_t *out, struct vf_error *err);

/* SHA-512 fed piece by piece (the SOPS MAC runs over many values). The
 * context is wiped when freed. */
#define VF_SHA512_LEN 64
struct vf_sha512;
enum vf_code vf_sha512_new(struct vf_sha512 **out, struct vf_error *err);
enum vf_code vf_sha512_update(struct vf_sha512 *h, const void *p, size_t len,
			      struct vf_error *err);
enum vf_code vf_sha512_final(struct vf_sha512 *h, uint8_t out[VF_SHA512_LEN],
			     struct vf_error *err);
void vf_sha512_free(struct vf_sha512 *h);

#endif
