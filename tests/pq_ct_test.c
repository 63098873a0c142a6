/* Constant-time check of the post-quantum secret paths, as ctgrind does:
 * run under valgrind's memcheck (ctest pq-ct), the secrets are marked
 * undefined (VALGRIND_MAKE_MEM_UNDEFINED), so that any branch or memory
 * index that depends on them is reported as "Conditional jump or move
 * depends on uninitialised value(s)" or "Use of uninitialised value".
 * The program counts memcheck's errors itself (VALGRIND_COUNT_ERRORS),
 * phase by phase:
 *
 *  0. a canary: one deliberate branch on a secret byte must be reported,
 *     or the harness proves nothing (not under valgrind, say);
 *  1. ML-KEM-768 keygen from an undefined seed d || z;
 *  2. ML-KEM-768 encapsulation with an undefined message m;
 *  3. ML-KEM-768 decapsulation with the secret parts of dk (dk_pke and z)
 *     and the ciphertext undefined, for a matching ciphertext and for
 *     altered ones (the implicit-rejection path);
 *  4. X-Wing: key expansion from an undefined seed and decapsulation with
 *     the expanded key still undefined.
 *
 * Every phase but the canary must add no error. Each output is marked
 * defined before the test looks at it: what a function returns is public
 * by design (a shared key the caller uses, a success code).
 *
 * Values public by design although computed from secrets (rho and ek,
 * which the public key carries) are declared public inside mlkem.c and
 * xwing.c, which this test builds with VF_CT_TESTING (mlkem_internal.h).
 *
 * OpenSSL runs on the secrets as they are: SHA-3 and SHAKE (Keccak has
 * no data-dependent branch) and X25519 (key import, public key, the
 * ladder) report nothing. The one branch it takes on a secret-derived
 * value is X25519's all-zero result check, which age requires and which
 * tests/pq_ct.supp allows, with our own check of the same bit in
 * derive_shared. HPKE's AEAD is not run here: whether a tag verifies is
 * public by design, and OpenSSL branches on it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <valgrind/memcheck.h>

#include "base/crypto.h"
#include "base/secmem.h"
#include "age/mlkem.h"
#include "age/xwing.h"

static unsigned long errors_now(void)
{
	return (unsigned long)VALGRIND_COUNT_ERRORS;
}

static void secret(const void *p, size_t len)
{
	VALGRIND_MAKE_MEM_UNDEFINED(p, len);
}

static void public(const void *p, size_t len)
{
	VALGRIND_MAKE_MEM_DEFINED(p, len);
}

static int failures;

static void phase(const char *name, unsigned long before, bool want_errors)
{
	unsigned long n = errors_now() - before;
	bool ok = want_errors ? n > 0 : n == 0;
	printf("pq-ct: %-52s %lu error(s)%s\n", name, n, ok ? "" : "  <-- FAIL");
	if (!ok)
		failures++;
}

/* A volatile sink, so the canary's branch is not optimised away. */
static volatile int sink;

