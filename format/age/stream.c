#include "age/stream.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/parallel.h"
#include "base/secmem.h"

#define ENC_CHUNK_SIZE (VF_CHUNK_SIZE + VF_AEAD_TAG_LEN)
/* Chunks per batch. Two batches are in flight (one being sealed or opened,
 * the next being read), so memory is 2 x 2 x 12 x 64 KiB = 3 MiB at most,
 * whatever the input size (more buys no speed on two cores); a large
 * regular file read out of order uses, per thread, two ring slots of 4
 * chunks and 4 chunks to read into instead (run_positional). Small inputs
 * (most secrets) first get buffers of one chunk, and only grow if more
 * input follows: to two chunks, and for a pipe, after 8 MiB, to full
 * batches (FIRST_GROWTH, grow_for_pipe). */
#define BATCH 12
#define MAX_THREADS 4
/* Workers start on the first batch of this many chunks or more: on fewer
 * a thread's start (its stack and arena, fresh pages) costs more than
 * sharing two chunks' AEAD saves. Measured at 128 KiB-1 MiB in batches
 * of two chunks: 0.5-0.8 ms slower with a worker up to 256 KiB, no
 * faster at 512 KiB and 1 MiB. */
#define WORKERS_FROM 3

static unsigned configured_threads;
static uint64_t configured_ring_from;

void vf_stream_set_threads(unsigned n)
{
	configured_threads = n;
}

void vf_stream_set_ring_from(uint64_t chunks)
{
	configured_ring_from = chunks;
}

static unsigned thread_count(void)
{
	unsigned n = configured_threads;
	if (n == 0)
		n = vf_cpu_count();
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

enum vf_code vf_stream_sizes(uint64_t ct_len, uint64_t *plaintext_len, uint64_t *chunks,
			     struct vf_error *err)
{
	uint64_t n = ct_len / ENC_CHUNK_SIZE + (ct_len % ENC_CHUNK_SIZE != 0);
	uint64_t last = n ? ct_len - (n - 1) * ENC_CHUNK_SIZE : 0;
	if (n == 0 || last < VF_AEAD_TAG_LEN || (last == VF_AEAD_TAG_LEN && n > 1))
		return vf_fail(err, VF_E_PAYLOAD,
			       "a payload of %llu bytes after the nonce is not one age writes "
			       "(truncated, or data after its end)",
			       (unsigned long long)ct_len);
	*chunks = n;
	*plaintext_len = ct_len - n * VF_AEAD_TAG_LEN;
	return VF_OK;
}

enum chunk_result {
	CHUNK_OK,
	CHUNK_LAST,
	CHUNK_BAD,
	CHUNK_EMPTY_LAST,
	CHUNK_READ_FAILED, /* encrypt, read out of order: errnum says why */
	CHUNK_SHRANK,	   /* encrypt, read out of order: the file ended early */
};

/* One batch of chunks: its input, output and per-chunk outcome. Threads
 * claim chunks through `next` and count them off in `done`, so whichever
 * thread is free does the work. */
struct batch {
	uint8_t *in, *out;
	size_t have;	  /* bytes in `in` */
	size_t used;	  /* bytes of `in` that belong to this batch's chunks */
	size_t nchunks;
	bool final_short; /* decrypt: last chunk is short, at the end of input;
			     encrypt: last chunk ends the stream */
	size_t last_len;  /* input length of the last chunk */
	uint64_t counter; /* index of the first chunk */
	atomic_size_t next, done;
	enum chunk_result result[BATCH];
	int errnum[BATCH];
};

struct stream {
	int encrypt;
	unsigned threads;
	struct vf_aead *aead[MAX_THREADS];
	struct batch batches[2];
	size_t chunks; /* batch capacity in chunks: 1, FIRST_GROWTH, then BATCH for a pipe */
	bool eof;
	uint64_t first;	     /* index of the first chunk read in order */
	struct vf_src_at at;
	/* Reading out of order (run_positional): each thread's buffer for
	 * the group of chunks it works on, the ring of groups' outputs, and
	 * the counts that hand the groups out and take them back. */
	uint8_t *own[MAX_THREADS];
	uint8_t *block;	    /* vf_huge_alloc: the ring and own buffers, or batches past one chunk */
	size_t block_cap;
	struct batch *ring; /* `slots` of them; NULL unless reading out of order */
	unsigned slots;
	uint64_t groups;    /* groups to do, of GROUP chunks (the last may be fewer) */
	uint64_t end;	    /* chunks to do out of order */
	atomic_uint_fast64_t claimed; /* groups handed out */
	atomic_uint_fast64_t written; /* groups written out; a slot is free again */
	atomic_bool halt;	      /* stop handing out groups (an error, or done) */
	atomic_uint sleepers;	      /* threads asleep on `room` */
	pthread_cond_t room;
	bool ring_on; /* workers are to work on the ring; changed under mu */

	/* Workers: started on the first batch with more than one chunk. */
	pthread_t workers[MAX_THREADS - 1];
	unsigned n_workers;
	pthread_mutex_t mu;
	pthread_cond_t wake, idle;
	struct batch *current; /* published batch, NULL when none */
	atomic_uint active;    /* workers inside work_on(current); changed under mu */
	uint64_t generation;
	atomic_uint_fast64_t published; /* generation, readable without mu */
	bool quit;
};

static void chunk_nonce(uint64_t counter, bool last, uint8_t nonce[VF_AEAD_NONCE_LEN])
{
	memset(nonce, 0, 3);
	for (int i = 0; i < 8; i++)
		nonce[3 + i] = (uint8_t)(counter >> (56 - 8 * i));
	nonce[11] = last ? 1 : 0;
}

static void seal_chunk(struct stream *st, struct batch *b, unsigned slot, size_t i,
		       const uint8_t *plain)
{
	bool last = b->final_short && i == b->nchunks - 1;
	size_t len = last ? b->last_len : VF_CHUNK_SIZE;
	uint8_t nonce[VF_AEAD_NONCE_LEN];
	chunk_nonce(b->counter + i, last, nonce);
	b->result[i] = vf_aead_seal_chunk(st->aead[slot], nonce, plain, len,
					  b->out + i * ENC_CHUNK_SIZE) == VF_OK
			       ? CHUNK_OK
			       : CHUNK_BAD;
}

static void open_chunk(struct stream *st, struct batch *b, unsigned slot, size_t i,
		       const uint8_t *src)
{
	bool short_final = b->final_short && i == b->nchunks - 1;
	size_t len = short_final ? b->last_len : ENC_CHUNK_SIZE;
	uint8_t *dst = b->out + i * VF_CHUNK_SIZE;
	uint64_t index = b->counter + i;
	uint8_t nonce[VF_AEAD_NONCE_LEN];
	/* The last chunk may be short but not empty, unless it is the whole
	 * payload. */
	if (short_final && len == VF_AEAD_TAG_LEN && index != 0) {
		b->result[i] = CHUNK_EMPTY_LAST;
		return;
	}
	/* A full chunk is tried as a middle chunk first, then as the last one
	 * (a payload that is a multiple of 64 KiB), as the reference does. */
	if (!short_final) {
		chunk_nonce(index, false, nonce);
		if (vf_aead_open_chunk(st->aead[slot], nonce, src, len, dst) == VF_OK) {
			b->result[i] = CHUNK_OK;
			return;
		}
	}
	chunk_nonce(index, true, nonce);
	b->result[i] = vf_aead_open_chunk(st->aead[slot], nonce, src, len, dst) == VF_OK
			       ? CHUNK_LAST
			       : CHUNK_BAD;
}

static void do_chunk(struct stream *st, struct batch *b, unsigned slot, size_t i,
		     const uint8_t *src)
{
	if (st->encrypt)
		seal_chunk(st, b, slot, i, src);
	else
		open_chunk(st, b, slot, i, src);
}

/* Claims and processes chunks of b until none are left. */
static void work_on(struct stream *st, struct batch *b, unsigned slot)
{
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->nchunks)
			return;
		do_chunk(st, b, slot, i, b->in + i * (st->encrypt ? VF_CHUNK_SIZE : ENC_CHUNK_SIZE));
		atomic_fetch_add_explicit(&b->done, 1, memory_order_release);
	}
}

