/* libFuzzer target: varinject's hypervisor command-line builders.
 *
 * From random credential names and values, static OEM strings and a
 * runtime directory, varinject's own builders make QEMU's and
 * cloud-hypervisor's arguments (--dry-run: no file is written). Every
 * argument they add is parsed back here with the hypervisor's own rules,
 * implemented independently of varinject:
 *   - QEMU's QemuOpts (util/qemu-option.c: get_opt_name_value and
 *     get_opt_value: a single ',' separates, ",," is a ',' in a value);
 *   - cloud-hypervisor's OptionParser (option_parser crate, as modelled in
 *     tests/ch/option_parser.py: split_commas outside [] and "", values
 *     trimmed with Rust's str::trim, StringList stripping brackets
 *     greedily, get() removing quotes).
 * The names and values read back must be exactly the intended ones, else
 * abort(). varinject's own QemuOpts reader (used on the user's QEMU
 * arguments) must agree with this one on any input.
 *
 * Input: byte 0 = flags (bit 0: fw_cfg, bits 1-2: static strings, bits
 * 3-5: credentials); then length-prefixed fields (1 byte of length): the
 * runtime directory, the static strings, then name/value pairs. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/secmem.h"
#include "varinject.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz_cmdline: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* ---- QEMU's rules --------------------------------------------------------- */

struct pair {
	char name[256];
	char *value;
};
struct pairs {
	struct pair items[16];
	size_t n;
};

static void pairs_free(struct pairs *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].value);
	p->n = 0;
}

/* get_opt_value: from p to the first single ','; returns where it ended. */
static const char *qemu_value(const char *p, char **value)
{
	size_t cap = strlen(p) + 1, len = 0;
	char *v = malloc(cap);
	CHECK(v);
	for (;;) {
		const char *comma = strchrnul(p, ',');
		size_t n = (size_t)(comma - p);
		bool escaped = *comma == ',' && comma[1] == ',';
		memcpy(v + len, p, n + (escaped ? 1 : 0));
		len += n + (escaped ? 1 : 0);
		if (!escaped) {
			v[len] = '\0';
			*value = v;
			return comma;
		}
		p = comma + 2;
	}
}

/* opts_do_parse: false when there are more options than we keep. */
static bool qemu_parse(const char *s, const char *implied, struct pairs *out)
{
	out->n = 0;
	for (const char *p = s; *p;) {
		if (out->n == sizeof(out->items) / sizeof(out->items[0]))
			return false;
		struct pair *o = &out->items[out->n];
		size_t len = strcspn(p, "=,");
		if (p[len] != '=') {
			if (implied && p == s) {
				snprintf(o->name, sizeof(o->name), "%s", implied);
				p = qemu_value(p, &o->value);
			} else {
				bool off = !strncmp(p, "no", 2);
				snprintf(o->name, sizeof(o->name), "%.*s", (int)(len - (off ? 2 : 0)),
					 p + (off ? 2 : 0));
				o->value = strdup(off ? "off" : "on");
				CHECK(o->value);
				p += len;
			}
		} else {
			snprintf(o->name, sizeof(o->name), "%.*s", (int)len, p);
			p = qemu_value(p + len + 1, &o->value);
		}
		out->n++;
		if (*p == ',')
			p++;
	}
	return true;
}

/* Exactly these options, in this order. */
static void expect_qemu(const char *arg, const char *implied, const char *const *kv, size_t n)
{
	struct pairs got;
	CHECK(qemu_parse(arg, implied, &got));
	CHECK(got.n == n);
	for (size_t i = 0; i < n; i++) {
		CHECK(!strcmp(got.items[i].name, kv[2 * i]));
		CHECK(!strcmp(got.items[i].value, kv[2 * i + 1]));
	}
	pairs_free(&got);
}

