/* ML-KEM-768 (FIPS 203). Algorithm numbers below are the standard's.
 *
 * Arithmetic: coefficients are kept canonical, in [0, q), as uint16_t,
 * between steps (the NTTs reduce lazily inside, see there). Products are
 * reduced with Barrett's method (a multiplication by floor(2^32 / q) and
 * a shift) or, by the NTT's fixed twiddles, Shoup's, then one conditional
 * subtraction done with a mask, so no reduction branches on its input.
 * The implicit-rejection compare is CRYPTO_memcmp turned into a mask,
 * and the key is chosen with it. Compress_d divides by q
 * through a multiplication and a shift too (the compiler would do the
 * same for a constant divisor, but this way nothing depends on it).
 *
 * Hashes: H = SHA3-256, G = SHA3-512, J = SHAKE256 to 32 bytes,
 * PRF = SHAKE256 to 128 bytes, XOF = SHAKE128, all through OpenSSL
 * (base/crypto.h). SampleNTT needs an unknown amount of SHAKE128 output
 * (on average 472 bytes); OpenSSL 3.0 cannot squeeze a finished XOF
 * again, so it takes 504 bytes (three SHAKE128 blocks), which is enough
 * about 99% of the time, and otherwise recomputes the stream with twice
 * the length: the matrix is public, so the extra time tells nothing. */
#include "age/mlkem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/crypto.h"
#include "base/secmem.h"
#include "age/mlkem_internal.h"

#define N VF_MLKEM_N
#define Q VF_MLKEM_Q
#define K 3		 /* module rank of ML-KEM-768 */
#define DU 10		 /* bits per coefficient of u in the ciphertext */
#define DV 4		 /* bits per coefficient of v */
#define POLY_BYTES 384	 /* ByteEncode12 of one polynomial */
#define PKE_DK_LEN (K * POLY_BYTES)
#define C1_POLY_BYTES (N * DU / 8)
#define C1_LEN (K * C1_POLY_BYTES)
#define CBD_BYTES 128	 /* PRF output for eta = 2: 64 * eta */
#define SAMPLE_FIRST_LEN 504 /* three SHAKE128 blocks */
#define SAMPLE_MAX_LEN (1u << 20)
#define INV_128 3303	 /* 128^-1 mod q, the scale of the inverse NTT */

/* The offsets of FIPS 203's decapsulation key dk_pke || ek || H(ek) || z. */
#define DK_EK_OFF PKE_DK_LEN
#define DK_H_OFF (DK_EK_OFF + VF_MLKEM768_EK_LEN)
#define DK_Z_OFF (DK_H_OFF + 32)

_Static_assert(VF_MLKEM768_EK_LEN == K * POLY_BYTES + 32, "ek layout");
_Static_assert(VF_MLKEM768_DK_LEN == DK_Z_OFF + 32, "dk layout");
_Static_assert(VF_MLKEM768_CT_LEN == C1_LEN + N * DV / 8, "ciphertext layout");

typedef struct {
	uint16_t c[N];
} poly;

/* ---- Arithmetic modulo q ------------------------------------------------- */

/* x mod q for x < 2q: subtract q, and add it back under a mask made of the
 * borrow (the top bit of x - q), instead of comparing. */
static uint16_t fq_csub(uint32_t x)
{
	uint32_t d = x - Q;
	return (uint16_t)(d + ((0u - (d >> 31)) & Q));
}

/* x mod q for any 32-bit x. t = floor(x * floor(2^32 / q) / 2^32) is
 * floor(x / q) or one less, so x - t q is below 2q. */
#define BARRETT_M 1290167u /* floor(2^32 / q) */
static uint16_t fq_reduce(uint32_t x)
{
	uint32_t t = (uint32_t)(((uint64_t)x * BARRETT_M) >> 32);
	return fq_csub(x - t * Q);
}

static uint16_t fq_mul(uint16_t a, uint16_t b)
{
	return fq_reduce((uint32_t)a * b);
}

static uint16_t fq_add(uint16_t a, uint16_t b)
{
	return fq_csub((uint32_t)a + b);
}

static uint16_t fq_sub(uint16_t a, uint16_t b)
{
	return fq_csub((uint32_t)a + Q - b);
}

/* zetas[i] = 17^BitRev7(i) and gammas[i] = 17^(2 BitRev7(i) + 1) mod q
 * (17 is the primitive 256th root of unity the standard fixes): computed
 * once rather than typed in, with zeta_quots[i] = floor(zetas[i] 2^32 / q)
 * for Shoup's multiplication below. Only public loop counters index
 * them. */
