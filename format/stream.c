#include "stream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "pool.h"
#include "secmem.h"

#define ENC_CHUNK_SIZE (VF_CHUNK_SIZE + VF_AEAD_TAG_LEN)
/* Chunks per batch for each thread: enough to amortise the hand-off,
 * small enough to keep memory at a few hundred KiB per thread. */
#define CHUNKS_PER_THREAD 4
#define MAX_BATCH (CHUNKS_PER_THREAD * VF_POOL_MAX)

static unsigned configured_threads;

void vf_stream_set_threads(unsigned n)
{
	configured_threads = n;
}

static unsigned thread_count(void)
{
	unsigned n = configured_threads;
	if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (unsigned)cpus : 1;
	}
	return n > VF_POOL_MAX ? VF_POOL_MAX : n;
}

enum chunk_result { CHUNK_OK, CHUNK_LAST, CHUNK_BAD, CHUNK_EMPTY_LAST };

struct stream {
	uint8_t key[VF_AEAD_KEY_LEN]; /* lives inside guarded memory */
	struct vf_aead *aead[VF_POOL_MAX];
	struct vf_pool *pool; /* started on the first multi-chunk batch */
	unsigned threads;
	int encrypt;
	size_t batch;	 /* chunks per batch */
	uint8_t *in;	 /* batch input */
	size_t in_cap;
	uint8_t *out;	 /* batch output */
	uint64_t counter; /* index of the batch's first chunk */
	size_t nchunks;
	bool final_in_batch; /* encrypt: the batch's last chunk ends the stream;
				decrypt: the batch's last chunk is short, at EOF */
	size_t last_len;     /* length of the batch's last chunk (input side) */
	enum chunk_result result[MAX_BATCH];
};

static void chunk_nonce(uint64_t counter, bool last, uint8_t nonce[VF_AEAD_NONCE_LEN])
{
	memset(nonce, 0, 3);
	for (int i = 0; i < 8; i++)
		nonce[3 + i] = (uint8_t)(counter >> (56 - 8 * i));
	nonce[11] = last ? 1 : 0;
}

static enum vf_code stream_open(struct stream *st, const uint8_t file_key[VF_FILE_KEY_LEN],
				const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], int encrypt,
				struct vf_error *err)
{
	memset(st, 0, sizeof(*st));
	st->encrypt = encrypt;
	st->threads = thread_count();
	st->batch = CHUNKS_PER_THREAD * st->threads;
	uint8_t *key = vf_secure_alloc(VF_AEAD_KEY_LEN);
	if (!key)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	enum vf_code rc = vf_hkdf_sha256(file_key, VF_FILE_KEY_LEN, nonce, VF_PAYLOAD_NONCE_LEN,
					 "payload", 7, key, VF_AEAD_KEY_LEN, err);
	for (unsigned i = 0; rc == VF_OK && i < st->threads; i++)
		rc = vf_aead_new(&st->aead[i], key, encrypt, err);
	vf_secure_free(key);
	if (rc != VF_OK)
		return rc;
	/* Plaintext sides are guarded memory: locked, so never swapped out,
	 * and wiped on release. One spare byte on the encrypt input lets us
	 * see whether a full chunk is the last one. */
	size_t pt = st->batch * VF_CHUNK_SIZE, ct = st->batch * ENC_CHUNK_SIZE;
	st->in_cap = encrypt ? pt + 1 : ct;
	st->in = encrypt ? vf_secure_alloc(st->in_cap) : malloc(st->in_cap);
	st->out = encrypt ? malloc(ct) : vf_secure_alloc(pt);
	if (!st->in || !st->out)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	return VF_OK;
}

static void stream_close(struct stream *st)
{
	vf_pool_free(st->pool);
	for (unsigned i = 0; i < st->threads; i++)
		vf_aead_free(st->aead[i]);
	if (st->encrypt) {
		vf_secure_free(st->in);
		free(st->out);
	} else {
		free(st->in);
		vf_secure_free(st->out);
	}
	memset(st, 0, sizeof(*st));
}

static void run_batch(struct stream *st, vf_pool_fn fn)
{
	if (!st->pool && st->threads > 1 && st->nchunks > 1)
		st->pool = vf_pool_new(st->threads);
	vf_pool_run(st->pool, fn, st, st->nchunks);
}

