/* The post-quantum primitives of the age library against the official
 * vectors (issue 14), every case, read in place:
 *
 *   argv[1] = ../shared/testdata/wycheproof, argv[2] = ../shared/testdata/pq
 *
 * ML-KEM-768 (format/age/mlkem.h):
 *  - Wycheproof mlkem_768_keygen_seed_test.json: seed -> ek and dk;
 *  - mlkem_768_test.json: seed -> ek, then decapsulation of c gives K
 *    (valid, including the Strcmp case of implicit rejection); a seed or
 *    ciphertext of the wrong length is refused (invalid);
 *  - mlkem_768_encaps_test.json: ek and m give c and K (valid); a key of
 *    the wrong length or failing the modulus check of FIPS 203 7.2 is
 *    refused (invalid, ModulusOverflow);
 *  - mlkem_768_semi_expanded_decaps_test.json: the expanded dk and c give
 *    K (valid, MalleableCiphertext); a dk or c of the wrong length, or a
 *    dk failing the hash check of FIPS 203 7.3, is refused (invalid);
 *  - CCTV strcmp-ML-KEM-768.txt (decapsulation to the implicit-rejection
 *    key) and modulus-ML-KEM-768.txt.gz (780 keys the modulus check must
 *    refuse);
 *  - our own: Compress/Decompress against their exact definitions for
 *    every input, SampleNTT's recomputation path, random round trips and
 *    the implicit-rejection key J(z || c) of altered ciphertexts.
 *
 * X-Wing (format/age/xwing.h): every vector of the draft (seed -> pk,
 * eseed -> ct and ss, decapsulation -> ss); a low-order X25519 share or
 * public key refused; a public key failing the ML-KEM modulus check or of
 * the wrong length refused.
 *
 * HPKE (format/age/hpke.h): the entries of hpke-pq's and filippo.io/hpke's
 * vectors for age's suite (mode base, KEM 0x647a, KDF 0x0001, AEAD
 * 0x0003): the receiver's pk from skRm (the X-Wing seed, taken as given),
 * enc from ikmE, shared_secret, key, base_nonce, exporter_secret, every
 * encryption in sequence both ways, every export; a random single-shot
 * seal and open, and open refusing a changed ciphertext.
 *
 * age's mlkem768x25519 recipients (format/age/hybrid.c; the official age
 * vectors are cctv_test's): identity and recipient strings round trip
 * (77 and 1,959 characters), a file sealed to two hybrid recipients opens
 * with either identity, a recipient failing the modulus check or
 * malformed is refused, each stanza fault is a header failure with its
 * own message, and sealing to hybrid and classic recipients together is
 * refused with one line naming the classic ones.
 *
 * Keys expanded once for many encapsulations give the one-shot results,
 * and the recipient cache (format/age/recipient_cache.h) keeps its rules:
 * a hit is the same recipient, the least recently used free entry goes
 * first, a held one never, a private copy when all are held, and four
 * threads sealing through a one-entry cache all succeed.
 *
 * Prints "pq: SUITE N/M" per suite, one line per failing case, and a final
 * "pq: N passed, M failed". Exit status 0 only when nothing failed and
 * every suite had cases. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/base64.h"
#include "base/bech32.h"
#include "base/crypto.h"
#include "base/error.h"
#include "base/io.h"
#include "base/secmem.h"
#include "age/age.h"
#include "age/header_internal.h"
#include "age/hpke.h"
#include "age/keys.h"
#include "age/recipient_internal.h"
#include "age/mlkem.h"
#include "age/mlkem_internal.h"
#include "age/recipient_cache.h"
#include "age/xwing.h"
#include "json_tree.h"

/* ---- Bookkeeping ------------------------------------------------------- */

struct suite {
	const char *name;
	long passed, failed;
};

static long total_passed, total_failed;

