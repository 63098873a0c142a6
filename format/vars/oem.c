#include "vars/oem.h"

#include <string.h>

#include "base/base64.h"
#include "base/secmem.h"
#include "vars/values.h"

bool vf_credential_name_valid(const char *name, const char **why)
{
	size_t len = strlen(name);
	const char *reason = NULL;
	if (len == 0)
		reason = "empty";
	else if (len > 255)
		reason = "longer than 255 bytes";
	else if (!strcmp(name, ".") || !strcmp(name, ".."))
		reason = "'.' and '..' are not names";
	for (size_t i = 0; !reason && i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c == ':')
			reason = "contains '/' or ':'";
		else if (c == '=') /* systemd splits NAME=VALUE at the first '=' */
			reason = "contains '='";
		else if (c < 0x20 || c > 0x7e)
			reason = "contains a control or non-ASCII byte";
	}
	if (why)
		*why = reason;
	return !reason;
}

/* Valid UTF-8 without NUL: what a JSON string and a Rust String carry. */
static bool utf8_without_nul(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		uint8_t c = p[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
						 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (c == 0 || n == 0 || i + n > len || (n == 2 && c < 0xc2))
			return false;
		for (size_t k = 1; k < n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		i += n;
	}
	return true;
}

bool vf_oem_text_safe(const uint8_t *value, size_t len, enum vf_transport t)
{
	switch (t) {
	case VF_TRANSPORT_QEMU_FWCFG:
		return true; /* the file's bytes are the value */
	case VF_TRANSPORT_QEMU_SMBIOS:
		/* A NUL would end the SMBIOS string. */
		return memchr(value, 0, len) == NULL;
	case VF_TRANSPORT_CH_API:
		return utf8_without_nul(value, len);
	case VF_TRANSPORT_CH_ARGV:
		/* cloud-hypervisor's option grammar splits on ',' outside [] and
		 * "", keeps quotes in lists, strips brackets greedily and keeps
		 * surrounding spaces: only a plain value survives unchanged. */
		for (size_t i = 0; i < len; i++) {
			uint8_t c = value[i];
			if (c < 0x21 || c > 0x7e || c == ',' || c == '"' || c == '[' || c == ']')
				return false;
		}
		return true;
	}
	return false;
}

enum vf_code vf_oem_encode(const char *name, const struct vf_value *value, enum vf_transport t,
			   struct vf_arena *arena, struct vf_value *out, bool *binary,
			   struct vf_error *err)
{
	const char *why;
	if (!vf_credential_name_valid(name, &why))
		return vf_fail(err, VF_E_ARG, "credential name '%s': %s", name, why);
	if (value->len > VF_CREDENTIAL_MAX)
		return vf_fail(err, VF_E_ARG, "credential %s: %zu bytes, above systemd's 1 MiB", name,
			       value->len);
	*binary = !vf_oem_text_safe(value->data, value->len, t);
	const char *prefix = *binary ? VF_OEM_BINARY_PREFIX : VF_OEM_PREFIX;
	size_t body = *binary ? vf_b64_encoded_len(value->len, true) : value->len;
	size_t len = strlen(prefix) + strlen(name) + 1 + body;
	uint8_t *p = arena ? vf_arena_alloc(arena, len + 1) : vf_secure_alloc(len + 1);
	if (!p)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	size_t o = 0;
	memcpy(p, prefix, strlen(prefix));
	o += strlen(prefix);
	memcpy(p + o, name, strlen(name));
	o += strlen(name);
	p[o++] = '=';
	if (*binary) {
		/* p has len + 1 bytes: room for the NUL the secret encoder writes. */
		o += vf_b64_encode_secret(value->data, value->len, (char *)p + o, true, false);
	} else if (value->len) {
		memcpy(p + o, value->data, value->len);
		o += value->len;
	}
	p[o] = '\0';
	out->data = p;
	out->len = o;
	out->in_arena = arena != NULL;
	return VF_OK;
}

enum vf_code vf_oem_check_limits(const struct vf_value *strings, size_t n, struct vf_error *err)
{
	if (n > VF_OEM_MAX_STRINGS)
		return vf_fail(err, VF_E_ARG,
			       "%zu OEM strings: SMBIOS type 11 holds at most %d (its count is one "
			       "byte)",
			       n, VF_OEM_MAX_STRINGS);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (strings[i].len == 0)
			return vf_fail(err, VF_E_ARG,
				       "OEM string %zu is empty: an empty string corrupts the SMBIOS "
				       "string set",
				       i + 1);
		total += strings[i].len + 1;
	}
	if (total > VF_OEM_BUDGET)
		return vf_fail(err, VF_E_ARG,
			       "OEM strings take %zu bytes, above the %u-byte SMBIOS budget "
			       "(the tables must fit below 1 MiB of guest memory)",
			       total, VF_OEM_BUDGET);
	return VF_OK;
}
