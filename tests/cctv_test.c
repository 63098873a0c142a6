/* Runs every CCTV age test vector (../shared/testdata/cctv-age, read in
 * place) through the library with the reference semantics:
 *  - the expected outcome (success, no match, HMAC/header/payload/armor
 *    failure) is checked against the library's error code;
 *  - for success and payload failure, SHA-256 of all released plaintext
 *    must equal `payload:`;
 *  - valid armor re-encodes identically; every header that parses
 *    re-marshals byte for byte.
 * Identities are X25519 (AGE-SECRET-KEY-1...) or hybrid post-quantum
 * (AGE-SECRET-KEY-PQ-1..., the mlkem768x25519 vectors of age 1.3).
 * Exit status 0 only when every vector passes. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/crypto.h"
#include "base/io.h"
#include "base/secmem.h"
#include "age/age.h"
#include "age/armor.h"
#include "age/recipient.h"

#define MAX_KEYS 8

struct vector {
	char name[256];
	char expect[32];
	char payload_hex[65];
	char *identities[MAX_KEYS];
	size_t n_identities;
	char *passphrases[MAX_KEYS];
	size_t n_passphrases;
	int armored, compressed;
	uint8_t *body;
	size_t body_len;
};

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	*len = n;
	return buf;
}

static int inflate_all(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	z_stream zs = {0};
	if (inflateInit(&zs) != Z_OK)
		return -1;
	size_t cap = in_len * 4 + 1024, n = 0;
	uint8_t *buf = malloc(cap);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)in_len;
	int rc;
	do {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		zs.next_out = buf + n;
		zs.avail_out = (uInt)(cap - n);
		rc = inflate(&zs, Z_NO_FLUSH);
		n = cap - zs.avail_out;
	} while (rc == Z_OK);
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

static int parse_vector(const char *dir, const char *name, struct vector *v)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	size_t len;
	uint8_t *data = read_file(path, &len);
	if (!data)
		return -1;
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	size_t pos = 0;
	for (;;) {
		uint8_t *nl = memchr(data + pos, '\n', len - pos);
		if (!nl) {
			free(data);
			return -1;
		}
		size_t line_len = (size_t)(nl - (data + pos));
		char *line = strndup((char *)data + pos, line_len);
		pos += line_len + 1;
		if (line_len == 0) {
			free(line);
			break;
		}
		char *sep = strstr(line, ": ");
		if (sep) {
			*sep = '\0';
			const char *val = sep + 2;
			if (!strcmp(line, "expect"))
				snprintf(v->expect, sizeof(v->expect), "%s", val);
			else if (!strcmp(line, "payload"))
				snprintf(v->payload_hex, sizeof(v->payload_hex), "%s", val);
			else if (!strcmp(line, "identity") && v->n_identities < MAX_KEYS)
				v->identities[v->n_identities++] = strdup(val);
			else if (!strcmp(line, "passphrase") && v->n_passphrases < MAX_KEYS)
				v->passphrases[v->n_passphrases++] = strdup(val);
			else if (!strcmp(line, "armored"))
				v->armored = !strcmp(val, "yes");
			else if (!strcmp(line, "compressed"))
				v->compressed = !strcmp(val, "zlib");
		}
		free(line);
	}
	if (v->compressed) {
		if (inflate_all(data + pos, len - pos, &v->body, &v->body_len) != 0) {
			free(data);
			return -1;
		}
	} else {
		v->body_len = len - pos;
		v->body = malloc(v->body_len + 1);
		memcpy(v->body, data + pos, v->body_len);
	}
	free(data);
	return 0;
}

static void free_vector(struct vector *v)
{
	for (size_t i = 0; i < v->n_identities; i++)
		free(v->identities[i]);
	for (size_t i = 0; i < v->n_passphrases; i++)
		free(v->passphrases[i]);
	free(v->body);
}

struct pass_ctx {
	const char *pass;
};

static enum vf_code give_passphrase(void *ctx, uint8_t **pass, size_t *len,
				    struct vf_error *err)
{
	struct pass_ctx *p = ctx;
	*len = strlen(p->pass);
	*pass = vf_secure_alloc(*len);
	if (!*pass)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	memcpy(*pass, p->pass, *len);
	return VF_OK;
}

static const char *expected_code_name(enum vf_code rc)
{
	switch (rc) {
	case VF_OK: return "success";
	case VF_E_NO_MATCH: return "no match";
	case VF_E_HMAC: return "HMAC failure";
	case VF_E_HEADER: return "header failure";
	case VF_E_PAYLOAD: return "payload failure";
	case VF_E_ARMOR: return "armor failure";
	default: return vf_code_name(rc);
	}
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* Re-encoding valid armor must give back the input (after CRLF -> LF and
 * trimming surrounding whitespace). */