/* Prints why a case failed; returns false so checks can `return fail()`. */
static bool fail(const char *suite, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool fail(const char *suite, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL %s %s: ", suite, id);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	return false;
}

static void tally(struct suite *s, bool ok)
{
	if (ok)
		s->passed++;
	else
		s->failed++;
}

/* Prints the suite's count; a suite without cases is a failure (a file
 * that went missing must not pass silently). */
static void report(struct suite *s)
{
	printf("pq: %s %ld/%ld\n", s->name, s->passed, s->passed + s->failed);
	if (s->passed + s->failed == 0) {
		printf("FAIL %s: no cases\n", s->name);
		s->failed++;
	}
	total_passed += s->passed;
	total_failed += s->failed;
}

/* Decodes hex (len characters) into a fresh buffer with one spare byte, so
 * that an empty value is still a real pointer. NULL if not hex. */
static uint8_t *unhex(const char *s, size_t len, size_t *out_len)
{
	if (len % 2)
		return NULL;
	uint8_t *out = calloc(1, len / 2 + 1);
	for (size_t i = 0; out && i < len / 2; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = len / 2;
	return out;
}

/* One JSON test case: its fields decoded on demand, freed together. */
#define MAX_FIELDS 16
struct tcase {
	const char *suite;
	char id[32];
	const struct jnode *group, *test;
	uint8_t *fields[MAX_FIELDS];
	size_t n_fields;
};

/* The hex member key of the test (NULL and reported when missing or not
 * hex; absent is allowed when optional). */
static uint8_t *field(struct tcase *t, const char *key, size_t *len, bool optional)
{
	const struct jnode *s = jget(t->test, key, J_STRING);
	*len = 0;
	if (!s) {
		if (!optional)
			fail(t->suite, t->id, "malformed vector: no field \"%s\"", key);
		return NULL;
	}
	uint8_t *out = t->n_fields < MAX_FIELDS ? unhex(s->str, s->len, len) : NULL;
	if (!out) {
		fail(t->suite, t->id, "malformed vector: field \"%s\" is not hex", key);
		return NULL;
	}
	t->fields[t->n_fields++] = out;
	return out;
}

static void tcase_free(struct tcase *t)
{
	while (t->n_fields)
		free(t->fields[--t->n_fields]);
}

enum result { R_VALID, R_ACCEPTABLE, R_INVALID, R_UNKNOWN };

static enum result result_of(const struct tcase *t)
{
	const struct jnode *r = jget(t->test, "result", J_STRING);
	const char *s = r ? r->str : "";
	if (strcmp(s, "valid") == 0)
		return R_VALID;
	if (strcmp(s, "acceptable") == 0)
		return R_ACCEPTABLE;
	if (strcmp(s, "invalid") == 0)
		return R_INVALID;
	fail(t->suite, t->id, "malformed vector: result \"%s\"", s);
	return R_UNKNOWN;
}

static bool same(struct tcase *t, const char *what, const uint8_t *got, const uint8_t *want,
		 size_t want_len, size_t got_len)
{
	if (got_len == want_len && memcmp(got, want, want_len) == 0)
		return true;
	return fail(t->suite, t->id, "%s differs", what);
}

typedef bool (*case_fn)(struct tcase *t);

/* Runs fn on every test of every group of a Wycheproof file, checking the
 * group's parameter set; counts into s. */
static void run_json(struct suite *s, const char *dir, const char *file, case_fn fn)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	size_t len = 0;
	char *text = read_whole_file(path, &len);
	struct jnode *doc = text ? json_parse(text, len, path) : NULL;
	free(text);
	const struct jnode *groups = jget(doc, "testGroups", J_ARRAY);
	if (!groups) {
		fail(s->name, file, "cannot read %s", path);
		s->failed++;
	}
	for (const struct jnode *g = groups ? groups->child : NULL; g; g = g->next) {
		const struct jnode *ps = jget(g, "parameterSet", J_STRING);
		const struct jnode *tests = jget(g, "tests", J_ARRAY);
		if (!ps || strcmp(ps->str, "ML-KEM-768") != 0 || !tests) {
			fail(s->name, file, "a group is not ML-KEM-768 or has no tests");
			s->failed++;
			continue;
		}
		for (const struct jnode *c = tests->child; c; c = c->next) {
			struct tcase t = {.suite = s->name, .group = g, .test = c};
			const struct jnode *id = jget(c, "tcId", J_STRING);
			long n = 0;
			if (id)
				snprintf(t.id, sizeof(t.id), "tcId %s", id->str);
			else if (jget_uint(c, "tcId", 1L << 30, &n))
				snprintf(t.id, sizeof(t.id), "tcId %ld", n);
			tally(s, fn(&t));
			tcase_free(&t);
		}
	}
	json_free(doc);
}

/* ---- ML-KEM-768: Wycheproof ---------------------------------------------- */

/* Keys made from a seed, in test memory. */
struct keypair {
	uint8_t ek[VF_MLKEM768_EK_LEN];
	uint8_t dk[VF_MLKEM768_DK_LEN];
};

static bool keygen_case(struct tcase *t)
{
	size_t seed_len, ek_len, dk_len;
	const uint8_t *seed = field(t, "seed", &seed_len, false);
	const uint8_t *ek = field(t, "ek", &ek_len, false);
	const uint8_t *dk = field(t, "dk", &dk_len, false);
	enum result res = result_of(t);
	if (!seed || !ek || !dk || res == R_UNKNOWN)
		return false;
	struct keypair kp;
	struct vf_error err = {0};
	enum vf_code rc = vf_mlkem768_keygen(seed, seed_len, kp.ek, kp.dk, &err);
	if (res == R_INVALID)
		return rc != VF_OK || fail(t->suite, t->id, "invalid seed accepted");
	if (rc != VF_OK)
		return fail(t->suite, t->id, "keygen: %s", err.msg);
	return same(t, "ek", kp.ek, ek, ek_len, sizeof(kp.ek)) &&
	       same(t, "dk", kp.dk, dk, dk_len, sizeof(kp.dk));
}

/* seed -> keys -> decapsulation of c. An invalid case must be refused at
 * one of the two steps (a seed or a ciphertext of the wrong length). */
static bool decaps_case(struct tcase *t)
{
	size_t seed_len, ek_len, c_len, k_len;
	const uint8_t *seed = field(t, "seed", &seed_len, false);
	const uint8_t *ek = field(t, "ek", &ek_len, true);
	const uint8_t *c = field(t, "c", &c_len, false);
	const uint8_t *k = field(t, "K", &k_len, false);
	enum result res = result_of(t);
	if (!seed || !c || !k || res == R_UNKNOWN)
		return false;
	struct keypair kp;
	uint8_t ss[VF_MLKEM768_SS_LEN];
	struct vf_error err = {0};
	enum vf_code rc = vf_mlkem768_keygen(seed, seed_len, kp.ek, kp.dk, &err);
	if (rc != VF_OK)
		return res == R_INVALID || fail(t->suite, t->id, "keygen: %s", err.msg);
	if (ek && !same(t, "ek", kp.ek, ek, ek_len, sizeof(kp.ek)))
		return false;
	rc = vf_mlkem768_decaps(kp.dk, sizeof(kp.dk), c, c_len, ss, &err);
	if (res == R_INVALID)
		return rc != VF_OK || fail(t->suite, t->id, "invalid ciphertext accepted");
	if (rc != VF_OK)
		return fail(t->suite, t->id, "decaps: %s", err.msg);
	return same(t, "K", ss, k, k_len, sizeof(ss));
}

static bool encaps_case(struct tcase *t)
{
	size_t ek_len, m_len, c_len, k_len;
	const uint8_t *ek = field(t, "ek", &ek_len, false);
	const uint8_t *m = field(t, "m", &m_len, false);
	const uint8_t *c = field(t, "c", &c_len, false);
	const uint8_t *k = field(t, "K", &k_len, false);
	enum result res = result_of(t);
	if (!ek || !m || !c || !k || res == R_UNKNOWN)
		return false;
	if (m_len != VF_MLKEM768_M_LEN)
		return fail(t->suite, t->id, "malformed vector: m is not 32 bytes");
	uint8_t ct[VF_MLKEM768_CT_LEN], ss[VF_MLKEM768_SS_LEN];
	struct vf_error err = {0};
	enum vf_code check = vf_mlkem768_check_ek(ek, ek_len, &err);
	enum vf_code rc = vf_mlkem768_encaps(ek, ek_len, m, ct, ss, &err);
	if (res == R_INVALID) {
		if (check != VF_E_KEY)
			return fail(t->suite, t->id, "check_ek: expected a key error, got %s",
				    vf_code_name(check));
		return rc == VF_E_KEY ||
		       fail(t->suite, t->id, "encaps: expected a key error, got %s",
			    vf_code_name(rc));
	}
	if (check != VF_OK || rc != VF_OK)
		return fail(t->suite, t->id, "encaps: %s", err.msg);
	return same(t, "c", ct, c, c_len, sizeof(ct)) && same(t, "K", ss, k, k_len, sizeof(ss));
}

static bool expanded_decaps_case(struct tcase *t)
{
	size_t dk_len, c_len, k_len, ek_len;
	const uint8_t *dk = field(t, "dk", &dk_len, false);
	const uint8_t *c = field(t, "c", &c_len, false);
	const uint8_t *ek = field(t, "ek", &ek_len, true);
	const uint8_t *k = field(t, "K", &k_len, true);
	enum result res = result_of(t);
	if (!dk || !c || res == R_UNKNOWN)
		return false;
	uint8_t ss[VF_MLKEM768_SS_LEN];
	struct vf_error err = {0};
	enum vf_code rc = vf_mlkem768_decaps(dk, dk_len, c, c_len, ss, &err);
	if (res == R_INVALID)
		return rc != VF_OK || fail(t->suite, t->id, "invalid input accepted");
	if (rc != VF_OK)
		return fail(t->suite, t->id, "decaps: %s", err.msg);
	/* The embedded ek is the one given. */
	if (ek && dk_len == VF_MLKEM768_DK_LEN &&
	    !same(t, "embedded ek", dk + 1152, ek, ek_len, VF_MLKEM768_EK_LEN))
		return false;
	return k ? same(t, "K", ss, k, k_len, sizeof(ss))
		 : fail(t->suite, t->id, "malformed vector: valid without K");
}

/* ---- ML-KEM-768: CCTV ------------------------------------------------------ */

/* "name = hex" lines (strcmp-ML-KEM-768.txt): the value of name. */
static uint8_t *kv_hex(const char *text, const char *name, size_t *len)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && strncmp(p + n, " = ", 3) == 0) {
			const char *v = p + n + 3;
			return unhex(v, strcspn(v, "\r\n"), len);
		}
	}
	return NULL;
}

static void cctv_strcmp(struct suite *s, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/cctv-mlkem/strcmp-ML-KEM-768.txt", dir);
	size_t len = 0, dk_len = 0, c_len = 0, k_len = 0;
	char *text = read_whole_file(path, &len);
	if (!text) {
		tally(s, fail(s->name, path, "cannot read"));
		return;
	}
	char *z = realloc(text, len + 1);
	if (z)
		z[len] = '\0';
	uint8_t *dk = z ? kv_hex(z, "dk", &dk_len) : NULL;
	uint8_t *c = z ? kv_hex(z, "c", &c_len) : NULL;
	uint8_t *k = z ? kv_hex(z, "K", &k_len) : NULL;
	uint8_t ss[VF_MLKEM768_SS_LEN];
	struct vf_error err = {0};
	bool ok;
	if (!dk || !c || !k)
		ok = fail(s->name, path, "malformed file");
	else if (vf_mlkem768_decaps(dk, dk_len, c, c_len, ss, &err) != VF_OK)
		ok = fail(s->name, path, "decaps: %s", err.msg);
	else
		ok = (k_len == sizeof(ss) && memcmp(ss, k, k_len) == 0) ||
		     fail(s->name, path, "K differs");
	tally(s, ok);
	free(dk);
	free(c);
	free(k);
	free(z ? z : text);
}

