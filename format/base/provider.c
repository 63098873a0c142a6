/* The tools' OpenSSL provider: the few algorithms they use, taken from
 * OpenSSL's own default provider.
 *
 * Why: OpenSSL 3.0 builds every algorithm of an operation kind the first
 * time one of that kind is fetched (every cipher, about 130 of them, to
 * get ChaCha20-Poly1305: half a millisecond; every key manager for X25519;
 * every digest for HKDF), and a short run (decrypting one secret) paid for
 * all of them: about 0.6 ms of its 1.6 ms of own work (bench/README.md,
 * "Where a short run's own time goes").
 *
 * How: the default provider is loaded into a library context of its own
 * (source), its algorithm tables are read with
 * OSSL_PROVIDER_query_operation, and the entries the tools use are copied
 * into tables that a built-in provider of ours hands out in the default
 * library context (the NULL one, which every call in format/ uses). Once a
 * provider is loaded there, OpenSSL no longer falls back to loading the
 * default provider into it, so a fetch builds only the entries below.
 *
 * Why it is sound:
 * - Every implementation is OpenSSL's own code, unchanged; only the list
 *   that names them is shorter. Our provider's context is the default
 *   provider's own (OSSL_PROVIDER_get0_provider_ctx), so each
 *   implementation runs with exactly the context it was written for; the
 *   things it fetches itself (HKDF's and HMAC's SHA-256, scrypt's PBKDF2,
 *   RSA-OAEP's digests, a DRBG's digest) are fetched from the source
 *   context.
 * - The source context serves those inner fetches from a second instance
 *   of our provider, with its own short list (`IN_SOURCE` below). The
 *   default provider there is loaded, read and then unloaded: its
 *   activation is dropped, so no fetch there builds all its algorithms of
 *   a kind (every digest, for HKDF's SHA-256: about 0.17 ms of a short
 *   run), but the context's provider store keeps its reference, so the
 *   provider and its context stay alive and initialised until the source
 *   context is freed (OpenSSL tears a provider down only when freed, never
 *   when deactivated). Its implementations keep working as before: they
 *   call only their own code and the core functions of their handle.
 * - Lifetimes: the source context lives until exit, and is freed there
 *   only when OPENSSL_cleanup runs too (format/base/secmem.c,
 *   openssl_exit), just before it: that cleanses its random generators.
 *   What the default context still holds from it (its DRBG's digest, the
 *   HMAC template's) is reference-counted, keeps the default provider
 *   alive, and is freed by OPENSSL_cleanup without touching the freed
 *   context (the sanitizer builds run exactly that at every exit). Our
 *   provider's teardown does nothing, since the context it was given is
 *   not its own.
 * - Randomness stays OpenSSL's DRBG, seeded from the operating system
 *   (SEED-SRC, getrandom): only its type changes, from CTR-DRBG (AES-256)
 *   to HASH-DRBG (SHA-256), both NIST SP 800-90A designs at 256-bit
 *   strength. A CTR-DRBG would fetch AES-256-CTR and so build every cipher
 *   again in the source context.
 * - No configuration is read (vf_init), so neither a FIPS provider nor any
 *   other can be configured in: the same algorithms the default provider
 *   served before, from the same library.
 * - An algorithm not listed here cannot be fetched at all in the default
 *   context: a new use must be added to `wanted` (tests/unit/provider_test.c
 *   checks both halves). */
#include "base/provider.h"

#include <string.h>
#include <strings.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#define PROVIDER_NAME "vf-subset"
/* The most entries of one operation kind below, with room to spare. */
#define PER_OPERATION 8

/* Where an algorithm is offered: to the tools (the default context), to
 * OpenSSL's own implementations (the source context), or both. */
enum { IN_TOOLS = 1, IN_SOURCE = 2, IN_BOTH = 3 };

struct wanted {
	int operation;
	const char *name; /* any one of the algorithm's names */
	unsigned in;
};

