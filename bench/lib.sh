# Helpers every benchmark script shares; sourced, never run. The script
# sets bench_name first (the prefix of its messages). Nothing here times
# anything: each script measures its own way.
# shellcheck shell=bash
: "${bench_name:?set bench_name before sourcing bench/lib.sh}"

die() {
	echo "$bench_name: error: $*" >&2
	exit 1
}
log() { echo "$bench_name: $*" >&2; }

# Wall clock, in seconds with a fractional part.
if [[ -n ${EPOCHREALTIME:-} ]]; then
	now() { REPLY=$EPOCHREALTIME; }
else
	now() { REPLY=$(date +%s.%N); }
fi

# awk as a calculator: calc 'expression' [var=value]...
calc() {
	local expr=$1 args=()
	shift
	for a in "$@"; do args+=(-v "$a"); done
	awk "${args[@]}" "BEGIN { print $expr }"
}

median() { # median VALUE... -> REPLY
	REPLY=$(printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
}

# A scratch directory for the run under BASE, removed when the script
# exits (INT and TERM exit through it): work_dir BASE -> REPLY
work_dir() {
	REPLY=$(mktemp -d "$1/$bench_name.XXXXXX") || die "cannot make a directory under $1"
	# shellcheck disable=SC2064 # the path is fixed now, on purpose
	trap "rm -rf -- $(printf '%q' "$REPLY")" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

verdict() { # verdict CONDITION(0/1) TEXT
	if (($1)); then printf '  PASS  %s\n' "$2"; else printf '  MISS  %s\n' "$2"; fi
}

# The stores' one generator, three secrets per machine, as the issue's
# figures (issue 15) were taken with: the spec's last lines.
app_generator() {
	cat <<-'YAML'
		generators:
		  app:
		    files:
		      api-key: {kind: random, length: 32}
		      db-password: {kind: password, length: 24}
		      jwt-secret: {kind: random, length: 64, encoding: hex}
	YAML
}
