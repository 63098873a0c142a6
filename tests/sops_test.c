/* Checks the SOPS reader (format/sops/sops.h) against ../shared/testdata/sops
 * (the directory is the one argument):
 *  1. every vectors/ entry (*.json): each ENC[] parses with its type and opens
 *     with the data key and its AAD to the plaintext (and not with another
 *     AAD); SHA-512 over values_in_mac_order is mac.plaintext; the MAC's
 *     ENC[] opens to it with its AAD; the vector's file decrypts with the
 *     data key, its MAC verified;
 *  2. every fixture decrypts with its README identity to the README's
 *     plaintexts byte for byte, its MAC verified (the sops-age dotenv file
 *     too), machine keys kept in clan stores match their key.json;
 *  3. the metadata an import plan reads without a key;
 *  4. each kind of bad file is refused with its own one-line error: a
 *     tampered value, a tampered MAC, a MAC that does not match, a wrong key
 *     (VF_E_NO_MATCH), a truncated file, Shamir key groups, a pgp-only file,
 *     bad base64, a 31-byte IV, and more; --ignore-mac's flag lets a bad MAC
 *     through with a warning;
 *  5. files written here (values sealed with a test data key) for what the
 *     fixtures do not show: JSON escapes, YAML's typed plain scalars, Go's
 *     float spellings, mac_only_encrypted, the regex rules, dotenv comments.
 * Prints one line per check and "sops: N passed, M failed"; exit status 0
 * only when nothing failed. */
#include <dirent.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "age/age.h"
#include "age/keys.h"
#include "base/base64.h"
#include "base/crypto.h"
#include "base/secmem.h"
#include "sops/sops.h"

static int passed, failed;
static const char *shared;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s: ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (ok)
		passed++;
	else
		failed++;
}

/* Setting up: a failure here is the machine's or the fixtures', not the
 * reader's. */
static void die(const char *what)
{
	fprintf(stderr, "sops_test: %s\n", what);
	exit(2);
}

static char *path_of(const char *rel)
{
	static char buf[8][1024];
	static int next;
	char *p = buf[next++ % 8];
	snprintf(p, sizeof(buf[0]), "%s/%s", shared, rel);
	return p;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap && !(buf = realloc(buf, (cap *= 2) + 1)))
			die("out of memory");
	}
	fclose(f);
	if (!buf)
		die("out of memory");
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* text with the first `from` replaced by `to` (which must be there). */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	if (!at) {
		fprintf(stderr, "sops_test: fixture without \"%.60s\"\n", from);
		exit(2);
	}
	size_t head = (size_t)(at - text), flen = strlen(from), tlen = strlen(to);
	char *out = malloc(strlen(text) - flen + tlen + 1);
	if (!out)
		die("out of memory");
	memcpy(out, text, head);
	memcpy(out + head, to, tlen);
	strcpy(out + head + tlen, at + flen);
	return out;
}

static void load_ids(const char *rel, struct vf_identities *ids)
{
	size_t len;
	char *text = slurp(path_of(rel), &len);
	struct vf_error err;
	if (vf_identities_parse(text, len, rel, ids, &err) != VF_OK)
		die(err.msg);
	free(text);
}

static struct vf_sops_file *parse_text(const char *name, const char *text,
				       enum vf_sops_format format, struct vf_error *err)
{
	struct vf_sops_file *f = NULL;
	if (vf_sops_parse(name, (const uint8_t *)text, strlen(text), format, &f, err) != VF_OK)
		return NULL;
	return f;
}

static struct vf_sops_file *read_fixture(const char *rel)
{
	struct vf_sops_file *f;
	struct vf_error err;
	if (vf_sops_read(AT_FDCWD, path_of(rel), VF_FOLLOW, VF_SOPS_AUTO, &f, &err) != VF_OK) {
		check(false, "%s parses: %s", rel, err.msg);
		return NULL;
	}
	return f;
}

/* The index of the value whose path prints as path, or -1. */
static long find(const struct vf_sops_file *f, const char *path)
{
	char buf[512];
	for (size_t i = 0; i < f->n_leaves; i++) {
		vf_sops_leaf_path(&f->leaves[i], buf, sizeof(buf));
		if (strcmp(buf, path) == 0)
			return (long)i;
	}
	return -1;
}

static bool value_is(const struct vf_sops_file *f, const struct vf_sops_plain *p,
		     const char *path, const char *want, size_t want_len)
{
	long i = find(f, path);
	return i >= 0 && p->values[i].len == want_len &&
	       memcmp(p->values[i].data, want, want_len) == 0 &&
	       p->values[i].data[want_len] == 0;
}

struct expect {
	const char *path, *text;
	enum vf_sops_type type;
};

/* Decrypts rel with the identity file, expects a verified MAC and exactly
 * the values listed (in document order). */
static void expect_values(const char *rel, const char *key_rel, const struct expect *want,
			  size_t n)
{
	struct vf_sops_file *f = read_fixture(rel);
	if (!f)
		return;
	struct vf_identities ids = {0};
	load_ids(key_rel, &ids);
	struct vf_sops_plain p;
	struct vf_error err;
	enum vf_code rc = vf_sops_decrypt(f, &ids, 0, &p, &err);
	check(rc == VF_OK && p.mac_verified, "%s decrypts with %s, MAC verified%s%s", rel, key_rel,
	      rc == VF_OK ? "" : ": ", rc == VF_OK ? "" : err.msg);
	if (rc == VF_OK) {
		bool all = f->n_leaves == n;
		char path[512];
		for (size_t i = 0; all && i < n; i++) {
			vf_sops_leaf_path(&f->leaves[i], path, sizeof(path));
			all = strcmp(path, want[i].path) == 0 && f->leaves[i].type == want[i].type &&
			      value_is(f, &p, want[i].path, want[i].text, strlen(want[i].text));
			if (!all)
				printf("  value %zu: %s (%s) = \"%s\"\n", i, path,
				       vf_sops_type_name(f->leaves[i].type), p.values[i].data);
		}
		check(all, "%s: %zu values, paths, types and texts as sops -d prints them", rel, n);
	}
	vf_sops_plain_free(&p);
	vf_identities_free(&ids);
	vf_sops_free(f);
}

/* ---- 1. vectors ---- */

