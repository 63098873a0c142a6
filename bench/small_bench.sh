#!/usr/bin/env bash
# small_bench.sh - short runs: what one process costs for one small secret,
# varseal against the real age in the same run, and vargen check and
# varinject --dry-run on the seed's store.
#
#   decrypt  varseal decrypt -i KEY -o /dev/null F   vs  age -d -i KEY -o /dev/null F
#            (F: a 12-byte file, each tool's own ciphertext of it)
#   encrypt  varseal encrypt -r R -o /dev/null P     vs  age -r R -o /dev/null P
#   get      varseal get -f SPEC -i KEY test-vm test-vm-secrets/api-key
#                                                     vs  age -d -i KEY <that secret's file>
#   vargen check -f SPEC                       (the seed's store: 1 machine, 3 secrets)
#   varinject --dry-run --machine test-vm ...  (decrypts the 3, prints the command)
#   floors   /bin/true, and startup_probe: a program linked as the tools are
#            (libcrypto, libsodium, libyaml; -z relro -z now) that exits at
#            once: exec and dynamic loading, which no tool can go below
#
# Each pair runs interleaved, N times (the order swapped every round), so
# that both see the same machine; times are wall clock from the spawn of
# the command to its exit (SPAWN_TIMER), or without it from the shell's
# fork, in ms: median, and p10..p90 as the spread.
# ratio = varseal median / age median; goal <= 0.8.
#
# This is a benchmark, not a test: it exits 0 whether or not the goals are
# met, and non-zero only if a command fails or gives a wrong result.
#
# Environment:
#   VARSEAL, VARGEN, VARINJECT   the tools (default: ../build/...)
#   PROBE      startup_probe (default: ../build/bench/startup_probe; skipped if missing)
#   PAGE_PROBE bench/page_probe: the cost of a page's first touch, printed
#              beside each command's page faults (optional; bench-small sets it)
#   SPAWN_TIMER bench/spawn_timer: times each run from posix_spawn to
#              waitpid, leaving out the shell's own fork (spawn_timer.c says
#              why; bench-small sets it). Without it, or with TIMING=shell,
#              the shell's clock around the command.
#   AGE        age (default: age)
#   N          rounds (default 100)
#   CALL_TIMER bench/call_timer.so: also print where varseal's time goes,
#              per library call (optional; the bench-small target sets it)
set -euo pipefail
export LC_ALL=C

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=small_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
build=$script_dir/../build
VARSEAL=${VARSEAL:-$build/seal/varseal}
VARGEN=${VARGEN:-$build/gen/vargen}
VARINJECT=${VARINJECT:-$build/inject/varinject}
PROBE=${PROBE:-$build/bench/startup_probe}
AGE=${AGE:-age}
N=${N:-100}
GOAL_RATIO=0.8

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
for t in "$VARSEAL" "$VARGEN" "$VARINJECT"; do
	[[ -x $t ]] || die "$t not found (build the tools, or set VARSEAL, VARGEN, VARINJECT)"
done
# The runs happen in a work directory: relative paths would break.
VARSEAL=$(realpath -- "$VARSEAL") VARGEN=$(realpath -- "$VARGEN")
VARINJECT=$(realpath -- "$VARINJECT")
[[ -x $PROBE ]] && PROBE=$(realpath -- "$PROBE")
[[ -n ${PAGE_PROBE:-} && -x $PAGE_PROBE ]] && PAGE_PROBE=$(realpath -- "$PAGE_PROBE")
if [[ ${TIMING:-} != shell && -n ${SPAWN_TIMER:-} && -x $SPAWN_TIMER ]]; then
	SPAWN_TIMER=$(realpath -- "$SPAWN_TIMER")
	timing="spawn_timer: posix_spawn to waitpid"
else
	SPAWN_TIMER=""
	timing="the shell's clock: its fork to the child's exit"
