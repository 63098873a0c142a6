/* Unit tests of the built-in values (format/vars/values.h):
 *  1. random: every encoding at several lengths has the encoded length and
 *     alphabet, decodes (with libsodium) to length bytes, and differs from
 *     one call to the next; raw bytes cover all 256 values;
 *  2. password: the length, every character from the alphabet, and no
 *     bias: with 129 characters, where a plain modulo would make the last
 *     two half as likely, every character comes about equally often;
 *     alphabets outside 2..256 are refused;
 *  3. uuid: the version 4 layout (8-4-4-4-12 lowercase hex, '4', variant);
 *  4. the key-pair kinds: a WireGuard private key is clamped and its
 *     public key is its X25519 public point; an age identity gives its
 *     recipient; files are matched by name, whatever their order;
 *  5. vf_value_set copies, vf_value_free clears the value and wipes the
 *     bytes of an arena value. */
#include <sodium.h>

#include "age/recipient.h"
#include "base/secmem.h"
#include "vars/spec.h"
#include "vars/values.h"
#include "unit.h"

static struct vf_spec_file file_of(enum vf_kind kind, size_t length, enum vf_encoding enc,
				   const char *alphabet)
{
	return (struct vf_spec_file){.name = "f", .secret = true, .mode = 0400, .kind = kind,
				     .length = length, .encoding = enc, .alphabet = (char *)alphabet};
}

static bool all_in(const uint8_t *p, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++)
		if (!p[i] || !strchr(set, p[i]))
			return false;
	return true;
}

#define B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define HEX "0123456789abcdef"

/* What length bytes look like in enc; decodes v back into raw. */
static size_t encoded_len(size_t n, enum vf_encoding enc)
{
	switch (enc) {
	case VF_ENC_BASE64: return (n + 2) / 3 * 4;
	case VF_ENC_BASE64URL: return (4 * n + 2) / 3;
	case VF_ENC_HEX: return 2 * n;
	case VF_ENC_RAW: return n;
	}
	return 0;
}

static bool decode(const struct vf_value *v, enum vf_encoding enc, uint8_t *raw, size_t cap,
		   size_t *got)
{
	const char *end = NULL;
	const char *s = (const char *)v->data;
	switch (enc) {
	case VF_ENC_BASE64:
	case VF_ENC_BASE64URL:
		if (!all_in(v->data, v->len, enc == VF_ENC_BASE64 ? B64 "+/=" : B64 "-_"))
			return false;
		return sodium_base642bin(raw, cap, s, v->len, NULL, got, &end,
					 enc == VF_ENC_BASE64
						 ? sodium_base64_VARIANT_ORIGINAL
						 : sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
		       end == s + v->len;
	case VF_ENC_HEX:
		return all_in(v->data, v->len, HEX) &&
		       sodium_hex2bin(raw, cap, s, v->len, NULL, got, &end) == 0 && end == s + v->len;
	case VF_ENC_RAW:
		if (v->len > cap)
			return false;
		memcpy(raw, v->data, v->len);
		*got = v->len;
		return true;
	}
	return false;
}

static void random_kind(void)
{
	static const char *const enc_names[] = {"base64", "base64url", "hex", "raw"};
	static const size_t lens[] = {1, 2, 3, 16, 32, 33, 64, 1000};
	static uint8_t raw[1001];
	struct vf_error err = {0};
	for (int e = VF_ENC_BASE64; e <= VF_ENC_RAW; e++) {
		enum vf_encoding enc = (enum vf_encoding)e;
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct vf_spec_file f = file_of(VF_KIND_RANDOM, lens[i], enc, NULL);
			struct vf_value a = {0}, b = {0};
			if (!CHECK_OK(vf_make_value(&f, &a, &err), err, "random %s %zu",
				      enc_names[e], lens[i]) ||
			    !CHECK_OK(vf_make_value(&f, &b, &err), err, "random %s %zu again",
				      enc_names[e], lens[i])) {
				vf_value_free(&a);
				continue;
			}
			size_t got = 0;
			CHECK(a.len == encoded_len(lens[i], enc), "random %s %zu: %zu characters",
			      enc_names[e], lens[i], a.len);
			CHECK(decode(&a, enc, raw, sizeof(raw), &got) && got == lens[i],
			      "random %s %zu: decodes to %zu bytes", enc_names[e], lens[i], got);
			if (lens[i] >= 16)
				CHECK(a.len != b.len || memcmp(a.data, b.data, a.len) != 0,
				      "random %s %zu: two values differ", enc_names[e], lens[i]);
			vf_value_free(&a);
			vf_value_free(&b);
		}
	}

	/* Raw bytes use the whole byte range: 64 KiB misses a value with
	 * probability about 256 * e^-256. */
	struct vf_spec_file f = file_of(VF_KIND_RANDOM, 65536, VF_ENC_RAW, NULL);
	struct vf_value v = {0};
	if (CHECK_OK(vf_make_value(&f, &v, &err), err, "random raw 64 KiB")) {
		bool seen[256] = {false};
		size_t distinct = 0;
		for (size_t i = 0; i < v.len; i++)
			if (!seen[v.data[i]]) {
				seen[v.data[i]] = true;
				distinct++;
			}
		CHECK(v.len == 65536 && distinct == 256, "random raw: all 256 byte values (%zu)",
		      distinct);
	}
	vf_value_free(&v);
}