static const yaml_node_t *ynode(yaml_document_t *doc, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *ytext(yaml_document_t *doc, const yaml_node_t *map, const char *key,
			 size_t *len)
{
	const yaml_node_t *n = ynode(doc, map, key);
	if (!n || n->type != YAML_SCALAR_NODE)
		die("vector without a needed string");
	if (len)
		*len = n->data.scalar.length;
	return (const char *)n->data.scalar.value;
}

static void hex_key(const char *hex, uint8_t key[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			die("bad data_key_hex");
		key[i] = (uint8_t)v;
	}
}

static void upper_hex(const uint8_t *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02X", in[i]);
}

static bool opens_to(const char *enc, const uint8_t key[32], const char *aad, const char *want,
		     size_t want_len, const char *type)
{
	struct vf_sops_enc e;
	struct vf_error err;
	if (vf_sops_enc_parse(enc, strlen(enc), &e, &err) != VF_OK)
		return false;
	uint8_t *out = vf_secure_alloc(e.data_len + 1);
	bool ok = out && vf_sops_enc_open(&e, key, aad, strlen(aad), out, &err) == VF_OK &&
		  e.data_len == want_len && memcmp(out, want, want_len) == 0 &&
		  (!type || strcmp(vf_sops_enc_type_name(e.type), type) == 0);
	/* The AAD is part of the check: the path with one more ':' fails. */
	char other[600];
	snprintf(other, sizeof(other), "%s:", aad);
	ok = ok && vf_sops_enc_open(&e, key, other, strlen(other), out, &err) == VF_E_AUTH;
	vf_secure_free(out);
	vf_sops_enc_clear(&e);
	return ok;
}

static void one_vector(const char *name)
{
	char rel[300];
	snprintf(rel, sizeof(rel), "vectors/%s", name);
	size_t len;
	char *text = slurp(path_of(rel), &len);
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		die("libyaml");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc))
		die("vector is not JSON");
	const yaml_node_t *root = yaml_document_get_root_node(&doc);
	uint8_t key[32];
	hex_key(ytext(&doc, root, "data_key_hex", NULL), key);
	const yaml_node_t *values = ynode(&doc, root, "values_in_mac_order");
	if (!values || values->type != YAML_SEQUENCE_NODE)
		die("vector without values_in_mac_order");
	struct vf_sha512 *h;
	struct vf_error err;
	if (vf_sha512_new(&h, &err) != VF_OK)
		die(err.msg);
	size_t n = 0, good = 0;
	for (yaml_node_item_t *it = values->data.sequence.items.start;
	     it < values->data.sequence.items.top; it++, n++) {
		const yaml_node_t *v = yaml_document_get_node(&doc, *it);
		size_t plen;
		const char *plain = ytext(&doc, v, "plaintext", &plen);
		good += opens_to(ytext(&doc, v, "enc", NULL), key, ytext(&doc, v, "aad", NULL), plain,
				 plen, ytext(&doc, v, "type", NULL));
		vf_sha512_update(h, plain, plen, &err);
	}
	check(n > 0 && good == n, "%s: %zu of %zu values open with the data key and their AAD",
	      name, good, n);
	uint8_t digest[VF_SHA512_LEN];
	char hex[2 * VF_SHA512_LEN + 1];
	vf_sha512_final(h, digest, &err);
	vf_sha512_free(h);
	upper_hex(digest, sizeof(digest), hex);
	const yaml_node_t *mac = ynode(&doc, root, "mac");
	const char *mac_plain = ytext(&doc, mac, "plaintext", NULL);
	check(strcmp(hex, mac_plain) == 0, "%s: SHA-512 over the values in MAC order is the MAC",
	      name);
	check(opens_to(ytext(&doc, mac, "enc", NULL), key, ytext(&doc, mac, "aad", NULL), mac_plain,
		       strlen(mac_plain), "str"),
	      "%s: the MAC's ENC[] opens to it with lastmodified as its AAD", name);

	/* The whole file with the same data key: the reader's walk meets the
	 * same values in the same order, and its MAC verifies. */
	struct vf_sops_file *f = read_fixture(ytext(&doc, root, "file", NULL));
	struct vf_sops_plain p = {0};
	enum vf_code rc = f ? vf_sops_decrypt_with_key(f, key, 0, &p, &err) : VF_E_ARG;
	check(rc == VF_OK && p.mac_verified && f->n_leaves == n,
	      "%s: its file decrypts with the data key, %zu values, MAC verified%s%s", name, n,
	      rc == VF_OK || !f ? "" : ": ", rc == VF_OK || !f ? "" : err.msg);
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(text);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_vectors(void)
{
	DIR *d = opendir(path_of("vectors"));
	if (!d)
		die("no vectors directory");
	char *names[64];
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d)) && n < 64;)
		if (strlen(e->d_name) > 5 && strcmp(e->d_name + strlen(e->d_name) - 5, ".json") == 0)
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	check(n >= 3, "%zu vector files found", n);
	for (size_t i = 0; i < n; i++) {
		one_vector(names[i]);
		free(names[i]);
	}
}

/* ---- 2. fixtures ---- */

static void test_sops_age(void)
{
	/* secret.json is the plaintext of the .json: "int" 7 was stored as a
	 * float (type:float, "7"); sops -d prints it 7. */
	const struct expect json[] = {
		{"secret:", "this is a secret", VF_SOPS_STR},
		{"string:", "string", VF_SOPS_STR},
		{"int:", "7", VF_SOPS_FLOAT},
		{"float:", "3.14", VF_SOPS_FLOAT},
		{"boolean:", "true", VF_SOPS_BOOL},
		{"0word:", "gotta match go", VF_SOPS_STR},
		{"complex:value:", "this is a secret", VF_SOPS_STR},
		{"complex:array[0]:", "one", VF_SOPS_STR},
		{"complex:array[1]:", "two", VF_SOPS_STR},
		{"complex:array[2]:", "three", VF_SOPS_STR},
	};
	expect_values("sops-age/secret.enc.json", "sops-age/key.txt", json, 10);
	const struct expect yaml[] = {
		{"secret:", "this is a secret", VF_SOPS_STR},
		{"string:", "string", VF_SOPS_STR},
		{"int:", "7", VF_SOPS_INT},
		{"float:", "3.14", VF_SOPS_FLOAT},
		{"boolean:", "true", VF_SOPS_BOOL},
		{"complex:value:", "this is a secret", VF_SOPS_STR},
		{"complex:array[0]:", "one", VF_SOPS_STR},
		{"complex:array[1]:", "two", VF_SOPS_STR},
		{"complex:array[2]:", "three", VF_SOPS_STR},
	};
	expect_values("sops-age/secret.enc.yaml", "sops-age/key.txt", yaml, 9);
	/* The README calls this one's MAC unchecked: it verifies (SHA-512 over
	 * "this is a secret" and "7", the two values, comments and sops_* keys
	 * left out). */
	const struct expect env[] = {
		{"secret:", "this is a secret", VF_SOPS_STR},
		{"another_secret:", "7", VF_SOPS_STR},
	};
	expect_values("sops-age/secret.enc.env", "sops-age/key.txt", env, 2);

	/* The .json's values against secret.json itself, as text. */
	char *plain = slurp(path_of("sops-age/secret.json"), NULL);
	bool all = strstr(plain, "\"int\": 7,") && strstr(plain, "\"float\": 3.14,") &&
		   strstr(plain, "\"boolean\": true,") && strstr(plain, "\"0word\": \"gotta match go\"");
	check(all, "secret.json holds the texts checked above (7, 3.14, true)");
	free(plain);
}