struct worker_arg {
	struct stream *st;
	unsigned slot;
};

/* The next batch is usually published a few microseconds after a worker
 * runs out of chunks (the caller finishes its last chunk, writes, and
 * publishes what it has read meanwhile), sooner than a sleeping thread
 * is woken. So a worker first watches for it for a bounded time, about
 * 50 us, and only then sleeps on the condition variable: without this,
 * every 768 KiB batch paid a wake-up, a tenth of the stream's time. */
#define SPIN_ROUNDS 1000

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void await_next(struct stream *st, uint64_t seen)
{
	for (unsigned i = 0; i < SPIN_ROUNDS; i++) {
		if (atomic_load_explicit(&st->published, memory_order_acquire) != seen)
			return;
		cpu_relax();
	}
}

static void work_on_ring(struct stream *st, unsigned slot);

static void *worker_main(void *p)
{
	struct worker_arg arg = *(struct worker_arg *)p;
	free(p);
	struct stream *st = arg.st;
	uint64_t seen = 0;
	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (!st->quit && st->generation == seen)
			pthread_cond_wait(&st->wake, &st->mu);
		if (st->quit)
			break;
		seen = st->generation;
		struct batch *b = st->current;
		if (!b)
			continue; /* finished without us */
		bool ring = st->ring_on;
		st->active++;
		pthread_mutex_unlock(&st->mu);
		if (ring)
			work_on_ring(st, arg.slot);
		else
			work_on(st, b, arg.slot);
		pthread_mutex_lock(&st->mu);
		if (--st->active == 0)
			pthread_cond_signal(&st->idle);
		pthread_mutex_unlock(&st->mu);
		await_next(st, seen);
		pthread_mutex_lock(&st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

/* Workers are an optimisation: if they cannot be started, the calling
 * thread does all the work. */
static void start_workers(struct stream *st)
{
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->wake, NULL);
	pthread_cond_init(&st->idle, NULL);
	pthread_cond_init(&st->room, NULL);
	for (unsigned i = 0; i + 1 < st->threads; i++) {
		struct worker_arg *arg = malloc(sizeof(*arg));
		if (!arg)
			break;
		arg->st = st;
		arg->slot = i + 1;
		if (pthread_create(&st->workers[i], NULL, worker_main, arg) != 0) {
			free(arg);
			break;
		}
		st->n_workers++;
	}
}

static void stop_workers(struct stream *st)
{
	if (!st->n_workers)
		return;
	pthread_mutex_lock(&st->mu);
	st->quit = true;
	pthread_cond_broadcast(&st->wake);
	pthread_mutex_unlock(&st->mu);
	for (unsigned i = 0; i < st->n_workers; i++)
		pthread_join(st->workers[i], NULL);
	pthread_cond_destroy(&st->wake);
	pthread_cond_destroy(&st->idle);
	pthread_cond_destroy(&st->room);
	pthread_mutex_destroy(&st->mu);
	st->n_workers = 0;
}

/* Lets the workers start on b while the caller does other things. */
static void publish(struct stream *st, struct batch *b)
{
	atomic_store(&b->next, 0);
	atomic_store(&b->done, 0);
	if (b->nchunks >= WORKERS_FROM && st->threads > 1 && !st->n_workers && !st->generation)
		start_workers(st);
	if (!st->n_workers || b->nchunks < 2)
		return;
	pthread_mutex_lock(&st->mu);
	st->current = b;
	st->generation++;
	atomic_store_explicit(&st->published, st->generation, memory_order_release);
	pthread_cond_broadcast(&st->wake);
	pthread_mutex_unlock(&st->mu);
}

/* Joins in on b and returns once every chunk is done and no worker holds
 * b any more, so that its buffers can be reused. */
static void finish(struct stream *st, struct batch *b)
{
	work_on(st, b, 0);
	while (atomic_load_explicit(&b->done, memory_order_acquire) < b->nchunks)
		sched_yield();
	if (!st->n_workers)
		return;
	/* The last worker leaves b a moment after its last chunk: watch for
	 * that rather than sleep on `idle` at once, which cost a wake-up on
	 * every other batch. The check that counts is the one under mu. */
	for (unsigned i = 0; i < SPIN_ROUNDS && atomic_load(&st->active); i++)
		cpu_relax();
	pthread_mutex_lock(&st->mu);
	while (st->active)
		pthread_cond_wait(&st->idle, &st->mu);
	st->current = NULL;
	pthread_mutex_unlock(&st->mu);
}

static void free_batch(struct stream *st, struct batch *b, size_t chunks)
{
	if (st->block && b->in >= st->block && b->in < st->block + st->block_cap) {
		b->in = b->out = NULL; /* the block's, released with it */
		return;
	}
	size_t pt = chunks * VF_CHUNK_SIZE;
	if (st->encrypt) {
		vf_scratch_free(b->in, pt);
		free(b->out);
	} else {
		free(b->in);
		vf_scratch_free(b->out, pt);
	}
	b->in = b->out = NULL;
}

/* Plaintext sides are guarded memory: locked, so never swapped out, and
 * wiped on release. A one-chunk batch comes from the scratch stack (no
 * system calls: most secrets are that small); the second batch only
 * exists once the input turns out to be larger, and then both share one
 * block (vf_huge_alloc). Batch 0's contents are kept when growing. */
static enum vf_code alloc_batches(struct stream *st, size_t chunks, struct vf_error *err)
{
	size_t pt = chunks * VF_CHUNK_SIZE, ct = chunks * ENC_CHUNK_SIZE;
	size_t old = st->chunks;
	struct batch fresh[2] = {0};
	int count = chunks > 1 ? 2 : 1;
	uint8_t *block = NULL, *old_block = st->block;
	size_t block_cap = 0, old_cap = st->block_cap;
	if (chunks > 1) {
		/* Both batches, both sides, in one block of 2 MiB pages like the
		 * ring (run_positional): two chunks each take 512 KiB, full
		 * batches (a pipe past RING_FROM chunks) 3 MiB, which in 4 KiB
		 * pages cost about 2 and 10 ms of first touches on this host. */
		block = vf_huge_alloc(2 * (pt + ct), &block_cap);
		if (!block)
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		for (size_t i = 0; i < 2; i++) {
			fresh[i].in = block + i * (pt + ct);
			fresh[i].out = fresh[i].in + (st->encrypt ? pt : ct);
		}
	} else {
		fresh[0].in = st->encrypt ? vf_scratch_alloc(pt) : malloc(ct);
		fresh[0].out = st->encrypt ? malloc(ct) : vf_scratch_alloc(pt);
		if (!fresh[0].in || !fresh[0].out) {
			free_batch(st, &fresh[0], chunks);
			return vf_fail(err, VF_E_NOMEM, "out of memory");
		}
	}
	/* Released in reverse order of allocation, as the scratch stack needs. */
	for (int i = 1; i >= 0; i--) {
		struct batch *b = &st->batches[i];
		if (i < count && b->in && b->have)
			memcpy(fresh[i].in, b->in, b->have);
		if (b->in || b->out)
			free_batch(st, b, old);
		if (i < count) {
			b->in = fresh[i].in;
			b->out = fresh[i].out;
		}
	}
	if (block) { /* only now, so that free_batch knew the old batches' block */
		vf_huge_free(old_block, old_cap);
		st->block = block;
		st->block_cap = block_cap;
	}
	st->chunks = chunks;
	return VF_OK;
}

static enum vf_code stream_open(struct stream *st, const uint8_t file_key[VF_FILE_KEY_LEN],
				const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], int encrypt,
				struct vf_error *err)
{
	memset(st, 0, sizeof(*st));
	st->encrypt = encrypt;
	st->threads = thread_count();
	uint8_t *key = vf_scratch_alloc(VF_AEAD_KEY_LEN);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hkdf_sha256(file_key, VF_FILE_KEY_LEN, nonce, VF_PAYLOAD_NONCE_LEN,
					 "payload", 7, key, VF_AEAD_KEY_LEN, err);
	for (unsigned i = 0; rc == VF_OK && i < st->threads; i++)
		rc = vf_aead_new(&st->aead[i], key, encrypt, err);
	vf_scratch_free(key, VF_AEAD_KEY_LEN);
	if (rc == VF_OK)
		rc = alloc_batches(st, 1, err);
	return rc;
}

