/* Progress of long work (thousands of secrets sealed, gigabytes
 * encrypted), counted from any thread and shown by the tool: the library
 * never prints, so it hands a ready line to the tool's draw function: at
 * the first count, then at most every VF_PROGRESS_INTERVAL_MS, and an
 * erasing one at the end. The tools
 * show it on a terminal only (standard error), so that logs and pipes get
 * nothing. */
#ifndef VF_PROGRESS_H
#define VF_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/io.h"

#define VF_PROGRESS_INTERVAL_MS 200

struct vf_progress {
	const char *label; /* "sealing", "encrypting" */
	uint64_t total;	   /* 0: unknown (a pipe) */
	bool bytes;	   /* counts bytes (with a rate), else items */
	/* The tool's: writes line (which starts with \r and ends without a
	 * newline; "" at the end: erase). NULL: nothing is shown. */
	void (*draw)(const char *line, void *ctx);
	void *ctx;
	atomic_uint_least64_t done;
	atomic_llong last_ms; /* when last drawn; one thread draws at a time */
	atomic_flag drawing;
	atomic_bool shown; /* drawn at least once: erased at the end */
	long long start_ms;
};

/* Starts counting; draw NULL (not a terminal) makes every call a no-op
 * beyond the count. */
void vf_progress_begin(struct vf_progress *p, const char *label, uint64_t total, bool bytes,
		       void (*draw)(const char *line, void *ctx), void *ctx);
/* Counts n more; draws when the interval has passed. Thread-safe. */
void vf_progress_add(struct vf_progress *p, uint64_t n);
/* Erases the line (the tool's own output follows on a clean line). */
void vf_progress_end(struct vf_progress *p);

/* A source that counts the bytes read from inner into p. */
struct vf_progress_src {
	struct vf_src base;
	struct vf_src *inner;
	struct vf_progress *p;
};
void vf_progress_src_init(struct vf_progress_src *s, struct vf_src *inner, struct vf_progress *p);

#endif
