#!/usr/bin/env bash
# disk_bench.sh - the store commands on a real disk against the floor
# measured in the same run (issue 15, "stores on real disks"):
#
#   vargen generate   a new store of MACHINES machines (default 1000) x 3
#                     secrets, ADMINS admins (default 2)
#   varseal rekey     after adding an admin, on a fresh cp -a of the store
#
# each beside its floor: the same files and directories created with the
# tools' own sync pattern by bench/disk_floor.c (temporaries written with
# no fsync of their own, syncfs, renames, syncfs, the .commit records
# renamed, syncfs: vf_txn_commit in format/vars/store.c), and for generate
# also `cp -a` of the finished store followed by `sync -f`. Goal: each
# tool within 1.5x of its floor.
#
# Two conditions, each its own set of runs:
#   fresh           nothing deleted during the runs: every output is kept
#                   until the end (the file system only grows)
#   after deletes   before each timed command a copy of the store (13,000
#                   inodes at 1000 machines) is made and removed, then
#                   sync; the timed command runs at once. The same
#                   deletion before every command, tool or floor.
#                   ext4 without a journal will not reuse an inode freed
#                   in the last 60 s (360 s while its inode table block is
#                   dirty; fs/ext4/ialloc.c, recently_deleted) and steps
#                   over each such inode on every allocation: this is the
#                   case behind "rekey 1.3 s right after mass deletions".
# Every timed command of a run runs in turn (tool, floors, tool, ...), so
# that the machine's other load and the file system's state fall on all
# of them alike.
#
# Also, for reading the ratios:
#   - the same tool and txn floor on RAM_DIR (default /dev/shm, a tmpfs):
#     what the tool costs with no disk at all; tool(disk) - tool(RAM) is
#     what the disk adds to the tool, to set beside floor(disk) -
#     floor(RAM), what the disk adds to the bare file creation;
#   - the per-file fsync pattern (vf_atomic's: fsync, rename, fsync of
#     the directory, file after file), fresh only: what syncfs saves;
#   - the layout: the txn floor (generate, and rekey's rewrite) of the
#     same data in leaner layouts, with their file and directory counts:
#       A  today: machine/generator/secret/{secret,recipients}, plus
#          generator/{.commit,.generator}
#       B  no directory per secret: generator/<secret>.secret and
#          <secret>.recipients
#       C  one file per secret (its recipients inside), .generator inside
#          .commit: 4 files per machine and generator
#       D  one file per machine and generator, no directory per machine
#     (the store's layout is not changed; only the floor is timed).
#
# This is a benchmark, not a test: it exits 0 whether or not the goals
# are met, and non-zero only if a command fails or a correctness check
# fails (vargen check of the generated and the rekeyed stores; a rekeyed
# secret opens to its value with the new admin's key; the floor's tree has
# the store's paths and sizes).
#
# Environment:
#   VARGEN, VARSEAL   the tools (default: ../build/{gen/vargen,seal/varseal})
#   DISK_FLOOR        ../build/bench/disk_floor (cmake --build build --target disk_floor)
#   MACHINES          machines in the store (default 1000)
#   ADMINS            admins in the spec (default 2; rekey adds one more)
#   RUNS              runs per figure and condition, the median counts (default 5)
#   STORE_DIR         where the stores go: a directory on a real disk
#                     (default ${TMPDIR:-/tmp}); a tmpfs or ramfs is refused
#                     unless FORCE=1
#   RAM_DIR           a tmpfs for the RAM reference (default /dev/shm;
#                     empty: skipped)
#   FSYNC_RUNS        runs of the per-file fsync floor (default 1; 0 skips it)
#   SETTLE_S          seconds between the two conditions (default 70)
#   OPENSSL           the openssl command, for X25519's speed (default openssl)
#   CALL_TIMER        ../build/bench/call_timer.so (cmake --build build --target
#                     call_timer): one more generate, untimed, with it
#                     preloaded, for the time generate spends in OpenSSL's
#                     crypto; empty, or unset and not built: that line is
#                     left out
#
# Wall times (bash's `time`) are medians with the spread min..max; the CPU
# column is the median of the runs' user + sys. Every generated and every
# rekeyed store is checked (untimed) right after its run. The stores take
# about 55 MiB each at 1000 machines; each condition keeps about 12 x RUNS
# of them until its end, and removing them takes a while with online
# discard (untimed; the script then waits SETTLE_S seconds before the
# second condition so that this removal does not weigh on its first runs).
# Functions run through sample look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail
export LC_ALL=C

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bench_name=disk_bench
# shellcheck source=bench/lib.sh
. "$script_dir/lib.sh"
VARGEN=${VARGEN:-$script_dir/../build/gen/vargen}
VARSEAL=${VARSEAL:-$script_dir/../build/seal/varseal}
DISK_FLOOR=${DISK_FLOOR:-$script_dir/../build/bench/disk_floor}
MACHINES=${MACHINES:-1000}
ADMINS=${ADMINS:-2}
RUNS=${RUNS:-5}
FSYNC_RUNS=${FSYNC_RUNS:-1}
STORE_DIR=${STORE_DIR:-${TMPDIR:-/tmp}}
RAM_DIR=${RAM_DIR-/dev/shm}
FORCE=${FORCE:-0}
SETTLE_S=${SETTLE_S:-70}
GOAL=1.5 # tool / floor
OPENSSL=${OPENSSL:-openssl}
if [[ -z ${CALL_TIMER+set} ]]; then # not built: the line is left out
	CALL_TIMER=$script_dir/../build/bench/call_timer.so
	[[ -r $CALL_TIMER ]] || CALL_TIMER=""
