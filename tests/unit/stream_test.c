/* Unit tests of the payload stream reading a regular file out of order
 * (format/age/stream.c, run_positional): with two threads, a large file's
 * chunks are read by the thread that seals each group of them (pread),
 * and only the last chunk is read in order.
 *  1. At sizes around the point where that starts, and from a position
 *     other than the file's start, the ciphertext is byte for byte what the
 *     in-order reader makes of the same bytes with the same key and nonce,
 *     it opens to the file's bytes, and the descriptor's position ends at
 *     the end of the file, as read() would have left it.
 *  2. Opening: a ciphertext file read out of order, through a buffered
 *     reader that holds bytes past a header (as vf_decrypt's does), opens
 *     to the same plaintext as from memory; a corrupt chunk, trailing
 *     data and a missing end fail with the same message either way.
 *  3. A file that grows while it is sealed is read to its new end (as age
 *     does); one that shrinks fails with "shrank", rather than ending with
 *     a chunk that was sealed as not the last. The change is made from the
 *     sink, on the first write: the stream writes the first group of
 *     chunks while the others are sealed, and has read at most a ring of
 *     groups (two per thread: 32 chunks with four threads) beyond it.
 *  4. A read that fails midway (the descriptor no longer readable after
 *     the first write) fails with the read's error, and what was written
 *     is a prefix of the right ciphertext, the rest withheld.
 *  5. Through a slow output (a sleep in every write), sealing and opening
 *     give what they give in order: the threads wait for the ring.
 * All of it with two, three and four threads (the ring's size follows),
 * and with the ring from 24 chunks, which the sizes above are chosen
 * around, rather than the default 128 (RING_FROM); the in-order reader
 * of memory they are checked against (a source of unknown length, as a
 * pipe) then grows to full batches after 24 chunks too, and must agree.
 * Then, at the default:
 *  6. Sizes around RING_FROM, and below it, where a regular file is read
 *     in order in batches of two chunks: the same ciphertext as from
 *     memory (full batches), and a file that grows while it is sealed
 *     in those batches is read to its new end.
 *  7. Memory refused where the stream grows past its first buffers (the
 *     ring of a large file; full batches for a pipe after RING_FROM
 *     chunks, a growth that keeps both batches' input): sealing and
 *     opening fail with "out of memory" and free what they had (the
 *     ASan build checks for leaks). vf_huge_alloc (the stream's
 *     blocks) is wrapped at link time (-Wl,--wrap,
 *     tests/unit/CMakeLists.txt) to refuse large requests on demand.
 *  8. Without transparent huge pages (prctl PR_SET_THP_DISABLE, as on a
 *     host where they are off), 6 again and a large file opened: the
 *     same bytes, from blocks that the kernel says no huge page may back
 *     (each block looked at in /proc/self/smaps as the wrapper hands it
 *     out; THPeligible where the kernel says it, AnonHugePages always). */
#include <fcntl.h>
#include <sys/prctl.h>
#include <time.h>

#include "age/stream.h"
#include "base/io.h"
#include "base/secmem.h"
#include "unit.h"

#define CHUNK 65536

/* While set, the stream's blocks (vf_huge_alloc) of this many bytes or
 * more are refused, as when mmap fails; refusals counts them. The block
 * of batches of two chunks (512 KiB) stays under it; the ring's block
 * (its slots and the threads' groups: 24 chunks or more) and that of
 * full batches (48 chunks' worth with both sides) are not. Its one-chunk
 * buffers come from the scratch stack and malloc, never this large. */
#define REFUSED_FROM (16 * CHUNK)
static bool refuse_large;
static unsigned refusals;
/* While thp_off, each block handed out is looked at (8): blocks_huge
 * counts those a huge page may back, or does. */
