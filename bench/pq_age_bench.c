/* What hybrid post-quantum keys cost at the age level against classic
 * X25519 keys, in the same run (issue 14): making an identity (and its
 * recipient string), sealing 1 KiB to 1 and to 10 recipients, opening it
 * with the identity whose stanza comes first and with the one whose
 * stanza comes last of 10 (each stanza before it is tried: for a hybrid
 * one, a decapsulation).
 *
 *   build/bench/pq_age_bench [RUNS [OPS]]     default 7 runs of 200 ops
 *
 * Each figure is the median over RUNS runs of the mean time of OPS
 * operations, in microseconds; the last column is PQ / classic. Single
 * process, one thread (the payload is one chunk). Numbers move with the
 * load of the machine: read the ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"
#include "base/secmem.h"
#include "age/age.h"
#include "age/keys.h"

#define PAYLOAD 1024
#define MANY 10

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One kind of key: MANY identities, their recipients, and sealed files. */
struct kind {
	bool pq;
	struct vf_identity *ids[MANY];
	struct vf_recipient *rcpts[MANY];
	struct vf_buf one, many; /* sealed to ids[0]; to all MANY */
};

static uint8_t payload[PAYLOAD];

static int fail(const char *what, const struct vf_error *err)
{
	fprintf(stderr, "pq_age_bench: %s: %s\n", what, err->msg);
	return 1;
}

static enum vf_code keygen(struct kind *k, struct vf_identity **id, struct vf_recipient **r,
			   struct vf_error *err)
{
	char *recipient = NULL;
	enum vf_code rc = vf_native_identity_generate(k->pq, id, err);
	if (rc == VF_OK)
		rc = vf_identity_recipient(*id, &recipient, err);
	if (rc == VF_OK && r)
		rc = vf_recipient_parse(recipient, r, err);
	free(recipient);
	return rc;
}

static enum vf_code seal(struct kind *k, size_t n, struct vf_buf *out, struct vf_error *err)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, payload, sizeof(payload));
	vf_buf_init(out);
	return vf_encrypt(k->rcpts, n, &src.base, &out->sink, err);
}

static enum vf_code open_with(struct vf_identity *id, const struct vf_buf *in,
			      struct vf_error *err)
{
	struct vf_mem_src src;
	struct vf_buf out;
	vf_mem_src_init(&src, in->data, in->len);
	vf_buf_init(&out);
	enum vf_code rc = vf_decrypt(&id, 1, &src.base, VF_ARMOR_NO, &out.sink, err);
	if (rc == VF_OK && (out.len != PAYLOAD || memcmp(out.data, payload, PAYLOAD)))
		rc = vf_fail(err, VF_E_AUTH, "opened to other bytes");
	vf_buf_free(&out);
	return rc;
}

enum op { OP_KEYGEN, OP_SEAL_1, OP_SEAL_MANY, OP_OPEN_FIRST, OP_OPEN_LAST, OP_N };
static const char *const op_names[OP_N] = {
	"keygen (identity and recipient string)",
	"seal 1 KiB to 1 recipient",
	"seal 1 KiB to 10 recipients",
	"open, own stanza first",
	"open, own stanza last of 10",
};

static enum vf_code one_op(struct kind *k, enum op op, struct vf_error *err)
{
	struct vf_identity *id = NULL;
	struct vf_buf sealed;
	enum vf_code rc;
	switch (op) {
	case OP_KEYGEN:
		rc = keygen(k, &id, NULL, err);
		vf_identity_free(id);
		return rc;
	case OP_SEAL_1:
	case OP_SEAL_MANY:
		rc = seal(k, op == OP_SEAL_1 ? 1 : MANY, &sealed, err);
		vf_buf_free(&sealed);
		return rc;
	case OP_OPEN_FIRST: return open_with(k->ids[0], &k->many, err);
	default: return open_with(k->ids[MANY - 1], &k->many, err);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median over runs of the mean microseconds of ops operations. */
static int measure(struct kind *k, enum op op, int runs, int ops, double *median)
{
	double *t = calloc((size_t)runs, sizeof(*t));
	struct vf_error err = {0};
	if (!t)
		return 1;
	for (int r = 0; r < runs; r++) {
		double start = now();
		for (int i = 0; i < ops; i++)
			if (one_op(k, op, &err) != VF_OK) {
				free(t);
				return fail(op_names[op], &err);
			}
		t[r] = (now() - start) / ops * 1e6;
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	*median = t[runs / 2];
	free(t);
	return 0;
}

static int setup(struct kind *k)
{
	struct vf_error err = {0};
	for (size_t i = 0; i < MANY; i++)
		if (keygen(k, &k->ids[i], &k->rcpts[i], &err) != VF_OK)
			return fail("keygen", &err);
	if (seal(k, 1, &k->one, &err) != VF_OK || seal(k, MANY, &k->many, &err) != VF_OK)
		return fail("seal", &err);
	return 0;
}

static void teardown(struct kind *k)
{
	for (size_t i = 0; i < MANY; i++) {
		vf_identity_free(k->ids[i]);
		vf_recipient_free(k->rcpts[i]);
	}
	vf_buf_free(&k->one);
	vf_buf_free(&k->many);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 7, ops = argc > 2 ? atoi(argv[2]) : 200;
	if (vf_init() != 0 || runs < 1 || ops < 1) {
		fprintf(stderr, "usage: pq_age_bench [RUNS [OPS]]\n");
		return 2;
	}
	vf_stream_set_threads(1);
	vf_random(payload, sizeof(payload), NULL);
	struct kind classic = {.pq = false}, pq = {.pq = true};
	int status = setup(&classic) || setup(&pq);
	if (!status) {
		printf("age level, median of %d runs of %d operations, microseconds per operation\n",
		       runs, ops);
		printf("  1 KiB sealed to 1 / 10 recipients: classic %zu / %zu bytes, post-quantum "
		       "%zu / %zu bytes\n",
		       classic.one.len, classic.many.len, pq.one.len, pq.many.len);
		printf("%-40s %12s %12s %8s\n", "", "classic us", "pq us", "pq/cl");
	}
	for (int op = 0; !status && op < OP_N; op++) {
		double c = 0, p = 0;
		status = measure(&classic, (enum op)op, runs, ops, &c) ||
			 measure(&pq, (enum op)op, runs, ops, &p);
		if (!status)
			printf("%-40s %12.1f %12.1f %7.1fx\n", op_names[op], c, p, p / c);
	}
	teardown(&classic);
	teardown(&pq);
	return status;
}
