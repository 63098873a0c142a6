/* X-Wing (draft-connolly-cfrg-xwing-kem): ML-KEM-768 and X25519 in one
 * KEM, secure while either holds. It is the KEM of age's mlkem768x25519
 * recipients (HPKE KEM id 0x647a).
 *
 *   seed (32 bytes) -> SHAKE256(seed, 96) = d || z || sk_X
 *   pk = ML-KEM ek (1,184) || X25519(sk_X, base) (32)
 *   ct = ML-KEM ct (1,088) || ephemeral X25519 share ct_X (32)
 *   ss = SHA3-256(ss_M || ss_X || ct_X || pk_X || "\.//^\")
 *
 * An all-zero X25519 result (a low-order point) is refused with
 * VF_E_KEY, as age requires. */
#ifndef VF_XWING_H
#define VF_XWING_H

#include <stddef.h>
#include <stdint.h>

#include "base/crypto.h"
#include "base/error.h"
#include "age/mlkem.h"

#define VF_XWING_SEED_LEN 32
#define VF_XWING_ESEED_LEN 64
#define VF_XWING_PK_LEN (VF_MLKEM768_EK_LEN + VF_X25519_LEN)
#define VF_XWING_CT_LEN (VF_MLKEM768_CT_LEN + VF_X25519_LEN)
#define VF_XWING_SS_LEN 32

/* A decapsulation key expanded from its seed once (the ML-KEM key in
 * guarded memory, the X25519 secret imported into OpenSSL), for an
 * identity that opens many stanzas. VF_E_KEY unless seed_len is 32. */
struct vf_xwing_key;
enum vf_code vf_xwing_key_new(struct vf_xwing_key **out, const uint8_t *seed, size_t seed_len,
			      struct vf_error *err);
/* Its public key, VF_XWING_PK_LEN bytes. */
const uint8_t *vf_xwing_key_public(const struct vf_xwing_key *key);
void vf_xwing_key_free(struct vf_xwing_key *key);

/* Decapsulation. A ciphertext made for another key is no error: its
 * ML-KEM half gives a pseudo-random secret (implicit rejection), so ss
 * is simply another value. */
enum vf_code vf_xwing_decaps(const struct vf_xwing_key *key, const uint8_t ct[VF_XWING_CT_LEN],
			     uint8_t ss[VF_XWING_SS_LEN], struct vf_error *err);

/* The public key's checks: its length and the ML-KEM modulus check
 * (VF_E_KEY). */
enum vf_code vf_xwing_check_pk(const uint8_t *pk, size_t pk_len, struct vf_error *err);

/* A public key expanded once (vf_mlkem768_ek_new) for many encapsulations:
 * checked as vf_xwing_check_pk checks it. Only read by encapsulation, so
 * one may serve several threads. */
struct vf_xwing_pub;
enum vf_code vf_xwing_pub_new(struct vf_xwing_pub **out, const uint8_t *pk, size_t pk_len,
			      struct vf_error *err);
void vf_xwing_pub_free(struct vf_xwing_pub *pub);
enum vf_code vf_xwing_encaps_pub(const struct vf_xwing_pub *pub, const uint8_t *eseed,
				 uint8_t ct[VF_XWING_CT_LEN], uint8_t ss[VF_XWING_SS_LEN],
				 struct vf_error *err);

/* Encapsulation to pk (checked as above). eseed is the 64 bytes of
 * randomness (ML-KEM's m || the ephemeral X25519 secret); NULL draws them
 * from OpenSSL's CSPRNG, the only use outside test vectors. */
enum vf_code vf_xwing_encaps(const uint8_t pk[VF_XWING_PK_LEN], const uint8_t *eseed,
			     uint8_t ct[VF_XWING_CT_LEN], uint8_t ss[VF_XWING_SS_LEN],
			     struct vf_error *err);

#endif
