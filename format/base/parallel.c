#include "base/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* vf_parallel_try's state: the lowest failure so far, and its message. */
struct tries {
	vf_try_fn fn;
	void *ctx;
	pthread_mutex_t mu;
	size_t failed; /* SIZE_MAX while none has */
	struct vf_error err;
};

static int try_one(void *p, size_t i)
{
	struct tries *t = p;
	struct vf_error err;
	err.code = VF_E_IO;
	err.msg[0] = '\0';
	if (t->fn(t->ctx, i, &err) == VF_OK)
		return 0;
	pthread_mutex_lock(&t->mu);
	if (i < t->failed) {
		t->failed = i;
		t->err = err;
	}
	pthread_mutex_unlock(&t->mu);
	return 1;
}

enum vf_code vf_parallel_try(size_t n, size_t min_parallel, vf_try_fn fn, void *ctx,
			     struct vf_error *err)
{
	if (n < min_parallel || vf_cpu_count() < 2) {
		for (size_t i = 0; i < n; i++) {
			enum vf_code rc = fn(ctx, i, err);
			if (rc != VF_OK)
				return rc;
		}
		return VF_OK;
	}
	struct tries t = {fn, ctx, PTHREAD_MUTEX_INITIALIZER, SIZE_MAX, {VF_OK, ""}};
	enum vf_code rc = VF_OK;
	if (vf_parallel_for(n, try_one, &t)) {
		rc = t.err.code;
		if (err)
			*err = t.err;
	}
	pthread_mutex_destroy(&t.mu);
	return rc;
}
