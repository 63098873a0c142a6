/* SSH keys as age recipients and identities, as age's agessh defines them
 * (not age.md): "ssh-ed25519" stanzas (X25519 over the converted key,
 * tweaked with HKDF) and "ssh-rsa" stanzas (RSA-OAEP-SHA-256), both tagged
 * with the first 4 bytes of SHA-256 of the SSH wire-format public key.
 * Identities are unencrypted OpenSSH private keys ("openssh-key-v1"). */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "base/provider.h"
#include "base/secmem.h"
#include "age/header_internal.h"
#include "age/recipient_internal.h"

#define ED25519_LABEL "age-encryption.org/v1/ssh-ed25519"
#define RSA_LABEL "age-encryption.org/v1/ssh-rsa"
#define WRAPPED_LEN (VF_FILE_KEY_LEN + VF_AEAD_TAG_LEN)
#define MAX_BLOB 8192

/* Big-endian length-prefixed fields of the SSH wire format. */
struct wire {
	const uint8_t *p, *end;
};

static bool wire_u32(struct wire *w, uint32_t *v)
{
	if (w->end - w->p < 4)
		return false;
	*v = (uint32_t)w->p[0] << 24 | (uint32_t)w->p[1] << 16 | (uint32_t)w->p[2] << 8 | w->p[3];
	w->p += 4;
	return true;
}

static bool wire_string(struct wire *w, const uint8_t **s, size_t *len)
{
	uint32_t n;
	if (!wire_u32(w, &n) || (size_t)(w->end - w->p) < n)
		return false;
	*s = w->p;
	*len = n;
	w->p += n;
	return true;
}

static bool wire_is(const uint8_t *s, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(s, want, len);
}

/* base64(SHA-256(blob)[:4]), unpadded: the stanza's first argument. */
static void fingerprint(const uint8_t *blob, size_t len, char tag[8])
{
	uint8_t digest[VF_SHA256_LEN];
	vf_sha256(blob, len, digest, NULL);
	tag[vf_b64_encode(digest, 4, tag, false)] = '\0';
}

/* "TYPE base64(blob)": the public key line the identity opens. */
static enum vf_code public_line(const char *type, const uint8_t *blob, size_t len, char **out,
				struct vf_error *err)
{
	size_t cap = strlen(type) + 1 + vf_b64_encoded_len(len, true) + 1;
	char *s = malloc(cap);
	if (!s)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t n = (size_t)snprintf(s, cap, "%s ", type);
	n += vf_b64_encode(blob, len, s + n, true);
	s[n] = '\0';
	*out = s;
	return VF_OK;
}

static enum vf_code openssl_error(struct vf_error *err, const char *what)
{
	ERR_clear_error();
	return vf_fail(err, VF_E_CRYPTO, "%s failed", what);
}

/* --- ssh-ed25519 ------------------------------------------------------ */

struct ed25519_recipient {
	struct vf_recipient base;
	uint8_t x25519[32];
	uint8_t *blob;
	size_t blob_len;
	char tag[8];
};

struct ed25519_identity {
	struct vf_identity base;
	uint8_t *x25519_secret; /* guarded */
	uint8_t x25519_public[32];
	uint8_t *blob;
	size_t blob_len;
	char tag[8];
};

/* The wrap as for X25519, with the shared secret tweaked by the key's own
 * wire-format blob (see vf_share_wrap). */
static struct vf_share_kdf ed25519_kdf(const uint8_t *blob, size_t blob_len)
{
	return (struct vf_share_kdf){.type = "ssh-ed25519",
				     .label = ED25519_LABEL,
				     .tweak_salt = blob,
				     .tweak_salt_len = blob_len};
}

