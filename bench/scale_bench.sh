#!/usr/bin/env bash
# scale_bench.sh - how the store commands grow with the store: each timed
# on SMALL (default 1,000) and LARGE (default 10,000) machines x 3 secrets,
# 3 admins, on a RAM file system, with the ratio LARGE/SMALL against the
# linear ratio (10x; goal at most 11x), the peak RSS of each (goal under
# 64 MiB), and get / check of one machine on the large store against the
# same commands on a store that holds only that machine (same spec: what
# is left is the store's size) and on a store of ONE machine (its own tiny
# spec: the difference is the spec's parse).
#
# This is a benchmark, not a test: it exits 0 whether or not the goals are
# met, and non-zero only if a command fails or a result is wrong (a store
# that does not check, a secret the new admin cannot open after rekey).
#
# Commands, each on the store of each size:
#   vargen generate            a new store each run
#   vargen list / check        the generated store
#   vargen generate --plan     with a fourth admin in the spec: every
#                              secret is listed as to reseal
#   varseal rekey (+1 admin)   on a fresh copy of the store each run
#   varseal get M app/api-key  with an admin's key
#   vargen check --machine M
#
# Environment:
#   VARGEN, VARSEAL   the binaries (default: ../build/{gen/vargen,seal/varseal})
#   SMALL, LARGE      machines (defaults 1000 and 10000)
#   RUNS              runs of the slow commands (generate, rekey; default 3)
#   FAST_RUNS         runs of the others (default 7)
#   STORE_DIR         a RAM file system for the stores (default /dev/shm;
#                     the large store takes about 320 MiB, and two copies
#                     of it, with two of the small one, exist at once)
#
# Keys: 3 + 1 admins and one key per machine, made untimed with Python's
# `cryptography` module when it is installed (python3-cryptography), else
# with age-keygen, one process per key (about 30 s for 10,000).
#
# Wall times are medians with the spread (min..max) over the runs, taken
# around GNU time (/usr/bin/time, package `time`), which also gives the
# peak RSS (largest over the runs); its own start costs about a
# millisecond in every figure alike.
# Functions run through sample look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail
export LC_ALL=C

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=scale_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
VARGEN=${VARGEN:-$script_dir/../build/gen/vargen}
VARSEAL=${VARSEAL:-$script_dir/../build/seal/varseal}
SMALL=${SMALL:-1000}
LARGE=${LARGE:-10000}
RUNS=${RUNS:-3}
FAST_RUNS=${FAST_RUNS:-7}
STORE_DIR=${STORE_DIR:-/dev/shm}
GNU_TIME=${GNU_TIME:-/usr/bin/time}

GOAL_SLACK=1.1      # LARGE/SMALL time at most 1.1x LARGE/SMALL machines (11x for 10x)
GOAL_RSS_KIB=65536   # peak RSS on the large store
GOAL_ONE_MACHINE=1.5 # get / check --machine: large store vs that machine alone

for v in SMALL LARGE RUNS FAST_RUNS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
((LARGE > SMALL)) || die "LARGE ($LARGE) must be more than SMALL ($SMALL)"
[[ -x $VARGEN ]] || die "vargen not found at $VARGEN (build it, or set VARGEN)"
[[ -x $VARSEAL ]] || die "varseal not found at $VARSEAL (build it, or set VARSEAL)"
VARGEN=$(realpath -- "$VARGEN") VARSEAL=$(realpath -- "$VARSEAL")
[[ -x $GNU_TIME ]] || die "GNU time not found at $GNU_TIME (scripts/deps.sh installs the 'time' package)"
[[ -d $STORE_DIR && -w $STORE_DIR ]] || die "STORE_DIR '$STORE_DIR' is not a writable directory"
for tool in python3 awk cp rm sort getconf; do
	command -v "$tool" > /dev/null || die "'$tool' not found"
done

