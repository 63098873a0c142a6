/* The post-quantum primitives' speed against the classic X25519 path, in
 * the same run (issue 14): operations per second for ML-KEM-768 keygen,
 * encapsulation and decapsulation, X-Wing key expansion, encapsulation
 * and decapsulation, HPKE single-shot seal and open of a 16-byte file key
 * (what one mlkem768x25519 stanza costs), and X25519 key generation,
 * ephemeral exchange and exchange with an imported key (what one X25519
 * stanza costs, less its HKDF and AEAD).
 *
 *   cmake --build build --target bench-pq      # about 1 s per line
 *   build/bench/pq_bench 0.2                   # seconds per line
 *
 * Single-threaded; the numbers move with the load of the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"
#include "base/secmem.h"
#include "age/hpke.h"
#include "age/mlkem.h"
#include "age/xwing.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct state {
	uint8_t seed[64], ek[VF_MLKEM768_EK_LEN], dk[VF_MLKEM768_DK_LEN];
	uint8_t ct[VF_MLKEM768_CT_LEN], ss[32];
	struct vf_xwing_key *xkey;
	uint8_t xct[VF_XWING_CT_LEN];
	uint8_t enc[VF_HPKE_ENC_LEN], sealed[32], opened[16];
	uint8_t x_secret[32], x_pub[32], x_share[32];
	struct vf_x25519_key *x25519;
};

typedef enum vf_code (*op_fn)(struct state *s);

static enum vf_code mlkem_keygen(struct state *s)
{
	return vf_mlkem768_keygen(s->seed, sizeof(s->seed), s->ek, s->dk, NULL);
}

static enum vf_code mlkem_encaps(struct state *s)
{
	return vf_mlkem768_encaps(s->ek, sizeof(s->ek), NULL, s->ct, s->ss, NULL);
}

static enum vf_code mlkem_decaps(struct state *s)
{
	return vf_mlkem768_decaps(s->dk, sizeof(s->dk), s->ct, sizeof(s->ct), s->ss, NULL);
}

static enum vf_code xwing_keygen(struct state *s)
{
	struct vf_xwing_key *k = NULL;
	enum vf_code rc = vf_xwing_key_new(&k, s->seed, VF_XWING_SEED_LEN, NULL);
	vf_xwing_key_free(k);
	return rc;
}

static enum vf_code xwing_encaps(struct state *s)
{
	return vf_xwing_encaps(vf_xwing_key_public(s->xkey), NULL, s->xct, s->ss, NULL);
}

static enum vf_code xwing_decaps(struct state *s)
{
	return vf_xwing_decaps(s->xkey, s->xct, s->ss, NULL);
}

static const char info[] = "age-encryption.org/mlkem768x25519";

static enum vf_code hpke_seal(struct state *s)
{
	static const uint8_t file_key[16] = "YELLOW SUBMARINE";
	return vf_hpke_seal(vf_xwing_key_public(s->xkey), VF_XWING_PK_LEN, (const uint8_t *)info,
			    strlen(info), NULL, 0, file_key, sizeof(file_key), s->enc, s->sealed,
			    NULL);
}

static enum vf_code hpke_open(struct state *s)
{
	return vf_hpke_open(s->xkey, s->enc, (const uint8_t *)info, strlen(info), NULL, 0,
			    s->sealed, sizeof(s->sealed), s->opened, NULL);
}

static enum vf_code x25519_keygen(struct state *s)
{
	enum vf_code rc = vf_random(s->x_secret, sizeof(s->x_secret), NULL);
	return rc == VF_OK ? vf_x25519_public(s->x_secret, s->x_pub, NULL) : rc;
}

static enum vf_code x25519_ephemeral(struct state *s)
{
	return vf_x25519_ephemeral(s->x_pub, s->x_share, s->ss, NULL);
}

static enum vf_code x25519_dh(struct state *s)
{
	return vf_x25519_key_dh(s->x25519, s->x_share, s->ss, NULL);
}

static int run(const char *name, op_fn fn, struct state *s, double seconds)
{
	long n = 0;
	double start = now(), elapsed;
	do {
		for (int i = 0; i < 16; i++, n++)
			if (fn(s) != VF_OK) {
				fprintf(stderr, "pq_bench: %s failed\n", name);
				return 1;
			}
		elapsed = now() - start;
	} while (elapsed < seconds);
	printf("%-44s %9.0f/s  %7.1f us\n", name, (double)n / elapsed, elapsed / (double)n * 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	if (vf_init() != 0 || seconds <= 0)
		return 1;
	struct state *s = vf_secure_alloc(sizeof(*s));
	if (!s)
		return 1;
	memset(s, 0, sizeof(*s));
	vf_random(s->seed, sizeof(s->seed), NULL);
	if (mlkem_keygen(s) != VF_OK || mlkem_encaps(s) != VF_OK ||
	    vf_xwing_key_new(&s->xkey, s->seed, VF_XWING_SEED_LEN, NULL) != VF_OK ||
	    xwing_encaps(s) != VF_OK || hpke_seal(s) != VF_OK || x25519_keygen(s) != VF_OK ||
	    x25519_ephemeral(s) != VF_OK ||
	    vf_x25519_key_new(&s->x25519, s->x_secret, NULL) != VF_OK) {
		fprintf(stderr, "pq_bench: set-up failed\n");
		return 1;
	}
	int rc = run("ML-KEM-768 keygen (from a seed)", mlkem_keygen, s, seconds) ||
		 run("ML-KEM-768 encaps", mlkem_encaps, s, seconds) ||
		 run("ML-KEM-768 decaps", mlkem_decaps, s, seconds) ||
		 run("X-Wing key from its seed (identity load)", xwing_keygen, s, seconds) ||
		 run("X-Wing encaps", xwing_encaps, s, seconds) ||
		 run("X-Wing decaps", xwing_decaps, s, seconds) ||
		 run("HPKE seal of a file key (one PQ stanza)", hpke_seal, s, seconds) ||
		 run("HPKE open of a file key", hpke_open, s, seconds) ||
		 run("X25519 keygen (classic)", x25519_keygen, s, seconds) ||
		 run("X25519 ephemeral exchange (classic wrap)", x25519_ephemeral, s, seconds) ||
		 run("X25519 exchange, imported key (classic unwrap)", x25519_dh, s, seconds);
	vf_x25519_key_free(s->x25519);
	vf_xwing_key_free(s->xkey);
	vf_secure_free(s);
	return rc;
}
