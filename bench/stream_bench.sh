#!/usr/bin/env bash
# stream_bench.sh - throughput and memory benchmark of varseal's payload
# stream against age and against the machine's floor, measured in the same
# run: OpenSSL's raw ChaCha20-Poly1305 speed on one core (openssl speed),
# and the time to read each direction's input from the page cache (the
# plaintext for encrypt, varseal's ciphertext for decrypt). The floor is
# the least time the work could take on this machine with every core busy:
#
#   floor = max(read, (read + bytes / per-core AEAD speed) / cores)
#
# (the read overlapped with the AEAD, both shared over the cores). Each
# direction has its own: two files of the same size can read at speeds
# 10-20% apart (how they were written, where their pages lie), and a
# decrypt never reads the plaintext.
#
# Beside it, for information (no target): the format's floor, from
# format_floor (bench/format_floor.c): the age payload's own work, each
# 64 KiB chunk read and sealed or opened with its own nonce and tag, on
# one thread with nothing else, divided over the cores. What varseal
# loses against it is its own (threads, ordering, writing, start-up);
# what the format's floor loses against the floor above is the format's
# and the machine's (a start and a finish of the AEAD per chunk, data
# read from the page cache just before it is sealed).
#
# This is a benchmark, not a test: it exits 0 whether or not the targets
# are met, and non-zero only if a command fails or a decryption does not
# give back the plaintext.
#
# Environment:
#   VARSEAL   varseal binary   (default: ../build/seal/varseal next to this script)
#   AGE       age binary       (default: age)
#   OPENSSL   openssl binary   (default: openssl)
#   SIZE_MB   plaintext size in MiB (default: 1024, i.e. 1 GiB)
#   RUNS      runs per measurement, the best one counts (default: 3)
#   FORMAT_FLOOR  format_floor binary (default: ../build/bench/format_floor;
#             skipped if not built)
#
# Throughput is reported in MB/s with MB = 10^6 bytes. Peak RSS comes
# from GNU time (/usr/bin/time, Debian package 'time').
set -euo pipefail
export LC_ALL=C # '.' as the decimal point, in EPOCHREALTIME and in awk

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=stream_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
VARSEAL=${VARSEAL:-$script_dir/../build/seal/varseal}
AGE=${AGE:-age}
OPENSSL=${OPENSSL:-openssl}
SIZE_MB=${SIZE_MB:-1024}
FORMAT_FLOOR=${FORMAT_FLOOR:-$script_dir/../build/bench/format_floor}
RUNS=${RUNS:-3}
GNU_TIME=${GNU_TIME:-/usr/bin/time} # overridable only to test the fallback

# Targets.
TARGET_AGE_RATIO=3       # varseal >= 3x age, both directions
TARGET_FLOOR_PCT=85      # varseal >= 85% of the floor's speed (see above)
# Constant memory: the peak RSS for SIZE_MB over that for BASE_MB (16 MiB,
# or SIZE_MB if less: from 8 MiB a file is read out of order, so the whole
# pipeline is set up there: the ring, the threads' buffers, the workers,
# OpenSSL) < 4 MiB. The empty input is shown too: one chunk's buffers on
# the scratch stack and no workers, so its RSS is lower by all of that.
TARGET_RSS_GROWTH_KIB=4096

