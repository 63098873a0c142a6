#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds, and runs the main job: for now a
# varseal round trip that the real age binary checks both ways.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
varseal=$PWD/build/seal/varseal

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n$ %s\n' "$*"; "$@"; }

step "$varseal" keygen -o machine.key
recipient=$("$varseal" pubkey machine.key)
printf 'api-key-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >secret.txt
step "$varseal" encrypt -a -r "$recipient" -o secret.age secret.txt
head -3 secret.age
echo "..."
echo
echo "age decrypts what varseal wrote:"
age -d -i machine.key secret.age | cmp - secret.txt && echo "  identical"
echo "varseal decrypts what age wrote:"
age -r "$recipient" secret.txt >by-age.age
"$varseal" decrypt -i machine.key by-age.age | cmp - secret.txt && echo "  identical"
echo
echo "demo: varseal and age agree both ways"
