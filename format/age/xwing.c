/* X-Wing on top of mlkem.c and the X25519 wrappers of base/crypto.h. */
#include "age/xwing.h"

#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "age/mlkem_internal.h"

/* The combiner's domain separator, 6 bytes: \ . / / ^ \ */
static const char xwing_label[] = "\\.//^\\";
#define XWING_LABEL_LEN 6
_Static_assert(sizeof(xwing_label) == XWING_LABEL_LEN + 1, "X-Wing label");

struct vf_xwing_key {
	uint8_t *dk;		   /* guarded: the ML-KEM-768 decapsulation key */
	struct vf_mlkem768_ek *ek;  /* its public half expanded, for the re-encryption */
	struct vf_x25519_key *x25519; /* sk_X, imported once */
	uint8_t pk[VF_XWING_PK_LEN];
};

struct vf_xwing_pub {
	struct vf_mlkem768_ek *ek;
	uint8_t pk_x[VF_X25519_LEN];
};

void vf_xwing_key_free(struct vf_xwing_key *key)
{
	if (!key)
		return;
	vf_x25519_key_free(key->x25519);
	vf_mlkem768_ek_free(key->ek);
	vf_secure_free(key->dk);
	free(key);
}

const uint8_t *vf_xwing_key_public(const struct vf_xwing_key *key)
{
	return key->pk;
}

