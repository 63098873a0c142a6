#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds, and runs the main job: the seed's
# scenario (examples/vars.yaml) through vargen and varseal, then varinject
# into a QEMU guest (Debian 12, systemd 252) whose unit receives the
# credentials with LoadCredential=api-key:HOST-API-KEY and reports their
# digests. Values are never printed, only names and digests.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
varseal=$PWD/build/seal/varseal
vargen=$PWD/build/gen/vargen
varinject=$PWD/build/inject/varinject

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/vars.yaml "$work/"
cd "$work"

step() { printf '\n$ %s\n' "$*"; "$@"; }

# The example names a placeholder admin: make a real one and use it.
"$varseal" keygen -o admin.key 2>/dev/null
sed -i "s|^  alice: age1.*|  alice: $("$varseal" pubkey admin.key)|" vars.yaml

printf '\n$ varseal machine keygen test-vm\n'
"$varseal" machine keygen test-vm
printf '\n$ vargen generate --plan   # what generate would do; writes nothing\n'
"$vargen" generate --plan || true
printf '\n$ vargen generate\n'
"$vargen" generate
printf '\n$ vargen generate   # idempotent\n'
"$vargen" generate
printf '\n$ vargen list\n'
"$vargen" list
printf '\n$ vargen check\n'
"$vargen" check

"$varseal" machine key test-vm -i admin.key -o machine.key   # mode 0600
echo
echo "Each secret opens with the real age and the machine's key (digests, never values):"
declare -A host
for secret in vars/per-machine/test-vm/test-vm-secrets/*/secret; do
	name=$(basename "$(dirname "$secret")")
	host[$name]=$(age -d -i machine.key "$secret" | sha256sum | cut -d' ' -f1)
	printf '  %-12s sha256 %s\n' "$name" "${host[$name]:0:16}"
done

echo
echo "Building the Debian 12 guest (debootstrap, about a minute the first time; cached)..."
eval "$(GUEST_CACHE=$top/.cache/guest "$top/tests/guest/build-systemd-guest.sh" | grep '^GUEST_')"
rundir=${XDG_RUNTIME_DIR:-/dev/shm}
printf '\n$ varinject --machine test-vm -i machine.key -- qemu-system-x86_64 ... (TCG, ~20 s)\n'
"$varinject" --machine test-vm -i machine.key --credentials-dir "$rundir" \
	--oem-string io.example.environment=demo \
	-- qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -nographic -no-reboot \
	-kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" -append "console=ttyS0 quiet" \
	</dev/null >serial.log 2>&1 || true

echo
echo "In the guest, systemd handed report-credentials.service (LoadCredential=api-key:HOST-API-KEY ...):"
ok=0
for name in api-key db-password jwt-secret; do
	line=$(tr -d '\r' <serial.log | grep -a "^CRED $name " | head -n 1 || true)
	digest=$(echo "$line" | cut -d' ' -f3)
	if [ -n "$digest" ] && [ "$digest" = "${host[$name]}" ]; then
		printf '  %-12s arrived, sha256 %s matches the host\n' "$name" "${digest:0:16}"
		ok=$((ok + 1))
	else
		printf '  %-12s MISSING or different (guest said: %s)\n' "$name" "${line:-nothing}"
	fi
done
echo
if [ "$ok" -eq 3 ]; then
	echo "demo: the seed's secrets went from vargen through varseal and varinject into the guest's systemd"
else
	echo "demo: FAILED, serial console:"
	tr -d '\r' <serial.log | grep -a -E 'CRED|GUEST|Failed' | head -20
	exit 1
fi