static void test_sops_nix(void)
{
	const struct expect want[] = {
		{"test_key:", "test_value", VF_SOPS_STR},
		{"a_list[0]:", "e1", VF_SOPS_STR},
		{"a_list[1]:", "e3", VF_SOPS_STR},
		{"nested:test:file:", "another value", VF_SOPS_STR},
	};
	expect_values("sops-nix/secrets.yaml", "sops-nix/age-keys.txt", want, 4);
}

/* The one value of a clan secret (binary format), decrypted and checked. */
static char *clan_value(const char *rel, struct vf_identities *ids, size_t *len)
{
	struct vf_sops_file *f = read_fixture(rel);
	if (!f)
		return NULL;
	struct vf_sops_plain p;
	struct vf_error err;
	enum vf_code rc = vf_sops_decrypt(f, ids, 0, &p, &err);
	bool ok = rc == VF_OK && p.mac_verified && f->n_leaves == 1 &&
		  f->format == VF_SOPS_BINARY && f->leaves[0].n_parts == 1 &&
		  strcmp(f->leaves[0].parts[0].key, "data") == 0;
	check(ok, "%s: one value, MAC verified%s%s", rel, rc == VF_OK ? "" : ": ",
	      rc == VF_OK ? "" : err.msg);
	char *out = NULL;
	if (ok && (out = malloc(p.values[0].len + 1))) {
		memcpy(out, p.values[0].data, p.values[0].len + 1);
		*len = p.values[0].len;
	}
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	return out;
}

static bool starts_ends(const char *s, size_t len, const char *head, const char *tail)
{
	size_t h = strlen(head), t = strlen(tail);
	return s && len >= h + t && memcmp(s, head, h) == 0 && memcmp(s + len - t, tail, t) == 0;
}

/* A kept machine key: its recipient must be the one in key.json. */
static void check_machine_key(const char *secret_rel, const char *key_json_rel,
			      struct vf_identities *admin, struct vf_identities *out)
{
	size_t len = 0;
	char *key = clan_value(secret_rel, admin, &len);
	char *json = slurp(path_of(key_json_rel), NULL);
	struct vf_error err;
	char *recipient = NULL;
	bool ok = key && starts_ends(key, len, "AGE-SECRET-KEY-1", "") &&
		  vf_identities_parse(key, len, secret_rel, out, &err) == VF_OK && out->n > 0 &&
		  vf_identity_recipient(out->items[out->n - 1], &recipient, &err) == VF_OK;
	char quoted[128];
	snprintf(quoted, sizeof(quoted), "\"publickey\": \"%s\"", recipient ? recipient : "?");
	check(ok && strstr(json, quoted), "%s is the age key whose recipient %s is in %s",
	      secret_rel, recipient ? recipient : "(none)", key_json_rel);
	free(recipient);
	free(json);
	if (key)
		vf_wipe(key, len);
	free(key);
}

static void test_clan(void)
{
	struct vf_identities admin = {0}, server = {0}, machines = {0}, legacy = {0};
	load_ids("clan-core/test-age-key.txt", &admin);
	size_t len = 0;
	char *v;

	const char *rpc = "clan-core/garage-store/vars/shared/garage-shared/rpc_secret/secret";
	v = clan_value(rpc, &admin, &len);
	check(v && len == 65 &&
		      memcmp(v, "5dfb964e843eec1a7412de092ec165deeefc78cc68a7f3a7833023e03ba42914\n",
			     65) == 0,
	      "garage rpc_secret is 5dfb964e...2914\\n (65 bytes)");
	free(v);
	v = clan_value("clan-core/garage-store/vars/per-machine/server/garage/admin_token/secret",
		       &admin, &len);
	check(starts_ends(v, len, "CcB3x9nq", "ESg=\n"), "garage admin_token is CcB3x9nq...ESg=\\n");
	free(v);
	const char *metrics = "clan-core/garage-store/vars/per-machine/server/garage/metrics_token/secret";
	v = clan_value(metrics, &admin, &len);
	check(starts_ends(v, len, "nHv0cNcl", "nng=\n"), "garage metrics_token is nHv0cNcl...nng=\\n");
	free(v);

	const char *server_key = "clan-core/garage-store/sops/secrets/server-age.key/secret";
	size_t klen = 0;
	char *k = clan_value(server_key, &admin, &klen);
	check(starts_ends(k, klen, "AGE-SECRET-KEY-180M75", "G7P8TU"),
	      "server-age.key is AGE-SECRET-KEY-180M75...G7P8TU (%zu bytes)", klen);
	if (k)
		vf_wipe(k, klen);
	free(k);
	check_machine_key(server_key, "clan-core/garage-store/sops/machines/server/key.json", &admin,
			  &server);
	/* The machine's own key opens its files too. */
	v = server.n ? clan_value(metrics, &server, &len) : NULL;
	check(starts_ends(v, len, "nHv0cNcl", "nng=\n"),
	      "metrics_token opens with the machine key alone");
	free(v);

	v = clan_value("clan-core/service-dummy-test/vars/per-machine/peer1/new-service/a-secret/secret",
		       &admin, &len);
	check(v && len == 8 && memcmp(v, "a-secret", 8) == 0, "service-dummy a-secret is a-secret");
	free(v);
	for (int i = 0; i < 2; i++) {
		const char *m = i ? "peer1" : "admin1";
		char rel[300], json[300];
		snprintf(rel, sizeof(rel),
			 "clan-core/service-dummy-test/vars/per-machine/%s/dummy-generator/"
			 "generated-password/secret", m);
		v = clan_value(rel, &admin, &len);
		check(v && len > 0, "%s generated-password: %zu bytes", m, len);
		free(v);
		snprintf(rel, sizeof(rel), "clan-core/service-dummy-test/sops/secrets/%s-age.key/secret",
			 m);
		snprintf(json, sizeof(json), "clan-core/service-dummy-test/sops/machines/%s/key.json", m);
		check_machine_key(rel, json, &admin, &machines);
	}

	/* key.age is a plain age identity file (not sealed to a passphrase). */
	char *legacy_key = slurp(path_of("clan-core/legacy-secrets/key.age"), NULL);
	check(strncmp(legacy_key, "AGE-SECRET-KEY-1", 16) == 0,
	      "legacy key.age is a plain AGE-SECRET-KEY-1 identity");
	free(legacy_key);
	load_ids("clan-core/legacy-secrets/key.age", &legacy);
	v = clan_value("clan-core/legacy-secrets/sops/secrets/secret/secret", &legacy, &len);
	check(v && len == 3 && memcmp(v, "foo", 3) == 0, "legacy secret is foo");
	free(v);
	v = clan_value("clan-core/legacy-secrets/sops/secrets/group-secret/secret", &legacy, &len);
	check(v != NULL, "legacy group-secret decrypts (%zu bytes)", len);
	free(v);

	vf_identities_free(&admin);
	vf_identities_free(&server);
	vf_identities_free(&machines);
	vf_identities_free(&legacy);
}

/* sops's age key source test: its armored file opens with its identity
 * through the same age code the reader uses. */