static bool thp_off;
static unsigned blocks_seen, blocks_huge;
void *__real_vf_huge_alloc(size_t len, size_t *cap);
void *__wrap_vf_huge_alloc(size_t len, size_t *cap);
void *__wrap_vf_huge_alloc(size_t len, size_t *cap)
{
	if (refuse_large && len >= REFUSED_FROM) {
		refusals++;
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_vf_huge_alloc(len, cap);
	if (p && thp_off) {
		struct unit_smaps m;
		bool found = unit_smaps_of(p, &m);
		blocks_seen++;
		if (!found || m.thp_eligible > 0 || m.huge_kib != 0)
			blocks_huge++;
	}
	return p;
}

static const uint8_t file_key[VF_FILE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t nonce[VF_PAYLOAD_NONCE_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static char dir[256];

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len ? len : 1);
	unit_must(p != NULL, "malloc");
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
	return p;
}

static int file_with(const uint8_t *data, size_t len)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/plain", dir);
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	unit_must(fd >= 0, path);
	unit_must(write(fd, data, len) == (ssize_t)len, "write");
	return fd;
}

/* Seals what src gives into ct with the fixed key and nonce. */
static enum vf_code seal_into(struct vf_src *src, struct vf_sink *sink, struct vf_error *err)
{
	return vf_stream_encrypt(file_key, nonce, src, sink, err);
}

static bool opens_to(const struct vf_buf *ct, const uint8_t *want, size_t want_len)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, ct->data, ct->len);
	struct vf_buf pt;
	vf_buf_init(&pt);
	struct vf_error err = {0};
	bool ok = vf_stream_decrypt(file_key, nonce, &src.base, &pt.sink, &err) == VF_OK &&
		  pt.len == want_len && (!want_len || memcmp(pt.data, want, want_len) == 0);
	vf_buf_free(&pt);
	return ok;
}

static void same_as_in_order(size_t len, size_t start)
{
	uint8_t *data = pattern(len, (unsigned)(len + start));
	int fd = file_with(data, len);
	unit_must(lseek(fd, (off_t)start, SEEK_SET) == (off_t)start, "lseek");
	struct vf_fd_src fsrc;
	vf_fd_src_init(&fsrc, fd, "plain");
	struct vf_buf by_file, by_memory;
	vf_buf_init(&by_file);
	vf_buf_init(&by_memory);
	struct vf_error err = {0};
	CHECK_OK(seal_into(&fsrc.base, &by_file.sink, &err), err,
		 "%zu bytes from offset %zu: sealed from the file", len, start);
	struct vf_mem_src msrc;
	vf_mem_src_init(&msrc, data + start, len - start);
	CHECK_OK(seal_into(&msrc.base, &by_memory.sink, &err), err,
		 "%zu bytes from offset %zu: sealed from memory", len, start);
	CHECK(by_file.len == by_memory.len &&
		      memcmp(by_file.data, by_memory.data, by_file.len) == 0,
	      "%zu bytes from offset %zu: the same ciphertext either way (%zu, %zu bytes)", len,
	      start, by_file.len, by_memory.len);
	CHECK(opens_to(&by_file, data + start, len - start),
	      "%zu bytes from offset %zu: opens to the file's bytes", len, start);
	CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)len,
	      "%zu bytes from offset %zu: the position ends at the end of the file", len, start);
	vf_buf_free(&by_file);
	vf_buf_free(&by_memory);
	close(fd);
	free(data);
}

/* The payload of len bytes, sealed in memory. */
static void sealed(const uint8_t *data, size_t len, struct vf_buf *ct)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, data, len);
	vf_buf_init(ct);
	struct vf_error err = {0};
	unit_must(seal_into(&src.base, &ct->sink, &err) == VF_OK, "sealing in memory");
}

/* Opens file (prefix, then ct) after reading the prefix through a buffered
 * reader; the message of the failure, or "" and the plaintext in pt. */
static enum vf_code open_file(const uint8_t *file, size_t len, size_t prefix, struct vf_buf *pt,
			      struct vf_error *err, off_t *pos)
{
	int fd = file_with(file, len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	struct vf_fd_src fsrc;
	vf_fd_src_init(&fsrc, fd, "sealed");
	struct vf_bufreader br;
	unit_must(vf_bufreader_init(&br, &fsrc.base, 4096, err) == VF_OK, "bufreader");
	uint8_t head[64];
	size_t got = 0;
	unit_must(prefix <= sizeof(head) &&
			  vf_read_full(&br.base, head, prefix, &got, err) == VF_OK && got == prefix,
		  "reading the prefix");
	vf_buf_init(pt);
	enum vf_code rc = vf_stream_decrypt(file_key, nonce, &br.base, &pt->sink, err);
	*pos = lseek(fd, 0, SEEK_CUR);
	vf_bufreader_free(&br);
	close(fd);
	return rc;
}

static enum vf_code open_memory(const uint8_t *ct, size_t len, struct vf_error *err)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, ct, len);
	struct vf_buf pt;
	vf_buf_init(&pt);
	enum vf_code rc = vf_stream_decrypt(file_key, nonce, &src.base, &pt.sink, err);
	vf_buf_free(&pt);
	return rc;
}

