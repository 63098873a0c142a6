/* varseal: shared declarations of the subcommands (one file each). */
#ifndef VARSEAL_H
#define VARSEAL_H

#include <stdbool.h>

#include "atomic.h"
#include "error.h"
#include "io.h"

int cmd_keygen(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);

/* Prints "varseal: error: <formatted>" and returns 1 (the exit status). */
int vs_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "varseal: error: <what>: <reason>" and returns 1. The library's
 * message usually names the file itself: what may be NULL then. */
int vs_fail(const char *what, const struct vf_error *err);
/* "varseal: usage: ..." to stderr, returns 2. */
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

/* Opens the input (NULL or "-" = standard input); returns the fd or -1
 * having printed the error. */
int vs_open_input(const char *path, const char **name);

#endif
