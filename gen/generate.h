/* vargen generate's state, shared by its two halves: decide.c (what to
 * do with each generator, and the plan that says it) and generate.c
 * (options, making, sealing and committing). */
#ifndef VARGEN_GENERATE_H
#define VARGEN_GENERATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/progress.h"
#include "base/secmem.h"
#include "prompt.h"
#include "vars/store.h"
#include "vargen.h"

enum action {
	ACT_NONE,    /* nothing to make (maybe seals to renew) */
	ACT_MAKE,    /* nothing exists: made */
	ACT_FILL,    /* the missing files of independent built-in values */
	ACT_REPLACE, /* existing values replaced: --regenerate only */
	ACT_LEAVE,   /* needs what this run may not do: said, left as is */
};

struct decision {
	enum action act;
	bool reseal;		   /* files to reseal with -i: */
	bool *reseal_file;	   /* per file: wrong-recipients, or stale and
				      sealed to other keys (kept stale) */
	const struct vg_item *cause; /* ACT_REPLACE of a dependent: the input made anew */
	char why[512];		   /* ACT_LEAVE: what is wrong and the command */
};

struct run {
	struct vg_context ctx;
	bool regenerate, all, yes, plan, insecure;
	const char *passphrase_file; /* for passphrase-protected identities */
	struct vg_prompts prompts; /* --prompt answers (prompt.h) */
	struct vf_strings identity_files;
	struct vf_identities ids; /* loaded when an old secret is needed */
	bool ids_loaded;
	struct vg_survey before; /* the store as found: items and states */
	struct vg_item *items;	 /* = before.items */
	size_t n;
	size_t *item_index; /* items by generator and owner (vg_find_item) */
	struct decision *dec; /* per item */
	/* per item: an existing value made from it (decide.c), or NULL */
	const struct vg_item **existing_dependent;
	bool *wanted;
	struct vf_value **values; /* per item, per file, when made or loaded */
	/* The built-in values of the running batch that no later item needs:
	 * one guarded arena, released with the batch (stage_all). */
	struct vf_arena batch_values;
	struct vf_txn txn;
	int lock_fd;
	/* Sealing jobs, run in parallel: one per file of every made item. */
	struct vf_strings *recipients; /* per item */
	struct job {
		size_t item, file;
	} *jobs;
	size_t n_jobs;
	size_t batch_first; /* the job the running batch's first one is */
	/* Reseal jobs: wrong-recipients secrets and machine keys. */
	struct reseal {
		char *name, *secret, *manifest_rel, *manifest;
		size_t manifest_len;
		struct vf_strings recipients;
	} *reseals;
	size_t n_reseals;
	struct vf_error job_err;
	atomic_flag job_failed; /* the first failing job records job_err */
	struct vf_progress progress; /* of the sealing jobs */
};

bool vg_made(const struct run *r, size_t i);
/* The item of g for machine (the shared one if g is shared), or -1:
 * through r->item_index once vg_index_items has built it (on a
 * failure to allocate it stays NULL, and the search linear). */
void vg_index_items(struct run *r);
ssize_t vg_find_item(const struct run *r, const char *machine, const struct vf_spec_generator *g);
/* Decides every item's action (r->dec) from r->before. */
int vg_decide(struct run *r);
/* Queues the reseals the decisions call for (needs -i to run them). */
int vg_plan_reseals(struct run *r);
/* The plan, one line per file: make, replace, reseal, left. Returns the
 * number of lines; with only_replace, just the replace lines (to stderr,
 * before asking). */
enum { PLAN_MAKE, PLAN_REPLACE, PLAN_RESEAL, PLAN_LEFT, N_PLAN };
struct vg_plan_count {
	size_t n[N_PLAN];
};
/* out NULL: only counts. */
size_t vg_print_plan(const struct run *r, FILE *out, bool only_replace, struct vg_plan_count *c);
/* "2 to make, 1 to replace, ..." */
void vg_plan_summary(const struct vg_plan_count *c, char *out, size_t cap);
/* Why a kept key's or an orphan's row is not sound, and the command. */
const char *vg_row_why(const struct vg_row *row);
/* Existing values the run would replace. */
size_t vg_count_replaced(const struct run *r);

#endif