static int check_armor_roundtrip(const struct vector *v, char *why, size_t why_len)
{
	struct vf_mem_src src;
	struct vf_bufreader br;
	struct vf_armor_reader ar;
	struct vf_buf decoded, reencoded;
	vf_buf_init(&decoded);
	vf_buf_init(&reencoded);
	vf_mem_src_init(&src, v->body, v->body_len);
	vf_bufreader_init(&br, &src.base, 16384, NULL);
	vf_armor_reader_init(&ar, &br);
	uint8_t tmp[4096];
	ssize_t n;
	struct vf_error err;
	while ((n = ar.base.read(&ar.base, tmp, sizeof(tmp), &err)) > 0)
		vf_buf_append(&decoded, tmp, (size_t)n, NULL);
	int ok = n == 0;
	if (ok) {
		struct vf_armor_writer w;
		vf_armor_writer_init(&w, &reencoded.sink, NULL);
		vf_sink_write(&w.base, decoded.data, decoded.len, NULL);
		w.base.finish(&w.base, NULL);
		vf_armor_writer_free(&w);
		/* Normalise the original. */
		struct vf_buf norm;
		vf_buf_init(&norm);
		for (size_t i = 0; i < v->body_len; i++)
			if (!(v->body[i] == '\r' && i + 1 < v->body_len && v->body[i + 1] == '\n'))
				vf_buf_append(&norm, &v->body[i], 1, NULL);
		size_t b = 0, e = norm.len;
		while (b < e && strchr(" \t\r\n", norm.data[b]))
			b++;
		while (e > b && strchr(" \t\r\n", norm.data[e - 1]))
			e--;
		ok = reencoded.len == e - b + 1 && memcmp(reencoded.data, norm.data + b, e - b) == 0;
		if (!ok)
			snprintf(why, why_len, "armor does not re-encode identically");
		vf_buf_free(&norm);
	} else {
		snprintf(why, why_len, "armor did not decode: %s", err.msg);
	}
	vf_buf_free(&decoded);
	vf_buf_free(&reencoded);
	vf_bufreader_free(&br);
	return ok;
}

/* A header that parses must marshal back to the same bytes. */
static int check_header_roundtrip(const struct vector *v, char *why, size_t why_len)
{
	struct vf_mem_src src;
	struct vf_bufreader br, inner;
	struct vf_armor_reader ar;
	vf_mem_src_init(&src, v->body, v->body_len);
	vf_bufreader_init(&inner, &src.base, 16384, NULL);
	struct vf_bufreader *use = &inner;
	if (v->armored) {
		vf_armor_reader_init(&ar, &inner);
		vf_bufreader_init(&br, &ar.base, 16384, NULL);
		use = &br;
	}
	struct vf_header h;
	struct vf_error err;
	int ok = 1;
	if (vf_header_parse(&h, use, &err) == VF_OK) {
		struct vf_buf out;
		vf_buf_init(&out);
		vf_header_marshal(&h, 1, &out, NULL);
		/* The marshalled header must equal the macced bytes + MAC line. */
		ok = out.len > h.macced_len && memcmp(out.data, h.macced, h.macced_len) == 0;
		struct vf_buf again;
		vf_buf_init(&again);
		vf_header_marshal(&h, 0, &again, NULL);
		ok = ok && again.len == h.macced_len &&
		     memcmp(again.data, h.macced, h.macced_len) == 0;
		if (!ok)
			snprintf(why, why_len, "header does not re-marshal byte for byte");
		vf_buf_free(&out);
		vf_buf_free(&again);
		vf_header_free(&h);
	}
	if (v->armored)
		vf_bufreader_free(&br);
	vf_bufreader_free(&inner);
	return ok;
}

