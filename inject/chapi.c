/* cloud-hypervisor's REST API: HTTP/1.1 over its UNIX socket, one
 * request per connection, as ch-remote does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/atomic.h"
#include "varinject.h"

static int connect_to(const char *socket_path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A hung VMM must not hang us: 30 s per read or write. */
	struct timeval tv = {.tv_sec = 30};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Reads until the headers and Content-Length bytes of body are in. */
static int read_response(int fd, int *status, char *reply, size_t reply_cap)
{
	char buf[65536];
	size_t len = 0;
	char *body = NULL;
	size_t content_length = 0;
	for (;;) {
		if (len == sizeof(buf) - 1)
			return vi_error("cloud-hypervisor's API reply is too large");
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vi_error("reading cloud-hypervisor's API reply: %s", strerror(errno));
		len += (size_t)n;
		buf[len] = '\0';
		if (!body && (body = strstr(buf, "\r\n\r\n"))) {
			body += 4;
			const char *cl = strcasestr(buf, "\r\ncontent-length:");
			content_length = cl ? strtoul(cl + 17, NULL, 10) : 0;
		}
		if (body && (size_t)(buf + len - body) >= content_length)
			break;
		if (n == 0)
			break;
	}
	if (!body || sscanf(buf, "HTTP/1.%*d %d", status) != 1)
		return vi_error("cloud-hypervisor's API sent no HTTP reply");
	if (reply_cap) {
		size_t blen = (size_t)(buf + len - body);
		if (blen >= reply_cap)
			blen = reply_cap - 1;
		memcpy(reply, body, blen);
		reply[blen] = '\0';
	}
	return 0;
}

int vi_ch_api_request(const char *socket_path, const char *method, const char *path,
		      const char *body, size_t body_len, int *status, char *reply, size_t reply_cap)
{
	int fd = connect_to(socket_path);
	if (fd < 0)
		return vi_error("%s: %s", socket_path, strerror(errno));
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 method, path, body_len);
	struct vf_error err;
	int rc = 0;
	if (vf_write_all(fd, head, (size_t)n, socket_path, &err) != VF_OK ||
	    (body_len && vf_write_all(fd, body, body_len, socket_path, &err) != VF_OK))
		rc = vi_fail(&err);
	if (!rc)
		rc = read_response(fd, status, reply, reply_cap);
	close(fd);
	return rc;
}

/* Whether the API socket accepts connections yet. */
bool vi_ch_api_up(const char *socket_path);
bool vi_ch_api_up(const char *socket_path)
{
	int fd = connect_to(socket_path);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}