/* ct with prefix bytes before it and tail bytes of garbage after it, and
 * one byte flipped at flip (SIZE_MAX: none). */
static uint8_t *file_of(const struct vf_buf *ct, size_t prefix, size_t tail, size_t flip,
			size_t *len)
{
	*len = prefix + ct->len + tail;
	uint8_t *f = pattern(*len, 3);
	memcpy(f + prefix, ct->data, ct->len);
	if (flip != SIZE_MAX)
		f[prefix + flip] ^= 1;
	return f;
}

static void opens_as_in_order(size_t len)
{
	uint8_t *data = pattern(len, (unsigned)len);
	struct vf_buf ct, pt;
	sealed(data, len, &ct);
	size_t flen, prefix = 37;
	uint8_t *file = file_of(&ct, prefix, 0, SIZE_MAX, &flen);
	struct vf_error err = {0};
	off_t pos = 0;
	CHECK_OK(open_file(file, flen, prefix, &pt, &err, &pos), err,
		 "%zu bytes after a %zu-byte prefix: opened from the file", len, prefix);
	CHECK(pt.len == len && (!len || memcmp(pt.data, data, len) == 0),
	      "%zu bytes: the plaintext", len);
	CHECK(pos == (off_t)flen, "%zu bytes: the position ends at the end of the file", len);
	vf_buf_free(&pt);
	free(file);
	vf_buf_free(&ct);
	free(data);
}

/* The file and the same bytes in memory fail with the same message. */
static void fails_alike(const struct vf_buf *ct, size_t tail, size_t flip, size_t cut,
			const char *want, const char *what)
{
	size_t flen;
	uint8_t *file = file_of(ct, 5, tail, flip, &flen);
	flen -= cut;
	struct vf_error ferr = {0}, merr = {0};
	struct vf_buf pt;
	off_t pos;
	enum vf_code frc = open_file(file, flen, 5, &pt, &ferr, &pos);
	vf_buf_free(&pt);
	enum vf_code mrc = open_memory(file + 5, flen - 5, &merr);
	CHECK(frc != VF_OK && frc == mrc && strcmp(ferr.msg, merr.msg) == 0 &&
		      strstr(ferr.msg, want),
	      "%s: the same failure from the file and from memory (\"%s\", \"%s\")", what,
	      frc == VF_OK ? "opened" : ferr.msg, mrc == VF_OK ? "opened" : merr.msg);
	free(file);
}

static void open_failures(void)
{
	size_t len = 80 * CHUNK + 100;
	uint8_t *data = pattern(len, 5);
	struct vf_buf ct;
	sealed(data, len, &ct);
	size_t enc = CHUNK + 16;
	fails_alike(&ct, 0, 30 * enc + 7, 0, "payload chunk 30 is corrupt", "a corrupt chunk");
	fails_alike(&ct, 0, 2, 0, "payload chunk 0 is corrupt", "a corrupt first chunk");
	fails_alike(&ct, 3 * enc, SIZE_MAX, 0, "payload chunk 80 is corrupt",
		    "data after a short last chunk");
	fails_alike(&ct, 0, SIZE_MAX, 100 + 16, "truncated", "the last chunk cut off");
	fails_alike(&ct, 0, SIZE_MAX, 50, "corrupt or truncated", "the last chunk cut short");
	vf_buf_free(&ct);
	/* A full last chunk, then more: it opens as the last, and the rest is
	 * trailing data. */
	sealed(data, 80 * CHUNK, &ct);
	fails_alike(&ct, 3 * enc, SIZE_MAX, 0, "trailing data after the end",
		    "data after a full last chunk");
	vf_buf_free(&ct);
	free(data);
}