static uint16_t zetas[128], gammas[128];
static uint32_t zeta_quots[128];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static unsigned bitrev7(unsigned i)
{
	unsigned r = 0;
	for (int b = 0; b < 7; b++)
		r |= ((i >> b) & 1u) << (6 - b);
	return r;
}

static void init_tables(void)
{
	uint16_t pow[256];
	pow[0] = 1;
	for (int i = 1; i < 256; i++)
		pow[i] = fq_mul(pow[i - 1], 17);
	for (unsigned i = 0; i < 128; i++) {
		zetas[i] = pow[bitrev7(i)];
		gammas[i] = pow[2 * bitrev7(i) + 1];
		zeta_quots[i] = (uint32_t)(((uint64_t)zetas[i] << 32) / Q);
	}
}

/* a * zeta mod q, up to one multiple of q: in [0, 2q) for any 32-bit a
 * (Shoup). With zq = floor(zeta 2^32 / q), t = floor(a zq / 2^32) is
 * floor(a zeta / q) or one less; the difference a zeta - t q is then
 * below 2q, so computing it modulo 2^32 gives it exactly. */
static uint32_t mul_zeta(uint32_t a, uint32_t zeta, uint32_t zq)
{
	uint32_t t = (uint32_t)(((uint64_t)a * zq) >> 32);
	return a * zeta - t * Q;
}

/* ---- NTT (Algorithms 9 to 12) ---------------------------------------------- */

/* Lazily reduced: every butterfly adds less than 2q to a coefficient, so
 * from canonical inputs the seven layers stay below 15q < 2^16, and one
 * reduction at the end makes the output canonical. */
static void ntt(poly *f)
{
	unsigned i = 1;
	for (unsigned len = 128; len >= 2; len /= 2)
		for (unsigned start = 0; start < N; start += 2 * len) {
			uint32_t zeta = zetas[i], zq = zeta_quots[i];
			i++;
			for (unsigned j = start; j < start + len; j++) {
				uint32_t t = mul_zeta(f->c[j + len], zeta, zq);
				uint32_t a = f->c[j];
				f->c[j + len] = (uint16_t)(a + 2 * Q - t);
				f->c[j] = (uint16_t)(a + t);
			}
		}
	for (unsigned j = 0; j < N; j++)
		f->c[j] = fq_reduce(f->c[j]);
}

/* x mod 2q for x < 4q, by mask. */
static uint32_t csub_2q(uint32_t x)
{
	uint32_t d = x - 2 * Q;
	return d + ((0u - (d >> 31)) & (2 * Q));
}

/* Lazily reduced too: coefficients stay below 2q (a sum of two is brought
 * back under 2q by mask, a product with zeta is), and the final scaling
 * by 128^-1 makes them canonical. */
static void ntt_inverse(poly *f)
{
	unsigned i = 127;
	for (unsigned len = 2; len <= 128; len *= 2)
		for (unsigned start = 0; start < N; start += 2 * len) {
			uint32_t zeta = zetas[i], zq = zeta_quots[i];
			i--;
			for (unsigned j = start; j < start + len; j++) {
				uint32_t a = f->c[j], b = f->c[j + len];
				f->c[j] = (uint16_t)csub_2q(a + b);
				f->c[j + len] = (uint16_t)mul_zeta(b + 2 * Q - a, zeta, zq);
			}
		}
	for (unsigned j = 0; j < N; j++)
		f->c[j] = fq_mul(f->c[j], INV_128);
}

/* acc += f * g in the NTT domain (MultiplyNTTs: 128 products of degree-one
 * polynomials modulo X^2 - gamma_i), left unreduced: each call adds less
 * than 2^25 to a coefficient, so K calls stay far below 2^32. */
static void ntt_mul_acc(uint32_t acc[N], const poly *f, const poly *g)
{
	for (unsigned i = 0; i < N / 2; i++) {
		uint32_t a0 = f->c[2 * i], a1 = f->c[2 * i + 1];
		uint32_t b0 = g->c[2 * i], b1 = g->c[2 * i + 1];
		acc[2 * i] += a0 * b0 + (uint32_t)fq_mul(fq_reduce(a1 * b1), gammas[i]);
		acc[2 * i + 1] += a0 * b1 + a1 * b0;
	}
}

static void acc_reduce(poly *out, uint32_t acc[N])
{
	for (unsigned j = 0; j < N; j++) {
		out->c[j] = fq_reduce(acc[j]);
		acc[j] = 0;
	}
}

