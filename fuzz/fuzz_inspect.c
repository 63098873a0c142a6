/* libFuzzer target: arbitrary bytes through varseal inspect's library half
 * (armor detection, header parsing, the keyless stanza checks, the payload
 * arithmetic), once with the length known as for a regular file and once
 * read to the end as for a pipe: both must agree. Any crash, leak or
 * sanitizer report is a bug; errors are the expected outcome. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "age/inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum vf_code run(const uint8_t *data, size_t size, off_t known,
			struct vf_inspection *x)
{
	struct vf_mem_src src;
	vf_mem_src_init(&src, data, size);
	return vf_inspect(&src.base, known, 22, x, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (vf_init() != 0)
			return 0;
		ready = 1;
	}
	struct vf_inspection sized, piped;
	enum vf_code a = run(data, size, (off_t)size, &sized);
	enum vf_code b = run(data, size, -1, &piped);
	if ((a == VF_OK) != (b == VF_OK))
		abort();
	if (a == VF_OK &&
	    (sized.payload_len != piped.payload_len || sized.chunks != piped.chunks ||
	     sized.file_len != size || piped.file_len != size ||
	     sized.header_len + sized.overhead_len + sized.payload_len + sized.armor_len != size))
		abort();
	if (a == VF_OK)
		vf_inspection_free(&sized);
	if (b == VF_OK)
		vf_inspection_free(&piped);
	return 0;
}