static void stream_close(struct stream *st)
{
	stop_workers(st);
	for (unsigned i = 0; i < st->threads; i++)
		vf_aead_free(st->aead[i]);
	for (int i = 1; i >= 0; i--)
		if (st->batches[i].in || st->batches[i].out)
			free_batch(st, &st->batches[i], st->chunks);
	vf_huge_free(st->block, st->block_cap);
	memset(st, 0, sizeof(*st));
}

/* Reads the next batch into b, after the bytes prev left over. Stops when
 * b is full, at the end of input, or once `enough` bytes are in and more
 * would block (so that slow pipes are answered promptly). */
static enum vf_code fill(struct stream *st, struct batch *prev, struct batch *b,
			 struct vf_src *in, struct vf_error *err)
{
	size_t cap = st->chunks * (st->encrypt ? VF_CHUNK_SIZE : ENC_CHUNK_SIZE);
	size_t enough = st->encrypt ? VF_CHUNK_SIZE + 1 : ENC_CHUNK_SIZE;
	if (prev == b) {
		/* Topping up after growing: keep what is there. */
	} else if (prev) {
		b->have = prev->have - prev->used;
		memcpy(b->in, prev->in + prev->used, b->have);
		b->counter = prev->counter + prev->nchunks;
	} else {
		b->have = 0;
		b->counter = st->first;
	}
	while (b->have < cap && !st->eof) {
		ssize_t n = in->read(in, b->in + b->have, cap - b->have, err);
		if (n < 0)
			return err ? err->code : VF_E_IO;
		if (n == 0)
			st->eof = true;
		b->have += (size_t)n;
		if (b->have >= enough && !in->ready(in))
			break;
	}
	return VF_OK;
}