static enum vf_code ed25519_wrap(const struct vf_recipient *base,
				 const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_stanza *out,
				 struct vf_error *err)
{
	const struct ed25519_recipient *r = (const struct ed25519_recipient *)base;
	struct vf_share_kdf kdf = ed25519_kdf(r->blob, r->blob_len);
	uint8_t share[32], body[WRAPPED_LEN];
	enum vf_code rc = vf_share_wrap(&kdf, r->x25519, file_key, share, body, err);
	if (rc != VF_OK)
		return rc;
	char share_arg[64];
	share_arg[vf_b64_encode(share, 32, share_arg, false)] = '\0';
	const char *args[] = {r->tag, share_arg};
	return vf_stanza_init(out, "ssh-ed25519", args, 2, body, sizeof(body), err);
}

static void ed25519_recipient_free(struct vf_recipient *base)
{
	struct ed25519_recipient *r = (struct ed25519_recipient *)base;
	free(r->blob);
	free(r);
}

static const struct vf_recipient_ops ed25519_recipient_ops = {
	.type = "ssh-ed25519",
	.wrap = ed25519_wrap,
	.free = ed25519_recipient_free,
};

static enum vf_code raw_dh(const void *secret, const uint8_t share[32], uint8_t shared[32],
			   struct vf_error *err)
{
	return vf_x25519(secret, share, shared, err);
}

enum vf_code vf_ssh_ed25519_stanza_share(const struct vf_stanza *s, uint8_t share[VF_X25519_LEN],
					 struct vf_error *err)
{
	uint8_t decoded[VF_X25519_LEN + 1];
	size_t n = 0;
	if (s->nargs != 2 || !vf_b64_decode(s->args[1], strlen(s->args[1]), decoded,
					    sizeof(decoded), &n, false) ||
	    n != VF_X25519_LEN)
		return vf_fail(err, VF_E_HEADER, "malformed ssh-ed25519 stanza");
	memcpy(share, decoded, VF_X25519_LEN);
	return VF_OK;
}

static enum vf_code ed25519_unwrap(struct vf_identity *base, const struct vf_stanza *s,
				   uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err)
{
	struct ed25519_identity *id = (struct ed25519_identity *)base;
	if (strcmp(s->type, "ssh-ed25519") != 0)
		return VF_E_NO_MATCH;
	uint8_t share[VF_X25519_LEN];
	enum vf_code checked = vf_ssh_ed25519_stanza_share(s, share, err);
	if (checked != VF_OK)
		return checked;
	if (strcmp(s->args[0], id->tag) != 0)
		return VF_E_NO_MATCH;
	checked = vf_stanza_wrapped_key(s, err);
	if (checked != VF_OK)
		return checked;
	struct vf_share_kdf kdf = ed25519_kdf(id->blob, id->blob_len);
	enum vf_code rc = vf_share_unwrap(&kdf, raw_dh, id->x25519_secret, share, id->x25519_public,
					  s->body, file_key, err);
	/* The tag matched: a failure now is a damaged stanza, not another key. */
	if (rc == VF_E_AUTH)
		rc = vf_fail(err, VF_E_HEADER, "ssh-ed25519 stanza does not decrypt with its key");
	return rc;
}

static enum vf_code ed25519_identity_recipient(const struct vf_identity *base, char **out,
					       struct vf_error *err)
{
	const struct ed25519_identity *id = (const struct ed25519_identity *)base;
	return public_line("ssh-ed25519", id->blob, id->blob_len, out, err);
}

static void ed25519_identity_free(struct vf_identity *base)
{
	struct ed25519_identity *id = (struct ed25519_identity *)base;
	vf_secure_free(id->x25519_secret);
	free(id->blob);
	free(id);
}

static const struct vf_identity_ops ed25519_identity_ops = {
	.type = "ssh-ed25519",
	.unwrap = ed25519_unwrap,
	.recipient = ed25519_identity_recipient,
	.free = ed25519_identity_free,
};

/* --- ssh-rsa ---------------------------------------------------------- */

struct rsa_recipient {
	struct vf_recipient base;
	EVP_PKEY *key;
	char tag[8];
};

struct rsa_identity {
	struct vf_identity base;
	EVP_PKEY *key;
	uint8_t *blob;
	size_t blob_len;
	char tag[8];
};