work=$(mktemp -d "$STORE_DIR/scale_bench.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ keys
# keys N DIR: DIR/admin{1..4}.key, DIR/admin{1..4}.pub, DIR/machines.pub
# (one public key per line) and DIR/m0.key (the first machine's).
make_keys_python() { # N DIR: bench/make_keys.py, 4 admins
	python3 "$script_dir/make_keys.py" "$1" "$2" 4
}
make_keys_age() {
	local n=$1 dir=$2 m text
	for a in 1 2 3 4; do
		age-keygen -o "$dir/admin$a.key" 2> /dev/null
		age-keygen -y "$dir/admin$a.key" > "$dir/admin$a.pub"
	done
	: > "$dir/machines.pub"
	for ((m = 0; m < n; m++)); do
		text=$(age-keygen 2> /dev/null)
		((m == 0)) && printf '%s\n' "$text" > "$dir/m0.key"
		[[ $text =~ (age1[0-9a-z]+) ]] && echo "${BASH_REMATCH[1]}" >> "$dir/machines.pub"
	done
}
keys=$work/keys
mkdir -m 700 "$keys"
if python3 -c 'import cryptography.hazmat.primitives.asymmetric.x25519' 2> /dev/null; then
	log "making $LARGE machine keys and 4 admin keys (Python cryptography, untimed)"
	make_keys_python "$LARGE" "$keys"
else
	command -v age-keygen > /dev/null || die "need python3-cryptography or age-keygen to make keys"
	log "making $LARGE machine keys and 4 admin keys (age-keygen, untimed; slow)"
	make_keys_age "$LARGE" "$keys"
fi
chmod 600 "$keys"/*.key
(($(wc -l < "$keys/machines.pub") == LARGE)) || die "made $(wc -l < "$keys/machines.pub") machine keys, expected $LARGE"

# ------------------------------------------------------------------ specs
# spec N ADMINS OUT: the first N machines, each with generator app.
spec() {
	local n=$1 admins=$2 out=$3 a
	{
		echo "admins:"
		for ((a = 1; a <= admins; a++)); do echo "  admin$a: $(cat "$keys/admin$a.pub")"; done
		echo "machines:"
		head -n "$n" "$keys/machines.pub" | awk '{ printf "  m%05d:\n    key: %s\n    generators: [app]\n", NR - 1, $1 }'
		app_generator
	} > "$out"
}
for n in 1 "$SMALL" "$LARGE"; do
	spec "$n" 3 "$work/spec-$n.yaml"
	spec "$n" 4 "$work/spec4-$n.yaml"
done
sample=m00000 # the machine get and check --machine look at
sample_var=app/api-key

# ---------------------------------------------------------------- measure
# sample KEY PREPARE N COMMAND...: one run: PREPARE N (a function,
# untimed), then COMMAND with stdout to /dev/null. Exit status 0 or 4 (a
# plan with something to do) counts as success. The wall time joins
# SAMPLES[KEY], the peak RSS (KiB) RSS[KEY]; summarize turns the samples
# into MED[KEY], MIN[KEY], MAX[KEY] in seconds.
declare -A SAMPLES MED MIN MAX RSS
sample() {
	local key=$1 prepare=$2 n=$3
	shift 3
	local t0 t1 rc=0 rss
	"$prepare" "$n"
	t0=$EPOCHREALTIME
	"$GNU_TIME" -f %M -o "$work/time.out" "$@" > /dev/null 2> "$work/cmd.err" || rc=$?
	t1=$EPOCHREALTIME
	((rc == 0 || rc == 4)) || die "$key exited $rc: $(tail -n 5 "$work/cmd.err")"
	rss=$(tail -n 1 "$work/time.out")
	((rss > ${RSS[$key]:-0})) && RSS[$key]=$rss
	SAMPLES[$key]+="$(calc 'sprintf("%.6f", b - a)' a="$t0" b="$t1") "
}
summarize() {
	local key
	for key in "${!SAMPLES[@]}"; do
		read -r "MED[$key]" "MIN[$key]" "MAX[$key]" < <(tr ' ' '\n' <<< "${SAMPLES[$key]}" |
			awk 'NF' | sort -g | awk '
			{ v[NR] = $1 }
			END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			      print m, v[1], v[NR] }')
	done
}

# --------------------------------------------------------------- stores
# generate N writes $work/gen-N each run; the first run's store is kept as
# $work/keep-N (the store the other commands read), later ones removed.
settle_gen() {
	local gen=$work/gen-$1 keep=$work/keep-$1
	if [[ -d $gen ]]; then
		if [[ -d $keep ]]; then rm -rf -- "$gen"; else mv -- "$gen" "$keep"; fi
	fi
}
rekey_copy() {
	rm -rf -- "$work/rekey-$1"
	cp -a -- "$work/keep-$1" "$work/rekey-$1"
}
none() { :; }

# The two sizes take turns, run after run, so that whatever the machine
# does meanwhile (other load, a slower phase of the host) falls on both
# alike: their ratio is the figure. (Run one size's commands, then the
# other's, and a slow minute moved the rekey ratio by a tenth.)
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
sizes=("$SMALL" "$LARGE")
for ((i = 1; i <= RUNS; i++)); do
	for n in "${sizes[@]}"; do
		log "generate $n, run $i of $RUNS"
		sample "generate $n" settle_gen "$n" "$VARGEN" generate -f "$work/spec-$n.yaml" \
			--store "$work/gen-$n"
	done
done
for n in "${sizes[@]}"; do
	settle_gen "$n"
	secrets=$(find "$work/keep-$n/vars/per-machine" -name secret | wc -l)
	((secrets == 3 * n)) || die "generate on $n machines wrote $secrets secrets, expected $((3 * n))"
	# The same spec, a store with only the sample machine's files.
	mkdir -p "$work/alone-$n/vars/per-machine"
	cp -a -- "$work/keep-$n/vars/per-machine/$sample" "$work/alone-$n/vars/per-machine/"
done
log "list, check, generate --plan, get, check --machine: $FAST_RUNS runs each"
for ((i = 1; i <= FAST_RUNS; i++)); do
	for n in "${sizes[@]}"; do
		sp=$work/spec-$n.yaml keep=$work/keep-$n alone=$work/alone-$n
		sample "list $n" none "$n" "$VARGEN" list -f "$sp" --store "$keep"
		sample "check $n" none "$n" "$VARGEN" check -f "$sp" --store "$keep"
		sample "generate --plan $n" none "$n" "$VARGEN" generate --plan -f "$work/spec4-$n.yaml" \
			--store "$keep"
		sample "get $n" none "$n" "$VARSEAL" get -f "$sp" --store "$keep" \
			-i "$keys/admin1.key" "$sample" "$sample_var"
		sample "check --machine $n" none "$n" "$VARGEN" check -f "$sp" --store "$keep" \
			--machine "$sample"
		sample "get $n, machine alone" none "$n" "$VARSEAL" get -f "$sp" --store "$alone" \
			-i "$keys/admin1.key" "$sample" "$sample_var"
		sample "check --machine $n, alone" none "$n" "$VARGEN" check -f "$sp" --store "$alone" \
			--machine "$sample"
	done
done
for ((i = 1; i <= RUNS; i++)); do
	for n in "${sizes[@]}"; do
		log "rekey +1 admin $n, run $i of $RUNS"
		sample "rekey +1 admin $n" rekey_copy "$n" "$VARSEAL" rekey -f "$work/spec4-$n.yaml" \
			--store "$work/rekey-$n" -i "$keys/admin1.key"
	done
done
for n in "${sizes[@]}"; do
	sp4=$work/spec4-$n.yaml
	"$VARGEN" check -f "$sp4" --store "$work/rekey-$n" > "$work/check.out" 2>&1 ||
		die "vargen check fails after rekey on $n machines: $(tail -n 3 "$work/check.out")"
	got=$("$VARSEAL" get -f "$sp4" --store "$work/rekey-$n" -i "$keys/admin4.key" "$sample" "$sample_var") ||
		die "the new admin cannot open $sample/$sample_var after rekey"
	want=$("$VARSEAL" get -f "$work/spec-$n.yaml" --store "$work/keep-$n" -i "$keys/m0.key" \
		"$sample" "$sample_var")
	[[ $got == "$want" ]] || die "$sample/$sample_var differs after rekey"
	rm -rf -- "$work/rekey-$n" "$work/keep-$n" "$work/alone-$n"
done

# One machine, its own spec: the floor for get and check --machine.
sp1=$work/spec-1.yaml
"$VARGEN" generate -f "$sp1" --store "$work/one" > /dev/null
for ((i = 1; i <= FAST_RUNS; i++)); do
	sample "get, 1-machine store" none 1 "$VARSEAL" get -f "$sp1" --store "$work/one" \
		-i "$keys/admin1.key" "$sample" "$sample_var"
	sample "check --machine, 1-machine" none 1 "$VARGEN" check -f "$sp1" --store "$work/one" \
		--machine "$sample"
done
summarize

# ----------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
echo
echo "scale benchmark: $SMALL and $LARGE machines x 3 secrets, 3 admins (4 for the plan and rekey)"
printf '  stores      %s (%s)\n' "$work" "$(stat -f -c %T "$work")"
printf '  runs        median (min..max) of %d (generate, rekey) or %d (the others)\n' "$RUNS" "$FAST_RUNS"
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; %s\n' "$("$VARGEN" --version)" "$("$VARSEAL" --version)"
printf '  load avg    %s at the start, %s at the end\n' "$load_start" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
printf '  spec sizes  %s bytes (%d machines), %s bytes (%d)\n' \
	"$(wc -c < "$work/spec-$SMALL.yaml")" "$SMALL" "$(wc -c < "$work/spec-$LARGE.yaml")" "$LARGE"
echo
lin=$(calc 'sprintf("%.1f", l / s)' l="$LARGE" s="$SMALL")
GOAL_RATIO=$(calc 'sprintf("%.1f", k * l / s)' k="$GOAL_SLACK" l="$LARGE" s="$SMALL")
printf '%-22s %22s %22s %7s %10s %10s\n' "" "$SMALL machines, s" "$LARGE machines, s" "ratio" "RSS KiB" "RSS KiB"
printf '%-22s %22s %22s %7s %10s %10s\n' "" "median (min..max)" "median (min..max)" "(${lin}x)" "$SMALL" "$LARGE"
cell() { printf '%.3f (%.3f..%.3f)' "${MED[$1]}" "${MIN[$1]}" "${MAX[$1]}"; }
declare -a misses=()
for op in "generate" "list" "check" "generate --plan" "rekey +1 admin" "get" "check --machine"; do
	s="$op $SMALL" l="$op $LARGE"
	r=$(calc 'sprintf("%.2f", b / a)' a="${MED[$s]}" b="${MED[$l]}")
	printf '%-22s %22s %22s %6sx %10s %10s\n' "$op" "$(cell "$s")" "$(cell "$l")" "$r" "${RSS[$s]}" "${RSS[$l]}"
	(($(calc '(r <= g)' r="$r" g="$GOAL_RATIO"))) || misses+=("$op: ${r}x > ${GOAL_RATIO}x")
	((RSS[$l] < GOAL_RSS_KIB)) || misses+=("$op: peak RSS ${RSS[$l]} KiB >= $GOAL_RSS_KIB KiB")
done
echo
echo "one machine's get and check --machine: the store's size vs the spec's"
printf '%-34s %22s %10s\n' "" "median (min..max), s" "RSS KiB"
for k in "get $LARGE" "get $LARGE, machine alone" "get $SMALL" "get, 1-machine store" \
	"check --machine $LARGE" "check --machine $LARGE, alone" "check --machine $SMALL" \
	"check --machine, 1-machine"; do
	printf '%-34s %22s %10s\n' "$k" "$(cell "$k")" "${RSS[$k]}"
done
store_get=$(calc 'sprintf("%.2f", a / b)' a="${MED[get $LARGE]}" b="${MED[get $LARGE, machine alone]}")
store_chk=$(calc 'sprintf("%.2f", a / b)' a="${MED[check --machine $LARGE]}" b="${MED[check --machine $LARGE, alone]}")
spec_get=$(calc 'sprintf("%.3f", a - b)' a="${MED[get $LARGE, machine alone]}" b="${MED[get, 1-machine store]}")
echo "  'alone' = the same $LARGE-machine spec, a store holding only $sample's files:"
echo "  large store / alone = what the store's size costs: get ${store_get}x, check --machine ${store_chk}x"
echo "  alone - 1-machine store = what parsing the $LARGE-machine spec costs: get ${spec_get} s"
(($(calc '(r <= g)' r="$store_get" g="$GOAL_ONE_MACHINE"))) || misses+=("get: large store ${store_get}x the machine alone")
(($(calc '(r <= g)' r="$store_chk" g="$GOAL_ONE_MACHINE"))) || misses+=("check --machine: large store ${store_chk}x the machine alone")
echo
echo "goals: each ratio <= ${GOAL_RATIO}x, peak RSS < $((GOAL_RSS_KIB / 1024)) MiB on $LARGE machines," \
	"one machine's get/check on the large store <= ${GOAL_ONE_MACHINE}x the machine alone"
if ((${#misses[@]} == 0)); then
	echo "  PASS  all"
else
	printf '  MISS  %s\n' "${misses[@]}"
fi
exit 0
