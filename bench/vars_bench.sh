#!/usr/bin/env bash
# vars_bench.sh - how long vargen generate, vargen check and varseal rekey
# take on a large spec, with the real `age` and a plain `cp -a` of the
# store measured in the same run for context; and the read-only commands
# on the generated store: vargen check, varseal rekey --plan, vargen
# generate --plan and vargen prune --plan (the plans with the third admin
# in the spec, so that rekey's plan lists every secret).
#
# This is a benchmark, not a test: it exits 0 whether or not the targets
# are met, and non-zero only if a command fails or a correctness check
# (vargen check after rekey, decryption with the new admin's key, the
# plan naming every secret) fails. A plan exits 0 (nothing to do) or 4
# (something to do): both count as success. A plan command the tools do
# not have yet (a usage error, exit status 2) is reported as not available.
#
# The spec: MACHINES machines (default 1000), each with its own key and the
# one generator `app` with 3 files (api-key: random 32 bytes base64,
# db-password: password of 24 characters, jwt-secret: random 64 bytes hex),
# and 2 admins; a third admin is then added for the rekey measurement.
#
# Environment:
#   VARGEN     vargen binary  (default: ../build/gen/vargen next to this script)
#   VARSEAL    varseal binary (default: ../build/seal/varseal next to this script)
#   AGE        age binary     (default: age)
#   AGE_KEYGEN age-keygen     (default: age-keygen; varseal keygen when missing)
#   MACHINES   number of machines (default: 1000)
#   RUNS       runs per measurement, the median counts (default: 3)
#   PEER_N     secrets sealed with the age binary, extrapolated to all
#              (default: 300)
#   TMPDIR     where the work directory goes (default: /tmp)
#   STORE_DIR  where the store and its copies go instead (e.g. /dev/shm);
#              default: inside the work directory
#   SETTLE_S   seconds to wait before each rekey run after the first
#              (default: 65 on ext4 without a journal, else 0; see below)
#
# Every timed run starts after a `sync`, so that writeback left over from
# setup or from the previous run is not billed to it; page caches are not
# dropped. Key generation and spec writing are not timed.
#
# No file is deleted before a timed run: every run gets a directory of its
# own, all removed at exit. ext4 without a journal (this VM's root file
# system) will not reuse an inode freed in the last 60 s (360 s while its
# inode table block is dirty, hence the sync) and steps over every such
# inode again on each allocation (fs/ext4/ialloc.c, recently_deleted), so
# creating 12,000 files right after deleting 12,000 costs several times
# more, and more with every repeat. A rekey replaces (and so frees) every
# file it reseals, so its runs after the first wait SETTLE_S seconds. For
# the same reason, give the file system a minute after a previous run of
# this script (or any other mass deletion on it) before the next.

# Functions run through trap and measure look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail
export LC_ALL=C # '.' as the decimal point, in EPOCHREALTIME and in awk

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=vars_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
VARGEN=${VARGEN:-$script_dir/../build/gen/vargen}
VARSEAL=${VARSEAL:-$script_dir/../build/seal/varseal}
AGE=${AGE:-age}
AGE_KEYGEN=${AGE_KEYGEN:-age-keygen}
MACHINES=${MACHINES:-1000}
RUNS=${RUNS:-3}
PEER_N=${PEER_N:-300}
STORE_DIR=${STORE_DIR:-}
SETTLE_S=${SETTLE_S:-}

# Targets, in seconds.
TARGET_GENERATE=1
TARGET_REKEY=1
TARGET_READ=0.3 # vargen check and every --plan

FILES_PER_MACHINE=3

[[ $MACHINES =~ ^[1-9][0-9]*$ ]] || die "MACHINES must be a positive integer, got '$MACHINES'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $PEER_N =~ ^[1-9][0-9]*$ ]] || die "PEER_N must be a positive integer, got '$PEER_N'"
[[ -z $SETTLE_S || $SETTLE_S =~ ^[0-9]+$ ]] || die "SETTLE_S must be a whole number of seconds, got '$SETTLE_S'"
[[ -x $VARGEN ]] || die "vargen not found at $VARGEN (build it, or set VARGEN)"
[[ -x $VARSEAL ]] || die "varseal not found at $VARSEAL (build it, or set VARSEAL)"
for tool in "$AGE" awk cp find rm sync stat df du wc head od base64 tr getconf; do
	command -v "$tool" > /dev/null || die "'$tool' not found"
