#include "age/inspect.h"

#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "age/armor.h"
#include "age/header_internal.h"
#include "age/recipient_internal.h"
#include "age/stream.h"

/* The post-quantum hybrid stanza (age 1.3), checked by the same function
 * as decryption checks it (hybrid.c), then its X25519 share's order. */
#define HYBRID_TYPE VF_HYBRID_STANZA_TYPE

const char *vf_postquantum_name(enum vf_postquantum pq)
{
	return pq == VF_PQ_NO ? "no" : pq == VF_PQ_YES ? "yes" : "unknown";
}

static bool one_of(const char *type, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(type, *list))
			return true;
	return false;
}

static void judge_postquantum(struct vf_inspection *x, const char *type)
{
	static const char *const classic[] = {"X25519", "ssh-rsa", "ssh-ed25519", "p256tag",
					      "piv-p256", NULL};
	static const char *const quantum_safe[] = {HYBRID_TYPE, "mlkem768p256tag", "scrypt",
						   NULL};
	if (one_of(type, classic))
		x->postquantum = VF_PQ_NO;
	else if (one_of(type, quantum_safe) && x->postquantum != VF_PQ_NO)
		x->postquantum = VF_PQ_YES;
}

static enum vf_code check_hybrid(const struct vf_stanza *s, struct vf_error *err)
{
	uint8_t enc[VF_HYBRID_ENC_LEN];
	enum vf_code rc = vf_hybrid_stanza_enc(s, enc, err);
	if (rc == VF_OK)
		rc = vf_share_check_order(HYBRID_TYPE, enc + VF_HYBRID_ENC_LEN - VF_X25519_LEN, err);
	return rc;
}

/* What decryption checks before it needs a key, for every known type. */
static enum vf_code check_stanza(const struct vf_stanza *s, unsigned max_log_n,
				 struct vf_error *err)
{
	uint8_t share[VF_X25519_LEN], salt[VF_SCRYPT_SALT_LEN];
	unsigned log_n;
	enum vf_code rc = VF_OK;
	if (!strcmp(s->type, "X25519")) {
		rc = vf_x25519_stanza_share(s, share, err);
		if (rc == VF_OK)
			rc = vf_share_check_order(s->type, share, err);
	} else if (!strcmp(s->type, "ssh-ed25519")) {
		rc = vf_ssh_ed25519_stanza_share(s, share, err);
		if (rc == VF_OK)
			rc = vf_stanza_wrapped_key(s, err);
		if (rc == VF_OK)
			rc = vf_share_check_order(s->type, share, err);
	} else if (!strcmp(s->type, "scrypt")) {
		rc = vf_scrypt_stanza_params(s, max_log_n, salt, &log_n, err);
	} else if (!strcmp(s->type, "ssh-rsa")) {
		rc = vf_ssh_rsa_stanza_check(s, err);
	} else if (!strcmp(s->type, HYBRID_TYPE)) {
		rc = check_hybrid(s, err);
	}
	return rc;
}

static enum vf_code count_type(struct vf_inspection *x, const char *type, struct vf_error *err)
{
	for (size_t i = 0; i < x->n_types; i++)
		if (!strcmp(x->types[i].type, type)) {
			x->types[i].count++;
			return VF_OK;
		}
	struct vf_stanza_count *grown = realloc(x->types, (x->n_types + 1) * sizeof(*grown));
	if (!grown)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	x->types = grown;
	if (!(x->types[x->n_types].type = strdup(type)))
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	x->types[x->n_types++].count = 1;
	return VF_OK;
}

static enum vf_code describe_header(struct vf_inspection *x, const struct vf_header *h,
				    unsigned max_log_n, struct vf_error *err)
{
	enum vf_code rc = vf_header_check(h, err);
	for (size_t i = 0; rc == VF_OK && i < h->n; i++)
		rc = check_stanza(&h->stanzas[i], max_log_n, err);
	for (size_t i = 0; rc == VF_OK && i < h->n; i++) {
		rc = count_type(x, h->stanzas[i].type, err);
		judge_postquantum(x, h->stanzas[i].type);
	}
	x->n_stanzas = h->n;
	/* The parser accepts only the canonical encoding, so the header's
	 * bytes in the file are exactly its marshalled form. */
	struct vf_buf encoded;
	vf_buf_init(&encoded);
	if (rc == VF_OK)
		rc = vf_header_marshal(h, 1, &encoded, err);
	x->header_len = encoded.len;
	vf_buf_free(&encoded);
	return rc;
}

