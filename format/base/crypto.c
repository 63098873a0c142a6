#include "base/crypto.h"
#include "base/provider.h"
#include "base/secmem.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>

/* The tools do not load OpenSSL's error strings (vf_init: they cost every
 * run a quarter of a millisecond), so a failure names OpenSSL's error code,
 * which `openssl errstr CODE` explains; where the strings are loaded (a
 * program that set OpenSSL up itself) the text is used. */
static enum vf_code openssl_fail(struct vf_error *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[160] = "unknown reason";
	if (e && ERR_reason_error_string(e))
		ERR_error_string_n(e, reason, sizeof(reason));
	else if (e)
		snprintf(reason, sizeof(reason), "OpenSSL error %08lX (openssl errstr %08lX)", e, e);
	ERR_clear_error();
	return vf_fail(err, VF_E_CRYPTO, "%s failed: %s", what, reason);
}

/* Each algorithm is fetched from the provider once, on its first use: a
 * fetch takes locks and walks the provider's tables, which dominated
 * sealing many small secrets. And only the algorithms a run uses: OpenSSL
 * 3.0 builds every algorithm of a kind (every cipher, every digest) on the
 * first fetch of that kind, and a short run (decrypting one secret) should
 * not pay for the kinds it never touches. FETCH_ONCE(name, TYPE, fetch,
 * "NAME") defines `static TYPE *name(void)`, NULL if the fetch failed. */
#define FETCH_ONCE(name, type, fetch, alg_name, before)      \
	static type *name##_alg;                               \
	static pthread_once_t name##_once = PTHREAD_ONCE_INIT; \
	static void name##_fetch(void)                         \
	{                                                      \
		before;                                        \
		name##_alg = fetch(NULL, alg_name, NULL);      \
	}                                                      \
	static type *name(void)                                \
	{                                                      \
		pthread_once(&name##_once, name##_fetch);      \
		return name##_alg;                             \
	}

/* What a run with X25519 keys uses; then the rest, which the provider
 * offers once asked to (format/base/provider.c). */
#define CORE (void)0
#define MORE (void)vf_provider_more()
FETCH_ONCE(alg_hkdf, EVP_KDF, EVP_KDF_fetch, OSSL_KDF_NAME_HKDF, CORE)
FETCH_ONCE(alg_chacha, EVP_CIPHER, EVP_CIPHER_fetch, "ChaCha20-Poly1305", CORE)
FETCH_ONCE(alg_sha256, EVP_MD, EVP_MD_fetch, "SHA256", CORE)
FETCH_ONCE(alg_scrypt, EVP_KDF, EVP_KDF_fetch, OSSL_KDF_NAME_SCRYPT, MORE)
FETCH_ONCE(alg_aes_gcm, EVP_CIPHER, EVP_CIPHER_fetch, "AES-256-GCM", MORE)
FETCH_ONCE(alg_sha512, EVP_MD, EVP_MD_fetch, "SHA512", MORE)
FETCH_ONCE(alg_sha3_256, EVP_MD, EVP_MD_fetch, "SHA3-256", MORE)
FETCH_ONCE(alg_sha3_512, EVP_MD, EVP_MD_fetch, "SHA3-512", MORE)
FETCH_ONCE(alg_shake128, EVP_MD, EVP_MD_fetch, "SHAKE128", MORE)
FETCH_ONCE(alg_shake256, EVP_MD, EVP_MD_fetch, "SHAKE256", MORE)

/* HMAC is used with SHA-256 only. Given the digest by name on every call,
 * the provider would look SHA-256 up again each time; instead one context
 * is made with the digest set, and every call works on a copy of it
 * (EVP_MAC_CTX_dup). The template holds no key: it is never given one.
 * (HKDF cannot do the same: OpenSSL 3.0 cannot copy an HKDF context.) */
static EVP_MAC_CTX *hmac_template;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void make_hmac_template(void)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_END,
	};
	EVP_MAC_free(mac); /* the context holds its own reference */
	if (ctx && EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	hmac_template = ctx;
}

/* A fresh HKDF context (the digest is set by each call), or NULL. */
static EVP_KDF_CTX *hkdf_ctx(void)
{
	EVP_KDF *hkdf = alg_hkdf();
	return hkdf ? EVP_KDF_CTX_new(hkdf) : NULL;
}