static void poly_add(poly *r, const poly *a)
{
	for (unsigned j = 0; j < N; j++)
		r->c[j] = fq_add(r->c[j], a->c[j]);
}

/* ---- Compression and encodings (4.7, Algorithms 5 and 6) ------------------- */

/* round(2^d x / q) mod 2^d = floor((2^(d+1) x + q) / 2q) mod 2^d. The
 * numerator is below 2^24 for d <= 11, and dividing by 2q = 6658 is a
 * multiplication by ceil(2^36 / 6658) and a shift: the multiplier is
 * 0.75 too large, which moves n / 6658 by less than 2^24 * 0.75 / 2^36
 * < 1 / 6658, not enough to cross an integer. */
#define COMPRESS_M 10321340u /* ceil(2^36 / 2q) */
uint16_t vf_mlkem_compress(uint16_t x, unsigned d)
{
	uint64_t n = ((uint64_t)x << (d + 1)) + Q;
	return (uint16_t)(((n * COMPRESS_M) >> 36) & ((1u << d) - 1));
}

/* round(q y / 2^d) = floor((q y + 2^(d-1)) / 2^d). */
uint16_t vf_mlkem_decompress(uint16_t y, unsigned d)
{
	return (uint16_t)(((uint32_t)y * Q + (1u << (d - 1))) >> d);
}

static void encode12(const poly *f, uint8_t out[POLY_BYTES])
{
	for (unsigned i = 0; i < N / 2; i++) {
		uint16_t a = f->c[2 * i], b = f->c[2 * i + 1];
		out[3 * i] = (uint8_t)a;
		out[3 * i + 1] = (uint8_t)((a >> 8) | (b << 4));
		out[3 * i + 2] = (uint8_t)(b >> 4);
	}
}

/* ByteDecode12, which reduces modulo q (a 12-bit value is below 2q).
 * Returns non-zero when some value was not below q: the modulus check of
 * an encapsulation key. Computed for every input without branching, since
 * dk_pke is decoded here too. */
static uint32_t decode12(const uint8_t in[POLY_BYTES], poly *f)
{
	uint32_t over = 0;
	for (unsigned i = 0; i < N / 2; i++) {
		uint32_t a = in[3 * i] | ((uint32_t)(in[3 * i + 1] & 0x0f) << 8);
		uint32_t b = (uint32_t)(in[3 * i + 1] >> 4) | ((uint32_t)in[3 * i + 2] << 4);
		over |= ((Q - 1 - a) | (Q - 1 - b)) >> 31;
		f->c[2 * i] = fq_csub(a);
		f->c[2 * i + 1] = fq_csub(b);
	}
	return over;
}

/* ByteEncode10(Compress10(u)): four coefficients in five bytes. */
static void encode_u(const poly *f, uint8_t out[C1_POLY_BYTES])
{
	for (unsigned i = 0; i < N / 4; i++) {
		uint16_t a[4];
		for (unsigned k = 0; k < 4; k++)
			a[k] = vf_mlkem_compress(f->c[4 * i + k], DU);
		uint8_t *o = out + 5 * i;
		o[0] = (uint8_t)a[0];
		o[1] = (uint8_t)((a[0] >> 8) | (a[1] << 2));
		o[2] = (uint8_t)((a[1] >> 6) | (a[2] << 4));
		o[3] = (uint8_t)((a[2] >> 4) | (a[3] << 6));
		o[4] = (uint8_t)(a[3] >> 2);
	}
}

static void decode_u(const uint8_t in[C1_POLY_BYTES], poly *f)
{
	for (unsigned i = 0; i < N / 4; i++) {
		const uint8_t *p = in + 5 * i;
		uint16_t a[4] = {
			(uint16_t)(p[0] | ((p[1] & 0x03) << 8)),
			(uint16_t)((p[1] >> 2) | ((p[2] & 0x0f) << 6)),
			(uint16_t)((p[2] >> 4) | ((p[3] & 0x3f) << 4)),
			(uint16_t)((p[3] >> 6) | (p[4] << 2)),
		};
		for (unsigned k = 0; k < 4; k++)
			f->c[4 * i + k] = vf_mlkem_decompress(a[k], DU);
	}
}

/* ByteEncode4(Compress4(v)): two coefficients a byte. */
static void encode_v(const poly *f, uint8_t out[N * DV / 8])
{
	for (unsigned i = 0; i < N / 2; i++)
		out[i] = (uint8_t)(vf_mlkem_compress(f->c[2 * i], DV) |
				   (vf_mlkem_compress(f->c[2 * i + 1], DV) << 4));
}