[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "SIZE_MB must be a positive integer (MiB), got '$SIZE_MB'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ -x $VARSEAL ]] || die "varseal not found at $VARSEAL (build it, or set VARSEAL)"
for tool in "$AGE" "$OPENSSL" awk sha256sum head cat dd tail sync wc getconf nproc; do
	command -v "$tool" > /dev/null || die "'$tool' not found"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stream_bench.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

have_time=0
if [[ -x $GNU_TIME ]] && "$GNU_TIME" -f %M -o "$tmp/time.out" true > "$tmp/time.err" 2>&1; then
	have_time=1
else
	echo "note: GNU time ($GNU_TIME) is missing: install the 'time' package to measure peak RSS." >&2
	echo "note: RSS figures are reported as n/a and the RSS target is skipped." >&2
fi

# measure KEY COMMAND [ARGS...]
# Runs COMMAND RUNS times with stdout to /dev/null. Records the best wall
# time in T[KEY], the CPU time (user+sys) of that run in CPU[KEY] and the
# largest peak RSS (KiB) over all runs in RSS[KEY].
declare -A T CPU RSS
measure() {
	local key=$1
	shift
	local best="" best_cpu="n/a" peak="n/a" i t0 t1 dt rss user sys
	for ((i = 1; i <= RUNS; i++)); do
		if ((have_time)); then
			now; t0=$REPLY
			"$GNU_TIME" -f '%M %U %S' -o "$tmp/time.out" "$@" > /dev/null
			now; t1=$REPLY
			read -r rss user sys < <(tail -n 1 "$tmp/time.out")
		else
			now; t0=$REPLY
			"$@" > /dev/null
			now; t1=$REPLY
			rss="n/a" user="" sys=""
		fi
		dt=$(calc 'sprintf("%.6f", b - a)' a="$t0" b="$t1")
		log "$(printf '%-16s run %d/%d: %8.3f s  rss %s KiB' "$key" "$i" "$RUNS" "$dt" "$rss")"
		if [[ -z $best ]] || (($(calc '(d < b)' d="$dt" b="$best"))); then
			best=$dt
			[[ -n $user ]] && best_cpu=$(calc 'sprintf("%.2f", u + s)' u="$user" s="$sys")
		fi
		if [[ $rss != "n/a" ]] && { [[ $peak == "n/a" ]] || ((rss > peak)); }; then
			peak=$rss
		fi
	done
	T[$key]=$best
	CPU[$key]=$best_cpu
	RSS[$key]=$peak
}

# ---------------------------------------------------------------- setup
bytes=$((SIZE_MB * 1024 * 1024))
plain=$tmp/plain
log "making a $SIZE_MB MiB random plaintext in $tmp"
# In 1 MiB writes: the kernel caches a file in folios no larger than the
# writes that made it, and reading back one written 4 KiB at a time (as
# `head -c` writes) costs every reader, age and the floor's dd alike, a
# third more copying than one written by cp or in large blocks (1 GiB
# with pread of 64 KiB: 0.20 s against 0.15 s on kernel 6.18).
dd if=/dev/urandom of="$plain" bs=1M count="$SIZE_MB" iflag=fullblock status=none
: > "$tmp/empty"
BASE_MB=$((SIZE_MB < 16 ? SIZE_MB : 16))
head -c $((BASE_MB * 1024 * 1024)) "$plain" > "$tmp/one"
plain_sha=$(sha256sum < "$plain" | awk '{print $1}') # also pulls it into the page cache
cat "$plain" > /dev/null

"$VARSEAL" keygen -o "$tmp/key" 2> "$tmp/keygen.err" ||
	die "varseal keygen failed: $(cat "$tmp/keygen.err")"
recipient=$("$VARSEAL" pubkey "$tmp/key")
[[ $recipient == age1* ]] || die "unexpected recipient from varseal pubkey: '$recipient'"

log "making one ciphertext per tool"
"$VARSEAL" encrypt -r "$recipient" -o "$tmp/ct.varseal" "$plain"
"$AGE" -r "$recipient" -o "$tmp/ct.age" "$plain"
"$VARSEAL" encrypt -r "$recipient" -o "$tmp/ct-empty.varseal" "$tmp/empty"
"$VARSEAL" encrypt -r "$recipient" -o "$tmp/ct-one.varseal" "$tmp/one"
# Flush the new files to disk now: background writeback of gigabytes of
# dirty pages during the timed runs makes them noisy. Then make sure all
# of it is in the page cache.
sync "$plain" "$tmp/ct.varseal" "$tmp/ct.age" "$tmp/ct-empty.varseal"
cat "$plain" "$tmp/ct.varseal" "$tmp/ct.age" "$tmp/ct-empty.varseal" > /dev/null

# ---------------------------------------------------------- correctness
log "checking that each tool decrypts its ciphertext back to the plaintext"
vs_sha=$("$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct.varseal" | sha256sum | awk '{print $1}')
[[ $vs_sha == "$plain_sha" ]] || die "varseal decrypt output differs from the plaintext"
age_sha=$("$AGE" -d -i "$tmp/key" "$tmp/ct.age" | sha256sum | awk '{print $1}')
[[ $age_sha == "$plain_sha" ]] || die "age decrypt output differs from the plaintext"
empty_len=$("$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct-empty.varseal" | wc -c)
[[ $empty_len -eq 0 ]] || die "varseal decrypt of the empty-input ciphertext gave $empty_len bytes"

# ---------------------------------------------------------- measurements
measure "varseal encrypt" "$VARSEAL" encrypt -r "$recipient" "$plain"
measure "age encrypt" "$AGE" -r "$recipient" "$plain"
measure "varseal decrypt" "$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct.varseal"
measure "age decrypt" "$AGE" -d -i "$tmp/key" "$tmp/ct.age"
measure "page-cache read" dd if="$plain" of=/dev/null bs=1M status=none
measure "ciphertext read" dd if="$tmp/ct.varseal" of=/dev/null bs=1M status=none
if [[ -x $FORMAT_FLOOR ]]; then
	measure "format encrypt" "$FORMAT_FLOOR" encrypt "$plain"
	measure "format decrypt" "$FORMAT_FLOOR" decrypt "$tmp/ct.varseal"
fi
measure "varseal enc 0B" "$VARSEAL" encrypt -r "$recipient" "$tmp/empty"
measure "varseal dec 0B" "$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct-empty.varseal"
measure "varseal enc base" "$VARSEAL" encrypt -r "$recipient" "$tmp/one"
measure "varseal dec base" "$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct-one.varseal"

log "measuring the ceiling: $OPENSSL speed -evp chacha20-poly1305 -bytes 65536 -seconds 3"
speed_out=$("$OPENSSL" speed -evp chacha20-poly1305 -bytes 65536 -seconds 3 2> "$tmp/speed.err")
ceiling_k=$(awk 'tolower($1) == "chacha20-poly1305" && $NF ~ /^[0-9.]+k$/ {
	v = $NF; sub(/k$/, "", v) } END { print v }' <<< "$speed_out")
[[ -n $ceiling_k ]] || die "could not parse the 65536-byte column of openssl speed: $speed_out"
ceiling=$(calc 'sprintf("%.1f", k / 1000)' k="$ceiling_k") # 1000s of bytes/s -> MB/s
cores=$(nproc) # the CPUs this process may run on
floor_of() { # floor_of READ_SECONDS -> seconds
	calc 'sprintf("%.6f", (r > (r + n / (c * 1e6)) / k) ? r : (r + n / (c * 1e6)) / k)' \
		r="$1" n="$bytes" c="$ceiling" k="$cores"
}
floor_enc_s=$(floor_of "${T[page-cache read]}")
floor_dec_s=$(floor_of "${T[ciphertext read]}")
floor_enc=$(calc 'sprintf("%.1f", n / 1e6 / f)' n="$bytes" f="$floor_enc_s")
floor_dec=$(calc 'sprintf("%.1f", n / 1e6 / f)' n="$bytes" f="$floor_dec_s")

# --------------------------------------------------------------- report
mbps() { calc 'sprintf("%.1f", n / 1e6 / t)' n="$bytes" t="${T[$1]}"; }
declare -A M
for k in "varseal encrypt" "age encrypt" "varseal decrypt" "age decrypt" "page-cache read" \
	"ciphertext read"; do
	M[$k]=$(mbps "$k")
done
ratio() { calc 'sprintf("%.2f", a / b)' a="$1" b="$2"; }
enc_vs_age=$(ratio "${M[varseal encrypt]}" "${M[age encrypt]}")
dec_vs_age=$(ratio "${M[varseal decrypt]}" "${M[age decrypt]}")
enc_vs_floor=$(calc 'sprintf("%.0f", 100 * a / b)' a="${M[varseal encrypt]}" b="$floor_enc")
dec_vs_floor=$(calc 'sprintf("%.0f", 100 * a / b)' a="${M[varseal decrypt]}" b="$floor_dec")

growth() { # growth KEY BASELINE_KEY -> KiB, or n/a
	if [[ ${RSS[$1]} == "n/a" || ${RSS[$2]} == "n/a" ]]; then echo "n/a"; else echo $((RSS[$1] - RSS[$2])); fi
}
enc_growth=$(growth "varseal encrypt" "varseal enc base")
dec_growth=$(growth "varseal decrypt" "varseal dec base")
enc_growth0=$(growth "varseal encrypt" "varseal enc 0B")
dec_growth0=$(growth "varseal decrypt" "varseal dec 0B")

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)