static void password_kind(void)
{
	struct vf_error err = {0};
	static const char *const alphabets[] = {B64, "ab", "!#$%&*+-.0123456789?@"};
	static const size_t lens[] = {1, 20, 32, 100};
	for (size_t a = 0; a < 3; a++)
		for (size_t i = 0; i < 4; i++) {
			struct vf_spec_file f = file_of(VF_KIND_PASSWORD, lens[i], 0, alphabets[a]);
			struct vf_value v = {0};
			if (CHECK_OK(vf_make_value(&f, &v, &err), err, "password %zu of alphabet %zu",
				     lens[i], a))
				CHECK(v.len == lens[i] && all_in(v.data, v.len, alphabets[a]),
				      "password %zu of alphabet %zu: length and characters", lens[i],
				      a);
			vf_value_free(&v);
		}

	/* 129 characters (bytes 1..129): 256 = 129 + 127, so a plain
	 * "byte % 129" would give characters 127 and 128 half the chance of
	 * the others. 129,000 draws: about 1000 each (standard deviation 31),
	 * where the biased ones would get about 500; the bounds are over 6
	 * deviations wide. */
	char alphabet[130];
	for (int c = 1; c <= 129; c++)
		alphabet[c - 1] = (char)c;
	alphabet[129] = '\0';
	struct vf_spec_file f = file_of(VF_KIND_PASSWORD, 129000, 0, alphabet);
	struct vf_value v = {0};
	if (CHECK_OK(vf_make_value(&f, &v, &err), err, "a long password of 129 characters")) {
		size_t count[256] = {0};
		for (size_t i = 0; i < v.len; i++)
			count[v.data[i]]++;
		size_t low = SIZE_MAX, high = 0, outside = count[0];
		for (int c = 1; c <= 129; c++) {
			low = count[c] < low ? count[c] : low;
			high = count[c] > high ? count[c] : high;
		}
		for (int c = 130; c < 256; c++)
			outside += count[c];
		CHECK(v.len == 129000 && outside == 0, "every character from the alphabet");
		CHECK(low >= 800 && high <= 1200, "unbiased: each character 800..1200 times (%zu..%zu)",
		      low, high);
		CHECK(count[128] >= 800 && count[129] >= 800,
		      "the characters a modulo would starve are not (%zu, %zu)", count[128],
		      count[129]);
	}
	vf_value_free(&v);

	char many[301];
	memset(many, 'a', 300);
	many[300] = '\0';
	const char *const bad[] = {"", "x", many};
	for (size_t i = 0; i < 3; i++) {
		f = file_of(VF_KIND_PASSWORD, 8, 0, bad[i]);
		v = (struct vf_value){0};
		CHECK(vf_make_value(&f, &v, &err) == VF_E_ARG && v.data == NULL,
		      "an alphabet of %zu characters is refused", strlen(bad[i]));
		vf_value_free(&v);
	}
}

static bool uuid_v4(const struct vf_value *v)
{
	if (v->len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? v->data[i] != '-' : !v->data[i] || !strchr(HEX, v->data[i]))
			return false;
	}
	return v->data[14] == '4' && strchr("89ab", v->data[19]);
}

static void uuid_kind(void)
{
	struct vf_error err = {0};
	struct vf_spec_file f = file_of(VF_KIND_UUID, 0, 0, NULL);
	int bad = 0, same = 0;
	bool variant[4] = {false};
	char first[37] = "";
	for (int i = 0; i < 200; i++) {
		struct vf_value v = {0};
		if (vf_make_value(&f, &v, &err) != VF_OK || !uuid_v4(&v)) {
			bad++;
		} else {
			variant[strchr("89ab", v.data[19]) - "89ab"] = true;
			if (i == 0)
				memcpy(first, v.data, 36);
			else if (!memcmp(first, v.data, 36))
				same++;
		}
		vf_value_free(&v);
	}
	CHECK(bad == 0, "200 uuids in the version 4 layout (%d bad)", bad);
	CHECK(same == 0, "uuids differ");
	CHECK(variant[0] && variant[1] && variant[2] && variant[3],
	      "the variant nibble takes all of 8, 9, a, b");

	struct vf_spec_file script = file_of(VF_KIND_SCRIPT, 0, 0, NULL);
	struct vf_value v = {0};
	CHECK(vf_make_value(&script, &v, &err) == VF_E_ARG && v.data == NULL,
	      "a script file has no built-in value");
}

