#!/usr/bin/env bash
# The Debian package, as a user gets it: builds it from this checkout with
# dpkg-buildpackage (in a scratch copy: the source tree is left as it
# was), installs it with apt-get, runs the README's example with the
# INSTALLED tools (keygen, machine keygen, generate --plan, generate, check,
# one secret opened with the real age, varinject --dry-run), checks that
# each man page renders without a warning and that the completion loads,
# then removes the package, so the machine is left as it was found.
# Installs what building needs (apt-get, only what is missing). Exit
# status non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
started=$SECONDS
pkg=vars-tools

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

header() { printf '\n== deb-check: %s ==\n' "$*"; }
fail() {
	printf 'deb-check: FAILED: %s\n' "$*" >&2
	exit 1
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if installed "$pkg"; then
	fail "$pkg is already installed ($(dpkg-query -W -f='${Version}' "$pkg")): this check installs and removes its own; apt-get purge $pkg first"
fi

work=$(mktemp -d /tmp/deb-check.XXXXXX)
we_installed=0
cleanup() {
	local status=$?
	if [ "$we_installed" = 1 ] && installed "$pkg"; then
		echo "deb-check: removing $pkg (cleanup)"
		$sudo apt-get purge -y -qq "$pkg" >/dev/null || status=1
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT

header "build dependencies"
# The builders, and what the check itself runs (age, man, groff, openssl
# for the example spec's script, zsh for its completion); the rest of
# Build-Depends is read from debian/control by apt-get build-dep.
need=(dpkg-dev debhelper age man-db groff-base openssl zsh)
missing=()
for p in "${need[@]}"; do installed "$p" || missing+=("$p"); done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	$sudo apt-get update -qq
	updated=1
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! dpkg-checkbuilddeps 2>/dev/null; then
	[ "$updated" = 1 ] || $sudo apt-get update -qq
	$sudo apt-get build-dep -y -qq ./ >/dev/null
fi
dpkg-checkbuilddeps
echo "all there: debhelper $(dpkg-query -W -f='${Version}' debhelper), dpkg-dev $(dpkg-query -W -f='${Version}' dpkg-dev)"

header "version"
cmake_version=$(sed -n 's/^project(vars-tools VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -S Version)
echo "CMakeLists.txt $cmake_version, debian/changelog $deb_version"
[ "$cmake_version" = "$deb_version" ] ||
	fail "debian/changelog says $deb_version but the project is $cmake_version: add a changelog entry"

header "dpkg-buildpackage -us -uc -b (in a scratch copy)"
in_git=0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	in_git=1
	before=$(git status --porcelain --untracked-files=all)
	# What the checkout holds now (edits included), not build trees.
	git ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf - | tar -xf - -C "$work" --one-top-level=src
else
	mkdir "$work/src"
	tar --exclude='./build*' --exclude=./.cache --exclude=./.git -cf - . | tar -xf - -C "$work/src"
fi
build_start=$SECONDS
if ! (cd "$work/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	fail "dpkg-buildpackage failed (the last 60 lines above)"
fi
echo "built in $((SECONDS - build_start)) s; compiler warnings: $(grep -c 'warning:' "$work/build.log" || true)"
grep -E '^(100% tests passed|[0-9]+% tests passed)' "$work/build.log" | sed 's/^/  package tests: /' || true
deb=$(ls "$work"/${pkg}_*.deb)
dpkg-deb -f "$deb" Package Version Architecture Depends | sed 's/^/  /'
# varinject loads libsystemd itself (inject/log.c), so dpkg-shlibdeps cannot
# see it: debian/control names it, and the package must say so.
dpkg-deb -f "$deb" Depends | grep -Eq '(^|, )libsystemd0( |,|$)' ||
	fail "the package does not depend on libsystemd0 (varinject loads it)"
if [ "$in_git" = 1 ]; then
	[ "$(git status --porcelain --untracked-files=all)" = "$before" ] ||
		fail "the source tree changed during the build"
	echo "source tree unchanged"
fi

header "apt-get install ./$(basename "$deb")"
we_installed=1
$sudo apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1 || {
	cat "$work/apt.log"
	fail "apt-get install $deb failed"
}
installed "$pkg" || fail "$pkg is not installed after apt-get install"
echo "installed $(dpkg-query -W -f='${Package} ${Version}' "$pkg"), $(dpkg -L "$pkg" | wc -l) paths"
doc=/usr/share/doc/$pkg
for f in /usr/bin/varseal /usr/bin/vargen /usr/bin/varinject \
	/usr/share/man/man1/varseal.1.gz /usr/share/man/man1/vargen.1.gz \
	/usr/share/man/man1/varinject.1.gz /usr/share/man/man5/vars.yaml.5.gz \
	/usr/share/bash-completion/completions/varseal /usr/share/bash-completion/completions/vargen \
	/usr/share/bash-completion/completions/varinject \
	/usr/share/zsh/vendor-completions/_varseal /usr/share/zsh/vendor-completions/_vargen \
	/usr/share/zsh/vendor-completions/_varinject /usr/share/zsh/vendor-completions/_vars_tools_names \
	$doc/README.md $doc/spec.md $doc/store.md $doc/varseal.md $doc/varinject.md \
	$doc/examples/vars.yaml $doc/examples/systemd/microvm@.service \
	$doc/examples/systemd/microvm-qemu@.service; do
	[ -f "$f" ] || fail "$f is not installed"
done
grep -q '^ExecStart=/usr/bin/varinject ' $doc/examples/systemd/microvm@.service ||
	fail "the example unit does not run the installed /usr/bin/varinject"
echo "tools, man pages, completion, docs and example units in place"

header "the README's example, with the installed tools"
varseal=/usr/bin/varseal vargen=/usr/bin/vargen varinject=/usr/bin/varinject
for t in $varseal $vargen $varinject; do echo "  $($t --version)"; done
ex=$work/example
mkdir "$ex"
cd "$ex"
cp $doc/examples/vars.yaml .
# run STATUS COMMAND...: shows the command and its output, and wants that
# exit status (0 success; 4 check or a plan that found something to do: the
# statuses the man pages document under EXIT STATUS).
run() {
	local want=$1
	shift
	printf '$ %s\n' "$*"
	local status=0
	"$@" >out 2>err || status=$?
	sed 's/^/  /' out err
	[ "$status" = "$want" ] || fail "$* exited $status, expected $want"
}
$varseal keygen -o admin.key 2>/dev/null
sed -i "s|^  alice: age1.*|  alice: $($varseal pubkey admin.key)|" vars.yaml
run 0 $varseal machine keygen test-vm
run 4 $vargen check
run 4 $vargen generate --plan
grep -q '^plan: 3 to make; nothing written$' out || fail "generate --plan did not plan 3 files"
run 0 $vargen generate
run 0 $vargen generate
grep -q '^generate: everything is up to date$' out || fail "a second generate was not a no-op"
run 0 $vargen check
grep -q '^check: all 4 ok$' out || fail "check did not find all 4 ok"
run 0 $varseal machine key -i admin.key -o machine.key test-vm
[ "$(stat -c %a machine.key)" = 600 ] || fail "machine key -o did not write mode 0600"
secret=vars/per-machine/test-vm/test-vm-secrets/api-key/secret
printf '$ age -d -i machine.key %s | sha256sum\n' "$secret"
by_age=$(age -d -i machine.key "$secret" | sha256sum | cut -d' ' -f1)
by_varseal=$($varseal get -i admin.key test-vm test-vm-secrets/api-key | sha256sum | cut -d' ' -f1)
echo "  age: ${by_age:0:16}, varseal get: ${by_varseal:0:16}"
[ "$by_age" = "$by_varseal" ] || fail "age and varseal get disagree on api-key"
[ "$(age -d -i machine.key "$secret" | wc -c)" = 44 ] || fail "api-key is not 44 base64 characters"
run 0 $varinject --machine test-vm -i machine.key --credentials-dir /dev/shm --dry-run -- qemu-system-x86_64
grep -q 'io.systemd.credential:HOST-API-KEY=<secret: 44 bytes>' out ||
	fail "varinject --dry-run did not show HOST-API-KEY"
cd "$top"

header "man pages"
for page in varseal.1 vargen.1 varinject.1 vars.yaml.5; do
	path=/usr/share/man/man${page##*.}/$page.gz
	found=$(man -w "${page%.*}" 2>&1) || fail "man -w ${page%.*}: $found"
	warnings=$(MANWIDTH=80 man --warnings -l "$path" 2>&1 >/dev/null) || fail "man -l $path failed: $warnings"
	[ -z "$warnings" ] || fail "man --warnings -l $path: $warnings"
	warnings=$(zcat "$path" | groff -ww -man -z 2>&1) || fail "groff on $path failed: $warnings"
	[ -z "$warnings" ] || fail "groff -ww -man -z $path: $warnings"
	printf '  %-12s %s, %s lines, no warning\n' "$page" "$found" "$(MANWIDTH=80 man -l "$path" 2>/dev/null | wc -l)"
done

header "completion"
got=$(bash --norc --noprofile -c '. /usr/share/bash-completion/completions/vargen
	COMP_WORDS=(vargen ""); COMP_CWORD=1; _vargen; echo "${COMPREPLY[*]}"')
echo "  bash: vargen <Tab> -> $got"
[[ $got == *generate*check* ]] || fail "the installed bash completion does not complete vargen's commands"
for f in /usr/share/zsh/vendor-completions/_var*; do
	zsh -n "$f" || fail "zsh -n $f"
done
echo "  zsh: the functions parse (zsh -n)"

header "apt-get purge $pkg"
$sudo apt-get purge -y -qq "$pkg" >/dev/null
we_installed=0
! installed "$pkg" || fail "$pkg is still installed"
for f in /usr/bin/varseal /usr/bin/vargen /usr/bin/varinject /usr/share/man/man1/varseal.1.gz; do
	[ ! -e "$f" ] || fail "$f is left after purge"
done
echo "removed; nothing of it left"

printf '\ndeb-check: OK in %d s\n' "$((SECONDS - started))"