/* varinject's reader (for the user's arguments) agrees with QEMU's. */
static void same_reading(const char *s, const char *implied)
{
	struct pairs ours;
	struct vi_qemu_opts theirs;
	if (!qemu_parse(s, implied, &ours))
		return pairs_free(&ours);
	CHECK(vi_qemu_opts_parse(s, implied, &theirs) == 0);
	CHECK(theirs.n == ours.n);
	for (size_t i = 0; i < ours.n; i++) {
		CHECK(!strncmp(theirs.items[i].name, ours.items[i].name, sizeof(ours.items[i].name) - 1));
		CHECK(!strcmp(theirs.items[i].value, ours.items[i].value));
	}
	vi_qemu_opts_free(&theirs);
	pairs_free(&ours);
}

/* ---- cloud-hypervisor's rules ----------------------------------------------- */

/* Unicode White_Space, which Rust's str::trim removes, as UTF-8. */
static size_t white_at(const char *s, size_t len, bool at_end)
{
	static const char *const spaces[] = {
		"\t", "\n", "\v", "\f", "\r", " ", "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80",
		"\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84",
		"\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89",
		"\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f",
		"\xe3\x80\x80"};
	for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
		size_t n = strlen(spaces[i]);
		if (n <= len && !memcmp(at_end ? s + len - n : s, spaces[i], n))
			return n;
	}
	return 0;
}

static char *rust_trim(const char *s, size_t len)
{
	size_t n;
	while (len && (n = white_at(s, len, false))) {
		s += n;
		len -= n;
	}
	while (len && (n = white_at(s, len, true)))
		len -= n;
	return strndup(s, len);
}

struct list {
	char *items[600];
	size_t n;
	bool bad; /* a syntax error, as the crate reports it */
};

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	l->n = 0;
}

/* split_commas: ',' outside [] and "" separates; quotes are kept. */
static void split_commas(const char *text, struct list *out)
{
	char *s = rust_trim(text, strlen(text));
	CHECK(s);
	out->n = 0;
	out->bad = false;
	int depth = 0;
	bool quoted = false;
	const char *start = s;
	for (const char *p = s;; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (quoted && *p)
			continue;
		else if (*p == '[')
			depth++;
		else if (*p == ']' && --depth < 0)
			out->bad = true;
		if (out->bad)
			break;
		if ((*p == ',' && depth == 0 && !quoted) || !*p) {
			CHECK(out->n < sizeof(out->items) / sizeof(out->items[0]));
			out->items[out->n] = strndup(start, (size_t)(p - start));
			CHECK(out->items[out->n]);
			out->n++;
			start = p + 1;
		}
		if (!*p)
			break;
	}
	if (quoted || depth != 0)
		out->bad = true;
	free(s);
}

/* OptionParser::parse then the value of one option (trimmed, quotes kept);
 * NULL on a parse error or when the option is not given. */
static char *ch_option(const char *text, const char *const *known, size_t n_known,
		       const char *want)
{
	struct list parts;
	split_commas(text, &parts);
	char *value = NULL;
	for (size_t i = 0; !parts.bad && i < parts.n; i++) {
		char *eq = strchr(parts.items[i], '=');
		size_t name_len = eq ? (size_t)(eq - parts.items[i]) : strlen(parts.items[i]);
		bool registered = false;
		for (size_t k = 0; k < n_known; k++)
			registered |= strlen(known[k]) == name_len &&
				      !strncmp(known[k], parts.items[i], name_len);
		if (!registered || !eq) {
			parts.bad = true;
			break;
		}
		if (strlen(want) == name_len && !strncmp(want, parts.items[i], name_len)) {
			free(value);
			value = rust_trim(eq + 1, strlen(eq + 1));
		}
	}
	if (parts.bad) {
		free(value);
		value = NULL;
	}
	list_free(&parts);
	return value;
}

