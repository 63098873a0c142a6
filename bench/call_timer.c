/* call_timer.so: where a short run's own time goes, call by call.
 *
 * Loaded with LD_PRELOAD into one run of a tool, it stands in front of the
 * library calls a short run makes into libcrypto, libsodium and libyaml,
 * times each outermost one (a call the library makes to its own exported
 * functions while inside is counted in its caller, not again), and at exit
 * appends one line per function to the file CALL_TIMER_OUT names:
 *
 *     NAME CALLS MICROSECONDS
 *
 * plus a line "(run) 1 US" with the time from the library's constructor
 * to its destructor: about main to exit. bench/small_bench.sh runs the
 * tools many times with it and prints the medians.
 *
 * Each stand-in has the real function's prototype and calls the real one
 * (dlsym RTLD_NEXT), so arguments and results pass through unchanged. A
 * benchmark aid only: never built into the tools. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <yaml.h>

#define MAX_SLOTS 64

struct slot {
	const char *name;
	double us;
	unsigned calls;
};

static struct slot slots[MAX_SLOTS];
static size_t n_slots;
static double run_start;
/* Inside a timed call: the library calling its own exports is not counted
 * again. Per thread, since the payload stream's workers call OpenSSL. */
static _Thread_local int depth;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Names are string literals: one pointer per function. Single-threaded
 * bookkeeping is enough for the short runs this is for (their workers do
 * not start below two batches of input). */
static void account(const char *name, double us)
{
	for (size_t i = 0; i < n_slots; i++) {
		if (slots[i].name == name) {
			slots[i].us += us;
			slots[i].calls++;
			return;
		}
	}
	if (n_slots < MAX_SLOTS)
		slots[n_slots++] = (struct slot){name, us, 1};
}

__attribute__((constructor)) static void timer_start(void)
{
	run_start = now_us();
}

__attribute__((destructor)) static void timer_report(void)
{
	const char *path = getenv("CALL_TIMER_OUT");
	FILE *f = path ? fopen(path, "a") : NULL;
	if (!f)
		return;
	fprintf(f, "(run) 1 %.1f\n", now_us() - run_start);
	for (size_t i = 0; i < n_slots; i++)
		fprintf(f, "%s %u %.1f\n", slots[i].name, slots[i].calls, slots[i].us);
	fputs("--\n", f);
	fclose(f);
}

/* The real function, looked up once. */
#define REAL(name)                                                      \
	static __typeof__(name) *real;                                  \
	if (!real)                                                      \
		*(void **)&real = dlsym(RTLD_NEXT, #name)

/* TIMED(name, call): runs call (which uses `real`), timing it when it is
 * the outermost one. */
#define TIMED(name, result_decl, call, result)     \
	REAL(name);                                \
	if (depth)                                 \
		return call;                       \
	depth++;                                   \
	double t0 = now_us();                      \
	result_decl = call;                        \
	account(#name, now_us() - t0);             \
	depth--;                                   \
	return result

int OPENSSL_init_crypto(uint64_t opts, const OPENSSL_INIT_SETTINGS *settings)
{
	TIMED(OPENSSL_init_crypto, int r, real(opts, settings), r);
}

int CRYPTO_secure_malloc_init(size_t size, size_t minsize)
{
	TIMED(CRYPTO_secure_malloc_init, int r, real(size, minsize), r);
}

OSSL_PROVIDER *OSSL_PROVIDER_load(OSSL_LIB_CTX *ctx, const char *name)
{
	TIMED(OSSL_PROVIDER_load, OSSL_PROVIDER *r, real(ctx, name), r);
}

int RAND_set_DRBG_type(OSSL_LIB_CTX *ctx, const char *drbg, const char *propq,
		       const char *cipher, const char *digest)
{
	TIMED(RAND_set_DRBG_type, int r, real(ctx, drbg, propq, cipher, digest), r);
}

int RAND_priv_bytes(unsigned char *buf, int num)
{
	TIMED(RAND_priv_bytes, int r, real(buf, num), r);
}

EVP_PKEY *EVP_PKEY_new_raw_private_key(int type, ENGINE *e, const unsigned char *key,
				       size_t len)
{
	TIMED(EVP_PKEY_new_raw_private_key, EVP_PKEY *r, real(type, e, key, len), r);
}

EVP_PKEY *EVP_PKEY_new_raw_public_key(int type, ENGINE *e, const unsigned char *key, size_t len)
{
	TIMED(EVP_PKEY_new_raw_public_key, EVP_PKEY *r, real(type, e, key, len), r);
}

int EVP_PKEY_derive_init(EVP_PKEY_CTX *ctx)
{
	TIMED(EVP_PKEY_derive_init, int r, real(ctx), r);
}

int EVP_PKEY_derive(EVP_PKEY_CTX *ctx, unsigned char *key, size_t *keylen)
{
	TIMED(EVP_PKEY_derive, int r, real(ctx, key, keylen), r);
}

EVP_KDF *EVP_KDF_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties)
{
	TIMED(EVP_KDF_fetch, EVP_KDF *r, real(ctx, algorithm, properties), r);
}

int EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[])
{
	TIMED(EVP_KDF_derive, int r, real(ctx, key, keylen, params), r);
}

EVP_MAC *EVP_MAC_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties)
{
	TIMED(EVP_MAC_fetch, EVP_MAC *r, real(ctx, algorithm, properties), r);
}

int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM params[])
{
	TIMED(EVP_MAC_CTX_set_params, int r, real(ctx, params), r);
}

EVP_MD *EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties)
{
	TIMED(EVP_MD_fetch, EVP_MD *r, real(ctx, algorithm, properties), r);
}

EVP_CIPHER *EVP_CIPHER_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties)
{
	TIMED(EVP_CIPHER_fetch, EVP_CIPHER *r, real(ctx, algorithm, properties), r);
}

int EVP_CipherInit_ex2(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, const unsigned char *key,
		       const unsigned char *iv, int enc, const OSSL_PARAM params[])
{
	TIMED(EVP_CipherInit_ex2, int r, real(ctx, cipher, key, iv, enc, params), r);
}

void OPENSSL_cleanup(void)
{
	REAL(OPENSSL_cleanup);
	double t0 = now_us();
	real();
	account("OPENSSL_cleanup", now_us() - t0);
}

int sodium_init(void)
{
	TIMED(sodium_init, int r, real(), r);
}

void *sodium_malloc(size_t size)
{
	TIMED(sodium_malloc, void *r, real(size), r);
}

void sodium_free(void *ptr)
{
	REAL(sodium_free);
	double t0 = now_us();
	real(ptr);
	account("sodium_free", now_us() - t0);
}

int yaml_parser_parse(yaml_parser_t *parser, yaml_event_t *event)
{
	TIMED(yaml_parser_parse, int r, real(parser, event), r);
}

int yaml_parser_load(yaml_parser_t *parser, yaml_document_t *document)
{
	TIMED(yaml_parser_load, int r, real(parser, document), r);
}
