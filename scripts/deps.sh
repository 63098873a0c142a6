#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12, and
# nothing when it is all there already (apt-get update only if needed).
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	libssl-dev libsodium-dev libyaml-dev libsystemd-dev zlib1g-dev
	python3 age openssh-client time strace gdb wireguard-tools valgrind
	zsh groff-base man-db
	clang libclang-rt-14-dev
	qemu-system-x86 linux-image-cloud-amd64 busybox-static debootstrap cpio xz-utils
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
# Node.js and npm run typage (npm age-encryption), the independent
# implementation with hybrid post-quantum keys that pq-interop and pq-chain
# check against (tests/typage.py installs it, pinned). Looked for as
# commands, not packages: a Node.js from elsewhere (NodeSource's bundles
# npm, and conflicts with Debian's npm package) is used as it is. Debian
# 12's nodejs 18 runs typage 0.3.1 (tests/typage/peer.mjs gives it the Web
# Crypto global that 18 lacks).
if ! command -v node >/dev/null; then
	missing+=(nodejs npm)
elif ! command -v npm >/dev/null; then
	missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
