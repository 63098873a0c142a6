/* Unit tests of OEM string encoding (format/vars/oem.h):
 *  1. credential names: systemd's rules, and '=' refused (systemd would
 *     end the name there), with a reason;
 *  2. the text-or-binary choice for each transport;
 *  3. vf_oem_encode: the exact text form, and the .binary form whose
 *     base64 (decoded here with libsodium) gives the value back, over
 *     every transport and random values; names and sizes refused;
 *  4. vf_oem_check_limits: the string count, empty strings, the budget. */
#include <sodium.h>

#include "base/secmem.h"
#include "vars/oem.h"
#include "vars/values.h"
#include "unit.h"

static const enum vf_transport transports[] = {VF_TRANSPORT_QEMU_SMBIOS, VF_TRANSPORT_QEMU_FWCFG,
					       VF_TRANSPORT_CH_ARGV, VF_TRANSPORT_CH_API};
static const char *const transport_names[] = {"smbios", "fw_cfg", "ch-argv", "ch-api"};

static void names(void)
{
	const char *why = "unset";
	CHECK(vf_credential_name_valid("HOST-API-KEY", &why) && why == NULL,
	      "a plain name is valid and clears why");
	char longest[257];
	memset(longest, 'n', 255);
	longest[255] = '\0';
	CHECK(vf_credential_name_valid(longest, NULL), "255 bytes is valid (why may be NULL)");
	longest[255] = 'n';
	longest[256] = '\0';
	CHECK(!vf_credential_name_valid(longest, &why) && why && strstr(why, "255"),
	      "256 bytes is refused (why: %s)", why ? why : "(null)");
	CHECK(vf_credential_name_valid("a.b_c~d e", &why), "dots, spaces, '~' are allowed");

	static const struct {
		const char *name, *reason;
	} bad[] = {
		{"", "empty"},	       {".", "'.'"},	    {"..", "'.'"},
		{"a/b", "'/'"},	       {"a:b", "':'"},	    {"a=b", "'='"},
		{"=", "'='"},	       {"KEY=", "'='"},	    {"a\tb", "control"},
		{"a\x7f", "control"}, {"caf\xc3\xa9", "non-ASCII"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		bool ok = vf_credential_name_valid(bad[i].name, &why);
		CHECK(!ok && why && strstr(why, bad[i].reason), "name #%zu refused for %s (why: %s)",
		      i, bad[i].reason, why ? why : "(null)");
	}
}

static bool safe(const char *s, size_t len, enum vf_transport t)
{
	return vf_oem_text_safe((const uint8_t *)s, len, t);
}

/* A string literal and its length, NULs inside included. */
#define LIT(s) s, sizeof(s) - 1

static void text_choice(void)
{
	/* fw_cfg carries the file's bytes: everything is text. */
	CHECK(safe(LIT("a\0b"), VF_TRANSPORT_QEMU_FWCFG) &&
		      safe(LIT("\xff,[]\""), VF_TRANSPORT_QEMU_FWCFG),
	      "fw_cfg: NUL and any byte are carried as text");
	/* SMBIOS strings end at NUL, and nothing else matters. */
	CHECK(safe(LIT("plain"), VF_TRANSPORT_QEMU_SMBIOS), "smbios: plain text");
	CHECK(safe(LIT("a, b [c] \"d\" \xff"), VF_TRANSPORT_QEMU_SMBIOS),
	      "smbios: commas, brackets, quotes, spaces and high bytes are text");
	CHECK(!safe(LIT("a\0b"), VF_TRANSPORT_QEMU_SMBIOS), "smbios: a NUL forces binary");
	CHECK(!safe(LIT("ab\0"), VF_TRANSPORT_QEMU_SMBIOS), "smbios: a trailing NUL forces binary");
	/* The API is JSON: valid UTF-8 without NUL. */
	CHECK(safe(LIT("caf\xc3\xa9, \xe2\x82\xac \xf0\x9f\x94\x91"), VF_TRANSPORT_CH_API),
	      "ch-api: 2-, 3- and 4-byte UTF-8 and commas are text");
	CHECK(!safe(LIT("a\0b"), VF_TRANSPORT_CH_API), "ch-api: NUL forces binary");
	CHECK(!safe(LIT("\xff"), VF_TRANSPORT_CH_API), "ch-api: 0xff forces binary");
	CHECK(!safe(LIT("\xc0\x80"), VF_TRANSPORT_CH_API), "ch-api: overlong NUL forces binary");
	CHECK(!safe(LIT("\xe2\x82"), VF_TRANSPORT_CH_API), "ch-api: truncated UTF-8 forces binary");
	CHECK(!safe(LIT("\xc3("), VF_TRANSPORT_CH_API), "ch-api: bad continuation forces binary");
	/* The argv grammar: only plain printable values without , " [ ]. */
	CHECK(safe(LIT("s3cr3t!~{}()=:/+"), VF_TRANSPORT_CH_ARGV), "ch-argv: plain printable text");
	static const char *const argv_bad[] = {"a,b", "a b", "\"q\"", "[x", "y]", "tab\t",
					       "caf\xc3\xa9", "del\x7f"};
	for (size_t i = 0; i < sizeof(argv_bad) / sizeof(argv_bad[0]); i++)
		CHECK(!safe(argv_bad[i], strlen(argv_bad[i]), VF_TRANSPORT_CH_ARGV),
		      "ch-argv: value #%zu forces binary", i);
	CHECK(!safe(LIT("a\0b"), VF_TRANSPORT_CH_ARGV), "ch-argv: NUL forces binary");
}

/* Checks out as the encoding of name/value: the prefix, "NAME=", and the
 * body, text or base64 (padded, standard alphabet) of the value. */
static bool decodes_to(const struct vf_value *out, bool binary, const char *name,
		       const uint8_t *value, size_t len)
{
	const char *prefix = binary ? VF_OEM_BINARY_PREFIX : VF_OEM_PREFIX;
	size_t head = strlen(prefix) + strlen(name) + 1;
	const char *s = (const char *)out->data;
	if (out->len < head || strncmp(s, prefix, strlen(prefix)) ||
	    strncmp(s + strlen(prefix), name, strlen(name)) || s[head - 1] != '=' ||
	    s[out->len] != '\0')
		return false;
	if (!binary)
		return out->len - head == len && (len == 0 || !memcmp(s + head, value, len));
	uint8_t *raw = malloc(len + 1);
	size_t got = 0;
	const char *end = NULL;
	bool ok = raw &&
		  sodium_base642bin(raw, len + 1, s + head, out->len - head, NULL, &got, &end,
				    sodium_base64_VARIANT_ORIGINAL) == 0 &&
		  end == s + out->len && got == len && (len == 0 || !memcmp(raw, value, len));
	free(raw);
	return ok;
}

static void encode_one(const char *name, const void *data, size_t len, enum vf_transport t,
		       bool want_binary, const char *what)
{
	struct vf_value v = {0}, out = {0};
	struct vf_error err = {0};
	bool binary = !want_binary;
	unit_must(vf_value_set(&v, data, len, &err) == VF_OK, "vf_value_set");
	if (CHECK_OK(vf_oem_encode(name, &v, t, NULL, &out, &binary, &err), err, "%s", what)) {
		CHECK(binary == want_binary, "%s: %s form", what, want_binary ? "binary" : "text");
		CHECK(decodes_to(&out, binary, name, data, len), "%s: decodes to the value", what);
		CHECK(!out.in_arena, "%s: in its own guarded allocation", what);
	}
	vf_value_free(&out);
	vf_value_free(&v);
}

static void encoding(void)
{
	struct vf_value v = {0}, out = {0};
	struct vf_error err = {0};
	bool binary = true;

	unit_must(vf_value_set(&v, "hello", 5, &err) == VF_OK, "vf_value_set");
	if (CHECK_OK(vf_oem_encode("K", &v, VF_TRANSPORT_QEMU_SMBIOS, NULL, &out, &binary, &err),
		     err, "text encoding")) {
		CHECK_STR((const char *)out.data, "io.systemd.credential:K=hello",
			  "the exact text form");
		CHECK(out.len == strlen("io.systemd.credential:K=hello") && !binary,
		      "its length excludes the NUL; not binary");
	}
	vf_value_free(&out);
	vf_value_free(&v);

	unit_must(vf_value_set(&v, "a\0b", 3, &err) == VF_OK, "vf_value_set");
	if (CHECK_OK(vf_oem_encode("K", &v, VF_TRANSPORT_QEMU_SMBIOS, NULL, &out, &binary, &err),
		     err, "binary encoding"))
		CHECK_STR((const char *)out.data, "io.systemd.credential.binary:K=YQBi",
			  "the exact binary form");
	vf_value_free(&out);
	vf_value_free(&v);

	encode_one("EMPTY", "", 0, VF_TRANSPORT_CH_ARGV, false, "empty value");
	encode_one("N", "a\0b", 3, VF_TRANSPORT_QEMU_FWCFG, false, "fw_cfg keeps a NUL as text");
	encode_one("N", "a,b", 3, VF_TRANSPORT_CH_ARGV, true, "ch-argv comma");
	encode_one("N", "a,b", 3, VF_TRANSPORT_CH_API, false, "ch-api comma");
	encode_one("N", "\xff\xfe", 2, VF_TRANSPORT_CH_API, true, "ch-api invalid UTF-8");
	encode_one("N", "\xff\xfe", 2, VF_TRANSPORT_QEMU_SMBIOS, false, "smbios high bytes");

	/* Random values of every length 0..64 and a few large ones: binary
	 * exactly when the transport cannot carry them, and always back. */
	static const size_t lens[] = {0, 1, 2, 3, 31, 32, 33, 64, 1000, 4096};
	uint8_t buf[4096];
	for (size_t ti = 0; ti < 4; ti++) {
		int bad = 0;
		for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			randombytes_buf(buf, lens[li]);
			struct vf_value rv = {0}, ro = {0};
			unit_must(vf_value_set(&rv, buf, lens[li], &err) == VF_OK, "vf_value_set");
			bool bin = false;
			if (vf_oem_encode("R", &rv, transports[ti], NULL, &ro, &bin, &err) != VF_OK ||
			    bin == vf_oem_text_safe(buf, lens[li], transports[ti]) ||
			    !decodes_to(&ro, bin, "R", buf, lens[li]))
				bad++;
			vf_value_free(&ro);
			vf_value_free(&rv);
		}
		CHECK(bad == 0, "%s: random values round trip (%d bad)", transport_names[ti], bad);
	}

	/* From an arena: marked so, freed with it. */
	struct vf_arena arena = {0};
	unit_must(vf_value_set(&v, "x", 1, &err) == VF_OK, "vf_value_set");
	if (CHECK_OK(vf_oem_encode("A", &v, VF_TRANSPORT_CH_API, &arena, &out, &binary, &err), err,
		     "encoding into an arena"))
		CHECK(out.in_arena && decodes_to(&out, binary, "A", (const uint8_t *)"x", 1),
		      "arena value is marked and right");
	vf_value_free(&out);
	vf_arena_free(&arena);

	/* Refusals. */
	out = (struct vf_value){0};
	err = (struct vf_error){0};
	CHECK(vf_oem_encode("A=B", &v, VF_TRANSPORT_CH_API, NULL, &out, &binary, &err) == VF_E_ARG &&
		      out.data == NULL && strstr(err.msg, "A=B"),
	      "a name with '=' is refused, naming it (%s)", err.msg);
	CHECK(vf_oem_encode("", &v, VF_TRANSPORT_CH_API, NULL, &out, &binary, &err) == VF_E_ARG,
	      "an empty name is refused");
	vf_value_free(&v);
}