static int run_vector(const struct vector *v, char *why, size_t why_len)
{
	struct vf_identity *ids[2 * MAX_KEYS];
	size_t n = 0;
	struct pass_ctx pass[MAX_KEYS];
	struct vf_error err = {0};
	for (size_t i = 0; i < v->n_identities; i++) {
		const char *id = v->identities[i];
		enum vf_code prc = strncmp(id, VF_HYBRID_IDENTITY_HRP, strlen(VF_HYBRID_IDENTITY_HRP))
					   ? vf_x25519_identity_parse(id, strlen(id), &ids[n], &err)
					   : vf_hybrid_identity_parse(id, strlen(id), &ids[n], &err);
		if (prc != VF_OK) {
			for (size_t j = 0; j < n; j++)
				vf_identity_free(ids[j]);
			snprintf(why, why_len, "cannot parse identity: %s", err.msg);
			return 0;
		}
		n++;
	}
	for (size_t i = 0; i < v->n_passphrases; i++) {
		pass[i].pass = v->passphrases[i];
		vf_scrypt_identity_new(give_passphrase, &pass[i], VF_SCRYPT_MAX_LOG_N, &ids[n++],
				       NULL);
	}
	struct vf_mem_src src;
	vf_mem_src_init(&src, v->body, v->body_len);
	struct vf_buf out;
	vf_buf_init(&out);
	enum vf_code rc = vf_decrypt(ids, n, &src.base, v->armored ? VF_ARMOR_YES : VF_ARMOR_NO,
				     &out.sink, &err);
	for (size_t i = 0; i < n; i++)
		vf_identity_free(ids[i]);
	const char *got = expected_code_name(rc);
	int ok = strcmp(got, v->expect) == 0;
	if (!ok)
		snprintf(why, why_len, "expected %s, got %s (%s)", v->expect, got,
			 rc ? err.msg : "");
	if (ok && v->payload_hex[0]) {
		uint8_t digest[32];
		char digest_hex[65];
		vf_sha256(out.data ? out.data : (const uint8_t *)"", out.len, digest, NULL);
		hex(digest, 32, digest_hex);
		if (strcmp(digest_hex, v->payload_hex) != 0) {
			ok = 0;
			snprintf(why, why_len, "released plaintext (%zu bytes) has the wrong hash",
				 out.len);
		}
	}
	vf_buf_free(&out);
	if (ok && v->armored && rc != VF_E_ARMOR)
		ok = check_armor_roundtrip(v, why, why_len);
	if (ok && strcmp(v->expect, "header failure") != 0)
		ok = check_header_roundtrip(v, why, why_len);
	return ok;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/testdata/cctv-age";
	if (vf_init() != 0)
		return 1;
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "cctv_test: cannot open %s: %s\n", dir, strerror(errno));
		return 1;
	}
	char *names[512];
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d)) && count < 512) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.txt") ||
		    e->d_type == DT_DIR || !strcmp(e->d_name, "expanded"))
			continue;
		names[count++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), by_name);
	int passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < count; i++) {
		struct vector v;
		char why[8192] = "";
		if (parse_vector(dir, names[i], &v) != 0) {
			printf("FAIL %s: cannot read vector\n", names[i]);
			failed++;
			continue;
		}
		if (run_vector(&v, why, sizeof(why))) {
			printf("ok   %s (%s)\n", v.name, v.expect);
			passed++;
		} else {
			printf("FAIL %s: %s\n", v.name, why);
			failed++;
		}
		free_vector(&v);
		free(names[i]);
	}
	printf("cctv: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed || passed == 0 ? 1 : 0;
}
