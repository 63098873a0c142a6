/* Unit tests of the tools' OpenSSL provider (format/base/provider.c):
 *  1. after vf_init the default library context serves only the subset:
 *     OpenSSL's default provider is not loaded there, and algorithms
 *     format/ does not use (AES-128-CBC, MD5, SHA-224, Ed25519, TLS1-PRF)
 *     cannot be fetched: a short run builds only what it uses (issue 15);
 *     what OpenSSL's implementations fetch for themselves (HMAC, PBKDF2)
 *     can; what a run with X25519 keys does not use (SHA-3, AES-GCM,
 *     scrypt, RSA) is offered only after vf_provider_more;
 *  2. the random generator is OpenSSL's HASH-DRBG (a CTR-DRBG would build
 *     every cipher again) and gives different bytes each call; vf_wipe_random
 *     (what the exit does after a draw) leaves the primary and this
 *     thread's generators zeroised, and a draw after it still works;
 *  3. every primitive format/ wraps still gives the published answers
 *     through the subset: SHA-256, SHA-512, SHA3-256, SHA3-512, SHAKE128,
 *     SHAKE256, HMAC-SHA-256 (RFC 4231), HKDF-SHA-256 (RFC 5869), X25519
 *     (RFC 7748) with a kept key and an ephemeral one, scrypt, and
 *     ChaCha20-Poly1305 and AES-256-GCM round trips that refuse a changed
 *     tag. */
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "base/crypto.h"
#include "base/provider.h"
#include "base/secmem.h"
#include "unit.h"

static void unhex(const char *hex, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		unit_must(sscanf(hex + 2 * i, "%2hhx", &out[i]) == 1, "test vector hex");
}

static bool same(const uint8_t *got, const char *want_hex, size_t len)
{
	uint8_t want[128];
	unit_must(len <= sizeof(want) && strlen(want_hex) == 2 * len, "test vector length");
	unhex(want_hex, want, len);
	return memcmp(got, want, len) == 0;
}

/* NAME(alg): whether the default context offers the algorithm; the fetched
 * object is freed again. */
#define OFFERED(name, type, fetch, release)          \
	static bool name(const char *alg)            \
	{                                            \
		type *obj = fetch(NULL, alg, NULL);  \
		bool offered = obj != NULL;          \
		release(obj);                        \
		return offered;                      \
	}

OFFERED(cipher_offered, EVP_CIPHER, EVP_CIPHER_fetch, EVP_CIPHER_free)
OFFERED(digest_offered, EVP_MD, EVP_MD_fetch, EVP_MD_free)
OFFERED(kdf_offered, EVP_KDF, EVP_KDF_fetch, EVP_KDF_free)
OFFERED(mac_offered, EVP_MAC, EVP_MAC_fetch, EVP_MAC_free)

static void only_the_subset(void)
{
	CHECK(!OSSL_PROVIDER_available(NULL, "default"),
	      "OpenSSL's default provider is not loaded in the default context");
	CHECK(!cipher_offered("AES-128-CBC"), "AES-128-CBC (unused) cannot be fetched");
	CHECK(!digest_offered("MD5"), "MD5 (unused) cannot be fetched");
	CHECK(!digest_offered("SHA2-224"), "SHA-224 (unused) cannot be fetched");
	CHECK(!kdf_offered("TLS1-PRF"), "TLS1-PRF (unused) cannot be fetched");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CHECK(ed == NULL, "Ed25519 keys (unused) cannot be made");
	EVP_PKEY_free(ed);
	CHECK(cipher_offered("ChaCha20-Poly1305"), "ChaCha20-Poly1305 can be fetched");
	CHECK(digest_offered("SHA2-256"), "SHA-256 can be fetched");
}

/* The second list is offered only once asked for: a run with X25519 keys
 * does not build every digest for its SHA-256. */
