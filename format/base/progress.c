#include "base/progress.h"

#include <stdio.h>
#include <time.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vf_progress_begin(struct vf_progress *p, const char *label, uint64_t total, bool bytes,
		       void (*draw)(const char *line, void *ctx), void *ctx)
{
	p->label = label;
	p->total = total;
	p->bytes = bytes;
	p->draw = draw;
	p->ctx = ctx;
	atomic_init(&p->done, 0);
	p->start_ms = now_ms();
	/* The first count draws at once: large work shows that it started,
	 * however fast the machine. */
	atomic_init(&p->last_ms, p->start_ms - VF_PROGRESS_INTERVAL_MS);
	atomic_init(&p->shown, false);
	atomic_flag_clear(&p->drawing);
}

/* "12.3 MiB" */
static void human(uint64_t n, char *out, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void format_line(const struct vf_progress *p, uint64_t done, long long now, char *line,
			size_t cap)
{
	char pct[16] = "";
	if (p->total)
		snprintf(pct, sizeof(pct), " (%u%%)",
			 (unsigned)(done >= p->total ? 100 : done * 100 / p->total));
	if (!p->bytes) {
		snprintf(line, cap, "\r%s %llu/%llu%s", p->label, (unsigned long long)done,
			 (unsigned long long)p->total, pct);
		return;
	}
	char have[32], all[32] = "", rate[32];
	human(done, have, sizeof(have));
	if (p->total) {
		all[0] = '/';
		human(p->total, all + 1, sizeof(all) - 1);
	}
	long long ms = now - p->start_ms;
	human(ms > 0 ? (uint64_t)((double)done * 1000.0 / (double)ms) : 0, rate, sizeof(rate));
	snprintf(line, cap, "\r%s %s%s%s, %s/s", p->label, have, all, pct, rate);
}

void vf_progress_add(struct vf_progress *p, uint64_t n)
{
	uint64_t done = atomic_fetch_add(&p->done, n) + n;
	if (!p->draw)
		return;
	long long now = now_ms(), last = atomic_load(&p->last_ms);
	if (now - last < VF_PROGRESS_INTERVAL_MS || atomic_flag_test_and_set(&p->drawing))
		return;
	/* One drawer at a time; the others only count. */
	if (atomic_compare_exchange_strong(&p->last_ms, &last, now)) {
		char line[160];
		format_line(p, done, now, line, sizeof(line));
		/* Pad over what a longer earlier line left. */
		p->draw(line, p->ctx);
		p->draw("\033[K", p->ctx);
		atomic_store(&p->shown, true);
	}
	atomic_flag_clear(&p->drawing);
}

void vf_progress_end(struct vf_progress *p)
{
	if (p->draw && atomic_load(&p->shown))
		p->draw("\r\033[K", p->ctx); /* drawn at least once: erase it */
}

static ssize_t progress_read(struct vf_src *src, uint8_t *buf, size_t len, struct vf_error *err)
{
	struct vf_progress_src *s = (struct vf_progress_src *)src;
	ssize_t n = s->inner->read(s->inner, buf, len, err);
	if (n > 0)
		vf_progress_add(s->p, (uint64_t)n);
	return n;
}

static bool progress_ready(struct vf_src *src)
{
	struct vf_progress_src *s = (struct vf_progress_src *)src;
	return s->inner->ready ? s->inner->ready(s->inner) : true;
}

static bool progress_positional(struct vf_src *src, struct vf_src_at *at)
{
	struct vf_progress_src *s = (struct vf_progress_src *)src;
	return s->inner->positional && s->inner->positional(s->inner, at);
}

/* Bytes read out of order are counted when the stream moves past them. */
static enum vf_code progress_advance(struct vf_src *src, uint64_t n, struct vf_error *err)
{
	struct vf_progress_src *s = (struct vf_progress_src *)src;
	enum vf_code rc = s->inner->advance(s->inner, n, err);
	if (rc == VF_OK)
		vf_progress_add(s->p, n);
	return rc;
}

void vf_progress_src_init(struct vf_progress_src *s, struct vf_src *inner, struct vf_progress *p)
{
	s->base.read = progress_read;
	s->base.ready = progress_ready;
	s->base.positional = progress_positional;
	s->base.advance = progress_advance;
	s->inner = inner;
	s->p = p;
}