enum vf_code vf_xwing_key_new(struct vf_xwing_key **out, const uint8_t *seed, size_t seed_len,
			      struct vf_error *err)
{
	*out = NULL;
	if (seed_len != VF_XWING_SEED_LEN)
		return vf_fail(err, VF_E_KEY, "X-Wing seed of %zu bytes (expected %d)", seed_len,
			       VF_XWING_SEED_LEN);
	struct vf_xwing_key *key = calloc(1, sizeof(*key));
	uint8_t *expanded = vf_scratch_alloc(96);
	if (key)
		key->dk = vf_secure_alloc(VF_MLKEM768_DK_LEN);
	if (!key || !key->dk || !expanded) {
		vf_scratch_free(expanded, 96);
		vf_xwing_key_free(key);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	/* d || z || sk_X = SHAKE256(seed, 96) */
	const struct vf_iov in[] = {{seed, VF_XWING_SEED_LEN}};
	const uint8_t *sk_x = expanded + VF_MLKEM768_SEED_LEN;
	enum vf_code rc = vf_shake256(in, 1, expanded, 96, err);
	if (rc == VF_OK)
		rc = vf_mlkem768_keygen(expanded, VF_MLKEM768_SEED_LEN, key->pk, key->dk, err);
	if (rc == VF_OK)
		rc = vf_x25519_public(sk_x, key->pk + VF_MLKEM768_EK_LEN, err);
	VF_CT_PUBLIC(key->pk + VF_MLKEM768_EK_LEN, VF_X25519_LEN);
	if (rc == VF_OK)
		rc = vf_x25519_key_new(&key->x25519, sk_x, err);
	/* dk was made just now from the seed: its H(ek) holds by construction,
	 * so decapsulation's per-call check_dk is left out with it. */
	if (rc == VF_OK)
		rc = vf_mlkem768_ek_new(&key->ek, key->pk, VF_MLKEM768_EK_LEN, err);
	vf_scratch_free(expanded, 96);
	if (rc != VF_OK) {
		vf_xwing_key_free(key);
		return rc;
	}
	*out = key;
	return VF_OK;
}

/* ss = SHA3-256(ss_M || ss_X || ct_X || pk_X || label). */
static enum vf_code combine(const uint8_t ss_m[VF_MLKEM768_SS_LEN],
			    const uint8_t ss_x[VF_X25519_LEN], const uint8_t ct_x[VF_X25519_LEN],
			    const uint8_t pk_x[VF_X25519_LEN], uint8_t ss[VF_XWING_SS_LEN],
			    struct vf_error *err)
{
	const struct vf_iov in[] = {
		{ss_m, VF_MLKEM768_SS_LEN}, {ss_x, VF_X25519_LEN}, {ct_x, VF_X25519_LEN},
		{pk_x, VF_X25519_LEN},	    {xwing_label, XWING_LABEL_LEN},
	};
	return vf_sha3_256(in, sizeof(in) / sizeof(in[0]), ss, err);
}

enum vf_code vf_xwing_decaps(const struct vf_xwing_key *key, const uint8_t ct[VF_XWING_CT_LEN],
			     uint8_t ss[VF_XWING_SS_LEN], struct vf_error *err)
{
	/* One guarded block: ss_M || ss_X. */
	uint8_t *sec = vf_scratch_alloc(64);
	if (!sec)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	const uint8_t *ct_x = ct + VF_MLKEM768_CT_LEN;
	enum vf_code rc = vf_mlkem768_decaps_ek(key->dk, VF_MLKEM768_DK_LEN, key->ek, ct,
						VF_MLKEM768_CT_LEN, sec, err);
	if (rc == VF_OK)
		rc = vf_x25519_key_dh(key->x25519, ct_x, sec + 32, err);
	if (rc == VF_OK)
		rc = combine(sec, sec + 32, ct_x, key->pk + VF_MLKEM768_EK_LEN, ss, err);
	vf_scratch_free(sec, 64);
	return rc;
}

enum vf_code vf_xwing_check_pk(const uint8_t *pk, size_t pk_len, struct vf_error *err)
{
	if (pk_len != VF_XWING_PK_LEN)
		return vf_fail(err, VF_E_KEY, "X-Wing public key of %zu bytes (expected %d)",
			       pk_len, VF_XWING_PK_LEN);
	return vf_mlkem768_check_ek(pk, VF_MLKEM768_EK_LEN, err);
}

enum vf_code vf_xwing_pub_new(struct vf_xwing_pub **out, const uint8_t *pk, size_t pk_len,
			      struct vf_error *err)
{
	*out = NULL;
	if (pk_len != VF_XWING_PK_LEN)
		return vf_fail(err, VF_E_KEY, "X-Wing public key of %zu bytes (expected %d)",
			       pk_len, VF_XWING_PK_LEN);
	struct vf_xwing_pub *pub = calloc(1, sizeof(*pub));
	if (!pub)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_mlkem768_ek_new(&pub->ek, pk, VF_MLKEM768_EK_LEN, err);
	if (rc != VF_OK) {
		free(pub);
		return rc;
	}
	memcpy(pub->pk_x, pk + VF_MLKEM768_EK_LEN, VF_X25519_LEN);
	*out = pub;
	return VF_OK;
}

void vf_xwing_pub_free(struct vf_xwing_pub *pub)
{
	if (!pub)
		return;
	vf_mlkem768_ek_free(pub->ek);
	free(pub);
}

enum vf_code vf_xwing_encaps_pub(const struct vf_xwing_pub *pub, const uint8_t *eseed,
				 uint8_t ct[VF_XWING_CT_LEN], uint8_t ss[VF_XWING_SS_LEN],
				 struct vf_error *err)
{
	uint8_t *sec = vf_scratch_alloc(64);
	if (!sec)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t *ct_x = ct + VF_MLKEM768_CT_LEN;
	enum vf_code rc = vf_mlkem768_encaps_ek(pub->ek, eseed, ct, sec, err);
	if (rc == VF_OK && eseed) {
		/* ek_X = eseed[32:64]: the share and the exchange from it. */
		const uint8_t *ek_x = eseed + VF_MLKEM768_M_LEN;
		rc = vf_x25519_public(ek_x, ct_x, err);
		if (rc == VF_OK)
			rc = vf_x25519(ek_x, pub->pk_x, sec + 32, err);
	} else if (rc == VF_OK) {
		/* The ephemeral secret never leaves OpenSSL. */
		rc = vf_x25519_ephemeral(pub->pk_x, ct_x, sec + 32, err);
	}
	if (rc == VF_OK)
		rc = combine(sec, sec + 32, ct_x, pub->pk_x, ss, err);
	vf_scratch_free(sec, 64);
	return rc;
}

enum vf_code vf_xwing_encaps(const uint8_t pk[VF_XWING_PK_LEN], const uint8_t *eseed,
			     uint8_t ct[VF_XWING_CT_LEN], uint8_t ss[VF_XWING_SS_LEN],
			     struct vf_error *err)
{
	struct vf_xwing_pub *pub;
	enum vf_code rc = vf_xwing_pub_new(&pub, pk, VF_XWING_PK_LEN, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_xwing_encaps_pub(pub, eseed, ct, ss, err);
	vf_xwing_pub_free(pub);
	return rc;
}
