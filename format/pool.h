/* A tiny fork-join pool: run fn over items [0, n) split across the
 * calling thread and a few workers, and wait for all of them. */
#ifndef VF_POOL_H
#define VF_POOL_H

#include <stddef.h>

#define VF_POOL_MAX 4

/* fn(arg, slot, begin, end): slot is 0 for the caller, 1.. for workers,
 * so per-thread state can be indexed by it. */
typedef void (*vf_pool_fn)(void *arg, unsigned slot, size_t begin, size_t end);

struct vf_pool;

/* Starts threads - 1 workers (threads <= VF_POOL_MAX). NULL on failure,
 * in which case callers run everything on slot 0. */
struct vf_pool *vf_pool_new(unsigned threads);
void vf_pool_run(struct vf_pool *pool, vf_pool_fn fn, void *arg, size_t n);
void vf_pool_free(struct vf_pool *pool);

#endif
