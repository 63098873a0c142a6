/* The hybrid post-quantum recipient type of age 1.3, mlkem768x25519:
 *
 *   -> mlkem768x25519 <base64 of enc, 1,120 bytes: 1,494 characters>
 *   <base64 of the 32-byte body>
 *
 * enc and body are HPKE base mode (hpke.h: X-Wing, HKDF-SHA256,
 * ChaCha20-Poly1305) sealing the file key with info
 * "age-encryption.org/mlkem768x25519" and no aad. Identities are the
 * 32-byte X-Wing seed, "AGE-SECRET-KEY-PQ-1..."; recipients the 1,216-byte
 * X-Wing public key, "age1pq1..." (about 1,960 characters: bech32 without
 * its usual 90-character limit). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/bech32.h"
#include "base/secmem.h"
#include "age/header_internal.h"
#include "age/hpke.h"
#include "age/recipient_internal.h"

_Static_assert(VF_HYBRID_ENC_LEN == VF_HPKE_ENC_LEN, "mlkem768x25519 enc is X-Wing's");

#define TYPE VF_HYBRID_STANZA_TYPE
#define INFO "age-encryption.org/mlkem768x25519"
#define WRAPPED_LEN (VF_FILE_KEY_LEN + VF_AEAD_TAG_LEN)

struct hybrid_recipient {
	struct vf_recipient base;
	uint8_t pk[VF_XWING_PK_LEN];
	/* The key expanded for encapsulation (its ML-KEM matrix sampled, H(ek)
	 * hashed), made on the first wrap and kept for the next ones: a store
	 * seals thousands of files to the same admins (vars.c keeps parsed
	 * recipients for that). Not at parse time, since a spec check parses
	 * every machine's key and wraps to none. The lock lets threads that
	 * share the recipient expand it once. */
	pthread_mutex_t lock;
	struct vf_xwing_pub *pub;
};

/* The expanded key, made on first use. The recipient is const to its
 * users (wrapping does not change what it is); the expansion is a cache
 * inside it, hence the cast. */
static enum vf_code expanded(const struct hybrid_recipient *cr, const struct vf_xwing_pub **out,
			     struct vf_error *err)
{
	struct hybrid_recipient *r = (struct hybrid_recipient *)cr;
	enum vf_code rc = VF_OK;
	pthread_mutex_lock(&r->lock);
	if (!r->pub)
		rc = vf_xwing_pub_new(&r->pub, r->pk, sizeof(r->pk), err);
	*out = r->pub;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

struct hybrid_identity {
	struct vf_identity base;
	uint8_t *seed; /* guarded */
	struct vf_xwing_key *key; /* expanded once, for every stanza */
};

static enum vf_code recipient_wrap(const struct vf_recipient *base,
				   const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_stanza *out,
				   struct vf_error *err)
{
	const struct hybrid_recipient *r = (const struct hybrid_recipient *)base;
	uint8_t enc[VF_HPKE_ENC_LEN], body[WRAPPED_LEN];
	const struct vf_xwing_pub *pub;
	enum vf_code rc = expanded(r, &pub, err);
	if (rc == VF_OK)
		rc = vf_hpke_seal_pub(pub, (const uint8_t *)INFO, strlen(INFO), NULL, 0, file_key,
				      VF_FILE_KEY_LEN, enc, body, err);
	if (rc != VF_OK)
		return rc;
	char *arg = malloc(vf_b64_encoded_len(sizeof(enc), false) + 1);
	if (!arg)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	arg[vf_b64_encode(enc, sizeof(enc), arg, false)] = '\0';
	const char *args[] = {arg};
	rc = vf_stanza_init(out, TYPE, args, 1, body, sizeof(body), err);
	free(arg);
	return rc;
}

static void recipient_free(struct vf_recipient *base)
{
	struct hybrid_recipient *r = (struct hybrid_recipient *)base;
	vf_xwing_pub_free(r->pub);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct vf_recipient_ops recipient_ops = {
	.type = TYPE,
	.must_be_alone = false,
	.post_quantum = true,
	.wrap = recipient_wrap,
	.free = recipient_free,
};

static bool has_range(const char *s, size_t n, char lo, char hi)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= lo && s[i] <= hi)
			return true;
	return false;
}

