#!/usr/bin/env bash
# sizes_bench.sh - varseal against age from one byte to tens of MiB: the
# sizes between small_bench.sh's 12-byte secret and stream_bench.sh's 1 GiB,
# where neither the start-up nor the throughput alone decides, and where
# the stream's buffers (how many, how large, every page touched once) do.
#
# For each size, `varseal encrypt` / `age -e` of a random file of that
# size to /dev/null, and `varseal decrypt` / `age -d` of that file's
# ciphertext; then both again from a pipe (`sh -c 'cat FILE | TOOL ...'`,
# which a regular file's known size does not help: the shell and cat cost
# both tools alike). Taking turns (first one tool, then the other,
# swapped every round). Each run is timed by spawn_timer (posix_spawn to
# waitpid); the report gives the medians, p10..p90 and varseal's time
# over age's.
#
# No target: this is the shape of the curve, to be read beside the other
# two benchmarks. A ratio above 1 (varseal slower than age) is marked.
#
# Environment:
#   VARSEAL      varseal binary (default: ../build/seal/varseal)
#   AGE          age binary (default: age)
#   SPAWN_TIMER  bench/spawn_timer (default: ../build/bench/spawn_timer)
#   SIZES        sizes in bytes, with K and M suffixes (KiB, MiB)
#                (default: "12 65535 65536 65537 256K 1M 2M 8M 32M")
#   N            rounds per size (default: 20)
set -euo pipefail
export LC_ALL=C

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=sizes_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
VARSEAL=${VARSEAL:-$script_dir/../build/seal/varseal}
AGE=${AGE:-age}
SPAWN_TIMER=${SPAWN_TIMER:-$script_dir/../build/bench/spawn_timer}
SIZES=${SIZES:-12 65535 65536 65537 256K 1M 2M 8M 32M}
N=${N:-20}

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[[ -x $VARSEAL ]] || die "varseal not found at $VARSEAL (build it, or set VARSEAL)"
[[ -x $SPAWN_TIMER ]] || die "spawn_timer not found at $SPAWN_TIMER (build the bench targets)"
command -v "$AGE" > /dev/null || die "'$AGE' not found"

bytes_of() { # bytes_of 12|64K|2M -> REPLY
	case $1 in
	*K) REPLY=$((${1%K} * 1024)) ;;
	*M) REPLY=$((${1%M} * 1024 * 1024)) ;;
	*) REPLY=$1 ;;
	esac
	[[ $REPLY =~ ^[1-9][0-9]*$ ]] || die "not a size: '$1'"
}

work_dir "${TMPDIR:-/tmp}"
cd "$REPLY"
"$VARSEAL" keygen -o key 2> /dev/null
recipient=$("$VARSEAL" pubkey key)

# The file ($1) through a pipe into the tool and its arguments (the rest).
# shellcheck disable=SC2016 # expanded by that sh, not this one
piped='f=$1; shift; cat -- "$f" | "$@"'
declare -A SAMPLES
once() { # once KEY COMMAND...
	local key=$1 us
	shift
	us=$("$SPAWN_TIMER" "$@") || die "$key failed: $*"
	SAMPLES[$key]+="$us "
}
stats() { # stats KEY -> REPLY="median p10 p90" in ms
	REPLY=$(tr ' ' '\n' <<< "${SAMPLES[$1]}" | sort -g | awk 'NF { v[++n] = $1 } END {
		printf "%.2f %.2f %.2f", v[int((n + 1) / 2)] / 1000,
			v[int(n / 10) + 1] / 1000, v[int(n * 9 / 10) + (n < 10)] / 1000 }')
}

for size in $SIZES; do
	bytes_of "$size"
	n=$REPLY
	head -c "$n" /dev/urandom > "plain.$size"
	"$VARSEAL" encrypt -r "$recipient" -o "ct.$size" "plain.$size"
	cmp -s <("$AGE" -d -i key "ct.$size") "plain.$size" ||
		die "age does not open varseal's ciphertext of $size"
	cat "plain.$size" "ct.$size" > /dev/null
	log "$size ($n bytes): $N rounds"
	for ((r = 0; r < N; r++)); do
		if ((r % 2 == 0)); then
			once "enc varseal $size" "$VARSEAL" encrypt -r "$recipient" "plain.$size"
			once "enc age $size" "$AGE" -r "$recipient" "plain.$size"
			once "dec varseal $size" "$VARSEAL" decrypt -i key "ct.$size"
			once "dec age $size" "$AGE" -d -i key "ct.$size"
			once "penc varseal $size" sh -c "$piped" sh "plain.$size" "$VARSEAL" encrypt -r "$recipient"
			once "penc age $size" sh -c "$piped" sh "plain.$size" "$AGE" -r "$recipient"
			once "pdec varseal $size" sh -c "$piped" sh "ct.$size" "$VARSEAL" decrypt -i key
			once "pdec age $size" sh -c "$piped" sh "ct.$size" "$AGE" -d -i key
		else
			once "pdec age $size" sh -c "$piped" sh "ct.$size" "$AGE" -d -i key
			once "pdec varseal $size" sh -c "$piped" sh "ct.$size" "$VARSEAL" decrypt -i key
			once "penc age $size" sh -c "$piped" sh "plain.$size" "$AGE" -r "$recipient"
			once "penc varseal $size" sh -c "$piped" sh "plain.$size" "$VARSEAL" encrypt -r "$recipient"
			once "dec age $size" "$AGE" -d -i key "ct.$size"
			once "dec varseal $size" "$VARSEAL" decrypt -i key "ct.$size"
			once "enc age $size" "$AGE" -r "$recipient" "plain.$size"
			once "enc varseal $size" "$VARSEAL" encrypt -r "$recipient" "plain.$size"
		fi
	done
	rm -f "plain.$size" "ct.$size"
done

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
echo
echo "varseal against age by size"
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; age %s\n' "$("$VARSEAL" --version)" "$("$AGE" --version)"
printf '  timing      spawn_timer (posix_spawn to waitpid), %d rounds, medians (p10..p90), ms\n' "$N"
echo "  enc|, dec|  the same from a pipe: sh -c 'cat FILE | TOOL ...', the shell and cat included"
echo
declare -A names=([enc]=encrypt [dec]=decrypt [penc]="enc|" [pdec]="dec|")
printf '%-8s %-7s %22s %22s %8s\n' size "" varseal age ratio
for size in $SIZES; do
	for op in enc dec penc pdec; do
		stats "$op varseal $size"
		read -r vm v10 v90 <<< "$REPLY"
		stats "$op age $size"
		read -r am a10 a90 <<< "$REPLY"
		ratio=$(calc 'sprintf("%.2f", v / a)' v="$vm" a="$am")
		mark=""
		(($(calc '(r > 1)' r="$ratio"))) && mark="  slower than age"
		printf '%-8s %-7s %8s (%5s..%5s) %8s (%5s..%5s) %7sx%s\n' "$size" \
			"${names[$op]}" \
			"$vm" "$v10" "$v90" "$am" "$a10" "$a90" "$ratio" "$mark"
	done
done