static void more_on_demand(void)
{
	CHECK(!digest_offered("SHA3-256"), "SHA3-256 is not offered before vf_provider_more");
	CHECK(!cipher_offered("AES-256-GCM"), "AES-256-GCM is not offered before vf_provider_more");
	CHECK(!kdf_offered("SCRYPT"), "scrypt is not offered before vf_provider_more");
	CHECK(vf_provider_more() == 0, "vf_provider_more");
	CHECK(vf_provider_more() == 0, "vf_provider_more a second time");
	CHECK(digest_offered("SHA3-256"), "SHA3-256 can be fetched after vf_provider_more");
	CHECK(cipher_offered("AES-256-GCM"), "AES-256-GCM can be fetched after vf_provider_more");
	CHECK(kdf_offered("SCRYPT"), "scrypt can be fetched after vf_provider_more");
	CHECK(digest_offered("SHA1"), "SHA-1 (OAEP's default) can be fetched after vf_provider_more");
	CHECK(!digest_offered("MD5"), "MD5 still cannot be fetched after vf_provider_more");
	EVP_PKEY_CTX *rsa = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	CHECK(rsa != NULL, "the RSA key manager can be fetched after vf_provider_more");
	EVP_PKEY_CTX_free(rsa);
}

/* What OpenSSL's implementations fetch for themselves (HKDF its HMAC,
 * HMAC its SHA-256, scrypt PBKDF2) is listed too: they fetch from the
 * context they were loaded into, this one. */
static void inner_fetches(void)
{
	CHECK(mac_offered("HMAC"), "HMAC (HKDF's) can be fetched");
	CHECK(kdf_offered("PBKDF2"), "PBKDF2 (scrypt's) can be fetched");
}

static void random_generator(void)
{
	struct vf_error err;
	uint8_t a[32] = {0}, b[32] = {0};
	CHECK_OK(vf_random(a, sizeof(a), &err), err, "vf_random");
	CHECK_OK(vf_random(b, sizeof(b), &err), err, "vf_random again");
	CHECK(memcmp(a, b, sizeof(a)) != 0, "two draws differ");
	EVP_RAND_CTX *drbg = RAND_get0_private(NULL);
	const char *name = drbg ? EVP_RAND_get0_name(EVP_RAND_CTX_get0_rand(drbg)) : NULL;
	CHECK(name && !strcmp(name, "HASH-DRBG"), "the private DRBG is HASH-DRBG (got %s)",
	      name ? name : "(none)");
}

/* The generators' own zeroisation check: 1 once their state is cleansed. */
static bool zeroised(EVP_RAND_CTX *drbg)
{
	return drbg && EVP_RAND_verify_zeroization(drbg) == 1;
}

static void random_wiped(void)
{
	struct vf_error err;
	uint8_t a[32] = {0};
	CHECK_OK(vf_random(a, sizeof(a), &err), err, "vf_random before the wipe");
	CHECK(!zeroised(RAND_get0_private(NULL)), "the private DRBG holds state after a draw");
	CHECK(!zeroised(RAND_get0_primary(NULL)), "the primary DRBG holds state after a draw");
	vf_wipe_random();
	CHECK(zeroised(RAND_get0_private(NULL)), "vf_wipe_random zeroises the private DRBG");
	CHECK(zeroised(RAND_get0_public(NULL)), "vf_wipe_random zeroises the public DRBG");
	CHECK(zeroised(RAND_get0_primary(NULL)), "vf_wipe_random zeroises the primary DRBG");
	uint8_t b[32] = {0};
	CHECK_OK(vf_random(b, sizeof(b), &err), err, "vf_random after the wipe");
	CHECK(memcmp(a, b, sizeof(a)) != 0 && !zeroised(RAND_get0_private(NULL)),
	      "a draw after the wipe instantiates the generator again");
}

