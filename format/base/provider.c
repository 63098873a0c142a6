/* The tools' OpenSSL provider: the few algorithms they use, taken from
 * OpenSSL's own default provider.
 *
 * Why: OpenSSL 3.0 builds every algorithm of an operation kind the first
 * time one of that kind is fetched (every cipher, about 130 of them, to
 * get ChaCha20-Poly1305: half a millisecond; every key manager for X25519;
 * every digest for HKDF's SHA-256), and a short run (decrypting one
 * secret) paid for all of them: about 0.8 ms of its 1.6 ms of own work
 * (bench/README.md, "Where a short run's own time goes").
 *
 * How: the default provider is loaded into the default library context
 * (the NULL one, which every call in format/ uses), its algorithm tables
 * are read with OSSL_PROVIDER_query_operation, and it is unloaded again.
 * The entries the tools use are copied into tables that two built-in
 * providers of ours hand out in that context instead: one loaded at once
 * with what every run with X25519 keys uses, one loaded on first need
 * with the rest. Since a provider was loaded there, OpenSSL no longer
 * falls back to loading the default provider, so a fetch builds only the
 * entries below.
 *
 * Why it is sound:
 * - Every implementation is OpenSSL's own code, unchanged; only the list
 *   that names them is shorter. Our provider's context is the default
 *   provider's own (OSSL_PROVIDER_get0_provider_ctx), so each
 *   implementation runs with exactly the context it was written for. The
 *   things it fetches itself (HKDF's HMAC, HMAC's SHA-256, scrypt's
 *   PBKDF2, RSA-OAEP's digests, a DRBG's digest) come from the context it
 *   was loaded into, the default one, as they always did: so they are
 *   listed below too.
 * - Unloading drops the default provider's activation, so it offers
 *   nothing, but not its initialisation: the context's provider store
 *   keeps a reference, and OpenSSL tears a provider down only when the
 *   last reference goes (in OPENSSL_cleanup), never when it is
 *   deactivated. Its implementations need nothing else from it: they run
 *   their own code, with their context and the core functions of its
 *   handle, which stay.
 * - Lifetimes: everything lives in the default context until exit. Our
 *   provider's teardown does nothing, since the context it was given is
 *   not its own; the default provider's frees it when OPENSSL_cleanup
 *   frees the provider store. Whatever of ours is freed after that (a
 *   method, a key, a generator) is only freed, never run, and freeing
 *   does not use the provider's context (the sanitizer builds run
 *   OPENSSL_cleanup at every exit).
 * - Randomness stays OpenSSL's DRBG, seeded from the operating system
 *   (SEED-SRC, getrandom): only its type changes, from CTR-DRBG (AES-256)
 *   to HASH-DRBG (SHA-256), both NIST SP 800-90A designs at 256-bit
 *   strength. A CTR-DRBG would fetch AES-256-CTR, which is not listed.
 * - No configuration is read (vf_init), so neither a FIPS provider nor any
 *   other can be configured in: the same algorithms the default provider
 *   served before, from the same library.
 * - An algorithm not listed here cannot be fetched at all: a new use must
 *   be added to `core` or `more`, and a use of `more` must call
 *   vf_provider_more first (tests/unit/provider_test.c checks all three). */
#include "base/provider.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#define PROVIDER_NAME "vf-subset"
#define MORE_NAME "vf-subset-more"
/* The most entries of one operation kind below, with room to spare. */
#define PER_OPERATION 8

struct wanted {
	int operation;
	const char *name; /* any one of the algorithm's names */
};

/* What format/ fetches (format/base/crypto.c, format/age/ssh.c), and what
 * those implementations fetch in their turn, in two lists. OpenSSL 3.0
 * builds every entry of an operation kind on the first fetch of that kind
 * (every digest listed, to get SHA-256: about 5 us each), so what a run
 * with X25519 keys uses, every encrypt, decrypt and get, is offered from
 * the start, and the rest only once a run asks for one of them
 * (vf_provider_more). */
static const struct wanted core[] = {
	{OSSL_OP_CIPHER, "ChaCha20-Poly1305"},
	{OSSL_OP_DIGEST, "SHA2-256"},
	{OSSL_OP_MAC, "HMAC"}, /* HKDF's extract and expand too */
	{OSSL_OP_KDF, "HKDF"},
	{OSSL_OP_RAND, "HASH-DRBG"},
	{OSSL_OP_RAND, "SEED-SRC"},
	{OSSL_OP_KEYMGMT, "X25519"},
	{OSSL_OP_KEYEXCH, "X25519"},
};

/* SOPS files, ssh-ed25519 conversion, ssh-rsa, scrypt passphrases and
 * post-quantum keys. */