/* Every line of modulus-ML-KEM-768.txt.gz is an encapsulation key that
 * must fail the modulus check. */
static void cctv_modulus(struct suite *s, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/cctv-mlkem/modulus-ML-KEM-768.txt.gz", dir);
	gzFile f = gzopen(path, "rb");
	if (!f) {
		tally(s, fail(s->name, path, "cannot read"));
		return;
	}
	static char line[2 * VF_MLKEM768_EK_LEN + 16];
	uint8_t ct[VF_MLKEM768_CT_LEN], ss[VF_MLKEM768_SS_LEN];
	long lineno = 0;
	while (gzgets(f, line, sizeof(line))) {
		char id[32];
		snprintf(id, sizeof(id), "line %ld", ++lineno);
		size_t ek_len = 0;
		uint8_t *ek = unhex(line, strcspn(line, "\r\n"), &ek_len);
		struct vf_error err = {0};
		bool ok;
		if (!ek || ek_len != VF_MLKEM768_EK_LEN)
			ok = fail(s->name, id, "not a 1,184-byte key");
		else if (vf_mlkem768_check_ek(ek, ek_len, &err) != VF_E_KEY)
			ok = fail(s->name, id, "check_ek accepted a key over the modulus");
		else
			ok = vf_mlkem768_encaps(ek, ek_len, NULL, ct, ss, &err) == VF_E_KEY ||
			     fail(s->name, id, "encaps accepted a key over the modulus");
		tally(s, ok);
		free(ek);
	}
	gzclose(f);
}

/* ---- ML-KEM-768: our own checks ------------------------------------------ */

/* Compress_d and Decompress_d against their definitions with exact
 * rational rounding, for every input. */
static void check_compress(struct suite *s)
{
	const unsigned q = VF_MLKEM_Q;
	for (unsigned d = 1; d <= 11; d++) {
		bool ok = true;
		for (unsigned x = 0; x < q && ok; x++) {
			/* round(2^d x / q) = floor((2^(d+1) x + q) / 2q) */
			unsigned want = (((x << (d + 1)) + q) / (2 * q)) & ((1u << d) - 1);
			if (vf_mlkem_compress((uint16_t)x, d) != want) {
				char id[32];
				snprintf(id, sizeof(id), "d=%u", d);
				ok = fail(s->name, id, "Compress(%u) = %u, expected %u", x,
					  vf_mlkem_compress((uint16_t)x, d), want);
			}
		}
		for (unsigned y = 0; y < (1u << d) && ok; y++) {
			unsigned want = (2 * q * y + (1u << d)) >> (d + 1);
			if (vf_mlkem_decompress((uint16_t)y, d) != want) {
				char id[32];
				snprintf(id, sizeof(id), "d=%u", d);
				ok = fail(s->name, id, "Decompress(%u) = %u, expected %u", y,
					  vf_mlkem_decompress((uint16_t)y, d), want);
			}
		}
		tally(s, ok);
	}
}

/* SampleNTT starting from one 168-byte SHAKE128 block (never enough for
 * 256 coefficients) must recompute to the result of a long first squeeze. */
static void check_sample_ntt(struct suite *s)
{
	uint8_t rho[32];
	uint16_t a[VF_MLKEM_N], b[VF_MLKEM_N], c[VF_MLKEM_N];
	struct vf_error err = {0};
	for (int round = 0; round < 8; round++) {
		bool ok;
		vf_random(rho, sizeof(rho), NULL);
		if (vf_mlkem_sample_ntt(rho, (uint8_t)round, 1, 168, a, &err) != VF_OK ||
		    vf_mlkem_sample_ntt(rho, (uint8_t)round, 1, 3, b, &err) != VF_OK ||
		    vf_mlkem_sample_ntt(rho, (uint8_t)round, 1, 4096, c, &err) != VF_OK)
			ok = fail(s->name, "SampleNTT", "%s", err.msg);
		else
			ok = (memcmp(a, c, sizeof(a)) == 0 && memcmp(b, c, sizeof(b)) == 0) ||
			     fail(s->name, "SampleNTT", "recomputed output differs");
		for (int i = 0; ok && i < VF_MLKEM_N; i++)
			if (c[i] >= VF_MLKEM_Q)
				ok = fail(s->name, "SampleNTT", "coefficient %u not below q", c[i]);
		tally(s, ok);
	}
}

/* Random keys: encapsulation with a random m decapsulates to the same key;
 * an altered ciphertext gives J(z || c') = SHAKE256(z || c', 32), the
 * implicit-rejection key. */
static void check_round_trips(struct suite *s)
{
	struct keypair kp;
	uint8_t seed[VF_MLKEM768_SEED_LEN], ct[VF_MLKEM768_CT_LEN];
	uint8_t ss1[32], ss2[32], reject[32];
	for (int round = 0; round < 16; round++) {
		struct vf_error err = {0};
		bool ok = true;
		vf_random(seed, sizeof(seed), NULL);
		if (vf_mlkem768_keygen(seed, sizeof(seed), kp.ek, kp.dk, &err) != VF_OK ||
		    vf_mlkem768_encaps(kp.ek, sizeof(kp.ek), NULL, ct, ss1, &err) != VF_OK ||
		    vf_mlkem768_decaps(kp.dk, sizeof(kp.dk), ct, sizeof(ct), ss2, &err) != VF_OK)
			ok = fail(s->name, "round trip", "%s", err.msg);
		else if (memcmp(ss1, ss2, sizeof(ss1)) != 0)
			ok = fail(s->name, "round trip", "decapsulated key differs");
		/* Flip one bit, in a different place each round. */
		ct[(size_t)round * 67 % sizeof(ct)] ^= (uint8_t)(1u << (round % 8));
		struct vf_iov j[] = {{seed + 32, 32}, {ct, sizeof(ct)}};
		if (ok && (vf_mlkem768_decaps(kp.dk, sizeof(kp.dk), ct, sizeof(ct), ss2, &err) != VF_OK ||
			   vf_shake256(j, 2, reject, sizeof(reject), &err) != VF_OK))
			ok = fail(s->name, "rejection", "%s", err.msg);
		else if (ok && memcmp(ss2, reject, sizeof(reject)) != 0)
			ok = fail(s->name, "rejection", "altered ciphertext did not give J(z || c)");
		tally(s, ok);
	}
}

/* ---- X-Wing ------------------------------------------------------------------ */

/* A top-level JSON array of objects (the X-Wing and HPKE-PQ files). */
static struct jnode *load_array(struct suite *s, const char *dir, const char *file)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	size_t len = 0;
	char *text = read_whole_file(path, &len);
	struct jnode *doc = text ? json_parse(text, len, path) : NULL;
	free(text);
	if (!doc || doc->type != J_ARRAY) {
		tally(s, fail(s->name, file, "cannot read %s as a JSON array", path));
		json_free(doc);
		return NULL;
	}
	return doc;
}