echo
echo "varseal stream benchmark"
printf '  plaintext   %d bytes (%d MiB, random), in the page cache\n' "$bytes" "$SIZE_MB"
printf '  runs        best of %d, wall time; output to /dev/null\n' "$RUNS"
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; age %s; %s\n' "$("$VARSEAL" --version)" "$("$AGE" --version)" \
	"$("$OPENSSL" version | awk '{print $1, $2}')"
echo
printf '%-17s %9s %9s %9s %10s %8s %13s\n' "" "MB/s" "vs age" "vs floor" "wall s" "cpu s" "peak RSS KiB"
row() { # row KEY VS_AGE VS_CEIL
	printf '%-17s %9s %9s %9s %10s %8s %13s\n' "$1" "${M[$1]}" "$2" "$3" \
		"$(calc 'sprintf("%.3f", t)' t="${T[$1]}")" "${CPU[$1]}" "${RSS[$1]}"
}
row "varseal encrypt" "${enc_vs_age}x" "${enc_vs_floor}%"
row "age encrypt" "" ""
row "varseal decrypt" "${dec_vs_age}x" "${dec_vs_floor}%"
row "age decrypt" "" ""
printf '%-17s %9s %9s %9s %10s\n' "floor, encrypt" "$floor_enc" "" "100%" \
	"$(calc 'sprintf("%.3f", f)' f="$floor_enc_s")"