enum vf_code vf_hybrid_recipient_parse(const char *s, struct vf_recipient **out,
				       struct vf_error *err)
{
	char hrp[16];
	size_t len = strlen(s), n = 0;
	struct hybrid_recipient *r = calloc(1, sizeof(*r));
	uint8_t *pk = malloc(VF_XWING_PK_LEN + 1);
	enum vf_code rc = VF_OK;
	if (!r || !pk)
		rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	else if (has_range(s, len, 'A', 'Z') ||
		 !vf_bech32_decode_public(s, len, hrp, sizeof(hrp), pk, VF_XWING_PK_LEN + 1, &n) ||
		 strcmp(hrp, VF_HYBRID_RECIPIENT_HRP) != 0 || n != VF_XWING_PK_LEN)
		rc = vf_fail(err, VF_E_KEY, "malformed post-quantum (age1pq1...) recipient");
	else if (vf_xwing_check_pk(pk, n, err) != VF_OK)
		rc = vf_fail(err, VF_E_KEY,
			     "malformed post-quantum (age1pq1...) recipient: its ML-KEM-768 key "
			     "fails the modulus check");
	if (rc == VF_OK && pthread_mutex_init(&r->lock, NULL) != 0)
		rc = vf_fail(err, VF_E_NOMEM, "out of memory (a mutex)");
	if (rc == VF_OK) {
		r->base.ops = &recipient_ops;
		memcpy(r->pk, pk, VF_XWING_PK_LEN);
		*out = &r->base;
	} else {
		free(r);
	}
	free(pk);
	return rc;
}

enum vf_code vf_hybrid_stanza_enc(const struct vf_stanza *s, uint8_t enc[VF_HPKE_ENC_LEN],
				  struct vf_error *err)
{
	/* Room for whatever the argument holds, so that a wrong length is
	 * told apart from bad base64 (the header line bounds it). */
	size_t arg_len = s->nargs ? strlen(s->args[0]) : 0;
	uint8_t *decoded = malloc(arg_len / 4 * 3 + 3);
	if (!decoded)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t n = 0;
	enum vf_code rc = VF_OK;
	if (s->nargs != 1)
		rc = vf_fail(err, VF_E_HEADER,
			     "malformed " TYPE " stanza: %zu arguments (expected one, the "
			     "encapsulated key)",
			     s->nargs);
	else if (!vf_b64_decode(s->args[0], arg_len, decoded, arg_len / 4 * 3 + 3, &n, false))
		rc = vf_fail(err, VF_E_HEADER,
			     "malformed " TYPE " stanza: its encapsulated key is not canonical "
			     "unpadded base64");
	else if (n != VF_HPKE_ENC_LEN)
		rc = vf_fail(err, VF_E_HEADER,
			     "malformed " TYPE " stanza: encapsulated key of %zu bytes "
			     "(expected %d)",
			     n, VF_HPKE_ENC_LEN);
	if (rc == VF_OK) {
		memcpy(enc, decoded, VF_HPKE_ENC_LEN);
		rc = vf_stanza_wrapped_key(s, err);
	}
	free(decoded);
	return rc;
}

