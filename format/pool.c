#include "pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct vf_pool {
	pthread_t threads[VF_POOL_MAX];
	unsigned workers;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint64_t generation;
	unsigned busy;
	bool quit;
	vf_pool_fn fn;
	void *arg;
	size_t n;
};

struct worker_start {
	struct vf_pool *pool;
	unsigned slot;
};

static void slice(size_t n, unsigned parts, unsigned i, size_t *begin, size_t *end)
{
	*begin = n * i / parts;
	*end = n * (i + 1) / parts;
}

static void *worker_main(void *p)
{
	struct worker_start *start = p;
	struct vf_pool *pool = start->pool;
	unsigned slot = start->slot;
	free(start);
	uint64_t seen = 0;
	pthread_mutex_lock(&pool->mu);
	for (;;) {
		while (!pool->quit && pool->generation == seen)
			pthread_cond_wait(&pool->go, &pool->mu);
		if (pool->quit)
			break;
		seen = pool->generation;
		vf_pool_fn fn = pool->fn;
		void *arg = pool->arg;
		size_t begin, end;
		slice(pool->n, pool->workers + 1, slot, &begin, &end);
		pthread_mutex_unlock(&pool->mu);
		if (begin < end)
			fn(arg, slot, begin, end);
		pthread_mutex_lock(&pool->mu);
		if (--pool->busy == 0)
			pthread_cond_signal(&pool->done);
	}
	pthread_mutex_unlock(&pool->mu);
	return NULL;
}

struct vf_pool *vf_pool_new(unsigned threads)
{
	if (threads < 2 || threads > VF_POOL_MAX)
		return NULL;
	struct vf_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->go, NULL);
	pthread_cond_init(&pool->done, NULL);
	for (unsigned i = 0; i < threads - 1; i++) {
		struct worker_start *start = malloc(sizeof(*start));
		if (!start)
			break;
		start->pool = pool;
		start->slot = i + 1;
		if (pthread_create(&pool->threads[i], NULL, worker_main, start) != 0) {
			free(start);
			break;
		}
		pool->workers++;
	}
	if (pool->workers == 0) {
		vf_pool_free(pool);
		return NULL;
	}
	return pool;
}

void vf_pool_run(struct vf_pool *pool, vf_pool_fn fn, void *arg, size_t n)
{
	if (!pool || n < 2) {
		if (n)
			fn(arg, 0, 0, n);
		return;
	}
	pthread_mutex_lock(&pool->mu);
	pool->fn = fn;
	pool->arg = arg;
	pool->n = n;
	pool->busy = pool->workers;
	pool->generation++;
	pthread_cond_broadcast(&pool->go);
	pthread_mutex_unlock(&pool->mu);

	size_t begin, end;
	slice(n, pool->workers + 1, 0, &begin, &end);
	if (begin < end)
		fn(arg, 0, begin, end);

	pthread_mutex_lock(&pool->mu);
	while (pool->busy)
		pthread_cond_wait(&pool->done, &pool->mu);
	pthread_mutex_unlock(&pool->mu);
}

void vf_pool_free(struct vf_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->quit = true;
	pthread_cond_broadcast(&pool->go);
	pthread_mutex_unlock(&pool->mu);
	for (unsigned i = 0; i < pool->workers; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->go);
	pthread_cond_destroy(&pool->done);
	pthread_mutex_destroy(&pool->mu);
	free(pool);
}