static bool xwing_case(struct tcase *t)
{
	size_t seed_len, sk_len, eseed_len, pk_len, ct_len, ss_len;
	const uint8_t *seed = field(t, "seed", &seed_len, false);
	const uint8_t *sk = field(t, "sk", &sk_len, false);
	const uint8_t *eseed = field(t, "eseed", &eseed_len, false);
	const uint8_t *pk = field(t, "pk", &pk_len, false);
	const uint8_t *ct = field(t, "ct", &ct_len, false);
	const uint8_t *ss = field(t, "ss", &ss_len, false);
	if (!seed || !sk || !eseed || !pk || !ct || !ss)
		return false;
	if (eseed_len != VF_XWING_ESEED_LEN || ct_len != VF_XWING_CT_LEN)
		return fail(t->suite, t->id, "malformed vector: eseed or ct length");
	/* In this version of the draft the private key is the seed itself. */
	if (!same(t, "sk (the seed)", sk, seed, seed_len, sk_len))
		return false;
	struct vf_xwing_key *key = NULL;
	uint8_t got_ct[VF_XWING_CT_LEN], got_ss[VF_XWING_SS_LEN];
	struct vf_error err = {0};
	bool ok = true;
	if (vf_xwing_key_new(&key, seed, seed_len, &err) != VF_OK)
		ok = fail(t->suite, t->id, "key: %s", err.msg);
	ok = ok && same(t, "pk", vf_xwing_key_public(key), pk, pk_len, VF_XWING_PK_LEN);
	if (ok && vf_xwing_encaps(pk, eseed, got_ct, got_ss, &err) != VF_OK)
		ok = fail(t->suite, t->id, "encaps: %s", err.msg);
	ok = ok && same(t, "ct", got_ct, ct, ct_len, sizeof(got_ct)) &&
	     same(t, "encapsulated ss", got_ss, ss, ss_len, sizeof(got_ss));
	memset(got_ss, 0, sizeof(got_ss));
	if (ok && vf_xwing_decaps(key, ct, got_ss, &err) != VF_OK)
		ok = fail(t->suite, t->id, "decaps: %s", err.msg);
	ok = ok && same(t, "decapsulated ss", got_ss, ss, ss_len, sizeof(got_ss));
	vf_xwing_key_free(key);
	return ok;
}

static void xwing_vectors(struct suite *s, const char *dir)
{
	struct jnode *doc = load_array(s, dir, "xwing/xwing-draft-test-vectors.json");
	long n = 0;
	for (const struct jnode *v = doc ? doc->child : NULL; v; v = v->next) {
		struct tcase t = {.suite = s->name, .test = v};
		snprintf(t.id, sizeof(t.id), "vector %ld", ++n);
		tally(s, xwing_case(&t));
		tcase_free(&t);
	}
	json_free(doc);
}

/* A point of order 8 on Curve25519 (its u-coordinate), whose X25519 with
 * any scalar is all zero. */
static const uint8_t low_order_point[32] = {
	0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
	0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
	0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
};

static void xwing_checks(struct suite *s)
{
	uint8_t seed[VF_XWING_SEED_LEN], pk[VF_XWING_PK_LEN], ct[VF_XWING_CT_LEN];
	uint8_t ss1[VF_XWING_SS_LEN], ss2[VF_XWING_SS_LEN];
	struct vf_xwing_key *key = NULL;
	struct vf_error err = {0};
	vf_random(seed, sizeof(seed), NULL);
	bool ok = vf_xwing_key_new(&key, seed, sizeof(seed), &err) == VF_OK;
	tally(s, ok || fail(s->name, "key", "%s", err.msg));
	if (!ok)
		return;
	memcpy(pk, vf_xwing_key_public(key), sizeof(pk));
	/* Random encapsulation round trip. */
	ok = vf_xwing_encaps(pk, NULL, ct, ss1, &err) == VF_OK &&
	     vf_xwing_decaps(key, ct, ss2, &err) == VF_OK;
	tally(s, ok ? memcmp(ss1, ss2, sizeof(ss1)) == 0 ||
			      fail(s->name, "round trip", "shared secrets differ")
		    : fail(s->name, "round trip", "%s", err.msg));
	/* A low-order share in the ciphertext: the X25519 result is all zero. */
	memcpy(ct + VF_MLKEM768_CT_LEN, low_order_point, 32);
	enum vf_code rc = vf_xwing_decaps(key, ct, ss2, &err);
	tally(s, rc == VF_E_KEY ||
		     fail(s->name, "low-order share", "expected a key error, got %s",
			  vf_code_name(rc)));
	/* A low-order X25519 public key. */
	uint8_t bad[VF_XWING_PK_LEN];
	memcpy(bad, pk, sizeof(bad));
	memcpy(bad + VF_MLKEM768_EK_LEN, low_order_point, 32);
	rc = vf_xwing_encaps(bad, NULL, ct, ss1, &err);
	tally(s, rc == VF_E_KEY ||
		     fail(s->name, "low-order pk", "expected a key error, got %s",
			  vf_code_name(rc)));
	/* The ML-KEM half over the modulus: its first coefficient set to q. */
	memcpy(bad, pk, sizeof(bad));
	bad[0] = VF_MLKEM_Q & 0xff;
	bad[1] = (uint8_t)((bad[1] & 0xf0) | (VF_MLKEM_Q >> 8));
	rc = vf_xwing_encaps(bad, NULL, ct, ss1, &err);
	tally(s, (rc == VF_E_KEY && vf_xwing_check_pk(bad, sizeof(bad), &err) == VF_E_KEY) ||
		     fail(s->name, "modulus", "a key over the modulus was accepted"));
	rc = vf_xwing_check_pk(pk, sizeof(pk) - 1, &err);
	tally(s, rc == VF_E_KEY || fail(s->name, "length", "a short key was accepted"));
	struct vf_xwing_key *short_key = NULL;
	rc = vf_xwing_key_new(&short_key, seed, sizeof(seed) - 1, &err);
	tally(s, (rc == VF_E_KEY && !short_key) ||
		     fail(s->name, "seed length", "a short seed was accepted"));
	vf_xwing_key_free(short_key);
	vf_xwing_key_free(key);
}

/* ---- HPKE ------------------------------------------------------------------------ */

/* The hex member key of a JSON object (no tcase: encryptions and exports
 * are nested). */
static uint8_t *obj_hex(const struct jnode *obj, const char *key, size_t *len)
{
	const struct jnode *s = jget(obj, key, J_STRING);
	return s ? unhex(s->str, s->len, len) : NULL;
}

static bool hpke_ctx_is(struct tcase *t, const char *side, const struct vf_hpke_ctx *ctx,
			const uint8_t *key, const uint8_t *nonce, const uint8_t *exp,
			size_t exp_len)
{
	char what[64];
	snprintf(what, sizeof(what), "%s key", side);
	if (!same(t, what, ctx->key, key, sizeof(ctx->key), sizeof(ctx->key)))
		return false;
	snprintf(what, sizeof(what), "%s base_nonce", side);
	if (!same(t, what, ctx->base_nonce, nonce, sizeof(ctx->base_nonce),
		  sizeof(ctx->base_nonce)))
		return false;
	snprintf(what, sizeof(what), "%s exporter_secret", side);
	return same(t, what, ctx->exporter_secret, exp, exp_len, sizeof(ctx->exporter_secret));
}

