#!/usr/bin/env bash
# Builds the busybox guest for varinject's QEMU tests: a gzip'd cpio
# initramfs whose /init reports, on the serial console, every systemd
# credential QEMU handed to the guest, by digest only:
#
#   SOURCE smbios|fw_cfg          before the credentials of each transport
#   CRED <name> <sha256> <length> one per credential (value never printed)
#   FORM <name> smbios-text|smbios-binary|fw_cfg
#   GUEST-DONE                    then it powers off (QEMU -no-reboot exits)
#
# Credentials are read from the SMBIOS type 11 OEM strings
# (/sys/firmware/dmi/entries/11-*/raw: header, count, NUL-terminated
# strings) starting with io.systemd.credential: or
# io.systemd.credential.binary: (base64-decoded), split at the first '=',
# and from the fw_cfg entries opt/io.systemd.credentials/NAME (sysfs of the
# qemu_fw_cfg module, which /init insmods).
#
# Kernel command line knobs read by /init: guest_hold=N sleeps N seconds
# after GUEST-BOOTED, before reporting (for tests that signal a running
# VM); guest_stall=N prints GUEST-STALLING and sleeps N seconds silently
# before GUEST-BOOTED (a guest stuck while booting, for the tests of the
# tests' deadlines).
#
# Usage: build-busybox-guest.sh
#   Prints GUEST_KERNEL=<path> and GUEST_INITRD=<path> on stdout.
# Environment: GUEST_CACHE (default build/guest-cache of this checkout),
#   GUEST_KERNEL (default: the newest /boot/vmlinuz-*-cloud-amd64).
# Cached: rebuilt only when this script, busybox, the kernel version or the
# qemu_fw_cfg module change. Needs busybox-static, cpio, gzip (xz-utils if
# the module is compressed). Building takes well under a second; one build
# at a time (GUEST_CACHE/.busybox.lock).
set -euo pipefail

script=$(readlink -f "$0")
cache=${GUEST_CACHE:-$(cd "$(dirname "$0")/../.." && pwd)/build/guest-cache}

die() { echo "build-busybox-guest: error: $*" >&2; exit 1; }

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

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (install busybox-static)"
busybox=$(readlink -f "$busybox")
# A dynamically linked busybox would need its libraries in the guest.
if command -v ldd >/dev/null && ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked (install busybox-static)"
fi
for tool in cpio gzip sha256sum flock; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

key=$( { sha256sum "$script" "$busybox" "$module" | cut -d' ' -f1; echo "$kver"; } |
	sha256sum | cut -c1-16)
out=$cache/busybox-$key
initrd=$out/initrd.gz

# One build at a time in a cache: the QEMU tests run in parallel (ctest -j)
# and each builds the guests it boots; the second waits for the first and
# finds its result.
mkdir -p "$cache"
exec 9>"$cache/.busybox.lock"
flock -w 600 9 || die "$cache/.busybox.lock: still held after 600 s"

if [ ! -s "$initrd" ]; then
	work=$(mktemp -d "$cache/.busybox-build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	root=$work/root
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
	cp "$busybox" "$root/bin/busybox"
	for applet in $("$busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
	done
	case $module in
	*.ko.xz) xz -dc "$module" >"$root/lib/modules/qemu_fw_cfg.ko" ;;
	*.ko.zst) zstd -dcq "$module" >"$root/lib/modules/qemu_fw_cfg.ko" ;;
	*.ko.gz) gzip -dc "$module" >"$root/lib/modules/qemu_fw_cfg.ko" ;;
	*) cp "$module" "$root/lib/modules/qemu_fw_cfg.ko" ;;
	esac
	# The kernel opens /dev/console for init before anything is mounted.
	mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

	cat >"$root/init" <<'INIT'
#!/bin/sh
# PID 1 of the busybox guest: report credentials by digest, power off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
# Only emergencies from the kernel on the console from here on, so that
# our lines are not interleaved with kernel messages.
echo 1 >/proc/sys/kernel/printk

