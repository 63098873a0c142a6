/* Checks the primitive wrappers of format/base/crypto.h against the Wycheproof
 * vectors (../shared/testdata/wycheproof, passed as argv[1], read in place):
 *  - x25519_test.json: vf_x25519 gives `shared`; an all-zero `shared` (a
 *    low-order peer) must instead be refused with VF_E_KEY, as age requires;
 *  - chacha20_poly1305_test.json: vf_aead_seal gives ct||tag and
 *    vf_aead_open gives msg for valid tests, open fails with VF_E_AUTH (and
 *    wipes its output) for invalid ones; nonces other than 12 bytes are
 *    refused by both with VF_E_ARG;
 *  - hkdf_sha256_test.json: vf_hkdf_sha256 gives `okm`; too-large sizes are
 *    refused;
 *  - hmac_sha256_test.json: the first tagSize/8 bytes of vf_hmac_sha256 equal
 *    `tag` exactly for valid tests and differ for invalid ones.
 * Prints one line per failing test, one summary line per file and a final
 * "wycheproof: N passed, M failed". Exit status 0 only when nothing failed
 * and every file was read and had tests.
 *
 * The JSON reader is tests/json_tree.c, shared with pq_test. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "base/error.h"
#include "base/secmem.h"
#include "json_tree.h"

/* ---- One test case ---------------------------------------------------- */

#define MAX_ALLOCS 16

enum result { R_VALID, R_ACCEPTABLE, R_INVALID };

struct tcase {
	const char *suite;
	long id;
	const struct jnode *group, *test;
	void *allocs[MAX_ALLOCS]; /* freed after the test, so checks can return early */
	size_t n_allocs;
};

