/* age v1 encryption and decryption, end to end. */
#ifndef VF_AGE_H
#define VF_AGE_H

#include <stddef.h>

#include "base/io.h"
#include "age/header.h"
#include "age/recipient.h"
#include "age/stream.h"

/* Writes the header for the recipients, then the payload read from in.
 * Armor is the caller's choice of sink (struct vf_armor_writer). The sink
 * is finished on success. */
enum vf_code vf_encrypt(struct vf_recipient *const *recipients, size_t n, struct vf_src *in,
			struct vf_sink *out, struct vf_error *err);

enum vf_armor_mode { VF_ARMOR_AUTO, VF_ARMOR_NO, VF_ARMOR_YES };

/* Decrypts in to out. Nothing reaches out before the header MAC verifies;
 * after that each chunk is released as it authenticates. The error code
 * tells the failure apart: VF_E_ARMOR, VF_E_HEADER, VF_E_NO_MATCH,
 * VF_E_HMAC, VF_E_PAYLOAD (or VF_E_IO). */
enum vf_code vf_decrypt(struct vf_identity *const *ids, size_t n, struct vf_src *in,
			enum vf_armor_mode armor, struct vf_sink *out, struct vf_error *err);

/* The header half of decryption, for callers that want the file key (such
 * as re-keying): parses, unwraps, verifies the MAC. file_key must point to
 * VF_FILE_KEY_LEN bytes of guarded memory. */
enum vf_code vf_unwrap_header(struct vf_identity *const *ids, size_t n,
			      const struct vf_header *h, uint8_t file_key[VF_FILE_KEY_LEN],
			      struct vf_error *err);

/* Builds a header (stanzas + MAC) for the recipients and file key. */
enum vf_code vf_wrap_header(struct vf_recipient *const *recipients, size_t n,
			    const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_header *h,
			    struct vf_error *err);

#endif