/* What format/ fetches (format/base/crypto.c, format/age/ssh.c), and what
 * those implementations fetch in their turn. */
static const struct wanted wanted[] = {
	{OSSL_OP_CIPHER, "ChaCha20-Poly1305", IN_TOOLS},
	{OSSL_OP_CIPHER, "AES-256-GCM", IN_TOOLS}, /* SOPS files */
	/* HMAC, the DRBGs, scrypt and RSA-OAEP hash with SHA-256. */
	{OSSL_OP_DIGEST, "SHA2-256", IN_BOTH},
	/* RSA's OAEP mode starts from its default digest, SHA-1, which
	 * format/age/ssh.c replaces with SHA-256 at once; never used. */
	{OSSL_OP_DIGEST, "SHA1", IN_SOURCE},
	{OSSL_OP_DIGEST, "SHA2-512", IN_TOOLS},
	{OSSL_OP_DIGEST, "SHA3-256", IN_TOOLS},
	{OSSL_OP_DIGEST, "SHA3-512", IN_TOOLS},
	{OSSL_OP_DIGEST, "SHAKE-128", IN_TOOLS},
	{OSSL_OP_DIGEST, "SHAKE-256", IN_TOOLS},
	{OSSL_OP_MAC, "HMAC", IN_BOTH}, /* HKDF's extract and expand, too */
	{OSSL_OP_KDF, "HKDF", IN_TOOLS},
	{OSSL_OP_KDF, "SCRYPT", IN_TOOLS},
	{OSSL_OP_KDF, "PBKDF2", IN_SOURCE}, /* scrypt's first and last step */
	/* A generator in each context: RSA-OAEP draws in the source one. */
	{OSSL_OP_RAND, "HASH-DRBG", IN_BOTH},
	{OSSL_OP_RAND, "SEED-SRC", IN_BOTH},
	{OSSL_OP_KEYMGMT, "X25519", IN_TOOLS},
	{OSSL_OP_KEYMGMT, "RSA", IN_TOOLS}, /* ssh-rsa recipients and identities */
	{OSSL_OP_KEYEXCH, "X25519", IN_TOOLS},
	{OSSL_OP_ASYM_CIPHER, "RSA", IN_TOOLS},
};

static OSSL_LIB_CTX *source;
/* The default provider's own context, which both instances of ours hand
 * to OpenSSL as theirs. */
static void *default_provctx;
/* Ours, in the default context: never unloaded (OPENSSL_cleanup frees the
 * default context, after which nothing may be unloaded). Held here, as is
 * the source context's instance, so that the references stay reachable
 * for the leak checker. */
static OSSL_PROVIDER *subset, *inner;
/* Per place (0: tools, 1: source) and operation, the copied entries and an
 * all-zero terminator. */
static OSSL_ALGORITHM tables[2][OSSL_OP__HIGHEST + 1][PER_OPERATION + 1];

/* names: OpenSSL's colon-separated list ("SHA2-256:SHA-256:SHA256:..."). */
static int has_name(const char *names, const char *name)
{
	size_t len = strlen(name);
	for (const char *p = names; *p;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == len && strncasecmp(p, name, len) == 0)
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

static const OSSL_ALGORITHM *query(int place, int operation, int *no_cache)
{
	*no_cache = 0;
	if (operation < 0 || operation > OSSL_OP__HIGHEST ||
	    !tables[place][operation][0].algorithm_names)
		return NULL;
	return tables[place][operation];
}

/* The context is the default provider's: both instances get the same one,
 * so each tells its place by its own query function. */
static const OSSL_ALGORITHM *tools_query(void *provctx, int operation, int *no_cache)
{
	(void)provctx;
	return query(0, operation, no_cache);
}

static const OSSL_ALGORITHM *source_query(void *provctx, int operation, int *no_cache)
{
	(void)provctx;
	return query(1, operation, no_cache);
}

/* The context is the default provider's, torn down with it. */
static void subset_teardown(void *provctx)
{
	(void)provctx;
}

static const OSSL_DISPATCH tools_dispatch[] = {
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))tools_query},
	{OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))subset_teardown},
	{0, NULL},
};

