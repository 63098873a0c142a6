#include "age/recipient_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "age/keys.h"

struct entry {
	struct vf_recipient *r; /* NULL: a free slot */
	unsigned users;		 /* gets not yet released: never evicted while > 0 */
	uint64_t last_use;	 /* the cache's clock at the last get */
};

struct vf_recipient_cache {
	pthread_mutex_t lock;
	struct entry *entries;
	size_t capacity;
	uint64_t clock;
};

struct vf_recipient_cache *vf_recipient_cache_new(size_t capacity)
{
	struct vf_recipient_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->capacity = capacity ? capacity : 1;
	c->entries = calloc(c->capacity, sizeof(*c->entries));
	if (!c->entries || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->entries);
		free(c);
		return NULL;
	}
	return c;
}

void vf_recipient_cache_free(struct vf_recipient_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->capacity; i++)
		if (c->entries[i].r)
			vf_recipient_free(c->entries[i].r);
	free(c->entries);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Under the lock: the entry holding s, or NULL. A linear scan: the cache
 * holds tens of entries, and a mismatch is found at the first bytes. */
static struct entry *find(struct vf_recipient_cache *c, const char *s)
{
	for (size_t i = 0; i < c->capacity; i++)
		if (c->entries[i].r && !strcmp(c->entries[i].r->name, s))
			return &c->entries[i];
	return NULL;
}

/* Under the lock: a free slot, else the least recently used entry that no
 * one holds (evicted), else NULL. */
static struct entry *slot_for_new(struct vf_recipient_cache *c)
{
	struct entry *victim = NULL;
	for (size_t i = 0; i < c->capacity; i++) {
		struct entry *e = &c->entries[i];
		if (!e->r)
			return e;
		if (!e->users && (!victim || e->last_use < victim->last_use))
			victim = e;
	}
	if (victim) {
		vf_recipient_free(victim->r);
		victim->r = NULL;
	}
	return victim;
}

static struct vf_recipient *take(struct vf_recipient_cache *c, struct entry *e)
{
	e->users++;
	e->last_use = ++c->clock;
	return e->r;
}

enum vf_code vf_recipient_cache_get(struct vf_recipient_cache *c, const char *s,
				    struct vf_recipient **out, struct vf_error *err)
{
	*out = NULL;
	pthread_mutex_lock(&c->lock);
	struct entry *e = find(c, s);
	if (e)
		*out = take(c, e);
	pthread_mutex_unlock(&c->lock);
	if (*out)
		return VF_OK;
	/* Parsed outside the lock: other threads keep using the cache. */
	struct vf_recipient *r;
	enum vf_code rc = vf_recipient_parse(s, &r, err);
	if (rc != VF_OK)
		return rc;
	pthread_mutex_lock(&c->lock);
	e = find(c, s); /* another thread may have parsed it meanwhile */
	if (e) {
		*out = take(c, e);
	} else if ((e = slot_for_new(c))) {
		e->r = r;
		*out = take(c, e);
		r = NULL;
	} else {
		*out = r; /* every entry in use: a private copy, freed on release */
		r = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (r)
		vf_recipient_free(r);
	return VF_OK;
}

void vf_recipient_cache_release(struct vf_recipient_cache *c, struct vf_recipient *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&c->lock);
	struct entry *e = NULL;
	for (size_t i = 0; i < c->capacity && !e; i++)
		if (c->entries[i].r == r)
			e = &c->entries[i];
	if (e)
		e->users--;
	pthread_mutex_unlock(&c->lock);
	if (!e)
		vf_recipient_free(r); /* the private copy */
}
