/* Parsed recipients kept for reuse, keyed by the string they were parsed
 * from. A store seals thousands of files to the same few admins; parsing
 * a post-quantum recipient (about 1,960 characters of bech32 and the
 * modulus check of its ML-KEM key) and expanding it for encapsulation cost
 * more than the wrap itself, so each is done once and not per file.
 *
 * Recipients are public keys: nothing here is secret. The cache is
 * bounded (a fixed number of entries, least recently used first out) and
 * thread-safe: sealing runs on several threads at once. An entry in use is
 * never evicted; when every entry is in use, get parses a private copy
 * that release frees. */
#ifndef VF_RECIPIENT_CACHE_H
#define VF_RECIPIENT_CACHE_H

#include <stddef.h>

#include "age/recipient.h"
#include "base/error.h"

struct vf_recipient_cache;

/* NULL when out of memory. capacity: entries kept (at least 1). */
struct vf_recipient_cache *vf_recipient_cache_new(size_t capacity);
void vf_recipient_cache_free(struct vf_recipient_cache *cache);

/* The recipient parsed from s (vf_recipient_parse, same errors), to be
 * given back with vf_recipient_cache_release once the caller is done with
 * it. The caller must not free it. */
enum vf_code vf_recipient_cache_get(struct vf_recipient_cache *cache, const char *s,
				    struct vf_recipient **out, struct vf_error *err);
void vf_recipient_cache_release(struct vf_recipient_cache *cache, struct vf_recipient *r);

#endif
