#include "base/secmem.h"

#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <sodium.h>

#define SCRATCH_SIZE (256u * 1024)
#define SCRATCH_ALIGN 16u

static _Thread_local struct {
	uint8_t *base; /* guarded, allocated on first use, kept until exit */
	size_t top;
	int failed;
} scratch;

int vf_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
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
