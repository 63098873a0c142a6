/* The age payload: STREAM over ChaCha20-Poly1305 in 64 KiB chunks.
 *
 * Memory stays constant whatever the size (a batch of chunks in, a batch
 * out), and since chunks are independent a batch is sealed or opened by
 * several threads at once. Decryption releases each chunk only once it has
 * authenticated, in order, and stops at the first failure, as the age
 * reference does. */
#ifndef VF_STREAM_H
#define VF_STREAM_H

#include <stdint.h>

#include "base/error.h"
#include "base/io.h"
#include "age/header.h"

#define VF_CHUNK_SIZE 65536
#define VF_PAYLOAD_NONCE_LEN 16

/* How many threads to use (0 = one per online CPU, at most 4). */
void vf_stream_set_threads(unsigned n);
/* For tests: how many chunks a regular file needs to be read out of
 * order by every thread, and a pipe to go through before its batches
 * grow to full size (0 = the default, RING_FROM in stream.c). */
void vf_stream_set_ring_from(uint64_t chunks);

enum vf_code vf_stream_encrypt(const uint8_t file_key[VF_FILE_KEY_LEN],
			       const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], struct vf_src *in,
			       struct vf_sink *out, struct vf_error *err);

/* The plaintext length and chunk count of a payload whose ciphertext
 * (after the nonce) is ct_len bytes long, computed from the length alone as
 * age-inspect does: chunks of 64 KiB + 16, the last one shorter, and empty
 * only when it is the only one. A length no encryption gives is
 * VF_E_PAYLOAD (a truncated file, or data after its end). */
enum vf_code vf_stream_sizes(uint64_t ct_len, uint64_t *plaintext_len, uint64_t *chunks,
			     struct vf_error *err);

/* Errors: VF_E_PAYLOAD for truncation, bad chunks and trailing data; the
 * source's own code (VF_E_IO, VF_E_ARMOR) when reading fails. */
enum vf_code vf_stream_decrypt(const uint8_t file_key[VF_FILE_KEY_LEN],
			       const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], struct vf_src *in,
			       struct vf_sink *out, struct vf_error *err);

#endif
