/* JSON string literals (RFC 8259), for the JSON the tools write: varseal
 * inspect --json, vargen list/check --json, and the VmConfig body varinject
 * sends to cloud-hypervisor. The one escaper of the project: every string
 * placed in JSON goes through it. */
#ifndef VF_JSON_H
#define VF_JSON_H

#include <stddef.h>

#include "base/error.h"
#include "base/io.h"

/* What to do with bytes that are not valid UTF-8 (JSON text is Unicode; a
 * file name or a manifest line need not be). */
enum vf_json_bad_utf8 {
	VF_JSON_REFUSE,	 /* VF_E_ARG: the value must arrive unchanged or not at all */
	VF_JSON_REPLACE, /* each such byte becomes U+FFFD: for names shown to a reader */
};

/* Appends s (len bytes, NULs allowed) to b as a quoted JSON string: '"'
 * and '\\' escaped, every control character (and DEL) as \u00XX, valid
 * UTF-8 copied as it is. */
enum vf_code vf_json_string(struct vf_buf *b, const void *s, size_t len,
			    enum vf_json_bad_utf8 bad, struct vf_error *err);

/* The length of the valid UTF-8 sequence at p (1..4 bytes), or 0 when p
 * does not start one: overlong forms, surrogates and code points above
 * U+10FFFF are not valid (RFC 3629). */
size_t vf_utf8_sequence(const unsigned char *p, size_t len);

#endif
