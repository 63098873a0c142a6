#include "base/bech32.h"

#include <string.h>

#include "base/secmem.h"

/* Bech32 carries secret keys (AGE-SECRET-KEY-1...), so everything that
 * touches the data runs in constant time: no branch and no table index on
 * a secret value. The character set is searched whole with masks instead
 * of indexed, and the checksum's generator terms are masked in. Lengths
 * and positions are not secret. */
static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/* 1 if a < b, else 0; a and b below 2^31. */
static uint32_t ct_lt(uint32_t a, uint32_t b)
{
	return (a - b) >> 31;
}

/* All ones if a == b, else 0. */
static uint32_t ct_eq_mask(uint32_t a, uint32_t b)
{
	uint32_t x = a ^ b;
	return ((x | (0u - x)) >> 31) - 1u;
}

static uint32_t polymod_step(uint32_t chk, uint8_t v)
{
	static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
	uint32_t top = chk >> 25;
	chk = ((chk & 0x1ffffff) << 5) ^ v;
	for (int i = 0; i < 5; i++)
		chk ^= gen[i] & (0u - ((top >> i) & 1u));
	return chk;
}

/* charset[v] for v in [0, 32), reading every entry. */
static char ct_char(uint32_t v)
{
	uint32_t c = 0;
	for (uint32_t i = 0; i < 32; i++)
		c |= (uint32_t)(unsigned char)charset[i] & ct_eq_mask(i, v);
	return (char)c;
}

static uint32_t hrp_checksum_start(const char *hrp, size_t hrp_len)
{
	uint32_t chk = 1;
	for (size_t i = 0; i < hrp_len; i++)
		chk = polymod_step(chk, (uint8_t)((unsigned char)hrp[i] >> 5));
	chk = polymod_step(chk, 0);
	for (size_t i = 0; i < hrp_len; i++)
		chk = polymod_step(chk, (uint8_t)(hrp[i] & 31));
	return chk;
}

size_t vf_bech32_encoded_len(size_t hrp_len, size_t len)
{
	return hrp_len + 1 + (len * 8 + 4) / 5 + 6;
}

/* c + 32 for A-Z (from 'A') or c - 32 for a-z (from 'a'), without a branch. */
static char ct_shift_case(char c, uint32_t from, bool up)
{
	uint32_t d = (uint32_t)(unsigned char)c;
	uint32_t in = ct_lt(d, from + 26) & (1u ^ ct_lt(d, from));
	return (char)(up ? d - (in << 5) : d + (in << 5));
}

static char lower(char c)
{
	return ct_shift_case(c, 'A', false);
}

static char upper_of(char c)
{
	return ct_shift_case(c, 'a', true);
}

bool vf_bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out,
		      size_t out_cap)
{
	size_t hrp_len = strlen(hrp);
	size_t total = vf_bech32_encoded_len(hrp_len, len);
	if (total + 1 > out_cap || hrp_len == 0)
		return false;
	char lhrp[128];
	if (hrp_len >= sizeof(lhrp))
		return false;
	for (size_t i = 0; i < hrp_len; i++)
		lhrp[i] = lower(hrp[i]);
	uint32_t chk = hrp_checksum_start(lhrp, hrp_len);
	size_t o = 0;
	memcpy(out, lhrp, hrp_len);
	o = hrp_len;
	out[o++] = '1';
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			uint8_t v = (uint8_t)((acc >> bits) & 31);
			chk = polymod_step(chk, v);
			out[o++] = ct_char(v);
		}
	}
	if (bits) {
		uint8_t v = (uint8_t)((acc << (5 - bits)) & 31);
		chk = polymod_step(chk, v);
		out[o++] = ct_char(v);
	}
	vf_wipe(&acc, sizeof(acc));
	for (int i = 0; i < 6; i++)
		chk = polymod_step(chk, 0);
	chk ^= 1;
	for (int i = 0; i < 6; i++)
		out[o++] = ct_char((chk >> (5 * (5 - i))) & 31);
	out[o] = '\0';
	if (upper)
		for (size_t i = 0; i < o; i++)
			out[i] = upper_of(out[i]);
	return true;
}

/* The value of character c, or -1: every entry is compared (memchr
 * would stop at the match and tell where it was). */
static int charset_value(char c)
{
	uint32_t l = (uint32_t)(unsigned char)lower(c), v = 0, found = 0;
	for (uint32_t i = 0; i < 32; i++) {
		uint32_t m = ct_eq_mask((uint32_t)(unsigned char)charset[i], l);
		v |= i & m;
		found |= m;
	}
	/* A character outside the set ends decoding anyway: no secret is
	 * left to protect once the string is known to be malformed. */
	return found ? (int)v : -1;
}

