#!/bin/sh
# demo.sh - guest side of `make demo` (scripts/demo.sh), busybox sh.
# Lists the virtio devices, writes a message to the vhost-user disk at 1 MiB and reads it back
# from the device, and reads the vhost-user entropy device. Lines for the host start "demo: ".

say() { echo "demo: $*"; }

for d in /sys/bus/virtio/devices/*; do
	case "$(cat "$d/device")" in
	0x0002) what=block ;;
	0x0004) what=entropy ;;
	*) what="type $(cat "$d/device")" ;;
	esac
	drv=none
	[ -L "$d/driver" ] && drv="$(basename "$(readlink "$d/driver")")"
	say "found virtio $what device ${d##*/} (driver $drv)"
done

disk=
for b in /sys/block/vd*; do [ -e "$b" ] && disk="${b##*/}" && break; done
[ -n "$disk" ] || {
	say "no virtio disk"
	exit 1
}
say "disk /dev/$disk: $(($(cat "/sys/block/$disk/size") / 2048)) MiB, serial '$(cat "/sys/block/$disk/serial")'"

msg="Hello from a Linux $(uname -r) guest, through vdk-vhost-user-blk"
# One 512-byte sector at 1 MiB (sector 2048), flushed to the image (conv=fsync: a FLUSH request).
printf '%s\n' "$msg" | dd of="/dev/$disk" bs=512 seek=2048 conv=sync,fsync 2>/dev/null || {
	say "write failed"
	exit 1
}
echo 3 >/proc/sys/vm/drop_caches
back="$(dd if="/dev/$disk" bs=512 skip=2048 count=1 iflag=direct 2>/dev/null | tr -d '\000')"
say "wrote and read back at 1 MiB: \"$back\""
[ "$back" = "$msg" ] || exit 1

rnd="$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
say "16 bytes from /dev/hwrng ($(cat /sys/class/misc/hw_random/rng_current)): $rnd"
[ "${#rnd}" -eq 32 ]