/* Splits an encrypt batch into chunks. Without the end of input, the last
 * (partial or full) chunk is held back for the next batch: a chunk is only
 * known not to be the last when something follows it. Holding back a whole
 * chunk rather than one byte keeps the next read aligned. */
static void plan_seal(struct stream *st, struct batch *b)
{
	size_t n = st->eof ? (b->have + VF_CHUNK_SIZE - 1) / VF_CHUNK_SIZE
			   : (b->have ? (b->have - 1) / VF_CHUNK_SIZE : 0);
	if (st->eof && n == 0 && b->counter == 0)
		n = 1; /* the empty payload: one empty final chunk */
	b->nchunks = n;
	b->final_short = st->eof;
	b->used = st->eof ? b->have : n * VF_CHUNK_SIZE;
	b->last_len = st->eof && n ? b->have - (n - 1) * VF_CHUNK_SIZE : VF_CHUNK_SIZE;
}

static void plan_open(struct stream *st, struct batch *b)
{
	size_t full = b->have / ENC_CHUNK_SIZE, rest = b->have % ENC_CHUNK_SIZE;
	b->final_short = st->eof && rest;
	b->nchunks = full + (b->final_short ? 1 : 0);
	b->last_len = b->final_short ? rest : ENC_CHUNK_SIZE;
	b->used = b->final_short ? b->have : full * ENC_CHUNK_SIZE;
}

static enum vf_code read_batch(struct stream *st, struct batch *prev, struct batch *b,
			       struct vf_src *in, struct vf_error *err)
{
	enum vf_code rc = fill(st, prev, b, in, err);
	if (rc == VF_OK) {
		if (st->encrypt)
			plan_seal(st, b);
		else
			plan_open(st, b);
	}
	return rc;
}

static enum vf_code release_sealed(struct batch *b, struct vf_sink *out, struct vf_error *err)
{
	for (size_t i = 0; i < b->nchunks; i++)
		if (b->result[i] != CHUNK_OK)
			return vf_fail(err, VF_E_CRYPTO, "sealing a payload chunk failed");
	size_t len = b->used + b->nchunks * VF_AEAD_TAG_LEN;
	return vf_sink_write(out, b->out, len, err);
}

/* Nothing may follow the last chunk: not in this batch, not read ahead,
 * not still in the input. */
