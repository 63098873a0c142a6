#!/usr/bin/env bash
# pq_store_bench.sh - hybrid post-quantum keys against classic X25519 keys,
# measured in the same run (issue 14):
#
#   1. the age level, in one process (bench/pq_age_bench.c): keygen, sealing
#      1 KiB to 1 and to 10 recipients, opening (own stanza first, and last
#      of 10);
#   2. the same as varseal processes: keygen, encrypt to 1 and to 10
#      recipients, decrypt (what a user or a script sees, start-up included);
#   3. the store: MACHINES machines (default 1000) x 3 secrets, 2 admins,
#      every key hybrid, beside the same store with every key classic:
#      vargen generate, vargen check, and varseal rekey after adding a third
#      admin (a header-only reseal of every secret), on STORE_DIR (default
#      /dev/shm, a RAM file system). Goal: generate and rekey of the hybrid
#      store under 2 s each.
#
# Every figure is the median of RUNS runs (default 5); the ratio column is
# post-quantum / classic. This is a benchmark, not a test: it exits 0
# whether or not the goals are met, and non-zero only when a command fails
# or a correctness check fails (vargen check after rekey; the new admin's
# and a machine's key open a rekeyed secret to the value generated).
#
# Environment:
#   VARGEN, VARSEAL   the tools (default: ../build/{gen/vargen,seal/varseal})
#   PQ_AGE_BENCH      ../build/bench/pq_age_bench (part 1 is skipped without it)
#   MACHINES          machines in the store (default 1000)
#   RUNS              runs per figure, the median counts (default 5)
#   CLI_N             processes per CLI figure and run (default 20)
#   STORE_DIR         where the stores go (default /dev/shm)
#   TMPDIR            where keys and specs go (default /tmp)
set -euo pipefail
export LC_ALL=C

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=pq_store_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
VARGEN=${VARGEN:-$script_dir/../build/gen/vargen}
VARSEAL=${VARSEAL:-$script_dir/../build/seal/varseal}
PQ_AGE_BENCH=${PQ_AGE_BENCH:-$script_dir/../build/bench/pq_age_bench}
MACHINES=${MACHINES:-1000}
RUNS=${RUNS:-5}
CLI_N=${CLI_N:-20}
STORE_DIR=${STORE_DIR:-/dev/shm}
GOAL_S=2 # generate and rekey of the hybrid store

for v in MACHINES RUNS CLI_N; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ -x $VARGEN ]] || die "vargen not found at $VARGEN (build it, or set VARGEN)"
[[ -x $VARSEAL ]] || die "varseal not found at $VARSEAL (build it, or set VARSEAL)"
[[ -d $STORE_DIR ]] || die "STORE_DIR '$STORE_DIR' is not a directory"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pq_store_bench.XXXXXX")
stores=$(mktemp -d "$STORE_DIR/pq_store_bench.XXXXXX")
trap 'rm -rf -- "$tmp" "$stores"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# time_runs KEY PREPARE COMMAND...: RUNS times PREPARE (untimed, ":" for
# none) then COMMAND; the median wall seconds in T[KEY], the median CPU
# seconds (user + sys, children included) in CPU[KEY]: on a shared machine
# the wall time moves with the others' load, the CPU time much less.
declare -A T CPU
time_runs() {
	local key=$1 prepare=$2 i wall user sys times=() cpus=() TIMEFORMAT='%3R %3U %3S'
	shift 2
	for ((i = 1; i <= RUNS; i++)); do
		"$prepare"
		{ time "$@" > /dev/null 2> "$tmp/cmd.err"; } 2> "$tmp/time.out" ||
			die "$key failed: $(tail -n 5 "$tmp/cmd.err")"
		read -r wall user sys < <(tail -n 1 "$tmp/time.out")
		times+=("$wall")
		cpus+=("$(calc 'sprintf("%.3f", u + s)' u="$user" s="$sys")")
	done
	median "${cpus[@]}"
	CPU[$key]=$REPLY
	median "${times[@]}"
	T[$key]=$REPLY
	log "$(printf '%-30s median %7.3f s wall, %7.3f s cpu; wall of each: %s' "$key" "$REPLY" \
		"${CPU[$key]}" "${times[*]}")"
}

row() { # row LABEL CLASSIC PQ UNIT SCALE: the two figures, scaled, and their ratio
	printf '%-40s %12s %12s %7sx\n' "$1" "$(calc 'sprintf("%.3f", c * k)' c="$2" k="$5")" \
		"$(calc 'sprintf("%.3f", p * k)' p="$3" k="$5")" "$(calc 'sprintf("%.1f", p / c)' p="$3" c="$2")"
}