static void size_limit(void)
{
	struct vf_value v = {0}, out = {0};
	struct vf_error err = {0};
	bool binary = true;
	char *x = malloc(VF_CREDENTIAL_MAX + 1);
	unit_must(x != NULL, "malloc");
	memset(x, 'x', VF_CREDENTIAL_MAX + 1);
	unit_must(vf_value_set(&v, x, VF_CREDENTIAL_MAX + 1, &err) == VF_OK, "vf_value_set");
	free(x);
	err = (struct vf_error){0};
	CHECK(vf_oem_encode("BIG", &v, VF_TRANSPORT_QEMU_FWCFG, NULL, &out, &binary, &err) ==
			  VF_E_ARG &&
		      out.data == NULL && strstr(err.msg, "1 MiB"),
	      "1 MiB + 1 byte is refused (%s)", err.msg);
	v.len = VF_CREDENTIAL_MAX;
	if (CHECK_OK(vf_oem_encode("BIG", &v, VF_TRANSPORT_QEMU_FWCFG, NULL, &out, &binary, &err),
		     err, "exactly 1 MiB is accepted"))
		CHECK(!binary && out.len == strlen(VF_OEM_PREFIX) + 4 + VF_CREDENTIAL_MAX,
		      "as text, whole");
	vf_value_free(&out);
	vf_value_free(&v);
}