static enum vf_code oaep_ctx(EVP_PKEY_CTX *ctx, struct vf_error *err)
{
	/* OAEP padding and RSA blinding draw random bytes: their generators
	 * are wiped at exit only when asked (format/base/secmem.c). */
	vf_wipe_random_at_exit();
	char *label = OPENSSL_strdup(RSA_LABEL); /* OpenSSL takes ownership */
	if (!label || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)strlen(RSA_LABEL)) != 1) {
		OPENSSL_free(label);
		return openssl_error(err, "RSA-OAEP setup");
	}
	return VF_OK;
}

static enum vf_code rsa_wrap(const struct vf_recipient *base,
			     const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_stanza *out,
			     struct vf_error *err)
{
	const struct rsa_recipient *r = (const struct rsa_recipient *)base;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, r->key, NULL);
	uint8_t body[1024];
	size_t len = sizeof(body);
	enum vf_code rc = ctx && EVP_PKEY_encrypt_init(ctx) == 1 ? oaep_ctx(ctx, err)
								 : openssl_error(err, "RSA setup");
	if (rc == VF_OK && EVP_PKEY_encrypt(ctx, body, &len, file_key, VF_FILE_KEY_LEN) != 1)
		rc = openssl_error(err, "RSA-OAEP encryption");
	EVP_PKEY_CTX_free(ctx);
	if (rc != VF_OK)
		return rc;
	const char *args[] = {r->tag};
	return vf_stanza_init(out, "ssh-rsa", args, 1, body, len, err);
}

static void rsa_recipient_free(struct vf_recipient *base)
{
	struct rsa_recipient *r = (struct rsa_recipient *)base;
	EVP_PKEY_free(r->key);
	free(r);
}

static const struct vf_recipient_ops rsa_recipient_ops = {
	.type = "ssh-rsa",
	.wrap = rsa_wrap,
	.free = rsa_recipient_free,
};

enum vf_code vf_ssh_rsa_stanza_check(const struct vf_stanza *s, struct vf_error *err)
{
	if (s->nargs != 1)
		return vf_fail(err, VF_E_HEADER, "malformed ssh-rsa stanza");
	return VF_OK;
}

static enum vf_code rsa_unwrap(struct vf_identity *base, const struct vf_stanza *s,
			       uint8_t file_key[VF_FILE_KEY_LEN], struct vf_error *err)
{
	struct rsa_identity *id = (struct rsa_identity *)base;
	if (strcmp(s->type, "ssh-rsa") != 0)
		return VF_E_NO_MATCH;
	if (vf_ssh_rsa_stanza_check(s, err) != VF_OK)
		return VF_E_HEADER;
	if (strcmp(s->args[0], id->tag) != 0)
		return VF_E_NO_MATCH;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, id->key, NULL);
	uint8_t *out = vf_scratch_alloc(1024);
	size_t len = 1024;
	enum vf_code rc = ctx && out && EVP_PKEY_decrypt_init(ctx) == 1
				  ? oaep_ctx(ctx, err)
				  : openssl_error(err, "RSA setup");
	if (rc == VF_OK && (EVP_PKEY_decrypt(ctx, out, &len, s->body, s->body_len) != 1 ||
			    len != VF_FILE_KEY_LEN)) {
		ERR_clear_error();
		rc = vf_fail(err, VF_E_HEADER, "ssh-rsa stanza does not decrypt with its key");
	}
	if (rc == VF_OK)
		memcpy(file_key, out, VF_FILE_KEY_LEN);
	if (out)
		vf_scratch_free(out, 1024);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static enum vf_code rsa_identity_recipient(const struct vf_identity *base, char **out,
					   struct vf_error *err)
{
	const struct rsa_identity *id = (const struct rsa_identity *)base;
	return public_line("ssh-rsa", id->blob, id->blob_len, out, err);
}

