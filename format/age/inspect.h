/* Looking inside an age file without a key (varseal inspect, as age 1.3's
 * age-inspect): armor, header, stanza types, post-quantum or not, and the
 * payload's size and chunk count, computed from the file's length. */
#ifndef VF_INSPECT_H
#define VF_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/io.h"

/* As age-inspect says it: "no" when any stanza is of a classic type
 * (X25519, ssh-rsa, ssh-ed25519, p256tag, piv-p256), else "yes" when a
 * post-quantum one is there (mlkem768x25519, mlkem768p256tag, and scrypt,
 * which a quantum computer does not break), else "unknown". */
enum vf_postquantum { VF_PQ_UNKNOWN, VF_PQ_NO, VF_PQ_YES };
const char *vf_postquantum_name(enum vf_postquantum pq);

struct vf_stanza_count {
	char *type;
	size_t count;
};

struct vf_inspection {
	bool armored;
	enum vf_postquantum postquantum;
	size_t n_stanzas;
	struct vf_stanza_count *types; /* in the order they first appear */
	size_t n_types;
	/* Bytes: the input as read (armor included), the armor (input minus
	 * the binary file inside it), the header (intro to MAC line), the
	 * overhead (payload nonce and one tag per chunk), the plaintext. */
	uint64_t file_len, armor_len, header_len, overhead_len, payload_len;
	uint64_t chunks;
};

/* Reads in and reports on it. size is how many bytes in holds from where
 * it stands, or -1 when unknown (a pipe): then, as for armored input, it
 * is read to its end. The header is read and checked as decryption reads
 * and checks it, with the same message for the same fault: the strict
 * syntax, an scrypt stanza alone, and each known stanza type's arguments
 * and body (max_log_n bounds an scrypt work factor, as for decryption);
 * unknown types are counted by name. A payload length no encryption gives
 * is VF_E_PAYLOAD. */
enum vf_code vf_inspect(struct vf_src *in, off_t size, unsigned max_log_n,
			struct vf_inspection *out, struct vf_error *err);
void vf_inspection_free(struct vf_inspection *x);

#endif