/* A fresh HMAC-SHA-256 context, or NULL. */
static EVP_MAC_CTX *hmac_sha256_ctx(void)
{
	pthread_once(&hmac_once, make_hmac_template);
	return hmac_template ? EVP_MAC_CTX_dup(hmac_template) : NULL;
}

static int fits_int(size_t n)
{
	return n <= (size_t)INT_MAX;
}

enum vf_code vf_random(void *buf, size_t len, struct vf_error *err)
{
	if (!fits_int(len))
		return vf_fail(err, VF_E_ARG, "random request too large");
	vf_wipe_random_at_exit(); /* the generator's state is cleansed at exit */
	if (RAND_priv_bytes(buf, (int)len) != 1)
		return openssl_fail(err, "RAND_priv_bytes");
	return VF_OK;
}

static enum vf_code public_of(const EVP_PKEY *key, uint8_t pub[VF_X25519_LEN],
			      struct vf_error *err)
{
	size_t len = VF_X25519_LEN;
	if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != VF_X25519_LEN)
		return openssl_fail(err, "X25519 public key");
	return VF_OK;
}

enum vf_code vf_x25519_public(const uint8_t secret[VF_X25519_LEN], uint8_t pub[VF_X25519_LEN],
			      struct vf_error *err)
{
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, VF_X25519_LEN);
	if (!key)
		return openssl_fail(err, "X25519 key import");
	enum vf_code rc = public_of(key, pub, err);
	EVP_PKEY_free(key);
	return rc;
}

/* shared = X25519(mine, peer), refusing an all-zero result. */
static enum vf_code derive_shared(EVP_PKEY *mine, const uint8_t peer[VF_X25519_LEN],
				  uint8_t shared[VF_X25519_LEN], struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	EVP_PKEY *theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, VF_X25519_LEN);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
	size_t len = VF_X25519_LEN;
	if (!theirs || !ctx) {
		rc = openssl_fail(err, "X25519 key import");
		goto out;
	}
	/* Peer validation is off on purpose: RFC 7748 defines X25519 on every
	 * 32-byte string, and the one check age needs (an all-zero result) is
	 * done below. OpenSSL's derive also fails on an all-zero result. */
	if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, theirs, 0) != 1) {
		rc = openssl_fail(err, "X25519 setup");
		goto out;
	}
	if (EVP_PKEY_derive(ctx, shared, &len) != 1 || len != VF_X25519_LEN ||
	    sodium_is_zero(shared, VF_X25519_LEN)) {
		ERR_clear_error();
		sodium_memzero(shared, VF_X25519_LEN);
		rc = vf_fail(err, VF_E_KEY, "X25519 shared secret is all zero (low-order point)");
	}
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(theirs);
	return rc;
}

struct vf_x25519_key {
	EVP_PKEY *pkey;
};

enum vf_code vf_x25519_key_new(struct vf_x25519_key **out, const uint8_t secret[VF_X25519_LEN],
			       struct vf_error *err)
{
	*out = NULL; /* on failure too: a caller's pointer is never left unset */
	struct vf_x25519_key *k = calloc(1, sizeof(*k));
	if (!k)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, VF_X25519_LEN);
	if (!k->pkey) {
		free(k);
		return openssl_fail(err, "X25519 key import");
	}
	*out = k;
	return VF_OK;
}

enum vf_code vf_x25519_key_dh(const struct vf_x25519_key *key, const uint8_t peer[VF_X25519_LEN],
			      uint8_t shared[VF_X25519_LEN], struct vf_error *err)
{
	return derive_shared(key->pkey, peer, shared, err);
}

enum vf_code vf_x25519_key_public(const struct vf_x25519_key *key, uint8_t pub[VF_X25519_LEN],
				  struct vf_error *err)
{
	return public_of(key->pkey, pub, err);
}

