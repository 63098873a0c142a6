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

/* Where an age payload goes: straight into the caller's guarded key, no
 * byte past it (a stanza holding more is refused, not buffered). */
struct key_sink {
	struct vf_sink sink;
	uint8_t *key;
	size_t len;
	bool too_long;
};

static enum vf_code key_sink_write(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
				   struct vf_error *err)
{
	struct key_sink *k = (struct key_sink *)sink;
	(void)err;
	for (int i = 0; i < iovcnt; i++) {
		size_t n = iov[i].iov_len, room = VF_SOPS_DATA_KEY_LEN - k->len;
		if (n > room) {
			k->too_long = true;
			n = room;
		}
		memcpy(k->key + k->len, iov[i].iov_base, n);
		k->len += n;
	}
	return VF_OK;
}

static enum vf_code key_sink_finish(struct vf_sink *sink, struct vf_error *err)
{
	(void)sink;
	(void)err;
	return VF_OK;
}

/* One stanza's armored age file, opened with ids into key. */
static enum vf_code open_stanza(const struct sops_stanza *s, const struct vf_identities *ids,
				uint8_t key[VF_SOPS_DATA_KEY_LEN], struct vf_error *err)
{
	struct vf_mem_src src;
	struct key_sink out = {{key_sink_write, key_sink_finish}, key, 0, false};
	vf_mem_src_init(&src, (const uint8_t *)s->enc, s->enc_len);
	enum vf_code rc = vf_decrypt(ids->items, ids->n, &src.base, VF_ARMOR_AUTO, &out.sink, err);
	if (rc == VF_OK && (out.too_long || out.len != VF_SOPS_DATA_KEY_LEN))
		rc = vf_fail(err, VF_E_PAYLOAD, "it holds %s%zu bytes (expected a %d-byte data key)",
			     out.too_long ? "more than " : "", out.len, VF_SOPS_DATA_KEY_LEN);
	if (rc != VF_OK)
		vf_wipe(key, VF_SOPS_DATA_KEY_LEN);
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

/* len bytes of the values' guarded block (sized beforehand). */
static uint8_t *take(struct decrypting *d, size_t len)
{
	struct vf_sops_plain *p = d->out;
	if (p->mem_cap - p->mem_used < len)
		return NULL;
	uint8_t *out = p->mem + p->mem_used;
	p->mem_used += len;
	return out;
}

/* A copy of len bytes into the guarded block, NUL-terminated. */
static uint8_t *keep(struct decrypting *d, const void *p, size_t len)
{
	uint8_t *out = take(d, len + 1);
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

/* A clear int, float or bool of the document spelt as sops's cipher would
 * have stored it, so that one path (typed) reads every value. */
static void respell(const struct node *n, char out[FLOAT_TEXT_MAX])
{
	if (n->kind == NODE_INT)
		snprintf(out, FLOAT_TEXT_MAX, "%lld", (long long)n->v.i);
	else if (n->kind == NODE_FLOAT)
		go_format_float(n->v.f, FLOAT_MAC, out);
	else
		strcpy(out, n->v.b ? "True" : "False");
}

/* Value i from the string it was stored as (raw: decrypted, or as the
 * document has it): its text as sops -d prints it, kept in the guarded
 * block, and its bytes as sops's ToBytes gives them, into the MAC. A
 * number's forms are made on the stack and wiped. */
static enum vf_code typed(struct decrypting *d, size_t i, const uint8_t *raw, size_t len,
			  bool into_mac)
{
	const struct vf_sops_leaf *l = &d->f->leaves[i];
	char t[FLOAT_TEXT_MAX], m[FLOAT_TEXT_MAX];
	const uint8_t *text = raw, *mac = raw;
	size_t text_len = len, mac_len = len;
	int64_t iv;
	double fv;
	bool bv, fraction;
	enum vf_code rc = VF_OK;
	switch (l->type) {
	case VF_SOPS_STR:
	case VF_SOPS_BYTES: break;
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
	if (l->type != VF_SOPS_STR && l->type != VF_SOPS_BYTES) {
		text = (const uint8_t *)t;
		text_len = strlen(t);
		mac = (const uint8_t *)m;
		mac_len = strlen(m);
	}
	/* Decrypted bytes are already in the block; anything else is copied. */
	uint8_t *kept = text == raw && l->encrypted ? (uint8_t *)raw : keep(d, text, text_len);
	if (!kept)
		rc = vf_fail(d->err, VF_E_NOMEM, "out of memory");
	if (rc == VF_OK && into_mac)
		rc = vf_sha512_update(d->mac, mac, mac_len, d->err);
	if (rc == VF_OK)
		d->out->values[i] = (struct vf_sops_value){kept, text_len};
	vf_wipe(t, sizeof(t));
	vf_wipe(m, sizeof(m));
	return rc;
}

static enum vf_code one_value(struct decrypting *d, size_t i, const uint8_t *key)
{
	const struct vf_sops_leaf *l = &d->f->leaves[i];
	const struct sops_leaf_x *x = &d->f->doc->x[i];
	bool into_mac = !d->f->meta.mac_only_encrypted || l->encrypted;
	if (!l->encrypted) {
		const struct node *n = x->value;
		if (n->kind == NODE_STRING)
			return typed(d, i, (const uint8_t *)n->text, n->len, into_mac);
		char spelt[FLOAT_TEXT_MAX];
		respell(n, spelt);
		return typed(d, i, (const uint8_t *)spelt, strlen(spelt), into_mac);
	}
	if (x->empty) /* sops stores "" as it is */
		return typed(d, i, (const uint8_t *)"", 0, into_mac);
	uint8_t *buf = take(d, x->enc.data_len + 1);
	if (!buf)
		return vf_fail(d->err, VF_E_NOMEM, "out of memory");
	struct vf_error e;
	enum vf_code rc = vf_sops_enc_open(&x->enc, key, x->aad, x->aad_len, buf, &e);
	if (rc == VF_E_AUTH)
		return value_fail(d, i, VF_E_AUTH,
				  "does not decrypt (wrong data key or tampered value)");
	if (rc != VF_OK)
		return vf_fail(d->err, rc, "%s: %s", d->f->name, e.msg);
	buf[x->enc.data_len] = 0;
	return typed(d, i, buf, x->enc.data_len, into_mac);
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
		uint8_t *stored = take(d, doc->mac.data_len);
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

/* The guarded memory all values need: one block, not one allocation (an
 * mmap, guard pages, an mlock) per value. A decrypted value is its own
 * text when it is a string; other texts are at most FLOAT_TEXT_MAX. */
static size_t plain_size(const struct vf_sops_file *f)
{
	size_t n = f->doc->has_mac ? f->doc->mac.data_len : 0;
	for (size_t i = 0; i < f->n_leaves; i++) {
		const struct vf_sops_leaf *l = &f->leaves[i];
		const struct sops_leaf_x *x = &f->doc->x[i];
		bool string = l->type == VF_SOPS_STR || l->type == VF_SOPS_BYTES;
		if (l->encrypted && !x->empty)
			n += x->enc.data_len + 1;
		else if (string)
			n += x->value->len + 1;
		if (!string)
			n += FLOAT_TEXT_MAX;
	}
	return n;
}

enum vf_code vf_sops_decrypt_with_key(const struct vf_sops_file *f,
				      const uint8_t key[VF_SOPS_DATA_KEY_LEN], unsigned flags,
				      struct vf_sops_plain *out, struct vf_error *err)
{
	memset(out, 0, sizeof(*out));
	out->values = calloc(f->n_leaves ? f->n_leaves : 1, sizeof(*out->values));
	out->mem_cap = plain_size(f);
	out->mem = out->values ? vf_secure_alloc(out->mem_cap) : NULL;
	struct decrypting d = {f, out, NULL, err};
	if (!out->mem)
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
	uint8_t *key = vf_scratch_alloc(VF_SOPS_DATA_KEY_LEN);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_sops_data_key(f, ids, key, err);
	if (rc == VF_OK)
		rc = vf_sops_decrypt_with_key(f, key, flags, out, err);
	vf_scratch_free(key, VF_SOPS_DATA_KEY_LEN);
	return rc;
}

void vf_sops_plain_free(struct vf_sops_plain *p)
{
	if (!p)
		return;
	vf_secure_free(p->mem); /* wipes */
	free(p->values);
	memset(p, 0, sizeof(*p));
}