echo "post-quantum (mlkem768x25519) against classic (X25519) keys, one run"
echo "  machine   $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(getconf _NPROCESSORS_ONLN) CPUs; load $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "  tools     $("$VARSEAL" --version); $("$VARGEN" --version)"
echo

# ---------------------------------------------------------- 1. age level
if [[ -x $PQ_AGE_BENCH ]]; then
	"$PQ_AGE_BENCH" "$RUNS" 200
else
	echo "age level: skipped ($PQ_AGE_BENCH not built: cmake --build build --target pq_age_bench)"
fi
echo

# ---------------------------------------------------------- 2. processes
kinds=(classic pq)
pq_flag() { [[ $1 == pq ]] && echo --pq || true; }
printf 'x%.0s' $(seq 1024) > "$tmp/plain"
for k in "${kinds[@]}"; do
	for i in $(seq 10); do
		# shellcheck disable=SC2046
		"$VARSEAL" keygen $(pq_flag "$k") -o "$tmp/$k-$i.key" 2> /dev/null
		"$VARSEAL" pubkey "$tmp/$k-$i.key" >> "$tmp/$k-10.rcpt"
	done
	head -n 1 "$tmp/$k-10.rcpt" > "$tmp/$k-1.rcpt"
	"$VARSEAL" encrypt -R "$tmp/$k-10.rcpt" -o "$tmp/$k-10.age" "$tmp/plain"
done
cli_keygen() { local i; for ((i = 0; i < CLI_N; i++)); do "$VARSEAL" keygen $cli_flag; done; }
cli_seal() { local i; for ((i = 0; i < CLI_N; i++)); do "$VARSEAL" encrypt -R "$cli_rcpt" "$tmp/plain"; done; }
cli_open() { local i; for ((i = 0; i < CLI_N; i++)); do "$VARSEAL" decrypt -i "$cli_key" "$cli_file"; done; }
for k in "${kinds[@]}"; do
	cli_flag=$(pq_flag "$k")
	time_runs "cli keygen $k" : cli_keygen
	cli_rcpt=$tmp/$k-1.rcpt
	time_runs "cli seal 1 $k" : cli_seal
	cli_rcpt=$tmp/$k-10.rcpt
	time_runs "cli seal 10 $k" : cli_seal
	cli_key=$tmp/$k-10.key cli_file=$tmp/$k-10.age
	time_runs "cli open last of 10 $k" : cli_open
done
echo "varseal processes, median of $RUNS runs of $CLI_N processes, milliseconds per process"
printf '%-40s %12s %12s %8s\n' "" "classic ms" "pq ms" "pq/cl"
scale=$(calc '1000 / n' n="$CLI_N")
row "varseal keygen" "${T[cli keygen classic]}" "${T[cli keygen pq]}" ms "$scale"
row "varseal encrypt 1 KiB, 1 recipient" "${T[cli seal 1 classic]}" "${T[cli seal 1 pq]}" ms "$scale"
row "varseal encrypt 1 KiB, 10 recipients" "${T[cli seal 10 classic]}" "${T[cli seal 10 pq]}" ms "$scale"
row "varseal decrypt, own stanza last of 10" "${T[cli open last of 10 classic]}" \
	"${T[cli open last of 10 pq]}" ms "$scale"
echo

