#include "base/json.h"

#include <stdio.h>

size_t vf_utf8_sequence(const unsigned char *p, size_t len)
{
	if (len == 0)
		return 0;
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	/* The second byte's range depends on the first (RFC 3629, section 4):
	 * that is what excludes overlong forms, surrogates and > U+10FFFF. */
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
		 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	if (n == 0)
		return 0;
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return n;
}

enum vf_code vf_json_string(struct vf_buf *b, const void *s, size_t len,
			    enum vf_json_bad_utf8 bad, struct vf_error *err)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *p = s;
	enum vf_code rc = vf_buf_append(b, "\"", 1, err);
	for (size_t i = 0; rc == VF_OK && i < len;) {
		size_t n = vf_utf8_sequence(p + i, len - i);
		char esc[8];
		if (n == 0) {
			if (bad == VF_JSON_REFUSE)
				return vf_fail(err, VF_E_ARG, "not valid UTF-8 (byte %zu)", i);
			rc = vf_buf_append(b, replacement, 3, err);
			i++;
		} else if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			rc = vf_buf_append(b, esc, 2, err);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			rc = vf_buf_append(b, esc, 6, err);
			i++;
		} else {
			rc = vf_buf_append(b, p + i, n, err);
			i += n;
		}
	}
	if (rc == VF_OK)
		rc = vf_buf_append(b, "\"", 1, err);
	return rc;
}
