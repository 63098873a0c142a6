/* libFuzzer target: the spec parser from memory (vf_spec_parse) with its
 * limits (1 MiB, 64 levels of nesting, 256 anchors, aliases within 2^20
 * nodes), then the dependency walks over every spec it accepts.
 *
 * Inputs are taken as they are, except those starting with 0xff: then
 * bytes 1 and 2 are a repeat count (big-endian) and the rest is repeated
 * that many times, up to 2 MiB, so that a small input can reach the size
 * limit or nest thousands of levels deep ("\xff\xff\xff[" is 65,535
 * nested sequences). Run with scripts/fuzz.sh, seeded with examples/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/secmem.h"
#include "vars/spec.h"
#include "vars/vars.h"

#define REPEAT_MARK 0xff
#define REPEAT_MAX (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The repeated text, or NULL when the input is not a repeat. */
static char *repeated(const uint8_t *data, size_t size, size_t *len)
{
	if (size < 4 || data[0] != REPEAT_MARK)
		return NULL;
	size_t count = (size_t)data[1] << 8 | data[2], unit = size - 3;
	if (count * unit > REPEAT_MAX)
		count = REPEAT_MAX / unit;
	char *text = malloc(count * unit + 1);
	if (!text)
		return NULL;
	for (size_t i = 0; i < count; i++)
		memcpy(text + i * unit, data + 3, unit);
	*len = count * unit;
	return text;
}

/* The walks must end, agree with each other, and stay within the spec. */
static void walk(const struct vf_spec *spec)
{
	for (size_t i = 0; i < spec->n_machines; i++) {
		const struct vf_spec_machine *m = &spec->machines[i];
		const struct vf_spec_generator **gens = NULL;
		size_t n = 0;
		struct vf_error err;
		if (vf_vars_machine_generators(spec, m, &gens, &n, &err) != VF_OK)
			abort(); /* the loader checked every name and refused cycles */
		if (n > spec->n_generators)
			abort();
		for (size_t k = 0; k < n; k++)
			if (!vf_vars_machine_uses(spec, m, gens[k]))
				abort();
		free(gens);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (vf_init() != 0)
			return 0;
		ready = 1;
	}
	size_t len = size;
	char *text = repeated(data, size, &len);
	struct vf_spec spec;
	struct vf_error err;
	if (vf_spec_parse("fuzz.yaml", text ? text : (const char *)data, len, &spec, &err) ==
	    VF_OK) {
		walk(&spec);
		vf_spec_free(&spec);
	}
	free(text);
	return 0;
}
