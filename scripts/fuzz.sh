#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for
# SECONDS (default 60), seeded with the bodies of the CCTV age vectors (read
# in place from ../shared, decompressed into a temporary corpus), the spec
# loader seeded with the example specs, varinject's command-line
# builders from an empty corpus, its VmConfig JSON scanner seeded with
# fuzz/corpus/vmconfig/, varseal inspect's library half seeded with
# the vectors' bodies too, and the SOPS reader seeded with the SOPS
# fixtures (../shared/testdata/sops: YAML, JSON, dotenv and clan's binary
# files), and the hybrid post-quantum target (the mlkem768x25519 stanza,
# age1pq1 recipients, AGE-SECRET-KEY-PQ-1 identities) seeded with the
# CCTV hybrid vectors' bodies and fuzz/corpus/hybrid/. For each target the
# log shows its executions per second, the new inputs it found and the
# corpus size at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shared=${SHARED_DIR:-$PWD/../shared}

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DVARS_FUZZ=ON -DVARS_WERROR=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_decrypt fuzz_keys fuzz_spec fuzz_cmdline \
	fuzz_vmconfig fuzz_inspect fuzz_sops fuzz_hybrid >/dev/null

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/decrypt" "$corpus/keys" "$corpus/spec" "$corpus/cmdline" "$corpus/vmconfig" \
	"$corpus/inspect" "$corpus/sops" "$corpus/hybrid"
cp examples/*.yaml "$corpus/spec/"
cp fuzz/corpus/vmconfig/* "$corpus/vmconfig/"
# fuzz_hybrid's first byte picks the mode: 1 a recipient, 2 an identity
# file (these seeds), 0 an age file (the vectors', below).
cp fuzz/corpus/hybrid/* "$corpus/hybrid/"
# Each SOPS fixture under a name of its own (clan's are all called secret).
find "$shared/testdata/sops" -type f \( -name 'secret' -o -name '*.enc.*' -o -name '*.yaml' \) |
	while read -r f; do cp "$f" "$corpus/sops/$(echo "${f#"$shared"/}" | tr / _)"; done
python3 - "$shared/testdata/cctv-age" "$corpus" <<'PY'
import os, sys, zlib
src, out = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if not os.path.isfile(path) or name.startswith("README"):
        continue
    data = open(path, "rb").read()
    head, _, body = data.partition(b"\n\n")
    if b"compressed: zlib" in head:
        body = zlib.decompress(body)
    if len(body) < 200000:
        open(os.path.join(out, "decrypt", name), "wb").write(body)
        open(os.path.join(out, "inspect", name), "wb").write(body)
        if "hybrid" in name:
            open(os.path.join(out, "hybrid", name), "wb").write(b"\0" + body)
    for line in head.split(b"\n"):
        if line.startswith(b"identity: "):
            open(os.path.join(out, "keys", name), "wb").write(
                b"# seed\n" + line[10:] + b"\r\n")
PY

for target in fuzz_decrypt fuzz_keys fuzz_spec fuzz_cmdline fuzz_vmconfig fuzz_inspect fuzz_sops \
	fuzz_hybrid; do
	dir=$corpus/${target#fuzz_}
	# The VmConfig scanner prints a line for each input it refuses; its
	# own checks and the sanitizers report on the fuzzer's copy of stderr.
	quiet=()
	[ "$target" = fuzz_vmconfig ] && quiet=(-close_fd_mask=2)
	echo "== $target for ${seconds}s ($(ls "$dir" | wc -l) seeds)"
	build-fuzz/fuzz/$target -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		"${quiet[@]}" -print_final_stats=1 "$dir" 2>&1 |
		grep -E '^(#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|==[0-9]+==|SUMMARY|fuzz_[a-z]+:)' || true
	echo "$target: corpus of $(ls "$dir" | wc -l) inputs at the end"
	# libFuzzer exits non-zero and writes crash-* files on any finding.
	build-fuzz/fuzz/$target -runs=0 "$dir" >/dev/null 2>&1
done
if ls crash-* leak-* timeout-* oom-* >/dev/null 2>&1; then
	echo "fuzz: findings left in $(pwd): $(ls crash-* leak-* timeout-* oom-* 2>/dev/null)"
	exit 1
fi
echo "fuzz: no findings"