hold=0 stall=0
for arg in $(cat /proc/cmdline); do
	case $arg in
	guest_hold=*) hold=${arg#guest_hold=} ;;
	guest_stall=*) stall=${arg#guest_stall=} ;;
	esac
done

finish() {
	echo "GUEST-DONE"
	sync
	poweroff -f
	sleep 5
	echo "GUEST-POWEROFF-FAILED"
	while :; do sleep 60; done
}

if ! insmod /lib/modules/qemu_fw_cfg.ko; then
	echo "GUEST-WARN insmod qemu_fw_cfg failed"
fi
if [ "$stall" -gt 0 ] 2>/dev/null; then
	echo "GUEST-STALLING $stall"
	sleep "$stall"
fi
echo "GUEST-BOOTED"
[ "$hold" -gt 0 ] 2>/dev/null && sleep "$hold"

W=/tmp/w
mkdir -p $W

# report NAME FILE FORM: one credential, by digest and length only.
report() {
	sum=$(sha256sum <"$2" | cut -d' ' -f1)
	len=$(wc -c <"$2" | tr -d ' ')
	echo "CRED $1 $sum $len"
	echo "FORM $1 $3"
}

# One SMBIOS type 11 string: bytes [start, end) of raw, first '=' at eq.
smbios_string() {
	raw=$1 start=$2 eq=$3 end=$4
	if [ "$eq" -lt 0 ]; then
		echo "OEM-STRING without '=' ($((end - start)) bytes)"
		return
	fi
	tail -c +$((start + 1)) "$raw" | head -c $((eq - start)) >$W/head
	h=$(cat $W/head)
	tail -c +$((eq + 2)) "$raw" | head -c $((end - eq - 1)) >$W/rawvalue
	case $h in
	io.systemd.credential.binary:*)
		name=${h#io.systemd.credential.binary:}
		if base64 -d <$W/rawvalue >$W/value 2>/dev/null; then
			report "$name" $W/value smbios-binary
		else
			echo "BAD-BASE64 $name"
		fi
		;;
	io.systemd.credential:*)
		name=${h#io.systemd.credential:}
		report "$name" $W/rawvalue smbios-text
		;;
	*)
		echo "OEM-STRING other ($((end - start)) bytes)"
		;;
	esac
}

found=0
for raw in /sys/firmware/dmi/entries/11-*/raw; do
	[ -r "$raw" ] || continue
	found=1
	len=$(od -An -tu1 -j1 -N1 "$raw" | tr -d ' ')
	count=$(od -An -tu1 -j4 -N1 "$raw" | tr -d ' ')
	echo "SOURCE smbios"
	echo "SMBIOS-OEM-STRINGS $count"
	od -An -v -tu1 -j"$len" "$raw" | tr -s ' ' '\n' | grep -v '^$' >$W/bytes
	pos=$len start=$len eq=-1
	while read -r b; do
		if [ "$b" = 0 ]; then
			[ "$pos" -eq "$start" ] && break  # the second NUL ends the set
			smbios_string "$raw" "$start" "$eq" "$pos"
			start=$((pos + 1)) eq=-1
		elif [ "$b" = 61 ] && [ "$eq" -lt 0 ]; then
			eq=$pos
		fi
		pos=$((pos + 1))
	done <$W/bytes
done
[ $found = 1 ] || echo "SMBIOS-OEM-STRINGS none"

if [ -d /sys/firmware/qemu_fw_cfg ]; then
	echo "FWCFG present"
	d=/sys/firmware/qemu_fw_cfg/by_name/opt/io.systemd.credentials
	if [ -d $d ]; then
		echo "SOURCE fw_cfg"
		for e in $d/*; do
			[ -r "$e/raw" ] || continue
			cat "$e/raw" >$W/value
			report "${e##*/}" $W/value fw_cfg
		done
	fi
else
	echo "FWCFG absent"
fi
finish
INIT
	chmod 755 "$root/init"
	mkdir -p "$work/out"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
		gzip -n -9 >"$work/out/initrd.gz"
	rm -rf "$out"
	mv "$work/out" "$out"
	# Builds of earlier versions of this script are of no further use.
	for old in "$cache"/busybox-????????????????; do
		[ "$old" = "$out" ] || rm -rf "$old"
	done
fi

echo "GUEST_KERNEL=$kernel"
echo "GUEST_INITRD=$initrd"