static void rsa_identity_free(struct vf_identity *base)
{
	struct rsa_identity *id = (struct rsa_identity *)base;
	EVP_PKEY_free(id->key); /* OpenSSL clears private key material */
	free(id->blob);
	free(id);
}

static const struct vf_identity_ops rsa_identity_ops = {
	.type = "ssh-rsa",
	.unwrap = rsa_unwrap,
	.recipient = rsa_identity_recipient,
	.free = rsa_identity_free,
};

/* An RSA key from its SSH mpints (big-endian, maybe with a leading zero). */
static EVP_PKEY *rsa_from(const uint8_t *const *mp, const size_t *len, size_t count)
{
	static const char *const names[] = {
		OSSL_PKEY_PARAM_RSA_N,	       OSSL_PKEY_PARAM_RSA_E,
		OSSL_PKEY_PARAM_RSA_D,	       OSSL_PKEY_PARAM_RSA_FACTOR1,
		OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
		OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
	};
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn[8] = {0};
	/* Everything past n and e is private: in OpenSSL's secure heap (vf_init),
	 * which OSSL_PARAM_BLD keeps it in, and cleared when freed. */
	BN_CTX *bctx = BN_CTX_secure_new();
	EVP_PKEY *key = NULL;
	bool ok = bld && bctx;
	for (size_t i = 0; ok && i < count; i++) {
		bn[i] = i < 2 ? BN_new() : BN_secure_new();
		ok = bn[i] && BN_bin2bn(mp[i], (int)len[i], bn[i]) != NULL;
	}
	if (ok && count == 6) {
		/* OpenSSH stores d, iqmp, p, q: derive d mod (p-1), d mod (q-1). */
		BIGNUM *p1 = BN_secure_new(), *q1 = BN_secure_new();
		bn[6] = BN_secure_new();
		bn[7] = BN_secure_new();
		ok = p1 && q1 && bn[6] && bn[7] && BN_sub(p1, bn[3], BN_value_one()) &&
		     BN_sub(q1, bn[4], BN_value_one()) && BN_mod(bn[6], bn[2], p1, bctx) &&
		     BN_mod(bn[7], bn[2], q1, bctx);
		BN_clear_free(p1);
		BN_clear_free(q1);
		count = 8;
	}
	for (size_t i = 0; ok && i < count; i++)
		ok = OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i]) == 1;
	OSSL_PARAM *params = ok ? OSSL_PARAM_BLD_to_param(bld) : NULL;
	/* RSA, and OAEP's SHA-1 default, are offered once asked for. */
	EVP_PKEY_CTX *ctx = params && vf_provider_more() == 0
				    ? EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)
				    : NULL;
	if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &key, count > 2 ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
				  params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	for (size_t i = 0; i < 8; i++)
		BN_clear_free(bn[i]);
	BN_CTX_free(bctx);
	OSSL_PARAM_BLD_free(bld);
	ERR_clear_error();
	return key;
}

/* --- public keys ------------------------------------------------------ */

