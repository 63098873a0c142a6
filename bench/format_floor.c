/* format_floor - the age payload's own work on one core, for
 * stream_bench.sh.
 *
 * The stream's floor there takes the AEAD's speed from `openssl speed`,
 * which runs one ChaCha20-Poly1305 stream over a 64 KiB buffer that stays
 * in the cache. The format asks for more: every 64 KiB chunk has its own
 * nonce and tag (a fresh start and a finish of the AEAD), and each chunk
 * comes from the page cache just before it is sealed. This program does
 * exactly that on one thread and nothing else: reads FILE in groups of
 * four chunks with one pread each (as the stream does), seals or opens
 * every chunk into a ring of output slots, writes nothing, has no
 * ordering, no threads, no key agreement. Its time is the format's work
 * on one core; divided over the cores, a floor that no threading of it
 * can beat.
 *
 * Usage: format_floor encrypt|decrypt FILE
 *
 * decrypt reads FILE in chunks of 64 KiB + 16 and opens each with a key
 * that is not the file's, so every tag check fails: the work up to the
 * check (the ChaCha20 pass and the Poly1305 over the ciphertext) is the
 * same as for a good tag. Exits 0 after one pass over the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK 65536
#define TAG 16
#define GROUP 4 /* chunks per read, as format/age/stream.c */
#define SLOTS 4 /* output groups in the ring, as on two cores */
#define PAGES(n) (((n) + 4095) / 4096 * 4096) /* aligned_alloc's size rule */

static int die(const char *what)
{
	fprintf(stderr, "format_floor: %s: %s\n", what, errno ? strerror(errno) : "failed");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "encrypt") != 0 && strcmp(argv[1], "decrypt") != 0)) {
		fprintf(stderr, "usage: format_floor encrypt|decrypt FILE\n");
		return 2;
	}
	int encrypt = strcmp(argv[1], "encrypt") == 0;
	size_t in_size = encrypt ? CHUNK : CHUNK + TAG;
	int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die(argv[2]);
	unsigned char *in = aligned_alloc(4096, PAGES(GROUP * (CHUNK + TAG)));
	unsigned char *out = aligned_alloc(4096, PAGES(SLOTS * GROUP * (CHUNK + TAG)));
	EVP_CIPHER *aead = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char key[32] = {0}, nonce[12] = {0};
	if (!in || !out || !aead || !ctx ||
	    EVP_CipherInit_ex2(ctx, aead, key, nonce, encrypt, NULL) != 1)
		return die("setting up");
	memset(out, 0, SLOTS * GROUP * (CHUNK + TAG));
	unsigned long long counter = 0;
	for (off_t at = 0;;) {
		ssize_t got = pread(fd, in, GROUP * in_size, at);
		if (got < 0)
			return die("pread");
		if (got == 0)
			break;
		at += got;
		for (size_t off = 0; off < (size_t)got; off += in_size, counter++) {
			size_t len = (size_t)got - off < in_size ? (size_t)got - off : in_size;
			size_t body = encrypt ? len : (len > TAG ? len - TAG : 0);
			unsigned char *dst = out + (counter % (SLOTS * GROUP)) * (CHUNK + TAG);
			int n = 0;
			memcpy(nonce + 3, &counter, sizeof(counter)); /* a fresh nonce per chunk */
			if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, encrypt, NULL) != 1 ||
			    EVP_CipherUpdate(ctx, dst, &n, in + off, (int)body) != 1)
				return die("the AEAD");
			if (encrypt) {
				if (EVP_CipherFinal_ex(ctx, dst + body, &n) != 1 ||
				    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, dst + body) != 1)
					return die("the AEAD");
			} else {
				/* The tag is checked and fails (not the file's key). */
				EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, in + off + body);
				(void)EVP_CipherFinal_ex(ctx, dst + body, &n);
			}
		}
	}
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(aead);
	free(in);
	free(out);
	close(fd);
	return 0;
}
