#include "base/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/secmem.h"

#define MAX_THREADS 8

struct loop {
	size_t n;
	int (*fn)(void *ctx, size_t i);
	void *ctx;
	atomic_size_t next;
	atomic_int status;
};

static void *work(struct loop *l);

static void *run(void *p)
{
	work(p);
	/* This thread ends here: its scratch stack would be lost otherwise. */
	vf_scratch_release();
	return NULL;
}

static void *work(struct loop *l)
{
	while (atomic_load(&l->status) == 0) {
		size_t i = atomic_fetch_add(&l->next, 1);
		if (i >= l->n)
			break;
		int rc = l->fn(l->ctx, i);
		if (rc) {
			int zero = 0;
			atomic_compare_exchange_strong(&l->status, &zero, rc);
		}
	}
	return NULL;
}

unsigned vf_cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 1 ? (unsigned)cpus : 1;
}

int vf_parallel_for(size_t n, int (*fn)(void *ctx, size_t i), void *ctx)
{
	struct loop l = {.n = n, .fn = fn, .ctx = ctx};
	size_t threads = vf_cpu_count();
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (threads > n)
		threads = n;
	pthread_t helpers[MAX_THREADS];
	size_t started = 0;
	for (; started + 1 < threads; started++)
		if (pthread_create(&helpers[started], NULL, run, &l) != 0)
			break;
	work(&l);
	for (size_t i = 0; i < started; i++)
		pthread_join(helpers[i], NULL);
	return atomic_load(&l.status);
}