/* Setup both ways: 1 case. */
static bool hpke_setup(struct tcase *t, struct vf_xwing_key **key, struct vf_hpke_ctx *sender,
		       struct vf_hpke_ctx *receiver)
{
	size_t info_len, ikme_len, skr_len, pkr_len, enc_len, ss_len, k_len, n_len, x_len;
	const uint8_t *info = field(t, "info", &info_len, false);
	const uint8_t *ikme = field(t, "ikmE", &ikme_len, false);
	const uint8_t *skr = field(t, "skRm", &skr_len, false);
	const uint8_t *pkr = field(t, "pkRm", &pkr_len, false);
	const uint8_t *enc = field(t, "enc", &enc_len, false);
	const uint8_t *ss = field(t, "shared_secret", &ss_len, false);
	const uint8_t *k = field(t, "key", &k_len, false);
	const uint8_t *n = field(t, "base_nonce", &n_len, false);
	const uint8_t *x = field(t, "exporter_secret", &x_len, false);
	if (!info || !ikme || !skr || !pkr || !enc || !ss || !k || !n || !x)
		return false;
	if (ikme_len != VF_XWING_ESEED_LEN || enc_len != VF_HPKE_ENC_LEN ||
	    k_len != VF_AEAD_KEY_LEN || n_len != VF_AEAD_NONCE_LEN)
		return fail(t->suite, t->id, "malformed vector: field lengths");
	uint8_t got_enc[VF_HPKE_ENC_LEN], got_ss[VF_XWING_SS_LEN];
	struct vf_error err = {0};
	if (vf_xwing_key_new(key, skr, skr_len, &err) != VF_OK)
		return fail(t->suite, t->id, "skRm: %s", err.msg);
	if (!same(t, "pkRm", vf_xwing_key_public(*key), pkr, pkr_len, VF_XWING_PK_LEN))
		return false;
	if (vf_xwing_decaps(*key, enc, got_ss, &err) != VF_OK)
		return fail(t->suite, t->id, "decaps: %s", err.msg);
	if (!same(t, "shared_secret", got_ss, ss, ss_len, sizeof(got_ss)))
		return false;
	if (vf_hpke_setup_sender(pkr, pkr_len, ikme, info, info_len, got_enc, sender, &err) !=
	    VF_OK)
		return fail(t->suite, t->id, "setup sender: %s", err.msg);
	if (!same(t, "enc", got_enc, enc, enc_len, sizeof(got_enc)) ||
	    !hpke_ctx_is(t, "sender", sender, k, n, x, x_len))
		return false;
	if (vf_hpke_setup_receiver(*key, enc, info, info_len, receiver, &err) != VF_OK)
		return fail(t->suite, t->id, "setup receiver: %s", err.msg);
	return hpke_ctx_is(t, "receiver", receiver, k, n, x, x_len);
}

/* One encryption, sealed by the sender and opened by the receiver in
 * sequence. */
static bool hpke_encryption(struct tcase *t, const struct jnode *e, struct vf_hpke_ctx *sender,
			    struct vf_hpke_ctx *receiver)
{
	size_t aad_len = 0, pt_len = 0, ct_len = 0, nonce_len = 0;
	uint8_t *aad = obj_hex(e, "aad", &aad_len), *pt = obj_hex(e, "pt", &pt_len);
	uint8_t *ct = obj_hex(e, "ct", &ct_len), *nonce = obj_hex(e, "nonce", &nonce_len);
	uint8_t *got = ct ? calloc(1, ct_len + 1) : NULL;
	struct vf_error err = {0};
	bool ok = aad && pt && ct && nonce && got && ct_len == pt_len + VF_AEAD_TAG_LEN;
	if (!ok)
		fail(t->suite, t->id, "malformed encryption");
	/* The nonce the context will use: base_nonce XOR seq. */
	uint8_t want_nonce[VF_AEAD_NONCE_LEN];
	memcpy(want_nonce, sender->base_nonce, sizeof(want_nonce));
	for (int i = 0; i < 8; i++)
		want_nonce[VF_AEAD_NONCE_LEN - 1 - i] ^= (uint8_t)(sender->seq >> (8 * i));
	ok = ok && same(t, "nonce", want_nonce, nonce, nonce_len, sizeof(want_nonce));
	if (ok && vf_hpke_ctx_seal(sender, aad, aad_len, pt, pt_len, got, &err) != VF_OK)
		ok = fail(t->suite, t->id, "seal: %s", err.msg);
	ok = ok && same(t, "ct", got, ct, ct_len, ct_len);
	if (ok && vf_hpke_ctx_open(receiver, aad, aad_len, ct, ct_len, got, &err) != VF_OK)
		ok = fail(t->suite, t->id, "open: %s", err.msg);
	ok = ok && same(t, "pt", got, pt, pt_len, pt_len);
	free(aad);
	free(pt);
	free(ct);
	free(nonce);
	free(got);
	return ok;
}

static bool hpke_export(struct tcase *t, const struct jnode *e, const struct vf_hpke_ctx *sender,
			const struct vf_hpke_ctx *receiver)
{
	size_t ctx_len = 0, want_len = 0;
	long l = 0;
	uint8_t *ctx = obj_hex(e, "exporter_context", &ctx_len);
	uint8_t *want = obj_hex(e, "exported_value", &want_len);
	uint8_t *got = want ? calloc(2, want_len + 1) : NULL;
	struct vf_error err = {0};
	bool ok = ctx && want && got && jget_uint(e, "L", 0xffff, &l) && (size_t)l == want_len;
	if (!ok)
		fail(t->suite, t->id, "malformed export");
	if (ok && (vf_hpke_export(sender, ctx, ctx_len, got, want_len, &err) != VF_OK ||
		   vf_hpke_export(receiver, ctx, ctx_len, got + want_len, want_len, &err) != VF_OK))
		ok = fail(t->suite, t->id, "export: %s", err.msg);
	ok = ok && same(t, "sender export", got, want, want_len, want_len) &&
	     same(t, "receiver export", got + want_len, want, want_len, want_len);
	free(ctx);
	free(want);
	free(got);
	return ok;
}

static bool is_age_suite(const struct jnode *v)
{
	long mode = -1, kem = -1, kdf = -1, aead = -1;
	return jget_uint(v, "mode", 255, &mode) && jget_uint(v, "kem_id", 0xffff, &kem) &&
	       jget_uint(v, "kdf_id", 0xffff, &kdf) && jget_uint(v, "aead_id", 0xffff, &aead) &&
	       mode == 0 && kem == VF_HPKE_KEM_XWING && kdf == VF_HPKE_KDF_HKDF_SHA256 &&
	       aead == VF_HPKE_AEAD_CHACHA20POLY1305;
}

/* Each entry for age's suite: the setup, then every encryption and every
 * export, each counted as a case. */
static void hpke_vectors(struct suite *s, const char *dir, const char *file)
{
	struct jnode *doc = load_array(s, dir, file);
	long index = 0, entries = 0;
	for (const struct jnode *v = doc ? doc->child : NULL; v; v = v->next) {
		index++;
		if (!is_age_suite(v))
			continue;
		entries++;
		struct tcase t = {.suite = s->name, .test = v};
		snprintf(t.id, sizeof(t.id), "entry %ld", index);
		struct vf_xwing_key *key = NULL;
		struct vf_hpke_ctx sender, receiver;
		bool ok = hpke_setup(&t, &key, &sender, &receiver);
		tally(s, ok);
		const struct jnode *encs = jget(v, "encryptions", J_ARRAY);
		const struct jnode *exps = jget(v, "exports", J_ARRAY);
		if (!encs || !exps)
			tally(s, fail(s->name, t.id, "no encryptions or exports"));
		for (const struct jnode *e = encs ? encs->child : NULL; ok && e; e = e->next)
			tally(s, hpke_encryption(&t, e, &sender, &receiver));
		for (const struct jnode *e = exps ? exps->child : NULL; ok && e; e = e->next)
			tally(s, hpke_export(&t, e, &sender, &receiver));
		vf_xwing_key_free(key);
		tcase_free(&t);
	}
	if (doc && entries == 0)
		tally(s, fail(s->name, file, "no entry for age's suite"));
	json_free(doc);
}

