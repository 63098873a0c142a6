/* The age v1 header: stanzas, the MAC, parsing and marshalling. */
#ifndef VF_HEADER_H
#define VF_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/io.h"

#define VF_FILE_KEY_LEN 16
#define VF_MAC_LEN 32
#define VF_INTRO "age-encryption.org/v1"

/* One recipient stanza: "-> TYPE ARGS...", then the body. */
struct vf_stanza {
	char *type;
	char **args; /* nargs strings, each 1+ bytes in 33..126 */
	size_t nargs;
	uint8_t *body;
	size_t body_len;
};

struct vf_header {
	struct vf_stanza *stanzas;
	size_t n;
	uint8_t mac[VF_MAC_LEN];
	/* The header bytes the MAC covers (intro .. "---"), as read. */
	uint8_t *macced;
	size_t macced_len;
};

/* Reads and strictly parses a header from br, leaving br at the payload.
 * Every malformation is VF_E_HEADER. */
enum vf_code vf_header_parse(struct vf_header *h, struct vf_bufreader *br, struct vf_error *err);

/* Writes the canonical encoding of h into out: with_mac false stops after
 * "---" (the MAC input), true appends " " MAC "\n". */
enum vf_code vf_header_marshal(const struct vf_header *h, int with_mac, struct vf_buf *out,
			       struct vf_error *err);

void vf_header_free(struct vf_header *h);

#endif