static enum vf_code recipient_from_blob(const uint8_t *blob, size_t len,
					struct vf_recipient **out, struct vf_error *err)
{
	struct wire w = {blob, blob + len};
	const uint8_t *type, *a, *b;
	size_t type_len, a_len, b_len;
	if (!wire_string(&w, &type, &type_len))
		return vf_fail(err, VF_E_KEY, "malformed SSH public key");
	if (wire_is(type, type_len, "ssh-ed25519")) {
		if (!wire_string(&w, &a, &a_len) || a_len != 32 || w.p != w.end)
			return vf_fail(err, VF_E_KEY, "malformed ssh-ed25519 public key");
		struct ed25519_recipient *r = calloc(1, sizeof(*r));
		if (!r || !(r->blob = malloc(len))) {
			free(r);
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		}
		r->base.ops = &ed25519_recipient_ops;
		memcpy(r->blob, blob, len);
		r->blob_len = len;
		fingerprint(blob, len, r->tag);
		if (crypto_sign_ed25519_pk_to_curve25519(r->x25519, a) != 0) {
			ed25519_recipient_free(&r->base);
			return vf_fail(err, VF_E_KEY, "invalid ssh-ed25519 public key");
		}
		*out = &r->base;
		return VF_OK;
	}
	if (wire_is(type, type_len, "ssh-rsa")) {
		/* The wire format is e, then n. */
		if (!wire_string(&w, &a, &a_len) || !wire_string(&w, &b, &b_len) || w.p != w.end)
			return vf_fail(err, VF_E_KEY, "malformed ssh-rsa public key");
		const uint8_t *mp[] = {b, a};
		size_t lens[] = {b_len, a_len};
		EVP_PKEY *key = rsa_from(mp, lens, 2);
		if (!key)
			return vf_fail(err, VF_E_KEY, "invalid ssh-rsa public key");
		if (EVP_PKEY_get_bits(key) < 2048) {
			int bits = EVP_PKEY_get_bits(key);
			EVP_PKEY_free(key);
			return vf_fail(err, VF_E_KEY, "ssh-rsa key of %d bits: at least 2048 are required",
				       bits);
		}
		struct rsa_recipient *r = calloc(1, sizeof(*r));
		if (!r) {
			EVP_PKEY_free(key);
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		}
		r->base.ops = &rsa_recipient_ops;
		r->key = key;
		fingerprint(blob, len, r->tag);
		*out = &r->base;
		return VF_OK;
	}
	return vf_fail(err, VF_E_KEY, "unsupported SSH key type %.*s (ssh-ed25519 and ssh-rsa are)",
		       (int)(type_len > 40 ? 40 : type_len), type);
}

/* One whitespace-separated field; double quotes (authorized_keys options)
 * keep spaces inside a field. */
static const char *next_field(const char *p, const char **start, size_t *len)
{
	while (*p == ' ' || *p == '\t')
		p++;
	*start = p;
	bool quoted = false;
	while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && p[1])
			p++;
		p++;
	}
	*len = (size_t)(p - *start);
	return p;
}

static bool is_key_type(const char *s, size_t len)
{
	return (len == 11 && !memcmp(s, "ssh-ed25519", 11)) || (len == 7 && !memcmp(s, "ssh-rsa", 7));
}

enum vf_code vf_ssh_recipient_parse(const char *line, struct vf_recipient **out,
				    struct vf_error *err)
{
	/* [options] type base64 [comment], as in authorized_keys and .pub. */
	const char *p = line, *f;
	size_t len;
	p = next_field(p, &f, &len);
	if (len && !is_key_type(f, len))
		p = next_field(p, &f, &len); /* skip the options field */
	if (!is_key_type(f, len))
		return vf_fail(err, VF_E_KEY, "not an SSH public key line (ssh-ed25519 or ssh-rsa)");
	const char *type = f;
	size_t type_len = len;
	p = next_field(p, &f, &len);
	uint8_t *blob = malloc(MAX_BLOB);
	size_t blob_len = 0;
	if (!blob)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = VF_OK;
	if (!len || !vf_b64_decode(f, len, blob, MAX_BLOB, &blob_len, true))
		rc = vf_fail(err, VF_E_KEY, "malformed base64 in the SSH public key");
	/* The blob names its type too: it must agree with the line's. */
	struct wire w = {blob, blob + blob_len};
	const uint8_t *t;
	size_t t_len;
	if (rc == VF_OK && (!wire_string(&w, &t, &t_len) || t_len != type_len ||
			    memcmp(t, type, type_len)))
		rc = vf_fail(err, VF_E_KEY, "SSH public key type and data disagree");
	if (rc == VF_OK)
		rc = recipient_from_blob(blob, blob_len, out, err);
	free(blob);
	return rc;
}

/* --- OpenSSH private keys --------------------------------------------- */

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----"
#define OPENSSH_MAGIC "openssh-key-v1"

