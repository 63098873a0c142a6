/* libFuzzer target: identity files and recipient lists, i.e. bech32 and
 * the line parser, with arbitrary bytes; and bech32's two decoders (the
 * constant-time one for identities, the table one for recipients), which
 * must agree on every input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/bech32.h"
#include "base/secmem.h"
#include "age/keys.h"

static void same_decoders(const uint8_t *data, size_t size)
{
	char hrp_a[64], hrp_b[64];
	uint8_t out_a[2048], out_b[2048];
	size_t n_a = 0, n_b = 0;
	bool a = vf_bech32_decode((const char *)data, size, hrp_a, sizeof(hrp_a), out_a,
				  sizeof(out_a), &n_a);
	bool b = vf_bech32_decode_public((const char *)data, size, hrp_b, sizeof(hrp_b), out_b,
					 sizeof(out_b), &n_b);
	if (a != b || (a && (n_a != n_b || strcmp(hrp_a, hrp_b) || memcmp(out_a, out_b, n_a))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (vf_init() != 0)
			return 0;
		ready = 1;
	}
	struct vf_identities ids = {0};
	struct vf_recipients rcpts = {0};
	struct vf_error err;
	vf_identities_parse((const char *)data, size, "fuzz", &ids, &err);
	vf_recipients_parse((const char *)data, size, "fuzz", &rcpts, &err);
	vf_identities_free(&ids);
	vf_recipients_free(&rcpts);
	same_decoders(data, size);
	return 0;
}