done
total_secrets=$((MACHINES * FILES_PER_MACHINE))
((PEER_N <= total_secrets)) || PEER_N=$total_secrets

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vars_bench.XXXXXX")
store_base=$tmp
if [[ -n $STORE_DIR ]]; then
	[[ -d $STORE_DIR ]] || die "STORE_DIR '$STORE_DIR' is not a directory"
	store_base=$(mktemp -d "$STORE_DIR/vars_bench_store.XXXXXX")
fi
cleanup() {
	rm -rf -- "$tmp"
	if [[ $store_base != "$tmp" ]]; then rm -rf -- "$store_base"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gen_store=$store_base/gen    # generate's stores: gen.1 .. gen.RUNS
pre_rekey=$store_base/gen.1  # the generated store: checked, copied, rekeyed
rekey_store=$store_base/rekey # rekey's stores, each a cp -a of pre_rekey
floor_copy=$store_base/copy  # cp -a targets
peer_dir=$store_base/peer    # age's output

# measure KEY PREPARE COMMAND [ARGS...]
# RUNS times: runs the shell function PREPARE (untimed; ":" for none),
# then sync, then COMMAND (a program or a shell function) with stdout to
# /dev/null, timed by bash's `time`. A failing COMMAND stops the benchmark.
# Records the median wall time in T[KEY], its spread in SPREAD[KEY]
# ("min..max") and the median CPU time (user+sys, child processes
# included) in CPU[KEY].
declare -A T CPU SPREAD
measure() {
	local key=$1 prepare=$2
	shift 2
	local walls=() cpus=() i wall user sys cpu TIMEFORMAT='%3R %3U %3S'
	for ((i = 1; i <= RUNS; i++)); do
		"$prepare"
		sync
		{ time "$@" > /dev/null 2> "$tmp/cmd.err"; } 2> "$tmp/time.out" ||
			die "$key failed: $(tail -n 5 "$tmp/cmd.err")"
		read -r wall user sys < <(tail -n 1 "$tmp/time.out")
		cpu=$(calc 'sprintf("%.3f", u + s)' u="$user" s="$sys")
		log "$(printf '%-24s run %d/%d: %8.3f s wall, %8.3f s cpu' "$key" "$i" "$RUNS" "$wall" "$cpu")"
		walls+=("$wall")
		cpus+=("$cpu")
	done
	median "${walls[@]}"
	T[$key]=$REPLY
	median "${cpus[@]}"
	CPU[$key]=$REPLY
	SPREAD[$key]=$(printf '%s\n' "${walls[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
		END { printf "%.3f..%.3f", lo, hi }')
}

# The file system type as stat -f names it (ext4 shows as ext2/ext3), and
# as the mount table does; ext4 without a journal is called so.
fs_type() {
	local st mnt src dev journal=""
	st=$(stat -f -c %T "$1")
	read -r mnt src < <(df --output=fstype,source "$1" 2> /dev/null | tail -n 1) || true
	if [[ $mnt == ext4 && -n ${src:-} ]]; then
		dev=$(basename -- "$(readlink -f -- "$src")")
		if [[ -r /sys/fs/ext4/$dev/journal_task ]]; then
			[[ $(cat "/sys/fs/ext4/$dev/journal_task") == "<none>" ]] && journal=", no journal"
		fi
	fi
	if [[ -n ${mnt:-} && $mnt != "$st" ]]; then
		echo "$st (mounted as $mnt$journal)"
	else
		echo "$st"
	fi
}

# ------------------------------------------------------------------ keys
# One key per machine, made before any timing. age-keygen prints the
# identity file (with a "# public key:" line) to stdout.
keygen_one() { # keygen_one -> REPLY = identity file text
	if command -v "$AGE_KEYGEN" > /dev/null; then
		REPLY=$("$AGE_KEYGEN" 2> /dev/null)
	else
		REPLY=$("$VARSEAL" keygen 2> /dev/null)
	fi
}
pub_of() { # pub_of TEXT -> REPLY = age1...
	local re='# public key: (age1[0-9a-z]+)'
	[[ $1 =~ $re ]] || die "no public key in the key generator's output"
	REPLY=${BASH_REMATCH[1]}
}
write_key() { # write_key FILE TEXT
	(umask 077 && printf '%s\n' "$2" > "$1")
}

log "making 3 admin keys and $MACHINES machine keys (untimed)"
declare -a admin_pub
for a in 1 2 3; do
	keygen_one
	write_key "$tmp/admin$a.key" "$REPLY"
	pub_of "$REPLY"
	admin_pub[a]=$REPLY
done
sample_machine=$(printf 'machine-%04d' "$(((MACHINES + 1) / 2))")
declare -a machine_pub
now; kg_t0=$REPLY
for ((m = 1; m <= MACHINES; m++)); do
	keygen_one
	printf -v name 'machine-%04d' "$m"
	if [[ $name == "$sample_machine" ]]; then write_key "$tmp/sample-machine.key" "$REPLY"; fi
	pub_of "$REPLY"
	machine_pub[m]=$REPLY
done
now; kg_s=$(calc 'sprintf("%.1f", b - a)' a="$kg_t0" b="$REPLY")
log "machine keys made in $kg_s s"

# ------------------------------------------------------------------ spec
write_spec() { # write_spec FILE N_ADMINS
	local out=$1 n_admins=$2 a m
	{
		echo "admins:"
		for ((a = 1; a <= n_admins; a++)); do echo "  admin$a: ${admin_pub[a]}"; done
		echo "machines:"
		for ((m = 1; m <= MACHINES; m++)); do
			printf '  machine-%04d:\n    key: %s\n    generators: [app]\n' "$m" "${machine_pub[m]}"
		done
		app_generator
	} > "$out"
}
spec2=$tmp/vars-2admins.yaml
spec3=$tmp/vars-3admins.yaml
write_spec "$spec2" 2
write_spec "$spec3" 3

store_fs=$(fs_type "$store_base")
if [[ -z $SETTLE_S ]]; then
	SETTLE_S=0
	[[ $store_fs == *"no journal"* ]] && SETTLE_S=65
fi
log "stores under $store_base ($store_fs)"
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg 2> /dev/null || echo n/a)

# -------------------------------------------------------------- generate
gen_n=0
next_gen_store() { gen_n=$((gen_n + 1)); cur=$gen_store.$gen_n; }
generate() { "$VARGEN" generate -f "$spec2" --store "$cur"; }
measure "vargen generate" next_gen_store generate
n_files=$(find "$pre_rekey" -type f | wc -l)
n_dirs=$(find "$pre_rekey" -type d | wc -l)
n_secret=$(find "$pre_rekey" -type f -name secret | wc -l)
((n_secret == total_secrets)) || die "generate wrote $n_secret secrets, expected $total_secrets"
store_kib=$(du -sk "$pre_rekey" | awk '{print $1}')

measure "vargen check" : "$VARGEN" check -f "$spec2" --store "$pre_rekey"

# ------------------------------------------------------------------ plans
# Read-only: each runs on the generated store itself. A plan's exit status
# is 0 or 4 (nothing / something to do); 2 is a usage error, which is what
# a tool without that plan says: "not available", untimed.
plan_ok() { # plan_ok COMMAND [ARGS...]: the command, with 4 as success too
	local rc=0
	"$@" || rc=$?
	((rc == 0 || rc == 4)) || { echo "exit status $rc" >&2; return 1; }
}
declare -A NA # key -> why it was not measured
measure_plan() { # measure_plan KEY COMMAND [ARGS...]; stdout of a first run in $tmp/plan.out
	local key=$1 rc=0
	shift
	"$@" > "$tmp/plan.out" 2> "$tmp/plan.err" || rc=$?
	case $rc in
	0 | 4) measure "$key" : plan_ok "$@" ;;
	2)
		NA[$key]="not available: $(head -n 1 "$tmp/plan.err")"
		log "$key: ${NA[$key]}"
		;;
	*) die "$key exited $rc: $(tail -n 5 "$tmp/plan.err")" ;;
	esac
}
measure_plan "varseal rekey --plan" "$VARSEAL" rekey --plan -f "$spec3" --store "$pre_rekey"
n_planned=$(grep -c $'^reseal\t' "$tmp/plan.out" || true)
((n_planned == total_secrets)) ||
	die "varseal rekey --plan with a third admin names $n_planned secrets, expected $total_secrets"
