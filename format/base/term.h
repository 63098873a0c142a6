/* Reading secrets typed at a terminal or kept in a file: passphrases
 * never come from argv or the environment. */
#ifndef VF_TERM_H
#define VF_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Prompts on /dev/tty with echo off and reads one line into guarded
 * memory (free with vf_secure_free). VF_E_IO when there is no terminal.
 *
 * Ctrl-C (SIGINT), SIGTERM, SIGHUP and SIGQUIT during the read restore
 * the terminal, wipe what was read, and are then handed back to the
 * program's own disposition: with the default one the program dies of the
 * signal there and then (a shell reports 128+N), as age does. If it
 * survives (its handler returns, or it had the signal blocked, which the
 * prompt lifts while it waits), the result is VF_E_CANCELED. Ctrl-Z
 * (SIGTSTP) stops the program with the terminal restored, and the
 * question is asked again when it continues. Ignored signals stay ignored. */
enum vf_code vf_tty_read_secret(const char *prompt, uint8_t **secret, size_t *len,
				struct vf_error *err);

/* The same with a choice: echo on or off, and one line or everything up
 * to end of input (Ctrl-D) for multi-line values. */
enum vf_code vf_tty_read(const char *prompt, bool echo, bool multiline, uint8_t **secret,
			 size_t *len, struct vf_error *err);

/* A new secret typed twice (hidden, or with echo when echo is true): asks
 * prompt, then again_prompt; when the two differ it says so on the
 * terminal and asks both again, at most VF_TTY_CONFIRM_TRIES times, then
 * fails with VF_E_ARG ("the entries did not match"). The result is the
 * first entry, in guarded memory; the second is wiped. Signals behave as
 * in vf_tty_read. */
#define VF_TTY_CONFIRM_TRIES 3
enum vf_code vf_tty_read_confirmed(const char *prompt, const char *again_prompt, bool echo,
				   bool multiline, uint8_t **secret, size_t *len,
				   struct vf_error *err);

/* Reads the first line of path (a file, "-" for standard input, or
 * /dev/fd/N for an inherited descriptor) into guarded memory, without its
 * line ending. An empty first line is an error. */
enum vf_code vf_file_read_secret(const char *path, uint8_t **secret, size_t *len,
				 struct vf_error *err);

/* A vf_passphrase_fn: the first line of file when set, else a prompt on
 * the terminal. ctx is a struct vf_passphrase_source. */
struct vf_passphrase_source {
	const char *file;
	const char *prompt;
};
enum vf_code vf_passphrase_ask(void *ctx, uint8_t **pass, size_t *len, struct vf_error *err);

#endif
