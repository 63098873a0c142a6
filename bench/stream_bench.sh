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
#   RUNS      runs per measurement, in rounds that take each in turn;
#             the median counts, min..max is shown (default: 7)
#   FORMAT_FLOOR  format_floor binary (default: ../build/bench/format_floor;
#             skipped if not built)
#
#   SPAWN_TIMER   spawn_timer binary (default: ../build/bench/spawn_timer;
#             cmake --build build --target spawn_timer)
#
# Throughput is reported in MB/s with MB = 10^6 bytes. Each run is timed
# by spawn_timer -r (bench/spawn_timer.c): posix_spawn to wait4, with the
# child's peak RSS and CPU time from wait4. Until 2026-12-02 runs went
# through GNU time (/usr/bin/time), which added about 8 ms to each here
# (a process of its own between the shell and the tool); the floor's
# reads paid it too, but only half of it counted in the floor.
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
RUNS=${RUNS:-7}
SPAWN_TIMER=${SPAWN_TIMER:-$script_dir/../build/bench/spawn_timer}

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
[[ -x $SPAWN_TIMER ]] || die "spawn_timer not found at $SPAWN_TIMER (build the bench targets)"
for tool in "$AGE" "$OPENSSL" awk sha256sum head cat dd tail sync wc getconf nproc; do
	command -v "$tool" > /dev/null || die "'$tool' not found"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stream_bench.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# add KEY COMMAND [ARGS...]