static void test_getsops_mock(void)
{
	struct vf_identities ids = {0};
	load_ids("getsops-age/mock-identity.txt", &ids);
	size_t len;
	char *enc = slurp(path_of("getsops-age/mock-encrypted-key.age"), &len);
	struct vf_mem_src src;
	struct vf_secbuf out;
	struct vf_error err;
	vf_mem_src_init(&src, (const uint8_t *)enc, len);
	vf_secbuf_init(&out);
	enum vf_code rc = vf_decrypt(ids.items, ids.n, &src.base, VF_ARMOR_AUTO, &out.sink, &err);
	check(rc == VF_OK && out.len == 4 && memcmp(out.data, "data", 4) == 0,
	      "getsops mock-encrypted-key.age opens to \"data\"");
	vf_secbuf_free(&out);
	free(enc);
	vf_identities_free(&ids);
}

/* ---- 3. metadata without a key ---- */

static void test_metadata(void)
{
	struct vf_sops_file *f = read_fixture("sops-age/secret.enc.yaml");
	if (f) {
		const struct vf_sops_meta *m = &f->meta;
		check(f->format == VF_SOPS_YAML && strcmp(m->version, "3.8.1") == 0 &&
			      strcmp(m->lastmodified, "2024-03-25T22:08:10Z") == 0 && m->n_age == 3 &&
			      strcmp(m->age_recipients[0],
				     "age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr") == 0 &&
			      m->key_types == VF_SOPS_KEY_AGE && strcmp(m->key_type_names, "age") == 0 &&
			      m->n_key_groups == 1 && !m->shamir && !m->mac_only_encrypted,
		      "secret.enc.yaml metadata: yaml, version 3.8.1, lastmodified, 3 age recipients");
		check(f->n_leaves == 9 && f->leaves[2].type == VF_SOPS_INT &&
			      f->leaves[2].encrypted && f->leaves[2].line == 3 &&
			      f->leaves[2].column == 6 && f->leaves[7].n_parts == 3 &&
			      f->leaves[7].parts[2].key == NULL && f->leaves[7].parts[2].index == 1,
		      "secret.enc.yaml values: 9, types, places, list items as indexes");
		vf_sops_free(f);
	}
	f = read_fixture("sops-nix/secrets.yaml");
	if (f) {
		check(f->meta.key_types == (VF_SOPS_KEY_AGE | VF_SOPS_KEY_PGP) &&
			      strcmp(f->meta.key_type_names, "age, pgp") == 0 && f->meta.n_age == 2,
		      "sops-nix metadata: age and pgp keys, 2 age recipients");
		vf_sops_free(f);
	}
	f = read_fixture("sops-age/secret.enc.env");
	if (f) {
		check(f->format == VF_SOPS_DOTENV && f->meta.n_age == 3 &&
			      strcmp(f->meta.version, "3.8.1") == 0 && f->n_leaves == 2,
		      "secret.enc.env metadata from its sops_* keys: 3 age recipients, 2 values");
		vf_sops_free(f);
	}
	check(vf_sops_format_for_name("a/b.yml") == VF_SOPS_YAML &&
		      vf_sops_format_for_name("x.json") == VF_SOPS_JSON &&
		      vf_sops_format_for_name("secret.enc.env") == VF_SOPS_DOTENV &&
		      vf_sops_format_for_name("vars/x/secret") == VF_SOPS_BINARY &&
		      vf_sops_format_for_name("x.ini") == VF_SOPS_INI,
	      "formats from names: .yaml/.yml, .json, .env, .ini, anything else binary");
}

/* ---- 4. refusals ---- */

/* name is refused by parse or decryption with exactly want (and code). */
static void refused(const char *what, const char *name, const char *text,
		    enum vf_sops_format format, const struct vf_identities *ids, unsigned flags,
		    enum vf_code want_code, const char *want)
{
	struct vf_error err = {VF_OK, ""};
	struct vf_sops_file *f = parse_text(name, text, format, &err);
	enum vf_code rc = f ? VF_OK : err.code;
	struct vf_sops_plain p = {0};
	if (f)
		rc = vf_sops_decrypt(f, ids, flags, &p, &err);
	bool ok = rc == want_code && strcmp(err.msg, want) == 0 && !strchr(err.msg, '\n');
	check(ok, "%s: refused with \"%s\"", what, want);
	if (!ok)
		printf("  got %d \"%s\"\n", rc, rc == VF_OK ? "" : err.msg);
	vf_sops_plain_free(&p);
	vf_sops_free(f);
}

static char *b64_of(const uint8_t *p, size_t len)
{
	char *out = malloc(vf_b64_encoded_len(len, true) + 1);
	out[vf_b64_encode(p, len, out, true)] = 0;
	return out;
}

/* The limits: a file past VF_SOPS_MAX_FILE, a value past
 * VF_SOPS_MAX_LEAVES, a node past VF_SOPS_MAX_NODES, each refused where it
 * is met. */
static void test_limits(const struct vf_identities *ids)
{
	size_t n = VF_SOPS_MAX_FILE + 1;
	char *big = calloc(1, n + 1);
	struct vf_sops_file *f = NULL;
	struct vf_error err;
	check(big && vf_sops_parse("big.json", (uint8_t *)big, n, VF_SOPS_AUTO, &f, &err) == VF_E_ARG &&
		      strcmp(err.msg, "big.json: larger than 16 MiB (expected a sops file)") == 0,
	      "a file over 16 MiB: refused before it is parsed");
	free(big);

	const char *meta = "], \"sops\": {\"lastmodified\": \"2024-01-02T03:04:05Z\"}}";
	size_t leaves = VF_SOPS_MAX_LEAVES + 1;
	char *text = malloc(2 * leaves + 100), *o = text;
	o += sprintf(o, "{\"x_unencrypted\": [");
	for (size_t i = 0; i < leaves; i++)
		o += sprintf(o, "%s0", i ? "," : "");
	strcpy(o, meta);
	char want[200];
	snprintf(want, sizeof(want),
		 "many.json:1:%zu: more than 65536 values (expected a smaller file)",
		 (size_t)20 + 2 * VF_SOPS_MAX_LEAVES);
	refused("a value past the limit", "many.json", text, VF_SOPS_AUTO, ids, 0, VF_E_ARG, want);
	free(text);

	size_t nodes = VF_SOPS_MAX_NODES + 10;
	text = malloc(5 * nodes + 100);
	o = text + sprintf(text, "{\"x\": [");
	for (size_t i = 0; i < nodes; i++)
		o += sprintf(o, "%snull", i ? "," : "");
	strcpy(o, meta);
	/* The root and the list are nodes 1 and 2: item k is node k + 3. */
	snprintf(want, sizeof(want),
		 "nodes.json:1:%zu: more than 262144 keys, values, mappings and lists (expected a "
		 "smaller file)", (size_t)8 + 5 * (VF_SOPS_MAX_NODES - 2));
	refused("a node past the limit", "nodes.json", text, VF_SOPS_AUTO, ids, 0, VF_E_ARG, want);
	free(text);
}