static enum vf_code expect_end(struct stream *st, size_t rest, struct batch *ahead,
			       struct vf_src *in, struct vf_error *err)
{
	if (!rest && ahead)
		rest = ahead->have;
	if (!rest && !st->eof) {
		uint8_t probe;
		ssize_t n = in->read(in, &probe, 1, err);
		if (n < 0)
			return err ? err->code : VF_E_IO;
		rest = (size_t)n;
	}
	return rest ? vf_fail(err, VF_E_PAYLOAD, "trailing data after the end of the payload")
		    : VF_OK;
}

/* Releases the batch's authenticated chunks in order; stops at the first
 * bad one or after the last one (*done). */
static enum vf_code release_opened(struct stream *st, struct batch *b, struct batch *ahead,
				   struct vf_src *in, struct vf_sink *out, bool *done,
				   struct vf_error *err)
{
	size_t ok = 0;
	enum chunk_result stop = CHUNK_OK;
	while (ok < b->nchunks && stop == CHUNK_OK) {
		stop = b->result[ok];
		if (stop == CHUNK_OK || stop == CHUNK_LAST)
			ok++;
	}
	size_t bytes = ok ? (ok - 1) * VF_CHUNK_SIZE : 0;
	if (ok)
		bytes += (b->final_short && ok == b->nchunks) ? b->last_len - VF_AEAD_TAG_LEN
							      : VF_CHUNK_SIZE;
	enum vf_code rc = vf_sink_write(out, b->out, bytes, err);
	if (rc != VF_OK)
		return rc;
	switch (stop) {
	case CHUNK_OK:
		return VF_OK;
	case CHUNK_LAST: {
		*done = true;
		size_t consumed = (ok - 1) * ENC_CHUNK_SIZE +
				  ((b->final_short && ok == b->nchunks) ? b->last_len : ENC_CHUNK_SIZE);
		return expect_end(st, b->have - consumed, ahead, in, err);
	}
	case CHUNK_EMPTY_LAST:
		return vf_fail(err, VF_E_PAYLOAD, "the payload's last chunk is empty");
	case CHUNK_BAD:
	case CHUNK_READ_FAILED: /* encrypt only */
	case CHUNK_SHRANK:
		break;
	}
	return vf_fail(err, VF_E_PAYLOAD, "payload chunk %llu is corrupt or truncated",
		       (unsigned long long)(b->counter + ok));
}

/* A regular file of RING_FROM chunks or more is sealed or opened with
 * every thread reading the chunks it works on (pread): one thread reading
 * for all was the bottleneck, a copy out of the page cache half as costly
 * as the AEAD, and the batch it read landed in the other core's cache.
 * The file's last chunk, and anything written to it meanwhile, are left
 * to the reads in order in run(), which alone tell the last chunk
 * (nothing follows it): so a growing file is read to its end, as age
 * does, and one that shrinks under the reads fails rather than end early.
 *
 * The work goes out in groups of GROUP chunks, one pread each, into the
 * thread's own buffer, which stays in its cache; the results go to a ring
 * of slots, which this thread writes out in order. There is no
 * barrier between groups: a thread that finishes one takes the next,
 * unless its slot still holds a group not yet written, and this thread
 * joins in whenever the group it is to write next is not done. With a
 * barrier after every batch, as before, one core waited for the other's
 * last chunk at every batch, and a read per chunk paid a system call per
 * 64 KiB (on a VM, 0.067 s of reading 1 GiB, against 0.043 s in 256 KiB
 * reads).
 *
 * Two slots per thread: each thread can work on one group while the one
 * it finished waits to be written. More only cost pages, and on a host
 * where a page's first touch costs about 10 us that is measurable: a
 * decrypt's ring of 8 slots, 2 MiB of guarded memory (locked and filled
 * when allocated), took 2.3 ms before the first group could start, and
 * an encrypt's faulted in 257 more pages; neither ran faster for it. */
#define GROUP 4
#define SLOTS_PER_THREAD 2
/* Files of fewer chunks are read in order, in batches of two chunks, on
 * one thread: in 4 KiB pages the ring's buffers (1.5 MiB on two cores,
 * each page touched before it is used) and a second thread cost more than
 * the second core saves until the file is large. Measured on the 2-CPU
 * AMD EPYC VM (encrypt, wall ms, medians of 12): 2 MiB 17.7 with the ring
 * against 12.4 in order, 4 MiB 18.3 / 13.7, 8 MiB 20.0 / 16.1, 32 MiB
 * 25.2 / 29.6. In a huge page (run_positional) the ring costs far less:
 * from 16 chunks it would win there (1 MiB 12.0 against 13.2-13.4, 4 MiB
 * 13.8 / 14.7), but where the kernel gives no huge page (transparent huge
 * pages off, or none free) it would cost the 5 ms above again; so the
 * threshold stays where the ring wins either way. */
#define RING_FROM 128
#define MAX_SLOTS (SLOTS_PER_THREAD * MAX_THREADS)
_Static_assert(GROUP <= BATCH, "a ring slot is a batch of GROUP chunks");

static uint64_t ring_from(void)
{
	return configured_ring_from ? configured_ring_from : RING_FROM;
}

/* A file read out of order ended before the length it had when asked. */
static enum vf_code shrank(const struct stream *st, struct vf_error *err)
{
	return vf_fail(err, VF_E_IO, "%s: the file shrank while it was read", st->at.name);
}

