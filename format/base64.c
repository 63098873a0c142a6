#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t vf_b64_encoded_len(size_t len, bool pad)
{
	if (pad)
		return (len + 2) / 3 * 4;
	return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

size_t vf_b64_encode(const uint8_t *in, size_t len, char *out, bool pad)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	size_t rest = len - i;
	if (rest) {
		uint32_t v = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		if (rest == 2)
			out[o++] = alphabet[(v >> 6) & 63];
		if (pad) {
			out[o++] = '=';
			if (rest == 1)
				out[o++] = '=';
		}
	}
	return o;
}

bool vf_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
		   size_t *out_len, bool pad)
{
	size_t data_len = in_len;
	if (pad) {
		if (in_len % 4)
			return false;
		if (data_len && in[data_len - 1] == '=')
			data_len--;
		if (data_len && in[data_len - 1] == '=')
			data_len--;
		/* "xx==" and "xxx=" only: a lone "x===" is not base64. */
		if (data_len % 4 == 1)
			return false;
	}
	if (data_len % 4 == 1)
		return false;
	size_t need = data_len / 4 * 3 + (data_len % 4 ? data_len % 4 - 1 : 0);
	if (need > out_cap)
		return false;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < data_len; i++) {
		int v = value_of(in[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero, or two encodings decode alike. */
	if (acc != 0)
		return false;
	*out_len = o;
	return true;
}