/* Prints why the test failed; returns false so checks can `return fail()`. */
static bool fail(const struct tcase *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(const struct tcase *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL %s tcId %ld: ", t->suite, t->id);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	return false;
}

/* A wrong return code, with the wrapper's own reason when it gave one. */
static bool fail_code(const struct tcase *t, const char *what, enum vf_code want,
		      enum vf_code got, const struct vf_error *err)
{
	return fail(t, "%s: expected %s, got %s%s%s", what, vf_code_name(want), vf_code_name(got),
		    got == VF_OK ? "" : ": ", got == VF_OK ? "" : err->msg);
}

/* Zeroed scratch memory owned by the test case; one spare byte so that an
 * empty buffer is still a real, non-NULL pointer, as a caller would pass. */
static uint8_t *scratch(struct tcase *t, size_t len)
{
	if (t->n_allocs == MAX_ALLOCS)
		return NULL;
	uint8_t *p = calloc(1, len + 1);
	if (p)
		t->allocs[t->n_allocs++] = p;
	return p;
}

static void free_scratch(struct tcase *t)
{
	while (t->n_allocs)
		free(t->allocs[--t->n_allocs]);
}

/* Decodes the hex string member key of the test; NULL (reported) if it is
 * missing or not hex. */
static uint8_t *hex_field(struct tcase *t, const char *key, size_t *len)
{
	const struct jnode *s = jget(t->test, key, J_STRING);
	if (!s || s->len % 2) {
		fail(t, "malformed vector: field \"%s\" missing or not hex", key);
		return NULL;
	}
	uint8_t *out = scratch(t, s->len / 2);
	if (!out) {
		fail(t, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < s->len / 2; i++) {
		int hi = hex_digit(s->str[2 * i]), lo = hex_digit(s->str[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fail(t, "malformed vector: field \"%s\" is not hex", key);
			return NULL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = s->len / 2;
	return out;
}

static bool result_of(const struct tcase *t, enum result *out)
{
	const struct jnode *r = jget(t->test, "result", J_STRING);
	const char *s = r ? r->str : "";
	if (strcmp(s, "valid") == 0)
		*out = R_VALID;
	else if (strcmp(s, "acceptable") == 0)
		*out = R_ACCEPTABLE;
	else if (strcmp(s, "invalid") == 0)
		*out = R_INVALID;
	else
		return fail(t, "malformed vector: result \"%s\"", s);
	return true;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

/* ---- X25519 ------------------------------------------------------------ */

static bool run_x25519(struct tcase *t)
{
	size_t priv_len = 0, pub_len = 0, want_len = 0;
	const uint8_t *priv = hex_field(t, "private", &priv_len);
	const uint8_t *pub = hex_field(t, "public", &pub_len);
	const uint8_t *want = hex_field(t, "shared", &want_len);
	enum result res = R_INVALID; /* set by result_of; the compiler cannot see it */
	if (!priv || !pub || !want || !result_of(t, &res))
		return false;
	if (priv_len != VF_X25519_LEN || pub_len != VF_X25519_LEN || want_len != VF_X25519_LEN)
		return fail(t, "malformed vector: a value is not 32 bytes");
	uint8_t got[VF_X25519_LEN] = {0};
	struct vf_error err = {0};
	enum vf_code rc = vf_x25519(priv, pub, got, &err);
	/* Whatever the result says, age must abort on an all-zero secret. */
	if (all_zero(want, want_len))
		return rc == VF_E_KEY || fail_code(t, "all-zero shared secret", VF_E_KEY, rc, &err);
	if (res == R_INVALID)
		return rc != VF_OK || fail(t, "invalid vector accepted");
	/* OpenSSL follows RFC 7748, so "acceptable" (twist, non-canonical)
	 * inputs must give the RFC's answer too. */
	if (rc != VF_OK)
		return fail_code(t, "X25519", VF_OK, rc, &err);
	return memcmp(got, want, VF_X25519_LEN) == 0 || fail(t, "shared secret differs");
}

/* ---- ChaCha20-Poly1305 -------------------------------------------------- */

struct aead_vec {
	const uint8_t *key, *iv, *aad, *msg, *ct, *tag;
	size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
};

static bool aead_fields(struct tcase *t, struct aead_vec *v)
{
	v->key = hex_field(t, "key", &v->key_len);
	v->iv = hex_field(t, "iv", &v->iv_len);
	v->aad = hex_field(t, "aad", &v->aad_len);
	v->msg = hex_field(t, "msg", &v->msg_len);
	v->ct = hex_field(t, "ct", &v->ct_len);
	v->tag = hex_field(t, "tag", &v->tag_len);
	if (!v->key || !v->iv || !v->aad || !v->msg || !v->ct || !v->tag)
		return false;
	if (v->key_len != VF_AEAD_KEY_LEN || v->msg_len != v->ct_len)
		return fail(t, "malformed vector: key size or ct/msg lengths");
	/* Bad-nonce vectors carry an empty tag; the wrappers still read 16. */
	if (v->tag_len != VF_AEAD_TAG_LEN && v->iv_len == VF_AEAD_NONCE_LEN)
		return fail(t, "malformed vector: tag is not 16 bytes");
	return true;
}

/* Any nonce but 12 bytes is refused as a caller error by both directions. */
static bool aead_bad_nonce(struct tcase *t, const struct aead_vec *v)
{
	uint8_t tag[VF_AEAD_TAG_LEN] = {0};
	uint8_t *out = scratch(t, v->msg_len);
	struct vf_error err = {0};
	if (!out)
		return fail(t, "out of memory");
	enum vf_code rc = vf_aead_seal(v->key, v->iv, v->iv_len, v->aad, v->aad_len, v->msg,
				       v->msg_len, out, tag, &err);
	if (rc != VF_E_ARG)
		return fail_code(t, "seal with a bad nonce size", VF_E_ARG, rc, &err);
	rc = vf_aead_open(v->key, v->iv, v->iv_len, v->aad, v->aad_len, v->ct, v->ct_len, tag, out,
			  &err);
	if (rc != VF_E_ARG)
		return fail_code(t, "open with a bad nonce size", VF_E_ARG, rc, &err);
	return true;
}

static bool aead_seal_check(struct tcase *t, const struct aead_vec *v)
{
	uint8_t tag[VF_AEAD_TAG_LEN] = {0};
	uint8_t *out = scratch(t, v->msg_len);
	struct vf_error err = {0};
	if (!out)
		return fail(t, "out of memory");
	enum vf_code rc = vf_aead_seal(v->key, v->iv, v->iv_len, v->aad, v->aad_len, v->msg,
				       v->msg_len, out, tag, &err);
	if (rc != VF_OK)
		return fail_code(t, "seal", VF_OK, rc, &err);
	if (memcmp(out, v->ct, v->ct_len) != 0)
		return fail(t, "seal: ciphertext differs");
	return memcmp(tag, v->tag, VF_AEAD_TAG_LEN) == 0 || fail(t, "seal: tag differs");
}

static bool aead_open_check(struct tcase *t, const struct aead_vec *v, enum result res)
{
	uint8_t *out = scratch(t, v->ct_len);
	struct vf_error err = {0};
	if (!out)
		return fail(t, "out of memory");
	/* A non-zero canvas, to see that a failed open really wipes it. */
	memset(out, 0xa5, v->ct_len);
	enum vf_code rc = vf_aead_open(v->key, v->iv, v->iv_len, v->aad, v->aad_len, v->ct,
				       v->ct_len, v->tag, out, &err);
	if (rc == VF_OK && memcmp(out, v->msg, v->msg_len) != 0)
		return fail(t, "open: plaintext differs");
	if (rc == VF_OK)
		return res != R_INVALID || fail(t, "open accepted an invalid ciphertext");
	if (rc != VF_E_AUTH || res == R_VALID)
		return fail_code(t, "open", res == R_VALID ? VF_OK : VF_E_AUTH, rc, &err);
	return all_zero(out, v->ct_len) || fail(t, "open failed but released plaintext");
}

static bool run_aead(struct tcase *t)
{
	struct aead_vec v;
	enum result res = R_INVALID; /* set by result_of; the compiler cannot see it */
	if (!aead_fields(t, &v) || !result_of(t, &res))
		return false;
	if (v.iv_len != VF_AEAD_NONCE_LEN)
		return aead_bad_nonce(t, &v);
	if (res == R_VALID && !aead_seal_check(t, &v))
		return false;
	return aead_open_check(t, &v, res);
}

/* ---- HKDF-SHA-256 --------------------------------------------------------- */

static bool run_hkdf(struct tcase *t)
{
	size_t ikm_len = 0, salt_len = 0, info_len = 0, okm_len = 0;
	const uint8_t *ikm = hex_field(t, "ikm", &ikm_len);
	const uint8_t *salt = hex_field(t, "salt", &salt_len);
	const uint8_t *info = hex_field(t, "info", &info_len);
	const uint8_t *okm = hex_field(t, "okm", &okm_len);
	enum result res = R_INVALID; /* set by result_of; the compiler cannot see it */
	long size;
	if (!ikm || !salt || !info || !okm || !result_of(t, &res))
		return false;
	/* The bound only keeps a broken vector from asking for gigabytes. */
	if (!jget_uint(t->test, "size", 1L << 20, &size))
		return fail(t, "malformed vector: size");
	uint8_t *out = scratch(t, (size_t)size);
	struct vf_error err = {0};
	if (!out)
		return fail(t, "out of memory");
	enum vf_code rc = vf_hkdf_sha256(ikm, ikm_len, salt, salt_len, info, info_len, out,
					 (size_t)size, &err);
	if (res == R_INVALID)
		return rc != VF_OK || fail(t, "invalid vector (size %ld) accepted", size);
	if (rc != VF_OK)
		return fail_code(t, "HKDF", VF_OK, rc, &err);
	if ((size_t)size != okm_len)
		return fail(t, "malformed vector: size %ld but okm has %zu bytes", size, okm_len);
	return memcmp(out, okm, okm_len) == 0 || fail(t, "okm differs");
}

/* ---- HMAC-SHA-256 --------------------------------------------------------- */

static bool run_hmac(struct tcase *t)
{
	size_t key_len = 0, msg_len = 0, tag_len = 0;
	const uint8_t *key = hex_field(t, "key", &key_len);
	const uint8_t *msg = hex_field(t, "msg", &msg_len);
	const uint8_t *tag = hex_field(t, "tag", &tag_len);
	enum result res = R_INVALID; /* set by result_of; the compiler cannot see it */
	long tag_bits;
	if (!key || !msg || !tag || !result_of(t, &res))
		return false;
	/* Truncated MACs: the group says how many leading bytes count. */
	if (!jget_uint(t->group, "tagSize", 8 * VF_SHA256_LEN, &tag_bits) || tag_bits == 0 ||
	    tag_bits % 8 || tag_len != (size_t)tag_bits / 8)
		return fail(t, "malformed vector: tagSize or tag length");
	uint8_t out[VF_SHA256_LEN] = {0};
	struct vf_error err = {0};
	enum vf_code rc = vf_hmac_sha256(key, key_len, msg, msg_len, out, &err);
	if (rc != VF_OK)
		return fail_code(t, "HMAC", VF_OK, rc, &err);
	bool match = memcmp(out, tag, tag_len) == 0;
	if (res == R_INVALID)
		return !match || fail(t, "modified tag matches");
	return match || fail(t, "tag differs");
}

/* ---- Driver ---------------------------------------------------------------- */

struct suite {
	const char *name;
	const char *file;
	const char *algorithm; /* guards against reading the wrong file */
	bool (*run)(struct tcase *t);
	long passed, failed;
};

static void run_one(struct suite *s, const struct jnode *group, const struct jnode *test)
{
	struct tcase t = {.suite = s->name, .id = -1, .group = group, .test = test};
	bool ok;
	if (!jget_uint(test, "tcId", 1L << 30, &t.id))
		ok = fail(&t, "malformed vector: no tcId");
	else
		ok = s->run(&t);
	free_scratch(&t);
	if (ok)
		s->passed++;
	else
		s->failed++;
}

/* Runs every test of every group; returns how many there were. */
static long run_groups(struct suite *s, const struct jnode *groups)
{
	long n = 0;
	for (const struct jnode *g = groups->child; g; g = g->next) {
		const struct jnode *tests = jget(g, "tests", J_ARRAY);
		for (const struct jnode *t = tests ? tests->child : NULL; t; t = t->next) {
			run_one(s, g, t);
			n++;
		}
	}
	return n;
}

/* A file-level problem counts as one failure of that file. */
static void file_fail(struct suite *s, const char *why)
{
	printf("FAIL %s (%s): %s\n", s->name, s->file, why);
	s->failed++;
}

static void run_doc(struct suite *s, const struct jnode *doc)
{
	const struct jnode *alg = jget(doc, "algorithm", J_STRING);
	const struct jnode *groups = jget(doc, "testGroups", J_ARRAY);
	long declared;
	if (!alg || strcmp(alg->str, s->algorithm) != 0 || !groups) {
		file_fail(s, "not the expected Wycheproof file");
		return;
	}
	long ran = run_groups(s, groups);
	/* numberOfTests proves the walk saw every test, none skipped. */
	if (!jget_uint(doc, "numberOfTests", 1L << 30, &declared) || declared != ran)
		file_fail(s, "test count does not match numberOfTests");
	if (ran == 0)
		file_fail(s, "no tests");
}

static void run_suite(struct suite *s, const char *dir)
{
	char path[4096];
	size_t len = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, s->file) >= (int)sizeof(path)) {
		file_fail(s, "path too long");
		return;
	}
	char *text = read_whole_file(path, &len);
	if (!text) {
		file_fail(s, strerror(errno ? errno : EIO));
		return;
	}
	struct jnode *doc = json_parse(text, len, path);
	free(text);
	if (!doc) {
		file_fail(s, "unparsable JSON");
		return;
	}
	run_doc(s, doc);
	json_free(doc);
}

int main(int argc, char **argv)
{
	struct suite suites[] = {
		{"x25519", "x25519_test.json", "XDH", run_x25519, 0, 0},
		{"chacha20-poly1305", "chacha20_poly1305_test.json", "CHACHA20-POLY1305", run_aead,
		 0, 0},
		{"hkdf-sha256", "hkdf_sha256_test.json", "HKDF-SHA-256", run_hkdf, 0, 0},
		{"hmac-sha256", "hmac_sha256_test.json", "HMACSHA256", run_hmac, 0, 0},
	};
	if (argc != 2) {
		fprintf(stderr, "usage: %s WYCHEPROOF_DIR\n", argv[0]);
		return 2;
	}
	if (vf_init() != 0) {
		fprintf(stderr, "vf_init failed\n");
		return 2;
	}
	long passed = 0, failed = 0;
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		struct suite *s = &suites[i];
		run_suite(s, argv[1]);
		printf("%s: %ld passed, %ld failed\n", s->name, s->passed, s->failed);
		/* A file without a single passing test proves nothing. */
		if (s->passed == 0 && s->failed == 0)
			s->failed = 1;
		passed += s->passed;
		failed += s->failed;
	}
	printf("wycheproof: %ld passed, %ld failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
