#!/usr/bin/env bash
# Benchmark (not a test): time from start to the hypervisor's exec for 100
# credentials, varinject against a shell runner written the seed's way
# (read $CREDENTIALS_DIRECTORY, build --platform oem_strings=[...], exec),
# measured in the same run. The "hypervisor" is exec_probe, which prints
# the wall clock the moment it runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VARINJECT=${VARINJECT:-$here/../build/inject/varinject}
PROBE=${PROBE:-$here/../build/bench/exec_probe}
N=${N:-100}
RUNS=${RUNS:-50}

work=$(mktemp -d "${TMPDIR:-/tmp}/inject-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
creds=$work/creds
mkdir -p "$creds" "$work/run"
for i in $(seq -w 1 "$N"); do
	head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$creds/host-secret-$i"
done
# The runtime directory must be a RAM file system.
rundir=/dev/shm

# The seed's runner (microvm.nix's cloud-hypervisor runner, patched):
cat >"$work/seed-runner.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
oem=()
for f in "$CREDENTIALS_DIRECTORY"/*; do
	name=$(basename "$f")
	oem+=("io.systemd.credential:${name^^}=$(cat "$f")")
done
IFS=,
exec "$PROBE" --platform "oem_strings=[${oem[*]}]"
SH
chmod +x "$work/seed-runner.sh"

now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }

# Prints the start-to-exec latency in microseconds of one run of "$@".
one() {
	local start out
	start=$(now_ns)
	out=$("$@")
	echo $(( (${out%% *} - start) / 1000 ))
}

measure() {
	local label=$1
	shift
	local samples=()
	for _ in $(seq "$RUNS"); do samples+=("$(one "$@")"); done
	printf '%s\n' "${samples[@]}" | sort -n | awk -v label="$label" '
		{ v[NR] = $1 }
		END { printf "%-34s median %7.2f ms   p90 %7.2f ms   min %7.2f ms\n",
		      label, v[int(NR/2)+1]/1000, v[int(NR*0.9)]/1000, v[1]/1000 }'
}

export CREDENTIALS_DIRECTORY=$creds PROBE
# Warm the page cache and check both deliver all N strings.
"$work/seed-runner.sh" >/dev/null
"$VARINJECT" --from-credentials-dir --hypervisor cloud-hypervisor --argv \
	--credentials-dir "$rundir" -- "$PROBE" >/dev/null 2>&1

echo "launch latency: start to the hypervisor's exec, $N credentials, $RUNS runs each"
measure "seed shell runner (argv)" "$work/seed-runner.sh"
measure "varinject --argv (cloud-hypervisor)" \
	"$VARINJECT" --from-credentials-dir --hypervisor cloud-hypervisor --argv \
	--credentials-dir "$rundir" -- "$PROBE" 2>/dev/null
measure "varinject (QEMU -smbios files)" \
	"$VARINJECT" --from-credentials-dir --hypervisor qemu \
	--credentials-dir "$rundir" -- "$PROBE"
echo "target: varinject under 10 ms and faster than the shell runner"