int main(void)
{
	if (vf_init() != 0)
		return 1;
	if (!RUNNING_ON_VALGRIND) {
		printf("pq-ct: not running under valgrind (run it through ctest pq-ct)\n");
		return 1;
	}
	uint8_t seed[VF_MLKEM768_SEED_LEN], m[VF_MLKEM768_M_LEN];
	uint8_t ek[VF_MLKEM768_EK_LEN], ct[VF_MLKEM768_CT_LEN], ss[32], ss2[32];
	uint8_t *dk = vf_secure_alloc(VF_MLKEM768_DK_LEN);
	struct vf_error err = {0};
	if (!dk)
		return 1;

	unsigned long before = errors_now();
	uint8_t canary = 0x5a;
	secret(&canary, 1);
	if (canary & 1) /* the deliberate leak */
		sink = 1;
	phase("0 canary (one branch on a secret: must be reported)", before, true);

	vf_random(seed, sizeof(seed), NULL);
	before = errors_now();
	secret(seed, sizeof(seed));
	enum vf_code rc = vf_mlkem768_keygen(seed, sizeof(seed), ek, dk, &err);
	public(&rc, sizeof(rc));
	public(ek, sizeof(ek));
	phase("1 ML-KEM-768 keygen, seed secret", before, false);
	if (rc != VF_OK)
		return printf("pq-ct: keygen: %s\n", err.msg), 1;
	public(dk, VF_MLKEM768_DK_LEN);

	vf_random(m, sizeof(m), NULL);
	before = errors_now();
	secret(m, sizeof(m));
	rc = vf_mlkem768_encaps(ek, sizeof(ek), m, ct, ss, &err);
	public(&rc, sizeof(rc));
	public(ct, sizeof(ct));
	public(ss, sizeof(ss));
	phase("2 ML-KEM-768 encaps, m secret", before, false);
	if (rc != VF_OK)
		return printf("pq-ct: encaps: %s\n", err.msg), 1;

	for (int round = 0; round < 3; round++) {
		if (round > 0) /* altered: the implicit-rejection path */
			ct[round * 500] ^= 0x10;
		before = errors_now();
		secret(dk, 1152);		      /* dk_pke */
		secret(dk + VF_MLKEM768_DK_LEN - 32, 32); /* z */
		secret(ct, sizeof(ct));
		rc = vf_mlkem768_decaps(dk, VF_MLKEM768_DK_LEN, ct, sizeof(ct), ss2, &err);
		public(&rc, sizeof(rc));
		public(ss2, sizeof(ss2));
		public(dk, VF_MLKEM768_DK_LEN);
		public(ct, sizeof(ct));
		phase(round ? "3 ML-KEM-768 decaps (rejected), dk and ct secret"
			    : "3 ML-KEM-768 decaps (matching), dk and ct secret",
		      before, false);
		if (rc != VF_OK)
			return printf("pq-ct: decaps: %s\n", err.msg), 1;
		if ((memcmp(ss, ss2, sizeof(ss)) == 0) != (round == 0)) {
			printf("pq-ct: decapsulation gave the wrong key\n");
			failures++;
		}
	}

	uint8_t xseed[VF_XWING_SEED_LEN], xct[VF_XWING_CT_LEN], xss[32], xss2[32];
	struct vf_xwing_key *key = NULL;
	vf_random(xseed, sizeof(xseed), NULL);
	before = errors_now();
	secret(xseed, sizeof(xseed));
	rc = vf_xwing_key_new(&key, xseed, sizeof(xseed), &err);
	public(&rc, sizeof(rc));
	public(&key, sizeof(key));
	phase("4 X-Wing key from a secret seed", before, false);
	if (rc != VF_OK)
		return printf("pq-ct: X-Wing key: %s\n", err.msg), 1;
	public(vf_xwing_key_public(key), VF_XWING_PK_LEN);
	rc = vf_xwing_encaps(vf_xwing_key_public(key), NULL, xct, xss, &err);
	if (rc != VF_OK)
		return printf("pq-ct: X-Wing encaps: %s\n", err.msg), 1;
	before = errors_now();
	secret(xct, sizeof(xct));
	rc = vf_xwing_decaps(key, xct, xss2, &err);
	public(&rc, sizeof(rc));
	public(xss2, sizeof(xss2));
	phase("4 X-Wing decaps, key (as expanded) and ct secret", before, false);
	if (rc != VF_OK || memcmp(xss, xss2, sizeof(xss)) != 0) {
		printf("pq-ct: X-Wing decaps failed or differs\n");
		failures++;
	}
	vf_xwing_key_free(key);
	vf_secure_free(dk);
	printf("pq-ct: %s\n", failures ? "FAILED" : "no secret-dependent branch or index");
	return failures ? 1 : 0;
}