/* A source that counts what passes through it: the armored length. */
struct counting_src {
	struct vf_src base;
	struct vf_src *inner;
	uint64_t n;
};

static ssize_t counting_read(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err)
{
	struct counting_src *c = (struct counting_src *)src;
	ssize_t got = c->inner->read(c->inner, buf, len, err);
	if (got > 0)
		c->n += (uint64_t)got;
	return got;
}

static bool counting_ready(struct vf_src *src)
{
	struct counting_src *c = (struct counting_src *)src;
	return c->inner->ready(c->inner);
}

/* Reads src to its end; *n is how many bytes that was. */
static enum vf_code drain(struct vf_src *src, uint64_t *n, struct vf_error *err)
{
	uint8_t buf[16384];
	ssize_t got;
	*n = 0;
	while ((got = src->read(src, buf, sizeof(buf), err)) > 0)
		*n += (uint64_t)got;
	return got == 0 ? VF_OK : err ? err->code : VF_E_IO;
}

/* After the header: the nonce, then the chunks. */
static enum vf_code describe_payload(struct vf_inspection *x, uint64_t after_header,
				     struct vf_error *err)
{
	if (after_header < VF_PAYLOAD_NONCE_LEN)
		return vf_fail(err, VF_E_HEADER, VF_MSG_NO_NONCE);
	enum vf_code rc = vf_stream_sizes(after_header - VF_PAYLOAD_NONCE_LEN, &x->payload_len,
					  &x->chunks, err);
	x->overhead_len = after_header - x->payload_len;
	return rc;
}

/* From the reader positioned at the header (the binary file: armor
 * already removed when there was some). */
static enum vf_code inspect_from(struct vf_inspection *x, struct vf_bufreader *br,
				 const struct counting_src *counter, off_t size, unsigned max_log_n,
				 struct vf_error *err)
{
	struct vf_header h;
	enum vf_code rc = vf_header_parse(&h, br, err);
	if (rc != VF_OK)
		return rc;
	rc = describe_header(x, &h, max_log_n, err);
	vf_header_free(&h);
	uint64_t after = 0;
	if (rc == VF_OK && (x->armored || size < 0)) {
		rc = drain(&br->base, &after, err);
		x->file_len = counter->n;
	} else if (rc == VF_OK) {
		after = (uint64_t)size - x->header_len;
		x->file_len = (uint64_t)size;
	}
	if (rc == VF_OK)
		rc = describe_payload(x, after, err);
	x->armor_len = x->file_len - (x->header_len + after);
	return rc;
}

enum vf_code vf_inspect(struct vf_src *in, off_t size, unsigned max_log_n,
			struct vf_inspection *out, struct vf_error *err)
{
	memset(out, 0, sizeof(*out));
	struct counting_src counter = {{.read = counting_read, .ready = counting_ready}, in, 0};
	struct vf_bufreader raw, dearmored;
	struct vf_armor_reader ar;
	/* The same readers as vf_decrypt, so that a bad file fails the same. */
	enum vf_code rc = vf_bufreader_init(&raw, &counter.base, VF_HEADER_LINE_MAX, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_armor_detect(&raw, &out->armored, err);
	if (rc == VF_OK && out->armored) {
		vf_armor_reader_init(&ar, &raw);
		rc = vf_bufreader_init(&dearmored, &ar.base, VF_HEADER_LINE_MAX, err);
		if (rc == VF_OK) {
			rc = inspect_from(out, &dearmored, &counter, size, max_log_n, err);
			vf_bufreader_free(&dearmored);
		}
	} else if (rc == VF_OK) {
		rc = inspect_from(out, &raw, &counter, size, max_log_n, err);
	}
	vf_bufreader_free(&raw);
	if (rc != VF_OK)
		vf_inspection_free(out);
	return rc;
}

void vf_inspection_free(struct vf_inspection *x)
{
	for (size_t i = 0; i < x->n_types; i++)
		free(x->types[i].type);
	free(x->types);
	memset(x, 0, sizeof(*x));
}
