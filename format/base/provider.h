/* The tools' OpenSSL provider (format/base/provider.c says why and how):
 * the default library context offers only the algorithms format/ uses,
 * each OpenSSL's own default-provider implementation. */
#ifndef VF_PROVIDER_H
#define VF_PROVIDER_H

/* Called once by vf_init, after OpenSSL is initialised and before its
 * first fetch or random byte. 0, or -1 if OpenSSL refused a step: then
 * vf_init fails (a half-set-up context could offer nothing at all). */
int vf_provider_setup(void);

#endif