# -------------------------------------------------------------- 3. store
log "making 3 admin keys and $MACHINES machine keys of each kind (untimed)"
sample=$(printf 'machine-%04d' "$(((MACHINES + 1) / 2))")
write_spec() { # write_spec KIND N_ADMINS FILE
	local k=$1 n=$2 a m
	{
		echo "admins:"
		for ((a = 1; a <= n; a++)); do echo "  admin$a: $(cat "$tmp/$k-admin$a.pub")"; done
		echo "machines:"
		for ((m = 1; m <= MACHINES; m++)); do
			printf '  machine-%04d:\n    key: %s\n    generators: [app]\n' "$m" "${pub[m]}"
		done
		app_generator
	} > "$3"
}
declare -a pub
sizes=()
for k in "${kinds[@]}"; do
	flag=$(pq_flag "$k")
	for a in 1 2 3; do
		# shellcheck disable=SC2086
		"$VARSEAL" keygen $flag -o "$tmp/$k-admin$a.key" 2> /dev/null
		"$VARSEAL" pubkey "$tmp/$k-admin$a.key" > "$tmp/$k-admin$a.pub"
	done
	for ((m = 1; m <= MACHINES; m++)); do
		# shellcheck disable=SC2086
		text=$("$VARSEAL" keygen $flag 2> /dev/null)
		printf -v name 'machine-%04d' "$m"
		[[ $name == "$sample" ]] && (umask 077 && printf '%s\n' "$text" > "$tmp/$k-sample.key")
		[[ $text =~ \#\ public\ key:\ (age1[0-9a-z]+) ]] || die "no public key in keygen's output"
		pub[m]=${BASH_REMATCH[1]}
	done
	write_spec "$k" 2 "$tmp/$k-2.yaml"
	write_spec "$k" 3 "$tmp/$k-3.yaml"
done
log "specs: classic $(stat -c %s "$tmp/classic-2.yaml") bytes, post-quantum $(stat -c %s "$tmp/pq-2.yaml") bytes"

next_store() { gen_n=$((gen_n + 1)); cur=$stores/$kind-gen.$gen_n; }
generate() { "$VARGEN" generate -f "$tmp/$kind-2.yaml" --store "$cur"; }
check() { "$VARGEN" check -f "$tmp/$kind-2.yaml" --store "$stores/$kind-gen.1"; }
copy_store() { rekey_n=$((rekey_n + 1)); cur=$stores/$kind-rekey.$rekey_n; cp -a -- "$stores/$kind-gen.1" "$cur"; }
rekey() { "$VARSEAL" rekey -f "$tmp/$kind-3.yaml" --store "$cur" -i "$tmp/$kind-admin1.key"; }
rel=vars/per-machine/$sample/app/jwt-secret/secret
for kind in "${kinds[@]}"; do
	gen_n=0 rekey_n=0
	time_runs "generate $kind" next_store generate
	time_runs "check $kind" : check
	value=$("$VARSEAL" decrypt -i "$tmp/$kind-admin1.key" "$stores/$kind-gen.1/$rel")
	time_runs "rekey $kind" copy_store rekey
	for ((i = 1; i <= rekey_n; i++)); do
		s=$stores/$kind-rekey.$i
		"$VARGEN" check -f "$tmp/$kind-3.yaml" --store "$s" > "$tmp/check.out" 2>&1 ||
			die "vargen check fails after rekey in $s: $(tail -n 3 "$tmp/check.out")"
		for key in "$tmp/$kind-admin3.key" "$tmp/$kind-sample.key"; do
			[[ $("$VARSEAL" decrypt -i "$key" "$s/$rel") == "$value" ]] ||
				die "$s/$rel does not open to the generated value with $key after rekey"
		done
	done
	sizes[${#sizes[@]}]="$kind $(du -sk "$stores/$kind-gen.1" | cut -f 1) KiB"
done
grep -aq '^-> mlkem768x25519 ' "$stores/pq-rekey.1/$rel" || die "the hybrid store's secrets have no hybrid stanza"
if grep -aq '^-> X25519 ' "$stores/pq-rekey.1/$rel"; then
	die "a hybrid store's secret has a classic stanza"
fi

echo "the store: $MACHINES machines x 3 secrets, 2 admins (3 for rekey), on $STORE_DIR ($(stat -f -c %T "$STORE_DIR"))"
echo "  sizes: ${sizes[*]}; median of $RUNS runs, seconds"
printf '%-40s %12s %12s %8s\n' "" "classic s" "pq s" "pq/cl"
row "vargen generate, wall" "${T[generate classic]}" "${T[generate pq]}" s 1
row "               cpu (user + sys)" "${CPU[generate classic]}" "${CPU[generate pq]}" s 1
row "vargen check, wall" "${T[check classic]}" "${T[check pq]}" s 1
row "varseal rekey (+1 admin), wall" "${T[rekey classic]}" "${T[rekey pq]}" s 1
row "               cpu (user + sys)" "${CPU[rekey classic]}" "${CPU[rekey pq]}" s 1
echo "  rekey reseals header only (payloads kept); generate and rekey work on every core"
echo "  correct: vargen check ok after every rekey; $sample/app/jwt-secret opens to its value"
echo "           with the new admin's key and the machine's, hybrid stanzas only"
echo
echo "goals (the hybrid store)"
for key in generate rekey; do
	t=${T[$key pq]}
	if (($(calc '(t < g)' t="$t" g="$GOAL_S"))); then verdict=PASS; else verdict=MISS; fi
	printf '  %s  %-16s < %s s   (%s s)\n' "$verdict" "$key" "$GOAL_S" "$(calc 'sprintf("%.3f", t)' t="$t")"
done
exit 0
