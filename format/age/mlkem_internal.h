/* Pieces of ML-KEM (mlkem.c) that tests/pq_test.c checks on their own,
 * beyond what the official vectors reach. Private to format/age/. */
#ifndef VF_MLKEM_INTERNAL_H
#define VF_MLKEM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* The constant-time check (tests/pq_ct_test.c, ctest pq-ct) builds
 * mlkem.c and xwing.c with VF_CT_TESTING and runs them under valgrind
 * with the secrets marked undefined. Values that are public by design
 * although computed from secrets (rho and ek, which the public key
 * carries) are declared public to memcheck there; in the library the
 * macro is nothing. */
#ifdef VF_CT_TESTING
#include <valgrind/memcheck.h>
#define VF_CT_PUBLIC(p, len) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (len)))
#else
#define VF_CT_PUBLIC(p, len) ((void)0)
#endif

#define VF_MLKEM_N 256
#define VF_MLKEM_Q 3329

/* Compress_d and Decompress_d of FIPS 203 (4.7, 4.8) for x < q and
 * y < 2^d, d from 1 to 11: round(2^d x / q) mod 2^d and round(q y / 2^d),
 * computed without division. */
uint16_t vf_mlkem_compress(uint16_t x, unsigned d);
uint16_t vf_mlkem_decompress(uint16_t y, unsigned d);

/* SampleNTT (Algorithm 7) on SHAKE128(rho || j || i), squeezing
 * first_len bytes first and recomputing with twice as many whenever the
 * 256 coefficients are not all found (the path that a normal first_len
 * almost never takes, which a test takes with a small one). */
enum vf_code vf_mlkem_sample_ntt(const uint8_t rho[32], uint8_t j, uint8_t i, size_t first_len,
				 uint16_t out[VF_MLKEM_N], struct vf_error *err);

#endif