"$VARSEAL" rekey --plan -f "$spec2" --store "$pre_rekey" > "$tmp/plan.out" 2>&1 ||
	die "varseal rekey --plan finds something to reseal right after generate: $(tail -n 3 "$tmp/plan.out")"
measure_plan "vargen generate --plan" "$VARGEN" generate --plan -f "$spec3" --store "$pre_rekey"
measure_plan "vargen prune --plan" "$VARGEN" prune --plan -f "$spec3" --store "$pre_rekey"

sample_rel=vars/per-machine/$sample_machine/app/jwt-secret/secret
sample_plain=$("$AGE" -d -i "$tmp/sample-machine.key" "$pre_rekey/$sample_rel") ||
	die "the machine's key does not open $pre_rekey/$sample_rel"

# ------------------------------------------------------------ peer: age
# The same kind of values, sealed by the age binary one process per
# secret, to the secret's machine and the two admins, into a flat
# directory (no manifests, no directory tree, no sync).
printf '%s' "$(head -c 32 /dev/urandom | base64)" > "$tmp/v0"
printf '%s' "$(head -c 200 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)" > "$tmp/v1"
printf '%s' "$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$tmp/v2"
peer_n=0
next_peer_dir() { peer_n=$((peer_n + 1)); cur=$peer_dir.$peer_n; mkdir -- "$cur"; }
age_loop() {
	local i m
	for ((i = 0; i < PEER_N; i++)); do
		m=$((i / FILES_PER_MACHINE + 1))
		"$AGE" -r "${machine_pub[m]}" -r "${admin_pub[1]}" -r "${admin_pub[2]}" \
			-o "$cur/$i.age" "$tmp/v$((i % FILES_PER_MACHINE))"
	done
}
peer_key="age loop ($PEER_N)"
measure "$peer_key" next_peer_dir age_loop
age_check=$("$AGE" -d -i "$tmp/admin1.key" "$cur/2.age")
[[ $age_check == "$(cat "$tmp/v2")" ]] || die "age's own output does not decrypt back"
age_extra=$(calc 'sprintf("%.6f", t * n / k)' t="${T[$peer_key]}" n="$total_secrets" k="$PEER_N")

