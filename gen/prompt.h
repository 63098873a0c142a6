/* vargen generate's prompts: the answers given with --prompt, matched to
 * the prompts a run asks, and the questions asked on the terminal.
 *
 * A prompt asked for generator GEN of OWNER (a machine, or "shared" for
 * a shared generator) is answered by the most specific --prompt
 * [MACHINE:][GEN/]NAME=@FILE that matches it: MACHINE:GEN/NAME, then
 * MACHINE:NAME, then GEN/NAME, then NAME (the machine is the more specific
 * part: a machine's own answer beats one for the generator on every
 * machine). Two options equally specific for one prompt name the same
 * prompts, and are refused. Without a match, the terminal is asked. */
#ifndef VARGEN_PROMPT_H
#define VARGEN_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vars/spec.h"
#include "vars/values.h"

struct run;
struct vg_item;

struct vg_prompt_arg {
	const char *arg;  /* as given (argv), for messages */
	char *key;	  /* [MACHINE:][GEN/]NAME, split by vg_prompts_check: */
	char *machine;	  /* a machine, "shared", or NULL */
	char *generator;  /* or NULL */
	char *name;
	const char *file; /* in arg, after "=@"; "-" is standard input */
	int rank;	  /* 3 MACHINE:GEN/NAME, 2 MACHINE:NAME, 1 GEN/NAME, 0 NAME */
	bool used;	  /* the answer of a prompt this run asks */
	bool shadowed;	  /* matches one, answered by a more specific option */
	uint8_t *data;	  /* the file, read once before anything is made */
	size_t len;
};

struct vg_prompts {
	struct vg_prompt_arg *args;
	size_t n;
};

/* One --prompt option, at option parsing: KEY=@FILE, both non-empty.
 * 0, or the exit status of an error (said). */
int vg_prompt_add(struct vg_prompts *ps, const char *arg);
/* Each option against the spec, before anything is read or made: its
 * machine, generator and prompt exist and go together, and no two are
 * equally specific for one prompt, nor two read standard input. */
int vg_prompts_check(struct vg_prompts *ps, const struct vf_spec *spec);
/* After the decisions: every option answers a prompt the run asks (an
 * option that answers none is an error naming it, before anything is
 * made). */
int vg_prompts_check_used(struct vg_prompts *ps, const struct run *r);
/* Before anything is made: reads every option's file once, and refuses
 * the run when a prompt without an answer would need a terminal and
 * there is none. */
int vg_prompts_prepare(struct vg_prompts *ps, const struct run *r);
/* The answer to prompt p of item it: from its --prompt file (a line
 * prompt loses one trailing newline, the others keep every byte), else
 * from the terminal (hidden: twice, and the two must match). */
int vg_prompt_answer(const struct vg_prompts *ps, const struct vg_item *it,
		     const struct vf_spec_prompt *p, struct vf_value *v);
void vg_prompts_free(struct vg_prompts *ps);

#endif
