/* What the age library's own files use to build and check headers
 * (private to format/age/: the tools go through age.h). */
#ifndef VF_HEADER_INTERNAL_H
#define VF_HEADER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "age/header.h"

/* Builds a stanza from its type, arguments and body (copied). */
enum vf_code vf_stanza_init(struct vf_stanza *s, const char *type, const char *const *args,
			    size_t nargs, const uint8_t *body, size_t body_len,
			    struct vf_error *err);
void vf_stanza_free(struct vf_stanza *s);

/* Appends a stanza to the header (takes ownership of its contents). */
enum vf_code vf_header_add(struct vf_header *h, struct vf_stanza *s, struct vf_error *err);

/* Big enough for any line of any known stanza (post-quantum arguments are
 * about 1.5 KB), small enough to bound what a hostile header costs: the
 * buffer that decryption and inspection read a header through. */
#define VF_HEADER_LINE_MAX (16 * 1024)

/* What decryption says when a header is not followed by the 16-byte payload
 * nonce (inspection says the same). */
#define VF_MSG_NO_NONCE "the file ends before the payload nonce"

/* The rules of a whole header that need no key: an scrypt stanza must be
 * the only one (VF_E_HEADER). */
enum vf_code vf_header_check(const struct vf_header *h, struct vf_error *err);

/* A stanza whose body is the file key wrapped with ChaCha20-Poly1305
 * (16 + 16 bytes): VF_E_HEADER "TYPE stanza body is not a wrapped 16-byte
 * key" otherwise. */
enum vf_code vf_stanza_wrapped_key(const struct vf_stanza *s, struct vf_error *err);

/* MAC = HMAC-SHA-256(HKDF(file key, "", "header"), msg). */
enum vf_code vf_header_mac(const uint8_t file_key[VF_FILE_KEY_LEN], const uint8_t *msg,
			   size_t len, uint8_t mac[VF_MAC_LEN], struct vf_error *err);

#endif
