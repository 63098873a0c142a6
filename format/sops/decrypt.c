/* Decryption: the data key from an age stanza (through this project's age
 * code), every value into guarded memory as `sops -d` prints it, and the MAC
 * recomputed as sops computes it.
 *
 * The MAC is SHA-512 over each value in document order as sops's ToBytes
 * writes it: a string's bytes, an int's digits, a float as
 * strconv.FormatFloat(f, 'f', -1, 64), a bool as True or False (Python's
 * spelling, kept from sops's first version), a time as RFC 3339. With
 * mac_only_encrypted the hash starts with sha256("sops") and covers the
 * encrypted values only. sops prints it as 128 upper-case hex digits and
 * stores it encrypted (AAD: lastmodified as sops re-formats it). */
#include "sops/sops_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "age/age.h"
#include "base/base64.h"
#include "base/crypto.h"

#define MAC_HEX_LEN (2 * VF_SHA512_LEN)

/* ---- the data key ---- */

static enum vf_code no_age(const struct vf_sops_file *f, struct vf_error *err)
{
	if (f->meta.key_types)
		return vf_fail(err, VF_E_ARG,
			       "%s: the data key is sealed to %s keys only, no age recipient (not "
			       "supported: re-encrypt the file with sops to an age recipient)",
			       f->name, f->meta.key_type_names);
	return vf_fail(err, VF_E_ARG, "%s: no keys in the sops metadata (expected an age recipient)",
		       f->name);
}

/* One stanza's armored age file, opened with ids into key. */
static enum vf_code open_stanza(const struct sops_stanza *s, const struct vf_identities *ids,
				uint8_t key[VF_SOPS_DATA_KEY_LEN], struct vf_error *err)
{
	struct vf_mem_src src;
	struct vf_secbuf out;
	vf_mem_src_init(&src, (const uint8_t *)s->enc, s->enc_len);
	vf_secbuf_init(&out);
	enum vf_code rc = vf_decrypt(ids->items, ids->n, &src.base, VF_ARMOR_AUTO, &out.sink, err);
	if (rc == VF_OK && out.len != VF_SOPS_DATA_KEY_LEN)
		rc = vf_fail(err, VF_E_PAYLOAD, "it holds %zu bytes (expected a %d-byte data key)",
			     out.len, VF_SOPS_DATA_KEY_LEN);
	if (rc == VF_OK)
		memcpy(key, out.data, VF_SOPS_DATA_KEY_LEN);
	vf_secbuf_free(&out);
	return rc;
}

static enum vf_code no_match(const struct vf_sops_file *f, struct vf_error *err)
{
	char list[400] = "";
	size_t n = 0;
	for (size_t i = 0; i < f->meta.n_age && i < 3; i++)
		n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0, "%s%s",
				      i ? ", " : "", f->meta.age_recipients[i]);
	return vf_fail(err, VF_E_NO_MATCH,
		       "%s: no identity opens the data key (sealed to %zu age recipient%s: %s%s)",
		       f->name, f->meta.n_age, f->meta.n_age == 1 ? "" : "s", list,
		       f->meta.n_age > 3 ? ", ..." : "");
}

enum vf_code vf_sops_data_key(const struct vf_sops_file *f, const struct vf_identities *ids,
			      uint8_t key[VF_SOPS_DATA_KEY_LEN], struct vf_error *err)
{
	if (f->meta.shamir)
		return vf_fail(err, VF_E_ARG,
			       "%s: the data key is split over %zu key groups (Shamir): not "
			       "supported (expected one key group)", f->name, f->meta.n_key_groups);
	if (f->meta.n_age == 0)
		return no_age(f, err);
	if (!ids || ids->n == 0)
		return vf_fail(err, VF_E_NO_MATCH, "%s: no identity given to open the data key",
			       f->name);
	/* Every stanza is tried: one that does not open is someone else's. A
	 * broken stanza is reported only when no other one opens. */
	struct vf_error first = {VF_OK, ""};
	const char *first_recipient = NULL;
	for (size_t i = 0; i < f->doc->n_age; i++) {
		struct vf_error e;
		enum vf_code rc = open_stanza(&f->doc->age[i], ids, key, &e);
		if (rc == VF_OK)
			return VF_OK;
		if (rc != VF_E_NO_MATCH && first.code == VF_OK) {
			first = e;
			first_recipient = f->doc->age[i].recipient;
		}
	}
	vf_wipe(key, VF_SOPS_DATA_KEY_LEN);
	if (first.code != VF_OK)
		return vf_fail(err, first.code, "%s: the age stanza for %.80s: %s", f->name,
			       first_recipient, first.msg);
	return no_match(f, err);
}