printf '%-17s %9s %9s %9s %10s\n' "floor, decrypt" "$floor_dec" "" "100%" \
	"$(calc 'sprintf("%.3f", f)' f="$floor_dec_s")"
printf '%-17s %9s %9s %9s %10s\n' "  AEAD, one core" "$ceiling" "" "" \
	"$(calc 'sprintf("%.3f", n / 1e6 / c)' n="$bytes" c="$ceiling")"
row "page-cache read" "" ""
row "ciphertext read" "" ""
echo "  AEAD    = openssl speed -evp chacha20-poly1305, 64 KiB buffers, one core"
echo "  read    = dd bs=1M of the plaintext (encrypt's input) to /dev/null, from the page cache"
echo "  ct read = the same of varseal's ciphertext (decrypt's input)"
echo "  floor   = max(read, (read + AEAD on one core) / $cores cores): every core busy;"
echo "            encrypt's with the plaintext's read, decrypt's with the ciphertext's"
echo "  cpu s   = user + sys CPU time of the best run (> wall s means several threads)"
if [[ -n ${T[format encrypt]:-} ]]; then
	echo
	printf '%-17s %9s %9s %9s %10s %8s\n' "the format's floor" "MB/s" "varseal" "" "wall s" "cpu s"
	for dir in encrypt decrypt; do
		read_key="page-cache read"
		[[ $dir == decrypt ]] && read_key="ciphertext read"
		one=${T[format $dir]}
		f=$(calc 'sprintf("%.6f", (r > t / k) ? r : t / k)' r="${T[$read_key]}" t="$one" k="$cores")
		fm=$(calc 'sprintf("%.1f", n / 1e6 / f)' n="$bytes" f="$f")
		pct=$(calc 'sprintf("%.0f%%", 100 * v / m)' v="${M[varseal $dir]}" m="$fm")
		printf '%-17s %9s %9s %9s %10s %8s\n' "  $dir, one core" \
			"$(calc 'sprintf("%.1f", n / 1e6 / t)' n="$bytes" t="$one")" "" "" \
			"$(calc 'sprintf("%.3f", t)' t="$one")" "${CPU[format $dir]}"
		printf '%-17s %9s %9s %9s %10s\n' "  $dir, floor" "$fm" "$pct" "" \
			"$(calc 'sprintf("%.3f", f)' f="$f")"
	done
	echo "  one core = format_floor: each 64 KiB chunk read (4 to a pread) and sealed or"
	echo "             opened with its own nonce and tag, one thread, nothing written"
	echo "  floor    = max(read, one core / $cores cores); varseal = its speed as a share of it"
	echo "             (information, no target)"
