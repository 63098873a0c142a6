#include "vars/pair.h"

#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/crypto.h"
#include "base/secmem.h"
#include "age/recipient.h"

/* A WireGuard key in base64: 32 bytes, padded, as wg(8) prints it. */
#define WG_KEY_CHARS 44
/* An X25519 recipient is 62 characters ("age1", 52 of data, 6 of
 * checksum), a hybrid post-quantum one 1,959 ("age1pq1", 1,946 of data, 6
 * of checksum); anything much longer is not one, and is not copied. */
#define AGE_RECIPIENT_MAX 128
#define AGE_PQ_RECIPIENT_MAX 2048

static const char wg_private_expected[] =
	"expected the base64 of 32 bytes (44 characters), as wg genkey prints it";
static const char wg_public_expected[] =
	"expected the base64 of 32 bytes (44 characters), as wg pubkey prints it";
static const char age_identity_expected[] =
	"expected one AGE-SECRET-KEY-1... line, as age-keygen writes it";
static const char age_recipient_expected[] =
	"expected an age1... recipient, as age-keygen -y prints it";
/* pq: true */
static const char age_pq_identity_expected[] =
	"expected one post-quantum AGE-SECRET-KEY-PQ-1... line, as age-keygen -pq writes it "
	"(the generator says pq: true)";
static const char age_pq_recipient_expected[] =
	"expected a post-quantum age1pq1... recipient, as age-keygen -y prints it";

bool vf_pair_kind(const struct vf_spec_generator *g)
{
	return (g->kind == VF_KIND_WIREGUARD || g->kind == VF_KIND_AGE_KEYPAIR) && g->n_files == 2;
}

/* The spec parser lists a pair's private half first (spec.c, pair_files). */
const struct vf_spec_file *vf_pair_private(const struct vf_spec_generator *g)
{
	return vf_pair_kind(g) ? &g->files[0] : NULL;
}

const struct vf_spec_file *vf_pair_public(const struct vf_spec_generator *g)
{
	return vf_pair_kind(g) ? &g->files[1] : NULL;
}

const char *vf_pair_kind_name(const struct vf_spec_generator *g)
{
	return g->kind == VF_KIND_WIREGUARD ? "WireGuard" : g->pq ? "post-quantum age" : "age";
}

/* len without one trailing "\n" or "\r\n": a key piped from wg genkey, or
 * saved by an editor, ends with one; the stored key does not. */
static size_t without_line_end(const uint8_t *data, size_t len)
{
	if (len && data[len - 1] == '\n') {
		len--;
		if (len && data[len - 1] == '\r')
			len--;
	}
	return len;
}

static void free_pair(struct vf_value *a, struct vf_value *b)
{
	vf_value_free(a);
	vf_value_free(b);
}

/* Any 32 bytes are a WireGuard private key: wg (like X25519 itself)
 * clamps them when it uses them, so an unclamped one gives the same
 * public key here as with wg pubkey. */
static enum vf_code wireguard_derive(const uint8_t *data, size_t len, struct vf_value *private_half,
				     struct vf_value *public_half, struct vf_error *err)
{
	len = without_line_end(data, len);
	uint8_t *secret = vf_secure_alloc(VF_X25519_LEN);
	if (!secret)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t n = 0;
	enum vf_code rc = VF_OK;
	if (len != WG_KEY_CHARS ||
	    !vf_b64_decode_secret((const char *)data, len, secret, VF_X25519_LEN, &n, true) ||
	    n != VF_X25519_LEN)
		rc = vf_fail(err, VF_E_KEY, "not a WireGuard private key: %s", wg_private_expected);
	uint8_t pub[VF_X25519_LEN];
	char pub_b64[WG_KEY_CHARS + 1];
	if (rc == VF_OK)
		rc = vf_x25519_public(secret, pub, err);
	vf_secure_free(secret);
	/* The strict decoder took only canonical base64: the key as given is
	 * the key as vargen would have encoded it. */
	if (rc == VF_OK)
		rc = vf_value_set(private_half, data, len, err);
	if (rc == VF_OK)
		rc = vf_value_set(public_half, pub_b64, vf_b64_encode(pub, VF_X25519_LEN, pub_b64, true),
				  err);
	if (rc != VF_OK)
		free_pair(private_half, public_half);
	return rc;
}

/* The one key line of an identity as age-keygen writes it: '#' comment
 * lines and blank lines around it are allowed (age reads such files so),
 * CRLF too. *count: how many key lines there are. */