/* ---- values ---- */

struct decrypting {
	const struct vf_sops_file *f;
	struct vf_sops_plain *out;
	struct vf_sha512 *mac;
	struct vf_error *err;
};

static enum vf_code value_fail(struct decrypting *d, size_t i, enum vf_code code,
			       const char *what)
{
	const struct vf_sops_leaf *l = &d->f->leaves[i];
	char path[512];
	vf_sops_leaf_path(l, path, sizeof(path));
	return vf_fail(d->err, code, "%s:%u:%u: value of %s %s", d->f->name, l->line, l->column,
		       path, what);
}

/* A copy of len bytes into the guarded arena, NUL-terminated. */
static uint8_t *keep(struct decrypting *d, const void *p, size_t len)
{
	uint8_t *out = vf_arena_alloc(&d->out->arena, len + 1);
	if (out) {
		if (len)
			memcpy(out, p, len);
		out[len] = 0;
	}
	return out;
}

static enum float_style float_style(enum vf_sops_format format)
{
	switch (format) {
	case VF_SOPS_YAML: return FLOAT_YAML;
	case VF_SOPS_DOTENV: return FLOAT_DOTENV;
	default: return FLOAT_JSON;
	}
}

/* The text of value i and the bytes the MAC takes of it, from its type
 * and the string it was stored as (raw: decrypted, or as written). The
 * numbers' texts are short: they are formatted on the stack and wiped. */
static enum vf_code typed(struct decrypting *d, size_t i, const uint8_t *raw, size_t len,
			  const uint8_t **text, size_t *text_len, const uint8_t **mac,
			  size_t *mac_len)
{
	const struct vf_sops_leaf *l = &d->f->leaves[i];
	char t[FLOAT_TEXT_MAX + 32], m[FLOAT_TEXT_MAX + 32];
	int64_t iv;
	double fv;
	bool bv, fraction;
	enum vf_code rc = VF_OK;
	switch (l->type) {
	case VF_SOPS_STR:
	case VF_SOPS_BYTES:
		*text = *mac = raw;
		*text_len = *mac_len = len;
		return VF_OK;
	case VF_SOPS_INT:
		if (!go_parse_int((const char *)raw, len, &iv))
			return value_fail(d, i, VF_E_ARG, "is not an integer (its type is int)");
		snprintf(t, sizeof(t), "%lld", (long long)iv);
		strcpy(m, t);
		break;
	case VF_SOPS_FLOAT:
		if (!go_parse_float((const char *)raw, len, &fv))
			return value_fail(d, i, VF_E_ARG, "is not a number (its type is float)");
		if (!go_format_float(fv, float_style(d->f->format), t))
			return value_fail(d, i, VF_E_ARG, "is NaN or infinite, which JSON cannot hold");
		go_format_float(fv, FLOAT_MAC, m);
		break;
	case VF_SOPS_BOOL:
		if (!go_parse_bool((const char *)raw, len, &bv))
			return value_fail(d, i, VF_E_ARG, "is not true or false (its type is bool)");
		strcpy(t, bv ? "true" : "false");
		strcpy(m, bv ? "True" : "False");
		break;
	case VF_SOPS_TIME:
		if (!rfc3339_normalize((const char *)raw, len, t, &fraction))
			return value_fail(d, i, VF_E_ARG, "is not an RFC 3339 time (its type is time)");
		if (fraction)
			return value_fail(d, i, VF_E_ARG,
					  "is a time with fractional seconds: not supported");
		strcpy(m, t);
		break;
	}
	uint8_t *kt = keep(d, t, strlen(t)), *km = kt ? keep(d, m, strlen(m)) : NULL;
	vf_wipe(t, sizeof(t));
	vf_wipe(m, sizeof(m));
	if (!km)
		return vf_fail(d->err, VF_E_NOMEM, "out of memory");
	*text = kt;
	*text_len = strlen((const char *)kt);
	*mac = km;
	*mac_len = strlen((const char *)km);
	return rc;
}