elif [[ -n $CALL_TIMER && ! -r $CALL_TIMER ]]; then
	die "CALL_TIMER '$CALL_TIMER' not found (build it: cmake --build build --target call_timer; empty skips it)"
fi
[[ -n $CALL_TIMER ]] && CALL_TIMER=$(realpath -- "$CALL_TIMER")

for v in MACHINES ADMINS RUNS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
for v in FSYNC_RUNS SETTLE_S; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((ADMINS <= 8)) || die "ADMINS must be at most 8"
for b in VARGEN VARSEAL DISK_FLOOR; do
	[[ -x ${!b} ]] || die "${b,,} not found at ${!b} (build it, or set $b)"
	printf -v "$b" '%s' "$(realpath -- "${!b}")"
done
for tool in "$OPENSSL" python3 awk cp find rm sync stat du sort getconf; do
	command -v "$tool" > /dev/null || die "'$tool' not found"
done
[[ -d $STORE_DIR && -w $STORE_DIR ]] || die "STORE_DIR '$STORE_DIR' is not a writable directory"
store_fs=$(stat -f -c %T "$STORE_DIR")
if [[ $store_fs == tmpfs || $store_fs == ramfs ]] && [[ $FORCE != 1 ]]; then
	die "STORE_DIR '$STORE_DIR' is a $store_fs: the point is a real disk (set STORE_DIR, or FORCE=1)"
fi
if [[ -n $RAM_DIR ]]; then
	[[ -d $RAM_DIR && -w $RAM_DIR ]] || die "RAM_DIR '$RAM_DIR' is not a writable directory (empty skips it)"
	[[ $(stat -f -c %T "$RAM_DIR") == tmpfs ]] || die "RAM_DIR '$RAM_DIR' is not a tmpfs (empty skips it)"
fi