static void decode_v(const uint8_t in[N * DV / 8], poly *f)
{
	for (unsigned i = 0; i < N / 2; i++) {
		f->c[2 * i] = vf_mlkem_decompress(in[i] & 0x0f, DV);
		f->c[2 * i + 1] = vf_mlkem_decompress(in[i] >> 4, DV);
	}
}

/* Decompress1(ByteDecode1(m)): each bit of the secret message becomes 0
 * or round(q / 2) = 1665 through a mask. */
static void decode_message(const uint8_t m[VF_MLKEM768_M_LEN], poly *f)
{
	for (unsigned i = 0; i < N; i++) {
		uint32_t bit = (uint32_t)(m[i / 8] >> (i % 8)) & 1u;
		f->c[i] = (uint16_t)((0u - bit) & ((Q + 1) / 2));
	}
}

/* ByteEncode1(Compress1(w)). */
static void encode_message(const poly *f, uint8_t m[VF_MLKEM768_M_LEN])
{
	for (unsigned i = 0; i < VF_MLKEM768_M_LEN; i++) {
		uint8_t byte = 0;
		for (unsigned b = 0; b < 8; b++)
			byte |= (uint8_t)(vf_mlkem_compress(f->c[8 * i + b], 1) << b);
		m[i] = byte;
	}
}

/* ---- Sampling (Algorithms 7 and 8) --------------------------------------- */

/* The coefficients below q among the 12-bit values of buf, in order, up
 * to N of them. buf is public (derived from rho): branching is fine. */
static unsigned parse_ntt(const uint8_t *buf, size_t len, uint16_t out[N])
{
	unsigned n = 0;
	for (size_t pos = 0; pos + 3 <= len && n < N; pos += 3) {
		uint16_t d1 = (uint16_t)(buf[pos] | ((buf[pos + 1] & 0x0f) << 8));
		uint16_t d2 = (uint16_t)((buf[pos + 1] >> 4) | (buf[pos + 2] << 4));
		if (d1 < Q)
			out[n++] = d1;
		if (d2 < Q && n < N)
			out[n++] = d2;
	}
	return n;
}

enum vf_code vf_mlkem_sample_ntt(const uint8_t rho[32], uint8_t j, uint8_t i, size_t first_len,
				 uint16_t out[N], struct vf_error *err)
{
	uint8_t first[SAMPLE_FIRST_LEN];
	const uint8_t ji[2] = {j, i};
	const struct vf_iov in[] = {{rho, 32}, {ji, 2}};
	uint8_t *buf = first, *big = NULL;
	enum vf_code rc = VF_OK;
	for (size_t len = first_len ? first_len : 3;; len *= 2) {
		if (len > SAMPLE_MAX_LEN) {
			rc = vf_fail(err, VF_E_CRYPTO, "ML-KEM SampleNTT found too few coefficients");
			break;
		}
		if (len > sizeof(first)) {
			uint8_t *p = realloc(big, len);
			if (!p) {
				rc = vf_fail(err, VF_E_NOMEM, "out of memory");
				break;
			}
			buf = big = p;
		}
		rc = vf_shake128(in, 2, buf, len, err);
		if (rc != VF_OK || parse_ntt(buf, len, out) == N)
			break;
	}
	free(big);
	return rc;
}

/* Â[i][j] = SampleNTT(rho || j || i). */
static enum vf_code sample_matrix(const uint8_t rho[32], poly a[K][K], struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (unsigned i = 0; i < K && rc == VF_OK; i++)
		for (unsigned j = 0; j < K && rc == VF_OK; j++)
			rc = vf_mlkem_sample_ntt(rho, (uint8_t)j, (uint8_t)i, SAMPLE_FIRST_LEN,
						 a[i][j].c, err);
	return rc;
}

/* SamplePolyCBD_2(PRF_2(seed, nonce)): each coefficient is the difference
 * of two 2-bit popcounts, taken with masks and shifts (a table lookup or a
 * branch on the secret bits would leak them). buf holds the PRF output. */
