/* The tools' OpenSSL provider (format/base/provider.c says why and how):
 * the default library context offers only the algorithms format/ uses,
 * each OpenSSL's own default-provider implementation. */
#ifndef VF_PROVIDER_H
#define VF_PROVIDER_H

#include <openssl/types.h>

/* Called once by vf_init, after OpenSSL is initialised and before its
 * first fetch or random byte. 0, or -1 if OpenSSL refused a step: then
 * vf_init fails (a half-set-up context could offer nothing at all). */
int vf_provider_setup(void);

/* At exit, just before OPENSSL_cleanup (format/base/secmem.c). */
void vf_provider_teardown(void);

/* The private context the default provider lives in, where OpenSSL's own
 * implementations fetch what they use; NULL before vf_provider_setup.
 * For tests: format/ itself never fetches from it. */
OSSL_LIB_CTX *vf_provider_source(void);

#endif