enum vf_code vf_x25519_key_secret(const struct vf_x25519_key *key, uint8_t secret[VF_X25519_LEN],
				  struct vf_error *err)
{
	size_t len = VF_X25519_LEN;
	if (EVP_PKEY_get_raw_private_key(key->pkey, secret, &len) != 1 || len != VF_X25519_LEN) {
		sodium_memzero(secret, VF_X25519_LEN);
		return openssl_fail(err, "X25519 private key");
	}
	return VF_OK;
}

void vf_x25519_key_free(struct vf_x25519_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

enum vf_code vf_x25519(const uint8_t secret[VF_X25519_LEN], const uint8_t peer[VF_X25519_LEN],
		       uint8_t shared[VF_X25519_LEN], struct vf_error *err)
{
	/* The key lives only for this one exchange: no wrapper to allocate.
	 * (Going through vf_x25519_key_new left a pointer that GCC 12 at -O3
	 * could not prove set on the success path: -Wmaybe-uninitialized.) */
	EVP_PKEY *mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, VF_X25519_LEN);
	if (!mine)
		return openssl_fail(err, "X25519 key import");
	enum vf_code rc = derive_shared(mine, peer, shared, err);
	EVP_PKEY_free(mine);
	return rc;
}

enum vf_code vf_x25519_ephemeral(const uint8_t peer[VF_X25519_LEN], uint8_t share[VF_X25519_LEN],
				 uint8_t shared[VF_X25519_LEN], struct vf_error *err)
{
	/* The secret is 32 bytes of the random generator, as OpenSSL's own
	 * X25519 key generation draws them (X25519 clamps the scalar itself,
	 * RFC 7748). Drawn here rather than by EVP_PKEY_Q_keygen: the key
	 * manager draws from the random generator of the context it was built
	 * in (format/base/provider.c), and a second generator, seeded again,
	 * cost every encryption about 0.05 ms. */
	uint8_t *secret = vf_scratch_alloc(VF_X25519_LEN);
	if (!secret)
		return vf_fail(err, VF_E_NOMEM, "out of memory (guarded)");
	enum vf_code drawn = vf_random(secret, VF_X25519_LEN, err);
	EVP_PKEY *eph = drawn == VF_OK ? EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret,
								      VF_X25519_LEN)
				       : NULL;
	vf_scratch_free(secret, VF_X25519_LEN);
	if (drawn != VF_OK)
		return drawn;
	if (!eph)
		return openssl_fail(err, "X25519 key generation");
	size_t len = VF_X25519_LEN;
	enum vf_code rc = EVP_PKEY_get_raw_public_key(eph, share, &len) == 1 && len == VF_X25519_LEN
				  ? VF_OK
				  : openssl_fail(err, "X25519 public key");
	if (rc == VF_OK)
		rc = derive_shared(eph, peer, shared, err);
	EVP_PKEY_free(eph);
	return rc;
}

/* Runs the KDF context (freed here, which cleanses it) with params. */
static enum vf_code derive(EVP_KDF_CTX *ctx, const char *kdf_name, OSSL_PARAM *params,
			   uint8_t *out, size_t out_len, struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	if (!ctx || EVP_KDF_derive(ctx, out, out_len, params) != 1)
		rc = openssl_fail(err, kdf_name);
	EVP_KDF_CTX_free(ctx);
	return rc;
}

enum vf_code vf_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
			    size_t salt_len, const void *info, size_t info_len, uint8_t *out,
			    size_t out_len, struct vf_error *err)
{
	/* OpenSSL refuses an empty key or salt pointer; age uses empty salts. */
	static const uint8_t empty[1];
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)(ikm ? ikm : empty), ikm_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, (void *)(salt ? salt : empty), salt_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, (void *)(info ? info : empty), info_len),
		OSSL_PARAM_END,
	};
	if (out_len > 255 * VF_SHA256_LEN)
		return vf_fail(err, VF_E_ARG, "HKDF output longer than 255 blocks");
	return derive(hkdf_ctx(), OSSL_KDF_NAME_HKDF, params, out, out_len, err);
}

/* HKDF in one of OpenSSL's single-step modes: extract (key = ikm) or
 * expand (key = prk). */
