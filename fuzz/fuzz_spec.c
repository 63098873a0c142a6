/* libFuzzer target: the spec loader (placeholder; issue 8 gives it a
 * memory-input entry point with the depth and size limits). */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
