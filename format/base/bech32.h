/* Bech32 (BIP 173) without the 90-character limit, as age uses it for
 * recipients (age1...) and identities (AGE-SECRET-KEY-1...). */
#ifndef VF_BECH32_H
#define VF_BECH32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of len bytes under an hrp of hrp_len characters. */
size_t vf_bech32_encoded_len(size_t hrp_len, size_t len);
/* Encodes data under hrp into out (capacity out_cap, NUL-terminated), in
 * upper case when upper is set. Returns false if out is too small. */
bool vf_bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out,
		      size_t out_cap);
/* Decodes s (s_len characters, not necessarily terminated). The hrp is
 * returned lower-cased in hrp (capacity hrp_cap, NUL-terminated), the data
 * in out. Rejects mixed case, bad checksums and non-zero padding bits.
 * Intermediate buffers are wiped: identities pass through here. */
bool vf_bech32_decode(const char *s, size_t s_len, char *hrp, size_t hrp_cap, uint8_t *out,
		      size_t out_cap, size_t *out_len);
/* The same for a string that holds no secret (a recipient): a table
 * lookup per character instead of vf_bech32_decode's constant-time scan
 * of the alphabet, which costs 32 comparisons per character; a
 * post-quantum recipient has 1,959 characters and a store's generate or
 * rekey parses one per recipient of every file. */
bool vf_bech32_decode_public(const char *s, size_t s_len, char *hrp, size_t hrp_cap,
			     uint8_t *out, size_t out_cap, size_t *out_len);

#endif