/* Fills the input buffer until it is full, input ends, or at least `enough`
 * bytes are there and waiting for more would block. */
static enum vf_code fill(struct stream *st, struct vf_src *in, size_t *have, size_t enough,
			 bool *eof, struct vf_error *err)
{
	while (*have < st->in_cap && !*eof) {
		ssize_t n = in->read(in, st->in + *have, st->in_cap - *have, err);
		if (n < 0)
			return err ? err->code : VF_E_IO;
		if (n == 0)
			*eof = true;
		*have += (size_t)n;
		if (*have >= enough && !in->ready(in))
			break;
	}
	return VF_OK;
}

static void seal_range(void *arg, unsigned slot, size_t begin, size_t end)
{
	struct stream *st = arg;
	for (size_t i = begin; i < end; i++) {
		bool last = st->final_in_batch && i == st->nchunks - 1;
		size_t len = last ? st->last_len : VF_CHUNK_SIZE;
		uint8_t nonce[VF_AEAD_NONCE_LEN];
		chunk_nonce(st->counter + i, last, nonce);
		st->result[i] = vf_aead_seal_chunk(st->aead[slot], nonce, st->in + i * VF_CHUNK_SIZE,
						   len, st->out + i * ENC_CHUNK_SIZE) == VF_OK
					? CHUNK_OK
					: CHUNK_BAD;
	}
}

enum vf_code vf_stream_encrypt(const uint8_t file_key[VF_FILE_KEY_LEN],
			       const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], struct vf_src *in,
			       struct vf_sink *out, struct vf_error *err)
{
	struct stream st;
	enum vf_code rc = stream_open(&st, file_key, nonce, 1, err);
	size_t have = 0;
	bool eof = false;
	while (rc == VF_OK) {
		rc = fill(&st, in, &have, VF_CHUNK_SIZE + 1, &eof, err);
		if (rc != VF_OK)
			break;
		/* Without EOF, keep at least one byte back: a chunk is only
		 * known not to be the last when something follows it. */
		st.nchunks = eof ? (have + VF_CHUNK_SIZE - 1) / VF_CHUNK_SIZE
				 : (have - 1) / VF_CHUNK_SIZE;
		if (eof && st.nchunks == 0)
			st.nchunks = 1; /* the empty payload: one empty final chunk */
		st.final_in_batch = eof;
		st.last_len = eof ? have - (st.nchunks - 1) * VF_CHUNK_SIZE : VF_CHUNK_SIZE;
		if (st.nchunks == 0)
			continue;
		run_batch(&st, seal_range);
		size_t used = eof ? have : st.nchunks * VF_CHUNK_SIZE;
		size_t produced = used + st.nchunks * VF_AEAD_TAG_LEN;
		for (size_t i = 0; i < st.nchunks; i++)
			if (st.result[i] != CHUNK_OK)
				rc = vf_fail(err, VF_E_CRYPTO, "sealing a payload chunk failed");
		if (rc == VF_OK)
			rc = vf_sink_write(out, st.out, produced, err);
		if (eof || rc != VF_OK)
			break;
		memmove(st.in, st.in + used, have - used);
		have -= used;
		st.counter += st.nchunks;
	}
	stream_close(&st);
	return rc;
}

static void open_range(void *arg, unsigned slot, size_t begin, size_t end)
{
	struct stream *st = arg;
	for (size_t i = begin; i < end; i++) {
		bool short_final = st->final_in_batch && i == st->nchunks - 1;
		size_t len = short_final ? st->last_len : ENC_CHUNK_SIZE;
		const uint8_t *src = st->in + i * ENC_CHUNK_SIZE;
		uint8_t *dst = st->out + i * VF_CHUNK_SIZE;
		uint64_t index = st->counter + i;
		uint8_t nonce[VF_AEAD_NONCE_LEN];
		/* The last chunk may be short but not empty, unless it is the
		 * whole payload. */
		if (short_final && len == VF_AEAD_TAG_LEN && index != 0) {
			st->result[i] = CHUNK_EMPTY_LAST;
			continue;
		}
		/* A full chunk is tried as a middle chunk first, then as the
		 * last one (a payload that is a multiple of 64 KiB). */
		if (!short_final) {
			chunk_nonce(index, false, nonce);
			if (vf_aead_open_chunk(st->aead[slot], nonce, src, len, dst) == VF_OK) {
				st->result[i] = CHUNK_OK;
				continue;
			}
		}
		chunk_nonce(index, true, nonce);
		st->result[i] = vf_aead_open_chunk(st->aead[slot], nonce, src, len, dst) == VF_OK
					? CHUNK_LAST
					: CHUNK_BAD;
	}
}

