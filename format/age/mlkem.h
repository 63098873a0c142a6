/* ML-KEM-768 (FIPS 203, August 2024), the lattice half of the X-Wing KEM
 * that age's mlkem768x25519 recipients use. Written here because neither
 * OpenSSL 3.0 nor libsodium 1.0.18 has it; every hash and XOF goes
 * through OpenSSL (base/crypto.h).
 *
 * Constant time: no branch and no memory index depends on a secret (the
 * decapsulation key, the message m, the shared key, the sampled
 * polynomials). Secret intermediates live in guarded scratch memory and
 * are wiped when each call returns. The encapsulation key and the
 * ciphertext are public; the checks on them may branch.
 *
 * Keys are given as FIPS 203 encodes them: the 64-byte seed d || z, the
 * 1,184-byte encapsulation key ek and the 2,400-byte decapsulation key
 * dk = dk_pke || ek || H(ek) || z. Lengths are passed so that a wrong one
 * is refused rather than read past. */
#ifndef VF_MLKEM_H
#define VF_MLKEM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define VF_MLKEM768_SEED_LEN 64
#define VF_MLKEM768_EK_LEN 1184
#define VF_MLKEM768_DK_LEN 2400
#define VF_MLKEM768_CT_LEN 1088
#define VF_MLKEM768_SS_LEN 32
#define VF_MLKEM768_M_LEN 32

/* ML-KEM.KeyGen_internal(d, z) with seed = d || z (FIPS 203 Algorithm
 * 16): VF_E_KEY unless seed_len is 64. dk should be guarded memory. */
enum vf_code vf_mlkem768_keygen(const uint8_t *seed, size_t seed_len,
				uint8_t ek[VF_MLKEM768_EK_LEN], uint8_t dk[VF_MLKEM768_DK_LEN],
				struct vf_error *err);

/* The encapsulation key check of FIPS 203 section 7.2: the length, and
 * the modulus check (every 12-bit coefficient below q = 3329, that is
 * ByteEncode12(ByteDecode12(ek)) == ek). VF_E_KEY otherwise. */
enum vf_code vf_mlkem768_check_ek(const uint8_t *ek, size_t ek_len, struct vf_error *err);

/* ML-KEM.Encaps (Algorithm 20) after vf_mlkem768_check_ek: ct and the
 * 32-byte shared key ss. m is the 32-byte randomness, from OpenSSL's
 * CSPRNG when NULL (a fixed m is for test vectors only: reusing one gives
 * away the key). */
enum vf_code vf_mlkem768_encaps(const uint8_t *ek, size_t ek_len, const uint8_t *m,
				uint8_t ct[VF_MLKEM768_CT_LEN], uint8_t ss[VF_MLKEM768_SS_LEN],
				struct vf_error *err);

/* An encapsulation key expanded for K-PKE (t̂ decoded, the matrix Â
 * sampled from rho, H(ek) computed): public values, in plain memory. A
 * recipient that many files are sealed to is expanded once; the
 * expansion costs more than the rest of an encapsulation. ek_new runs
 * vf_mlkem768_check_ek's checks first. */
struct vf_mlkem768_ek;
enum vf_code vf_mlkem768_ek_new(struct vf_mlkem768_ek **out, const uint8_t *ek, size_t ek_len,
				struct vf_error *err);
void vf_mlkem768_ek_free(struct vf_mlkem768_ek *ek);

/* vf_mlkem768_encaps to an expanded key; thread-safe, ek is only read. */
enum vf_code vf_mlkem768_encaps_ek(const struct vf_mlkem768_ek *ek, const uint8_t *m,
				   uint8_t ct[VF_MLKEM768_CT_LEN], uint8_t ss[VF_MLKEM768_SS_LEN],
				   struct vf_error *err);

/* The decapsulation input checks of FIPS 203 section 7.3: the ciphertext
 * length (VF_E_ARG), the key's length and its hash check H(ek) == the
 * stored hash (VF_E_KEY). */
enum vf_code vf_mlkem768_check_dk(const uint8_t *dk, size_t dk_len, struct vf_error *err);

/* ML-KEM.Decaps (Algorithm 21) after those checks. A ciphertext that was
 * not made for this key is not an error: implicit rejection gives the
 * pseudo-random key J(z || c) instead, in the same time as a match. */
enum vf_code vf_mlkem768_decaps(const uint8_t *dk, size_t dk_len, const uint8_t *ct,
				size_t ct_len, uint8_t ss[VF_MLKEM768_SS_LEN],
				struct vf_error *err);

/* vf_mlkem768_decaps for a key that has passed vf_mlkem768_check_dk once
 * (not repeated here), ek being the expansion of the ek inside dk. */
enum vf_code vf_mlkem768_decaps_ek(const uint8_t *dk, size_t dk_len,
				   const struct vf_mlkem768_ek *ek, const uint8_t *ct, size_t ct_len,
				   uint8_t ss[VF_MLKEM768_SS_LEN], struct vf_error *err);

#endif