/* A value left in clear, as the file's format typed it. */
static enum vf_code clear_value(struct decrypting *d, size_t i, const uint8_t **raw, size_t *len)
{
	const struct node *n = d->f->doc->x[i].value;
	char buf[FLOAT_TEXT_MAX];
	switch (n->kind) {
	case NODE_INT: snprintf(buf, sizeof(buf), "%lld", (long long)n->v.i); break;
	case NODE_FLOAT:
		if (!go_format_float(n->v.f, FLOAT_MAC, buf))
			return value_fail(d, i, VF_E_ARG, "is not a number");
		break;
	case NODE_BOOL: strcpy(buf, n->v.b ? "true" : "false"); break;
	default:
		*raw = (const uint8_t *)n->text;
		*len = n->len;
		return VF_OK;
	}
	/* Typed from a canonical spelling, so that typed() reads it back. */
	uint8_t *k = keep(d, buf, strlen(buf));
	if (!k)
		return vf_fail(d->err, VF_E_NOMEM, "out of memory");
	*raw = k;
	*len = strlen(buf);
	return VF_OK;
}

static enum vf_code one_value(struct decrypting *d, size_t i, const uint8_t *key)
{
	const struct vf_sops_leaf *l = &d->f->leaves[i];
	const struct sops_leaf_x *x = &d->f->doc->x[i];
	const uint8_t *raw = (const uint8_t *)"";
	size_t len = 0;
	enum vf_code rc = VF_OK;
	if (l->encrypted && !x->empty) {
		uint8_t *buf = vf_arena_alloc(&d->out->arena, x->enc.data_len + 1);
		if (!buf)
			return vf_fail(d->err, VF_E_NOMEM, "out of memory");
		struct vf_error e;
		rc = vf_sops_enc_open(&x->enc, key, x->aad, x->aad_len, buf, &e);
		if (rc == VF_E_AUTH)
			return value_fail(d, i, VF_E_AUTH,
					  "does not decrypt (wrong data key or tampered value)");
		if (rc != VF_OK)
			return vf_fail(d->err, rc, "%s: %s", d->f->name, e.msg);
		buf[x->enc.data_len] = 0;
		raw = buf;
		len = x->enc.data_len;
	} else if (!l->encrypted) {
		rc = clear_value(d, i, &raw, &len);
	}
	const uint8_t *text = NULL, *mac = NULL;
	size_t text_len = 0, mac_len = 0;
	if (rc == VF_OK)
		rc = typed(d, i, raw, len, &text, &text_len, &mac, &mac_len);
	if (rc == VF_OK && (!d->f->meta.mac_only_encrypted || l->encrypted))
		rc = vf_sha512_update(d->mac, mac, mac_len, d->err);
	if (rc == VF_OK)
		d->out->values[i] = (struct vf_sops_value){text, text_len};
	return rc;
}

/* ---- the MAC ---- */

static void upper_hex(const uint8_t *in, size_t len, char *out)
{
	vf_hex_encode_secret(in, len, out);
	/* Without a branch on the digest: 'a'..'f' lose 0x20. */
	for (size_t i = 0; i < 2 * len; i++) {
		unsigned char c = (unsigned char)out[i];
		out[i] = (char)(c - (((unsigned)('9' - c) >> 8) & 0x20));
	}
}