bool vf_ssh_is_private_key(const char *text, size_t len)
{
	size_t n = strlen(OPENSSH_BEGIN);
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(text + i, OPENSSH_BEGIN, n))
			return true;
	return false;
}

/* The PEM body, base64-decoded into guarded memory. */
static enum vf_code pem_body(const char *text, size_t len, uint8_t **out, size_t *out_len,
			     struct vf_error *err)
{
	const char *begin = NULL, *end = NULL;
	for (size_t i = 0; i < len && !end; i++) {
		if (!begin && len - i >= strlen(OPENSSH_BEGIN) &&
		    !memcmp(text + i, OPENSSH_BEGIN, strlen(OPENSSH_BEGIN)))
			begin = text + i + strlen(OPENSSH_BEGIN);
		else if (begin && len - i >= strlen(OPENSSH_END) &&
			 !memcmp(text + i, OPENSSH_END, strlen(OPENSSH_END)))
			end = text + i;
	}
	if (!begin || !end)
		return vf_fail(err, VF_E_KEY, "truncated OpenSSH private key (no END line)");
	char *b64 = vf_secure_alloc((size_t)(end - begin) + 1);
	uint8_t *bin = vf_secure_alloc((size_t)(end - begin));
	if (!b64 || !bin) {
		vf_secure_free(b64);
		vf_secure_free(bin);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	size_t n = 0;
	for (const char *p = begin; p < end; p++)
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
			b64[n++] = *p;
	size_t bin_len = 0;
	bool ok = vf_b64_decode_secret(b64, n, bin, (size_t)(end - begin), &bin_len, true);
	vf_secure_free(b64);
	if (!ok) {
		vf_secure_free(bin);
		return vf_fail(err, VF_E_KEY, "malformed base64 in the OpenSSH private key");
	}
	*out = bin;
	*out_len = bin_len;
	return VF_OK;
}

static enum vf_code ed25519_identity(const uint8_t *blob, size_t blob_len, const uint8_t *priv,
				     size_t priv_len, struct vf_identity **out,
				     struct vf_error *err)
{
	if (priv_len != 64)
		return vf_fail(err, VF_E_KEY, "malformed ssh-ed25519 private key");
	struct wire w = {blob, blob + blob_len};
	const uint8_t *t, *pk;
	size_t t_len, pk_len;
	if (!wire_string(&w, &t, &t_len) || !wire_string(&w, &pk, &pk_len) || pk_len != 32 ||
	    memcmp(priv + 32, pk, 32))
		return vf_fail(err, VF_E_KEY, "ssh-ed25519 private and public halves disagree");
	struct ed25519_identity *id = calloc(1, sizeof(*id));
	if (!id || !(id->x25519_secret = vf_secure_alloc(32)) || !(id->blob = malloc(blob_len))) {
		if (id)
			ed25519_identity_free(&id->base);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	id->base.ops = &ed25519_identity_ops;
	memcpy(id->blob, blob, blob_len);
	id->blob_len = blob_len;
	fingerprint(blob, blob_len, id->tag);
	if (crypto_sign_ed25519_sk_to_curve25519(id->x25519_secret, priv) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(id->x25519_public, pk) != 0) {
		ed25519_identity_free(&id->base);
		return vf_fail(err, VF_E_KEY, "invalid ssh-ed25519 key");
	}
	*out = &id->base;
	return VF_OK;
}

static enum vf_code rsa_identity(const uint8_t *blob, size_t blob_len, struct wire *w,
				 struct vf_identity **out, struct vf_error *err)
{
	/* n, e, d, iqmp, p, q; rsa_from wants n, e, d, p, q, iqmp. */
	const uint8_t *f[6];
	size_t l[6];
	for (int i = 0; i < 6; i++)
		if (!wire_string(w, &f[i], &l[i]))
			return vf_fail(err, VF_E_KEY, "malformed ssh-rsa private key");
	const uint8_t *mp[] = {f[0], f[1], f[2], f[4], f[5], f[3]};
	size_t lens[] = {l[0], l[1], l[2], l[4], l[5], l[3]};
	EVP_PKEY *key = rsa_from(mp, lens, 6);
	if (!key)
		return vf_fail(err, VF_E_KEY, "invalid ssh-rsa private key");
	if (EVP_PKEY_get_bits(key) < 2048) {
		EVP_PKEY_free(key);
		return vf_fail(err, VF_E_KEY, "ssh-rsa key under 2048 bits");
	}
	struct rsa_identity *id = calloc(1, sizeof(*id));
	if (!id || !(id->blob = malloc(blob_len))) {
		free(id);
		EVP_PKEY_free(key);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	id->base.ops = &rsa_identity_ops;
	id->key = key;
	memcpy(id->blob, blob, blob_len);
	id->blob_len = blob_len;
	fingerprint(blob, blob_len, id->tag);
	*out = &id->base;
	return VF_OK;
}

static enum vf_code parse_key(const uint8_t *bin, size_t len, struct vf_identity **out,
			      struct vf_error *err)
{
	struct wire w = {bin, bin + len};
	const uint8_t *cipher, *kdf, *kdfopts, *blob, *priv;
	size_t cipher_len, kdf_len, kdfopts_len, blob_len, priv_len;
	uint32_t count;
	if (len < sizeof(OPENSSH_MAGIC) || memcmp(bin, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)))
		return vf_fail(err, VF_E_KEY, "not an openssh-key-v1 private key");
	w.p += sizeof(OPENSSH_MAGIC);
	if (!wire_string(&w, &cipher, &cipher_len) || !wire_string(&w, &kdf, &kdf_len) ||
	    !wire_string(&w, &kdfopts, &kdfopts_len) || !wire_u32(&w, &count))
		return vf_fail(err, VF_E_KEY, "malformed OpenSSH private key");
	if (!wire_is(cipher, cipher_len, "none"))
		return vf_fail(err, VF_E_KEY,
			       "the OpenSSH private key is encrypted with a passphrase; decrypt "
			       "a copy first (ssh-keygen -p -N '' -f COPY) or use an age "
			       "identity protected with varseal encrypt -p");
	if (count != 1)
		return vf_fail(err, VF_E_KEY, "OpenSSH key files with %u keys are not supported",
			       count);
	if (!wire_string(&w, &blob, &blob_len) || !wire_string(&w, &priv, &priv_len))
		return vf_fail(err, VF_E_KEY, "malformed OpenSSH private key");
	struct wire p = {priv, priv + priv_len};
	uint32_t check1, check2;
	const uint8_t *type, *a, *b;
	size_t type_len, a_len, b_len;
	if (!wire_u32(&p, &check1) || !wire_u32(&p, &check2) || check1 != check2 ||
	    !wire_string(&p, &type, &type_len))
		return vf_fail(err, VF_E_KEY, "malformed OpenSSH private key section");
	if (wire_is(type, type_len, "ssh-ed25519")) {
		if (!wire_string(&p, &a, &a_len) || !wire_string(&p, &b, &b_len) || a_len != 32)
			return vf_fail(err, VF_E_KEY, "malformed ssh-ed25519 private key");
		return ed25519_identity(blob, blob_len, b, b_len, out, err);
	}
	if (wire_is(type, type_len, "ssh-rsa"))
		return rsa_identity(blob, blob_len, &p, out, err);
	return vf_fail(err, VF_E_KEY, "unsupported OpenSSH key type %.*s",
		       (int)(type_len > 40 ? 40 : type_len), type);
}

enum vf_code vf_ssh_identity_parse(const char *text, size_t len, struct vf_identity **out,
				   struct vf_error *err)
{
	uint8_t *bin = NULL;
	size_t bin_len = 0;
	enum vf_code rc = pem_body(text, len, &bin, &bin_len, err);
	if (rc != VF_OK)
		return rc;
	rc = parse_key(bin, bin_len, out, err);
	vf_secure_free(bin);
	return rc;
}