static enum vf_code sample_cbd(const uint8_t seed[32], uint8_t nonce, uint8_t buf[CBD_BYTES],
			       poly *f, struct vf_error *err)
{
	const struct vf_iov in[] = {{seed, 32}, {&nonce, 1}};
	enum vf_code rc = vf_shake256(in, 2, buf, CBD_BYTES, err);
	if (rc != VF_OK)
		return rc;
	for (unsigned i = 0; i < CBD_BYTES; i++) {
		/* Two-bit sums of adjacent bits: s = b0+b1 | b2+b3 | b4+b5 | b6+b7. */
		uint32_t s = (buf[i] & 0x55u) + ((buf[i] >> 1) & 0x55u);
		f->c[2 * i] = fq_csub(Q + (s & 3u) - ((s >> 2) & 3u));
		f->c[2 * i + 1] = fq_csub(Q + ((s >> 4) & 3u) - ((s >> 6) & 3u));
	}
	return VF_OK;
}

/* ---- K-PKE (Algorithms 13 to 15) ------------------------------------------- */

/* Everything the scheme computes on, in one block of guarded scratch
 * memory, wiped when released. */
/* An encapsulation key as K-PKE computes with it: t̂ decoded, Â sampled
 * from rho, and H(ek). All public, so plain memory; expanded once for a
 * recipient that many files are sealed to (vf_mlkem768_ek_new), the
 * expansion costing more than the encapsulation's own arithmetic. */
struct vf_mlkem768_ek {
	poly a[K][K]; /* Â */
	poly t[K];    /* t̂ */
	uint8_t h[32]; /* H(ek) */
};

struct work {
	poly a[K][K];	  /* Â of KeyGen (public, but kept with the rest) */
	poly t[K];	  /* t̂ of KeyGen */
	poly s[K];	  /* ŝ (KeyGen, Decrypt), ŷ (Encrypt) */
	poly e[K];	  /* ê (KeyGen), e1 then u (Encrypt), u' (Decrypt) */
	poly v, e2, tmp;
	uint32_t acc[N];
	uint8_t prf[CBD_BYTES];
	uint8_t g[64];	  /* G's output: rho || sigma, or K || r */
	uint8_t m[VF_MLKEM768_M_LEN];
	uint8_t kbar[VF_MLKEM768_SS_LEN];
	uint8_t ct[VF_MLKEM768_CT_LEN]; /* Decaps' re-encryption */
};

static struct work *work_new(struct vf_error *err)
{
	pthread_once(&tables_once, init_tables);
	struct work *w = vf_scratch_alloc(sizeof(*w));
	if (!w) {
		vf_fail(err, VF_E_NOMEM, "out of memory");
		return NULL;
	}
	/* Only the accumulator must start at zero (acc_reduce leaves it so):
	 * everything else is written before it is read. */
	memset(w->acc, 0, sizeof(w->acc));
	return w;
}

static void work_free(struct work *w)
{
	if (w)
		vf_scratch_free(w, sizeof(*w)); /* wipes */
}

/* K-PKE.KeyGen(d): writes ek_pke (the whole ek) and dk_pke. */
static enum vf_code pke_keygen(struct work *w, const uint8_t d[32],
			       uint8_t ek[VF_MLKEM768_EK_LEN], uint8_t dk_pke[PKE_DK_LEN],
			       struct vf_error *err)
{
	const uint8_t k = K;
	const struct vf_iov g_in[] = {{d, 32}, {&k, 1}};
	enum vf_code rc = vf_sha3_512(g_in, 2, w->g, err);
	const uint8_t *rho = w->g, *sigma = w->g + 32;
	VF_CT_PUBLIC(rho, 32); /* part of ek */
	if (rc == VF_OK)
		rc = sample_matrix(rho, w->a, err);
	for (unsigned i = 0; i < K && rc == VF_OK; i++)
		rc = sample_cbd(sigma, (uint8_t)i, w->prf, &w->s[i], err);
	for (unsigned i = 0; i < K && rc == VF_OK; i++)
		rc = sample_cbd(sigma, (uint8_t)(K + i), w->prf, &w->e[i], err);
	if (rc != VF_OK)
		return rc;
	for (unsigned i = 0; i < K; i++) {
		ntt(&w->s[i]);
		ntt(&w->e[i]);
	}
	for (unsigned i = 0; i < K; i++) {
		for (unsigned j = 0; j < K; j++)
			ntt_mul_acc(w->acc, &w->a[i][j], &w->s[j]);
		acc_reduce(&w->t[i], w->acc);
		poly_add(&w->t[i], &w->e[i]);
		encode12(&w->t[i], ek + i * POLY_BYTES);
		encode12(&w->s[i], dk_pke + i * POLY_BYTES);
	}
	memcpy(ek + K * POLY_BYTES, rho, 32);
	return VF_OK;
}

