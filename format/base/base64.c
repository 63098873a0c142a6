#include "base/base64.h"

#include <sodium.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Character -> 6-bit value, 255 for anything outside the alphabet. A
 * table, because armored payloads decode millions of characters. */
static const uint8_t values[256] = {
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 62, 255, 255, 255, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 255, 255, 255, 255, 255, 255,
	255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 255, 255, 255, 255, 255,
	255, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};

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

/* The length checks both decoders share (they look at the length and the
 * padding, never at the data): the unpadded length in *data_len and the
 * decoded size in *need, or false. */
static bool b64_shape(const char *in, size_t in_len, size_t out_cap, bool pad, size_t *data_len,
		      size_t *need)
{
	size_t n = in_len;
	if (pad) {
		if (in_len % 4)
			return false;
		if (n && in[n - 1] == '=')
			n--;
		if (n && in[n - 1] == '=')
			n--;
	}
	/* "xx==" and "xxx=" only: a lone "x===" is not base64. */
	if (n % 4 == 1)
		return false;
	*data_len = n;
	*need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	return *need <= out_cap;
}

bool vf_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
		   size_t *out_len, bool pad)
{
	size_t data_len, need;
	if (!b64_shape(in, in_len, out_cap, pad, &data_len, &need))
		return false;
	size_t o = 0, i = 0;
	for (; i + 4 <= data_len; i += 4) {
		uint32_t a = values[(uint8_t)in[i]], b = values[(uint8_t)in[i + 1]],
			 c = values[(uint8_t)in[i + 2]], d = values[(uint8_t)in[i + 3]];
		if ((a | b | c | d) & 0x80)
			return false;
		uint32_t v = a << 18 | b << 12 | c << 6 | d;
		out[o++] = (uint8_t)(v >> 16);
		out[o++] = (uint8_t)(v >> 8);
		out[o++] = (uint8_t)v;
	}
	uint32_t acc = 0;
	unsigned bits = 0;
	for (; i < data_len; i++) {
		uint32_t v = values[(uint8_t)in[i]];
		if (v & 0x80)
			return false;
		acc = (acc << 6) | v;
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

size_t vf_b64_encode_secret(const uint8_t *in, size_t len, char *out, bool pad, bool url)
{
	int variant = url ? (pad ? sodium_base64_VARIANT_URLSAFE
				 : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
			  : (pad ? sodium_base64_VARIANT_ORIGINAL
				 : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	size_t n = vf_b64_encoded_len(len, pad);
	sodium_bin2base64(out, n + 1, in, len, variant);
	return n;
}

void vf_hex_encode_secret(const uint8_t *in, size_t len, char *out)
{
	sodium_bin2hex(out, 2 * len + 1, in, len);
}

bool vf_b64_decode_secret(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
			  size_t *out_len, bool pad)
{
	/* The same shape checks as vf_b64_decode; libsodium then refuses
	 * stray characters, misplaced '=' and non-zero leftover bits itself. */
	size_t data_len, need;
	if (!b64_shape(in, in_len, out_cap, pad, &data_len, &need))
		return false;
	/* libsodium 1.0.18 reads a byte above 0x7f as a signed char and
	 * decodes some of them as letters: refuse them first, with one OR over
	 * the input (it tells only that such a byte exists). */
	unsigned high = 0;
	for (size_t i = 0; i < in_len; i++)
		high |= (unsigned char)in[i];
	if (high & 0x80)
		return false;
	size_t n = 0;
	int variant = pad ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
	if (sodium_base642bin(out, out_cap, in, in_len, NULL, &n, NULL, variant) != 0 || n != need)
		return false;
	*out_len = n;
	return true;
}
