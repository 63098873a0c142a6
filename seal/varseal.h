/* varseal: shared declarations of the subcommands (one file each). */
#ifndef VARSEAL_H
#define VARSEAL_H

#include <getopt.h> /* struct option, for the VS_VARS_OPTIONS tables */
#include <stdbool.h>
#include <stdio.h>

#include "base/atomic.h"
#include "base/error.h"
#include "base/help.h"
#include "base/io.h"

int cmd_keygen(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_rekey(int argc, char **argv);
int cmd_machine(int argc, char **argv);
int cmd_import_sops(int argc, char **argv);

/* Prints "varseal: error: <formatted>" and returns VF_EXIT_ERROR (the exit
 * status). */
int vs_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "varseal: error: <what>: <reason>" and returns the exit status for
 * err->code (vf_exit_status: VF_EXIT_NO_MATCH when no identity matched).
 * The library's message usually names the file itself: what may be NULL. */
int vs_fail(const char *what, const struct vf_error *err);
/* "varseal: usage: ..." to stderr, returns VF_EXIT_USAGE. */
int vs_usage(const char *usage);


/* The output of encrypt and decrypt: standard output, or a file that
 * appears only complete (struct vf_atomic). */
struct vs_output {
	const char *name;
	bool to_stdout;
	int direct_fd; /* an existing device or FIFO is written in place */
	struct vf_atomic file;
	struct vf_fd_sink sink;
};
enum vf_code vs_output_open(struct vs_output *o, const char *path, struct vf_error *err);
enum vf_code vs_output_commit(struct vs_output *o, struct vf_error *err);
void vs_output_abort(struct vs_output *o);

/* -o FILE of get and machine key: a secret written to a file only this
 * user may read, mode 0600 whatever the umask, atomically (complete or
 * absent). Opened before anything is decrypted: the directory (opened
 * once, the file made beneath it) must be this user's or root's and not
 * writable by group or others unless sticky; an existing name is refused
 * ("FILE: exists (give --force to replace it)"), or with force a file or
 * a symlink there is replaced (the link itself, never what it names).
 * NULL or "-": standard output. */
struct vs_private_out {
	const char *path; /* NULL: standard output */
	bool force;
	bool open;
	struct vf_atomic file;
};
int vs_private_open(struct vs_private_out *o, const char *path, bool force);
/* Writes data and renames the file into place (or writes standard output). */
int vs_private_commit(struct vs_private_out *o, const void *data, size_t len);
void vs_private_abort(struct vs_private_out *o);

/* Opens the input (NULL or "-" = standard input); returns the fd or -1
 * having printed the error. */
int vs_open_input(const char *path, const char **name);

/* The vars store commands (get, set, rekey, machine): the spec, the store
 * root beside it (or --store), admin identities from -i. */
#include "age/keys.h"
#include "vars/spec.h"
#include "vars/vars.h"

struct vs_vars {
	const char *spec_path; /* -f; else $VARS_SPEC, else vars.yaml here or above */
	const char *store_opt; /* --store */
	char *root;
	struct vf_spec spec;
	struct vf_strings identity_files;
	bool insecure;
	const char *passphrase_file; /* for passphrase-protected identities */
	struct vf_identities ids;
	int lock_fd;
	bool may_create; /* machine keygen: a missing store is made */
};
/* Codes of the long options that have no short form: above every char, so
 * no letter can collide with them (getopt_long returns a letter for a
 * short option, and two options sharing one letter cannot be told apart:
 * --force once read as --passphrase-file). */
enum vs_long_option {
	OPT_STORE = 256,
	OPT_INSECURE_PERMISSIONS,
	OPT_PASSPHRASE_FILE,
	OPT_WORK_FACTOR,
	OPT_MAX_WORK_FACTOR,
	OPT_FORCE,
	OPT_ROTATE,
	OPT_PLAN,
	OPT_PROGRESS,
	OPT_JSON,
	OPT_TO,
	OPT_IGNORE_MAC,
	OPT_PQ,
};

/* Progress of long work on standard error, only when it is a terminal and
 * show is true (large enough work, or --progress). */
#include "base/progress.h"
#define VS_PROGRESS_MIN_FILES 256
void vs_progress_begin(struct vf_progress *p, const char *label, uint64_t total, bool bytes,
		       bool show);
/* encrypt/decrypt --progress: src counted into in (the size of fd, when a
 * regular file, is the total); returns the source to read. */
struct vs_progress_input {
	struct vf_progress progress;
	struct vf_progress_src src;
};
struct vf_src *vs_progress_src(struct vs_progress_input *in, struct vf_src *src, int fd,
			       const char *label, bool show);

/* Handles -f, --store, -i, --insecure-permissions and --passphrase-file
 * (for passphrase-protected identity files); returns 1 if c was
 * one of them (consumed), 0 if not, -1 on error. */
int vs_vars_option(struct vs_vars *v, int c, const char *arg);
#define VS_VARS_OPTIONS                                                                   \
	{"file", required_argument, NULL, 'f'}, {"store", required_argument, NULL, OPT_STORE},  \
		{"identity", required_argument, NULL, 'i'},                               \
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},    \
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE}
/* Their help rows: the spec and store, then the identities, whose use
 * each command says (what). */
