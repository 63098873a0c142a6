#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds, and runs the main job: the seed's
# scenario (examples/vars.yaml) through vargen and varseal, checked by the
# real age binary. (varinject's QEMU step joins when it lands.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
varseal=$PWD/build/seal/varseal
vargen=$PWD/build/gen/vargen

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/vars.yaml "$work/"
cd "$work"

step() { printf '\n$ %s\n' "$*"; "$@"; }

# The example names a placeholder admin: make a real one and use it.
"$varseal" keygen -o admin.key 2>/dev/null
sed -i "s|^  alice: age1.*|  alice: $("$varseal" pubkey admin.key)|" vars.yaml

printf '\n$ vargen check      # nothing generated yet, test-vm has no key\n'
"$vargen" check || true
printf '\n$ varseal machine keygen test-vm\n'
"$varseal" machine keygen test-vm
printf '\n$ vargen generate\n'
"$vargen" generate
printf '\n$ vargen generate   # idempotent\n'
"$vargen" generate
printf '\n$ vargen list\n'
"$vargen" list
printf '\n$ vargen check\n'
"$vargen" check

"$varseal" machine key test-vm -i admin.key >machine.key
echo
echo "Each secret opens with the real age and the machine's key (digests, never values):"
for secret in vars/per-machine/test-vm/test-vm-secrets/*/secret; do
	name=$(basename "$(dirname "$secret")")
	value=$(age -d -i machine.key "$secret")
	printf '  %-12s %3d bytes  sha256 %s\n' "$name" "${#value}" \
		"$(printf %s "$value" | sha256sum | cut -c1-16)"
done
echo
echo "demo: the seed's secrets are generated, sealed to test-vm and alice, and check passes"
