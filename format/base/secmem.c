#include "base/secmem.h"
#include "base/provider.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

/* One payload chunk (64 KiB: the one-chunk batch of a small file) and
 * room for the keys around it. No more: sodium_malloc locks, and so
 * faults in, every page at once, and a short run paid for 256 KiB of
 * them (about 0.15 ms, a twentieth of decrypting a secret). Larger
 * requests go to vf_secure_alloc. */
#define SCRATCH_SIZE (80u * 1024)
#define SCRATCH_ALIGN 16u

static _Thread_local struct {
	uint8_t *base; /* guarded, allocated on first use, kept until exit */
	size_t top;
	int failed;
} scratch;

/* OpenSSL's secure heap, for its own copies of private keys (an X25519 or
 * RSA EVP_PKEY's private half, allocated with OPENSSL_secure_malloc):
 * 256 KiB holds the live keys of a run (an RSA-4096 key takes about 4 KiB
 * of it, an X25519 key 32 bytes) with room to spare, and OpenSSL does not
 * fall back to malloc when it is full. Minimum block 32 bytes: one X25519
 * key. */
#define OPENSSL_SECURE_HEAP (256u * 1024)
#define OPENSSL_SECURE_MIN 32

/* Best effort, and silent: where mmap fails OpenSSL keeps using malloc
 * (as before), and where RLIMIT_MEMLOCK forbids mlock (result 2) the heap
 * is still used, guarded and wiped on free, only not locked. Neither is
 * worth a warning on every run of a tool; libsodium makes the same choice
 * for its own mlock. */
static void openssl_secure_heap(void)
{
	if (!CRYPTO_secure_malloc_initialized())
		(void)CRYPTO_secure_malloc_init(OPENSSL_SECURE_HEAP, OPENSSL_SECURE_MIN);
}

/* Builds whose leak checker reports what OpenSSL still holds at exit. */
#if defined(__SANITIZE_ADDRESS__)
#define LEAK_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEAK_CHECKED 1
#endif
#endif
#ifndef LEAK_CHECKED
#define LEAK_CHECKED 0
#endif

static atomic_int random_used;

void vf_wipe_random_at_exit(void)
{
	atomic_store(&random_used, 1);
}

/* Uninstantiating a Hash_DRBG cleanses its working state (V and C) as
 * OPENSSL_cleanup's freeing would, without taking all of OpenSSL down,
 * which cost an encrypt about 45 us of its 3 ms (bench/README.md). The
 * primary and the calling thread's two are wiped; another thread's are
 * freed, and cleansed, by OpenSSL when that thread ends. The state lives
 * in OpenSSL's secure heap (vf_init), so it is never swapped out or in a
 * core dump; wiping keeps it from outliving its use in memory too.
 * RAND_get0_public makes the public generator if no RSA operation did: a
 * few microseconds, in runs that drew random bytes only. */
void vf_wipe_random(void)
{
	EVP_RAND_CTX *const generators[] = {RAND_get0_private(NULL), RAND_get0_public(NULL),
					    RAND_get0_primary(NULL)};
	for (size_t i = 0; i < sizeof(generators) / sizeof(generators[0]); i++)
		if (generators[i])
			(void)EVP_RAND_uninstantiate(generators[i]);
}

/* At exit: the generators are wiped whenever one may exist
 * (vf_wipe_random_at_exit was called: a random byte was drawn, or an RSA
 * operation ran). The sanitizer builds run OPENSSL_cleanup instead, whose
 * leak checker would otherwise report what OpenSSL keeps; it cleanses the
 * generators as it frees them. Otherwise (decrypt, get, check) OpenSSL
 * holds no secret at exit: the private keys it was given were freed, and
 * cleansed, by their owners. */
static void openssl_exit(void)
{
	if (LEAK_CHECKED)
		OPENSSL_cleanup();
	else if (atomic_load(&random_used))
		vf_wipe_random();
}