static size_t group_chunks(const struct stream *st, uint64_t g)
{
	uint64_t first = g * GROUP;
	return st->end - first < GROUP ? (size_t)(st->end - first) : GROUP;
}

/* Readies group g's slot; only this thread touches a slot whose group is
 * not yet handed out. */
static void prepare_slot(struct stream *st, uint64_t g)
{
	if (g >= st->groups)
		return;
	struct batch *b = &st->ring[g % st->slots];
	b->counter = g * GROUP;
	b->nchunks = group_chunks(st, g);
	b->final_short = false; /* whole chunks only: the last is read in order */
	atomic_store_explicit(&b->done, 0, memory_order_relaxed);
}

enum claim { CLAIMED, NO_ROOM, NONE_LEFT };

/* Hands out the next group, unless none is left or its slot still holds
 * a group not yet written out. */
static enum claim claim_group(struct stream *st, uint64_t *g)
{
	uint64_t n = atomic_load(&st->claimed);
	for (;;) {
		if (n >= st->groups || atomic_load(&st->halt))
			return NONE_LEFT;
		if (n >= atomic_load(&st->written) + st->slots)
			return NO_ROOM;
		if (atomic_compare_exchange_weak(&st->claimed, &n, n + 1)) {
			*g = n;
			return CLAIMED;
		}
	}
}

/* Reads group g in one pread and seals or opens its chunks into its slot.
 * Chunks the read did not bring (it failed, or the file shrank) are
 * marked; the writer reports the first. */
static void do_group(struct stream *st, uint64_t g, unsigned slot)
{
	size_t size = st->encrypt ? VF_CHUNK_SIZE : ENC_CHUNK_SIZE;
	struct batch *b = &st->ring[g % st->slots];
	uint8_t *buf = st->own[slot];
	ssize_t got = vf_src_read_at(&st->at, buf, b->nchunks * size, b->counter * size);
	int errnum = errno;
	for (size_t i = 0; i < b->nchunks; i++) {
		if (got >= 0 && (size_t)got >= (i + 1) * size) {
			do_chunk(st, b, slot, i, buf + i * size);
		} else {
			b->result[i] = got < 0 ? CHUNK_READ_FAILED : CHUNK_SHRANK;
			b->errnum[i] = errnum;
		}
	}
	atomic_store_explicit(&b->done, b->nchunks, memory_order_release);
}

static bool no_room(struct stream *st)
{
	uint64_t n = atomic_load(&st->claimed);
	return !atomic_load(&st->halt) && n < st->groups && n >= atomic_load(&st->written) + st->slots;
}

/* While the output keeps up, a slot comes free every few tens of
 * microseconds: watch for it first. Sleep when the output is slow (a
 * pipe, a disk). `sleepers` is raised before the last look at `written`,
 * and the writer looks at `sleepers` after moving `written` (both
 * sequentially consistent), so one of the two sees the other. */
static void await_room(struct stream *st)
{
	for (unsigned i = 0; i < SPIN_ROUNDS; i++) {
		if (!no_room(st))
			return;
		cpu_relax();
	}
	pthread_mutex_lock(&st->mu);
	atomic_fetch_add(&st->sleepers, 1);
	while (no_room(st))
		pthread_cond_wait(&st->room, &st->mu);
	atomic_fetch_sub(&st->sleepers, 1);
	pthread_mutex_unlock(&st->mu);
}

static void wake_sleepers(struct stream *st)
{
	if (!atomic_load(&st->sleepers))
		return;
	pthread_mutex_lock(&st->mu);
	pthread_cond_broadcast(&st->room);
	pthread_mutex_unlock(&st->mu);
}

/* A worker's part: groups until none is left. */
static void work_on_ring(struct stream *st, unsigned slot)
{
	for (;;) {
		uint64_t g;
		switch (claim_group(st, &g)) {
		case CLAIMED:
			do_group(st, g, slot);
			break;
		case NO_ROOM:
			await_room(st);
			break;
		case NONE_LEFT:
			return;
		}
	}
}

/* This thread's part while it waits for group w to be done. */
static void await_group(struct stream *st, uint64_t w)
{
	struct batch *b = &st->ring[w % st->slots];
	while (atomic_load_explicit(&b->done, memory_order_acquire) < b->nchunks) {
		uint64_t g;
		if (claim_group(st, &g) == CLAIMED)
			do_group(st, g, 0);
		else
			sched_yield();
	}
}

static size_t ok_prefix(const struct batch *b)
{
	size_t ok = 0;
	while (ok < b->nchunks && b->result[ok] == CHUNK_OK)
		ok++;
	return ok;
}

/* Why chunk `ok` of b failed, in the words of the reads in order. */
static enum vf_code chunk_failure(struct stream *st, const struct batch *b, size_t ok,
				  struct vf_error *err)
{
	switch (b->result[ok]) {
	case CHUNK_READ_FAILED:
		return vf_fail_errno(err, b->errnum[ok], "reading %s", st->at.name);
	case CHUNK_SHRANK:
		return shrank(st, err);
	case CHUNK_LAST: /* a last chunk with more of the file after it */
		return vf_fail(err, VF_E_PAYLOAD, "trailing data after the end of the payload");
	case CHUNK_BAD:
		if (st->encrypt)
			return vf_fail(err, VF_E_CRYPTO, "sealing a payload chunk failed");
		break;
	case CHUNK_OK:
	case CHUNK_EMPTY_LAST: /* only for a short last chunk, never read here */
		break;
	}
	return vf_fail(err, VF_E_PAYLOAD, "payload chunk %llu is corrupt or truncated",
		       (unsigned long long)(b->counter + ok));
}

