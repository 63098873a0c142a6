/* vargen: shared declarations of the subcommands (one file each). */
#ifndef VARGEN_H
#define VARGEN_H

#include <stdbool.h>
#include <stdio.h>

#include "base/error.h"
#include "base/help.h"
#include "age/keys.h"
#include "vars/spec.h"
#include "vars/values.h"
#include "vars/vars.h"

/* Codes of the long options that have no short form: above every char,
 * so no letter can collide with them. */
enum vg_long_option {
	OPT_STORE = 256,
	OPT_REGENERATE,
	OPT_PROMPT,
	OPT_INSECURE_PERMISSIONS,
	OPT_PASSPHRASE_FILE,
	OPT_ALL,
	OPT_YES,
	OPT_PLAN,
	OPT_JSON,
	OPT_IGNORE_MAC,
};

int cmd_generate(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_accept(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_import(int argc, char **argv);

int vg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress of sealing on standard error, only when it is a terminal and
 * the work is large (at least VG_PROGRESS_MIN_FILES). */
#include "base/progress.h"
#define VG_PROGRESS_MIN_FILES 256
void vg_progress_begin(struct vf_progress *p, const char *label, uint64_t total, bool show);
/* "vargen: error: <reason>"; returns vf_exit_status(err->code). */
int vg_fail(const struct vf_error *err);
int vg_usage(const char *usage);

/* A command's --help (base/help.h): vargen's commands have options only,
 * no operand rows and no notes. */
/* The spec and store, and the selection, as every command takes them. */
#define VG_SPEC_HELP                                                                      \
	{"-f, --file", "SPEC", "the spec (default: $VARS_SPEC, else vars.yaml here or above)"},                   \
		{"--store", "DIR", "the store root, holding vars/ (default: the spec's "    \
				   "directory)"}
#define VG_SELECT_HELP                                                                    \
	{"-m, --machine", "M", "only machine M (and the shared generators it uses); "     \
			       "repeatable"},                                             \
		{"-g, --generator", "G", "only generator G; repeatable"}

/* The spec and the store root it implies (beside the spec unless
 * --store). */
struct vg_context {
	const char *spec_path;
	const char *store_opt;
	char *root;
	struct vf_spec spec;
	struct vf_strings machines;   /* --machine filters */
	struct vf_strings generators; /* --generator filters */
	bool may_create;	      /* generate: a missing store is made */
	bool new_store;		      /* set by vg_load: there is none yet */
	/* check -i: the identities key pairs are verified with (each pair's
	 * private half opened, its public key compared); NULL: not done. */
	const struct vf_identities *verify_ids;
};
/* Loads the spec, checks the filters, and refuses a missing store (one
 * line: no store at ROOT) unless may_create. */
int vg_load(struct vg_context *ctx);
/* -i, --insecure-permissions and --passphrase-file, as check takes them. */
struct vg_identity_args {
	struct vf_strings files;
	bool insecure;
	const char *passphrase_file; /* for passphrase-protected identities */
};
/* The options list, check, accept and prune share: -f, --store,
 * --machine, --generator, --help, and with flags --all, --plan, --yes,
 * --json, or (check) the identities; then vg_load. 0, -1 after --help, or
 * the exit status of an error. */
struct vg_flags {
	bool all, plan, yes;
	bool json;
	/* Set by list and check: they take --json, and none of the others. */
	bool takes_json;
	/* Set by check: it takes identities (the caller frees the files). */
	struct vg_identity_args *identities;
};
int vg_parse(int argc, char **argv, struct vg_context *ctx, const struct vf_help *help,
	     struct vg_flags *flags);
/* Replacing or removing n existing values: asks question on the terminal
 * (default no), or without one refuses unless yes, saying what it would
 * do ("replace 3 existing values"). 0 to go ahead. */
int vg_confirm(const char *question, size_t n, const char *what, bool yes);
void vg_context_free(struct vg_context *ctx);
bool vg_selected_machine(const struct vg_context *ctx, const char *name);
bool vg_selected_generator(const struct vg_context *ctx, const char *name);

/* One (owner, generator) pair: owner NULL for shared generators. */
struct vg_item {
	const char *machine;
	const struct vf_spec_generator *g;
};
/* Every pair of the selected machines, dependencies first, shared ones
 * once. */
int vg_items(const struct vg_context *ctx, struct vg_item **items, size_t *n);

/* Every row list shows: the selected generators' files, the selected
 * machines' kept keys, and (nothing selected) the orphans. */
struct vg_row {
	char *name;	  /* owner/gen/file, machine-keys/M, or an orphan's name */
	const char *kind; /* secret, value, key, machine, generator */
	enum vf_state st;
	size_t item;	  /* index in items for a generator's file, else SIZE_MAX */
	size_t file;	  /* file index; the machine's or the orphan's otherwise */
};
struct vg_survey {
	struct vg_item *items; /* every item of the selected machines */
	size_t n_items;
	enum vf_state **states; /* per item, per file */
	struct vg_row *rows;
	size_t n_rows;
	struct vf_orphans orphans;
};
int vg_survey(const struct vg_context *ctx, struct vg_survey *s);
void vg_survey_free(struct vg_survey *s);
size_t vg_survey_problems(const struct vg_survey *s);
void vg_print_row(const struct vg_row *r);
/* For each state present that needs something done, one line on stderr:
 * how many, and the command that does it (vg_survey_fix). */
void vg_survey_hints(const struct vg_survey *s, const struct vg_context *ctx);
/* What fixes the rows in state st: of kept machine keys when keys, else of
 * generators' files and orphans. The one wording of check's hints and of
 * the "reason" of list/check --json ("nothing to do" for a sound state). */
void vg_survey_fix(const struct vg_survey *s, const struct vg_context *ctx, enum vf_state st,
		   bool keys, char *out, size_t cap);
/* A row of a machine's kept key (not an orphaned one): its fixes are the
 * keys' own. */
bool vg_row_is_kept_key(const struct vg_row *r);
/* The last state, for tables indexed by state. */
#define VG_STATE_LAST VF_STATE_PAIR_MISMATCH

/* Runs a generator's script in a private directory on a RAM file system
 * with $out, $in/<dep>/<file> and $prompts/<name>; values[i] receives
 * g->files[i]. deps_values[d][f] are the files of g's d-th dependency.
 * Returns 0, 1 on error (reported), or 128+N when signal N (SIGINT,
 * SIGTERM, SIGHUP) stopped vargen meanwhile: the script's process group
 * was stopped and its directory removed; the caller commits nothing and
 * exits with that status. */
int vg_run_script(const struct vf_spec *spec, const struct vf_spec_generator *g,
		  const struct vf_value *const *deps_values, const struct vf_value *prompts,
		  struct vf_value *values);

/* Removes the script directories that runs killed outright left behind:
 * named as vg_run_script names them, owned by this user, of a dead pid. */
void vg_clean_stale_script_dirs(void);

#endif