fi
if [[ -n ${CALL_TIMER:-} ]]; then
	[[ -r $CALL_TIMER ]] || die "CALL_TIMER '$CALL_TIMER' not found"
	CALL_TIMER=$(realpath -- "$CALL_TIMER")
fi
command -v "$AGE" > /dev/null || die "'$AGE' not found"
have_probe=0
[[ -x $PROBE ]] && have_probe=1
# A RAM file system for the files: the page cache either way, but no
# writeback from other work in the middle of a run.
base=/dev/shm
[[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
work_dir "$base"
work=$REPLY

# ------------------------------------------------------------------ files
cd "$work"
"$VARSEAL" keygen -o key 2> /dev/null
recipient=$("$VARSEAL" pubkey key)
printf 'hello world!' > plain # 12 bytes
"$VARSEAL" encrypt -r "$recipient" -o ct.varseal plain
"$AGE" -r "$recipient" -o ct.age plain
[[ $("$VARSEAL" decrypt -i key ct.age) == "hello world!" ]] || die "varseal cannot open age's file"
[[ $("$AGE" -d -i key ct.varseal) == "hello world!" ]] || die "age cannot open varseal's file"

# The seed's store: examples/vars.yaml with our admin, its machine's key
# kept, generated (its script runs openssl rand).
admin_pub=$recipient
sed "s/^\(  alice: \).*/\1$admin_pub/" "$script_dir/../examples/vars.yaml" > vars.yaml
"$VARSEAL" machine keygen -f vars.yaml test-vm > /dev/null 2>&1 || die "varseal machine keygen failed"
"$VARGEN" generate -f vars.yaml > /dev/null 2>&1 || die "vargen generate on the seed's spec failed"
"$VARSEAL" machine key -f vars.yaml -i key -o machine.key test-vm 2> /dev/null
secret_file=vars/per-machine/test-vm/test-vm-secrets/api-key/secret
want=$("$AGE" -d -i machine.key "$secret_file")
[[ $("$VARSEAL" get -f vars.yaml -i machine.key test-vm test-vm-secrets/api-key) == "$want" ]] ||
	die "varseal get and age -d disagree on the seed's api-key"
inject=("$VARINJECT" -f vars.yaml --machine test-vm -i machine.key --credentials-dir "$base"
	--dry-run -- qemu-system-x86_64)
"${inject[@]}" > inject.out 2>&1 || die "varinject --dry-run failed: $(tail -n 3 inject.out)"

# ---------------------------------------------------------------- measure
declare -A SAMPLES # key -> space-separated microseconds
# once KEY COMMAND...: one timed run, stdout and stderr to /dev/null.
once() {
	local key=$1 t0 t1 us
	shift
	if [[ -n $SPAWN_TIMER ]]; then
		us=$("$SPAWN_TIMER" "$@") || die "$key failed: $*"
	else
		t0=$EPOCHREALTIME
		"$@" > /dev/null 2>&1 || die "$key failed: $*"
		t1=$EPOCHREALTIME
		us=$((${t1/./} - ${t0/./}))
	fi
	SAMPLES[$key]+="$us "
}
# The pairs' commands, written once: the timed rounds, the call timer and
# the pages below all run these arrays (GNU time runs a program, not a
# shell function).
# shellcheck disable=SC2034 # each is used by name (declare -n cmd_OP_TOOL)
{
	cmd_decrypt_varseal=("$VARSEAL" decrypt -i key -o /dev/null ct.varseal)
	cmd_decrypt_age=("$AGE" -d -i key -o /dev/null ct.age)
	cmd_encrypt_varseal=("$VARSEAL" encrypt -r "$recipient" -o /dev/null plain)
	cmd_encrypt_age=("$AGE" -r "$recipient" -o /dev/null plain)
	cmd_get_varseal=("$VARSEAL" get -f vars.yaml -i machine.key test-vm test-vm-secrets/api-key)
	cmd_get_age=("$AGE" -d -i machine.key "$secret_file")
}

log "$N rounds; each round runs every command once"
for ((i = 1; i <= N; i++)); do
	# Swap who goes first every round: neither always follows the other.
	order=(varseal age)
	((i % 2)) || order=(age varseal)
	for op in decrypt encrypt get; do
		for tool in "${order[@]}"; do
			declare -n round_cmd=cmd_${op}_$tool
			once "$op $tool" "${round_cmd[@]}"
			unset -n round_cmd
		done
	done
	once "vargen check" "$VARGEN" check -f vars.yaml
	once "varinject --dry-run" "${inject[@]}"
	once "/bin/true" /bin/true
	((have_probe)) && once "startup_probe" "$PROBE"
done

# stats KEY -> "median p10 p90" in ms
stats() {
	tr ' ' '\n' <<< "${SAMPLES[$1]}" | awk 'NF' | sort -n | awk '
		{ v[NR] = $1 }
		function at(q,   i) { i = int(q * (NR - 1) + 1.5); return v[i < 1 ? 1 : i > NR ? NR : i] }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.2f %.2f %.2f\n", m / 1000, at(0.1) / 1000, at(0.9) / 1000 }'
}

# ----------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
echo
echo "small-file benchmark: one process per command, $N interleaved rounds"
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; age %s; %s\n' "$("$VARSEAL" --version)" "$("$AGE" --version)" \
	"$(openssl version 2> /dev/null | awk '{print $1, $2}')"
printf '  load avg    %s\n' "$(cut -d ' ' -f 1-3 /proc/loadavg)"
printf '  timing      %s\n' "$timing"
echo
printf '%-10s %24s %24s %8s\n' "" "varseal ms" "age ms" "ratio"
printf '%-10s %24s %24s %8s\n' "" "median (p10..p90)" "median (p10..p90)" "(<=${GOAL_RATIO})"
declare -a verdicts=()
for op in decrypt encrypt get; do
	read -r vm v10 v90 < <(stats "$op varseal")
	read -r am a10 a90 < <(stats "$op age")
	r=$(awk -v a="$vm" -v b="$am" 'BEGIN { printf "%.2f", a / b }')
	printf '%-10s %24s %24s %7sx\n' "$op" "$vm ($v10..$v90)" "$am ($a10..$a90)" "$r"
	if awk -v r="$r" -v g="$GOAL_RATIO" 'BEGIN { exit !(r <= g) }'; then
		verdicts+=("PASS  $op: varseal ${r}x age")
	else
		verdicts+=("MISS  $op: varseal ${r}x age (goal <= $GOAL_RATIO)")
	fi
done
echo
printf '%-22s %24s\n' "" "ms, median (p10..p90)"
keys=("vargen check" "varinject --dry-run" "/bin/true")
((have_probe)) && keys+=("startup_probe")
for k in "${keys[@]}"; do
	read -r m p10 p90 < <(stats "$k")
	printf '%-22s %24s\n' "$k" "$m ($p10..$p90)"
done
echo "  vargen check: the seed's store (1 machine, 3 secrets, a kept machine key)"
echo "  varinject --dry-run: decrypts its 3 secrets, prints the QEMU command"
echo "  startup_probe: exec + loading libcrypto, libsodium, libyaml, then exit: the floor"
echo
echo "goals"
printf '  %s\n' "${verdicts[@]}"

# ------------------------------------------------------------------ pages
# How many pages each command touches for the first time (its minor page
# faults, GNU time's %R; the median of 5 untimed runs) and, with
# page_probe, what one first touch costs on this machine: on a VM whose
# hypervisor keeps shadow page tables, pages are much of a short run.
pages() { # pages KEY COMMAND... -> PAGES[KEY]
	local key=$1 i runs=()
	shift
	for ((i = 0; i < 5; i++)); do
		/usr/bin/time -f %R -o "$work/pages.out" "$@" > /dev/null 2>&1 || die "$key failed: $*"
		runs+=("$(tail -n 1 "$work/pages.out")")
	done
	median "${runs[@]}"
	PAGES[$key]=$REPLY
}
if [[ -x /usr/bin/time ]]; then
	declare -A PAGES=()
	for op in decrypt encrypt get; do
		for tool in varseal age; do
			declare -n pair_cmd=cmd_${op}_$tool
			pages "$op $tool" "${pair_cmd[@]}"
			unset -n pair_cmd
		done
	done
	pages "vargen check" "$VARGEN" check -f vars.yaml
	pages "varinject --dry-run" "${inject[@]}"
	pages "/bin/true" /bin/true
	((have_probe)) && pages "startup_probe" "$PROBE"
	page_us=
	[[ -n ${PAGE_PROBE:-} && -x $PAGE_PROBE ]] && page_us=$("$PAGE_PROBE")
	echo
	if [[ -n $page_us ]]; then
		echo "pages first touched per run (minor faults), and their cost at $page_us us each (page_probe)"
	else
		echo "pages first touched per run (minor faults; set PAGE_PROBE for their cost)"
	fi
	cost() { # cost KEY -> "N (X ms)" or "N"
		REPLY=${PAGES[$1]:-n/a}
		[[ -n $page_us && -n ${PAGES[$1]:-} ]] &&
			REPLY+=$(calc 'sprintf(" (%.1f ms)", n * u / 1000)' n="${PAGES[$1]}" u="$page_us")
		return 0
	}
	printf '%-22s %16s %16s\n' "" "varseal" "age"
	for op in decrypt encrypt get; do
		cost "$op varseal"
		a=$REPLY
		cost "$op age"
		printf '%-22s %16s %16s\n' "$op" "$a" "$REPLY"
	done
	for k in "vargen check" "varinject --dry-run" "/bin/true" "startup_probe"; do
		[[ -n ${PAGES[$k]:-} ]] || continue
		cost "$k"
		printf '%-22s %16s\n' "$k" "$REPLY"
	done
fi

# ---------------------------------------------------- where the time goes
# With CALL_TIMER (bench/call_timer.so, which the bench-small target
# builds and passes), each varseal command runs N more times with it
# preloaded: per library call, the median over the runs of the time spent
# in it (outermost calls only), and "(run)", about main to exit.
if [[ -n ${CALL_TIMER:-} ]]; then
	for op in decrypt encrypt get; do
		: > "calls.$op"
		declare -n timed_cmd=cmd_${op}_varseal
		for ((i = 1; i <= N; i++)); do
			CALL_TIMER_OUT=$work/calls.$op LD_PRELOAD=$CALL_TIMER "${timed_cmd[@]}" \
				> /dev/null 2>&1 || die "$op failed under the call timer"
		done
		unset -n timed_cmd
	done
	echo
	echo "where varseal's own time goes: us per library call, median of $N runs"
	printf '%-30s %10s %10s %10s\n' "" decrypt encrypt get
	# A function a run never called counts as 0 in that run's median.
	awk -v n="$N" '
		FNR == 1 { op++; run = 0 }
		$0 == "--" { run++; next }
		{ us[op, $1, run] = $3; names[$1] = 1; calls[op, $1] = $2 }
		function median(o, f,   i, k, v, t) {
			for (i = 0; i < n; i++) v[i] = ((o, f, i) in us) ? us[o, f, i] : 0
			for (i = 1; i < n; i++) { t = v[i]; for (k = i; k > 0 && v[k - 1] > t; k--) v[k] = v[k - 1]; v[k] = t }
			return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		}
		END {
			for (f in names) {
				line = sprintf("%-30s", f)
				for (o = 1; o <= 3; o++)
					line = line sprintf(" %10s", (o, f) in calls ? sprintf("%.0f", median(o, f)) : "-")
				print line
			}
		}' "calls.decrypt" "calls.encrypt" "calls.get" | sort -k2 -n -r
	echo "  (run): from the timer's constructor to its destructor, about main to exit"
	echo "  a call made inside another listed one is counted in the outer one"
fi
exit 0