/* Writes out group w and the done groups after it, in one writev, up to
 * the first chunk that failed, and says why that one failed. *next is
 * the first group not written. */
static enum vf_code write_groups(struct stream *st, uint64_t w, uint64_t *next,
				 struct vf_sink *out, struct vf_error *err)
{
	size_t size = st->encrypt ? ENC_CHUNK_SIZE : VF_CHUNK_SIZE;
	struct iovec iov[MAX_SLOTS];
	int n = 0;
	const struct batch *failed = NULL;
	size_t ok = 0;
	uint64_t g = w;
	while (g < st->groups && g < w + st->slots && !failed) {
		const struct batch *b = &st->ring[g % st->slots];
		if (g > w && atomic_load_explicit(&b->done, memory_order_acquire) < b->nchunks)
			break;
		ok = ok_prefix(b);
		if (ok)
			iov[n++] = (struct iovec){.iov_base = b->out, .iov_len = ok * size};
		if (ok < b->nchunks)
			failed = b;
		g++;
	}
	*next = g;
	enum vf_code rc = n ? out->write(out, iov, n, err) : VF_OK;
	return rc == VF_OK && failed ? chunk_failure(st, failed, ok, err) : rc;
}

/* Waits until no worker is in the ring any more. */
static void end_ring(struct stream *st)
{
	atomic_store(&st->halt, true);
	wake_sleepers(st);
	if (!st->n_workers)
		return;
	pthread_mutex_lock(&st->mu);
	while (st->active)
		pthread_cond_wait(&st->idle, &st->mu);
	st->current = NULL;
	st->ring_on = false;
	pthread_mutex_unlock(&st->mu);
}

static enum vf_code run_ring(struct stream *st, struct vf_src *in, struct vf_sink *out,
			     struct vf_error *err)
{
	for (uint64_t g = 0; g < st->slots; g++)
		prepare_slot(st, g);
	st->ring_on = true;
	publish(st, &st->ring[0]);
	enum vf_code rc = VF_OK;
	for (uint64_t w = 0; rc == VF_OK && w < st->groups;) {
		await_group(st, w);
		uint64_t next;
		rc = write_groups(st, w, &next, out, err);
		for (; w < next; w++)
			prepare_slot(st, w + st->slots);
		atomic_store(&st->written, w);
		wake_sleepers(st);
	}
	end_ring(st);
	if (rc == VF_OK)
		rc = in->advance(in, st->end * (st->encrypt ? VF_CHUNK_SIZE : ENC_CHUNK_SIZE), err);
	return rc;
}

/* The ring's slots and the threads' group buffers are one block of
 * guarded memory in 2 MiB pages (vf_huge_alloc): one side of each group
 * is plaintext, and together they are 1.5 MiB on two threads, which in
 * 4 KiB pages cost this stream about 5 ms of first touches on a host
 * where each costs 13 us (against 0.2-0.3 ms for one huge page), before
 * its first group could start. The ciphertext side shares the block
 * (locked too, harmlessly): splitting it off would cost a second block. */
static enum vf_code run_positional(struct stream *st, bool sized, struct vf_src *in,
				   struct vf_sink *out, struct vf_error *err)
{
	if (st->threads < 2 || !sized || !in->advance)
		return VF_OK;
	size_t in_size = st->encrypt ? VF_CHUNK_SIZE : ENC_CHUNK_SIZE;
	size_t out_size = st->encrypt ? ENC_CHUNK_SIZE : VF_CHUNK_SIZE;
	st->end = st->at.len ? (st->at.len - 1) / in_size : 0;
	if (st->end < ring_from())
		return VF_OK;
	st->groups = (st->end + GROUP - 1) / GROUP;
	st->slots = SLOTS_PER_THREAD * st->threads;
	size_t outs_len = st->slots * GROUP * out_size, own_len = GROUP * in_size;
	st->block = vf_huge_alloc(outs_len + st->threads * own_len, &st->block_cap);
	st->ring = calloc(st->slots, sizeof(*st->ring));
	enum vf_code rc = VF_OK;
	if (!st->block || !st->ring) {
		rc = vf_fail(err, VF_E_NOMEM, "out of memory");
	} else {
		for (unsigned i = 0; i < st->slots; i++)
			st->ring[i].out = st->block + i * GROUP * out_size;
		for (unsigned i = 0; i < st->threads; i++)
			st->own[i] = st->block + outs_len + i * own_len;
		rc = run_ring(st, in, out, err);
		st->first = st->end;
	}
	for (unsigned i = 0; i < st->threads; i++)
		st->own[i] = NULL;
	free(st->ring);
	st->ring = NULL;
	return rc; /* the block stays, for the batches (batches_from_block) */
}