/* OpenSSL is set up for what the tools use and nothing else, before its
 * first use (which would otherwise set it up in full):
 *
 * - NO_LOAD_CONFIG: no openssl.cnf, and no OPENSSL_CONF from the
 *   environment. A configuration can load any provider or engine module
 *   into the process, and varinject runs as root; the tools use a fixed
 *   set of algorithms from OpenSSL's built-in default provider, which an
 *   administrator has no reason to swap (docs/threat-model.md). Reading
 *   the file also cost about 0.15 ms of every run.
 * - NO_ADD_ALL_CIPHERS, NO_ADD_ALL_DIGESTS: the legacy name tables
 *   (EVP_get_cipherbyname) are not filled. Nothing here looks a name up
 *   there; the tools fetch from the provider. OpenSSL 3.0 copies those
 *   tables into its name map on the first fetch and then walks that map
 *   once per algorithm it constructs: the smaller map saves about 0.5 ms.
 * - NO_LOAD_CRYPTO_STRINGS: OpenSSL loads all its error strings
 *   into a hash table the first time it marks its error stack (every run
 *   does), about 0.25 ms; an OpenSSL failure is reported by its code
 *   instead (format/base/crypto.c, openssl_fail).
 *
 * Then the default library context gets the tools' own provider, which
 * offers only the algorithms they use (format/base/provider.c): OpenSSL
 * 3.0 builds every algorithm of a kind on its first fetch, and every
 * cipher alone cost a short run about 0.5 ms.
 *
 * - NO_ATEXIT: OPENSSL_cleanup does not run at exit (openssl_exit below
 *   wipes what needs wiping): it costs about 0.05 ms, a twentieth of
 *   decrypting a secret, to free what the exit frees anyway. */
static int openssl_init(void)
{
	const uint64_t opts = OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
			      OPENSSL_INIT_NO_ADD_ALL_DIGESTS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
			      OPENSSL_INIT_NO_ATEXIT;
	static int registered;
	if (OPENSSL_init_crypto(opts, NULL) != 1)
		return -1;
	if (!registered && atexit(openssl_exit) != 0)
		return -1;
	registered = 1;
	return vf_provider_setup();
}

int vf_init(void)
{
	if (openssl_init() != 0 || sodium_init() < 0)
		return -1;
	openssl_secure_heap();
	return 0;
}

