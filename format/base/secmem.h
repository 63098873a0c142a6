/* Guarded memory for secrets (libsodium): pages are locked, surrounded by
 * guard pages, and wiped on release. Everything that is key material
 * (identities, file keys, passphrases, derived keys) lives here. */
#ifndef VF_SECMEM_H
#define VF_SECMEM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/io.h"

/* Must be called once before anything else in the library: libsodium,
 * and OpenSSL's secure heap (private keys OpenSSL copies are kept there,
 * locked where RLIMIT_MEMLOCK allows). */
int vf_init(void);

/* Asks for OpenSSL's random generators to be wiped at exit (their state
 * cleansed in place): called by whatever makes OpenSSL draw random bytes
 * (vf_random, RSA operations). Thread-safe. */
void vf_wipe_random_at_exit(void);

/* Wipes OpenSSL's random generators in place now (what the exit does when
 * asked): the primary and the calling thread's two. A later draw
 * instantiates them again, from fresh entropy. */
void vf_wipe_random(void);

/* What every tool does first: umask 077 (files it creates are private),
 * no core dumps and no ptrace by other processes of the user
 * (RLIMIT_CORE 0, PR_SET_DUMPABLE 0), then vf_init. 0 or -1. */
int vf_harden_process(void);

/* sodium_malloc; NULL on failure. The memory is read-write. */
void *vf_secure_alloc(size_t len);
/* Wipes and releases; NULL is ignored. */
void vf_secure_free(void *p);
/* Guarded memory for large working buffers (the payload stream's ring),
 * in 2 MiB blocks the kernel may back with transparent huge pages: where
 * a page's first touch is dear (about 13 us a 4 KiB page on the project's
 * 2-CPU AMD EPYC VMs: 7 ms for 2 MiB), a huge page costs one fault
 * (0.15-0.3 ms for the same 2 MiB). Locked and excluded from core
 * dumps (libsodium's sodium_mlock; best effort, as sodium_malloc's), a
 * guard page on each side, zero-filled on allocation, wiped on release
 * (sodium_munlock). *cap receives the size to pass to vf_huge_free, at
 * least len. NULL on failure; vf_huge_free ignores NULL. */
void *vf_huge_alloc(size_t len, size_t *cap);
void vf_huge_free(void *p, size_t cap);
/* A per-thread stack of guarded memory for short-lived secrets (derived
 * keys, file keys, a first payload chunk): taking and giving back costs
 * nothing, where each vf_secure_alloc costs an mmap, mprotects and an
 * mlock. Blocks must be released in reverse order of allocation; when the
 * stack is full, vf_secure_alloc serves instead. Released blocks are
 * wiped. */
void *vf_scratch_alloc(size_t len);
void vf_scratch_free(void *p, size_t len);
/* Releases the calling thread's scratch stack (before a thread ends). */
void vf_scratch_release(void);

/* A guarded arena for many values that live and die together (a VM's
 * credentials): one sodium_malloc per 256 KiB instead of one per value.
 * Everything is wiped and released at once by vf_arena_free. */
struct vf_arena_block;
struct vf_arena {
	struct vf_arena_block *head;
};
void *vf_arena_alloc(struct vf_arena *a, size_t len);
void vf_arena_free(struct vf_arena *a);

/* A growable buffer in guarded memory, also a sink: where decrypted
 * plaintext of unknown length goes (vf_buf is ordinary heap, for public
 * bytes). Growing allocates a new guarded block, copies, and wipes and
 * releases the old one; the contents are always NUL-terminated. */
struct vf_secbuf {
	struct vf_sink sink;
	uint8_t *data;
	size_t len, cap;
};
void vf_secbuf_init(struct vf_secbuf *b);
enum vf_code vf_secbuf_append(struct vf_secbuf *b, const void *p, size_t len,
			      struct vf_error *err);
/* Hands the contents over (guarded, free with vf_secure_free; NULL when
 * empty) and leaves the buffer empty. */
uint8_t *vf_secbuf_take(struct vf_secbuf *b, size_t *len);
/* Wipes and releases the contents. */
void vf_secbuf_free(struct vf_secbuf *b);

/* Wipes len bytes of ordinary memory. */
void vf_wipe(void *p, size_t len);
/* Constant-time comparison: 1 if equal. */
int vf_equal(const void *a, const void *b, size_t len);

#endif
