#include "vars/values.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "base/secmem.h"
#include "age/keys.h"
#include "vars/spec.h"

void vf_value_free(struct vf_value *v)
{
	if (v->in_arena)
		vf_wipe(v->data, v->len);
	else
		vf_secure_free(v->data);
	v->data = NULL;
	v->len = 0;
	v->in_arena = false;
}

/* len bytes and a NUL, in arena when there is one. */
static enum vf_code value_alloc(struct vf_value *v, size_t len, struct vf_arena *arena,
				struct vf_error *err)
{
	v->data = arena ? vf_arena_alloc(arena, len + 1) : vf_secure_alloc(len + 1);
	v->len = len;
	v->in_arena = arena && v->data;
	return v->data ? VF_OK : vf_fail(err, VF_E_NOMEM, "out of memory");
}

enum vf_code vf_value_set(struct vf_value *v, const void *data, size_t len,
			  struct vf_error *err)
{
	enum vf_code rc = value_alloc(v, len, NULL, err);
	if (rc == VF_OK && len)
		memcpy(v->data, data, len);
	return rc;
}

/* Secrets, so libsodium's constant-time encoders; out has len + 1 bytes
 * (value_alloc), room for the NUL they write. */
static enum vf_code encode(const uint8_t *raw, size_t len, enum vf_encoding enc,
			   struct vf_arena *arena, struct vf_value *out, struct vf_error *err)
{
	size_t n = enc == VF_ENC_HEX ? 2 * len
		 : enc == VF_ENC_RAW ? len
				     : vf_b64_encoded_len(len, enc == VF_ENC_BASE64);
	enum vf_code rc = value_alloc(out, n, arena, err);
	if (rc != VF_OK)
		return rc;
	switch (enc) {
	case VF_ENC_RAW:
		memcpy(out->data, raw, len);
		break;
	case VF_ENC_HEX:
		vf_hex_encode_secret(raw, len, (char *)out->data);
		break;
	case VF_ENC_BASE64:
		vf_b64_encode_secret(raw, len, (char *)out->data, true, false);
		break;
	case VF_ENC_BASE64URL:
		vf_b64_encode_secret(raw, len, (char *)out->data, false, true);
		break;
	}
	return VF_OK;
}

/* The raw bytes only live until encoded: the thread's scratch stack
 * (guarded, wiped on release) rather than a guarded allocation of their
 * own, which costs an mmap, mprotects and an mlock per value. */
static enum vf_code random_value(const struct vf_spec_file *f, struct vf_arena *arena,
				 struct vf_value *out, struct vf_error *err)
{
	uint8_t *raw = vf_scratch_alloc(f->length);
	if (!raw)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_random(raw, f->length, err);
	if (rc == VF_OK)
		rc = encode(raw, f->length, f->encoding, arena, out, err);
	vf_scratch_free(raw, f->length);
	return rc;
}

/* Rejection sampling: a byte is used only below the largest multiple of
 * the alphabet size, so every character is equally likely. */
static enum vf_code password_value(const struct vf_spec_file *f, struct vf_arena *arena,
				   struct vf_value *out, struct vf_error *err)
{
	size_t n = strlen(f->alphabet);
	if (n < 2 || n > 256)
		return vf_fail(err, VF_E_ARG, "password alphabet must have 2..256 characters");
	unsigned limit = 256 - 256 % (unsigned)n;
	enum vf_code rc = value_alloc(out, f->length, arena, err);
	uint8_t pool[256];
	size_t have = 0, used = 0;
	for (size_t i = 0; rc == VF_OK && i < f->length;) {
		if (used == have) {
			rc = vf_random(pool, sizeof(pool), err);
			have = sizeof(pool);
			used = 0;
			continue;
		}
		uint8_t b = pool[used++];
		if (b < limit)
			out->data[i++] = (uint8_t)f->alphabet[b % n];
	}
	vf_wipe(pool, sizeof(pool));
	if (rc != VF_OK)
		vf_value_free(out);
	return rc;
}

