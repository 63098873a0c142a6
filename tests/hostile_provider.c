/* hostile_provider.so: the code an openssl.cnf can pull into a process.
 *
 * The openssl-env test (openssl_env_test.py) names this module in the
 * configuration it points OPENSSL_CONF at. Loading it is the attack: its
 * constructor runs in whoever loads it, as root for varinject install. So
 * the constructor leaves a mark, one line appended to the file
 * $VTEST_HOSTILE_MARKER, and the test asserts that no tool ever makes one
 * while the openssl command, which reads the configuration, does. Its
 * provider entry point then refuses, which makes OpenSSL's configured
 * fetches fail as well.
 *
 * Built without the sanitizers whatever the build: it is loaded into the
 * system's openssl too, which has no sanitizer runtime. A test aid only. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core.h>

__attribute__((constructor)) static void leave_mark(void)
{
	const char *marker = getenv("VTEST_HOSTILE_MARKER");
	if (!marker)
		return;
	int fd = open(marker, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	char line[64];
	int n = snprintf(line, sizeof(line), "loaded into pid %ld\n", (long)getpid());
	if (n > 0 && (size_t)n < sizeof(line)) {
		/* Best effort: the file's existence is the mark, not its text. */
		ssize_t written = write(fd, line, (size_t)n);
		(void)written;
	}
	close(fd);
}

/* Refusing makes every fetch that relies on the configuration fail. */
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		       const OSSL_DISPATCH **out, void **provctx);
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		       const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*out = NULL;
	*provctx = NULL;
	return 0;
}
