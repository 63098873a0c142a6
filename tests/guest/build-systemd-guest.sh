#!/usr/bin/env bash
# Builds the systemd guest for varinject's QEMU tests: Debian 12 (systemd
# 252) from `debootstrap --variant=minbase --include=systemd,systemd-sysv
# bookworm`, packed as a gzip'd cpio initramfs with /init ->
# /lib/systemd/systemd and the qemu_fw_cfg module (so that PID 1 can also
# import fw_cfg credentials). Its unit report-credentials.service (in
# multi-user.target) loads each credential below with
# LoadCredential=LOCAL:SYSTEM and prints on /dev/console, by digest only:
#
#   GUEST-BOOTED
#   FWCFG present|absent
#   SYSCRED <name>                  each system credential PID 1 imported
#   CRED <local name> <sha256> <length>
#   GUEST-DONE                      then `systemctl poweroff`
#
# If the unit fails (a LoadCredential= source missing), its OnFailure= unit
# prints GUEST-UNIT-FAILED and the unit's status, and powers off too.
#
# Takes about 1 minute to build the first time (debootstrap, needs Debian's
# mirror), a few seconds when only this script's unit changed, and nothing
# when cached; the guest boots to poweroff in about 20 s (10 s measured on
# an idle 2-core machine) under TCG with
# `qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -nographic -no-reboot
# -kernel GUEST_KERNEL -initrd GUEST_INITRD -append "console=ttyS0 quiet"`.
#
# Usage: build-systemd-guest.sh
#   Prints GUEST_KERNEL=<path>, GUEST_INITRD=<path> and
#   GUEST_CREDENTIALS=<local:SYSTEM,...> on stdout; progress on stderr.
#   Exit status 2 when debootstrap cannot fetch packages (no mirror).
# Environment: GUEST_CACHE (default build/guest-cache of this checkout),
#   GUEST_KERNEL (default: the newest /boot/vmlinuz-*-cloud-amd64),
#   GUEST_MIRROR (default: the Debian mirror of apt's sources).
# Cache: GUEST_CACHE/systemd-base-<hash of the debootstrap parameters>/ (the
# bootstrapped tree) and GUEST_CACHE/systemd-<hash of this script, the
# kernel version and the module>/initrd.gz; one build at a time
# (GUEST_CACHE/.systemd.lock). Must run as root.
set -euo pipefail

# The credentials the unit loads: LOCAL:SYSTEM (the seed's three, then the
# awkward values of tests/inject_qemu_test.py).
CREDENTIALS="
api-key:HOST-API-KEY
db-password:HOST-DB-PASSWORD
jwt-secret:HOST-JWT-SECRET
comma:HOST-COMMA
quote:HOST-QUOTE
bracket:HOST-BRACKET
newline:HOST-NEWLINE
nul:HOST-NUL
"

SUITE=bookworm
VARIANT=minbase
INCLUDE=systemd,systemd-sysv

script=$(readlink -f "$0")
cache=${GUEST_CACHE:-$(cd "$(dirname "$0")/../.." && pwd)/build/guest-cache}