static void test_refusals(void)
{
	struct vf_identities nix = {0}, age = {0}, admin = {0};
	load_ids("sops-nix/age-keys.txt", &nix);
	load_ids("sops-age/key.txt", &age);
	load_ids("clan-core/test-age-key.txt", &admin);
	char *yaml = slurp(path_of("sops-nix/secrets.yaml"), NULL);
	char *rpc = slurp(path_of("clan-core/garage-store/vars/shared/garage-shared/rpc_secret/secret"),
			  NULL);
	char *t;

	t = replace(yaml, "data:2mP+IAdczoEr0g==", "data:3mP+IAdczoEr0g==");
	refused("a tampered value", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_AUTH,
		"secrets.yaml:1:11: value of test_key: does not decrypt (wrong data key or "
		"tampered value)");
	free(t);
	t = replace(yaml, "mac: ENC[AES256_GCM,data:WQjp", "mac: ENC[AES256_GCM,data:XQjp");
	refused("a tampered MAC", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_AUTH,
		"secrets.yaml: the MAC does not decrypt (tampered MAC or lastmodified)");
	/* --ignore-mac: the values come out, with a warning to print. */
	struct vf_error err;
	struct vf_sops_file *f = parse_text("secrets.yaml", t, VF_SOPS_AUTO, &err);
	struct vf_sops_plain p = {0};
	enum vf_code rc = f ? vf_sops_decrypt(f, &nix, VF_SOPS_IGNORE_MAC, &p, &err) : VF_E_ARG;
	check(rc == VF_OK && !p.mac_verified &&
		      strcmp(p.mac_warning, "secrets.yaml: the MAC does not decrypt (tampered MAC "
					    "or lastmodified)") == 0 &&
		      value_is(f, &p, "test_key:", "test_value", 10),
	      "a tampered MAC with VF_SOPS_IGNORE_MAC: values, mac_verified false, a warning");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	free(t);
	t = replace(yaml, "test_key:", "extra_unencrypted: added\ntest_key:");
	refused("a value added in clear (MAC mismatch)", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0,
		VF_E_AUTH,
		"secrets.yaml: the MAC does not match the values (changed since sops wrote the "
		"file)");
	free(t);
	refused("a wrong key", "secrets.yaml", yaml, VF_SOPS_AUTO, &age, 0, VF_E_NO_MATCH,
		"secrets.yaml: no identity opens the data key (sealed to 2 age recipients: "
		"age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw, "
		"age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs)");
	t = strdup(rpc);
	t[strlen(t) / 2] = 0; /* just after the second recipient's closing quote */
	refused("a truncated file", "secret", t, VF_SOPS_AUTO, &admin, 0, VF_E_ARG,
		"secret:10:82: JSON syntax error: the file ends early (expected ',' or '}')");
	free(t);

	/* Two key groups, one age stanza in each: Shamir. */
	char *a = replace(rpc, "\"age\": [", "\"key_groups\": [{\"age\": [");
	char *b = replace(a, "},\n\t\t\t{", "}]}, {\"age\": [{");
	t = replace(b, "\n\t\t],\n\t\t\"lastmodified\"", "\n\t\t]}],\n\t\t\"lastmodified\"");
	f = parse_text("secret", t, VF_SOPS_AUTO, &err);
	check(f && f->meta.shamir && f->meta.n_key_groups == 2 && f->meta.n_age == 2,
	      "Shamir file: its metadata reads (2 key groups) for a plan");
	vf_sops_free(f);
	refused("Shamir key groups", "secret", t, VF_SOPS_AUTO, &admin, 0, VF_E_ARG,
		"secret: the data key is split over 2 key groups (Shamir): not supported (expected "
		"one key group)");
	free(a);
	free(b);
	free(t);

	/* The age stanzas taken out: pgp only. */
	char *start = strstr(yaml, "    age:\n"), *end = strstr(yaml, "    lastmodified:");
	if (!start || !end)
		die("sops-nix fixture changed");
	t = malloc(strlen(yaml) + 1);
	memcpy(t, yaml, (size_t)(start - yaml));
	strcpy(t + (start - yaml), end);
	f = parse_text("secrets.yaml", t, VF_SOPS_AUTO, &err);
	check(f && f->meta.key_types == VF_SOPS_KEY_PGP && f->meta.n_age == 0,
	      "pgp-only file: its metadata reads (pgp keys, no age) for a plan");
	vf_sops_free(f);
	refused("a pgp-only file", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml: the data key is sealed to pgp keys only, no age recipient (not "
		"supported: re-encrypt the file with sops to an age recipient)");
	free(t);

	t = replace(yaml, "data:2mP+IAdczoEr0g==", "data:2mP+IAdczoEr0g=!");
	refused("bad base64", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: ENC[] data is not base64 (expected "
		"standard base64 with padding)");
	free(t);
	t = replace(yaml, "data:2mP+IAdczoEr0g==", "data:2mP+IAdczoEr0g");
	refused("base64 without its padding", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: ENC[] data is not base64 (expected "
		"standard base64 with padding)");
	free(t);
	uint8_t iv[32];
	size_t got;
	const char *iv64 = "voX4IQemcgt0O97oLExy5r2V85nn687cIyWmHNDhUag=";
	if (!vf_b64_decode(iv64, strlen(iv64), iv, sizeof(iv), &got, true) || got != 32)
		die("sops-nix fixture changed");
	char *short_iv = b64_of(iv, 31);
	t = replace(yaml, iv64, short_iv);
	refused("a 31-byte IV", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: ENC[] iv is 31 bytes (expected 32)");
	free(t);
	free(short_iv);
	t = replace(yaml, ",tag:R97qy4fKneU7D9UFhXNvgA==,type:str]", ",type:str,tag:R97qy4fKneU7D9UFhXNvgA==]");
	refused("ENC[] fields out of order", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: not of the form "
		"ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]");
	free(t);
	t = replace(yaml, "type:str]\na_list", "type:str]x\na_list");
	refused("text after ENC[]'s ']'", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: not of the form "
		"ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]");
	free(t);
	t = replace(yaml, "tag:R97qy4fKneU7D9UFhXNvgA==,type:str", "tag:R97qy4fKneU7D9UFhXNvgA==,type:blob");
	refused("an unknown type", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: ENC[] type \"blob\" is unknown "
		"(expected str, int, float, bytes, bool, time or comment)");
	free(t);
	t = replace(yaml, "test_key: ENC[AES256_GCM,data:2mP+IAdczoEr0g==,iv:voX4IQemcgt0O97oLExy5r2V85nn687cIyWmHNDhUag=,tag:R97qy4fKneU7D9UFhXNvgA==,type:str]",
		    "test_key: test_value");
	refused("a plaintext swapped in for a ciphertext", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0,
		VF_E_ARG,
		"secrets.yaml:1:11: value of test_key: is bad: not of the form "
		"ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]");
	free(t);
	t = replace(yaml, "nested:\n    test:", "nested:\n    test: &x\n    again: *x\n    test2:");
	refused("a YAML alias", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:7:12: YAML alias *x (expected none: sops writes no aliases)");
	free(t);
	t = replace(yaml, "a_list:", "n_unencrypted: 18446744073709551615\na_list:");
	refused("an integer beyond int64", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:2:16: plain scalar 18446744073709551615 is an integer beyond 64 bits "
		"or a merge key (sops cannot read it)");
	free(t);
	t = replace(yaml, "a_list:", "1: x\na_list:");
	refused("a key that is not a string", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:2:1: key 1 is not a string (sops takes string keys only; quote it)");
	free(t);
	t = replace(yaml, "a_list:", "x_unencrypted: !!binary aGVsbG8=\na_list:");
	refused("a YAML tag", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:2:16: YAML tag tag:yaml.org,2002:binary (expected no tag: sops writes "
		"none)");
	free(t);
	t = replace(yaml, "a_list:", "test_key: x\na_list:");
	refused("a key given twice", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:2:1: key \"test_key\" given twice in one mapping (first on line 1)");
	free(t);
	t = replace(yaml, "sops:\n", "---\nsops:\n");
	refused("a second YAML document", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml:8:1: a second YAML document (expected one: files of several "
		"documents are not supported)");
	free(t);
	t = replace(yaml, "    lastmodified: \"2021-09-30T19:49:41Z\"\n", "");
	refused("no lastmodified", "secrets.yaml", t, VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"secrets.yaml: no sops:lastmodified (expected the time sops last wrote the file)");
	free(t);
	refused("no sops metadata", "plain.yaml", "a: b\n", VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"plain.yaml: no sops metadata (expected a file encrypted by sops, with a \"sops\" "
		"mapping)");
	refused("an INI file", "x.ini", "[a]\nb = c\n", VF_SOPS_AUTO, &nix, 0, VF_E_ARG,
		"x.ini: INI sops files are not supported (expected YAML, JSON, dotenv or binary)");
	refused("YAML read as binary (no extension)", "secret", yaml, VF_SOPS_AUTO, &nix, 0,
		VF_E_ARG,
		"secret:1:1: JSON syntax error: unexpected character (expected a JSON object (sops "
		"files are one object with a \"sops\" key))");
	t = replace(rpc, "\"data\": \"ENC", "\"more\": \"x\",\n\t\"data\": \"ENC");
	refused("a binary file with a second value", "secret", t, VF_SOPS_AUTO, &admin, 0, VF_E_ARG,
		"secret:2:2: key \"more\" in a sops binary file (expected only \"data\" and "
		"\"sops\")");
	free(t);
	char nesting[400] = "";
	for (int i = 0; i < 70; i++)
		strcat(nesting, "[");
	refused("nesting past the limit", "deep.json", nesting, VF_SOPS_JSON, &nix, 0, VF_E_ARG,
		"deep.json:1:1: JSON syntax error: unexpected character (expected a JSON object "
		"(sops files are one object with a \"sops\" key))");
	memset(nesting, 0, sizeof(nesting));
	strcat(nesting, "{\"a\":");
	for (int i = 0; i < 70; i++)
		strcat(nesting, "[");
	refused("nesting past the limit", "deep.json", nesting, VF_SOPS_JSON, &nix, 0, VF_E_ARG,
		"deep.json:1:69: nesting deeper than 64 levels (expected at most 64 nested objects "
		"and arrays)");

	test_limits(&nix);
	free(yaml);
	free(rpc);
	vf_identities_free(&nix);
	vf_identities_free(&age);
	vf_identities_free(&admin);
}

/* ---- 5. files written here ---- */

static const uint8_t test_key[32] = "0123456789abcdef0123456789abcdef";

/* ENC[] of plain under test_key and aad (a fixed IV: only a test). */
static char *seal(const char *plain, const char *aad, const char *type)
{
	size_t len = strlen(plain);
	uint8_t iv[32], tag[16], *ct = malloc(len + 1);
	memset(iv, 7, sizeof(iv));
	struct vf_error err;
	if (vf_aes256gcm_seal(test_key, iv, 32, (const uint8_t *)aad, strlen(aad),
			      (const uint8_t *)plain, len, ct, tag, &err) != VF_OK)
		die(err.msg);
	char *d = b64_of(ct, len), *i = b64_of(iv, 32), *t = b64_of(tag, 16);
	char *out = malloc(strlen(d) + 200);
	sprintf(out, "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", d, i, t, type);
	free(ct);
	free(d);
	free(i);
	free(t);
	return out;
}

/* The MAC's ENC[] over the given pieces (NULL-terminated), with the
 * mac_only_encrypted seed when asked. */
static char *mac_of(const char *const *pieces, bool mac_only)
{
	struct vf_sha512 *h;
	struct vf_error err;
	uint8_t digest[64], seed[32];
	char hex[129];
	vf_sha512_new(&h, &err);
	if (mac_only) {
		vf_sha256("sops", 4, seed, &err);
		vf_sha512_update(h, seed, 32, &err);
	}
	for (; *pieces; pieces++)
		vf_sha512_update(h, *pieces, strlen(*pieces), &err);
	vf_sha512_final(h, digest, &err);
	vf_sha512_free(h);
	upper_hex(digest, 64, hex);
	return seal(hex, "2024-01-02T03:04:05Z", "str");
}

#define AGE_STANZA "  age:\n    - recipient: age1test\n      enc: not opened here\n"

/* Decrypts a file written here with test_key. */
static bool decrypts(const char *name, const char *text, struct vf_sops_file **f,
		     struct vf_sops_plain *p, struct vf_error *err)
{
	memset(p, 0, sizeof(*p));
	*f = parse_text(name, text, VF_SOPS_AUTO, err);
	if (*f && vf_sops_decrypt_with_key(*f, test_key, 0, p, err) == VF_OK && p->mac_verified)
		return true;
	printf("  %s: %s\n", name, err->msg);
	return false;
}

static void test_yaml_types(void)
{
	char *s = seal("123456789", "s:", "float"), *t = seal("-42", "t:", "int");
	char *u = seal("False", "u:", "bool"), *w = seal("2024-01-02T03:04:05+00:00", "w:", "time");
	char *x = seal("0.000001", "x:", "float");
	const char *pieces[] = {"31", "1000000", "True", "007", "1000", "0.5", "123456789", "-42",
				"False", "", "2024-01-02T03:04:05Z", "0.000001", NULL};
	char *mac = mac_of(pieces, false);
	char *text = malloc(4096);
	snprintf(text, 4096,
		 "a_unencrypted: 0x1F\nb_unencrypted: 1e6\nc_unencrypted: true\n"
		 "d_unencrypted: \"007\"\ne_unencrypted: 1_000\nf_unencrypted: .5\n"
		 "g_unencrypted: ~\ns: %s\nt: %s\nu: %s\nv: \"\"\nw: %s\nx: %s\n"
		 "sops:\n" AGE_STANZA "  lastmodified: \"2024-01-02T03:04:05Z\"\n  mac: %s\n"
		 "  version: 3.9.0\n",
		 s, t, u, w, x, mac);
	struct vf_sops_file *f;
	struct vf_sops_plain p;
	struct vf_error err;
	bool ok = decrypts("types.yaml", text, &f, &p, &err);
	ok = ok && f->n_leaves == 12 && value_is(f, &p, "a_unencrypted:", "31", 2) &&
	     f->leaves[0].type == VF_SOPS_INT && !f->leaves[0].encrypted &&
	     value_is(f, &p, "b_unencrypted:", "1e+06", 5) && f->leaves[1].type == VF_SOPS_FLOAT &&
	     value_is(f, &p, "c_unencrypted:", "true", 4) &&
	     value_is(f, &p, "d_unencrypted:", "007", 3) && f->leaves[3].type == VF_SOPS_STR &&
	     value_is(f, &p, "e_unencrypted:", "1000", 4) &&
	     value_is(f, &p, "f_unencrypted:", "0.5", 3) && find(f, "g_unencrypted:") < 0 &&
	     value_is(f, &p, "s:", "1.23456789e+08", 14) && value_is(f, &p, "t:", "-42", 3) &&
	     value_is(f, &p, "u:", "false", 5) && value_is(f, &p, "v:", "", 0) &&
	     value_is(f, &p, "w:", "2024-01-02T03:04:05Z", 20) && f->leaves[10].type == VF_SOPS_TIME &&
	     value_is(f, &p, "x:", "1e-06", 5);
	for (size_t i = 0; !ok && f && i < f->n_leaves && i < p.n; i++)
		printf("  %zu %s = \"%s\"\n", i, vf_sops_type_name(f->leaves[i].type),
		       p.values[i].data ? (const char *)p.values[i].data : "(none)");
	check(ok, "YAML: plain scalars typed as yaml.v3 types them, texts as yaml.v3 prints them, "
		  "the MAC over Go's ToBytes (31, 1000000, True, ...)");
	vf_sops_plain_free(&p);
	vf_sops_free(f);

	/* The same file with mac_only_encrypted: the MAC over the encrypted
	 * values only, after sha256("sops"). */
	const char *enc_pieces[] = {"123456789", "-42", "False", "", "2024-01-02T03:04:05Z",
				    "0.000001", NULL};
	char *mac2 = mac_of(enc_pieces, true);
	char *tmp = replace(text, mac, mac2);
	char *text2 = replace(tmp, "  version:", "  mac_only_encrypted: true\n  version:");
	free(tmp);
	ok = decrypts("mac-only.yaml", text2, &f, &p, &err) && f->meta.mac_only_encrypted;
	check(ok, "mac_only_encrypted: the MAC starts from sha256(\"sops\") and skips clear values");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	char *text3 = replace(text2, "a_unencrypted: 0x1F", "a_unencrypted: 0x20");
	ok = decrypts("mac-only.yaml", text3, &f, &p, &err);
	check(ok && value_is(f, &p, "a_unencrypted:", "32", 2),
	      "mac_only_encrypted: a clear value changed still verifies (what sops means by it)");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	char *text4 = replace(text2, "  mac_only_encrypted: true\n", "");
	f = parse_text("types.yaml", text4, VF_SOPS_AUTO, &err);
	enum vf_code rc = f ? vf_sops_decrypt_with_key(f, test_key, 0, &p, &err) : VF_E_ARG;
	check(rc == VF_E_AUTH && strcmp(err.msg, "types.yaml: the MAC does not match the values "
						  "(changed since sops wrote the file)") == 0,
	      "the same MAC without mac_only_encrypted does not match");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	free(s), free(t), free(u), free(w), free(x), free(mac), free(mac2), free(text);
	free(text2), free(text3), free(text4);
}

/* The longest spellings: Go's 'f' writes 1e308 with 309 digits and 5e-324
 * with 324 decimals (the MAC's form, and dotenv's). */
static void test_float_extremes(void)
{
	char big_f[400] = "1", tiny_f[400] = "0.";
	for (int i = 0; i < 308; i++)
		strcat(big_f, "0");
	for (int i = 0; i < 323; i++)
		strcat(tiny_f, "0");
	strcat(tiny_f, "5");
	char *big = seal("1e308", "big:", "float");
	const char *pieces[] = {big_f, tiny_f, "-0", NULL};
	char *mac = mac_of(pieces, false);
	char *text = malloc(4096);
	snprintf(text, 4096,
		 "big: %s\ntiny_unencrypted: 5e-324\nzero_unencrypted: -0.0\n"
		 "sops:\n" AGE_STANZA "  lastmodified: \"2024-01-02T03:04:05Z\"\n  mac: %s\n", big, mac);
	struct vf_sops_file *f;
	struct vf_sops_plain p;
	struct vf_error err;
	bool ok = decrypts("floats.yaml", text, &f, &p, &err) &&
		  value_is(f, &p, "big:", "1e+308", 6) &&
		  value_is(f, &p, "tiny_unencrypted:", "5e-324", 6) &&
		  value_is(f, &p, "zero_unencrypted:", "-0", 2);
	check(ok, "floats at the ends of the range: YAML prints 1e+308 and 5e-324, the MAC takes "
		  "their 309- and 326-character 'f' forms");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	/* dotenv prints them in the long form. */
	char *env_big = seal("1e308", "big:", "float");
	const char *env_pieces[] = {big_f, NULL};
	char *env_mac = mac_of(env_pieces, false);
	snprintf(text, 4096,
		 "big=%s\nsops_age__list_0__map_enc=x\nsops_age__list_0__map_recipient=age1test\n"
		 "sops_lastmodified=2024-01-02T03:04:05Z\nsops_mac=%s\n", env_big, env_mac);
	ok = decrypts("floats.env", text, &f, &p, &err) && value_is(f, &p, "big:", big_f, 309);
	check(ok, "dotenv prints a float as sops's dotenv writer does: 1e308 with 309 digits");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	free(big), free(mac), free(text), free(env_big), free(env_mac);
}

static void test_json(void)
{
	char *a = seal("slash", "k/ey:", "str"), *b = seal("1e21", "big:", "float");
	char *c = seal("0.0000001", "small:", "float"), *d = seal("100", "hundred:", "float");
	char *e = seal("\xf0\x9f\x98\x80", "emoji:", "str");
	const char *pieces[] = {"slash", "1000000000000000000000", "0.0000001", "100",
				"\xf0\x9f\x98\x80", "x", "5", "True", NULL};
	char *mac = mac_of(pieces, false);
	char *text = malloc(4096);
	snprintf(text, 4096,
		 "{\"k\\/ey\": \"%s\", \"big\": \"%s\", \"small\": \"%s\", \"hundred\": \"%s\",\n"
		 " \"emoji\": \"%s\", \"\\ud83d\\ude00_unencrypted\": \"x\", \"n_unencrypted\": 5,\n"
		 " \"t_unencrypted\": true, \"z_unencrypted\": null,\n"
		 " \"sops\": {\"age\": [{\"recipient\": \"age1test\", \"enc\": \"x\"}],\n"
		 "  \"lastmodified\": \"2024-01-02T03:04:05Z\", \"mac\": \"%s\", \"version\": \"3.9.0\"}}\n",
		 a, b, c, d, e, mac);
	struct vf_sops_file *f;
	struct vf_sops_plain p;
	struct vf_error err;
	bool ok = decrypts("escapes.json", text, &f, &p, &err);
	ok = ok && f->n_leaves == 8 && value_is(f, &p, "k/ey:", "slash", 5) &&
	     value_is(f, &p, "big:", "1e+21", 5) && value_is(f, &p, "small:", "1e-7", 4) &&
	     value_is(f, &p, "hundred:", "100", 3) &&
	     value_is(f, &p, "emoji:", "\xf0\x9f\x98\x80", 4) &&
	     value_is(f, &p, "\xf0\x9f\x98\x80_unencrypted:", "x", 1) &&
	     value_is(f, &p, "n_unencrypted:", "5", 1) && f->leaves[6].type == VF_SOPS_FLOAT &&
	     value_is(f, &p, "t_unencrypted:", "true", 4);
	check(ok, "JSON: \\/ and a \\ud83d\\ude00 surrogate pair in keys, floats as encoding/json "
		  "prints them (1e+21, 1e-7), a clear number is a float, null is no value");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	char *lone = replace(text, "\\ud83d\\ude00_unencrypted", "\\ud83d_unencrypted");
	refused("a lone surrogate in JSON", "escapes.json", lone, VF_SOPS_AUTO, NULL, 0, VF_E_ARG,
		"escapes.json:2:131: JSON string with a lone high surrogate \\ud83d (expected a "
		"surrogate pair)");
	char *raw_tab = replace(text, "\"x\", \"n_", "\"x\t\", \"n_");
	refused("a raw tab in a JSON string", "escapes.json", raw_tab, VF_SOPS_AUTO, NULL, 0,
		VF_E_ARG,
		"escapes.json:2:160: JSON string with a raw control character 0x09 (expected it "
		"escaped)");
	free(a), free(b), free(c), free(d), free(e), free(mac), free(text), free(lone), free(raw_tab);
}

static void test_regex_rules(void)
{
	char *a = seal("secret", "data:password:", "str");
	const char *pieces[] = {"secret", "visible", NULL};
	char *mac = mac_of(pieces, false);
	char *text = malloc(4096);
	snprintf(text, 4096,
		 "data:\n  password: %s\nmetadata:\n  name: visible\n"
		 "sops:\n" AGE_STANZA "  lastmodified: \"2024-01-02T03:04:05Z\"\n  mac: %s\n"
		 "  encrypted_regex: ^(data|stringData)$\n  version: 3.9.0\n",
		 a, mac);
	struct vf_sops_file *f;
	struct vf_sops_plain p;
	struct vf_error err;
	bool ok = decrypts("k8s.yaml", text, &f, &p, &err) && f->leaves[0].encrypted &&
		  !f->leaves[1].encrypted && value_is(f, &p, "data:password:", "secret", 6) &&
		  value_is(f, &p, "metadata:name:", "visible", 7);
	check(ok, "encrypted_regex ^(data|stringData)$: data's values encrypted, the rest in clear");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	char *go = replace(text, "^(data|stringData)$", "^\\d+$");
	refused("a Go-only regex (\\d)", "k8s.yaml", go, VF_SOPS_AUTO, NULL, 0, VF_E_ARG,
		"k8s.yaml:11:20: sops:encrypted_regex /^\\d+$/ has a backslash before a letter or "
		"digit (\\d, \\w, \\b ...), which this reader cannot match as Go does (expected a "
		"plain POSIX-compatible pattern)");
	char *lazy = replace(text, "^(data|stringData)$", "(?i)^data$");
	refused("a Go-only regex ((?i))", "k8s.yaml", lazy, VF_SOPS_AUTO, NULL, 0, VF_E_ARG,
		"k8s.yaml:11:20: sops:encrypted_regex /(?i)^data$/ has a (?...) group or flag, "
		"which this reader cannot match as Go does (expected a plain POSIX-compatible "
		"pattern)");
	char *two = replace(text, "  version:", "  unencrypted_suffix: _clear\n  version:");
	refused("two rules", "k8s.yaml", two, VF_SOPS_AUTO, NULL, 0, VF_E_ARG,
		"k8s.yaml: more than one of sops's unencrypted/encrypted suffix and regex rules "
		"(sops refuses such a file)");
	char *comments = replace(text, "encrypted_regex:", "encrypted_comment_regex:");
	refused("a comment rule", "k8s.yaml", comments, VF_SOPS_AUTO, NULL, 0, VF_E_ARG,
		"k8s.yaml:11:28: sops:encrypted_comment_regex is not supported (it depends on "
		"comments, which this reader does not read)");
	free(a), free(mac), free(text), free(go), free(lazy), free(two), free(comments);
}

static void test_dotenv(void)
{
	char *a = seal("line one\nline two", "A:", "str");
	char *c = seal("a comment", ":", "comment");
	const char *pieces[] = {"line one\nline two", "x\ny", NULL};
	char *mac = mac_of(pieces, false);
	char *text = malloc(4096);
	snprintf(text, 4096,
		 "#%s\nA=%s\n\nB_unencrypted=x\\ny\nsops_age__list_0__map_enc=x\n"
		 "sops_age__list_0__map_recipient=age1test\nsops_lastmodified=2024-01-02T03:04:05Z\n"
		 "sops_mac=%s\nsops_version=3.9.0\n",
		 c, a, mac);
	struct vf_sops_file *f;
	struct vf_sops_plain p;
	struct vf_error err;
	bool ok = decrypts("x.env", text, &f, &p, &err) && f->n_leaves == 2 &&
		  value_is(f, &p, "A:", "line one\nline two", 17) &&
		  value_is(f, &p, "B_unencrypted:", "x\ny", 3);
	check(ok, "dotenv: a comment line skipped, \\n in a clear value is a newline, metadata "
		  "from sops_* keys");
	vf_sops_plain_free(&p);
	vf_sops_free(f);
	char *bad = replace(text, "B_unencrypted=x", "B_unencrypted x");
	refused("a dotenv line without '='", "x.env", bad, VF_SOPS_AUTO, NULL, 0, VF_E_ARG,
		"x.env:4:1: dotenv line without '=' (expected KEY=VALUE)");
	free(a), free(c), free(mac), free(text), free(bad);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sops_test SHARED/testdata/sops\n");
		return 2;
	}
	shared = argv[1];
	if (vf_init() != 0)
		die("vf_init failed");
	test_vectors();
	test_sops_age();
	test_sops_nix();
	test_clan();
	test_getsops_mock();
	test_metadata();
	test_refusals();
	test_yaml_types();
	test_float_extremes();
	test_json();
	test_regex_rules();
	test_dotenv();
	printf("sops: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
