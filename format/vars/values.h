/* Built-in secret values, computed in C from OpenSSL's CSPRNG: random
 * bytes, passwords, UUIDs and key pairs. Values are returned in guarded
 * memory, without a trailing newline. */
#ifndef VF_VALUES_H
#define VF_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Only pointers to the spec's types pass through here. */
struct vf_spec_file;
struct vf_spec_generator;

/* A value in guarded memory (free with vf_value_free). */
struct vf_value {
	uint8_t *data;
	size_t len;
	bool in_arena; /* data belongs to a struct vf_arena: only wiped here */
};
void vf_value_free(struct vf_value *v);
/* Copies len bytes into a new guarded value. */
enum vf_code vf_value_set(struct vf_value *v, const void *data, size_t len,
			  struct vf_error *err);

/* A file-level kind: random, password or uuid. */
enum vf_code vf_make_value(const struct vf_spec_file *f, struct vf_value *out,
			   struct vf_error *err);
/* The same, the value in arena (guarded too): one mapping for many values
 * rather than a guarded allocation each. vf_value_free only wipes it; the
 * arena's release takes it back. */
struct vf_arena;
enum vf_code vf_make_value_in(const struct vf_spec_file *f, struct vf_arena *arena,
			      struct vf_value *out, struct vf_error *err);

/* A generator-level key-pair kind; fills the generator's files in order
 * (identity/recipient, or private/public), matched by name. */
enum vf_code vf_make_keypair(const struct vf_spec_generator *g, struct vf_value *values,
			     struct vf_error *err);

#endif
