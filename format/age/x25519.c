/* The X25519 recipient type (age.md, "X25519 recipient stanza"). */
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/bech32.h"
#include "base/crypto.h"
#include "base/secmem.h"
#include "age/header_internal.h"
#include "age/recipient_internal.h"

#define LABEL "age-encryption.org/v1/X25519"
#define WRAPPED_LEN (VF_FILE_KEY_LEN + VF_AEAD_TAG_LEN)

struct x25519_recipient {
	struct vf_recipient base;
	uint8_t pub[VF_X25519_LEN];
};

struct x25519_identity {
	struct vf_identity base;
	uint8_t pub[VF_X25519_LEN];
	/* Imported once, for every stanza. The secret lives only there, in
	 * OpenSSL's secure heap (format/base/secmem.c): no guarded copy of our
	 * own, which cost a short run an mmap, four mprotects, an mlock and
	 * their undoing (about 0.05 ms). */
	struct vf_x25519_key *key;
};

/* shared' = X25519(HKDF("", tweak_salt, label), shared), in place. */
static enum vf_code tweak_shared(const struct vf_share_kdf *kdf, uint8_t shared[VF_X25519_LEN],
				 struct vf_error *err)
{
	uint8_t *tweak = vf_scratch_alloc(VF_X25519_LEN);
	if (!tweak)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hkdf_sha256(NULL, 0, kdf->tweak_salt, kdf->tweak_salt_len, kdf->label,
					 strlen(kdf->label), tweak, VF_X25519_LEN, err);
	uint8_t tweaked[VF_X25519_LEN];
	if (rc == VF_OK)
		rc = vf_x25519(tweak, shared, tweaked, err);
	if (rc == VF_OK)
		memcpy(shared, tweaked, VF_X25519_LEN);
	vf_wipe(tweaked, sizeof(tweaked));
	vf_scratch_free(tweak, VF_X25519_LEN);
	return rc;
}

/* wrap key = HKDF(shared (tweaked), salt = ephemeral share || recipient, label). */
static enum vf_code wrap_key(const struct vf_share_kdf *kdf, uint8_t *shared,
			     const uint8_t share[VF_X25519_LEN],
			     const uint8_t recipient[VF_X25519_LEN], uint8_t *key,
			     struct vf_error *err)
{
	if (kdf->tweak_salt) {
		enum vf_code rc = tweak_shared(kdf, shared, err);
		if (rc != VF_OK)
			return rc;
	}
	uint8_t salt[2 * VF_X25519_LEN];
	memcpy(salt, share, VF_X25519_LEN);
	memcpy(salt + VF_X25519_LEN, recipient, VF_X25519_LEN);
	return vf_hkdf_sha256(shared, VF_X25519_LEN, salt, sizeof(salt), kdf->label,
			      strlen(kdf->label), key, VF_AEAD_KEY_LEN, err);
}

enum vf_code vf_share_wrap(const struct vf_share_kdf *kdf, const uint8_t recipient[VF_X25519_LEN],
			   const uint8_t file_key[VF_FILE_KEY_LEN], uint8_t share[VF_X25519_LEN],
			   uint8_t body[VF_SHARE_WRAPPED_LEN], struct vf_error *err)
{
	static const uint8_t zero_nonce[VF_AEAD_NONCE_LEN];
	/* One guarded block: shared secret | wrap key. */
	uint8_t *sec = vf_scratch_alloc(2 * 32);
	if (!sec)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t *shared = sec, *key = sec + 32;
	enum vf_code rc = vf_x25519_ephemeral(recipient, share, shared, err);
	if (rc == VF_OK)
		rc = wrap_key(kdf, shared, share, recipient, key, err);
	if (rc == VF_OK)
		rc = vf_aead_seal(key, zero_nonce, sizeof(zero_nonce), NULL, 0, file_key,
				  VF_FILE_KEY_LEN, body, body + VF_FILE_KEY_LEN, err);
	vf_scratch_free(sec, 2 * 32);
	return rc;
}

static enum vf_code low_order(const char *type, struct vf_error *err)
{
	return vf_fail(err, VF_E_HEADER, "%s stanza with a low-order share", type);
}

enum vf_code vf_share_check_order(const char *type, const uint8_t share[VF_X25519_LEN],
				  struct vf_error *err)
{
	/* X25519 with a low-order point is all zero whatever the scalar (each
	 * is a multiple of the cofactor 8 once clamped), and only then: a
	 * throwaway random scalar tells without any key. */
	uint8_t scalar[VF_X25519_LEN], shared[VF_X25519_LEN];
	enum vf_code rc = vf_random(scalar, sizeof(scalar), err);
	if (rc == VF_OK)
		rc = vf_x25519(scalar, share, shared, err);
	if (rc == VF_E_KEY)
		rc = low_order(type, err);
	vf_wipe(scalar, sizeof(scalar));
	vf_wipe(shared, sizeof(shared));
	return rc;
}