# ----------------------------------------------------- floor: cp -a store
copy_n=0
next_copy() { copy_n=$((copy_n + 1)); cur=$floor_copy.$copy_n; }
copy_store() { cp -a -- "$pre_rekey" "$cur"; }
copy_store_sync() { cp -a -- "$pre_rekey" "$cur" && sync -f "$cur"; }
measure "cp -a store" next_copy copy_store
measure "cp -a store + sync -f" next_copy copy_store_sync

# ----------------------------------------------------------------- rekey
# A third admin in the spec; every secret's recipients are now stale.
if "$VARGEN" check -f "$spec3" --store "$pre_rekey" > /dev/null 2>&1; then
	die "vargen check passes with a third admin before rekey: the rekey would measure nothing"
fi
rekey_n=0
restore_store() {
	rekey_n=$((rekey_n + 1))
	cur=$rekey_store.$rekey_n
	cp -a -- "$pre_rekey" "$cur"
	if ((rekey_n > 1 && SETTLE_S > 0)); then
		log "waiting $SETTLE_S s for the inodes the last rekey freed to become reusable"
		sleep "$SETTLE_S"
	fi
}
rekey() { "$VARSEAL" rekey -f "$spec3" --store "$cur" -i "$tmp/admin1.key"; }
measure "varseal rekey" restore_store rekey

log "checking the rekeyed stores"
for ((i = 1; i <= rekey_n; i++)); do
	s=$rekey_store.$i
	"$VARGEN" check -f "$spec3" --store "$s" > "$tmp/check.out" 2>&1 ||
		die "vargen check fails after rekey in $s: $(tail -n 5 "$tmp/check.out")"
	new_admin_plain=$("$AGE" -d -i "$tmp/admin3.key" "$s/$sample_rel") ||
		die "age -d -i (new admin's key) cannot open $s/$sample_rel after rekey"
	[[ $new_admin_plain == "$sample_plain" ]] || die "$s/$sample_rel decrypts to a different value after rekey"
	machine_plain=$("$AGE" -d -i "$tmp/sample-machine.key" "$s/$sample_rel") ||
		die "the machine's key no longer opens $s/$sample_rel after rekey"
	[[ $machine_plain == "$sample_plain" ]] || die "$s/$sample_rel: the machine sees a different value after rekey"
done
[[ $sample_plain =~ ^[0-9a-f]{128}$ ]] || die "jwt-secret is not 64 bytes of hex: '$sample_plain'"
correct="vargen check ok after each rekey; $sample_machine/app/jwt-secret opens with admin3 (age -d) and the machine key"

# --------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
echo
echo "vars benchmark: $MACHINES machines x $FILES_PER_MACHINE secrets, 2 admins (3 for rekey)"
printf '  store       %s on %s\n' "$store_base" "$store_fs"
printf '  written     %d files (%d secrets + manifests + .generator), %d directories, %d KiB\n' \
	"$n_files" "$n_secret" "$n_dirs" "$store_kib"
