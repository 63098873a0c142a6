/* A private directory on a RAM file system (base/privdir.h). */
#include "base/privdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/ramdir.h"

/* mkdirat finding the name taken this often means something is wrong. */
#define MAX_ATTEMPTS 8

const char *vf_runtime_dir(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	return xdg && xdg[0] == '/' ? xdg : NULL;
}

int vf_ram_dir_open(const char *path, bool *may_swap)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && vf_ram_dir_check(fd, may_swap) != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* prefix<pid>.<hex> with fresh randomness. */
static enum vf_code fresh_name(const char *prefix, char *name, size_t cap, struct vf_error *err)
{
	uint8_t rnd[VF_PRIVATE_DIR_RANDOM_HEX / 2];
	char hex[VF_PRIVATE_DIR_RANDOM_HEX + 1];
	enum vf_code rc = vf_random(rnd, sizeof(rnd), err);
	if (rc != VF_OK)
		return rc;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	int n = snprintf(name, cap, "%s%ld.%s", prefix, (long)getpid(), hex);
	if (n < 0 || (size_t)n >= cap)
		return vf_fail(err, VF_E_ARG, "%s: directory name too long", prefix);
	return VF_OK;
}

enum vf_code vf_private_dir_make(int base_fd, const char *base, const char *prefix, char *name,
				 size_t cap, int *fd, struct vf_error *err)
{
	*fd = -1;
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		enum vf_code rc = fresh_name(prefix, name, cap, err);
		if (rc != VF_OK)
			return rc;
		if (mkdirat(base_fd, name, 0700) != 0) {
			if (errno == EEXIST)
				continue;
			return vf_fail_errno(err, errno, "%s/%s", base, name);
		}
		*fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (*fd >= 0 && fstat(*fd, &st) == 0 && st.st_uid == geteuid() &&
		    !(st.st_mode & 077))
			return VF_OK;
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		unlinkat(base_fd, name, AT_REMOVEDIR); /* empty: nothing written yet */
		return vf_fail(err, VF_E_IO, "%s/%s: not the private directory just made", base,
			       name);
	}
	return vf_fail(err, VF_E_IO, "%s: no fresh directory name could be made", base);
}

bool vf_private_dir_pid(const char *prefix, const char *name, pid_t *pid)
{
	if (strncmp(name, prefix, strlen(prefix)))
		return false;
	const char *p = name + strlen(prefix);
	long n = 0;
	size_t digits = 0;
	for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
		n = n * 10 + (*p - '0');
	if (!digits || *p != '.' || n <= 0 || n > INT_MAX)
		return false;
	p++;
	size_t hex = strspn(p, "0123456789abcdef");
	*pid = (pid_t)n;
	return hex == VF_PRIVATE_DIR_RANDOM_HEX && p[hex] == '\0';
}
