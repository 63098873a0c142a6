/* Strict standard base64 (RFC 4648 section 4), as age requires: the header
 * uses it unpadded, the armor padded, and both reject non-canonical input
 * (stray characters, non-zero padding bits, misplaced '='). */
#ifndef VF_BASE64_H
#define VF_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encoded length of len bytes. */
size_t vf_b64_encoded_len(size_t len, bool pad);
/* Encodes; out needs vf_b64_encoded_len(len, pad) bytes (no terminator
 * written). Returns the number of characters written. */
size_t vf_b64_encode(const uint8_t *in, size_t len, char *out, bool pad);
/* Decodes in[0..in_len) into out (capacity out_cap). With pad, the input
 * must be a multiple of 4 with '=' only as canonical padding; without, no
 * '=' at all. Returns false on any non-canonical or oversized input. */
bool vf_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
		   size_t *out_len, bool pad);

/* For secrets: libsodium's constant-time codecs (no table indexed by a
 * secret byte, no branch on one). The table-driven functions above stay
 * for public data (headers, armor), where they are several times faster.
 * The output is byte-identical to theirs. */

/* Base64 (url: the URL-safe alphabet) into out, which needs
 * vf_b64_encoded_len(len, pad) + 1 bytes: a NUL follows the characters.
 * Returns the number of characters. */
size_t vf_b64_encode_secret(const uint8_t *in, size_t len, char *out, bool pad, bool url);
/* Lower-case hex into out, which needs 2 * len + 1 bytes (NUL-terminated). */
void vf_hex_encode_secret(const uint8_t *in, size_t len, char *out);
/* As vf_b64_decode, as strict, in constant time. */
bool vf_b64_decode_secret(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
			  size_t *out_len, bool pad);

#endif
