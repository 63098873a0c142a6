/* HPKE (RFC 9180), base mode, for the one suite age's mlkem768x25519
 * recipients use: KEM X-Wing (0x647a, xwing.h), KDF HKDF-SHA256 (0x0001),
 * AEAD ChaCha20-Poly1305 (0x0003). As hpke-pq defines X-Wing for HPKE,
 * the KEM's shared secret is HPKE's shared_secret as it is.
 *
 * A context is what the key schedule gives (key, base nonce, exporter
 * secret) and the sequence number; callers keep it in guarded memory.
 * age uses one seal or open per context: vf_hpke_seal / vf_hpke_open. */
#ifndef VF_HPKE_H
#define VF_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "base/crypto.h"
#include "base/error.h"
#include "age/xwing.h"

#define VF_HPKE_KEM_XWING 0x647a
#define VF_HPKE_KDF_HKDF_SHA256 0x0001
#define VF_HPKE_AEAD_CHACHA20POLY1305 0x0003
#define VF_HPKE_ENC_LEN VF_XWING_CT_LEN

struct vf_hpke_ctx {
	uint8_t key[VF_AEAD_KEY_LEN];
	uint8_t base_nonce[VF_AEAD_NONCE_LEN];
	uint8_t exporter_secret[VF_SHA256_LEN];
	uint64_t seq;
};

/* KeySchedule(mode_base, shared_secret, info, "", ""). */
enum vf_code vf_hpke_key_schedule(const uint8_t ss[VF_XWING_SS_LEN], const uint8_t *info,
				  size_t info_len, struct vf_hpke_ctx *ctx, struct vf_error *err);

/* SetupBaseS: encapsulates to pk (eseed as for vf_xwing_encaps: NULL is
 * random) and runs the key schedule. */
enum vf_code vf_hpke_setup_sender(const uint8_t *pk, size_t pk_len, const uint8_t *eseed,
				  const uint8_t *info, size_t info_len,
				  uint8_t enc[VF_HPKE_ENC_LEN], struct vf_hpke_ctx *ctx,
				  struct vf_error *err);
/* The same to a public key expanded once (vf_xwing_pub_new). */
enum vf_code vf_hpke_setup_sender_pub(const struct vf_xwing_pub *pub, const uint8_t *eseed,
				      const uint8_t *info, size_t info_len,
				      uint8_t enc[VF_HPKE_ENC_LEN], struct vf_hpke_ctx *ctx,
				      struct vf_error *err);
/* SetupBaseR. VF_E_KEY when the X25519 half gives the all-zero secret. */
enum vf_code vf_hpke_setup_receiver(const struct vf_xwing_key *key,
				    const uint8_t enc[VF_HPKE_ENC_LEN], const uint8_t *info,
				    size_t info_len, struct vf_hpke_ctx *ctx,
				    struct vf_error *err);

/* ContextS.Seal / ContextR.Open with nonce = base_nonce XOR seq, then
 * seq + 1. seal writes len + 16 bytes; open takes len >= 16 bytes and
 * writes len - 16, or fails with VF_E_AUTH (out wiped, seq unchanged). */
enum vf_code vf_hpke_ctx_seal(struct vf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
			      const uint8_t *pt, size_t len, uint8_t *out, struct vf_error *err);
enum vf_code vf_hpke_ctx_open(struct vf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
			      const uint8_t *ct, size_t len, uint8_t *out, struct vf_error *err);

/* Context.Export(exporter_context, L). */
enum vf_code vf_hpke_export(const struct vf_hpke_ctx *ctx, const uint8_t *exporter_context,
			    size_t context_len, uint8_t *out, size_t out_len,
			    struct vf_error *err);

/* Single-shot: Seal(pkR, info, aad, pt) -> enc, ct (len + 16 bytes), with
 * fresh randomness; Open(skR, enc, info, aad, ct). The context lives in
 * guarded scratch memory and is wiped. */
enum vf_code vf_hpke_seal(const uint8_t *pk, size_t pk_len, const uint8_t *info,
			  size_t info_len, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			  size_t len, uint8_t enc[VF_HPKE_ENC_LEN], uint8_t *ct,
			  struct vf_error *err);
enum vf_code vf_hpke_seal_pub(const struct vf_xwing_pub *pub, const uint8_t *info,
			      size_t info_len, const uint8_t *aad, size_t aad_len,
			      const uint8_t *pt, size_t len, uint8_t enc[VF_HPKE_ENC_LEN],
			      uint8_t *ct, struct vf_error *err);
enum vf_code vf_hpke_open(const struct vf_xwing_key *key, const uint8_t enc[VF_HPKE_ENC_LEN],
			  const uint8_t *info, size_t info_len, const uint8_t *aad,
			  size_t aad_len, const uint8_t *ct, size_t len, uint8_t *pt,
			  struct vf_error *err);

#endif