static enum vf_code hkdf_mode(int mode, const uint8_t *key, size_t key_len, const uint8_t *salt,
			      size_t salt_len, const void *info, size_t info_len, uint8_t *out,
			      size_t out_len, const char *what, struct vf_error *err)
{
	static const uint8_t empty[1];
	OSSL_PARAM params[] = {
		OSSL_PARAM_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)(key ? key : empty), key_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, (void *)(salt ? salt : empty), salt_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, (void *)(info ? info : empty), info_len),
		OSSL_PARAM_END,
	};
	return derive(hkdf_ctx(), what, params, out, out_len, err);
}

enum vf_code vf_hkdf_sha256_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
				    size_t ikm_len, uint8_t prk[VF_SHA256_LEN],
				    struct vf_error *err)
{
	return hkdf_mode(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, ikm_len, salt, salt_len, NULL, 0,
			 prk, VF_SHA256_LEN, "HKDF-SHA-256 extract", err);
}

enum vf_code vf_hkdf_sha256_expand(const uint8_t prk[VF_SHA256_LEN], const void *info,
				   size_t info_len, uint8_t *out, size_t out_len,
				   struct vf_error *err)
{
	if (out_len > 255 * VF_SHA256_LEN)
		return vf_fail(err, VF_E_ARG, "HKDF output longer than 255 blocks");
	return hkdf_mode(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, VF_SHA256_LEN, NULL, 0, info,
			 info_len, out, out_len, "HKDF-SHA-256 expand", err);
}

enum vf_code vf_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
			    uint8_t out[VF_SHA256_LEN], struct vf_error *err)
{
	static const uint8_t empty[1];
	EVP_MAC_CTX *ctx = hmac_sha256_ctx();
	size_t len = 0;
	enum vf_code rc = VF_OK;
	if (!ctx || EVP_MAC_init(ctx, key ? key : empty, key_len, NULL) != 1 ||
	    EVP_MAC_update(ctx, msg ? msg : empty, msg_len) != 1 ||
	    EVP_MAC_final(ctx, out, &len, VF_SHA256_LEN) != 1 || len != VF_SHA256_LEN)
		rc = openssl_fail(err, "HMAC-SHA-256");
	EVP_MAC_CTX_free(ctx);
	return rc;
}

enum vf_code vf_sha256(const void *msg, size_t len, uint8_t out[VF_SHA256_LEN],
		       struct vf_error *err)
{
	unsigned int out_len = 0;
	if (!alg_sha256() || EVP_Digest(msg, len, out, &out_len, alg_sha256(), NULL) != 1 || out_len != VF_SHA256_LEN)
		return openssl_fail(err, "SHA-256");
	return VF_OK;
}

struct vf_aead {
	EVP_CIPHER_CTX *ctx;
	int encrypt;
};

static enum vf_code aead_init(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
			      size_t nonce_len, int encrypt, struct vf_error *err)
{
	EVP_CIPHER *cipher = alg_chacha();
	size_t ivlen = nonce_len;
	OSSL_PARAM params[] = {
		OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen),
		OSSL_PARAM_END,
	};
	int ok = cipher && EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, encrypt, params) == 1 &&
		 EVP_CipherInit_ex2(ctx, NULL, key, nonce, encrypt, NULL) == 1;
	return ok ? VF_OK : openssl_fail(err, "ChaCha20-Poly1305 init");
}