fi
echo
printf 'varseal peak RSS  empty input: encrypt %s KiB, decrypt %s KiB (one chunk, no workers)\n' \
	"${RSS[varseal enc 0B]}" "${RSS[varseal dec 0B]}"
printf '                  %d MiB input: encrypt %s KiB, decrypt %s KiB (all set up)\n' \
	"$BASE_MB" "${RSS[varseal enc base]}" "${RSS[varseal dec base]}"
printf '                  growth for %d MiB over empty: encrypt %s KiB, decrypt %s KiB\n' \
	"$SIZE_MB" "$enc_growth0" "$dec_growth0"
printf '                  growth for %d MiB over %d MiB: encrypt %s KiB, decrypt %s KiB\n' \
	"$SIZE_MB" "$BASE_MB" "$enc_growth" "$dec_growth"
echo
echo "targets"
verdict "$(calc '(r >= t)' r="$enc_vs_age" t="$TARGET_AGE_RATIO")" \
	"encrypt: varseal >= ${TARGET_AGE_RATIO}x age            (${enc_vs_age}x)"
verdict "$(calc '(r >= t)' r="$dec_vs_age" t="$TARGET_AGE_RATIO")" \
	"decrypt: varseal >= ${TARGET_AGE_RATIO}x age            (${dec_vs_age}x)"
verdict "$(calc '(100 * a >= t * c)' a="${M[varseal encrypt]}" c="$floor_enc" t="$TARGET_FLOOR_PCT")" \
	"encrypt: varseal >= ${TARGET_FLOOR_PCT}% of the floor's speed   (${enc_vs_floor}%)"
verdict "$(calc '(100 * a >= t * c)' a="${M[varseal decrypt]}" c="$floor_dec" t="$TARGET_FLOOR_PCT")" \
	"decrypt: varseal >= ${TARGET_FLOOR_PCT}% of the floor's speed   (${dec_vs_floor}%)"
for dir in encrypt decrypt; do
	g=$enc_growth
	[[ $dir == decrypt ]] && g=$dec_growth
	if [[ $g == "n/a" ]]; then
		printf '  SKIP  %s: RSS growth < %d KiB (no GNU time)\n' "$dir" "$TARGET_RSS_GROWTH_KIB"
	else
		verdict "$((g < TARGET_RSS_GROWTH_KIB))" \
			"$dir: RSS growth over $BASE_MB MiB input < $TARGET_RSS_GROWTH_KIB KiB  (${g} KiB)"
	fi
done
exit 0