/* The value of each ASCII character in the alphabet (either case), or -1:
 * for public strings only, as the lookup's address depends on the
 * character. */
static const signed char public_values[128] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	15, -1, 10, 17, 21, 20, 26, 30,  7,  5, -1, -1, -1, -1, -1, -1,
	-1, 29, -1, 24, 13, 25,  9,  8, 23, -1, 18, 22, 31, 27, 19, -1,
	 1,  0,  3, 16, 11, 28, 12, 14,  6,  4,  2, -1, -1, -1, -1, -1,
	-1, 29, -1, 24, 13, 25,  9,  8, 23, -1, 18, 22, 31, 27, 19, -1,
	 1,  0,  3, 16, 11, 28, 12, 14,  6,  4,  2, -1, -1, -1, -1, -1,
};

/* polymod_step's generator terms for each value of the top five bits,
 * looked up: for public strings only (the index is checksum state). */
static const uint32_t public_gen[32] = {
	0x00000000, 0x3b6a57b2, 0x26508e6d, 0x1d3ad9df,
	0x1ea119fa, 0x25cb4e48, 0x38f19797, 0x039bc025,
	0x3d4233dd, 0x0628646f, 0x1b12bdb0, 0x2078ea02,
	0x23e32a27, 0x18897d95, 0x05b3a44a, 0x3ed9f3f8,
	0x2a1462b3, 0x117e3501, 0x0c44ecde, 0x372ebb6c,
	0x34b57b49, 0x0fdf2cfb, 0x12e5f524, 0x298fa296,
	0x1756516e, 0x2c3c06dc, 0x3106df03, 0x0a6c88b1,
	0x09f74894, 0x329d1f26, 0x2fa7c6f9, 0x14cd914b,
};

/* vf_bech32_decode for a secret (constant-time lookups) or, with
 * public_data, by tables; inlined into each, so that either loop is
 * compiled with its own lookups and no indirect call per character. */
static inline __attribute__((always_inline)) bool
decode(const char *s, size_t s_len, char *hrp, size_t hrp_cap, uint8_t *out, size_t out_cap,
       size_t *out_len, bool public_data)
{
	bool has_lower = false, has_upper = false;
	size_t sep = s_len;
	for (size_t i = 0; i < s_len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126)
			return false;
		has_lower |= c >= 'a' && c <= 'z';
		has_upper |= c >= 'A' && c <= 'Z';
		if (c == '1')
			sep = i;
	}
	if (has_lower && has_upper)
		return false;
	if (sep == s_len || sep == 0 || s_len - sep - 1 < 6 || sep + 1 > hrp_cap)
		return false;
	for (size_t i = 0; i < sep; i++)
		hrp[i] = lower(s[i]);
	hrp[sep] = '\0';

	uint32_t chk = hrp_checksum_start(hrp, sep);
	size_t data_chars = s_len - sep - 1 - 6;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	bool ok = true;
	for (size_t i = sep + 1; i < s_len && ok; i++) {
		unsigned char u = (unsigned char)s[i];
		int v = !public_data ? charset_value(s[i]) : u < 128 ? public_values[u] : -1;
		if (v < 0) {
			ok = false;
			break;
		}
		chk = !public_data ? polymod_step(chk, (uint8_t)v)
				   : (((chk & 0x1ffffff) << 5) ^ (uint32_t)v) ^ public_gen[chk >> 25];
		if (i - sep - 1 >= data_chars)
			continue;
		acc = ((acc << 5) | (uint32_t)v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= out_cap) {
				ok = false;
				break;
			}
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* At most 4 padding bits, all zero (BIP 173's conversion rule). */
	if (ok && (chk != 1 || bits >= 5 || (acc & ((1u << bits) - 1)) != 0))
		ok = false;
	vf_wipe(&acc, sizeof(acc));
	if (!ok) {
		vf_wipe(out, o);
		return false;
	}
	*out_len = o;
	return true;
}

bool vf_bech32_decode(const char *s, size_t s_len, char *hrp, size_t hrp_cap, uint8_t *out,
		      size_t out_cap, size_t *out_len)
{
	return decode(s, s_len, hrp, hrp_cap, out, out_cap, out_len, false);
}

bool vf_bech32_decode_public(const char *s, size_t s_len, char *hrp, size_t hrp_cap,
			     uint8_t *out, size_t out_cap, size_t *out_len)
{
	return decode(s, s_len, hrp, hrp_cap, out, out_cap, out_len, true);
}