static void find_key_line(const uint8_t *data, size_t len, const uint8_t **key, size_t *key_len,
			  size_t *count)
{
	*count = 0;
	for (size_t at = 0; at < len;) {
		const uint8_t *nl = memchr(data + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t n = end - at;
		if (n && data[at + n - 1] == '\r')
			n--;
		if (n && data[at] != '#') {
			*key = data + at;
			*key_len = n;
			(*count)++;
		}
		at = end + 1;
	}
}

/* An identity of the pair's kind: X25519, or hybrid with pq: true (the
 * other kind is refused: the spec decides what the pair is). */
static enum vf_code age_derive(bool pq, const uint8_t *data, size_t len,
			       struct vf_value *private_half, struct vf_value *public_half,
			       struct vf_error *err)
{
	const char *expected = pq ? age_pq_identity_expected : age_identity_expected;
	const uint8_t *key = NULL;
	size_t key_len = 0, count = 0;
	find_key_line(data, len, &key, &key_len, &count);
	if (count != 1)
		return vf_fail(err, VF_E_KEY, "not an age identity: %s (%zu key lines given)",
			       expected, count);
	struct vf_identity *id = NULL;
	struct vf_error why;
	enum vf_code parsed =
		pq ? vf_hybrid_identity_parse((const char *)key, key_len, &id, &why)
		   : vf_x25519_identity_parse((const char *)key, key_len, &id, &why);
	if (parsed != VF_OK)
		return why.code == VF_E_NOMEM
			       ? vf_fail(err, VF_E_NOMEM, "out of memory")
			       : vf_fail(err, VF_E_KEY, "not %s identity: %s",
					 pq ? "a post-quantum age" : "an age", expected);
	/* Stored as vargen makes it: the key alone, encoded anew (the
	 * parser took only the canonical upper-case form). */
	char *secret = NULL, *recipient = NULL;
	enum vf_code rc = vf_native_identity_encode(id, &secret, err);
	if (rc == VF_OK)
		rc = vf_identity_recipient(id, &recipient, err);
	if (rc == VF_OK)
		rc = vf_value_set(private_half, secret, strlen(secret), err);
	if (rc == VF_OK)
		rc = vf_value_set(public_half, recipient, strlen(recipient), err);
	vf_secure_free(secret);
	free(recipient);
	vf_identity_free(id);
	if (rc != VF_OK)
		free_pair(private_half, public_half);
	return rc;
}

enum vf_code vf_pair_derive(const struct vf_spec_generator *g, const uint8_t *data, size_t len,
			    struct vf_value *private_half, struct vf_value *public_half,
			    struct vf_error *err)
{
	*private_half = (struct vf_value){0};
	*public_half = (struct vf_value){0};
	if (!vf_pair_kind(g))
		return vf_fail(err, VF_E_ARG, "generator %s is not a key pair", g->name);
	return g->kind == VF_KIND_WIREGUARD
		       ? wireguard_derive(data, len, private_half, public_half, err)
		       : age_derive(g->pq, data, len, private_half, public_half, err);
}

static bool wireguard_public_ok(const uint8_t *data, size_t len)
{
	uint8_t pub[VF_X25519_LEN];
	size_t n = 0;
	return len == WG_KEY_CHARS &&
	       vf_b64_decode((const char *)data, len, pub, sizeof(pub), &n, true) &&
	       n == VF_X25519_LEN;
}

/* A recipient of the pair's kind: "age1pq1..." with pq, else "age1..."
 * but not "age1pq1...". */
static bool age_public_ok(bool pq, const uint8_t *data, size_t len)
{
	char text[AGE_PQ_RECIPIENT_MAX + 1];
	bool hybrid = len >= 7 && memcmp(data, "age1pq1", 7) == 0;
	if (len < 4 || len > (pq ? AGE_PQ_RECIPIENT_MAX : AGE_RECIPIENT_MAX) ||
	    memchr(data, '\0', len) || memcmp(data, "age1", 4) != 0 || hybrid != pq)
		return false;
	memcpy(text, data, len);
	text[len] = '\0';
	struct vf_recipient *r = NULL;
	bool ok = vf_recipient_parse(text, &r, NULL) == VF_OK;
	vf_recipient_free(r);
	return ok;
}

enum vf_code vf_pair_check_public(const struct vf_spec_generator *g, const uint8_t *data,
				  size_t len, struct vf_error *err)
{
	if (!vf_pair_kind(g))
		return vf_fail(err, VF_E_ARG, "generator %s is not a key pair", g->name);
	if (g->kind == VF_KIND_WIREGUARD)
		return wireguard_public_ok(data, len)
			       ? VF_OK
			       : vf_fail(err, VF_E_KEY, "not a WireGuard public key: %s",
					 wg_public_expected);
	return age_public_ok(g->pq, data, len)
		       ? VF_OK
		       : vf_fail(err, VF_E_KEY, "not %s recipient: %s",
				 g->pq ? "a post-quantum age" : "an age",
				 g->pq ? age_pq_recipient_expected : age_recipient_expected);
}

/* A half whose bytes can be read and judged. */
static bool readable(enum vf_state st)
{
	return st != VF_STATE_MISSING && st != VF_STATE_CORRUPT && st != VF_STATE_PAIR_MISMATCH;
}

enum vf_code vf_pair_verify(const char *root, const char *owner, const struct vf_spec_generator *g,
			    const struct vf_identities *ids, enum vf_state *states,
			    struct vf_error *err)
{
	if (!vf_pair_kind(g) || !readable(states[0]) || !readable(states[1]))
		return VF_OK;
	struct vf_value secret = {0}, stored = {0}, mine = {0}, theirs = {0};
	struct vf_error why;
	enum vf_code rc = vf_vars_read(root, owner, g, vf_pair_private(g), ids, &secret, err);
	if (rc == VF_OK)
		rc = vf_vars_read(root, owner, g, vf_pair_public(g), ids, &stored, err);
	if (rc == VF_OK) {
		enum vf_code derived = vf_pair_derive(g, secret.data, secret.len, &mine, &theirs, &why);
		if (derived == VF_E_NOMEM)
			rc = vf_fail(err, VF_E_NOMEM, "out of memory");
		else if (derived != VF_OK)
			states[0] = VF_STATE_CORRUPT;
		else if (stored.len != theirs.len || memcmp(stored.data, theirs.data, stored.len) != 0)
			states[1] = VF_STATE_PAIR_MISMATCH;
	}
	vf_value_free(&secret);
	vf_value_free(&stored);
	free_pair(&mine, &theirs);
	return rc;
}