static const OSSL_DISPATCH source_dispatch[] = {
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))source_query},
	{OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))subset_teardown},
	{0, NULL},
};

static int tools_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		      const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = tools_dispatch;
	*provctx = default_provctx;
	return *provctx != NULL;
}

static int source_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		       const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = source_dispatch;
	*provctx = default_provctx;
	return *provctx != NULL;
}

/* Copies the default provider's entries for `wanted` into `tables`;
 * 0 when every wanted algorithm was found. */
static int copy_wanted(OSSL_PROVIDER *from)
{
	size_t used[2][OSSL_OP__HIGHEST + 1] = {{0}};
	int missing = 0;
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		int op = wanted[i].operation, no_cache = 0, found = 0;
		const OSSL_ALGORITHM *a = OSSL_PROVIDER_query_operation(from, op, &no_cache);
		for (; a && a->algorithm_names; a++) {
			if (!has_name(a->algorithm_names, wanted[i].name))
				continue;
			for (int place = 0; place < 2; place++) {
				size_t *n = &used[place][op];
				if (!(wanted[i].in & (1u << place)) || *n == PER_OPERATION)
					continue;
				tables[place][op][(*n)++] = *a;
				found = 1;
			}
		}
		missing |= !found;
	}
	return missing ? -1 : 0;
}

void vf_provider_teardown(void)
{
	/* The source context goes first, while OpenSSL is still up: its
	 * random generators (RSA-OAEP draws there) are cleansed as they are
	 * freed. What the default context still holds from it (the DRBG's
	 * digest, the methods' provider) is reference-counted and outlives
	 * the context; freeing those later, in OPENSSL_cleanup, touches only
	 * the objects themselves. */
	if (inner)
		OSSL_PROVIDER_unload(inner); /* our reference; the store's goes with it */
	if (source)
		OSSL_LIB_CTX_free(source);
	source = NULL;
	inner = NULL;
	default_provctx = NULL;
}

OSSL_LIB_CTX *vf_provider_source(void)
{
	return source;
}

/* The source context: the default provider initialised but no longer
 * active (see the top of this file), and our source list in its place. */
static int setup_source(void)
{
	source = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *def = source ? OSSL_PROVIDER_load(source, "default") : NULL;
	if (!def)
		return -1;
	default_provctx = OSSL_PROVIDER_get0_provider_ctx(def);
	int rc = copy_wanted(def);
	/* Our reference and activation go; the store's reference stays. */
	if (OSSL_PROVIDER_unload(def) != 1 || OSSL_PROVIDER_available(source, "default"))
		rc = -1;
	if (rc == 0 && (OSSL_PROVIDER_add_builtin(source, PROVIDER_NAME, source_init) != 1 ||
			!(inner = OSSL_PROVIDER_load(source, PROVIDER_NAME))))
		rc = -1;
	return rc;
}

int vf_provider_setup(void)
{
	if (source)
		return 0;
	if (setup_source() != 0)
		return -1;
	/* Before any random byte is asked for: the type is read when the DRBG
	 * is made. In the source context too, where RSA-OAEP draws its seed. */
	if (RAND_set_DRBG_type(NULL, "HASH-DRBG", NULL, NULL, "SHA256") != 1 ||
	    RAND_set_DRBG_type(source, "HASH-DRBG", NULL, NULL, "SHA256") != 1)
		return -1;
	if (OSSL_PROVIDER_add_builtin(NULL, PROVIDER_NAME, tools_init) != 1 ||
	    !(subset = OSSL_PROVIDER_load(NULL, PROVIDER_NAME)))
		return -1;
	return 0;
}
