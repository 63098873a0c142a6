#!/usr/bin/env bash
# The whole test suite, twice: a normal hardened build and an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Installs its own
# dependencies first. Exit status non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

run_suite() {
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)"
	(cd "$dir" && ctest --output-on-failure -j"$(nproc)")
}

echo "== plain build (warnings as errors, FORTIFY, RELRO) =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== ASan + UBSan build =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DVARS_SANITIZE=ON
echo "== fuzzing (libFuzzer + ASan + UBSan, ${FUZZ_SECONDS:-60}s per target) =="
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