die() { echo "build-systemd-guest: error: $1" >&2; exit "${2:-1}"; }
say() { echo "build-systemd-guest: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, device nodes)"
for tool in debootstrap cpio gzip depmod sha256sum flock; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

if [ -n "${GUEST_KERNEL:-}" ]; then
	kernel=$GUEST_KERNEL
else
	kernel=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$kernel" ] && [ -r "$kernel" ] ||
	die "no readable kernel (install linux-image-cloud-amd64, or set GUEST_KERNEL)"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
module=$(ls "$moddir"/kernel/drivers/firmware/qemu_fw_cfg.ko* 2>/dev/null | head -n 1 || true)
[ -n "$module" ] || die "no qemu_fw_cfg module under $moddir/kernel/drivers/firmware"

# shellcheck disable=SC2086 # one credential a word
creds_csv=$(echo $CREDENTIALS | tr ' ' ',')
key=$( { sha256sum "$script" "$module" | cut -d' ' -f1; echo "$kver"; } |
	sha256sum | cut -c1-16)
out=$cache/systemd-$key
initrd=$out/initrd.gz

# The Debian mirror apt uses here (deb822 .sources or one-line lists).
find_mirror() {
	local f url
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		url=$(awk '
			/^[Uu][Rr][Ii][Ss]:/ { uris = $2 }
			/^[Ss]uites:/ { for (i = 2; i <= NF; i++) if ($i == "'$SUITE'") ok = 1 }
			/^[ \t]*$/ { if (ok && uris != "") { print uris; exit } ok = 0; uris = "" }
			END { if (ok && uris != "") print uris }' "$f" | head -n 1)
		[ -n "$url" ] && { echo "$url"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		url=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { if ($(i + 1) == "'$SUITE'") print $i; break } }' "$f" |
			head -n 1)
		[ -n "$url" ] && { echo "$url"; return; }
	done
	echo "http://deb.debian.org/debian"
}

# Stage 1: the bootstrapped tree, kept as long as its parameters hold.
base_key=$(echo "debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE v1" | sha256sum | cut -c1-16)
base=$cache/systemd-base-$base_key
work=
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT

# One build at a time in a cache: the QEMU tests run in parallel (ctest -j)
# and each builds the guests it boots; the second waits for the first and
# finds its result (debootstrap takes about a minute).
mkdir -p "$cache"
exec 9>"$cache/.systemd.lock"
flock -w 1200 9 || die "$cache/.systemd.lock: still held after 1200 s"

if [ ! -s "$initrd" ] && [ ! -e "$base/.complete" ]; then
	mirror=${GUEST_MIRROR:-$(find_mirror)}
	say "debootstrap $SUITE from $mirror (about 1 minute)"
	work=$(mktemp -d "$cache/.systemd-base.XXXXXX")
	start=$(date +%s)
	if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$work/root" "$mirror" \
		>"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log" >&2
		if grep -qiE "Failed getting release file|Couldn't download|Failure trying to run|Temporary failure|Could not resolve|Connection (refused|timed out)|Unable to fetch|Network is unreachable" \
			"$work/debootstrap.log" "$work/root/debootstrap/debootstrap.log" 2>/dev/null; then
			die "debootstrap could not fetch packages from $mirror (set GUEST_MIRROR)" 2
		fi
		die "debootstrap failed (log above)"
	fi
	# What the guest never needs: documentation, locales, apt's caches.
	rm -rf "$work/root"/usr/share/{doc,man,info,locale,lintian} \
		"$work/root"/var/cache/apt/* "$work/root"/var/lib/apt/lists/*
	touch "$work/root/.complete"
	rm -rf "$base"
	mv "$work/root" "$base"
	rm -rf "$work"
	work=
	say "debootstrap took $(($(date +%s) - start)) s"
fi

# Stage 2: the guest proper, keyed by this script.
if [ ! -s "$initrd" ]; then
	say "assembling the initramfs"
	work=$(mktemp -d "$cache/.systemd-build.XXXXXX")
	root=$work/root
	cp -a "$base" "$root"
	rm -f "$root/.complete"

	# PID 1 straight from the initramfs, no switch_root.
	ln -sfn /lib/systemd/systemd "$root/init"

	# qemu_fw_cfg for the kernel the tests boot, with its modules.dep, so
	# that PID 1 (kmod-setup) loads it before importing credentials.
	mkdir -p "$root/lib/modules/$kver/kernel/drivers/firmware"
	case $module in
	*.ko.xz) xz -dc "$module" >"$root/lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko" ;;
	*.ko.zst) zstd -dcq "$module" >"$root/lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko" ;;
	*.ko.gz) gzip -dc "$module" >"$root/lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko" ;;
	*) cp "$module" "$root/lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko" ;;
	esac
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -e "$moddir/$f" ] && cp "$moddir/$f" "$root/lib/modules/$kver/"
	done
	depmod -b "$root" "$kver"

	# Boot to multi-user.target, quietly, without anything that waits.
	ln -sfn /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
	for unit in getty@tty1.service serial-getty@ttyS0.service console-getty.service \
		systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer \
		systemd-timesyncd.service e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
		ln -sfn /dev/null "$root/etc/systemd/system/$unit"
	done
	echo guest >"$root/etc/hostname"
	: >"$root/etc/fstab"

	cat >"$root/usr/local/sbin/report-credentials" <<'REPORT'
#!/bin/sh
# Prints this unit's credentials by digest only, then powers off.
exec >/dev/console 2>&1
echo "GUEST-BOOTED"
if [ -d /sys/firmware/qemu_fw_cfg ]; then echo "FWCFG present"; else echo "FWCFG absent"; fi
for f in /run/credentials/@system/*; do
	[ -e "$f" ] && echo "SYSCRED ${f##*/}"
done
cd "$CREDENTIALS_DIRECTORY" || { echo "GUEST-NO-CREDENTIALS-DIRECTORY"; exit 1; }
for f in *; do
	[ -f "$f" ] || continue
	sum=$(sha256sum <"$f" | cut -d' ' -f1)
	len=$(wc -c <"$f")
	echo "CRED $f $sum $len"
done
echo "GUEST-DONE"
# No D-Bus in minbase: systemctl says so, then asks PID 1 directly.
systemctl poweroff --no-block 2>/dev/null
REPORT
	cat >"$root/usr/local/sbin/report-credentials-failed" <<'FAILED'
#!/bin/sh
exec >/dev/console 2>&1
echo "GUEST-UNIT-FAILED"
for f in /run/credentials/@system/*; do
	[ -e "$f" ] && echo "SYSCRED ${f##*/}"
done
systemctl status --no-pager --lines=20 report-credentials.service 2>&1 | sed 's/^/GUEST-STATUS /'
systemctl poweroff --no-block 2>/dev/null
FAILED
	chmod 755 "$root/usr/local/sbin/report-credentials" "$root/usr/local/sbin/report-credentials-failed"

	{
		echo "[Unit]"
		echo "Description=Report the credentials from the host, by digest"
		echo "OnFailure=report-credentials-failed.service"
		echo
		echo "[Service]"
		echo "Type=oneshot"
		for c in $CREDENTIALS; do
			echo "LoadCredential=$c"
		done
		echo "ExecStart=/usr/local/sbin/report-credentials"
		echo
		echo "[Install]"
		echo "WantedBy=multi-user.target"
	} >"$root/etc/systemd/system/report-credentials.service"
	cat >"$root/etc/systemd/system/report-credentials-failed.service" <<'UNIT'
[Unit]
Description=Report that report-credentials.service failed

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/report-credentials-failed
UNIT
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sfn ../report-credentials.service \
		"$root/etc/systemd/system/multi-user.target.wants/report-credentials.service"

	mkdir -p "$work/out"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -n -6 >"$work/out/initrd.gz"
	rm -rf "$out"
	mv "$work/out" "$out"
	# Builds of earlier versions of this script are of no further use.
	for old in "$cache"/systemd-????????????????; do
		[ "$old" = "$out" ] || rm -rf "$old"
	done
	say "initramfs $(du -h "$initrd" | cut -f1)"
fi

echo "GUEST_KERNEL=$kernel"
echo "GUEST_INITRD=$initrd"
echo "GUEST_CREDENTIALS=$creds_csv"
