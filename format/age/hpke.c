/* HPKE base mode with X-Wing, HKDF-SHA256 and ChaCha20-Poly1305 (RFC 9180
 * sections 4, 5.1, 5.2 and 5.3), over the wrappers of base/crypto.h. */
#include "age/hpke.h"

#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"

/* suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2) */
static const uint8_t suite_id[] = {
	'H', 'P', 'K', 'E',
	VF_HPKE_KEM_XWING >> 8, VF_HPKE_KEM_XWING & 0xff,
	VF_HPKE_KDF_HKDF_SHA256 >> 8, VF_HPKE_KDF_HKDF_SHA256 & 0xff,
	VF_HPKE_AEAD_CHACHA20POLY1305 >> 8, VF_HPKE_AEAD_CHACHA20POLY1305 & 0xff,
};
#define HPKE_VERSION "HPKE-v1"
#define MODE_BASE 0x00

/* prefix || "HPKE-v1" || suite_id || label || data, in a malloc'd buffer.
 * Only public bytes go through here (labels, info, the key schedule
 * context, exporter contexts): the secrets are HKDF's keys and salts. */
static uint8_t *labeled(const uint8_t *prefix, size_t prefix_len, const char *label,
			const uint8_t *data, size_t data_len, size_t *out_len)
{
	size_t version_len = strlen(HPKE_VERSION), label_len = strlen(label);
	size_t len = prefix_len + version_len + sizeof(suite_id) + label_len + data_len;
	uint8_t *buf = malloc(len), *p = buf;
	if (!buf)
		return NULL;
	if (prefix_len)
		memcpy(p, prefix, prefix_len);
	p += prefix_len;
	memcpy(p, HPKE_VERSION, version_len);
	p += version_len;
	memcpy(p, suite_id, sizeof(suite_id));
	p += sizeof(suite_id);
	memcpy(p, label, label_len);
	p += label_len;
	if (data_len)
		memcpy(p, data, data_len);
	*out_len = len;
	return buf;
}

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm). */
static enum vf_code labeled_extract(const uint8_t *salt, size_t salt_len, const char *label,
				    const uint8_t *ikm, size_t ikm_len, uint8_t prk[VF_SHA256_LEN],
				    struct vf_error *err)
{
	size_t len = 0;
	uint8_t *buf = labeled(NULL, 0, label, ikm, ikm_len, &len);
	if (!buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hkdf_sha256_extract(salt, salt_len, buf, len, prk, err);
	free(buf);
	return rc;
}

/* LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1"
 * || suite_id || label || info, L). */
static enum vf_code labeled_expand(const uint8_t prk[VF_SHA256_LEN], const char *label,
				   const uint8_t *info, size_t info_len, uint8_t *out,
				   size_t out_len, struct vf_error *err)
{
	if (out_len > 0xffff)
		return vf_fail(err, VF_E_ARG, "HPKE output of %zu bytes is too long", out_len);
	const uint8_t l2[2] = {(uint8_t)(out_len >> 8), (uint8_t)out_len};
	size_t len = 0;
	uint8_t *buf = labeled(l2, sizeof(l2), label, info, info_len, &len);
	if (!buf)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hkdf_sha256_expand(prk, buf, len, out, out_len, err);
	free(buf);
	return rc;
}

enum vf_code vf_hpke_key_schedule(const uint8_t ss[VF_XWING_SS_LEN], const uint8_t *info,
				  size_t info_len, struct vf_hpke_ctx *ctx, struct vf_error *err)
{
	/* key_schedule_context = mode || psk_id_hash || info_hash (psk and
	 * psk_id are empty in base mode). */
	uint8_t ksc[1 + 2 * VF_SHA256_LEN];
	ksc[0] = MODE_BASE;
	uint8_t *secret = vf_scratch_alloc(VF_SHA256_LEN);
	if (!secret)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = labeled_extract(NULL, 0, "psk_id_hash", NULL, 0, ksc + 1, err);
	if (rc == VF_OK)
		rc = labeled_extract(NULL, 0, "info_hash", info, info_len,
				     ksc + 1 + VF_SHA256_LEN, err);
	if (rc == VF_OK)
		rc = labeled_extract(ss, VF_XWING_SS_LEN, "secret", NULL, 0, secret, err);
	if (rc == VF_OK)
		rc = labeled_expand(secret, "key", ksc, sizeof(ksc), ctx->key, sizeof(ctx->key),
				    err);
	if (rc == VF_OK)
		rc = labeled_expand(secret, "base_nonce", ksc, sizeof(ksc), ctx->base_nonce,
				    sizeof(ctx->base_nonce), err);
	if (rc == VF_OK)
		rc = labeled_expand(secret, "exp", ksc, sizeof(ksc), ctx->exporter_secret,
				    sizeof(ctx->exporter_secret), err);
	ctx->seq = 0;
	vf_scratch_free(secret, VF_SHA256_LEN);
	if (rc != VF_OK)
		vf_wipe(ctx, sizeof(*ctx));
	return rc;
}

enum vf_code vf_hpke_setup_sender_pub(const struct vf_xwing_pub *pub, const uint8_t *eseed,
				      const uint8_t *info, size_t info_len,
				      uint8_t enc[VF_HPKE_ENC_LEN], struct vf_hpke_ctx *ctx,
				      struct vf_error *err)
{
	uint8_t *ss = vf_scratch_alloc(VF_XWING_SS_LEN);
	if (!ss)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_xwing_encaps_pub(pub, eseed, enc, ss, err);
	if (rc == VF_OK)
		rc = vf_hpke_key_schedule(ss, info, info_len, ctx, err);
	vf_scratch_free(ss, VF_XWING_SS_LEN);
	return rc;
}

enum vf_code vf_hpke_setup_sender(const uint8_t *pk, size_t pk_len, const uint8_t *eseed,
				  const uint8_t *info, size_t info_len,
				  uint8_t enc[VF_HPKE_ENC_LEN], struct vf_hpke_ctx *ctx,
				  struct vf_error *err)
{
	struct vf_xwing_pub *pub;
	enum vf_code rc = vf_xwing_pub_new(&pub, pk, pk_len, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_hpke_setup_sender_pub(pub, eseed, info, info_len, enc, ctx, err);
	vf_xwing_pub_free(pub);
	return rc;
}

enum vf_code vf_hpke_setup_receiver(const struct vf_xwing_key *key,
				    const uint8_t enc[VF_HPKE_ENC_LEN], const uint8_t *info,
				    size_t info_len, struct vf_hpke_ctx *ctx,
				    struct vf_error *err)
{
	uint8_t *ss = vf_scratch_alloc(VF_XWING_SS_LEN);
	if (!ss)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_xwing_decaps(key, enc, ss, err);
	if (rc == VF_OK)
		rc = vf_hpke_key_schedule(ss, info, info_len, ctx, err);
	vf_scratch_free(ss, VF_XWING_SS_LEN);
	return rc;
}

/* ComputeNonce: base_nonce XOR I2OSP(seq, 12). */
static void compute_nonce(const struct vf_hpke_ctx *ctx, uint8_t nonce[VF_AEAD_NONCE_LEN])
{
	memcpy(nonce, ctx->base_nonce, VF_AEAD_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[VF_AEAD_NONCE_LEN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

enum vf_code vf_hpke_ctx_seal(struct vf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
			      const uint8_t *pt, size_t len, uint8_t *out, struct vf_error *err)
{
	if (ctx->seq == UINT64_MAX)
		return vf_fail(err, VF_E_ARG, "HPKE context has sealed its last message");
	uint8_t nonce[VF_AEAD_NONCE_LEN];
	compute_nonce(ctx, nonce);
	enum vf_code rc = vf_aead_seal(ctx->key, nonce, sizeof(nonce), aad, aad_len, pt, len, out,
				       out + len, err);
	if (rc == VF_OK)
		ctx->seq++;
	return rc;
}

enum vf_code vf_hpke_ctx_open(struct vf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
			      const uint8_t *ct, size_t len, uint8_t *out, struct vf_error *err)
{
	if (len < VF_AEAD_TAG_LEN)
		return vf_fail(err, VF_E_AUTH, "HPKE ciphertext shorter than its tag");
	if (ctx->seq == UINT64_MAX)
		return vf_fail(err, VF_E_ARG, "HPKE context has opened its last message");
	uint8_t nonce[VF_AEAD_NONCE_LEN];
	size_t pt_len = len - VF_AEAD_TAG_LEN;
	compute_nonce(ctx, nonce);
	enum vf_code rc = vf_aead_open(ctx->key, nonce, sizeof(nonce), aad, aad_len, ct, pt_len,
				       ct + pt_len, out, err);
	if (rc == VF_OK)
		ctx->seq++;
	return rc;
}

enum vf_code vf_hpke_export(const struct vf_hpke_ctx *ctx, const uint8_t *exporter_context,
			    size_t context_len, uint8_t *out, size_t out_len,
			    struct vf_error *err)
{
	return labeled_expand(ctx->exporter_secret, "sec", exporter_context, context_len, out,
			      out_len, err);
}

enum vf_code vf_hpke_seal_pub(const struct vf_xwing_pub *pub, const uint8_t *info,
			      size_t info_len, const uint8_t *aad, size_t aad_len,
			      const uint8_t *pt, size_t len, uint8_t enc[VF_HPKE_ENC_LEN],
			      uint8_t *ct, struct vf_error *err)
{
	struct vf_hpke_ctx *ctx = vf_scratch_alloc(sizeof(*ctx));
	if (!ctx)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hpke_setup_sender_pub(pub, NULL, info, info_len, enc, ctx, err);
	if (rc == VF_OK)
		rc = vf_hpke_ctx_seal(ctx, aad, aad_len, pt, len, ct, err);
	vf_scratch_free(ctx, sizeof(*ctx));
	return rc;
}

enum vf_code vf_hpke_seal(const uint8_t *pk, size_t pk_len, const uint8_t *info,
			  size_t info_len, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			  size_t len, uint8_t enc[VF_HPKE_ENC_LEN], uint8_t *ct,
			  struct vf_error *err)
{
	struct vf_xwing_pub *pub;
	enum vf_code rc = vf_xwing_pub_new(&pub, pk, pk_len, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_hpke_seal_pub(pub, info, info_len, aad, aad_len, pt, len, enc, ct, err);
	vf_xwing_pub_free(pub);
	return rc;
}

enum vf_code vf_hpke_open(const struct vf_xwing_key *key, const uint8_t enc[VF_HPKE_ENC_LEN],
			  const uint8_t *info, size_t info_len, const uint8_t *aad,
			  size_t aad_len, const uint8_t *ct, size_t len, uint8_t *pt,
			  struct vf_error *err)
{
	struct vf_hpke_ctx *ctx = vf_scratch_alloc(sizeof(*ctx));
	if (!ctx)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hpke_setup_receiver(key, enc, info, info_len, ctx, err);
	if (rc == VF_OK)
		rc = vf_hpke_ctx_open(ctx, aad, aad_len, ct, len, pt, err);
	vf_scratch_free(ctx, sizeof(*ctx));
	return rc;
}
