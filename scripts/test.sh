#!/usr/bin/env bash
# The whole test suite, twice: a normal hardened build and an
# AddressSanitizer + UndefinedBehaviorSanitizer build; then two more
# builds that only compile and run the quick tests: Release (-O3, what
# packagers build) and clang. Every build treats warnings as errors
# (VARS_WERROR) and must print none at all (a linker warning is not an
# error otherwise). Installs its own dependencies first. Exit status
# non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

# The tests that take seconds: the unit programs, the spec parser, the
# test vectors (pq-ct: the constant-time check, at each build's
# optimisation), the layering and --version.
quick_tests='^(unit-.*|spec|tree|ramdir|cctv-vectors|wycheproof|pq|pq-ct|layering|version|hardening)$'

# Configures and builds DIR with the given cmake arguments, warnings as
# errors; fails if the build printed any warning.
build() {
	local dir=$1
	shift
	local log=$dir/build.log start=$SECONDS
	cmake -S . -B "$dir" -DVARS_WERROR=ON "$@" >/dev/null
	if ! cmake --build "$dir" -j"$(nproc)" >"$log" 2>&1; then
		cat "$log"
		return 1
	fi
	local warnings
	warnings=$(grep -c -i 'warning:' "$log" || true)
	echo "$dir: built in $((SECONDS - start)) s, $warnings warnings"
	if [ "$warnings" -ne 0 ]; then
		grep -i -A3 'warning:' "$log"
		return 1
	fi
}

run_suite() {
	local dir=$1
	shift
	build "$dir" "$@"
	(cd "$dir" && ctest --output-on-failure -j"$(nproc)")
}

run_quick() {
	local dir=$1
	shift
	build "$dir" "$@"
	(cd "$dir" && ctest --output-on-failure -j"$(nproc)" -R "$quick_tests")
}

echo "== plain build (RelWithDebInfo, GCC; warnings as errors, FORTIFY, RELRO) =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== ASan + UBSan build (Debug, GCC) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DVARS_SANITIZE=ON
echo "== Release build (-O3, GCC): compiles warning-free, quick tests =="
run_quick build-release -DCMAKE_BUILD_TYPE=Release
echo "== clang build (RelWithDebInfo): compiles warning-free, quick tests =="
run_quick build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang
echo "== Debian package: built, installed, the README's example run with it, man pages rendered =="
scripts/deb-check.sh
echo "== fuzzing (libFuzzer + ASan + UBSan, ${FUZZ_SECONDS:-60}s per target) =="
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
