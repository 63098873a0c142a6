/* Key-pair generators (kind wireguard or age-keypair): the private half is
 * the one source of truth, the public half follows from it. What varseal
 * set (and edit) check a value for a pair's file against, and what vargen
 * check verifies a stored pair with.
 *
 * A pair's halves are stored as vargen makes them: the key alone, no
 * line ending. WireGuard: the base64 of 32 bytes (44 characters) for both,
 * as `wg genkey` and `wg pubkey` print them. age-keypair: the identity
 * AGE-SECRET-KEY-1... and the recipient age1..., as age-keygen and
 * age-keygen -y print them; with `pq: true`, AGE-SECRET-KEY-PQ-1... and
 * age1pq1... (1,959 characters), as age-keygen -pq makes them. */
#ifndef VF_PAIR_H
#define VF_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "age/keys.h"
#include "vars/spec.h"
#include "vars/values.h"
#include "vars/vars.h"

/* Whether g is a key-pair generator. */
bool vf_pair_kind(const struct vf_spec_generator *g);
/* Its private (secret) and public halves, as the spec parser fills them
 * in; NULL when g is no key pair. */
const struct vf_spec_file *vf_pair_private(const struct vf_spec_generator *g);
const struct vf_spec_file *vf_pair_public(const struct vf_spec_generator *g);
/* "WireGuard" or "age", for messages. */
const char *vf_pair_kind_name(const struct vf_spec_generator *g);

/* From a value given for g's private half: that half as vargen stores it
 * (in guarded memory) and the public half computed from it. Accepted, as
 * the tools print them: WireGuard, the base64 of 32 bytes (44 characters);
 * age, one AGE-SECRET-KEY-1... line (AGE-SECRET-KEY-PQ-1... with pq: true;
 * the other kind is refused), with age-keygen's '#' comment lines around
 * it. One trailing line ending ("\n" or "\r\n") is allowed and not
 * stored. Otherwise VF_E_KEY with one line saying what is wrong and what
 * was expected (never quoting the value: it is a secret). */
enum vf_code vf_pair_derive(const struct vf_spec_generator *g, const uint8_t *data, size_t len,
			    struct vf_value *private_half, struct vf_value *public_half,
			    struct vf_error *err);

/* Whether data is a public key of g's kind exactly as vargen stores it:
 * VF_OK, or VF_E_KEY saying what was expected. Needs no key. */
enum vf_code vf_pair_check_public(const struct vf_spec_generator *g, const uint8_t *data,
				  size_t len, struct vf_error *err);

/* Verifies owner's pair of g with the identities: the private half is
 * opened and the public key it gives compared with the stored public half.
 * states (g's files, as vf_vars_state left them) are adjusted: the public
 * half becomes VF_STATE_PAIR_MISMATCH when it is not the private half's
 * public key, the private half VF_STATE_CORRUPT when it holds no key of
 * its kind. A pair with a half missing, corrupt or without a key to be
 * sealed to is left as it is. Errors are those of opening the private half
 * (VF_E_NO_MATCH: no identity opens it), naming the file. */
enum vf_code vf_pair_verify(const char *root, const char *owner, const struct vf_spec_generator *g,
			    const struct vf_identities *ids, enum vf_state *states,
			    struct vf_error *err);

#endif