static bool b64_32(const struct vf_value *v, uint8_t out[32])
{
	size_t got = 0;
	return v->len == 44 && sodium_base642bin(out, 32, (const char *)v->data, v->len, NULL, &got,
						 NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
	       got == 32;
}

static void keypairs(void)
{
	struct vf_error err = {0};
	/* Public first: the files are found by name, not position. */
	struct vf_spec_file wg_files[2] = {{.name = "public"}, {.name = "private"}};
	struct vf_spec_generator wg = {.name = "wg", .kind = VF_KIND_WIREGUARD, .files = wg_files,
				       .n_files = 2};
	struct vf_value vals[2] = {{0}};
	if (CHECK_OK(vf_make_keypair(&wg, vals, &err), err, "a wireguard key pair")) {
		uint8_t priv[32], pub[32], want[32];
		bool ok = b64_32(&vals[1], priv) && b64_32(&vals[0], pub);
		CHECK(ok, "wireguard: both keys are 32 bytes in base64");
		CHECK(ok && (priv[0] & 7) == 0 && (priv[31] & 0xc0) == 0x40,
		      "wireguard: the private key is clamped");
		CHECK(ok && crypto_scalarmult_base(want, priv) == 0 && !memcmp(want, pub, 32),
		      "wireguard: the public key is the private key's point");
		sodium_memzero(priv, sizeof(priv));
	}
	vf_value_free(&vals[0]);
	vf_value_free(&vals[1]);

	struct vf_spec_file age_files[2] = {{.name = "recipient"}, {.name = "identity"}};
	struct vf_spec_generator age = {.name = "age", .kind = VF_KIND_AGE_KEYPAIR,
					.files = age_files, .n_files = 2};
	if (CHECK_OK(vf_make_keypair(&age, vals, &err), err, "an age key pair")) {
		struct vf_identity *id = NULL;
		char *recipient = NULL;
		CHECK(vals[1].len > 16 && !memcmp(vals[1].data, "AGE-SECRET-KEY-1", 16) &&
			      vals[0].len > 4 && !memcmp(vals[0].data, "age1", 4),
		      "age: an identity and a recipient");
		CHECK(vf_x25519_identity_parse((const char *)vals[1].data, vals[1].len, &id, &err) ==
				      VF_OK &&
			      vf_x25519_identity_recipient(id, &recipient, &err) == VF_OK &&
			      strlen(recipient) == vals[0].len &&
			      !memcmp(recipient, vals[0].data, vals[0].len),
		      "age: the recipient is the identity's");
		free(recipient);
		vf_identity_free(id);
	}
	vf_value_free(&vals[0]);
	vf_value_free(&vals[1]);

	struct vf_spec_generator script = {.name = "s", .kind = VF_KIND_SCRIPT, .files = wg_files,
					   .n_files = 2};
	CHECK(vf_make_keypair(&script, vals, &err) == VF_E_ARG, "a script generator is no key pair");
	struct vf_spec_generator lacking = {.name = "wg", .kind = VF_KIND_WIREGUARD,
					    .files = wg_files, .n_files = 1};
	CHECK(vf_make_keypair(&lacking, vals, &err) == VF_E_ARG && vals[0].data == NULL,
	      "a key pair without its files is refused");
}

static void set_and_free(void)
{
	struct vf_error err = {0};
	char src[] = "secret";
	struct vf_value v = {0};
	if (CHECK_OK(vf_value_set(&v, src, 6, &err), err, "vf_value_set")) {
		src[0] = 'X';
		CHECK(v.len == 6 && !memcmp(v.data, "secret", 6) && (void *)v.data != (void *)src &&
			      !v.in_arena,
		      "vf_value_set copies into its own allocation");
	}
	vf_value_free(&v);
	CHECK(v.data == NULL && v.len == 0 && !v.in_arena, "vf_value_free clears the value");
	vf_value_free(&v); /* twice: nothing to free */
	CHECK(v.data == NULL, "freeing a freed value is harmless");
	CHECK_OK(vf_value_set(&v, "", 0, &err), err, "an empty value");
	CHECK(v.data != NULL && v.len == 0, "an empty value still has storage");
	vf_value_free(&v);

	/* An arena value is wiped in place; its memory goes with the arena. */
	struct vf_arena arena = {0};
	uint8_t *p = vf_arena_alloc(&arena, 8);
	unit_must(p != NULL, "vf_arena_alloc");
	memcpy(p, "password", 8);
	v = (struct vf_value){.data = p, .len = 8, .in_arena = true};
	vf_value_free(&v);
	static const uint8_t zero[8];
	CHECK(!memcmp(p, zero, 8) && v.data == NULL && !v.in_arena,
	      "an arena value is wiped and cleared");
	vf_arena_free(&arena);
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "unit_values: cannot initialise the library\n");
		return 2;
	}
	random_kind();
	password_kind();
	uuid_kind();
	keypairs();
	set_and_free();
	return unit_done();
}