/* Single-shot seal and open as age uses them, with fresh randomness. */
static void hpke_checks(struct suite *s)
{
	static const char info[] = "age-encryption.org/mlkem768x25519";
	uint8_t seed[VF_XWING_SEED_LEN], enc[VF_HPKE_ENC_LEN];
	uint8_t pt[16] = "YELLOW SUBMARINE", ct[sizeof(pt) + VF_AEAD_TAG_LEN], got[sizeof(pt)];
	struct vf_xwing_key *key = NULL;
	struct vf_error err = {0};
	vf_random(seed, sizeof(seed), NULL);
	bool ok = vf_xwing_key_new(&key, seed, sizeof(seed), &err) == VF_OK &&
		  vf_hpke_seal(vf_xwing_key_public(key), VF_XWING_PK_LEN, (const uint8_t *)info,
			       strlen(info), NULL, 0, pt, sizeof(pt), enc, ct, &err) == VF_OK &&
		  vf_hpke_open(key, enc, (const uint8_t *)info, strlen(info), NULL, 0, ct,
			       sizeof(ct), got, &err) == VF_OK;
	tally(s, ok ? memcmp(got, pt, sizeof(pt)) == 0 ||
			      fail(s->name, "single shot", "opened plaintext differs")
		    : fail(s->name, "single shot", "%s", err.msg));
	if (!ok) {
		vf_xwing_key_free(key);
		return;
	}
	/* Another info, a changed enc or a changed ciphertext do not open. */
	enum vf_code rc = vf_hpke_open(key, enc, (const uint8_t *)info, strlen(info) - 1, NULL, 0,
				       ct, sizeof(ct), got, &err);
	tally(s, rc == VF_E_AUTH || fail(s->name, "info", "opened under another info"));
	ct[3] ^= 1;
	rc = vf_hpke_open(key, enc, (const uint8_t *)info, strlen(info), NULL, 0, ct, sizeof(ct),
			  got, &err);
	tally(s, rc == VF_E_AUTH || fail(s->name, "ct", "a changed ciphertext opened"));
	ct[3] ^= 1;
	enc[100] ^= 1;
	rc = vf_hpke_open(key, enc, (const uint8_t *)info, strlen(info), NULL, 0, ct, sizeof(ct),
			  got, &err);
	tally(s, rc == VF_E_AUTH || fail(s->name, "enc", "a changed enc opened"));
	vf_xwing_key_free(key);
}

/* ---- age: mlkem768x25519 ------------------------------------------------ */

static bool check(struct suite *s, const char *id, bool ok, const char *why)
{
	tally(s, ok || fail(s->name, id, "%s", why));
	return ok;
}

/* Seals "hello" to the recipients into out. */
static enum vf_code seal_to(struct vf_recipient **r, size_t n, struct vf_buf *out,
			    struct vf_error *err)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, (const uint8_t *)"hello", 5);
	vf_buf_init(out);
	return vf_encrypt(r, n, &src.base, &out->sink, err);
}

static enum vf_code open_with(struct vf_identity *id, const struct vf_buf *in,
			      struct vf_buf *out, struct vf_error *err)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, in->data, in->len);
	vf_buf_init(out);
	return vf_decrypt(&id, 1, &src.base, VF_ARMOR_NO, &out->sink, err);
}

/* A stanza fault: the code and a piece of the message. */
static void stanza_fault(struct suite *s, const char *id, const char *const *args, size_t nargs,
			 size_t body_len, const char *want)
{
	struct vf_stanza st;
	uint8_t body[64] = {0}, enc[VF_HYBRID_ENC_LEN];
	struct vf_error err = {0};
	if (vf_stanza_init(&st, VF_HYBRID_STANZA_TYPE, args, nargs, body, body_len, &err) != VF_OK) {
		tally(s, fail(s->name, id, "%s", err.msg));
		return;
	}
	enum vf_code rc = vf_hybrid_stanza_enc(&st, enc, &err);
	bool ok = rc == VF_E_HEADER && strstr(err.msg, want) && !strchr(err.msg, '\n');
	tally(s, ok || fail(s->name, id, "expected a header failure saying \"%s\", got %s: %s",
			    want, vf_code_name(rc), err.msg));
	vf_stanza_free(&st);
}

static void stanza_faults(struct suite *s)
{
	uint8_t enc[VF_HYBRID_ENC_LEN + 2] = {0};
	char b64[2 * VF_HYBRID_ENC_LEN];
	const char *arg[] = {b64, "x"};
	b64[vf_b64_encode(enc, VF_HYBRID_ENC_LEN, b64, false)] = '\0';
	stanza_fault(s, "no argument", arg, 0, 32, "0 arguments");
	stanza_fault(s, "two arguments", arg, 2, 32, "2 arguments");
	stanza_fault(s, "body of 31 bytes", arg, 1, 31, "not a wrapped 16-byte key");
	stanza_fault(s, "body of 33 bytes", arg, 1, 33, "not a wrapped 16-byte key");
	b64[vf_b64_encode(enc, VF_HYBRID_ENC_LEN - 1, b64, false)] = '\0';
	stanza_fault(s, "enc of 1119 bytes", arg, 1, 32, "of 1119 bytes");
	b64[vf_b64_encode(enc, VF_HYBRID_ENC_LEN + 1, b64, false)] = '\0';
	stanza_fault(s, "enc of 1121 bytes", arg, 1, 32, "of 1121 bytes");
	b64[vf_b64_encode(enc, VF_HYBRID_ENC_LEN, b64, false)] = '\0';
	b64[100] = '-';
	stanza_fault(s, "bad base64 character", arg, 1, 32, "not canonical");
	b64[100] = 'A';
	/* 1120 bytes end with two data bits beside four padding bits: a last
	 * character with padding bits set is not canonical. */
	b64[strlen(b64) - 1] = 'B';
	stanza_fault(s, "non-zero padding bits", arg, 1, 32, "not canonical");
	b64[vf_b64_encode(enc, VF_HYBRID_ENC_LEN, b64, true)] = '\0';
	stanza_fault(s, "padded base64", arg, 1, 32, "not canonical");
}

/* age1pq1... of pk with its first ML-KEM coefficient set to q. */
static void modulus_recipient(struct suite *s, const char *good)
{
	char hrp[16];
	uint8_t pk[VF_XWING_PK_LEN + 1];
	size_t n = 0;
	char bad[4096];
	if (!vf_bech32_decode(good, strlen(good), hrp, sizeof(hrp), pk, sizeof(pk), &n)) {
		tally(s, fail(s->name, "modulus recipient", "cannot decode our own recipient"));
		return;
	}
	pk[0] = VF_MLKEM_Q & 0xff;
	pk[1] = (uint8_t)((pk[1] & 0xf0) | (VF_MLKEM_Q >> 8));
	vf_bech32_encode(VF_HYBRID_RECIPIENT_HRP, pk, n, false, bad, sizeof(bad));
	struct vf_recipient *r = NULL;
	struct vf_error err = {0};
	enum vf_code rc = vf_recipient_parse(bad, &r, &err);
	check(s, "modulus recipient", rc == VF_E_KEY && strstr(err.msg, "modulus check"),
	      "a recipient whose ML-KEM key fails the modulus check was accepted");
	vf_recipient_free(r);
	/* And a corrupted checksum, an upper-case recipient. */
	snprintf(bad, sizeof(bad), "%s", good);
	bad[100] = bad[100] == 'q' ? 'p' : 'q';
	r = NULL;
	rc = vf_recipient_parse(bad, &r, &err);
	check(s, "bad checksum", rc == VF_E_KEY, "a recipient with a bad checksum was accepted");
	vf_recipient_free(r);
	for (size_t i = 0; bad[i]; i++)
		bad[i] = (char)(good[i] >= 'a' && good[i] <= 'z' ? good[i] - 32 : good[i]);
	r = NULL;
	rc = vf_recipient_parse(bad, &r, &err);
	check(s, "upper case", rc == VF_E_KEY, "an upper-case recipient was accepted");
	vf_recipient_free(r);
}