enum vf_code vf_share_unwrap(const struct vf_share_kdf *kdf, vf_share_dh_fn dh, const void *key,
			     const uint8_t share[VF_X25519_LEN],
			     const uint8_t recipient[VF_X25519_LEN],
			     const uint8_t body[VF_SHARE_WRAPPED_LEN],
			     uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err)
{
	static const uint8_t zero_nonce[VF_AEAD_NONCE_LEN];
	uint8_t *sec = vf_scratch_alloc(2 * 32);
	if (!sec)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t *shared = sec, *wrap = sec + 32;
	enum vf_code rc = dh(key, share, shared, err);
	if (rc == VF_E_KEY)
		rc = low_order(kdf->type, err);
	if (rc == VF_OK)
		rc = wrap_key(kdf, shared, share, recipient, wrap, err);
	if (rc == VF_OK)
		rc = vf_aead_open(wrap, zero_nonce, sizeof(zero_nonce), NULL, 0, body,
				  VF_FILE_KEY_LEN, body + VF_FILE_KEY_LEN, file_key, err);
	vf_scratch_free(sec, 2 * 32);
	return rc;
}

static const struct vf_share_kdf x25519_kdf = {.type = "X25519", .label = LABEL};

static enum vf_code recipient_wrap(const struct vf_recipient *base,
				   const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_stanza *out,
				   struct vf_error *err)
{
	const struct x25519_recipient *r = (const struct x25519_recipient *)base;
	uint8_t share[VF_X25519_LEN], body[WRAPPED_LEN];
	enum vf_code rc = vf_share_wrap(&x25519_kdf, r->pub, file_key, share, body, err);
	if (rc != VF_OK)
		return rc;
	char arg[64];
	arg[vf_b64_encode(share, sizeof(share), arg, false)] = '\0';
	const char *args[] = {arg};
	return vf_stanza_init(out, "X25519", args, 1, body, sizeof(body), err);
}

static void recipient_free(struct vf_recipient *base)
{
	free(base);
}

static const struct vf_recipient_ops recipient_ops = {
	.type = "X25519",
	.must_be_alone = false,
	.wrap = recipient_wrap,
	.free = recipient_free,
};

static bool has_case(const char *s, size_t n, char lo, char hi)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= lo && s[i] <= hi)
			return true;
	return false;
}

enum vf_code vf_x25519_recipient_parse(const char *s, struct vf_recipient **out,
				       struct vf_error *err)
{
	char hrp[16];
	uint8_t pub[VF_X25519_LEN + 1];
	size_t len = strlen(s), n = 0;
	if (has_case(s, len, 'A', 'Z') ||
	    !vf_bech32_decode_public(s, len, hrp, sizeof(hrp), pub, sizeof(pub), &n) ||
	    strcmp(hrp, VF_X25519_RECIPIENT_HRP) != 0 || n != VF_X25519_LEN)
		return vf_fail(err, VF_E_KEY, "malformed X25519 recipient");
	struct x25519_recipient *r = calloc(1, sizeof(*r));
	if (!r)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	r->base.ops = &recipient_ops;
	memcpy(r->pub, pub, VF_X25519_LEN);
	*out = &r->base;
	return VF_OK;
}

static enum vf_code imported_dh(const void *key, const uint8_t share[VF_X25519_LEN],
				uint8_t shared[VF_X25519_LEN], struct vf_error *err)
{
	return vf_x25519_key_dh(key, share, shared, err);
}

enum vf_code vf_x25519_stanza_share(const struct vf_stanza *s, uint8_t share[VF_X25519_LEN],
				    struct vf_error *err)
{
	uint8_t decoded[VF_X25519_LEN + 1];
	size_t n = 0;
	if (s->nargs != 1 ||
	    !vf_b64_decode(s->args[0], strlen(s->args[0]), decoded, sizeof(decoded), &n, false) ||
	    n != VF_X25519_LEN)
		return vf_fail(err, VF_E_HEADER, "malformed X25519 stanza");
	memcpy(share, decoded, VF_X25519_LEN);
	return vf_stanza_wrapped_key(s, err);
}

