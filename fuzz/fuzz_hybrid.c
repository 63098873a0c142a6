/* libFuzzer target: age 1.3's hybrid post-quantum keys and stanza. The
 * first byte picks what the rest is (modulo 3):
 *
 *   0  an age file, opened with the CCTV hybrid vectors' identity (so that
 *      seeds from those vectors reach the stanza checks, X-Wing
 *      decapsulation and the payload) and inspected without a key: a file
 *      that opens must also inspect;
 *   1  a recipient string: one that parses (bech32 of any length, the
 *      modulus check) must take a file key (X-Wing encapsulation);
 *   2  an identity file: every identity in it must give a recipient that
 *      parses back, and a file sealed to that recipient must open with it.
 *
 * Any crash, leak, sanitizer report or abort() is a bug; errors are the
 * expected outcome. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "age/age.h"
#include "age/inspect.h"
#include "age/keys.h"

#define TEST_IDENTITY "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void open_file(const uint8_t *data, size_t size)
{
	struct vf_identity *id;
	if (vf_hybrid_identity_parse(TEST_IDENTITY, strlen(TEST_IDENTITY), &id, NULL) != VF_OK)
		abort();
	struct vf_mem_src src;
	vf_mem_src_init(&src, data, size);
	struct vf_buf out;
	vf_buf_init(&out);
	enum vf_code opened = vf_decrypt(&id, 1, &src.base, VF_ARMOR_AUTO, &out.sink, NULL);
	vf_buf_free(&out);
	vf_identity_free(id);
	struct vf_inspection x;
	vf_mem_src_init(&src, data, size);
	enum vf_code inspected = vf_inspect(&src.base, (off_t)size, 22, &x, NULL);
	if (inspected == VF_OK)
		vf_inspection_free(&x);
	/* Decryption checks all that inspection does, and more. */
	if (opened == VF_OK && inspected != VF_OK)
		abort();
}

/* A file key wrapped to every recipient: must work for any that parsed. */
static void seal_to(struct vf_recipient *r)
{
	static const uint8_t file_key[VF_FILE_KEY_LEN] = "YELLOW SUBMARINE";
	struct vf_header h;
	enum vf_code rc = vf_wrap_header(&r, 1, file_key, &h, NULL);
	if (rc == VF_OK)
		vf_header_free(&h);
	else if (rc != VF_E_NOMEM)
		abort();
}

static void parse_recipient(const uint8_t *data, size_t size)
{
	if (memchr(data, '\0', size))
		return;
	char *s = malloc(size + 1);
	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	struct vf_recipient *r;
	if (vf_recipient_parse(s, &r, NULL) == VF_OK) {
		if (r->ops->post_quantum)
			seal_to(r);
		vf_recipient_free(r);
	}
	free(s);
}

/* Sealed to id's own recipient, "x" opens with id. */
static void round_trip(struct vf_identity *id)
{
	char *recipient = NULL;
	struct vf_recipient *r = NULL;
	if (vf_identity_recipient(id, &recipient, NULL) != VF_OK)
		return; /* a type with no recipient string (none parse here), or memory */
	if (vf_recipient_parse(recipient, &r, NULL) != VF_OK)
		abort();
	struct vf_mem_src src;
	struct vf_buf sealed, opened;
	vf_buf_init(&sealed);
	vf_buf_init(&opened);
	vf_mem_src_init(&src, (const uint8_t *)"x", 1);
	if (vf_encrypt(&r, 1, &src.base, &sealed.sink, NULL) != VF_OK)
		abort();
	vf_mem_src_init(&src, sealed.data, sealed.len);
	if (vf_decrypt(&id, 1, &src.base, VF_ARMOR_NO, &opened.sink, NULL) != VF_OK ||
	    opened.len != 1 || opened.data[0] != 'x')
		abort();
	vf_buf_free(&sealed);
	vf_buf_free(&opened);
	vf_recipient_free(r);
	free(recipient);
}

static void parse_identities(const uint8_t *data, size_t size)
{
	struct vf_identities ids = {0};
	if (vf_identities_parse((const char *)data, size, "fuzz", &ids, NULL) == VF_OK)
		for (size_t i = 0; i < ids.n; i++)
			if (vf_is_native_identity(ids.items[i]))
				round_trip(ids.items[i]);
	vf_identities_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (vf_init() != 0)
			return 0;
		vf_stream_set_threads(1);
		ready = 1;
	}
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0: open_file(data + 1, size - 1); break;
	case 1: parse_recipient(data + 1, size - 1); break;
	default: parse_identities(data + 1, size - 1); break;
	}
	return 0;
}