static void age_checks(struct suite *s)
{
	struct vf_identity *id1 = NULL, *id2 = NULL, *back = NULL, *classic = NULL;
	struct vf_recipient *r[3] = {NULL, NULL, NULL};
	char *secret = NULL, *rec1 = NULL, *rec2 = NULL, *crec = NULL;
	struct vf_error err = {0};
	struct vf_buf sealed, opened;
	vf_buf_init(&sealed);
	vf_buf_init(&opened);
	if (!check(s, "generate",
		   vf_hybrid_identity_generate(&id1, &err) == VF_OK &&
			   vf_hybrid_identity_generate(&id2, &err) == VF_OK &&
			   vf_x25519_identity_generate(&classic, &err) == VF_OK &&
			   vf_hybrid_identity_encode(id1, &secret, &err) == VF_OK &&
			   vf_identity_recipient(id1, &rec1, &err) == VF_OK &&
			   vf_identity_recipient(id2, &rec2, &err) == VF_OK &&
			   vf_identity_recipient(classic, &crec, &err) == VF_OK,
		   err.msg))
		goto out;
	check(s, "identity string",
	      strlen(secret) == 77 && !strncmp(secret, "AGE-SECRET-KEY-PQ-1", 19),
	      "the identity is not AGE-SECRET-KEY-PQ-1... of 77 characters");
	check(s, "recipient string", strlen(rec1) == 1959 && !strncmp(rec1, "age1pq1", 7),
	      "the recipient is not age1pq1... of 1,959 characters");
	char *again = NULL;
	bool ok = vf_hybrid_identity_parse(secret, strlen(secret), &back, &err) == VF_OK &&
		  vf_identity_recipient(back, &again, &err) == VF_OK && !strcmp(again, rec1);
	check(s, "identity round trip", ok, "a parsed identity has another recipient");
	free(again);
	ok = vf_recipient_parse(rec1, &r[0], &err) == VF_OK &&
	     vf_recipient_parse(rec2, &r[1], &err) == VF_OK &&
	     vf_recipient_parse(crec, &r[2], &err) == VF_OK;
	if (!check(s, "recipient parse", ok, err.msg))
		goto out;
	/* Two hybrid recipients: either identity opens the file. */
	ok = seal_to(r, 2, &sealed, &err) == VF_OK;
	check(s, "seal to two", ok, err.msg);
	ok = ok && open_with(id2, &sealed, &opened, &err) == VF_OK && opened.len == 5 &&
	     !memcmp(opened.data, "hello", 5);
	check(s, "open with the second", ok, "the second identity did not open it");
	vf_buf_free(&opened);
	ok = open_with(back, &sealed, &opened, &err) == VF_OK && opened.len == 5;
	check(s, "open with the first (parsed back)", ok, "the first identity did not open it");
	vf_buf_free(&opened);
	enum vf_code rc = open_with(classic, &sealed, &opened, &err);
	check(s, "classic identity", rc == VF_E_NO_MATCH, "an X25519 identity matched");
	vf_buf_free(&opened);
	vf_buf_free(&sealed);
	/* The mixing rule. */
	rc = seal_to(r + 1, 2, &sealed, &err);
	check(s, "mixed", rc == VF_E_ARG && strstr(err.msg, "can't mix post-quantum and classic") &&
			  strstr(err.msg, crec) && !strstr(err.msg, "age1pq1") &&
			  !strchr(err.msg, '\n'),
	      "sealing to hybrid and X25519 recipients together was not refused in one line "
	      "naming the classic one");
	vf_buf_free(&sealed);
	check(s, "classic only", seal_to(r + 2, 1, &sealed, &err) == VF_OK, err.msg);
	vf_buf_free(&sealed);
	/* Identity files: the hybrid key among others, comments allowed. */
	char text[512];
	snprintf(text, sizeof(text), "# created: now\n# public key: age1pq1...\n%s\n", secret);
	struct vf_identities ids = {0};
	rc = vf_identities_parse(text, strlen(text), "keys.txt", &ids, &err);
	check(s, "identity file", rc == VF_OK && ids.n == 1 && vf_is_hybrid_identity(ids.items[0]),
	      "an identity file with a hybrid key was not read");
	vf_identities_free(&ids);
	text[strlen(text) - 3] ^= 1; /* the checksum breaks */
	rc = vf_identities_parse(text, strlen(text), "keys.txt", &ids, &err);
	check(s, "bad identity", rc == VF_E_KEY && strstr(err.msg, "keys.txt:3:"),
	      "a bad hybrid identity was not refused with its line");
	vf_identities_free(&ids);
	modulus_recipient(s, rec1);
	stanza_faults(s);
out:
	for (int i = 0; i < 3; i++)
		vf_recipient_free(r[i]);
	vf_identity_free(id1);
	vf_identity_free(id2);
	vf_identity_free(back);
	vf_identity_free(classic);
	vf_secure_free(secret);
	free(rec1);
	free(rec2);
	free(crec);
}

/* ---- Expanded keys and the recipient cache ---------------------------------- */

/* Encapsulation to a key expanded once (vf_mlkem768_ek_new) gives the same
 * bytes as the one-shot call for the same m, again and again, and
 * decapsulation through the key's own expansion the same secret. */
static void expanded_keys(struct suite *s)
{
	for (int round = 0; round < 20; round++) {
		uint8_t seed[VF_MLKEM768_SEED_LEN], m[VF_MLKEM768_M_LEN], ek[VF_MLKEM768_EK_LEN];
		uint8_t dk[VF_MLKEM768_DK_LEN], ct1[VF_MLKEM768_CT_LEN], ct2[VF_MLKEM768_CT_LEN];
		uint8_t ss1[32], ss2[32], ss3[32];
		struct vf_mlkem768_ek *x = NULL;
		struct vf_error err = {0};
		char id[32];
		snprintf(id, sizeof(id), "expanded %d", round);
		bool ok = vf_random(seed, sizeof(seed), &err) == VF_OK &&
			  vf_random(m, sizeof(m), &err) == VF_OK &&
			  vf_mlkem768_keygen(seed, sizeof(seed), ek, dk, &err) == VF_OK &&
			  vf_mlkem768_ek_new(&x, ek, sizeof(ek), &err) == VF_OK;
		for (int use = 0; ok && use < 3; use++)
			ok = vf_mlkem768_encaps(ek, sizeof(ek), m, ct1, ss1, &err) == VF_OK &&
			     vf_mlkem768_encaps_ek(x, m, ct2, ss2, &err) == VF_OK &&
			     !memcmp(ct1, ct2, sizeof(ct1)) && !memcmp(ss1, ss2, sizeof(ss1)) &&
			     vf_mlkem768_decaps_ek(dk, sizeof(dk), x, ct2, sizeof(ct2), ss3,
						   &err) == VF_OK &&
			     !memcmp(ss1, ss3, sizeof(ss1));
		check(s, id, ok, "the expanded key does not give the one-shot results");
		vf_mlkem768_ek_free(x);
	}
	uint8_t bad[VF_MLKEM768_EK_LEN] = {0};
	bad[0] = VF_MLKEM_Q & 0xff;
	bad[1] = VF_MLKEM_Q >> 8;
	struct vf_mlkem768_ek *x = NULL;
	struct vf_error err = {0};
	enum vf_code rc = vf_mlkem768_ek_new(&x, bad, sizeof(bad), &err);
	check(s, "expanded modulus", rc == VF_E_KEY && !x && strstr(err.msg, "modulus"),
	      "a key failing the modulus check was expanded");
	rc = vf_mlkem768_ek_new(&x, bad, sizeof(bad) - 1, &err);
	check(s, "expanded length", rc == VF_E_KEY && !x, "a key of 1,183 bytes was expanded");
}

static char *new_hybrid(struct vf_identity **id, struct vf_error *err)
{
	char *rec = NULL;
	if (vf_hybrid_identity_generate(id, err) != VF_OK ||
	    vf_identity_recipient(*id, &rec, err) != VF_OK)
		return NULL;
	return rec;
}

