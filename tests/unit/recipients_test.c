/* Unit tests of who a secret is sealed to, and in what order
 * (vf_vars_recipients, vf_seal in format/vars/vars.c):
 *  1. a machine's own secret: the machine's key first, then the admins in
 *     the spec's order;
 *  2. a shared generator's secret: every machine that uses it, then the
 *     admins, each once;
 *  3. the sealed file's stanzas come in that order: the first opens with
 *     the machine's identity, the others do not. A reader tries stanzas in
 *     turn, one X25519 exchange each, and the machine (varinject at every
 *     boot) is the reader that counts. */
#include <stdio.h>

#include <sodium.h>

#include "age/header.h"
#include "age/recipient.h"
#include "base/secmem.h"
#include "vars/spec.h"
#include "vars/vars.h"
#include "unit.h"

enum { M1, M2, A1, A2, N_KEYS };

struct keys {
	struct vf_identity *id[N_KEYS];
	char *recipient[N_KEYS];
};

static void make_keys(struct keys *k)
{
	struct vf_error err;
	for (int i = 0; i < N_KEYS; i++)
		unit_must(vf_x25519_identity_generate(&k->id[i], &err) == VF_OK &&
				  vf_x25519_identity_recipient(k->id[i], &k->recipient[i], &err) ==
					  VF_OK,
			  "an X25519 key");
}

static void free_keys(struct keys *k)
{
	for (int i = 0; i < N_KEYS; i++) {
		k->id[i]->ops->free(k->id[i]);
		free(k->recipient[i]);
	}
}

static void load_spec(const struct keys *k, struct vf_spec *spec)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "admins:\n  a1: %s\n  a2: %s\n"
		 "machines:\n"
		 "  m1: {key: %s, generators: [own, both]}\n"
		 "  m2: {key: %s, generators: [both]}\n"
		 "generators:\n"
		 "  own: {files: {f: {kind: random}}}\n"
		 "  both: {share: true, files: {f: {kind: random}}}\n",
		 k->recipient[A1], k->recipient[A2], k->recipient[M1], k->recipient[M2]);
	struct vf_error err;
	unit_must(vf_spec_parse("recipients.yaml", text, strlen(text), spec, &err) == VF_OK,
		  "the test spec");
}

/* Whether list is exactly the keys in want, in that order. */
static bool in_order(const struct keys *k, const struct vf_strings *list, const int *want,
		     size_t n)
{
	if (list->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list->items[i], k->recipient[want[i]]) != 0)
			return false;
	return true;
}

static void order(const struct keys *k, const struct vf_spec *spec)
{
	struct vf_error err;
	struct vf_strings own = {0}, both = {0};
	CHECK_OK(vf_vars_recipients(spec, "m1", vf_spec_generator(spec, "own"), &own, &err), err,
		 "recipients of m1's own secret");
	CHECK(in_order(k, &own, (const int[]){M1, A1, A2}, 3),
	      "m1's own secret: m1, then a1 and a2");
	CHECK_OK(vf_vars_recipients(spec, NULL, vf_spec_generator(spec, "both"), &both, &err), err,
		 "recipients of the shared secret");
	CHECK(in_order(k, &both, (const int[]){M1, M2, A1, A2}, 4),
	      "the shared secret: m1 and m2, then a1 and a2");
	vf_strings_free(&own);
	vf_strings_free(&both);
}

/* Whether stanza i of the sealed file opens with key. */
static bool opens(const struct vf_header *h, size_t i, struct vf_identity *key)
{
	uint8_t file_key[VF_FILE_KEY_LEN];
	struct vf_error err;
	bool ok = key->ops->unwrap(key, &h->stanzas[i], file_key, &err) == VF_OK;
	sodium_memzero(file_key, sizeof(file_key));
	return ok;
}

static void stanzas(const struct keys *k, const struct vf_spec *spec)
{
	struct vf_error err;
	struct vf_strings to = {0};
	struct vf_buf sealed;
	vf_buf_init(&sealed);
	CHECK_OK(vf_vars_recipients(spec, "m1", vf_spec_generator(spec, "own"), &to, &err), err,
		 "recipients");
	CHECK_OK(vf_seal(&to, (const uint8_t *)"value", 5, &sealed, &err), err, "vf_seal");
	struct vf_mem_src src;
	struct vf_bufreader br;
	struct vf_header h = {0};
	vf_mem_src_init(&src, sealed.data, sealed.len);
	CHECK(vf_bufreader_init(&br, &src.base, 16384, NULL) == VF_OK &&
		      vf_header_parse(&h, &br, NULL) == VF_OK && h.n == 3,
	      "the sealed file has three stanzas");
	if (h.n == 3) {
		CHECK(opens(&h, 0, k->id[M1]), "the first stanza opens with m1's identity");
		CHECK(!opens(&h, 0, k->id[A1]), "the first stanza does not open with a1's");
		CHECK(!opens(&h, 1, k->id[M1]) && !opens(&h, 2, k->id[M1]),
		      "no other stanza opens with m1's identity");
		CHECK(opens(&h, 1, k->id[A1]) && opens(&h, 2, k->id[A2]),
		      "the second and third open with a1's and a2's");
	}
	vf_header_free(&h);
	vf_bufreader_free(&br);
	vf_buf_free(&sealed);
	vf_strings_free(&to);
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "unit_recipients: cannot initialise the library\n");
		return 2;
	}
	struct keys k;
	struct vf_spec spec;
	make_keys(&k);
	load_spec(&k, &spec);
	order(&k, &spec);
	stanzas(&k, &spec);
	vf_spec_free(&spec);
	free_keys(&k);
	return unit_done();
}