/* The crate's dequote. */
static char *dequote(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	CHECK(out);
	bool quoted = false;
	char prev = 0;
	for (const char *p = s; *p; prev = *p++) {
		if (*p == '"') {
			if (prev == '"' && !quoted)
				*o++ = '"';
			quoted = !quoted;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	CHECK(!quoted);
	return out;
}

static bool utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
						 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		if (!n || (n == 2 && *p < 0xc2))
			return false;
		for (size_t k = 1; k < n; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

/* ---- the input ---------------------------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t left;
};

static bool field(struct input *in, const uint8_t **data, size_t *len)
{
	if (!in->left)
		return false;
	size_t n = in->p[0];
	in->p++;
	in->left--;
	if (n > in->left)
		n = in->left;
	*data = in->p;
	*len = n;
	in->p += n;
	in->left -= n;
	return true;
}

static char *field_str(struct input *in)
{
	const uint8_t *d;
	size_t len;
	if (!field(in, &d, &len))
		return NULL;
	return strndup((const char *)d, len);
}

struct intent {
	char *dir;
	struct vf_strings statics;
	char *names[8];
	struct vf_value values[8];
	size_t n;
	bool fw_cfg;
};

static void intent_read(const uint8_t *data, size_t size, struct intent *it)
{
	struct input in = {data + 1, size - 1};
	struct vf_error err;
	it->fw_cfg = data[0] & 1;
	size_t statics = (data[0] >> 1) & 3, creds = (data[0] >> 3) & 7;
	it->dir = field_str(&in);
	if (!it->dir)
		it->dir = strdup("/run");
	CHECK(it->dir);
	for (size_t i = 0; i < statics; i++) {
		char *s = field_str(&in);
		/* An empty OEM string is refused by the limits: not the point here. */
		if (s && *s)
			CHECK(vf_strings_add(&it->statics, s, &err) == VF_OK);
		free(s);
	}
	for (size_t i = 0; i < creds; i++) {
		char *name = field_str(&in);
		const uint8_t *v;
		size_t len;
		if (!name || !field(&in, &v, &len)) {
			free(name);
			break;
		}
		const char *why;
		bool fresh = vi_name_valid(name, &why) && strlen(name) <= VF_FWCFG_NAME_MAX;
		for (size_t k = 0; fresh && k < it->n; k++)
			fresh = strcmp(it->names[k], name) != 0;
		if (!fresh) {
			free(name);
			continue;
		}
		it->names[it->n] = name;
		CHECK(vf_value_set(&it->values[it->n], v, len, &err) == VF_OK);
		it->n++;
	}
}

static void intent_free(struct intent *it)
{
	free(it->dir);
	vf_strings_free(&it->statics);
	for (size_t i = 0; i < it->n; i++) {
		free(it->names[i]);
		vf_value_free(&it->values[i]);
	}
}

static void make_creds(const struct intent *it, struct vi_creds *creds)
{
	for (size_t i = 0; i < it->n; i++) {
		struct vf_value v = {0};
		struct vf_error err;
		CHECK(vf_value_set(&v, it->values[i].data, it->values[i].len, &err) == VF_OK);
		CHECK(vi_creds_add(creds, it->names[i], &v) == 0);
	}
}

/* DIR/smbios-I or DIR/fwcfg-I: where varinject writes each file. */
static char *path_in(const char *dir, const char *kind, size_t i)
{
	char *path;
	CHECK(asprintf(&path, "%s/%s-%zu", dir, kind, i) > 0);
	return path;
}

/* ---- QEMU ------------------------------------------------------------------------ */

static void check_qemu(const struct intent *it)
{
	struct vi_creds creds = {0};
	struct vi_runtime rt = {.opened = true, .fd = -1, .parent_fd = -1};
	struct vi_argv argv = {0};
	make_creds(it, &creds);
	CHECK((rt.dir = strdup(it->dir)));
	struct vi_launch l = {.creds = &creds, .static_strings = &it->statics, .rt = &rt,
			      .dry_run = true, .fw_cfg = it->fw_cfg, .qmp_fd = 5};
	const char *base[] = {"qemu-system-x86_64", "-M", "q35"};
	for (size_t i = 0; i < 3; i++)
		CHECK(vi_argv_add(&argv, base[i], NULL) == 0);
	int status = vi_qemu_args(&l, &argv);
	/* The room for fw_cfg files on q35 is counted: beyond it, refused. */
	struct vi_fw_cfg_room room;
	CHECK(vi_qemu_fw_cfg_room((char *const *)base, 3, &room) == 0);
	if (it->fw_cfg && it->n > room.credentials) {
		CHECK(status != 0);
		goto out;
	}
	CHECK(status == 0);

	size_t a = 3;
	size_t strings = it->statics.n + (it->fw_cfg ? 0 : it->n);
	for (size_t k = 0; k < strings; k++, a += 2) {
		CHECK(a + 1 < argv.n && !strcmp(argv.v[a], "-smbios"));
		char *path = path_in(it->dir, "smbios", k);
		const char *kv[] = {"type", "11", "path", path};
		expect_qemu(argv.v[a + 1], NULL, kv, 2);
		same_reading(argv.v[a + 1], NULL);
		free(path);
	}
	for (size_t i = 0; it->fw_cfg && i < it->n; i++, a += 2) {
		CHECK(a + 1 < argv.n && !strcmp(argv.v[a], "-fw_cfg"));
		char *path = path_in(it->dir, "fwcfg", i), *entry;
		CHECK(asprintf(&entry, VF_FWCFG_PREFIX "%s", it->names[i]) > 0);
		const char *kv[] = {"name", entry, "file", path};
		/* -fw_cfg's implied option is "name". */
		expect_qemu(argv.v[a + 1], "name", kv, 2);
		same_reading(argv.v[a + 1], "name");
		free(entry);
		free(path);
	}
	CHECK(a + 3 < argv.n && !strcmp(argv.v[a], "-chardev") && !strcmp(argv.v[a + 2], "-mon"));
	const char *chardev[] = {"backend", "socket", "id", "varinject-qmp", "fd", "5"};
	expect_qemu(argv.v[a + 1], "backend", chardev, 3);
	const char *mon[] = {"chardev", "varinject-qmp", "mode", "control"};
	expect_qemu(argv.v[a + 3], "chardev", mon, 2);
	CHECK(a + 4 == argv.n);
out:
	vi_argv_free(&argv);
	vi_runtime_close(&rt);
	vi_creds_wipe(&creds);
}

/* The escaper itself, on any value: the "x,file=m.key,name=b,"
 * included. */
static void check_escaper(const struct intent *it)
{
	const char *kv[] = {"name", it->dir, "file", it->statics.n ? it->statics.items[0] : ""};
	char *opts = vi_qemu_opts(kv, 2);
	CHECK(opts);
	expect_qemu(opts, "name", kv, 2);
	free(opts);
	same_reading(it->dir, NULL);
	same_reading(it->dir, "name");
}

/* ---- cloud-hypervisor ------------------------------------------------------------- */

static const char *const platform_keys[] = {
	"num_pci_segments", "iommu_segments", "iommu_address_width", "serial_number", "uuid",
	"oem_strings", "tdx", "sev_snp", "system_manufacturer", "system_product_name",
	"system_version", "system_serial_number", "system_uuid", "system_sku",
	"system_sku_number", "system_family", "chassis_asset_tag", "iommufd", "iommufd_fd",
	"vfio_p2p_dma"};

static bool argv_plain(const char *s)
{
	return vf_oem_text_safe((const uint8_t *)s, strlen(s), VF_TRANSPORT_CH_ARGV);
}

/* One OEM string as the guest's systemd reads it: the credential i. */
static void expect_credential(const char *s, const struct intent *it, size_t i)
{
	const char *name = it->names[i];
	size_t pn = strlen(VF_OEM_PREFIX), pb = strlen(VF_OEM_BINARY_PREFIX), nl = strlen(name);
	if (!strncmp(s, VF_OEM_BINARY_PREFIX, pb)) {
		CHECK(!strncmp(s + pb, name, nl) && s[pb + nl] == '=');
		const char *b64 = s + pb + nl + 1;
		size_t cap = strlen(b64) + 1, len = 0;
		unsigned char *bin = malloc(cap);
		CHECK(bin);
		CHECK(sodium_base642bin(bin, cap, b64, strlen(b64), NULL, &len, NULL,
					sodium_base64_VARIANT_ORIGINAL) == 0);
		CHECK(len == it->values[i].len && !memcmp(bin, it->values[i].data, len));
		free(bin);
	} else {
		CHECK(!strncmp(s, VF_OEM_PREFIX, pn));
		CHECK(!strncmp(s + pn, name, nl) && s[pn + nl] == '=');
		const char *value = s + pn + nl + 1;
		CHECK(strlen(value) == it->values[i].len &&
		      !memcmp(value, it->values[i].data, it->values[i].len));
	}
}

static void check_ch_argv(const struct intent *it)
{
	struct vi_creds creds = {0};
	struct vi_runtime rt = {.opened = true, .fd = -1, .parent_fd = -1};
	struct vi_argv argv = {0};
	make_creds(it, &creds);
	CHECK((rt.dir = strdup(it->dir)));
	struct vi_launch l = {.creds = &creds, .static_strings = &it->statics, .rt = &rt,
			      .dry_run = true, .qmp_fd = -1};
	CHECK(vi_argv_add(&argv, "cloud-hypervisor", NULL) == 0);
	int status = vi_ch_argv_args(&l, &argv);
	bool plain = true;
	for (size_t i = 0; i < it->statics.n; i++)
		plain &= argv_plain(it->statics.items[i]);
	for (size_t i = 0; i < it->n; i++)
		plain &= argv_plain(it->names[i]);
	if (!plain) {
		CHECK(status != 0);
		goto out;
	}
	CHECK(status == 0);
	size_t strings = it->statics.n + it->n;
	if (!strings) {
		CHECK(argv.n == 1);
		goto out;
	}
	CHECK(argv.n == 3 && !strcmp(argv.v[1], "--platform"));
	char *raw = ch_option(argv.v[2], platform_keys,
			      sizeof(platform_keys) / sizeof(platform_keys[0]), "oem_strings");
	CHECK(raw);
	/* StringList: brackets stripped greedily at both ends, then split. */
	size_t start = 0, end = strlen(raw);
	while (start < end && (raw[start] == '[' || raw[start] == ']'))
		start++;
	while (end > start && (raw[end - 1] == '[' || raw[end - 1] == ']'))
		end--;
	raw[end] = '\0';
	struct list got;
	split_commas(raw + start, &got);
	CHECK(!got.bad);
	CHECK(got.n == strings);
	for (size_t i = 0; i < it->statics.n; i++)
		CHECK(!strcmp(got.items[i], it->statics.items[i]));
	for (size_t i = 0; i < it->n; i++)
		expect_credential(got.items[it->statics.n + i], it, i);
	list_free(&got);
	free(raw);
out:
	vi_argv_free(&argv);
	vi_runtime_close(&rt);
	vi_creds_wipe(&creds);
}

static void check_ch_api_socket(const struct intent *it)
{
	char *socket_path;
	CHECK(asprintf(&socket_path, "%s/api.sock", it->dir) > 0);
	char *arg = vi_ch_api_socket_arg(socket_path);
	if (strchr(socket_path, '"')) {
		CHECK(!arg);
	} else if (utf8(socket_path)) { /* else clap refuses the argument whole */
		CHECK(arg);
		static const char *const keys[] = {"path", "fd"};
		char *raw = ch_option(arg, keys, 2, "path");
		CHECK(raw);
		char *path = dequote(raw);
		CHECK(!strcmp(path, socket_path));
		free(path);
		free(raw);
		CHECK(!ch_option(arg, keys, 2, "fd"));
	}
	free(arg);
	free(socket_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* --dry-run prints the files it would write, and refusals go to
	 * stderr: neither is of interest here. */
	if (!freopen("/dev/null", "w", stdout) || sodium_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct intent it = {0};
	intent_read(data, size, &it);
	check_escaper(&it);
	check_qemu(&it);
	check_ch_argv(&it);
	check_ch_api_socket(&it);
	intent_free(&it);
	vf_arena_free(&vi_arena);
	return 0;
}