/* Same string, same recipient; least recently used out first, never one in
 * use; a private copy when every entry is held; parse errors as they are. */
static void cache_rules(struct suite *s, char *const rec[3])
{
	struct vf_recipient_cache *c = vf_recipient_cache_new(2);
	struct vf_recipient *a = NULL, *a2 = NULL, *b = NULL, *cc = NULL, *again = NULL;
	struct vf_error err = {0};
	bool ok = c && vf_recipient_cache_get(c, rec[0], &a, &err) == VF_OK &&
		  vf_recipient_cache_get(c, rec[0], &a2, &err) == VF_OK && a == a2 &&
		  !strcmp(a->name, rec[0]);
	check(s, "cache hit", ok, "the same string did not give the cached recipient");
	ok = ok && vf_recipient_cache_get(c, rec[1], &b, &err) == VF_OK && b != a &&
	     vf_recipient_cache_get(c, rec[2], &cc, &err) == VF_OK && cc != a && cc != b;
	check(s, "cache full, all held", ok && !strcmp(cc->name, rec[2]),
	      "a third recipient with two entries held did not get its own copy");
	vf_recipient_cache_release(c, cc); /* the private copy: freed (ASan sees a leak otherwise) */
	vf_recipient_cache_release(c, a2);
	vf_recipient_cache_release(c, a); /* a is free now, and older than b */
	ok = ok && vf_recipient_cache_get(c, rec[2], &cc, &err) == VF_OK &&
	     vf_recipient_cache_get(c, rec[1], &again, &err) == VF_OK && again == b;
	check(s, "cache eviction", ok, "the held entry was evicted instead of the unused one");
	vf_recipient_cache_release(c, again);
	vf_recipient_cache_release(c, b);
	vf_recipient_cache_release(c, cc);
	if (c) {
		struct vf_recipient *r = NULL;
		enum vf_code rc = vf_recipient_cache_get(c, "age1pq1notakey", &r, &err);
		check(s, "cache parse error", rc == VF_E_KEY && !r,
		      "a malformed recipient was not refused through the cache");
	}
	vf_recipient_cache_free(c);
}

struct sealer {
	struct vf_recipient_cache *cache;
	char *const *rec;
	struct vf_identity *const *ids;
	int failures;
};

/* Seals to two of the three recipients in turn through a one-entry cache
 * (evictions and private copies all the time, every hybrid key expanded on
 * some thread's first wrap), and opens each file with one identity. */
static void *sealer_run(void *arg)
{
	struct sealer *t = arg;
	for (int i = 0; i < 30; i++) {
		struct vf_recipient *r[2] = {NULL, NULL};
		struct vf_buf sealed, opened;
		struct vf_error err = {0};
		vf_buf_init(&sealed);
		vf_buf_init(&opened);
		int first = i % 3, second = (i + 1) % 3;
		bool ok = vf_recipient_cache_get(t->cache, t->rec[first], &r[0], &err) == VF_OK &&
			  vf_recipient_cache_get(t->cache, t->rec[second], &r[1], &err) == VF_OK &&
			  seal_to(r, 2, &sealed, &err) == VF_OK &&
			  open_with(t->ids[second], &sealed, &opened, &err) == VF_OK &&
			  opened.len == 5 && !memcmp(opened.data, "hello", 5);
		if (!ok)
			t->failures++;
		vf_recipient_cache_release(t->cache, r[0]);
		vf_recipient_cache_release(t->cache, r[1]);
		vf_buf_free(&sealed);
		vf_buf_free(&opened);
	}
	return NULL;
}

static void cache_threads(struct suite *s, char *const rec[3], struct vf_identity *const ids[3])
{
	struct vf_recipient_cache *c = vf_recipient_cache_new(1);
	struct sealer t[4];
	pthread_t th[4];
	int started = 0, failures = 0;
	for (int i = 0; c && i < 4; i++) {
		t[i] = (struct sealer){c, rec, ids, 0};
		if (pthread_create(&th[i], NULL, sealer_run, &t[i]) == 0)
			started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		failures += t[i].failures;
	}
	check(s, "cache threads", c && started == 4 && !failures,
	      "sealing through a shared cache on four threads failed");
	vf_recipient_cache_free(c);
}

static void cache_checks(struct suite *s)
{
	struct vf_identity *ids[3] = {NULL, NULL, NULL};
	char *rec[3] = {NULL, NULL, NULL};
	struct vf_error err = {0};
	bool ok = true;
	for (int i = 0; i < 3 && ok; i++)
		ok = (rec[i] = new_hybrid(&ids[i], &err)) != NULL;
	if (check(s, "cache keys", ok, err.msg)) {
		cache_rules(s, rec);
		cache_threads(s, rec, ids);
	}
	for (int i = 0; i < 3; i++) {
		vf_identity_free(ids[i]);
		free(rec[i]);
	}
}

/* ---- Driver ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	const char *wycheproof = argc > 1 ? argv[1] : "../shared/testdata/wycheproof";
	const char *pq = argc > 2 ? argv[2] : "../shared/testdata/pq";
	if (vf_init() != 0)
		return 1;

	struct suite keygen = {"mlkem wycheproof keygen_seed", 0, 0};
	run_json(&keygen, wycheproof, "mlkem_768_keygen_seed_test.json", keygen_case);
	report(&keygen);
	struct suite decaps = {"mlkem wycheproof test", 0, 0};
	run_json(&decaps, wycheproof, "mlkem_768_test.json", decaps_case);
	report(&decaps);
	struct suite encaps = {"mlkem wycheproof encaps", 0, 0};
	run_json(&encaps, wycheproof, "mlkem_768_encaps_test.json", encaps_case);
	report(&encaps);
	struct suite expanded = {"mlkem wycheproof semi_expanded_decaps", 0, 0};
	run_json(&expanded, wycheproof, "mlkem_768_semi_expanded_decaps_test.json",
		 expanded_decaps_case);
	report(&expanded);
	struct suite strcmp_suite = {"mlkem cctv strcmp", 0, 0};
	cctv_strcmp(&strcmp_suite, pq);
	report(&strcmp_suite);
	struct suite modulus = {"mlkem cctv modulus", 0, 0};
	cctv_modulus(&modulus, pq);
	report(&modulus);
	struct suite own = {"mlkem own checks", 0, 0};
	check_compress(&own);
	check_sample_ntt(&own);
	check_round_trips(&own);
	report(&own);

	struct suite xwing = {"xwing draft vectors", 0, 0};
	xwing_vectors(&xwing, pq);
	report(&xwing);
	struct suite xwing_own = {"xwing own checks", 0, 0};
	xwing_checks(&xwing_own);
	report(&xwing_own);
	struct suite hpke_hpkewg = {"hpke hpkewg-test-vectors.json age suite", 0, 0};
	hpke_vectors(&hpke_hpkewg, pq, "hpke-pq/hpkewg-test-vectors.json");
	report(&hpke_hpkewg);
	struct suite hpke_filippo = {"hpke filippo-hpke-pq.json age suite", 0, 0};
	hpke_vectors(&hpke_filippo, pq, "hpke-pq/filippo-hpke-pq.json");
	report(&hpke_filippo);
	struct suite hpke_own = {"hpke own checks", 0, 0};
	hpke_checks(&hpke_own);
	report(&hpke_own);

	struct suite age = {"age mlkem768x25519 own checks", 0, 0};
	age_checks(&age);
	report(&age);
	struct suite cache = {"expanded keys and the recipient cache", 0, 0};
	expanded_keys(&cache);
	cache_checks(&cache);
	report(&cache);

	printf("pq: %ld passed, %ld failed\n", total_passed, total_failed);
	return total_failed ? 1 : 0;
}