static enum vf_code uuid_value(struct vf_arena *arena, struct vf_value *out,
			       struct vf_error *err)
{
	uint8_t b[16];
	enum vf_code rc = vf_random(b, sizeof(b), err);
	if (rc != VF_OK)
		return rc;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	rc = value_alloc(out, 36, arena, err);
	if (rc == VF_OK)
		snprintf((char *)out->data, 37,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
			 b[12], b[13], b[14], b[15]);
	vf_wipe(b, sizeof(b));
	return rc;
}

enum vf_code vf_make_value_in(const struct vf_spec_file *f, struct vf_arena *arena,
			      struct vf_value *out, struct vf_error *err)
{
	switch (f->kind) {
	case VF_KIND_RANDOM: return random_value(f, arena, out, err);
	case VF_KIND_PASSWORD: return password_value(f, arena, out, err);
	case VF_KIND_UUID: return uuid_value(arena, out, err);
	default: return vf_fail(err, VF_E_ARG, "file %s has no built-in kind", f->name);
	}
}

enum vf_code vf_make_value(const struct vf_spec_file *f, struct vf_value *out,
			   struct vf_error *err)
{
	return vf_make_value_in(f, NULL, out, err);
}

/* As age-keygen (-pq when pq) and age-keygen -y print them. */
static enum vf_code age_keypair(bool pq, struct vf_value *secret, struct vf_value *public,
				struct vf_error *err)
{
	struct vf_identity *id;
	char *key = NULL, *recipient = NULL;
	enum vf_code rc = vf_native_identity_generate(pq, &id, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_native_identity_encode(id, &key, err);
	if (rc == VF_OK)
		rc = vf_identity_recipient(id, &recipient, err);
	if (rc == VF_OK)
		rc = vf_value_set(secret, key, strlen(key), err);
	if (rc == VF_OK)
		rc = vf_value_set(public, recipient, strlen(recipient), err);
	vf_secure_free(key);
	free(recipient);
	vf_identity_free(id);
	return rc;
}

/* As `wg genkey | tee private | wg pubkey`: a clamped Curve25519 scalar
 * and its public point, both base64. */
static enum vf_code wireguard_keypair(struct vf_value *secret, struct vf_value *public,
				      struct vf_error *err)
{
	uint8_t *priv = vf_secure_alloc(32);
	uint8_t pub[32];
	if (!priv)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_random(priv, 32, err);
	priv[0] &= 248;
	priv[31] = (uint8_t)((priv[31] & 127) | 64);
	if (rc == VF_OK)
		rc = vf_x25519_public(priv, pub, err);
	if (rc == VF_OK)
		rc = encode(priv, 32, VF_ENC_BASE64, NULL, secret, err);
	if (rc == VF_OK)
		rc = encode(pub, 32, VF_ENC_BASE64, NULL, public, err);
	vf_secure_free(priv);
	return rc;
}

static int file_index(const struct vf_spec_generator *g, const char *name)
{
	const struct vf_spec_file *f = vf_spec_file(g, name);
	return f ? (int)(f - g->files) : -1;
}

enum vf_code vf_make_keypair(const struct vf_spec_generator *g, struct vf_value *values,
			     struct vf_error *err)
{
	bool age = g->kind == VF_KIND_AGE_KEYPAIR;
	if (!age && g->kind != VF_KIND_WIREGUARD)
		return vf_fail(err, VF_E_ARG, "generator %s is not a key pair", g->name);
	int s = file_index(g, age ? "identity" : "private");
	int p = file_index(g, age ? "recipient" : "public");
	if (s < 0 || p < 0)
		return vf_fail(err, VF_E_ARG, "generator %s lacks its key pair files", g->name);
	return age ? age_keypair(g->pq, &values[s], &values[p], err)
		   : wireguard_keypair(&values[s], &values[p], err);
}