static enum vf_code identity_unwrap(struct vf_identity *base, const struct vf_stanza *s,
				    uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err)
{
	struct x25519_identity *id = (struct x25519_identity *)base;
	if (strcmp(s->type, "X25519") != 0)
		return VF_E_NO_MATCH;
	uint8_t share[VF_X25519_LEN];
	enum vf_code rc = vf_x25519_stanza_share(s, share, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_share_unwrap(&x25519_kdf, imported_dh, id->key, share, id->pub, s->body,
					  file_key, err);
	if (rc == VF_E_AUTH) {
		/* Not for us: no reason to report, the caller tries the rest. */
		rc = VF_E_NO_MATCH;
		if (err)
			err->msg[0] = '\0';
	}
	return rc;
}

static void identity_free(struct vf_identity *base)
{
	struct x25519_identity *id = (struct x25519_identity *)base;
	vf_x25519_key_free(id->key);
	free(id);
}

static enum vf_code identity_recipient(const struct vf_identity *id, char **out,
				       struct vf_error *err);

static const struct vf_identity_ops identity_ops = {
	.type = "X25519",
	.unwrap = identity_unwrap,
	.recipient = identity_recipient,
	.free = identity_free,
};

/* Imports a 32-byte secret (the caller wipes its copy). */
static enum vf_code identity_from_secret(const uint8_t *secret, struct vf_identity **out,
					 struct vf_error *err)
{
	struct x25519_identity *id = calloc(1, sizeof(*id));
	if (!id)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	id->base.ops = &identity_ops;
	/* One import, which computes the public key once. */
	enum vf_code rc = vf_x25519_key_new(&id->key, secret, err);
	if (rc == VF_OK)
		rc = vf_x25519_key_public(id->key, id->pub, err);
	if (rc != VF_OK) {
		identity_free(&id->base);
		return rc;
	}
	*out = &id->base;
	return VF_OK;
}

enum vf_code vf_x25519_identity_parse(const char *s, size_t s_len, struct vf_identity **out,
				      struct vf_error *err)
{
	char hrp[32];
	size_t n = 0;
	uint8_t *secret = vf_scratch_alloc(VF_X25519_LEN + 1);
	if (!secret)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc;
	if (has_case(s, s_len, 'a', 'z') ||
	    !vf_bech32_decode(s, s_len, hrp, sizeof(hrp), secret, VF_X25519_LEN + 1, &n) ||
	    strcmp(hrp, "age-secret-key-") != 0 || n != VF_X25519_LEN)
		rc = vf_fail(err, VF_E_KEY, "malformed X25519 identity");
	else
		rc = identity_from_secret(secret, out, err);
	vf_scratch_free(secret, VF_X25519_LEN + 1); /* wipes */
	return rc;
}

enum vf_code vf_x25519_identity_generate(struct vf_identity **out, struct vf_error *err)
{
	uint8_t *secret = vf_scratch_alloc(VF_X25519_LEN);
	if (!secret)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_random(secret, VF_X25519_LEN, err);
	if (rc == VF_OK)
		rc = identity_from_secret(secret, out, err);
	vf_scratch_free(secret, VF_X25519_LEN); /* wipes */
	return rc;
}

enum vf_code vf_x25519_identity_encode(const struct vf_identity *base, char **secret,
				       struct vf_error *err)
{
	const struct x25519_identity *id = (const struct x25519_identity *)base;
	size_t cap = vf_bech32_encoded_len(strlen(VF_X25519_IDENTITY_HRP), VF_X25519_LEN) + 1;
	char *s = vf_secure_alloc(cap);
	uint8_t *raw = s ? vf_scratch_alloc(VF_X25519_LEN) : NULL;
	if (!raw) {
		vf_secure_free(s);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	enum vf_code rc = vf_x25519_key_secret(id->key, raw, err);
	if (rc == VF_OK &&
	    !vf_bech32_encode(VF_X25519_IDENTITY_HRP, raw, VF_X25519_LEN, true, s, cap))
		rc = vf_fail(err, VF_E_ARG, "cannot encode identity");
	vf_scratch_free(raw, VF_X25519_LEN); /* wipes */
	if (rc != VF_OK) {
		vf_secure_free(s);
		return rc;
	}
	*secret = s;
	return VF_OK;
}

enum vf_code vf_x25519_identity_recipient(const struct vf_identity *base, char **recipient,
					  struct vf_error *err)
{
	const struct x25519_identity *id = (const struct x25519_identity *)base;
	size_t cap = vf_bech32_encoded_len(strlen(VF_X25519_RECIPIENT_HRP), VF_X25519_LEN) + 1;
	char *s = malloc(cap);
	if (!s)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (!vf_bech32_encode(VF_X25519_RECIPIENT_HRP, id->pub, VF_X25519_LEN, false, s, cap)) {
		free(s);
		return vf_fail(err, VF_E_ARG, "cannot encode recipient");
	}
	*recipient = s;
	return VF_OK;
}

static enum vf_code identity_recipient(const struct vf_identity *id, char **out,
				       struct vf_error *err)
{
	return vf_x25519_identity_recipient(id, out, err);
}
