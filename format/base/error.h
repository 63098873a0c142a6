/* Errors returned by the format libraries (base, age and vars).
 *
 * The library never prints and never exits: every fallible function takes a
 * struct vf_error and returns one of the codes below, with a one-line reason
 * in err->msg that a tool prefixes with its own name and the file at hand. */
#ifndef VF_ERROR_H
#define VF_ERROR_H

#include <stddef.h>

enum vf_code {
	VF_OK = 0,
	VF_E_IO,	/* reading or writing failed (errno-style reason) */
	VF_E_NOMEM,	/* allocation failed */
	VF_E_ARG,	/* the caller passed something invalid */
	VF_E_KEY,	/* a key, recipient or identity string is malformed */
	VF_E_ARMOR,	/* ASCII armor is malformed */
	VF_E_HEADER,	/* the age header is malformed or unusable */
	VF_E_NO_MATCH,	/* no identity unwrapped the file key */
	VF_E_HMAC,	/* the header MAC does not verify */
	VF_E_PAYLOAD,	/* the payload is truncated, corrupt or has trailing data */
	VF_E_CRYPTO,	/* the crypto library failed unexpectedly */
	VF_E_AUTH,	/* an AEAD tag or MAC did not verify */
	VF_E_CANCELED,	/* a callback (e.g. a passphrase prompt) gave up */
};

struct vf_error {
	enum vf_code code;
	/* Room for a message around a PATH_MAX-long path. */
	char msg[4352];
};

/* The exit statuses of varseal, vargen and varinject, the same in all three
 * and documented in their man pages (EXIT STATUS) and the README. The
 * library never exits; the tools map their results to these. */
enum vf_exit {
	VF_EXIT_OK = 0,		/* success, or nothing to do */
	VF_EXIT_ERROR = 1,	/* bad input, a malformed file, I/O failure, refused */
	VF_EXIT_USAGE = 2,	/* bad usage: options, arguments, verbs */
	VF_EXIT_NO_MATCH = 3,	/* no identity (key or passphrase) opened a file */
	VF_EXIT_ATTENTION = 4,	/* it worked and found something needing attention:
				 * check's problems, a plan with work, what
				 * generate left */
};

/* The exit status of a failure with this code: VF_EXIT_NO_MATCH for
 * VF_E_NO_MATCH, so that scripts can tell a wrong key from a broken file;
 * VF_EXIT_ERROR for every other code. */
int vf_exit_status(enum vf_code code);

/* Records code and a printf-style reason; returns code so that callers can
 * write `return vf_fail(err, VF_E_HEADER, "...")`. err may be NULL. */
enum vf_code vf_fail(struct vf_error *err, enum vf_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, with ": strerror(errnum)" appended. */
enum vf_code vf_fail_errno(struct vf_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies msg to out (capacity cap, NUL-terminated) with control bytes
 * escaped (\n, \t, \xNN), so that a file name with a newline cannot split
 * an error into two lines or write escape sequences to a terminal. */
void vf_escape_controls(const char *msg, char *out, size_t cap);

/* A short name for a code ("header failure", ...), as the age test vectors
 * spell them where they have one. */
const char *vf_code_name(enum vf_code code);

#endif