static enum vf_code identity_unwrap(struct vf_identity *base, const struct vf_stanza *s,
				    uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err)
{
	struct hybrid_identity *id = (struct hybrid_identity *)base;
	if (strcmp(s->type, TYPE) != 0)
		return VF_E_NO_MATCH;
	uint8_t enc[VF_HPKE_ENC_LEN];
	enum vf_code rc = vf_hybrid_stanza_enc(s, enc, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_hpke_open(id->key, enc, (const uint8_t *)INFO, strlen(INFO), NULL, 0, s->body,
			  s->body_len, file_key, err);
	if (rc == VF_E_KEY) {
		/* The X25519 half gave the all-zero secret: a low-order share,
		 * which inspection (vf_share_check_order) refuses alike. */
		rc = vf_fail(err, VF_E_HEADER, TYPE " stanza with a low-order share");
	} else if (rc == VF_E_AUTH) {
		/* Not for us (ML-KEM's implicit rejection gave another key):
		 * no reason to report, the caller tries the rest. */
		rc = VF_E_NO_MATCH;
		if (err)
			err->msg[0] = '\0';
	}
	return rc;
}

static void identity_free(struct vf_identity *base)
{
	struct hybrid_identity *id = (struct hybrid_identity *)base;
	vf_xwing_key_free(id->key);
	vf_secure_free(id->seed);
	free(id);
}

static enum vf_code identity_recipient(const struct vf_identity *id, char **out,
				       struct vf_error *err)
{
	return vf_hybrid_identity_recipient(id, out, err);
}

static const struct vf_identity_ops identity_ops = {
	.type = TYPE,
	.unwrap = identity_unwrap,
	.recipient = identity_recipient,
	.free = identity_free,
};

/* Takes a guarded 32-byte seed. */
static enum vf_code identity_from_seed(uint8_t *seed, struct vf_identity **out,
				       struct vf_error *err)
{
	struct hybrid_identity *id = calloc(1, sizeof(*id));
	if (!id) {
		vf_secure_free(seed);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	id->base.ops = &identity_ops;
	id->seed = seed;
	enum vf_code rc = vf_xwing_key_new(&id->key, seed, VF_XWING_SEED_LEN, err);
	if (rc != VF_OK) {
		identity_free(&id->base);
		return rc;
	}
	*out = &id->base;
	return VF_OK;
}

enum vf_code vf_hybrid_identity_parse(const char *s, size_t s_len, struct vf_identity **out,
				      struct vf_error *err)
{
	char hrp[32];
	size_t n = 0;
	uint8_t *seed = vf_secure_alloc(VF_XWING_SEED_LEN + 1);
	if (!seed)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (has_range(s, s_len, 'a', 'z') ||
	    !vf_bech32_decode(s, s_len, hrp, sizeof(hrp), seed, VF_XWING_SEED_LEN + 1, &n) ||
	    strcmp(hrp, "age-secret-key-pq-") != 0 || n != VF_XWING_SEED_LEN) {
		vf_secure_free(seed);
		return vf_fail(err, VF_E_KEY, "malformed post-quantum (AGE-SECRET-KEY-PQ-1...) "
					      "identity");
	}
	return identity_from_seed(seed, out, err);
}

enum vf_code vf_hybrid_identity_generate(struct vf_identity **out, struct vf_error *err)
{
	uint8_t *seed = vf_secure_alloc(VF_XWING_SEED_LEN);
	if (!seed)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_random(seed, VF_XWING_SEED_LEN, err);
	if (rc != VF_OK) {
		vf_secure_free(seed);
		return rc;
	}
	return identity_from_seed(seed, out, err);
}

bool vf_is_hybrid_identity(const struct vf_identity *id)
{
	return id->ops == &identity_ops;
}

enum vf_code vf_hybrid_identity_encode(const struct vf_identity *base, char **secret,
				       struct vf_error *err)
{
	if (!vf_is_hybrid_identity(base))
		return vf_fail(err, VF_E_ARG, "not a post-quantum identity");
	const struct hybrid_identity *id = (const struct hybrid_identity *)base;
	size_t cap = vf_bech32_encoded_len(strlen(VF_HYBRID_IDENTITY_HRP), VF_XWING_SEED_LEN) + 1;
	char *s = vf_secure_alloc(cap);
	if (!s)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (!vf_bech32_encode(VF_HYBRID_IDENTITY_HRP, id->seed, VF_XWING_SEED_LEN, true, s, cap)) {
		vf_secure_free(s);
		return vf_fail(err, VF_E_ARG, "cannot encode identity");
	}
	*secret = s;
	return VF_OK;
}

enum vf_code vf_hybrid_identity_recipient(const struct vf_identity *base, char **recipient,
					  struct vf_error *err)
{
	if (!vf_is_hybrid_identity(base))
		return vf_fail(err, VF_E_ARG, "not a post-quantum identity");
	const struct hybrid_identity *id = (const struct hybrid_identity *)base;
	size_t cap = vf_bech32_encoded_len(strlen(VF_HYBRID_RECIPIENT_HRP), VF_XWING_PK_LEN) + 1;
	char *s = malloc(cap);
	if (!s)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	if (!vf_bech32_encode(VF_HYBRID_RECIPIENT_HRP, vf_xwing_key_public(id->key),
			      VF_XWING_PK_LEN, false, s, cap)) {
		free(s);
		return vf_fail(err, VF_E_ARG, "cannot encode recipient");
	}
	*recipient = s;
	return VF_OK;
}