static void limits(void)
{
	static struct vf_value strings[VF_OEM_MAX_STRINGS + 1];
	static uint8_t one[] = "s";
	for (size_t i = 0; i <= VF_OEM_MAX_STRINGS; i++)
		strings[i] = (struct vf_value){.data = one, .len = 1};
	struct vf_error err = {0};
	CHECK_OK(vf_oem_check_limits(strings, VF_OEM_MAX_STRINGS, &err), err,
		 "255 strings are accepted");
	CHECK(vf_oem_check_limits(strings, VF_OEM_MAX_STRINGS + 1, &err) == VF_E_ARG &&
		      strstr(err.msg, "256"),
	      "256 strings are refused (%s)", err.msg);
	CHECK_OK(vf_oem_check_limits(strings, 0, &err), err, "no strings is fine");
	strings[2].len = 0;
	CHECK(vf_oem_check_limits(strings, 5, &err) == VF_E_ARG && strstr(err.msg, "string 3"),
	      "an empty string is refused, by position (%s)", err.msg);

	/* The budget counts each string's terminating NUL. */
	uint8_t *big = calloc(1, VF_OEM_BUDGET);
	unit_must(big != NULL, "calloc");
	memset(big, 'b', VF_OEM_BUDGET);
	struct vf_value b = {.data = big, .len = VF_OEM_BUDGET - 1};
	CHECK_OK(vf_oem_check_limits(&b, 1, &err), err, "budget - 1 bytes + NUL fits");
	b.len = VF_OEM_BUDGET;
	CHECK(vf_oem_check_limits(&b, 1, &err) == VF_E_ARG && strstr(err.msg, "budget"),
	      "budget bytes + NUL do not (%s)", err.msg);
	struct vf_value two[2] = {{.data = big, .len = VF_OEM_BUDGET / 2 - 1},
				  {.data = big, .len = VF_OEM_BUDGET / 2}};
	CHECK(vf_oem_check_limits(two, 2, &err) == VF_E_ARG,
	      "the budget is for all strings together");
	free(big);
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "unit_oem: cannot initialise the library\n");
		return 2;
	}
	names();
	text_choice();
	encoding();
	size_limit();
	limits();
	return unit_done();
}
