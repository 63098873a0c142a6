/* The scrypt passphrase recipient type (age.md, "scrypt recipient stanza"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "base/secmem.h"
#include "age/header_internal.h"
#include "age/recipient_internal.h"

#define LABEL "age-encryption.org/v1/scrypt"
#define SALT_LEN VF_SCRYPT_SALT_LEN
#define WRAPPED_LEN (VF_FILE_KEY_LEN + VF_AEAD_TAG_LEN)

struct scrypt_recipient {
	struct vf_recipient base;
	uint8_t *pass; /* guarded */
	size_t pass_len;
	unsigned log_n;
};

struct scrypt_identity {
	struct vf_identity base;
	vf_passphrase_fn get;
	void *ctx;
	uint8_t *pass; /* guarded, asked for on first use */
	size_t pass_len;
	unsigned max_log_n;
};

static enum vf_code derive_key(const uint8_t *pass, size_t pass_len,
			       const uint8_t salt[SALT_LEN], unsigned log_n, uint8_t *key,
			       struct vf_error *err)
{
	uint8_t full_salt[sizeof(LABEL) - 1 + SALT_LEN];
	memcpy(full_salt, LABEL, sizeof(LABEL) - 1);
	memcpy(full_salt + sizeof(LABEL) - 1, salt, SALT_LEN);
	return vf_scrypt(pass, pass_len, full_salt, sizeof(full_salt), log_n, key,
			 VF_AEAD_KEY_LEN, err);
}

static enum vf_code recipient_wrap(const struct vf_recipient *base,
				   const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_stanza *out,
				   struct vf_error *err)
{
	static const uint8_t zero_nonce[VF_AEAD_NONCE_LEN];
	const struct scrypt_recipient *r = (const struct scrypt_recipient *)base;
	uint8_t salt[SALT_LEN], body[WRAPPED_LEN];
	uint8_t *key = vf_secure_alloc(VF_AEAD_KEY_LEN);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_random(salt, sizeof(salt), err);
	if (rc == VF_OK)
		rc = derive_key(r->pass, r->pass_len, salt, r->log_n, key, err);
	if (rc == VF_OK)
		rc = vf_aead_seal(key, zero_nonce, sizeof(zero_nonce), NULL, 0, file_key,
				  VF_FILE_KEY_LEN, body, body + VF_FILE_KEY_LEN, err);
	vf_secure_free(key);
	if (rc != VF_OK)
		return rc;
	char salt_arg[32], work[16];
	salt_arg[vf_b64_encode(salt, sizeof(salt), salt_arg, false)] = '\0';
	snprintf(work, sizeof(work), "%u", r->log_n);
	const char *args[] = {salt_arg, work};
	return vf_stanza_init(out, "scrypt", args, 2, body, sizeof(body), err);
}

static void recipient_free(struct vf_recipient *base)
{
	struct scrypt_recipient *r = (struct scrypt_recipient *)base;
	vf_secure_free(r->pass);
	free(r);
}

static const struct vf_recipient_ops recipient_ops = {
	.type = "scrypt",
	.must_be_alone = true,
	.wrap = recipient_wrap,
	.free = recipient_free,
};

enum vf_code vf_scrypt_recipient_new(const uint8_t *pass, size_t pass_len, unsigned log_n,
				     struct vf_recipient **out, struct vf_error *err)
{
	if (pass_len == 0)
		return vf_fail(err, VF_E_ARG, "empty passphrase");
	if (log_n < 1 || log_n > 30)
		return vf_fail(err, VF_E_ARG, "scrypt work factor must be 1..30");
	struct scrypt_recipient *r = calloc(1, sizeof(*r));
	if (!r || !(r->pass = vf_secure_alloc(pass_len))) {
		free(r);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	r->base.ops = &recipient_ops;
	memcpy(r->pass, pass, pass_len);
	r->pass_len = pass_len;
	r->log_n = log_n;
	*out = &r->base;
	return VF_OK;
}

/* "^[1-9][0-9]*$", within max. */
static bool parse_work_factor(const char *s, unsigned max, unsigned *log_n, bool *too_big)
{
	*too_big = false;
	if (s[0] < '1' || s[0] > '9')
		return false;
	unsigned long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v <= max)
			v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > max) {
		*too_big = true;
		return false;
	}
	*log_n = (unsigned)v;
	return true;
}

enum vf_code vf_scrypt_stanza_params(const struct vf_stanza *s, unsigned max_log_n,
				     uint8_t salt[SALT_LEN], unsigned *log_n, struct vf_error *err)
{
	uint8_t decoded[SALT_LEN + 1];
	size_t n = 0;
	bool too_big;
	if (s->nargs != 2 ||
	    !vf_b64_decode(s->args[0], strlen(s->args[0]), decoded, sizeof(decoded), &n, false) ||
	    n != SALT_LEN)
		return vf_fail(err, VF_E_HEADER, "malformed scrypt stanza");
	if (!parse_work_factor(s->args[1], max_log_n, log_n, &too_big))
		return too_big ? vf_fail(err, VF_E_HEADER,
					 "scrypt work factor %s is above the limit %u "
					 "(--max-work-factor to allow it)",
					 s->args[1], max_log_n)
			       : vf_fail(err, VF_E_HEADER, "malformed scrypt work factor");
	memcpy(salt, decoded, SALT_LEN);
	return vf_stanza_wrapped_key(s, err);
}

static enum vf_code identity_unwrap(struct vf_identity *base, const struct vf_stanza *s,
				    uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err)
{
	static const uint8_t zero_nonce[VF_AEAD_NONCE_LEN];
	struct scrypt_identity *id = (struct scrypt_identity *)base;
	if (strcmp(s->type, "scrypt") != 0)
		return VF_E_NO_MATCH;
	uint8_t salt[SALT_LEN];
	unsigned log_n = 0;
	enum vf_code params = vf_scrypt_stanza_params(s, id->max_log_n, salt, &log_n, err);
	if (params != VF_OK)
		return params;
	if (!id->pass) {
		enum vf_code rc = id->get(id->ctx, &id->pass, &id->pass_len, err);
		if (rc != VF_OK)
			return rc;
	}
	uint8_t *key = vf_secure_alloc(VF_AEAD_KEY_LEN);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = derive_key(id->pass, id->pass_len, salt, log_n, key, err);
	if (rc == VF_OK)
		rc = vf_aead_open(key, zero_nonce, sizeof(zero_nonce), NULL, 0, s->body,
				  VF_FILE_KEY_LEN, s->body + VF_FILE_KEY_LEN, file_key, err);
	if (rc == VF_E_AUTH)
		rc = vf_fail(err, VF_E_NO_MATCH, "wrong passphrase");
	vf_secure_free(key);
	return rc;
}

static void identity_free(struct vf_identity *base)
{
	struct scrypt_identity *id = (struct scrypt_identity *)base;
	vf_secure_free(id->pass);
	free(id);
}

static const struct vf_identity_ops identity_ops = {
	.type = "scrypt",
	.unwrap = identity_unwrap,
	.free = identity_free,
};

enum vf_code vf_scrypt_identity_new(vf_passphrase_fn get, void *ctx, unsigned max_log_n,
				    struct vf_identity **out, struct vf_error *err)
{
	struct scrypt_identity *id = calloc(1, sizeof(*id));
	if (!id)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	id->base.ops = &identity_ops;
	id->get = get;
	id->ctx = ctx;
	id->max_log_n = max_log_n;
	*out = &id->base;
	return VF_OK;
}