/* K-PKE.Encrypt(ek_pke, m, r) into ct, ek_pke already expanded. */
static enum vf_code pke_encrypt(struct work *w, const struct vf_mlkem768_ek *ek,
				const uint8_t m[VF_MLKEM768_M_LEN], const uint8_t r[32],
				uint8_t ct[VF_MLKEM768_CT_LEN], struct vf_error *err)
{
	enum vf_code rc = VF_OK;
	for (unsigned i = 0; i < K && rc == VF_OK; i++)
		rc = sample_cbd(r, (uint8_t)i, w->prf, &w->s[i], err);
	for (unsigned i = 0; i < K && rc == VF_OK; i++)
		rc = sample_cbd(r, (uint8_t)(K + i), w->prf, &w->e[i], err);
	if (rc == VF_OK)
		rc = sample_cbd(r, 2 * K, w->prf, &w->e2, err);
	if (rc != VF_OK)
		return rc;
	for (unsigned i = 0; i < K; i++)
		ntt(&w->s[i]);
	/* u = NTT^-1(Â^T ŷ) + e1, in place of e1. */
	for (unsigned i = 0; i < K; i++) {
		for (unsigned j = 0; j < K; j++)
			ntt_mul_acc(w->acc, &ek->a[j][i], &w->s[j]);
		acc_reduce(&w->tmp, w->acc);
		ntt_inverse(&w->tmp);
		poly_add(&w->e[i], &w->tmp);
		encode_u(&w->e[i], ct + i * C1_POLY_BYTES);
	}
	/* v = NTT^-1(t̂^T ŷ) + e2 + Decompress1(m). */
	for (unsigned i = 0; i < K; i++)
		ntt_mul_acc(w->acc, &ek->t[i], &w->s[i]);
	acc_reduce(&w->v, w->acc);
	ntt_inverse(&w->v);
	poly_add(&w->v, &w->e2);
	decode_message(m, &w->tmp);
	poly_add(&w->v, &w->tmp);
	encode_v(&w->v, ct + C1_LEN);
	return VF_OK;
}

/* K-PKE.Decrypt(dk_pke, c) into m. */
static void pke_decrypt(struct work *w, const uint8_t dk_pke[PKE_DK_LEN],
			const uint8_t ct[VF_MLKEM768_CT_LEN], uint8_t m[VF_MLKEM768_M_LEN])
{
	for (unsigned i = 0; i < K; i++) {
		decode_u(ct + i * C1_POLY_BYTES, &w->e[i]);
		ntt(&w->e[i]);
		decode12(dk_pke + i * POLY_BYTES, &w->s[i]);
		ntt_mul_acc(w->acc, &w->s[i], &w->e[i]);
	}
	acc_reduce(&w->tmp, w->acc);
	ntt_inverse(&w->tmp);
	decode_v(ct + C1_LEN, &w->v);
	for (unsigned j = 0; j < N; j++)
		w->v.c[j] = fq_sub(w->v.c[j], w->tmp.c[j]);
	encode_message(&w->v, m);
}

/* ---- ML-KEM (Algorithms 16 to 18, 20 and 21) -------------------------------- */

static enum vf_code hash_h(const uint8_t *p, size_t len, uint8_t out[32], struct vf_error *err)
{
	const struct vf_iov in[] = {{p, len}};
	return vf_sha3_256(in, 1, out, err);
}

enum vf_code vf_mlkem768_keygen(const uint8_t *seed, size_t seed_len,
				uint8_t ek[VF_MLKEM768_EK_LEN], uint8_t dk[VF_MLKEM768_DK_LEN],
				struct vf_error *err)
{
	if (seed_len != VF_MLKEM768_SEED_LEN)
		return vf_fail(err, VF_E_KEY, "ML-KEM-768 seed of %zu bytes (expected %d)",
			       seed_len, VF_MLKEM768_SEED_LEN);
	struct work *w = work_new(err);
	if (!w)
		return VF_E_NOMEM;
	enum vf_code rc = pke_keygen(w, seed, ek, dk, err);
	if (rc == VF_OK) {
		VF_CT_PUBLIC(ek, VF_MLKEM768_EK_LEN);
		memcpy(dk + DK_EK_OFF, ek, VF_MLKEM768_EK_LEN);
		rc = hash_h(ek, VF_MLKEM768_EK_LEN, dk + DK_H_OFF, err);
		memcpy(dk + DK_Z_OFF, seed + 32, 32);
	}
	work_free(w);
	if (rc != VF_OK)
		vf_wipe(dk, VF_MLKEM768_DK_LEN);
	return rc;
}

