/* libFuzzer target: the SOPS reader (format/sops/sops.h) from memory. Each
 * input is parsed as YAML, JSON, dotenv and binary; each file accepted has
 * its value paths printed, then is decrypted twice: with the data keys of
 * the fixtures in ../shared/testdata/sops (so that seeds made from them
 * reach the values and the MAC), and through its age stanzas with the
 * fixtures' public test identities (the age path and its errors). Nothing
 * may crash, leak or read out of bounds; what is decrypted must be one
 * NUL-terminated value per leaf. Run with scripts/fuzz.sh, seeded with the
 * fixtures. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "age/keys.h"
#include "base/secmem.h"
#include "sops/sops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The data keys in the fixtures' vectors (testdata/sops/vectors/). */
static const char *const data_keys[] = {
	"3179b6f3028d542104273fb29380218e5264913b9daf4551a6a2262cee3de70a", /* sops-age json */
	"b9152942b7105527fd1fb9e2d9a1ee9bd03a7bb8edea26d311fda1a2e85056b2", /* sops-nix */
	"b1051081aff51347135df7fedfb799747310e2d6bd71fe355114a3b189103c81", /* clan rpc_secret */
};

/* Public test identities of the fixtures (sops-age/key.txt,
 * sops-nix/age-keys.txt, clan-core/test-age-key.txt). */
static const char identities[] =
	"AGE-SECRET-KEY-1QXRVEJH9S4NQU0FPD6V79ESZQ8S6PXH3L8V40EVPTHFH6KNKD4DQ7SKC4P\n"
	"AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6\n"
	"AGE-SECRET-KEY-1PL0M9CWRCG3PZ9DXRTTLMCVD57U6JDFE8K7DNVQ35F4JENZ6G3MQ0RQLRV\n";

static void hex_key(const char *hex, uint8_t key[VF_SOPS_DATA_KEY_LEN])
{
	for (size_t i = 0; i < VF_SOPS_DATA_KEY_LEN; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char c = hex[2 * i + (size_t)k];
			v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
		}
		key[i] = (uint8_t)v;
	}
}

static void check_plain(const struct vf_sops_file *f, const struct vf_sops_plain *p)
{
	if (p->n != f->n_leaves)
		abort();
	for (size_t i = 0; i < p->n; i++)
		if (!p->values[i].data || p->values[i].data[p->values[i].len] != 0)
			abort();
}

static void exercise(const struct vf_sops_file *f, const struct vf_identities *ids)
{
	char path[256];
	for (size_t i = 0; i < f->n_leaves; i++)
		if (vf_sops_leaf_path(&f->leaves[i], path, sizeof(path)) == 0 && f->leaves[i].n_parts)
			abort();
	struct vf_sops_plain p;
	struct vf_error err;
	for (size_t k = 0; k < sizeof(data_keys) / sizeof(*data_keys); k++) {
		uint8_t key[VF_SOPS_DATA_KEY_LEN];
		hex_key(data_keys[k], key);
		if (vf_sops_decrypt_with_key(f, key, k % 2 ? VF_SOPS_IGNORE_MAC : 0, &p, &err) == VF_OK)
			check_plain(f, &p);
		vf_sops_plain_free(&p);
	}
	if (vf_sops_decrypt(f, ids, VF_SOPS_IGNORE_MAC, &p, &err) == VF_OK)
		check_plain(f, &p);
	vf_sops_plain_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static struct vf_identities ids;
	if (!ready) {
		struct vf_error err;
		if (vf_init() != 0 ||
		    vf_identities_parse(identities, strlen(identities), "fuzz", &ids, &err) != VF_OK)
			return 0;
		ready = 1;
	}
	static const enum vf_sops_format formats[] = {VF_SOPS_YAML, VF_SOPS_JSON, VF_SOPS_DOTENV,
						      VF_SOPS_BINARY};
	for (size_t i = 0; i < sizeof(formats) / sizeof(*formats); i++) {
		struct vf_sops_file *f;
		struct vf_error err;
		if (vf_sops_parse("fuzz", data, size, formats[i], &f, &err) == VF_OK) {
			exercise(f, &ids);
			vf_sops_free(f);
		}
	}
	return 0;
}