work=$(mktemp -d "$STORE_DIR/disk_bench.XXXXXX")
ram=""
[[ -n $RAM_DIR ]] && ram=$(mktemp -d "$RAM_DIR/disk_bench.XXXXXX")
cleanup() {
	log "removing $work${ram:+ and $ram}"
	rm -rf -- "$work" ${ram:+"$ram"}
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The file system as the mount table names it, and whether ext4 has a journal.
fs_desc() {
	local st mnt src dev extra=""
	st=$(stat -f -c %T "$1")
	read -r mnt src < <(df --output=fstype,source "$1" 2> /dev/null | tail -n 1) || true
	if [[ ${mnt:-} == ext4 && -n ${src:-} ]]; then
		dev=$(basename -- "$(readlink -f -- "$src")")
		if [[ -r /sys/fs/ext4/$dev/journal_task ]]; then
			[[ $(cat "/sys/fs/ext4/$dev/journal_task") == "<none>" ]] && extra=", no journal"
		fi
		grep -qw discard "/proc/fs/ext4/$dev/options" 2> /dev/null && extra+=", online discard"
	fi
	echo "${mnt:-$st} on ${src:-?}$extra"
}

# ------------------------------------------------------------------ keys
keys=$work/keys
mkdir -m 700 "$keys"
make_keys_python() { # N DIR: bench/make_keys.py, 9 admins
	python3 "$script_dir/make_keys.py" "$1" "$2" 9
}
make_keys_varseal() {
	local n=$1 dir=$2 a m text
	for ((a = 1; a <= 9; a++)); do
		"$VARSEAL" keygen -o "$dir/admin$a.key" 2> /dev/null
		"$VARSEAL" pubkey "$dir/admin$a.key" > "$dir/admin$a.pub"
	done
	: > "$dir/machines.pub"
	for ((m = 0; m < n; m++)); do
		text=$("$VARSEAL" keygen 2> /dev/null)
		[[ $text =~ (age1[0-9a-z]+) ]] && echo "${BASH_REMATCH[1]}" >> "$dir/machines.pub"
	done
}
if python3 -c 'import cryptography.hazmat.primitives.asymmetric.x25519' 2> /dev/null; then
	log "making $MACHINES machine keys and the admin keys (Python cryptography, untimed)"
	make_keys_python "$MACHINES" "$keys"
else
	log "making $MACHINES machine keys and the admin keys (varseal keygen, untimed; slow)"
	make_keys_varseal "$MACHINES" "$keys"
fi
chmod 600 "$keys"/*.key
(($(wc -l < "$keys/machines.pub") == MACHINES)) || die "made $(wc -l < "$keys/machines.pub") machine keys, expected $MACHINES"

# ------------------------------------------------------------------ specs
spec() { # spec N_ADMINS OUT
	local a
	{
		echo "admins:"
		for ((a = 1; a <= $1; a++)); do echo "  admin$a: $(cat "$keys/admin$a.pub")"; done
		echo "machines:"
		awk '{ printf "  m%05d:\n    key: %s\n    generators: [app]\n", NR - 1, $1 }' "$keys/machines.pub"
		app_generator
	} > "$2"
}
spec_gen=$work/spec.yaml
spec_rekey=$work/spec+1.yaml
spec "$ADMINS" "$spec_gen"
spec "$((ADMINS + 1))" "$spec_rekey"
new_admin_key=$keys/admin$((ADMINS + 1)).key
sample_rel=vars/per-machine/m00000/app/jwt-secret/secret

# ------------------------------------------------- the reference stores
# ref: a generated store (copied for each rekey); ref_rk: ref rekeyed, for
# the sizes rekey writes. Untimed.
ref=$work/ref ref_rk=$work/ref-rekeyed
log "generating the reference store (untimed)"
"$VARGEN" generate -f "$spec_gen" --store "$ref" > /dev/null 2> "$work/cmd.err" ||
	die "vargen generate: $(tail -n 5 "$work/cmd.err")"
"$VARGEN" check -f "$spec_gen" --store "$ref" > /dev/null 2> "$work/cmd.err" ||
	die "vargen check of a fresh store: $(tail -n 5 "$work/cmd.err")"
sample_value=$("$VARSEAL" decrypt -i "$keys/admin1.key" "$ref/$sample_rel")
cp -a -- "$ref" "$ref_rk"
# Inode numbers of the copy, before its rekey: the files that rekey
# rewrites are those it holds under another inode afterwards (comparing
# with ref itself would count every file, cp -a gave each a new inode).
inodes() { (cd -- "$1" && find . -type f -printf '%i %P\n' | sort -k 2); }
inodes "$ref_rk" > "$work/inodes-before-rekey"
"$VARSEAL" rekey -f "$spec_rekey" --store "$ref_rk" -i "$keys/admin1.key" > /dev/null 2> "$work/cmd.err" ||
	die "varseal rekey: $(tail -n 5 "$work/cmd.err")"

# manifest STORE: one line per entry, parents first (disk_floor's input)
manifest() {
	(cd -- "$1" && find . -mindepth 1 \( -type d -printf 'd %P\n' \) -o \( -type f -printf 'f %P %s\n' \))
}
# rewritten LISTING AFTER: the files AFTER holds under another inode than
# the inode listing (inodes) taken before the change says
rewritten() {
	join -1 2 -2 2 "$1" <(inodes "$2") | awk '$2 != $3 { print $1 }'
}
manifest "$ref" > "$work/man-store"
manifest "$ref_rk" > "$work/man-rk-full"
rewritten "$work/inodes-before-rekey" "$ref_rk" | sort > "$work/rewritten"
n_rewritten=$(wc -l < "$work/rewritten")
rk_kinds=$(awk -F/ '{ c[$NF]++ } END { for (k in c) printf "%s%d %s", (n++ ? ", " : ""), c[k], k }' "$work/rewritten")

# layout L MODE < manifest of today's store: the same data laid out as L
# (A B C D, see the header); MODE create (every entry) or rekey (the files
# that hold a file the rekey rewrote, each with its size after the rekey,
# the .commit records among them removed first, as rekey does).
layout() {
	awk -v L="$1" -v mode="$2" -v list="$work/rewritten" '
	function out_path(p, n) {
		if (L == "A") return $2
		if (L == "B") return n == 6 ? p[1] "/" p[2] "/" p[3] "/" p[4] "/" p[5] "." p[6] : $2
		if (L == "C") return n == 6 ? p[1] "/" p[2] "/" p[3] "/" p[4] "/" p[5] \
		                            : p[1] "/" p[2] "/" p[3] "/" p[4] "/.commit"
		return p[1] "/" p[2] "/" p[3] "." p[4]
	}
	BEGIN { while ((getline line < list) > 0) rw[line] = 1 }
	{ n = split($2, p, "/") }
	$1 == "d" {
		if (mode == "rekey") next
		if (L == "A" || ((L == "B" || L == "C") && n <= 4) || (L == "D" && n <= 2))
			seq[++k] = $0
		next
	}
	$1 == "f" {
		o = out_path(p, n)
		if ($2 in rw) touched[o] = 1
		if (!(o in size)) seq[++k] = "f " o
		size[o] += $3
	}
	END {
		if (mode == "rekey" && L != "D")
			for (o in touched) if (o ~ /\/\.commit$/) print "u " o
		for (i = 1; i <= k; i++) {
			split(seq[i], q, " ")
			if (q[1] == "f" && mode == "rekey" && !(q[2] in touched)) continue
			print q[1] == "f" ? seq[i] " " size[q[2]] : seq[i]
		}
	}'
}
layouts=(A B C D)
declare -A L_FILES L_DIRS L_BYTES L_RK_FILES
for l in "${layouts[@]}"; do
	layout "$l" create < "$work/man-store" > "$work/man-$l"
	layout "$l" rekey < "$work/man-rk-full" > "$work/man-rk-$l"
	read -r "L_FILES[$l]" "L_DIRS[$l]" "L_BYTES[$l]" < <(awk '
		$1 == "f" { f++; b += $3 } $1 == "d" { d++ } END { print f + 0, d + 0, b + 0 }' "$work/man-$l")
	L_RK_FILES[$l]=$(grep -c '^f ' "$work/man-rk-$l")
done
removed_commits=$(grep -c '^u ' "$work/man-rk-A" || true)
# today's rekey manifest must be what the tool did: the rewritten files
(($(grep -c '^f ' "$work/man-rk-A") == n_rewritten)) ||
	die "the rekey floor rewrites $(grep -c '^f ' "$work/man-rk-A") files, rekey rewrote $n_rewritten"
awk '$1 == "f" { print $2 }' "$work/man-rk-A" | sort | cmp -s - "$work/rewritten" ||
	die "the rekey floor rewrites other files than rekey did"
for l in "${layouts[@]}"; do
	((L_BYTES[$l] == L_BYTES[A])) || die "layout $l holds ${L_BYTES[$l]} bytes, today's ${L_BYTES[A]}"
done
"$DISK_FLOOR" txn "$work/floor-check" < "$work/man-A" || die "disk_floor txn failed"
tree_of() { (cd -- "$1" && find . -mindepth 1 -printf '%y %P %s\n' | awk '$1 == "d" { $3 = "" } 1' | sort); }
if ! diff <(tree_of "$ref") <(tree_of "$work/floor-check") > "$work/tree.diff"; then
	die "disk_floor's tree differs from the store's: $(head -n 4 "$work/tree.diff")"
fi
# the stores of each alternative layout, for their rekey floor's copies
for l in "${layouts[@]}"; do
	"$DISK_FLOOR" txn "$work/ref-$l" < "$work/man-$l" || die "disk_floor txn (layout $l) failed"
done
rm -rf -- "$work/floor-check"
store_kib=$(du -sk "$ref" | cut -f 1)
store_apparent_kib=$(du -sk --apparent-size "$ref" | cut -f 1)

# ---------------------------------------------------------------- sample
# sample KEY DIR PREPARE COMMAND...: out=DIR/out.N, a fresh name in DIR
# (the work directory on disk, or RAM), and PREPARE (untimed); in the
# "after deletes" condition then a copy of the reference store is made
# and removed (the same 13,000 inodes at 1000 machines before every
# command alike); then sync and COMMAND, timed. Outputs are kept until
# the end of the condition.
declare -A WALLS CPUS
seq_n=0
cond=fresh
sample() {
	local key=$1 dir=$2 prepare=$3 wall user sys TIMEFORMAT='%3R %3U %3S'
	shift 3
	seq_n=$((seq_n + 1))
	out=$dir/out.$seq_n
	"$prepare"
	if [[ $cond == deletes ]]; then
		cp -a -- "$ref" "$work/victim"
		sync
		rm -rf -- "$work/victim"
	fi
	sync
	{ time "$@" > /dev/null 2> "$work/cmd.err"; } 2> "$work/time.out" ||
		die "$key ($cond) failed: $(tail -n 5 "$work/cmd.err")"
	read -r wall user sys < <(tail -n 1 "$work/time.out")
	WALLS[$cond $key]+="$wall "
	CPUS[$cond $key]+="$(calc 'sprintf("%.3f", u + s)' u="$user" s="$sys") "
}
# stats LIST -> REPLY="median min max"
stats() {
	# shellcheck disable=SC2086
	REPLY=$(printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.3f %.3f %.3f", m, v[1], v[NR] }')
}

none() { :; }
copy_ref() { cp -a -- "$ref" "$out"; }
copy_alt() { cp -a -- "$work/ref-$alt" "$out"; }
copy_ref_ram() { cp -a -- "$ref" "$out"; }
generate() { "$VARGEN" generate -f "$spec_gen" --store "$out"; }
rekey() { "$VARSEAL" rekey -f "$spec_rekey" --store "$out" -i "$keys/admin1.key"; }
floor_txn() { "$DISK_FLOOR" txn "$out" < "$work/man-$1"; }
# today's layout: the floor also says how long its phases took
floor_txn_phases() { DISK_FLOOR_PHASES=$work/phases floor_txn A; }
create_cpus="" commit_walls=""
take_phases() { # the line the last floor_txn_phases appended; the bound is fresh only
	local create commit
	[[ $cond == fresh ]] || return 0
	read -r create commit < <(tail -n 1 "$work/phases")
	create_cpus+="$create "
	commit_walls+="$commit "
}
floor_fsync() { "$DISK_FLOOR" fsync "$out" < "$work/man-A"; }
floor_rekey() { "$DISK_FLOOR" txn "$out" < "$work/man-rk-$1"; }
cp_sync() { cp -a -- "$ref" "$out" && sync -f "$out"; }
check_generated() {
	"$VARGEN" check -f "$spec_gen" --store "$out" > /dev/null 2> "$work/cmd.err" ||
		die "vargen check fails on a generated store ($cond, $out): $(tail -n 5 "$work/cmd.err")"
}
check_rekeyed() {
	"$VARGEN" check -f "$spec_rekey" --store "$out" > /dev/null 2> "$work/cmd.err" ||
		die "vargen check fails after rekey ($cond, $out): $(tail -n 5 "$work/cmd.err")"
	[[ $("$VARSEAL" decrypt -i "$new_admin_key" "$out/$sample_rel") == "$sample_value" ]] ||
		die "$out/$sample_rel does not open to its value with the new admin's key"
}

load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_start=$EPOCHREALTIME
mkdir "$work/d"
for cond in fresh deletes; do
	for ((run = 1; run <= RUNS; run++)); do
		log "$cond: run $run of $RUNS"
		sample "generate" "$work/d" none generate
		check_generated
		sample "floor txn" "$work/d" none floor_txn_phases
		take_phases
		sample "cp -a + sync" "$work/d" none cp_sync
		if [[ $cond == fresh ]] && ((run <= FSYNC_RUNS)); then
			sample "floor fsync" "$work/d" none floor_fsync
		fi
		for l in B C D; do sample "floor txn $l" "$work/d" none floor_txn "$l"; done
		sample "rekey" "$work/d" copy_ref rekey
		check_rekeyed
		sample "floor rekey" "$work/d" copy_ref floor_rekey A
		for alt in B C D; do sample "floor rekey $alt" "$work/d" copy_alt floor_rekey "$alt"; done
		if [[ -n $ram && $cond == fresh ]]; then
			sample "generate, RAM" "$ram" none generate
			sample "floor txn, RAM" "$ram" none floor_txn A
			sample "rekey, RAM" "$ram" copy_ref_ram rekey
			sample "floor rekey, RAM" "$ram" copy_ref_ram floor_rekey A
			# the RAM outputs are not what is measured: keep the tmpfs small
			rm -rf -- "$ram"/out.*
		fi
	done
	log "$cond: removing its outputs (untimed)"
	rm -rf -- "$work/d"/out.*
	sync
	if [[ $cond == fresh ]]; then
		log "waiting $SETTLE_S s: none of that removal within a minute of the next runs"
		sleep "$SETTLE_S"
	fi
done
elapsed=$(calc 'sprintf("%.0f", b - a)' a="$t_start" b="$EPOCHREALTIME")

# The format's own arithmetic, measured in this run: every stanza
# generate writes costs two X25519 multiplications, the ephemeral key's
# public half and the exchange (about as long as each other in OpenSSL 3.0;
# openssl speed times the exchange).
log "measuring X25519: $OPENSSL speed -seconds 3 ecdhx25519"
x25519_ops=$("$OPENSSL" speed -seconds 3 ecdhx25519 2> /dev/null | awk '/X25519/ { v = $NF } END { print v }')
[[ $x25519_ops =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "could not parse '$OPENSSL speed ecdhx25519'"

# The crypto of the format as generate asks OpenSSL for it: the X25519
# key imports and exchanges, and the HKDFs and cipher set-ups, timed call
# by call in one more generate (untimed itself). The random draws are
# left out, so that the sum is what the format needs and no more: a
# quarter of them name temporaries, which is the tool's own choice.
crypto_s=""
if [[ -n $CALL_TIMER ]]; then
	log "timing generate's OpenSSL calls (call_timer.so, one more generate, untimed)"
	out=${ram:-$work}/calls.store
	CALL_TIMER_OUT=$work/calls LD_PRELOAD=$CALL_TIMER "$VARGEN" generate -f "$spec_gen" \
		--store "$out" > /dev/null 2> "$work/cmd.err" ||
		die "generate with call_timer.so failed: $(tail -n 5 "$work/cmd.err")"
	rm -rf -- "$out"
	crypto_s=$(awk '$1 ~ /^EVP_PKEY_(new_raw_private_key|new_raw_public_key|derive|derive_init)$/ ||
		$1 == "EVP_KDF_derive" || $1 == "EVP_CipherInit_ex2" { us += $3 }
		END { printf "%.3f", us / 1e6 }' "$work/calls")
fi

# ----------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
echo
echo "disk benchmark: $MACHINES machines x 3 secrets, $ADMINS admins ($((ADMINS + 1)) for rekey)"
printf '  stores      %s (%s)\n' "$work" "$(fs_desc "$work")"
[[ -n $ram ]] && printf '  RAM         %s (%s)\n' "$ram" "$(stat -f -c %T "$ram")"
printf '  store       %d files, %d directories, %d KiB on disk (%d KiB of data)\n' \
	"${L_FILES[A]}" "${L_DIRS[A]}" "$store_kib" "$store_apparent_kib"
printf '  rekey       rewrites %d files (%s), removes %d .commit first\n' \
	"$n_rewritten" "$rk_kinds" "$removed_commits"
printf '  runs        median (min..max) of %d per condition, wall seconds, each after a sync\n' "$RUNS"
printf '  machine     %s, %s online CPUs\n' "${cpu_model:-unknown CPU}" "$(getconf _NPROCESSORS_ONLN)"
printf '  tools       %s; %s\n' "$("$VARGEN" --version)" "$("$VARSEAL" --version)"
printf '  load avg    %s at the start, %s at the end (%s s in all)\n' "$load_start" \
	"$(cut -d ' ' -f 1-3 /proc/loadavg)" "$elapsed"
echo
cell() { # cell COND KEY -> "median (min..max)"
	local list=${WALLS[$1 $2]:-}
	if [[ -z $list ]]; then
		REPLY="n/a"
		return
	fi
	stats "$list"
	local m lo hi
	read -r m lo hi <<< "$REPLY"
	REPLY=$(printf '%.3f (%.3f..%.3f)' "$m" "$lo" "$hi")
}
med() { stats "${WALLS[$1 $2]}"; REPLY=${REPLY%% *}; }
cpu_med() { stats "${CPUS[$1 $2]}"; REPLY=${REPLY%% *}; }
printf '%-34s %26s %26s %8s\n' "wall s, median (min..max)" "fresh" "after deletes" "cpu s"
for key in "generate" "floor txn" "cp -a + sync" "floor fsync" "rekey" "floor rekey" \
	"generate, RAM" "floor txn, RAM" "rekey, RAM" "floor rekey, RAM"; do
	[[ -z ${WALLS[fresh $key]:-} ]] && continue
	cell fresh "$key"
	c1=$REPLY
	cell deletes "$key"
	c2=$REPLY
	cpu_med fresh "$key"
	printf '%-34s %26s %26s %8s\n' "$key" "$c1" "$c2" "$REPLY"
done
echo "  floor txn   = the same tree, the tools' sync pattern (temporaries, syncfs, renames, syncfs)"
echo "  floor fsync = the same tree, fsync + rename + directory fsync per file (not what the tools do)"
echo "  cpu s       = user + sys (median, fresh); the tools use both cores"
echo
declare -a verdicts=()
ratio_line() { # ratio_line LABEL TOOL FLOOR
	local c r t
	for c in fresh deletes; do
		med "$c" "$2"
		t=$REPLY
		med "$c" "$3"
		r=$(calc 'sprintf("%.2f", t / f)' t="$t" f="$REPLY")
		printf '  %-30s %-13s %5sx' "$1" "$c" "$r"
		if (($(calc '(r <= g)' r="$r" g="$GOAL"))); then
			echo "   PASS"
			verdicts+=("PASS  $1 ($c): ${r}x <= ${GOAL}x")
		else
			echo "   MISS"
			verdicts+=("MISS  $1 ($c): ${r}x > ${GOAL}x")
		fi
	done
}
echo "ratios, tool / floor of the same run (goal <= ${GOAL}x)"
ratio_line "generate / floor txn" "generate" "floor txn"
ratio_line "generate / cp -a + sync" "generate" "cp -a + sync"
ratio_line "rekey / floor rekey" "rekey" "floor rekey"
cores=$(getconf _NPROCESSORS_ONLN)
stanzas=$((MACHINES * 3 * (ADMINS + 1)))
x25519_s=$(calc 'sprintf("%.3f", 2 * s / ops / c)' s="$stanzas" ops="$x25519_ops" c="$cores")
echo
printf "the format's own arithmetic: %d stanzas x 2 X25519 at %.0f/s per core = %s s on %d cores\n" \
	"$stanzas" "$x25519_ops" "$x25519_s" "$cores"
printf '  %-30s' "generate / (floor txn + that)"
for c in fresh deletes; do
	med "$c" "generate"
	t=$REPLY
	med "$c" "floor txn"
	printf ' %s %sx' "$c" "$(calc 'sprintf("%.2f", t / (f + x))' t="$t" f="$REPLY" x="$x25519_s")"
done
echo "   (not a goal: what is left is the tool's own)"
# The least wall time any overlap of the disk with the work could give:
# the CPU generate used, spread evenly over every core with nothing left
# waiting. Where it is above the goal's time, no change to how the disk
# is written reaches the goal: only less CPU would.
cpu_med fresh "generate"
g_cpu=$REPLY
med fresh "floor txn"
goal_s=$(calc 'sprintf("%.3f", g * f)' g="$GOAL" f="$REPLY")
printf '  %-30s %s s of CPU / %d cores = %s s at the least; the goal (%sx floor txn, fresh) is %s s\n' \
	"generate, CPU-bound" "$g_cpu" "$cores" "$(calc 'sprintf("%.3f", u / c)' u="$g_cpu" c="$cores")" \
	"$GOAL" "$goal_s"
# The least a tool with no overhead of its own could take: the format's
# X25519 over the cores, the floor's own work of creating the tree (its
# CPU, which a tool can spread over the cores too), and then the floor's
# commit, which can start only once every file is sealed and written.
stats "$create_cpus"
create_cpu=${REPLY%% *}
stats "$commit_walls"
commit_wall=${REPLY%% *}
least() { # least CRYPTO_CPU -> REPLY: (CRYPTO_CPU + creating) / cores + commit
	REPLY=$(calc 'sprintf("%.3f", (x + c) / n + w)' x="$1" c="$create_cpu" n="$cores" w="$commit_wall")
}
least "$(calc '2 * s / ops' s="$stanzas" ops="$x25519_ops")"
printf '  %-30s %s s X25519 + %s s creating / %d cores + %s s commit = %s s; the goal is %s s\n' \
	"generate, no overhead at all" "$x25519_s" "$create_cpu" "$cores" "$commit_wall" "$REPLY" "$goal_s"
if [[ -n $crypto_s ]]; then
	least "$crypto_s"
	printf '  %-30s (%s s crypto + %s s creating) / %d cores + %s s commit = %s s; the goal is %s s\n' \
		"  with all its crypto" "$crypto_s" "$create_cpu" "$cores" "$commit_wall" "$REPLY" "$goal_s"
fi
if [[ -n $ram ]]; then
	echo
	echo "what the disk adds: the median on disk - the median on RAM (fresh), s"
	printf '  %-10s %14s %14s %16s %16s\n' "" "tool, fresh" "floor, fresh" "tool, deletes" "floor, deletes"
	for pair in "generate:floor txn" "rekey:floor rekey"; do
		tk=${pair%%:*} fk=${pair#*:}
		vals=()
		for c in fresh deletes; do
			for k in "$tk" "$fk"; do
				med "$c" "$k"
				d=$REPLY
				med fresh "$k, RAM"
				vals+=("$(calc 'sprintf("%.3f", a - b)' a="$d" b="$REPLY")")
			done
		done
		printf '  %-10s %14s %14s %16s %16s\n' "$tk" "${vals[@]}"
	done
	med fresh "generate, RAM"
	g_ram=$REPLY
	med fresh "rekey, RAM"
	r_ram=$REPLY
	echo "  with no disk at all: generate $g_ram s, rekey $r_ram s (its CPU work: crypto, spec, the store's reads)"
fi
echo
echo "layout: the same data ($((L_BYTES[A] / 1024)) KiB in files), the txn floor in each layout, wall s (median)"
printf '  %-44s %6s %6s %8s %9s %9s %9s %9s\n' "" "files" "dirs" "inodes" "generate" "after" "rekey" "after"
printf '  %-44s %6s %6s %8s %9s %9s %9s %9s\n' "" "" "" "/secret" "fresh" "deletes" "fresh" "deletes"
declare -A DESC=([A]="A today: secret dirs, secret + recipients" [B]="B no directory per secret"
	[C]="C one file per secret, .generator in .commit" [D]="D one file per machine, no machine directory")
for l in "${layouts[@]}"; do
	gk="floor txn" rk="floor rekey"
	[[ $l != A ]] && gk+=" $l" rk+=" $l"
	vals=()
	for k in "$gk" "$rk"; do
		for c in fresh deletes; do
			med "$c" "$k"
			vals+=("$REPLY")
		done
	done
	printf '  %-44s %6d %6d %8.2f %9s %9s %9s %9s\n' "${DESC[$l]}" "${L_FILES[$l]}" "${L_DIRS[$l]}" \
		"$(calc '(f + d) / (3 * m)' f="${L_FILES[$l]}" d="${L_DIRS[$l]}" m="$MACHINES")" \
		"${vals[0]}" "${vals[1]}" "${vals[2]}" "${vals[3]}"
done
printf '  rekey rewrites per layout: A %d, B %d, C %d, D %d files\n' \
	"${L_RK_FILES[A]}" "${L_RK_FILES[B]}" "${L_RK_FILES[C]}" "${L_RK_FILES[D]}"
echo
echo "goals: tool within ${GOAL}x of the floor of the same run"
printf '  %s\n' "${verdicts[@]}"
exit 0
