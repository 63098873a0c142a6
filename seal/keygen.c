/* varseal keygen [--pq] [-o FILE]: a new identity in age-keygen's format,
 * X25519 or (--pq, as age-keygen -pq) hybrid post-quantum. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/secmem.h"
#include "age/keys.h"
#include "varseal.h"

static const char usage[] = "varseal keygen [--pq] [-o FILE]";
static const struct vf_help_row help_rows[] = {
	{"--pq", NULL, "a hybrid post-quantum identity (ML-KEM-768 + X25519, as age-keygen -pq)"},
	{"-o, --output", "FILE", "write the identity to FILE, made 0600 (an existing one is refused)"},
	VF_HELP_OPTION,
};
static const struct vf_help help = {
	usage,
	"Makes a new age identity in age-keygen's format, on standard output or in FILE:\n"
	"X25519, or with --pq hybrid post-quantum (AGE-SECRET-KEY-PQ-1..., whose recipient\n"
	"age1pq1... is about 1,960 characters). Its public key goes to standard error when\n"
	"the identity does not go to a terminal.",
	VF_HELP_ROWS(help_rows),
	NULL,
};

/* "# created: <RFC 3339>\n# public key: age1...\nAGE-SECRET-KEY-1...\n"
 * into guarded memory. */
static enum vf_code format_identity(const struct vf_identity *id, const char *recipient,
				    char **text, size_t *len, struct vf_error *err)
{
	char *secret;
	enum vf_code rc = vf_native_identity_encode(id, &secret, err);
	if (rc != VF_OK)
		return rc;
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
	/* RFC 3339 wants the offset as +hh:mm. */
	size_t wl = strlen(when);
	if (wl > 5 && wl + 2 < sizeof(when)) {
		memmove(when + wl - 1, when + wl - 2, 3);
		when[wl - 2] = ':';
	}
	size_t cap = strlen(secret) + strlen(recipient) + 128;
	char *out = vf_secure_alloc(cap);
	if (!out) {
		vf_secure_free(secret);
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	int n = snprintf(out, cap, "# created: %s\n# public key: %s\n%s\n", when, recipient, secret);
	vf_secure_free(secret);
	*text = out;
	*len = (size_t)n;
	return VF_OK;
}

static int refuse_existing(const char *path)
{
	return vs_error("%s: already exists; not overwriting an identity file", path);
}

/* Never overwrites: a lost identity is a lost secret. The file is written
 * whole beside the path and linked in only if nothing (not even a symlink)
 * is there, so a keygen killed or failing midway leaves no partial key. */
static int write_new_file(const char *path, const char *text, size_t len)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return refuse_existing(path);
	struct vf_atomic a;
	struct vf_error err;
	enum vf_code rc = vf_atomic_open(&a, path, 0600, &err);
	if (rc != VF_OK)
		return vs_fail(NULL, &err);
	rc = vf_write_all(a.fd, text, len, path, &err);
	if (rc == VF_OK)
		rc = vf_atomic_commit(&a, false, &err);
	vf_atomic_abort(&a);
	if (rc != VF_OK && lstat(path, &st) == 0)
		return refuse_existing(path); /* created meanwhile: not ours */
	return rc == VF_OK ? 0 : vs_fail(NULL, &err);
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pq", no_argument, NULL, OPT_PQ},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *output = NULL;
	bool pq = false;
	int c;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o')
			output = optarg;
		else if (c == OPT_PQ)
			pq = true;
		else if (c == 'h') {
			vf_help_print(stdout, &help);
			return 0;
		} else
			return vs_usage(usage);
	}
	if (optind != argc)
		return vs_usage(usage);

	struct vf_error err;
	struct vf_identity *id = NULL;
	char *recipient = NULL, *text = NULL;
	size_t len = 0;
	enum vf_code rc = vf_native_identity_generate(pq, &id, &err);
	if (rc == VF_OK)
		rc = vf_identity_recipient(id, &recipient, &err);
	if (rc == VF_OK)
		rc = format_identity(id, recipient, &text, &len, &err);
	vf_identity_free(id);
	int status = rc == VF_OK ? 0 : vs_fail(NULL, &err);
	if (status == 0 && output && strcmp(output, "-") != 0) {
		status = write_new_file(output, text, len);
		if (status == 0)
			fprintf(stderr, "Public key: %s\n", recipient);
	} else if (status == 0) {
		if (vf_write_all(STDOUT_FILENO, text, len, "standard output", &err) != VF_OK)
			status = vs_fail(NULL, &err);
		else if (!isatty(STDOUT_FILENO))
			fprintf(stderr, "Public key: %s\n", recipient);
	}
	vf_secure_free(text);
	free(recipient);
	return status;
}