/* The batches' size once the input turns out to be more than one chunk:
 * two chunks, room for a full chunk and the end of input (encrypt holds a
 * full chunk back until it sees that), reused in turn on one thread. Pages
 * cost: on a host where a page's first touch costs 10 us, growing to full
 * batches at once (1.5 MiB of guarded memory, locked and filled, and as
 * much for the other side) made a 64 KiB file take 15 ms where 64 KiB - 1
 * took 10, and a 1 MiB file 18.7 ms where batches of two chunks take
 * 12.8. A regular file stays at two: below RING_FROM chunks that is the
 * fastest way, and above it the batches only read the last chunk and
 * whatever was appended meanwhile. Input of unknown length (a pipe) grows
 * to full batches, which the workers share, once RING_FROM chunks have
 * gone through (grow_for_pipe). */
#define FIRST_GROWTH 2

/* After the ring only the file's last chunk is left, and whatever was
 * appended meanwhile: the batches take their two chunks each from the
 * ring's block, whose pages are touched already, rather than grow into
 * fresh guarded memory (about 2 ms of first touches on this host). The
 * block holds at least the ring's 16 chunks (two threads or more). */
static void batches_from_block(struct stream *st)
{
	size_t pt = FIRST_GROWTH * VF_CHUNK_SIZE, ct = FIRST_GROWTH * ENC_CHUNK_SIZE;
	if (2 * (pt + ct) > st->block_cap)
		return;
	for (int i = 1; i >= 0; i--)
		if (st->batches[i].in || st->batches[i].out)
			free_batch(st, &st->batches[i], st->chunks);
	for (size_t i = 0; i < 2; i++) {
		st->batches[i].in = st->block + i * (pt + ct);
		st->batches[i].out = st->batches[i].in + (st->encrypt ? pt : ct);
	}
	st->chunks = FIRST_GROWTH;
}

static enum vf_code grow_for_pipe(struct stream *st, bool sized, const struct batch *done,
				  struct vf_error *err)
{
	if (sized || st->chunks >= BATCH || done->counter + done->nchunks < ring_from())
		return VF_OK;
	return alloc_batches(st, BATCH, err); /* both batches' input is kept */
}

/* The pipeline: while the workers seal or open batch k, this thread reads
 * batch k+1 (when input is at hand), then helps with k, then writes k. */
static enum vf_code run(struct stream *st, struct vf_src *in, struct vf_sink *out,
			struct vf_error *err)
{
	struct batch *cur = &st->batches[0], *next = &st->batches[1];
	bool sized = in->positional && in->positional(in, &st->at);
	enum vf_code rc = run_positional(st, sized, in, out, err);
	if (rc == VF_OK && st->block)
		batches_from_block(st);
	if (rc == VF_OK)
		rc = read_batch(st, NULL, cur, in, err);
	if (rc == VF_OK && !st->eof && st->chunks < FIRST_GROWTH) {
		rc = alloc_batches(st, FIRST_GROWTH, err);
		if (rc == VF_OK)
			rc = read_batch(st, cur, cur, in, err);
	}
	bool done = false;
	while (rc == VF_OK && !done) {
		if (cur->nchunks == 0) {
			if (!st->eof) { /* a partial chunk so far: read on */
				rc = read_batch(st, cur, next, in, err);
				struct batch *t = cur;
				cur = next;
				next = t;
				continue;
			}
			if (st->encrypt) /* only after chunks read out of order */
				return shrank(st, err);
			return vf_fail(err, VF_E_PAYLOAD, "the payload is truncated (no final chunk)");
		}
		publish(st, cur);
		bool ahead = !st->eof && in->ready(in);
		enum vf_code read_rc = ahead ? read_batch(st, cur, next, in, err) : VF_OK;
		finish(st, cur);
		if (read_rc != VF_OK)
			return read_rc;
		if (st->encrypt) {
			rc = release_sealed(cur, out, err);
			done = st->eof && cur->used == cur->have && !ahead;
		} else {
			rc = release_opened(st, cur, ahead ? next : NULL, in, out, &done, err);
		}
		if (rc != VF_OK || done)
			break;
		/* No worker holds either batch now (finish), so they can move. */
		rc = grow_for_pipe(st, sized, cur, err);
		if (rc == VF_OK && !ahead)
			rc = read_batch(st, cur, next, in, err);
		struct batch *t = cur;
		cur = next;
		next = t;
	}
	return rc;
}

enum vf_code vf_stream_encrypt(const uint8_t file_key[VF_FILE_KEY_LEN],
			       const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], struct vf_src *in,
			       struct vf_sink *out, struct vf_error *err)
{
	struct stream st;
	enum vf_code rc = stream_open(&st, file_key, nonce, 1, err);
	if (rc == VF_OK)
		rc = run(&st, in, out, err);
	stream_close(&st);
	return rc;
}

enum vf_code vf_stream_decrypt(const uint8_t file_key[VF_FILE_KEY_LEN],
			       const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], struct vf_src *in,
			       struct vf_sink *out, struct vf_error *err)
{
	struct stream st;
	enum vf_code rc = stream_open(&st, file_key, nonce, 0, err);
	if (rc == VF_OK)
		rc = run(&st, in, out, err);
	stream_close(&st);
	return rc;
}
