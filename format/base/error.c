#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 0))) static void vformat(struct vf_error *err,
							  enum vf_code code,
							  const char *fmt, va_list ap)
{
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

enum vf_code vf_fail(struct vf_error *err, enum vf_code code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vformat(err, code, fmt, ap);
		va_end(ap);
	}
	return code;
}

enum vf_code vf_fail_errno(struct vf_error *err, int errnum, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vformat(err, VF_E_IO, fmt, ap);
		va_end(ap);
		size_t used = strlen(err->msg);
		snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", strerror(errnum));
	}
	return VF_E_IO;
}

const char *vf_code_name(enum vf_code code)
{
	switch (code) {
	case VF_OK: return "success";
	case VF_E_IO: return "I/O error";
	case VF_E_NOMEM: return "out of memory";
	case VF_E_ARG: return "invalid argument";
	case VF_E_KEY: return "bad key";
	case VF_E_ARMOR: return "armor failure";
	case VF_E_HEADER: return "header failure";
	case VF_E_NO_MATCH: return "no match";
	case VF_E_HMAC: return "HMAC failure";
	case VF_E_PAYLOAD: return "payload failure";
	case VF_E_CRYPTO: return "crypto failure";
	case VF_E_AUTH: return "authentication failure";
	case VF_E_CANCELED: return "canceled";
	}
	return "unknown error";
}

void vf_escape_controls(const char *msg, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!cap)
		return;
	for (const unsigned char *p = (const unsigned char *)msg; *p && o + 5 < cap; p++) {
		if (*p >= 0x20 && *p != 0x7f) {
			out[o++] = (char)*p;
		} else if (*p == '\n' || *p == '\t' || *p == '\r') {
			out[o++] = '\\';
			out[o++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

int vf_exit_status(enum vf_code code)
{
	return code == VF_E_NO_MATCH ? VF_EXIT_NO_MATCH : VF_EXIT_ERROR;
}