/* ByteDecode12 of ek's three polynomials into t (may be NULL: the check
 * alone), VF_E_KEY unless ek has the length and passes the modulus check. */
static enum vf_code decode_ek(const uint8_t *ek, size_t ek_len, poly t[K], struct vf_error *err)
{
	if (ek_len != VF_MLKEM768_EK_LEN)
		return vf_fail(err, VF_E_KEY,
			       "ML-KEM-768 encapsulation key of %zu bytes (expected %d)", ek_len,
			       VF_MLKEM768_EK_LEN);
	poly f;
	uint32_t over = 0;
	for (unsigned i = 0; i < K; i++)
		over |= decode12(ek + i * POLY_BYTES, t ? &t[i] : &f);
	if (over)
		return vf_fail(err, VF_E_KEY,
			       "ML-KEM-768 encapsulation key fails the modulus check "
			       "(a coefficient is not below q)");
	return VF_OK;
}

enum vf_code vf_mlkem768_check_ek(const uint8_t *ek, size_t ek_len, struct vf_error *err)
{
	return decode_ek(ek, ek_len, NULL, err);
}

/* The expansion, with or without the modulus check: decapsulation works
 * on whatever ek its key holds (FIPS 203 checks only H(ek) there). */
static enum vf_code expand_ek(struct vf_mlkem768_ek **out, const uint8_t *ek, size_t ek_len,
			      bool check, struct vf_error *err)
{
	*out = NULL;
	pthread_once(&tables_once, init_tables);
	struct vf_mlkem768_ek *x = malloc(sizeof(*x));
	if (!x)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = decode_ek(ek, ek_len, x->t, check ? err : NULL);
	if (rc == VF_E_KEY && !check && ek_len == VF_MLKEM768_EK_LEN)
		rc = VF_OK; /* decoded all the same, each value reduced modulo q */
	if (rc == VF_OK)
		rc = sample_matrix(ek + K * POLY_BYTES, x->a, err);
	if (rc == VF_OK)
		rc = hash_h(ek, VF_MLKEM768_EK_LEN, x->h, err);
	if (rc != VF_OK) {
		free(x);
		return rc;
	}
	*out = x;
	return VF_OK;
}

enum vf_code vf_mlkem768_ek_new(struct vf_mlkem768_ek **out, const uint8_t *ek, size_t ek_len,
				struct vf_error *err)
{
	return expand_ek(out, ek, ek_len, true, err);
}

void vf_mlkem768_ek_free(struct vf_mlkem768_ek *ek)
{
	free(ek); /* public data: nothing to wipe */
}

enum vf_code vf_mlkem768_encaps_ek(const struct vf_mlkem768_ek *ek, const uint8_t *m,
				   uint8_t ct[VF_MLKEM768_CT_LEN], uint8_t ss[VF_MLKEM768_SS_LEN],
				   struct vf_error *err)
{
	struct work *w = work_new(err);
	if (!w)
		return VF_E_NOMEM;
	enum vf_code rc = VF_OK;
	if (m)
		memcpy(w->m, m, VF_MLKEM768_M_LEN);
	else
		rc = vf_random(w->m, VF_MLKEM768_M_LEN, err);
	/* (K, r) = G(m || H(ek)) */
	const struct vf_iov g_in[] = {{w->m, VF_MLKEM768_M_LEN}, {ek->h, sizeof(ek->h)}};
	if (rc == VF_OK)
		rc = vf_sha3_512(g_in, 2, w->g, err);
	if (rc == VF_OK)
		rc = pke_encrypt(w, ek, w->m, w->g + 32, ct, err);
	if (rc == VF_OK)
		memcpy(ss, w->g, VF_MLKEM768_SS_LEN);
	work_free(w);
	return rc;
}

