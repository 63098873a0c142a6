/* The floor for a short run of the tools (bench/small_bench.sh): a program
 * linked like them (PIE, -z relro -z now, libcrypto, libsodium and libyaml)
 * that touches one symbol of each library, so that the dynamic loader maps
 * and relocates all three, and exits. What a tool spends beyond this is
 * its own. */
#include <stdio.h>

#include <openssl/crypto.h>
#include <sodium.h>
#include <yaml.h>

int main(void)
{
	const char *yaml = yaml_get_version_string();
	return (OPENSSL_version_major() == 0) + (sodium_library_version_major() == 0) +
	       (yaml == NULL);
}
