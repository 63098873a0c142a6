/* libFuzzer target: arbitrary bytes through the whole decryption path
 * (armor detection, header parsing, X25519 and scrypt unwrapping, MAC,
 * STREAM). The identity is the CCTV vectors' test key, so that seeds taken
 * from the vectors reach the payload code. Any crash, hang, leak or
 * sanitizer report is a bug; errors are the expected outcome. */
#include <stdint.h>
#include <string.h>

#include "base/secmem.h"
#include "age/age.h"

#define TEST_IDENTITY "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum vf_code give_passphrase(void *ctx, uint8_t **pass, size_t *len,
				    struct vf_error *err)
{
	(void)ctx;
	*pass = vf_secure_alloc(8);
	if (!*pass)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	memcpy(*pass, "password", 8);
	*len = 8;
	return VF_OK;
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
	struct vf_identity *ids[2];
	if (vf_x25519_identity_parse(TEST_IDENTITY, strlen(TEST_IDENTITY), &ids[0], NULL) != VF_OK)
		return 0;
	/* A low work factor cap keeps each input fast. */
	if (vf_scrypt_identity_new(give_passphrase, NULL, 10, &ids[1], NULL) != VF_OK) {
		vf_identity_free(ids[0]);
		return 0;
	}
	struct vf_mem_src src;
	vf_mem_src_init(&src, data, size);
	struct vf_buf out;
	vf_buf_init(&out);
	struct vf_error err;
	vf_decrypt(ids, 2, &src.base, VF_ARMOR_AUTO, &out.sink, &err);
	vf_buf_free(&out);
	vf_identity_free(ids[0]);
	vf_identity_free(ids[1]);
	return 0;
}