/* A sink that changes the file on its first write, then collects. */
struct changing_sink {
	struct vf_buf buf;
	int fd;
	off_t new_len; /* truncate to this, or */
	const uint8_t *append;
	size_t append_len;
	int unreadable; /* or else: put this write-only descriptor in fd's place */
	bool changed;
};

static enum vf_code change_then_write(struct vf_sink *sink, const struct iovec *iov, int n,
				      struct vf_error *err)
{
	struct changing_sink *s = (struct changing_sink *)sink;
	if (!s->changed) {
		s->changed = true;
		/* pwrite at the size from fstat: the descriptor's position is the
		 * source's, and must not move. */
		struct stat st;
		unit_must(fstat(s->fd, &st) == 0, "fstat");
		if (s->unreadable >= 0)
			unit_must(dup2(s->unreadable, s->fd) == s->fd, "dup2");
		else if (s->append)
			unit_must(pwrite(s->fd, s->append, s->append_len, st.st_size) ==
					  (ssize_t)s->append_len,
				  "append");
		else
			unit_must(ftruncate(s->fd, s->new_len) == 0, "ftruncate");
	}
	for (int i = 0; i < n; i++) {
		enum vf_code rc = vf_buf_append(&s->buf, iov[i].iov_base, iov[i].iov_len, err);
		if (rc != VF_OK)
			return rc;
	}
	return VF_OK;
}

static void changing_sink_init(struct changing_sink *s, int fd)
{
	memset(s, 0, sizeof(*s));
	vf_buf_init(&s->buf);
	s->buf.sink.write = change_then_write;
	s->fd = fd;
	s->unreadable = -1;
}

/* Seals len bytes of data from a file that the sink changes on its first
 * write: appending the append bytes of data that follow, or else cutting
 * the file to new_len. The ciphertext is left in sink->buf. */