enum vf_code vf_mlkem768_encaps(const uint8_t *ek, size_t ek_len, const uint8_t *m,
				uint8_t ct[VF_MLKEM768_CT_LEN], uint8_t ss[VF_MLKEM768_SS_LEN],
				struct vf_error *err)
{
	struct vf_mlkem768_ek *x;
	enum vf_code rc = vf_mlkem768_ek_new(&x, ek, ek_len, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_mlkem768_encaps_ek(x, m, ct, ss, err);
	vf_mlkem768_ek_free(x);
	return rc;
}

enum vf_code vf_mlkem768_check_dk(const uint8_t *dk, size_t dk_len, struct vf_error *err)
{
	if (dk_len != VF_MLKEM768_DK_LEN)
		return vf_fail(err, VF_E_KEY,
			       "ML-KEM-768 decapsulation key of %zu bytes (expected %d)", dk_len,
			       VF_MLKEM768_DK_LEN);
	uint8_t h[32];
	enum vf_code rc = hash_h(dk + DK_EK_OFF, VF_MLKEM768_EK_LEN, h, err);
	if (rc == VF_OK && !vf_equal(h, dk + DK_H_OFF, sizeof(h)))
		rc = vf_fail(err, VF_E_KEY,
			     "ML-KEM-768 decapsulation key fails its hash check "
			     "(the stored H(ek) does not match ek)");
	return rc;
}

/* All ones when a and b are equal, zero otherwise, with no branch on
 * their contents: CRYPTO_memcmp gives 0 or a positive difference, which
 * is turned into a mask arithmetically. The empty asm keeps the compiler
 * from seeing through the mask and rebuilding a branch from it. */
static uint8_t equal_mask(const uint8_t *a, const uint8_t *b, size_t len)
{
	uint32_t diff = (uint32_t)CRYPTO_memcmp(a, b, len);
	uint32_t mask = ((diff | (0u - diff)) >> 31) - 1u;
	__asm__("" : "+r"(mask));
	return (uint8_t)mask;
}

enum vf_code vf_mlkem768_decaps_ek(const uint8_t *dk, size_t dk_len,
				   const struct vf_mlkem768_ek *ek, const uint8_t *ct, size_t ct_len,
				   uint8_t ss[VF_MLKEM768_SS_LEN], struct vf_error *err)
{
	if (ct_len != VF_MLKEM768_CT_LEN)
		return vf_fail(err, VF_E_ARG, "ML-KEM-768 ciphertext of %zu bytes (expected %d)",
			       ct_len, VF_MLKEM768_CT_LEN);
	if (dk_len != VF_MLKEM768_DK_LEN)
		return vf_fail(err, VF_E_KEY,
			       "ML-KEM-768 decapsulation key of %zu bytes (expected %d)", dk_len,
			       VF_MLKEM768_DK_LEN);
	struct work *w = work_new(err);
	if (!w)
		return VF_E_NOMEM;
	pke_decrypt(w, dk, ct, w->m);
	/* (K', r') = G(m' || h); K_bar = J(z || c). */
	const struct vf_iov g_in[] = {{w->m, VF_MLKEM768_M_LEN}, {dk + DK_H_OFF, 32}};
	const struct vf_iov j_in[] = {{dk + DK_Z_OFF, 32}, {ct, VF_MLKEM768_CT_LEN}};
	enum vf_code rc = vf_sha3_512(g_in, 2, w->g, err);
	if (rc == VF_OK)
		rc = vf_shake256(j_in, 2, w->kbar, sizeof(w->kbar), err);
	if (rc == VF_OK)
		rc = pke_encrypt(w, ek, w->m, w->g + 32, w->ct, err);
	if (rc == VF_OK) {
		/* Implicit rejection: K' if c' == c, else K_bar, chosen by mask. */
		uint8_t keep = equal_mask(ct, w->ct, VF_MLKEM768_CT_LEN);
		for (unsigned i = 0; i < VF_MLKEM768_SS_LEN; i++)
			ss[i] = (uint8_t)(w->kbar[i] ^ (keep & (w->g[i] ^ w->kbar[i])));
	}
	work_free(w);
	return rc;
}

enum vf_code vf_mlkem768_decaps(const uint8_t *dk, size_t dk_len, const uint8_t *ct,
				size_t ct_len, uint8_t ss[VF_MLKEM768_SS_LEN],
				struct vf_error *err)
{
	if (ct_len != VF_MLKEM768_CT_LEN)
		return vf_fail(err, VF_E_ARG, "ML-KEM-768 ciphertext of %zu bytes (expected %d)",
			       ct_len, VF_MLKEM768_CT_LEN);
	enum vf_code rc = vf_mlkem768_check_dk(dk, dk_len, err);
	if (rc != VF_OK)
		return rc;
	/* ek inside dk passed the hash check, and was the caller's to check
	 * for the modulus; decoded modulo q whatever it holds, as before. */
	struct vf_mlkem768_ek *x;
	rc = expand_ek(&x, dk + DK_EK_OFF, VF_MLKEM768_EK_LEN, false, err);
	if (rc != VF_OK)
		return rc;
	rc = vf_mlkem768_decaps_ek(dk, dk_len, x, ct, ct_len, ss, err);
	vf_mlkem768_ek_free(x);
	return rc;
}
