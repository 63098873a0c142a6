/* A parallel loop for independent jobs (sealing thousands of secrets):
 * fn(ctx, i) for every i in [0, n), on one thread per CPU. */
#ifndef VF_PARALLEL_H
#define VF_PARALLEL_H

#include <stddef.h>

#include "base/error.h"

/* Returns 0, or the first non-zero value a job returned (after which no
 * new jobs start). Falls back to the calling thread alone if threads
 * cannot be started. */
int vf_parallel_for(size_t n, int (*fn)(void *ctx, size_t i), void *ctx);

/* A job that fails with a reason: VF_OK, or a code with err set. */
typedef enum vf_code (*vf_try_fn)(void *ctx, size_t i, struct vf_error *err);

/* fn(ctx, i, err) for every i in [0, n): on one thread per CPU when n is
 * at least min_parallel (below it a thread costs more than it saves), in
 * order on the calling thread otherwise. Returns VF_OK, or the failure of
 * the lowest i that failed, with its message in err: the failure a loop
 * in order would have met first, whichever thread met its own first
 * (jobs start in order, and none starts after a failure). */
enum vf_code vf_parallel_try(size_t n, size_t min_parallel, vf_try_fn fn, void *ctx,
			     struct vf_error *err);

/* The CPUs this process may run on: its affinity mask (taskset, a cgroup
 * cpuset), which can be fewer than the machine has online; 1 at least. */
unsigned vf_cpu_count(void);

#endif
