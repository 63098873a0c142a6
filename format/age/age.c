#include "age/age.h"

#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "base/secmem.h"
#include "age/armor.h"
#include "age/header_internal.h"

/* Appends a recipient's name to list (capacity cap): whole up to
 * NAME_SHOWN characters, else its start and its end (an SSH key's
 * distinguishing bytes and comment are at the end), control bytes
 * escaped. */
#define NAME_SHOWN 100
#define NAME_PART 40
static void append_name(char *list, size_t cap, const struct vf_recipient *r)
{
	const char *name = r->name ? r->name : r->ops->type;
	size_t len = strlen(name), used = strlen(list);
	char shown[NAME_SHOWN + 1], escaped[4 * NAME_SHOWN + 1];
	if (len <= NAME_SHOWN)
		snprintf(shown, sizeof(shown), "%s", name);
	else
		snprintf(shown, sizeof(shown), "%.*s...%s", NAME_PART, name,
			 name + len - NAME_PART);
	vf_escape_controls(shown, escaped, sizeof(escaped));
	snprintf(list + used, cap - used, "%s%s", used ? ", " : "", escaped);
}

/* age 1.3's rule: a file is sealed to post-quantum recipients only or to
 * classic ones only, since whoever breaks the classic stanza reads the
 * file whatever the others are. One line, naming the classic recipients. */
static enum vf_code check_no_mix(struct vf_recipient *const *recipients, size_t n,
				 struct vf_error *err)
{
	size_t pq = 0;
	for (size_t i = 0; i < n; i++)
		pq += recipients[i]->ops->post_quantum;
	if (pq == 0 || pq == n)
		return VF_OK;
	char list[2048] = "";
	size_t named = 0;
	for (size_t i = 0; i < n; i++) {
		if (recipients[i]->ops->post_quantum)
			continue;
		if (strlen(list) + 4 * NAME_SHOWN + 8 > sizeof(list))
			break;
		append_name(list, sizeof(list), recipients[i]);
		named++;
	}
	return vf_fail(err, VF_E_ARG,
		       "can't mix post-quantum and classic recipients: seal to post-quantum "
		       "recipients only or to classic ones only (classic: %s%s)",
		       list, named < n - pq ? ", and more" : "");
}

enum vf_code vf_wrap_header(struct vf_recipient *const *recipients, size_t n,
			    const uint8_t file_key[VF_FILE_KEY_LEN], struct vf_header *h,
			    struct vf_error *err)
{
	memset(h, 0, sizeof(*h));
	if (n == 0)
		return vf_fail(err, VF_E_ARG, "no recipients");
	for (size_t i = 0; i < n; i++)
		if (recipients[i]->ops->must_be_alone && n > 1)
			return vf_fail(err, VF_E_ARG, "a %s recipient must be the only recipient",
				       recipients[i]->ops->type);
	enum vf_code rc = check_no_mix(recipients, n, err);
	if (rc != VF_OK)
		return rc;
	for (size_t i = 0; rc == VF_OK && i < n; i++) {
		/* Zeroed: a wrap that fails before filling it in (an OpenSSL
		 * failure) leaves it for vf_stanza_free as it was. */
		struct vf_stanza s = {0};
		rc = recipients[i]->ops->wrap(recipients[i], file_key, &s, err);
		if (rc == VF_OK)
			rc = vf_header_add(h, &s, err);
		vf_stanza_free(&s);
	}
	struct vf_buf macced;
	vf_buf_init(&macced);
	if (rc == VF_OK)
		rc = vf_header_marshal(h, 0, &macced, err);
	if (rc == VF_OK)
		rc = vf_header_mac(file_key, macced.data, macced.len, h->mac, err);
	vf_buf_free(&macced);
	if (rc != VF_OK)
		vf_header_free(h);
	return rc;
}