static enum vf_code aead_one_shot(const uint8_t *key, const uint8_t *nonce, size_t nonce_len,
				  const uint8_t *aad, size_t aad_len, const uint8_t *in,
				  size_t len, uint8_t *out, uint8_t *tag, int encrypt,
				  struct vf_error *err)
{
	if (nonce_len != VF_AEAD_NONCE_LEN)
		return vf_fail(err, VF_E_ARG, "ChaCha20-Poly1305 nonce must be 12 bytes");
	if (!fits_int(len) || !fits_int(aad_len))
		return vf_fail(err, VF_E_ARG, "ChaCha20-Poly1305 message too large");
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = aead_init(ctx, key, nonce, nonce_len, encrypt, err);
	int n = 0, fin = 0;
	if (rc == VF_OK && !encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, VF_AEAD_TAG_LEN, (void *)tag) != 1)
		rc = openssl_fail(err, "ChaCha20-Poly1305 set tag");
	if (rc == VF_OK && aad_len && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		rc = openssl_fail(err, "ChaCha20-Poly1305 AAD");
	if (rc == VF_OK && len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		rc = openssl_fail(err, "ChaCha20-Poly1305 update");
	if (rc == VF_OK && EVP_CipherFinal_ex(ctx, out + (len ? len : 0), &fin) != 1) {
		ERR_clear_error();
		rc = encrypt ? openssl_fail(err, "ChaCha20-Poly1305 final")
			     : vf_fail(err, VF_E_AUTH, "ChaCha20-Poly1305 authentication failed");
	}
	if (rc == VF_OK && encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, VF_AEAD_TAG_LEN, tag) != 1)
		rc = openssl_fail(err, "ChaCha20-Poly1305 get tag");
	if (rc != VF_OK && !encrypt && len)
		sodium_memzero(out, len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

enum vf_code vf_aead_seal(const uint8_t key[VF_AEAD_KEY_LEN], const uint8_t *nonce,
			  size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *in,
			  size_t len, uint8_t *out, uint8_t tag[VF_AEAD_TAG_LEN],
			  struct vf_error *err)
{
	return aead_one_shot(key, nonce, nonce_len, aad, aad_len, in, len, out, tag, 1, err);
}

enum vf_code vf_aead_open(const uint8_t key[VF_AEAD_KEY_LEN], const uint8_t *nonce,
			  size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *in,
			  size_t len, const uint8_t tag[VF_AEAD_TAG_LEN], uint8_t *out,
			  struct vf_error *err)
{
	return aead_one_shot(key, nonce, nonce_len, aad, aad_len, in, len, out, (uint8_t *)tag, 0,
			     err);
}

enum vf_code vf_aead_new(struct vf_aead **out, const uint8_t key[VF_AEAD_KEY_LEN], int encrypt,
			 struct vf_error *err)
{
	static const uint8_t zero_nonce[VF_AEAD_NONCE_LEN];
	struct vf_aead *a = calloc(1, sizeof(*a));
	if (!a || !(a->ctx = EVP_CIPHER_CTX_new())) {
		free(a);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	a->encrypt = encrypt;
	enum vf_code rc = aead_init(a->ctx, key, zero_nonce, VF_AEAD_NONCE_LEN, encrypt, err);
	if (rc != VF_OK) {
		vf_aead_free(a);
		return rc;
	}
	*out = a;
	return VF_OK;
}

enum vf_code vf_aead_seal_chunk(struct vf_aead *a, const uint8_t nonce[VF_AEAD_NONCE_LEN],
				const uint8_t *in, size_t len, uint8_t *out)
{
	int n = 0, fin = 0;
	if (!fits_int(len) || EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
	    (len && EVP_CipherUpdate(a->ctx, out, &n, in, (int)len) != 1) ||
	    EVP_CipherFinal_ex(a->ctx, out + len, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, VF_AEAD_TAG_LEN, out + len) != 1) {
		ERR_clear_error();
		return VF_E_CRYPTO;
	}
	return VF_OK;
}

enum vf_code vf_aead_open_chunk(struct vf_aead *a, const uint8_t nonce[VF_AEAD_NONCE_LEN],
				const uint8_t *in, size_t len, uint8_t *out)
{
	int n = 0, fin = 0;
	if (len < VF_AEAD_TAG_LEN || !fits_int(len))
		return VF_E_AUTH;
	size_t pt_len = len - VF_AEAD_TAG_LEN;
	/* The tag is copied out first: out may alias in, and decrypting in
	 * place overwrites nothing past pt_len, but keep it obviously safe. */
	uint8_t tag[VF_AEAD_TAG_LEN];
	memcpy(tag, in + pt_len, VF_AEAD_TAG_LEN);
	if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, VF_AEAD_TAG_LEN, tag) != 1 ||
	    (pt_len && EVP_CipherUpdate(a->ctx, out, &n, in, (int)pt_len) != 1) ||
	    EVP_CipherFinal_ex(a->ctx, out + pt_len, &fin) != 1) {
		ERR_clear_error();
		/* Unauthenticated plaintext must never be released. */
		sodium_memzero(out, pt_len);
		return VF_E_AUTH;
	}
	return VF_OK;
}

void vf_aead_free(struct vf_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->ctx);
	free(a);
}