/* After the last chunk, nothing may follow. */
static enum vf_code expect_end(struct stream *st, struct vf_src *in, size_t rest, bool eof,
			       struct vf_error *err)
{
	if (rest == 0 && !eof) {
		uint8_t probe;
		ssize_t n = in->read(in, &probe, 1, err);
		if (n < 0)
			return err ? err->code : VF_E_IO;
		rest = (size_t)n;
	}
	(void)st;
	return rest ? vf_fail(err, VF_E_PAYLOAD, "trailing data after the end of the payload")
		    : VF_OK;
}

/* Releases the batch's authenticated chunks in order; stops at the first
 * bad one or at the last one. *done when the stream is complete. */
static enum vf_code release(struct stream *st, struct vf_src *in, struct vf_sink *out,
			    size_t have, bool eof, bool *done, struct vf_error *err)
{
	for (size_t i = 0; i < st->nchunks; i++) {
		enum chunk_result r = st->result[i];
		if (r == CHUNK_OK || r == CHUNK_LAST) {
			size_t len = (st->final_in_batch && i == st->nchunks - 1)
					     ? st->last_len - VF_AEAD_TAG_LEN
					     : VF_CHUNK_SIZE;
			enum vf_code rc = vf_sink_write(out, st->out + i * VF_CHUNK_SIZE, len, err);
			if (rc != VF_OK)
				return rc;
		}
		if (r == CHUNK_LAST) {
			*done = true;
			size_t consumed = i * ENC_CHUNK_SIZE +
					  (st->final_in_batch && i == st->nchunks - 1 ? st->last_len
										       : ENC_CHUNK_SIZE);
			return expect_end(st, in, have - consumed, eof, err);
		}
		if (r == CHUNK_EMPTY_LAST)
			return vf_fail(err, VF_E_PAYLOAD, "the payload's last chunk is empty");
		if (r == CHUNK_BAD)
			return vf_fail(err, VF_E_PAYLOAD,
				       "payload chunk %llu is corrupt or truncated",
				       (unsigned long long)(st->counter + i));
	}
	return VF_OK;
}

enum vf_code vf_stream_decrypt(const uint8_t file_key[VF_FILE_KEY_LEN],
			       const uint8_t nonce[VF_PAYLOAD_NONCE_LEN], struct vf_src *in,
			       struct vf_sink *out, struct vf_error *err)
{
	struct stream st;
	enum vf_code rc = stream_open(&st, file_key, nonce, 0, err);
	size_t have = 0;
	bool eof = false, done = false;
	while (rc == VF_OK && !done) {
		rc = fill(&st, in, &have, ENC_CHUNK_SIZE, &eof, err);
		if (rc != VF_OK)
			break;
		size_t full = have / ENC_CHUNK_SIZE, rest = have % ENC_CHUNK_SIZE;
		st.final_in_batch = eof && rest;
		st.nchunks = full + (st.final_in_batch ? 1 : 0);
		st.last_len = st.final_in_batch ? rest : ENC_CHUNK_SIZE;
		if (st.nchunks == 0) {
			if (eof)
				rc = vf_fail(err, VF_E_PAYLOAD,
					     "the payload is truncated (no final chunk)");
			continue;
		}
		run_batch(&st, open_range);
		rc = release(&st, in, out, have, eof, &done, err);
		if (rc != VF_OK || done)
			break;
		size_t used = st.final_in_batch ? have : full * ENC_CHUNK_SIZE;
		memmove(st.in, st.in + used, have - used);
		have -= used;
		st.counter += st.nchunks;
	}
	stream_close(&st);
	return rc;
}
