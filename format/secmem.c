#include "secmem.h"

#include <sodium.h>

int vf_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void *vf_secure_alloc(size_t len)
{
	return sodium_malloc(len ? len : 1);
}

void vf_secure_free(void *p)
{
	sodium_free(p);
}

void vf_wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}

int vf_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}