# Registers a measurement: COMMAND is run RUNS times with stdout to
# /dev/null, in rounds that take every registered command in turn (so a
# slow phase of the machine falls on all of them alike, not on whichever
# ran then). measure_all then records for each KEY the median wall time
# in T[KEY], its spread in LO[KEY] and HI[KEY] (min and max), the median
# CPU time (user + sys) in CPU[KEY] and the largest peak RSS (KiB) over
# all runs in RSS[KEY].
declare -A T LO HI CPU RSS CMD WALLS CPUS
KEYS=()
add() {
	local key=$1
	shift
	KEYS+=("$key")
	CMD[$key]=$(printf '%q ' "$@")
	WALLS[$key]="" CPUS[$key]="" RSS[$key]="n/a"
}
run_once() { # run_once KEY ROUND
	local key=$1 round=$2 out us dt rss user sys
	out=$(eval "\"\$SPAWN_TIMER\" -r ${CMD[$key]}") || die "$key failed (exit status $?)"
	read -r us rss user sys <<< "$out"
	CPUS[$key]+=" $(calc 'sprintf("%.3f", u + s)' u="$user" s="$sys")"
	if [[ ${RSS[$key]} == "n/a" ]] || ((rss > RSS[$key])); then RSS[$key]=$rss; fi
	dt=$(calc 'sprintf("%.6f", u / 1e6)' u="$us")
	WALLS[$key]+=" $dt"
	log "$(printf '%-16s run %d/%d: %8.3f s  rss %s KiB' "$key" "$round" "$RUNS" "$dt" "$rss")"
}
# The ceiling: OpenSSL's ChaCha20-Poly1305 on one core, 64 KiB buffers,
# one second in each round (its speed moves with the machine's phase like
# everything else: 10-20% between runs minutes apart on a shared host).
# MB/s, one per round, in AEADS.
AEADS=""
run_speed() { # run_speed ROUND
	local out k
	out=$("$OPENSSL" speed -evp chacha20-poly1305 -bytes 65536 -seconds 1 2> "$tmp/speed.err") ||
		die "$OPENSSL speed failed: $(cat "$tmp/speed.err")"
	k=$(awk 'tolower($1) == "chacha20-poly1305" && $NF ~ /^[0-9.]+k$/ {
		v = $NF; sub(/k$/, "", v) } END { print v }' <<< "$out")
	[[ -n $k ]] || die "could not parse the 65536-byte column of openssl speed: $out"
	AEADS+=" $(calc 'sprintf("%.1f", k / 1000)' k="$k")" # 1000s of bytes/s -> MB/s
	log "$(printf '%-16s run %d/%d: %8s MB/s' "openssl speed" "$1" "$RUNS" "${AEADS##* }")"
}
measure_all() {
	local round key
	for ((round = 1; round <= RUNS; round++)); do
		for key in "${KEYS[@]}"; do run_once "$key" "$round"; done
		run_speed "$round"
	done
	for key in "${KEYS[@]}"; do
		# shellcheck disable=SC2086 # the lists are words on purpose
		median ${WALLS[$key]}
		T[$key]=$REPLY
		# shellcheck disable=SC2086
		read -r "LO[$key]" "HI[$key]" < <(printf '%s\n' ${WALLS[$key]} | sort -g |
			awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo, hi }')
		CPU[$key]="n/a"
		if [[ -n ${CPUS[$key]} ]]; then
			# shellcheck disable=SC2086
			median ${CPUS[$key]}
			CPU[$key]=$(calc 'sprintf("%.2f", c)' c="$REPLY")
		fi
	done
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
add "varseal encrypt" "$VARSEAL" encrypt -r "$recipient" "$plain"
add "age encrypt" "$AGE" -r "$recipient" "$plain"
add "varseal decrypt" "$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct.varseal"
add "age decrypt" "$AGE" -d -i "$tmp/key" "$tmp/ct.age"
add "page-cache read" dd if="$plain" of=/dev/null bs=1M status=none
add "ciphertext read" dd if="$tmp/ct.varseal" of=/dev/null bs=1M status=none
if [[ -x $FORMAT_FLOOR ]]; then
	add "format encrypt" "$FORMAT_FLOOR" encrypt "$plain"
	add "format decrypt" "$FORMAT_FLOOR" decrypt "$tmp/ct.varseal"
fi
add "varseal enc 0B" "$VARSEAL" encrypt -r "$recipient" "$tmp/empty"
add "varseal dec 0B" "$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct-empty.varseal"
add "varseal enc base" "$VARSEAL" encrypt -r "$recipient" "$tmp/one"
add "varseal dec base" "$VARSEAL" decrypt -i "$tmp/key" "$tmp/ct-one.varseal"
measure_all

# shellcheck disable=SC2086
median $AEADS
ceiling=$REPLY
# shellcheck disable=SC2086
ceiling_lo=$(printf '%s\n' $AEADS | sort -g | head -n 1)
# shellcheck disable=SC2086
ceiling_hi=$(printf '%s\n' $AEADS | sort -g | tail -n 1)
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

# The same ratios round by round (each round's varseal run against the
# same round's age run or read), as min..max: how far one run may land
# from the medians above.
per_round() { # per_round KEY OTHER_KEY AWK_EXPR(v, o) -> "min..max"
	# shellcheck disable=SC2086 # the lists are words on purpose
	paste -d ' ' <(printf '%s\n' ${WALLS[$1]}) <(printf '%s\n' ${WALLS[$2]}) \
		<(printf '%s\n' $AEADS) |
		awk -v n="$bytes" -v k="$cores" -v fmt="$4" '
			{ v = $1; o = $2; c = $3; x = '"$3"'; if (NR == 1 || x < lo) lo = x; if (NR == 1 || x > hi) hi = x }
			END { printf fmt "..", lo; printf fmt "\n", hi }'
}
floor_expr='100 * ((o > (o + n / (c * 1e6)) / k) ? o : (o + n / (c * 1e6)) / k) / v'
enc_vs_age_r=$(per_round "varseal encrypt" "age encrypt" 'o / v' '%.2f')
dec_vs_age_r=$(per_round "varseal decrypt" "age decrypt" 'o / v' '%.2f')
enc_vs_floor_r=$(per_round "varseal encrypt" "page-cache read" "$floor_expr" '%.0f')
dec_vs_floor_r=$(per_round "varseal decrypt" "ciphertext read" "$floor_expr" '%.0f')

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
printf '  runs        %d rounds, each command in turn; medians (min..max) of wall time;\n' "$RUNS"
printf '              output to /dev/null\n'
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; age %s; %s\n' "$("$VARSEAL" --version)" "$("$AGE" --version)" \
	"$("$OPENSSL" version | awk '{print $1, $2}')"
echo
printf '%-17s %9s %9s %9s %22s %8s %13s\n' "" "MB/s" "vs age" "vs floor" "wall s (min..max)" "cpu s" "peak RSS KiB"
row() { # row KEY VS_AGE VS_CEIL
	printf '%-17s %9s %9s %9s %22s %8s %13s\n' "$1" "${M[$1]}" "$2" "$3" \
		"$(calc 'sprintf("%.3f (%.3f..%.3f)", t, l, h)' t="${T[$1]}" l="${LO[$1]}" h="${HI[$1]}")" \
		"${CPU[$1]}" "${RSS[$1]}"
}
row "varseal encrypt" "${enc_vs_age}x" "${enc_vs_floor}%"
row "age encrypt" "" ""
row "varseal decrypt" "${dec_vs_age}x" "${dec_vs_floor}%"
row "age decrypt" "" ""
printf '%-17s %9s %9s %9s %22s\n' "floor, encrypt" "$floor_enc" "" "100%" \
	"$(calc 'sprintf("%.3f", f)' f="$floor_enc_s")"
printf '%-17s %9s %9s %9s %22s\n' "floor, decrypt" "$floor_dec" "" "100%" \
	"$(calc 'sprintf("%.3f", f)' f="$floor_dec_s")"
printf '%-17s %9s %9s %9s %22s\n' "  AEAD, one core" "$ceiling" "" "" \
	"$(calc 'sprintf("%.3f (%.3f..%.3f)", n / 1e6 / c, n / 1e6 / h, n / 1e6 / l)' n="$bytes" \
		c="$ceiling" l="$ceiling_lo" h="$ceiling_hi")"
row "page-cache read" "" ""
row "ciphertext read" "" ""
echo "  AEAD    = openssl speed -evp chacha20-poly1305, 64 KiB buffers, one core, 1 s a round"
echo "  read    = dd bs=1M of the plaintext (encrypt's input) to /dev/null, from the page cache"
echo "  ct read = the same of varseal's ciphertext (decrypt's input)"
echo "  floor   = max(read, (read + AEAD on one core) / $cores cores): every core busy;"
echo "            encrypt's with the plaintext's read, decrypt's with the ciphertext's"
echo "  floor's wall s: from the medians of the read and of the AEAD's speed"
echo "  cpu s   = user + sys CPU time, median (> wall s means several threads)"
printf '  round by round, each varseal run against the same round'"'"'s (age; read and AEAD):\n'
printf '    age     encrypt %sx, decrypt %sx\n' "$enc_vs_age_r" "$dec_vs_age_r"
printf '    floor   encrypt %s%%, decrypt %s%%\n' "$enc_vs_floor_r" "$dec_vs_floor_r"
if [[ -n ${T[format encrypt]:-} ]]; then
	echo
	printf '%-17s %9s %9s %9s %22s %8s\n' "the format's floor" "MB/s" "varseal" "" "wall s (min..max)" "cpu s"
	for dir in encrypt decrypt; do
		read_key="page-cache read"
		[[ $dir == decrypt ]] && read_key="ciphertext read"
		one=${T[format $dir]}
		f=$(calc 'sprintf("%.6f", (r > t / k) ? r : t / k)' r="${T[$read_key]}" t="$one" k="$cores")
		fm=$(calc 'sprintf("%.1f", n / 1e6 / f)' n="$bytes" f="$f")
		pct=$(calc 'sprintf("%.0f%%", 100 * v / m)' v="${M[varseal $dir]}" m="$fm")
		printf '%-17s %9s %9s %9s %22s %8s\n' "  $dir, one core" \
			"$(calc 'sprintf("%.1f", n / 1e6 / t)' n="$bytes" t="$one")" "" "" \
			"$(calc 'sprintf("%.3f (%.3f..%.3f)", t, l, h)' t="$one" l="${LO[format $dir]}" \
				h="${HI[format $dir]}")" "${CPU[format $dir]}"
		printf '%-17s %9s %9s %9s %22s\n' "  $dir, floor" "$fm" "$pct" "" \
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
	verdict "$((g < TARGET_RSS_GROWTH_KIB))" \
		"$dir: RSS growth over $BASE_MB MiB input < $TARGET_RSS_GROWTH_KIB KiB  (${g} KiB)"
done
exit 0