static const struct wanted more[] = {
	{OSSL_OP_CIPHER, "AES-256-GCM"}, /* SOPS files */
	{OSSL_OP_DIGEST, "SHA2-512"},
	{OSSL_OP_DIGEST, "SHA3-256"},
	{OSSL_OP_DIGEST, "SHA3-512"},
	{OSSL_OP_DIGEST, "SHAKE-128"},
	{OSSL_OP_DIGEST, "SHAKE-256"},
	/* RSA's OAEP mode starts from its default digest, SHA-1, which
	 * format/age/ssh.c replaces with SHA-256 at once; never used. */
	{OSSL_OP_DIGEST, "SHA1"},
	{OSSL_OP_KDF, "SCRYPT"},
	{OSSL_OP_KDF, "PBKDF2"}, /* scrypt's first and last step */
	{OSSL_OP_KEYMGMT, "RSA"}, /* ssh-rsa recipients and identities */
	{OSSL_OP_ASYM_CIPHER, "RSA"},
};

/* The default provider's own context, which ours hand to OpenSSL. */
static void *default_provctx;
/* Ours: never unloaded (OPENSSL_cleanup frees the default context, after
 * which nothing may be unloaded). Held here so that the references stay
 * reachable for the leak checker. */
static OSSL_PROVIDER *subset, *subset_more;
/* Per list and operation, the copied entries and an all-zero terminator. */
typedef OSSL_ALGORITHM table_set[OSSL_OP__HIGHEST + 1][PER_OPERATION + 1];
static table_set core_tables, more_tables;

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

static const OSSL_ALGORITHM *query(table_set tables, int operation, int *no_cache)
{
	*no_cache = 0;
	if (operation < 0 || operation > OSSL_OP__HIGHEST || !tables[operation][0].algorithm_names)
		return NULL;
	return tables[operation];
}

/* Two providers, one per list, told apart by their query function: both
 * have the default provider's context, which their implementations need. */
static const OSSL_ALGORITHM *core_query(void *provctx, int operation, int *no_cache)
{
	(void)provctx;
	return query(core_tables, operation, no_cache);
}

static const OSSL_ALGORITHM *more_query(void *provctx, int operation, int *no_cache)
{
	(void)provctx;
	return query(more_tables, operation, no_cache);
}

/* The context is the default provider's, torn down with it. */
static void subset_teardown(void *provctx)
{
	(void)provctx;
}

static const OSSL_DISPATCH core_dispatch[] = {
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))core_query},
	{OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))subset_teardown},
	{0, NULL},
};

static const OSSL_DISPATCH more_dispatch[] = {
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))more_query},
	{OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))subset_teardown},
	{0, NULL},
};

static int core_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		     const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = core_dispatch;
	*provctx = default_provctx;
	return *provctx != NULL;
}

static int more_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		     const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = more_dispatch;
	*provctx = default_provctx;
	return *provctx != NULL;
}

/* Copies the default provider's entries for list into tables; 0 when
 * every listed algorithm was found. */
static int copy_wanted(OSSL_PROVIDER *from, const struct wanted *list, size_t n,
		       table_set tables)
{
	size_t used[OSSL_OP__HIGHEST + 1] = {0};
	int missing = 0;
	for (size_t i = 0; i < n; i++) {
		int op = list[i].operation, no_cache = 0, found = 0;
		const OSSL_ALGORITHM *a = OSSL_PROVIDER_query_operation(from, op, &no_cache);
		for (; a && a->algorithm_names; a++) {
			if (!has_name(a->algorithm_names, list[i].name) || used[op] == PER_OPERATION)
				continue;
			tables[op][used[op]++] = *a;
			found = 1;
		}
		missing |= !found;
	}
	return missing ? -1 : 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The default provider initialised but no longer active (see the top of
 * this file): its context and tables stay for ours to hand out. */
static int read_default_provider(void)
{
	OSSL_PROVIDER *def = OSSL_PROVIDER_load(NULL, "default");
	if (!def)
		return -1;
	default_provctx = OSSL_PROVIDER_get0_provider_ctx(def);
	int rc = copy_wanted(def, core, COUNT(core), core_tables) |
		 copy_wanted(def, more, COUNT(more), more_tables);
	/* Our reference and activation go; the store's reference stays. */
	if (OSSL_PROVIDER_unload(def) != 1 || OSSL_PROVIDER_available(NULL, "default"))
		rc = -1;
	return default_provctx ? rc : -1;
}

int vf_provider_setup(void)
{
	if (subset)
		return 0;
	if (read_default_provider() != 0)
		return -1;
	/* Before any random byte is asked for: the type is read when the DRBG
	 * is made. */
	if (RAND_set_DRBG_type(NULL, "HASH-DRBG", NULL, NULL, "SHA256") != 1)
		return -1;
	if (OSSL_PROVIDER_add_builtin(NULL, PROVIDER_NAME, core_init) != 1 ||
	    OSSL_PROVIDER_add_builtin(NULL, MORE_NAME, more_init) != 1 ||
	    !(subset = OSSL_PROVIDER_load(NULL, PROVIDER_NAME)))
		return -1;
	return 0;
}

static pthread_once_t more_once = PTHREAD_ONCE_INIT;

static void load_more(void)
{
	subset_more = OSSL_PROVIDER_load(NULL, MORE_NAME);
}

/* A fetch that misses looks in every provider loaded by then, including
 * one loaded after that kind's first fetch: OpenSSL keeps, per provider,
 * which kinds it has built. */
int vf_provider_more(void)
{
	if (!subset)
		return -1;
	pthread_once(&more_once, load_more);
	return subset_more ? 0 : -1;
}
