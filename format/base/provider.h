/* The tools' OpenSSL provider (format/base/provider.c says why and how):
 * the default library context offers only the algorithms format/ uses,
 * each OpenSSL's own default-provider implementation. */
#ifndef VF_PROVIDER_H
#define VF_PROVIDER_H

/* Called once by vf_init, after OpenSSL is initialised and before its
 * first fetch or random byte. 0, or -1 if OpenSSL refused a step: then
 * vf_init fails (a half-set-up context could offer nothing at all). */
int vf_provider_setup(void);

/* Offers the algorithms beyond what a run with X25519 keys uses (AES-GCM,
 * SHA-512, SHA-3, SHAKE, scrypt, RSA): called before fetching one of them,
 * or before any OpenSSL call that fetches RSA. Thread-safe, once per
 * process. 0, or -1 if OpenSSL refused (the fetch then fails). */
int vf_provider_more(void);

#endif
