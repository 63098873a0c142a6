/* A parallel loop for independent jobs (sealing thousands of secrets):
 * fn(ctx, i) for every i in [0, n), on one thread per CPU. */
#ifndef VF_PARALLEL_H
#define VF_PARALLEL_H

#include <stddef.h>

/* Returns 0, or the first non-zero value a job returned (after which no
 * new jobs start). Falls back to the calling thread alone if threads
 * cannot be started. */
int vf_parallel_for(size_t n, int (*fn)(void *ctx, size_t i), void *ctx);

/* The CPUs this process may run on: its affinity mask (taskset, a cgroup
 * cpuset), which can be fewer than the machine has online; 1 at least. */
unsigned vf_cpu_count(void);

#endif
