/* libFuzzer target: identity files and recipient lists, i.e. bech32 and
 * the line parser, with arbitrary bytes. */
#include <stdint.h>
#include <string.h>

#include "base/secmem.h"
#include "age/keys.h"

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
	return 0;
}