enum vf_code vf_encrypt(struct vf_recipient *const *recipients, size_t n, struct vf_src *in,
			struct vf_sink *out, struct vf_error *err)
{
	uint8_t *file_key = vf_scratch_alloc(VF_FILE_KEY_LEN);
	if (!file_key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	struct vf_header h = {0};
	struct vf_buf encoded;
	vf_buf_init(&encoded);
	uint8_t nonce[VF_PAYLOAD_NONCE_LEN];
	enum vf_code rc = vf_random(file_key, VF_FILE_KEY_LEN, err);
	if (rc == VF_OK)
		rc = vf_wrap_header(recipients, n, file_key, &h, err);
	if (rc == VF_OK)
		rc = vf_header_marshal(&h, 1, &encoded, err);
	if (rc == VF_OK)
		rc = vf_random(nonce, sizeof(nonce), err);
	if (rc == VF_OK)
		rc = vf_buf_append(&encoded, nonce, sizeof(nonce), err);
	if (rc == VF_OK)
		rc = vf_sink_write(out, encoded.data, encoded.len, err);
	if (rc == VF_OK)
		rc = vf_stream_encrypt(file_key, nonce, in, out, err);
	if (rc == VF_OK)
		rc = out->finish(out, err);
	vf_buf_free(&encoded);
	vf_header_free(&h);
	vf_scratch_free(file_key, VF_FILE_KEY_LEN);
	return rc;
}

enum vf_code vf_header_check(const struct vf_header *h, struct vf_error *err)
{
	/* A passphrase-encrypted file must not carry other stanzas: otherwise
	 * whoever holds the other key could swap in a weaker passphrase. */
	for (size_t s = 0; s < h->n; s++)
		if (strcmp(h->stanzas[s].type, "scrypt") == 0 && h->n != 1)
			return vf_fail(err, VF_E_HEADER,
				       "an scrypt stanza must be the only one in the header");
	return VF_OK;
}

enum vf_code vf_unwrap_header(struct vf_identity *const *ids, size_t n,
			      const struct vf_header *h, uint8_t file_key[VF_FILE_KEY_LEN],
			      struct vf_error *err)
{
	enum vf_code rc = vf_header_check(h, err);
	if (rc != VF_OK)
		return rc;
	rc = VF_E_NO_MATCH;
	struct vf_error last_no_match = {VF_E_NO_MATCH, "no identity matched any of the recipients"};
	for (size_t i = 0; i < n && rc == VF_E_NO_MATCH; i++) {
		for (size_t s = 0; s < h->n; s++) {
			struct vf_error e = {0};
			rc = ids[i]->ops->unwrap(ids[i], &h->stanzas[s], file_key, &e);
			if (rc == VF_E_NO_MATCH) {
				/* Keep a specific reason ("wrong passphrase") if given. */
				if (e.msg[0])
					last_no_match = e;
				continue;
			}
			if (rc != VF_OK && err)
				*err = e;
			break;
		}
	}
	if (rc == VF_E_NO_MATCH) {
		if (err)
			*err = last_no_match;
		return VF_E_NO_MATCH;
	}
	if (rc != VF_OK)
		return rc;
	uint8_t mac[VF_MAC_LEN];
	rc = vf_header_mac(file_key, h->macced, h->macced_len, mac, err);
	if (rc == VF_OK && !vf_equal(mac, h->mac, VF_MAC_LEN))
		rc = vf_fail(err, VF_E_HMAC, "the header MAC does not verify (header was altered)");
	if (rc != VF_OK)
		vf_wipe(file_key, VF_FILE_KEY_LEN);
	return rc;
}

static enum vf_code decrypt_from(struct vf_identity *const *ids, size_t n,
				 struct vf_bufreader *br, struct vf_sink *out,
				 struct vf_error *err)
{
	struct vf_header h;
	uint8_t *file_key = vf_scratch_alloc(VF_FILE_KEY_LEN);
	if (!file_key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	uint8_t nonce[VF_PAYLOAD_NONCE_LEN];
	size_t got = 0;
	enum vf_code rc = vf_header_parse(&h, br, err);
	if (rc == VF_OK) {
		rc = vf_unwrap_header(ids, n, &h, file_key, err);
		vf_header_free(&h);
	}
	if (rc == VF_OK)
		rc = vf_read_full(&br->base, nonce, sizeof(nonce), &got, err);
	if (rc == VF_OK && got != sizeof(nonce))
		rc = vf_fail(err, VF_E_HEADER, VF_MSG_NO_NONCE);
	if (rc == VF_OK)
		rc = vf_stream_decrypt(file_key, nonce, &br->base, out, err);
	if (rc == VF_OK)
		rc = out->finish(out, err);
	vf_scratch_free(file_key, VF_FILE_KEY_LEN);
	return rc;
}

enum vf_code vf_decrypt(struct vf_identity *const *ids, size_t n, struct vf_src *in,
			enum vf_armor_mode armor, struct vf_sink *out, struct vf_error *err)
{
	struct vf_bufreader raw, dearmored;
	struct vf_armor_reader ar;
	enum vf_code rc = vf_bufreader_init(&raw, in, VF_HEADER_LINE_MAX, err);
	if (rc != VF_OK)
		return rc;
	bool armored = armor == VF_ARMOR_YES;
	if (armor == VF_ARMOR_AUTO)
		rc = vf_armor_detect(&raw, &armored, err);
	if (rc == VF_OK && armored) {
		vf_armor_reader_init(&ar, &raw);
		rc = vf_bufreader_init(&dearmored, &ar.base, VF_HEADER_LINE_MAX, err);
		if (rc == VF_OK) {
			rc = decrypt_from(ids, n, &dearmored, out, err);
			vf_bufreader_free(&dearmored);
		}
	} else if (rc == VF_OK) {
		rc = decrypt_from(ids, n, &raw, out, err);
	}
	vf_bufreader_free(&raw);
	return rc;
}