static enum vf_code seal_changing(const uint8_t *data, size_t len, size_t append, off_t new_len,
				  struct changing_sink *sink, struct vf_error *err)
{
	int fd = file_with(data, len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	struct vf_fd_src src;
	vf_fd_src_init(&src, fd, "plain");
	changing_sink_init(sink, fd);
	sink->append = append ? data + len : NULL;
	sink->append_len = append;
	sink->new_len = new_len;
	enum vf_code rc = seal_into(&src.base, &sink->buf.sink, err);
	close(fd);
	return rc;
}

static void grows_while_sealed(size_t len)
{
	size_t extra = 3 * CHUNK + 77;
	uint8_t *data = pattern(len + extra, 7);
	struct changing_sink sink;
	struct vf_error err = {0};
	CHECK_OK(seal_changing(data, len, extra, 0, &sink, &err), err,
		 "a file of %zu bytes that grows while sealed: sealed", len);
	CHECK(sink.changed && opens_to(&sink.buf, data, len + extra),
	      "a file of %zu bytes that grows while sealed: opens to all of it, the growth "
	      "included",
	      len);
	vf_buf_free(&sink.buf);
	free(data);
}

static void shrinks_while_sealed(off_t new_len, const char *what)
{
	size_t len = 100 * CHUNK + 5;
	uint8_t *data = pattern(len, 11);
	struct changing_sink sink;
	struct vf_error err = {0};
	enum vf_code rc = seal_changing(data, len, 0, new_len, &sink, &err);
	CHECK(rc == VF_E_IO && strstr(err.msg, "plain: the file shrank while it was read"),
	      "a file that shrinks %s: fails (%s)", what, rc == VF_OK ? "sealed" : err.msg);
	vf_buf_free(&sink.buf);
	free(data);
}

/* A sink that takes a while over every write, as a slow pipe or disk
 * does: the threads reading out of order fill the ring and go to sleep
 * until a slot is written out. */
static enum vf_code slow_write(struct vf_sink *sink, const struct iovec *iov, int n,
			       struct vf_error *err)
{
	const struct timespec pause = {.tv_nsec = 2 * 1000 * 1000};
	nanosleep(&pause, NULL);
	for (int i = 0; i < n; i++) {
		enum vf_code rc = vf_buf_append((struct vf_buf *)sink, iov[i].iov_base,
						iov[i].iov_len, err);
		if (rc != VF_OK)
			return rc;
	}
	return VF_OK;
}

static void through_a_slow_sink(void)
{
	size_t len = 150 * CHUNK + 11;
	uint8_t *data = pattern(len, 17);
	struct vf_buf want, ct, pt;
	sealed(data, len, &want);
	struct vf_error err = {0};
	int fd = file_with(data, len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	struct vf_fd_src src;
	vf_fd_src_init(&src, fd, "plain");
	vf_buf_init(&ct);
	ct.sink.write = slow_write;
	CHECK_OK(seal_into(&src.base, &ct.sink, &err), err, "a slow output: sealed");
	CHECK(ct.len == want.len && memcmp(ct.data, want.data, ct.len) == 0,
	      "a slow output: the same ciphertext as sealed in order");
	close(fd);
	fd = file_with(want.data, want.len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	vf_fd_src_init(&src, fd, "sealed");
	vf_buf_init(&pt);
	pt.sink.write = slow_write;
	CHECK_OK(vf_stream_decrypt(file_key, nonce, &src.base, &pt.sink, &err), err,
		 "a slow output: opened");
	CHECK(pt.len == len && memcmp(pt.data, data, len) == 0,
	      "a slow output: opens to the plaintext");
	close(fd);
	vf_buf_free(&pt);
	vf_buf_free(&ct);
	vf_buf_free(&want);
	free(data);
}

static void read_fails_midway(void)
{
	size_t len = 100 * CHUNK + 5;
	uint8_t *data = pattern(len, 13);
	struct vf_buf want;
	sealed(data, len, &want);
	int fd = file_with(data, len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	char path[300];
	snprintf(path, sizeof(path), "%s/plain", dir);
	int wronly = open(path, O_WRONLY | O_CLOEXEC);
	unit_must(wronly >= 0, path);
	struct vf_fd_src src;
	vf_fd_src_init(&src, fd, "plain");
	struct changing_sink sink;
	changing_sink_init(&sink, fd);
	sink.unreadable = wronly;
	struct vf_error err = {0};
	enum vf_code rc = seal_into(&src.base, &sink.buf.sink, &err);
	CHECK(rc == VF_E_IO && strcmp(err.msg, "reading plain: Bad file descriptor") == 0,
	      "a read that fails midway: fails with the read's error (%s)",
	      rc == VF_OK ? "sealed" : err.msg);
	CHECK(sink.changed && sink.buf.len < want.len &&
		      memcmp(sink.buf.data, want.data, sink.buf.len) == 0,
	      "a read that fails midway: %zu of %zu bytes written, a prefix of the ciphertext",
	      sink.buf.len, want.len);
	close(wronly);
	close(fd);
	vf_buf_free(&sink.buf);
	vf_buf_free(&want);
	free(data);
}

static void refused(const char *what, enum vf_code rc, const struct vf_error *err)
{
	CHECK(refusals > 0 && rc == VF_E_NOMEM && strcmp(err->msg, "out of memory") == 0,
	      "%s, memory refused: fails with \"out of memory\" (got %d, \"%s\", %u refused)",
	      what, (int)rc, err->msg, refusals);
	refusals = 0;
}

/* 7. Each case would succeed with the memory (the cases above). */
static void out_of_memory(void)
{
	size_t len = 40 * CHUNK + 5;
	uint8_t *data = pattern(len, 7);
	struct vf_buf ct, sink;
	sealed(data, len, &ct);
	vf_buf_init(&sink);
	struct vf_error err = {0};
	refuse_large = true;

	int fd = file_with(data, len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	struct vf_fd_src fsrc;
	vf_fd_src_init(&fsrc, fd, "plain");
	refused("sealing a file of 40 chunks (the ring)", seal_into(&fsrc.base, &sink.sink, &err),
		&err);
	close(fd);

	struct vf_mem_src msrc;
	vf_mem_src_init(&msrc, data, len);
	sink.len = 0;
	refused("sealing 40 chunks of unknown length (full batches)",
		seal_into(&msrc.base, &sink.sink, &err), &err);

	struct vf_buf pt;
	vf_buf_init(&pt);
	fd = file_with(ct.data, ct.len);
	unit_must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	vf_fd_src_init(&fsrc, fd, "ct");
	refused("opening a file of 40 chunks (the ring)",
		vf_stream_decrypt(file_key, nonce, &fsrc.base, &pt.sink, &err), &err);
	close(fd);

	vf_mem_src_init(&msrc, ct.data, ct.len);
	refused("opening 40 chunks of unknown length (full batches)",
		vf_stream_decrypt(file_key, nonce, &msrc.base, &pt.sink, &err), &err);

	refuse_large = false;
	vf_mem_src_init(&msrc, ct.data, ct.len);
	pt.len = 0;
	CHECK_OK(vf_stream_decrypt(file_key, nonce, &msrc.base, &pt.sink, &err), err,
		 "the memory given back: 40 chunks open again");
	CHECK(pt.len == len && memcmp(pt.data, data, len) == 0,
	      "the memory given back: to the same bytes");
	vf_buf_free(&pt);
	vf_buf_free(&sink);
	vf_buf_free(&ct);
	free(data);
}

static void all_cases(void)
{
	const size_t sizes[] = {0,	       1,	       CHUNK,	       24 * CHUNK,
				24 * CHUNK + 1, 25 * CHUNK,     25 * CHUNK + 1, 37 * CHUNK + 17,
				48 * CHUNK,     49 * CHUNK + 3, 100 * CHUNK};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		same_as_in_order(sizes[i], 0);
	same_as_in_order(60 * CHUNK + 9, 1000);
	same_as_in_order(60 * CHUNK + 9, 60 * CHUNK + 9); /* nothing left to read */
	const size_t open_sizes[] = {0, 1, 24 * CHUNK, 25 * CHUNK - 16, 25 * CHUNK + 1,
				     80 * CHUNK, 80 * CHUNK + 100};
	for (size_t i = 0; i < sizeof(open_sizes) / sizeof(open_sizes[0]); i++)
		opens_as_in_order(open_sizes[i]);
	open_failures();
	grows_while_sealed(100 * CHUNK + 5);
	shrinks_while_sealed(40 * CHUNK + 3, "in the middle");
	shrinks_while_sealed(100 * CHUNK, "to its last chunk's start");
	read_fails_midway();
	through_a_slow_sink();
	out_of_memory();
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "vf_init failed\n");
		return 2;
	}
	unit_tempdir(dir, sizeof(dir), "vars-stream");
	/* Two threads or more whatever the machine: reading out of order
	 * needs them, and the ring has two slots per thread. */
	vf_stream_set_ring_from(24);
	for (unsigned threads = 2; threads <= 4; threads++) {
		printf("stream_test: %u threads\n", threads);
		fflush(stdout);
		vf_stream_set_threads(threads);
		all_cases();
	}
	printf("stream_test: the default ring threshold, 2 threads\n");
	vf_stream_set_ring_from(0);
	vf_stream_set_threads(2);
	const size_t sizes[] = {2 * CHUNK,	    2 * CHUNK + 1,   5 * CHUNK + 3,
				24 * CHUNK + 1,	    128 * CHUNK,     128 * CHUNK + 1,
				129 * CHUNK + 1000, 130 * CHUNK + 7};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		same_as_in_order(sizes[i], 0);
	opens_as_in_order(24 * CHUNK + 1);
	opens_as_in_order(130 * CHUNK + 7);
	grows_while_sealed(5 * CHUNK + 5);

	printf("stream_test: transparent huge pages off, 2 threads\n");
	unit_must(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "prctl(PR_SET_THP_DISABLE)");
	thp_off = true;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		same_as_in_order(sizes[i], 0);
	opens_as_in_order(130 * CHUNK + 7);
	CHECK(blocks_seen > 0 && blocks_huge == 0,
	      "huge pages off: %u blocks, none that a huge page may back or does (%u)", blocks_seen,
	      blocks_huge);
	unit_rmtree(dir);
	return unit_done();
}