enum vf_code vf_scrypt(const uint8_t *pass, size_t pass_len, const uint8_t *salt,
		       size_t salt_len, unsigned log_n, uint8_t *out, size_t out_len,
		       struct vf_error *err)
{
	static const uint8_t empty[1];
	if (log_n == 0 || log_n > 40)
		return vf_fail(err, VF_E_ARG, "scrypt work factor %u out of range", log_n);
	uint64_t n = UINT64_C(1) << log_n;
	uint32_t r = 8, p = 1;
	/* OpenSSL's default memory cap (32 MiB) is below what age's work
	 * factors need: 128 * r * N bytes, plus slack for the rest. */
	uint64_t maxmem = 128u * r * (n + p + 2) + (1u << 20);
	OSSL_PARAM params[] = {
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(pass ? pass : empty),
					pass_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
		OSSL_PARAM_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
		OSSL_PARAM_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_END,
	};
	EVP_KDF *scrypt = alg_scrypt();
	return derive(scrypt ? EVP_KDF_CTX_new(scrypt) : NULL, OSSL_KDF_NAME_SCRYPT, params, out,
		      out_len, err);
}

/* The nonce length is set (with the cipher) before the key and nonce:
 * OpenSSL sizes GCM's first counter block from it when the nonce is set. */
static enum vf_code aes_gcm_one_shot(const uint8_t *key, const uint8_t *nonce, size_t nonce_len,
				     const uint8_t *aad, size_t aad_len, const uint8_t *in,
				     size_t len, uint8_t *out, uint8_t *tag, int encrypt,
				     struct vf_error *err)
{
	if (nonce_len == 0 || nonce_len > VF_AES_GCM_MAX_NONCE_LEN)
		return vf_fail(err, VF_E_ARG, "AES-GCM nonce of %zu bytes (expected 1 to %d)",
			       nonce_len, VF_AES_GCM_MAX_NONCE_LEN);
	if (!fits_int(len) || !fits_int(aad_len))
		return vf_fail(err, VF_E_ARG, "AES-GCM message too large");
	EVP_CIPHER *aes_gcm = alg_aes_gcm();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t ivlen = nonce_len;
	OSSL_PARAM params[] = {
		OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen),
		OSSL_PARAM_END,
	};
	enum vf_code rc = VF_OK;
	int n = 0, fin = 0;
	if (!aes_gcm || EVP_CipherInit_ex2(ctx, aes_gcm, NULL, NULL, encrypt, params) != 1 ||
	    EVP_CipherInit_ex2(ctx, NULL, key, nonce, encrypt, NULL) != 1)
		rc = openssl_fail(err, "AES-256-GCM init");
	if (rc == VF_OK && !encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, VF_AES_GCM_TAG_LEN, tag) != 1)
		rc = openssl_fail(err, "AES-256-GCM set tag");
	if (rc == VF_OK && aad_len && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		rc = openssl_fail(err, "AES-256-GCM AAD");
	if (rc == VF_OK && len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		rc = openssl_fail(err, "AES-256-GCM update");
	uint8_t nothing[VF_AES_GCM_TAG_LEN]; /* GCM's final writes nothing; out may be NULL */
	if (rc == VF_OK && EVP_CipherFinal_ex(ctx, out ? out + len : nothing, &fin) != 1) {
		ERR_clear_error();
		rc = encrypt ? openssl_fail(err, "AES-256-GCM final")
			     : vf_fail(err, VF_E_AUTH, "AES-256-GCM authentication failed");
	}
	if (rc == VF_OK && encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, VF_AES_GCM_TAG_LEN, tag) != 1)
		rc = openssl_fail(err, "AES-256-GCM get tag");
	/* Unauthenticated plaintext is never released. */
	if (rc != VF_OK && !encrypt && len)
		sodium_memzero(out, len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

enum vf_code vf_aes256gcm_seal(const uint8_t key[VF_AES_GCM_KEY_LEN], const uint8_t *nonce,
			       size_t nonce_len, const uint8_t *aad, size_t aad_len,
			       const uint8_t *in, size_t len, uint8_t *out,
			       uint8_t tag[VF_AES_GCM_TAG_LEN], struct vf_error *err)
{
	return aes_gcm_one_shot(key, nonce, nonce_len, aad, aad_len, in, len, out, tag, 1, err);
}

enum vf_code vf_aes256gcm_open(const uint8_t key[VF_AES_GCM_KEY_LEN], const uint8_t *nonce,
			       size_t nonce_len, const uint8_t *aad, size_t aad_len,
			       const uint8_t *in, size_t len, const uint8_t tag[VF_AES_GCM_TAG_LEN],
			       uint8_t *out, struct vf_error *err)
{
	return aes_gcm_one_shot(key, nonce, nonce_len, aad, aad_len, in, len, out, (uint8_t *)tag,
				0, err);
}

struct vf_sha512 {
	EVP_MD_CTX *ctx;
};

enum vf_code vf_sha512_new(struct vf_sha512 **out, struct vf_error *err)
{
	EVP_MD *sha512 = alg_sha512();
	struct vf_sha512 *h = calloc(1, sizeof(*h));
	if (!h || !(h->ctx = EVP_MD_CTX_new())) {
		free(h);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	if (!sha512 || EVP_DigestInit_ex2(h->ctx, sha512, NULL) != 1) {
		vf_sha512_free(h);
		return openssl_fail(err, "SHA-512 init");
	}
	*out = h;
	return VF_OK;
}

enum vf_code vf_sha512_update(struct vf_sha512 *h, const void *p, size_t len,
			      struct vf_error *err)
{
	if (len && EVP_DigestUpdate(h->ctx, p, len) != 1)
		return openssl_fail(err, "SHA-512");
	return VF_OK;
}

enum vf_code vf_sha512_final(struct vf_sha512 *h, uint8_t out[VF_SHA512_LEN],
			     struct vf_error *err)
{
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != VF_SHA512_LEN)
		return openssl_fail(err, "SHA-512");
	return VF_OK;
}

/* EVP_MD_CTX_free cleanses the state (it held a hash of secrets). */
void vf_sha512_free(struct vf_sha512 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* One digest or XOF over the pieces. The context is freed at once:
 * EVP_MD_CTX_free cleanses the state, which held secrets (ML-KEM's seeds
 * and messages pass through here). */
static enum vf_code digest_pieces(const EVP_MD *md, const char *what, const struct vf_iov *in,
				  size_t n, uint8_t *out, size_t out_len, int xof,
				  struct vf_error *err)
{
	EVP_MD_CTX *ctx = md ? EVP_MD_CTX_new() : NULL;
	int ok = ctx && EVP_DigestInit_ex2(ctx, md, NULL) == 1;
	for (size_t i = 0; ok && i < n; i++)
		ok = in[i].len == 0 || EVP_DigestUpdate(ctx, in[i].p, in[i].len) == 1;
	if (ok && xof) {
		ok = EVP_DigestFinalXOF(ctx, out, out_len) == 1;
	} else if (ok) {
		unsigned int len = 0;
		ok = EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == out_len;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? VF_OK : openssl_fail(err, what);
}

enum vf_code vf_sha3_256(const struct vf_iov *in, size_t n, uint8_t out[VF_SHA3_256_LEN],
			 struct vf_error *err)
{
	return digest_pieces(alg_sha3_256(), "SHA3-256", in, n, out, VF_SHA3_256_LEN, 0, err);
}

enum vf_code vf_sha3_512(const struct vf_iov *in, size_t n, uint8_t out[VF_SHA3_512_LEN],
			 struct vf_error *err)
{
	return digest_pieces(alg_sha3_512(), "SHA3-512", in, n, out, VF_SHA3_512_LEN, 0, err);
}

enum vf_code vf_shake128(const struct vf_iov *in, size_t n, uint8_t *out, size_t out_len,
			 struct vf_error *err)
{
	return digest_pieces(alg_shake128(), "SHAKE128", in, n, out, out_len, 1, err);
}

enum vf_code vf_shake256(const struct vf_iov *in, size_t n, uint8_t *out, size_t out_len,
			 struct vf_error *err)
{
	return digest_pieces(alg_shake256(), "SHAKE256", in, n, out, out_len, 1, err);
}