static void digests(void)
{
	struct vf_error err;
	uint8_t out[64];
	struct vf_iov abc = {"abc", 3};
	CHECK(vf_sha256("abc", 3, out, &err) == VF_OK &&
		      same(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 32),
	      "SHA-256(abc)");
	struct vf_sha512 *h = NULL;
	CHECK(vf_sha512_new(&h, &err) == VF_OK && vf_sha512_update(h, "abc", 3, &err) == VF_OK &&
		      vf_sha512_final(h, out, &err) == VF_OK &&
		      same(out,
			   "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
			   "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
			   64),
	      "SHA-512(abc)");
	vf_sha512_free(h);
	CHECK(vf_sha3_256(&abc, 1, out, &err) == VF_OK &&
		      same(out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", 32),
	      "SHA3-256(abc)");
	CHECK(vf_sha3_512(&abc, 1, out, &err) == VF_OK &&
		      same(out,
			   "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
			   "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
			   64),
	      "SHA3-512(abc)");
	CHECK(vf_shake128(&abc, 1, out, 32, &err) == VF_OK &&
		      same(out, "5881092dd818bf5cf8a3ddb793fbcba74097d5c526a6d35f97b83351940f2cc8", 32),
	      "SHAKE128(abc), 32 bytes");
	CHECK(vf_shake256(&abc, 1, out, 32, &err) == VF_OK &&
		      same(out, "483366601360a8771c6863080cc4114d8db44530f8f1e1ee4f94ea37e78b5739", 32),
	      "SHAKE256(abc), 32 bytes");
}

static void macs_and_kdfs(void)
{
	struct vf_error err;
	uint8_t key[22], salt[13], info[10], out[42];
	memset(key, 0x0b, sizeof(key));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	CHECK(vf_hmac_sha256(key, 20, "Hi There", 8, out, &err) == VF_OK &&
		      same(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32),
	      "HMAC-SHA-256, RFC 4231 case 1");
	CHECK(vf_hkdf_sha256(key, sizeof(key), salt, sizeof(salt), info, sizeof(info), out, 42,
			     &err) == VF_OK &&
		      same(out,
			   "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
			   "34007208d5b887185865",
			   42),
	      "HKDF-SHA-256, RFC 5869 case 1");
	CHECK(vf_scrypt((const uint8_t *)"password", 8, (const uint8_t *)"NaCl", 4, 10, out, 32,
			&err) == VF_OK &&
		      same(out, "27b418c674c769d12501fbb1f53bac32df6514c0f28d043872b148b348961a79", 32),
	      "scrypt(password, NaCl, N=1024, r=8, p=1)");
}

static void x25519(void)
{
	struct vf_error err;
	uint8_t alice[32], bob_pub[32], shared[32], pub[32], share[32], again[32];
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", alice, 32);
	unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bob_pub, 32);
	CHECK(vf_x25519_public(alice, pub, &err) == VF_OK &&
		      same(pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", 32),
	      "X25519 public key, RFC 7748 6.1");
	CHECK(vf_x25519(alice, bob_pub, shared, &err) == VF_OK &&
		      same(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", 32),
	      "X25519 shared secret, RFC 7748 6.1");
	CHECK_OK(vf_x25519_ephemeral(pub, share, shared, &err), err, "X25519 ephemeral exchange");
	CHECK(vf_x25519(alice, share, again, &err) == VF_OK && !memcmp(again, shared, 32),
	      "the ephemeral share opens to the same secret with the kept key");
	uint8_t share2[32], shared2[32];
	CHECK(vf_x25519_ephemeral(pub, share2, shared2, &err) == VF_OK &&
		      memcmp(share, share2, 32) != 0,
	      "two ephemeral keys differ");
}

static void aeads(void)
{
	struct vf_error err;
	uint8_t key[32], nonce[32], ct[12], tag[16], back[12];
	memset(key, 7, sizeof(key));
	memset(nonce, 9, sizeof(nonce));
	CHECK(vf_aead_seal(key, nonce, 12, NULL, 0, (const uint8_t *)"hello world!", 12, ct, tag,
			   &err) == VF_OK &&
		      vf_aead_open(key, nonce, 12, NULL, 0, ct, 12, tag, back, &err) == VF_OK &&
		      !memcmp(back, "hello world!", 12),
	      "ChaCha20-Poly1305 round trip");
	tag[0] ^= 1;
	CHECK(vf_aead_open(key, nonce, 12, NULL, 0, ct, 12, tag, back, &err) == VF_E_AUTH,
	      "ChaCha20-Poly1305 refuses a changed tag");
	CHECK(vf_aes256gcm_seal(key, nonce, 32, NULL, 0, (const uint8_t *)"hello world!", 12, ct,
				tag, &err) == VF_OK &&
		      vf_aes256gcm_open(key, nonce, 32, NULL, 0, ct, 12, tag, back, &err) == VF_OK &&
		      !memcmp(back, "hello world!", 12),
	      "AES-256-GCM round trip (32-byte nonce)");
	tag[0] ^= 1;
	CHECK(vf_aes256gcm_open(key, nonce, 32, NULL, 0, ct, 12, tag, back, &err) == VF_E_AUTH,
	      "AES-256-GCM refuses a changed tag");
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "unit_provider: cannot initialise the library\n");
		return 2;
	}
	only_the_subset();
	more_on_demand();
	inner_fetches();
	random_generator();
	random_wiped();
	digests();
	macs_and_kdfs();
	x25519();
	aeads();
	return unit_done();
}