/* NULL when the MAC verifies, else what is wrong with it. */
static const char *mac_problem(struct decrypting *d, const uint8_t *key, enum vf_code *rc)
{
	const struct vf_sops_doc *doc = d->f->doc;
	uint8_t digest[VF_SHA512_LEN];
	char computed[MAC_HEX_LEN + 1];
	*rc = vf_sha512_final(d->mac, digest, d->err);
	if (*rc != VF_OK)
		return NULL;
	upper_hex(digest, sizeof(digest), computed);
	vf_wipe(digest, sizeof(digest));
	const char *problem = NULL;
	if (!doc->has_mac) {
		problem = "the file has no MAC (sops:mac is empty)";
	} else {
		uint8_t *stored = vf_arena_alloc(&d->out->arena, doc->mac.data_len + 1);
		struct vf_error e;
		if (!stored) {
			*rc = vf_fail(d->err, VF_E_NOMEM, "out of memory");
		} else if (vf_sops_enc_open(&doc->mac, key, doc->mac_aad, strlen(doc->mac_aad), stored,
					    &e) != VF_OK) {
			problem = "the MAC does not decrypt (tampered MAC or lastmodified)";
		} else if (doc->mac.data_len != MAC_HEX_LEN ||
			   !vf_equal(stored, computed, MAC_HEX_LEN)) {
			problem = "the MAC does not match the values (changed since sops wrote the "
				  "file)";
		}
	}
	vf_wipe(computed, sizeof(computed));
	return problem;
}

static enum vf_code check_mac(struct decrypting *d, const uint8_t *key, unsigned flags)
{
	enum vf_code rc;
	const char *problem = mac_problem(d, key, &rc);
	if (rc != VF_OK || !problem) {
		d->out->mac_verified = rc == VF_OK;
		return rc;
	}
	if (!(flags & VF_SOPS_IGNORE_MAC))
		return vf_fail(d->err, VF_E_AUTH, "%s: %s", d->f->name, problem);
	snprintf(d->out->mac_warning, sizeof(d->out->mac_warning), "%s: %s", d->f->name, problem);
	return VF_OK;
}

enum vf_code vf_sops_decrypt_with_key(const struct vf_sops_file *f,
				      const uint8_t key[VF_SOPS_DATA_KEY_LEN], unsigned flags,
				      struct vf_sops_plain *out, struct vf_error *err)
{
	memset(out, 0, sizeof(*out));
	out->values = calloc(f->n_leaves ? f->n_leaves : 1, sizeof(*out->values));
	struct decrypting d = {f, out, NULL, err};
	if (!out->values)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	out->n = f->n_leaves;
	enum vf_code rc = vf_sha512_new(&d.mac, err);
	if (rc == VF_OK && f->meta.mac_only_encrypted) {
		uint8_t seed[VF_SHA256_LEN];
		rc = vf_sha256("sops", 4, seed, err);
		if (rc == VF_OK)
			rc = vf_sha512_update(d.mac, seed, sizeof(seed), err);
	}
	for (size_t i = 0; rc == VF_OK && i < f->n_leaves; i++)
		rc = one_value(&d, i, key);
	if (rc == VF_OK)
		rc = check_mac(&d, key, flags);
	vf_sha512_free(d.mac);
	return rc;
}

enum vf_code vf_sops_decrypt(const struct vf_sops_file *f, const struct vf_identities *ids,
			     unsigned flags, struct vf_sops_plain *out, struct vf_error *err)
{
	memset(out, 0, sizeof(*out));
	uint8_t *key = vf_secure_alloc(VF_SOPS_DATA_KEY_LEN);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_sops_data_key(f, ids, key, err);
	if (rc == VF_OK)
		rc = vf_sops_decrypt_with_key(f, key, flags, out, err);
	vf_secure_free(key);
	return rc;
}

void vf_sops_plain_free(struct vf_sops_plain *p)
{
	if (!p)
		return;
	vf_arena_free(&p->arena);
	free(p->values);
	memset(p, 0, sizeof(*p));
}