int vf_harden_process(void)
{
	umask(077);
	struct rlimit none = {0, 0};
	if (setrlimit(RLIMIT_CORE, &none) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return -1;
	return vf_init();
}

void *vf_secure_alloc(size_t len)
{
	return sodium_malloc(len ? len : 1);
}

void vf_secure_free(void *p)
{
	sodium_free(p);
}

#define HUGE_PAGE ((size_t)2 << 20)

/* sodium_malloc cannot serve these: its blocks are sized to the page, not
 * aligned to 2 MiB, and it fills every page as it allocates (each one
 * touched, one fault per 4 KiB). So: a mapping with room to align, its
 * unused ends given back, a guard page left PROT_NONE on each side (the
 * aligned middle stays one mapping of whole huge pages, which is what
 * the kernel needs to back it with them), then libsodium's lock. */
void *vf_huge_alloc(size_t len, size_t *cap)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (!len || len > SIZE_MAX / 2 - 2 * HUGE_PAGE)
		return NULL;
	size_t size = (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	size_t span = size + HUGE_PAGE + page; /* room for one guard page each side */
	uint8_t *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *p = (uint8_t *)(((uintptr_t)raw + page + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	uint8_t *lo = p - page, *hi = p + size + page, *end = raw + span;
	if ((lo > raw && munmap(raw, (size_t)(lo - raw)) != 0) ||
	    (end > hi && munmap(hi, (size_t)(end - hi)) != 0) ||
	    mprotect(p, size, PROT_READ | PROT_WRITE) != 0) {
		munmap(raw, span); /* what is left of it: unmapped parts are skipped */
		return NULL;
	}
	/* Advice only: without transparent huge pages (or with them off)
	 * this is ordinary memory, which is still correct. */
	(void)madvise(p, size, MADV_HUGEPAGE);
	(void)sodium_mlock(p, size);
	*cap = size;
	return p;
}

void vf_huge_free(void *p, size_t cap)
{
	if (!p)
		return;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	(void)sodium_munlock(p, cap); /* wipes first, locked or not */
	munmap((uint8_t *)p - page, cap + 2 * page);
}

void vf_wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}

int vf_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

void vf_scratch_release(void)
{
	if (scratch.base && scratch.top == 0) {
		sodium_free(scratch.base);
		scratch.base = NULL;
	}
}

static size_t aligned(size_t len)
{
	return (len + SCRATCH_ALIGN - 1) & ~(size_t)(SCRATCH_ALIGN - 1);
}

void *vf_scratch_alloc(size_t len)
{
	if (!scratch.base && !scratch.failed) {
		scratch.base = sodium_malloc(SCRATCH_SIZE);
		scratch.failed = !scratch.base;
	}
	size_t need = aligned(len ? len : 1);
	if (!scratch.base || need > SCRATCH_SIZE - scratch.top)
		return vf_secure_alloc(len);
	void *p = scratch.base + scratch.top;
	scratch.top += need;
	return p;
}

void vf_scratch_free(void *p, size_t len)
{
	if (!p)
		return;
	uint8_t *b = p;
	if (!scratch.base || b < scratch.base || b >= scratch.base + SCRATCH_SIZE) {
		vf_secure_free(p);
		return;
	}
	size_t need = aligned(len ? len : 1);
	sodium_memzero(b, need);
	/* Only the top block can be given back; anything else is a misuse
	 * that costs space until the blocks above it go too. */
	if (b + need == scratch.base + scratch.top)
		scratch.top = (size_t)(b - scratch.base);
}

#define ARENA_BLOCK (256u * 1024)

struct vf_arena_block {
	struct vf_arena_block *next;
	size_t cap, used;
	uint8_t *data;
};

void *vf_arena_alloc(struct vf_arena *a, size_t len)
{
	size_t need = aligned(len ? len : 1);
	struct vf_arena_block *b = a->head;
	if (!b || b->cap - b->used < need) {
		size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
		b = sodium_malloc(sizeof(*b));
		if (!b)
			return NULL;
		b->data = sodium_malloc(cap);
		if (!b->data) {
			sodium_free(b);
			return NULL;
		}
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += need;
	return p;
}

void vf_arena_free(struct vf_arena *a)
{
	while (a->head) {
		struct vf_arena_block *next = a->head->next;
		sodium_free(a->head->data); /* wipes */
		sodium_free(a->head);
		a->head = next;
	}
}

/* The first block holds a small secret without growing; doubling keeps the
 * copies linear in the final size. */
#define SECBUF_FIRST 4096u

static enum vf_code secbuf_reserve(struct vf_secbuf *b, size_t extra, struct vf_error *err)
{
	if (b->cap - b->len >= extra)
		return VF_OK;
	if (extra > SIZE_MAX / 2 - b->len)
		return vf_fail(err, VF_E_NOMEM, "buffer too large");
	size_t cap = b->cap ? b->cap : SECBUF_FIRST;
	while (cap - b->len < extra)
		cap *= 2;
	/* Never realloc: the old block is wiped by sodium_free. */
	uint8_t *p = sodium_malloc(cap);
	if (!p)
		return vf_fail(err, VF_E_NOMEM, "out of memory (guarded)");
	if (b->len)
		memcpy(p, b->data, b->len);
	sodium_free(b->data);
	b->data = p;
	b->cap = cap;
	return VF_OK;
}

enum vf_code vf_secbuf_append(struct vf_secbuf *b, const void *p, size_t len,
			      struct vf_error *err)
{
	enum vf_code rc = secbuf_reserve(b, len + 1, err);
	if (rc != VF_OK)
		return rc;
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = 0;
	return VF_OK;
}

static enum vf_code secbuf_sink_write(struct vf_sink *sink, const struct iovec *iov, int iovcnt,
				      struct vf_error *err)
{
	struct vf_secbuf *b = (struct vf_secbuf *)sink;
	for (int i = 0; i < iovcnt; i++) {
		enum vf_code rc = vf_secbuf_append(b, iov[i].iov_base, iov[i].iov_len, err);
		if (rc != VF_OK)
			return rc;
	}
	return VF_OK;
}

static enum vf_code secbuf_sink_finish(struct vf_sink *sink, struct vf_error *err)
{
	(void)sink;
	(void)err;
	return VF_OK;
}

void vf_secbuf_init(struct vf_secbuf *b)
{
	memset(b, 0, sizeof(*b));
	b->sink.write = secbuf_sink_write;
	b->sink.finish = secbuf_sink_finish;
}

uint8_t *vf_secbuf_take(struct vf_secbuf *b, size_t *len)
{
	uint8_t *p = b->data;
	*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void vf_secbuf_free(struct vf_secbuf *b)
{
	sodium_free(b->data); /* wipes; NULL is ignored */
	b->data = NULL;
	b->len = b->cap = 0;
}