#define VS_STORE_HELP                                                                     \
	{"-f, --file", "SPEC", "the spec (default: $VARS_SPEC, else vars.yaml here or above)"},                   \
		{"--store", "DIR", "the store root, holding vars/ (default: the spec's "    \
				   "directory)"}
#define VS_IDENTITY_HELP(what)                                                            \
	{"-i, --identity", "FILE", what},                                                 \
		{"--insecure-permissions", NULL, "read identity files that group or others " \
						 "may read"},                        \
		{"--passphrase-file", "FILE", "the passphrase of passphrase-protected "      \
					      "identity files, read from FILE"}
/* A verb's own option c (with its argument): 0 when taken, else the exit
 * status of its failure (vs_usage for an option it does not know). */
typedef int (*vs_option_fn)(void *ctx, int c, const char *arg);
/* The one option loop of the vars verbs: the store options (vs_vars_option),
 * --help, then own (NULL: none) for the rest. 0, -1 after --help, or the
 * exit status of a usage error or of own's failure. */
int vs_vars_getopt(int argc, char **argv, struct vs_vars *v, const char *shortopts,
		   const struct option *opts, const struct vf_help *help, vs_option_fn own,
		   void *ctx);
/* Just the store options and --help, for verbs with none of their own. */
int vs_vars_parse(int argc, char **argv, struct vs_vars *v, const struct vf_help *help);
/* Loads the spec; refuses a missing store (one line: no store at ROOT)
 * unless may_create. */
int vs_vars_load(struct vs_vars *v);
/* parse, then load, then MACHINE GENERATOR/FILE: what get and set begin with. */
int vs_vars_open_target(int argc, char **argv, struct vs_vars *v, const struct vf_help *help,
			const struct vf_spec_generator **g, const struct vf_spec_file **f,
			const char **owner);
int vs_vars_identities(struct vs_vars *v);
/* Reads each identity file that is a regular file as vs_vars_identities
 * will, without unlocking or keeping it: a missing, unreadable, too-open
 * or public-key file is named before a long walk of the store, not after
 * it. Standard input and pipes, readable once, are left to the load. */
int vs_vars_identities_usable(const struct vs_vars *v);
/* Takes the store's writer lock (flock on vars/); nothing when v holds it. */
int vs_vars_lock(struct vs_vars *v);
void vs_vars_free(struct vs_vars *v);
/* Stores value as FILE of generator g for owner (NULL: shared), sealed
 * to the spec's recipients when secret, in one store transaction that
 * also records the file as set by hand; takes the writer lock. What set
 * and edit share. A key pair's private half is checked (a value that is
 * not a key of its kind is refused, one line) and stored with its public
 * half computed anew, both in the one transaction; the public half alone
 * is refused (vs_vars_settable). Nothing is written on refusal. */
int vs_vars_store_hand_set(struct vs_vars *v, const char *owner,
			   const struct vf_spec_generator *g, const struct vf_spec_file *f,
			   const struct vf_value *value);
/* 0 when f may be set by hand; else prints why not and returns the exit
 * status: a key pair's public half follows from the private half. Lets
 * set and edit refuse before asking for a value. */
int vs_vars_settable(const char *owner, const struct vf_spec_generator *g,
		     const struct vf_spec_file *f);
/* Splits "GENERATOR/FILE" and finds both in the spec, with the owner the
 * store uses for machine (NULL when the generator is shared). */
int vs_vars_target(struct vs_vars *v, const char *machine, const char *gen_file,
		   const struct vf_spec_generator **g, const struct vf_spec_file **f,
		   const char **owner);

#endif