printf '  runs        median (min..max) of %d, wall time, each after a sync (caches not dropped)\n' "$RUNS"
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; %s; age %s\n' "$("$VARGEN" --version)" "$("$VARSEAL" --version)" \
	"$("$AGE" --version)"
printf '  keys        %d machine keys made untimed in %s s\n' "$MACHINES" "$kg_s"
printf '  load avg    %s at the start, %s at the end (other work on the machine skews wall times)\n' \
	"$load_start" "$(cut -d ' ' -f 1-3 /proc/loadavg 2> /dev/null || echo n/a)"
if ((SETTLE_S > 0)); then
	printf '  settle      %d s wait before rekey runs 2..%d (freed inodes; see the script header)\n' \
		"$SETTLE_S" "$RUNS"
fi
echo
printf '%-34s %10s %14s %10s %12s\n' "" "wall s" "(min..max)" "cpu s" "per secret"
row() { # row LABEL WALL CPU [SPREAD]
	printf '%-34s %10s %14s %10s %10s ms\n' "$1" "$(calc 'sprintf("%.3f", t)' t="$2")" "${4:-}" "$3" \
		"$(calc 'sprintf("%.3f", 1000 * t / n)' t="$2" n="$total_secrets")"
}
key_row() { # key_row LABEL KEY
	row "$1" "${T[$2]}" "${CPU[$2]}" "${SPREAD[$2]}"
}
key_row "vargen generate" "vargen generate"
key_row "vargen check" "vargen check"
plan_row() { # plan_row KEY: a row, or why there is none
	if [[ -n ${NA[$1]:-} ]]; then
		printf '%-34s %10s %14s %10s %12s\n' "$1" "n/a" "" "n/a" "n/a"
	else
		key_row "$1" "$1"
	fi
}
for key in "varseal rekey --plan" "vargen generate --plan" "vargen prune --plan"; do
	plan_row "$key"
done
key_row "varseal rekey (+1 admin)" "varseal rekey"
row "age loop, EXTRAPOLATED from $PEER_N" "$age_extra" "n/a"
printf '%-34s %10s %14s %10s\n' "  (measured: $PEER_N secrets)" \
	"$(calc 'sprintf("%.3f", t)' t="${T[$peer_key]}")" "${SPREAD[$peer_key]}" "${CPU[$peer_key]}"
key_row "floor: cp -a store" "cp -a store"
key_row "floor: cp -a store + sync -f" "cp -a store + sync -f"
echo "  per secret = wall / $total_secrets secrets"
echo "  cpu s      = user + sys, median, children included (age loop: all $PEER_N processes)"
echo "  age loop   = one age process per secret (-r machine -r admin1 -r admin2), flat directory;"
echo "               writes $total_secrets files where vargen writes $n_files and $n_dirs directories"
echo "  floor      = copying the finished store: the file system's cost of creating that many"
echo "               files and directories, without (and with) making them durable"
echo
echo "correctness   $correct"
echo "store fs      $store_fs"
case $store_fs in
tmpfs*) echo "              tmpfs: creating files and syncfs are memory operations here" ;;
*)
	echo "              note: on this VM's ext4, the cost of creating (and syncing) thousands of"
	echo "              files and directories can dominate: see the cp -a floor, and compare a"
	echo "              run with STORE_DIR=/dev/shm"
	;;
esac
echo
echo "targets"
verdict "$(calc '(t < x)' t="${T[vargen generate]}" x="$TARGET_GENERATE")" \
	"vargen generate < ${TARGET_GENERATE} s   ($(calc 'sprintf("%.3f", t)' t="${T[vargen generate]}") s)"
verdict "$(calc '(t < x)' t="${T[varseal rekey]}" x="$TARGET_REKEY")" \
	"varseal rekey   < ${TARGET_REKEY} s   ($(calc 'sprintf("%.3f", t)' t="${T[varseal rekey]}") s)"
for key in "vargen check" "varseal rekey --plan" "vargen generate --plan" "vargen prune --plan"; do
	if [[ -n ${NA[$key]:-} ]]; then
		printf '  n/a   %-22s < %s s   (%s)\n' "$key" "$TARGET_READ" "${NA[$key]}"
	else
		verdict "$(calc '(t < x)' t="${T[$key]}" x="$TARGET_READ")" \
			"$(printf '%-22s < %s s   (%s s)' "$key" "$TARGET_READ" \
				"$(calc 'sprintf("%.3f", t)' t="${T[$key]}")")"
	fi
done
exit 0
