#!/bin/sh
# vhost_user.sh - guest side of tests/integration/vhost_user_guest.sh (busybox sh).
#
# The host serves three devices through vdk's vhost-user backends:
#   disk serial "vdk-rw"  64 MiB, 2 request queues; the host wrote 1 MiB of random data at
#                         1 MiB (its sha256 is vdk.hostsum= on the command line) and 0xff
#                         bytes at 16-17 MiB
#   disk serial "vdk-ro"  16 MiB, read-only; 1 MiB of random data at 0 (vdk.rosum=)
#   entropy device
# Each check prints "VDK-CHECK: <name>: ok|FAIL <why>"; data the host verifies afterwards is
# printed as "VDK-DATA: <key> <value>". Disks are found by serial, not by name.

# /tests/lib: tests/integration/guest-lib (scripts/build-guest.sh puts it in every test guest).
# shellcheck source-path=SCRIPTDIR source=../guest-lib/check.sh
. /tests/lib/check.sh

# disk_with_serial ID: the vdX whose virtio-blk serial (VIRTIO_BLK_T_GET_ID) is ID.
disk_with_serial() {
	for d in /sys/block/vd*; do
		[ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && echo "${d##*/}" && return
	done
}

# sum DEV OFFSET_MIB: sha256 of 1 MiB of DEV at OFFSET_MIB, read with O_DIRECT (from the device).
sum() {
	dd if="/dev/$1" bs=1M skip="$2" count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1
}

# --- devices ----------------------------------------------------------------------------------
nblk=0 nrng=0 unbound=0
for d in /sys/bus/virtio/devices/*; do
	[ -L "$d/driver" ] || unbound=$((unbound + 1))
	case "$(cat "$d/device")" in
	0x0002) nblk=$((nblk + 1)) ;;
	0x0004) nrng=$((nrng + 1)) ;;
	esac
done
if [ "$nblk" -eq 2 ] && [ "$nrng" -eq 1 ] && [ "$unbound" -eq 0 ]; then
	ok devices "2 block, 1 entropy, all bound"
else
	bad devices "$nblk block, $nrng entropy, $unbound without driver (want 2, 1, 0)"
fi

rw="$(disk_with_serial vdk-rw)"
ro="$(disk_with_serial vdk-ro)"
if [ -n "$rw" ] && [ -n "$ro" ] && [ "$rw" != "$ro" ]; then
	ok serials "vdk-rw is $rw, vdk-ro is $ro"
else
	bad serials "vdk-rw='$rw' vdk-ro='$ro'; serials: $(cat /sys/block/vd*/serial 2>/dev/null | tr '\n' ' ')"
	echo "disks not found by serial" >"$VDK_TEST_DETAIL"
	exit 1
fi

# --- multiqueue -------------------------------------------------------------------------------
nq="$(find "/sys/block/$rw/mq/" -mindepth 1 -maxdepth 1 | wc -l)"
if [ "$nq" -eq 2 ]; then ok num-queues "$rw has 2 hardware queues"; else bad num-queues "$rw has $nq queues, want 2"; fi

# --- host-written data ------------------------------------------------------------------------
got="$(sum "$rw" 1)"
if [ "$got" = "$(param hostsum)" ]; then ok host-pattern "sha256 of $rw at 1 MiB matches"; else bad host-pattern "sha256 $got, host wrote $(param hostsum)"; fi

# --- guest-written data -----------------------------------------------------------------------
# 64 KiB from the entropy device at 8 MiB, written through the page cache and flushed (fsync:
# VIRTIO_BLK_T_FLUSH), then read back with O_DIRECT after dropping the cache.
if dd if=/dev/hwrng of=/tmp/gdata bs=4096 count=16 iflag=fullblock 2>/dev/null &&
	dd if=/tmp/gdata of="/dev/$rw" bs=4096 seek=2048 conv=fsync 2>/dev/null; then
	gsum="$(sha256sum </tmp/gdata | cut -d' ' -f1)"
	echo "VDK-DATA: guest-sum $gsum"
	echo 3 >/proc/sys/vm/drop_caches
	back="$(dd if="/dev/$rw" bs=4096 skip=2048 count=16 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
	if [ "$back" = "$gsum" ]; then ok guest-write "64 KiB at 8 MiB written, flushed, read back"; else bad guest-write "read back $back, wrote $gsum"; fi
else
	bad guest-write "dd failed"
fi
# One 512-byte marker at the first, an odd and the last sector.
last=$(($(cat "/sys/block/$rw/size") - 1))
for s in 0 4097 "$last"; do
	printf 'vdk-guest-marker sector %s\n' "$s" | dd of="/dev/$rw" bs=512 seek="$s" conv=sync,fsync 2>/dev/null ||
		bad markers "write at sector $s failed"
done
echo 3 >/proc/sys/vm/drop_caches
m="$(dd if="/dev/$rw" bs=512 skip="$last" count=1 iflag=direct 2>/dev/null | tr -d '\000')"
if [ "$m" = "vdk-guest-marker sector $last" ]; then ok markers "sectors 0, 4097, $last"; else bad markers "last sector reads '$m'"; fi

# --- flush ------------------------------------------------------------------------------------
wc="$(cat "/sys/block/$rw/queue/write_cache")"
sync
if [ "$wc" = "write back" ]; then ok flush "write cache '$wc' (VIRTIO_BLK_F_FLUSH), fsync issued"; else bad flush "write cache '$wc'"; fi

# --- discard ----------------------------------------------------------------------------------
if blkdiscard -o $((16 << 20)) -l $((1 << 20)) "/dev/$rw" 2>/dev/null; then
	ok discard "1 MiB at 16 MiB"
else
	bad discard "blkdiscard failed (discard_max_bytes $(cat "/sys/block/$rw/queue/discard_max_bytes"))"
fi

# --- read-only disk ---------------------------------------------------------------------------
rosys="$(cat "/sys/block/$ro/ro")"
if dd if=/dev/zero of="/dev/$ro" bs=512 count=1 conv=fsync 2>/dev/null; then
	bad read-only "a write to $ro succeeded"
elif [ "$rosys" != 1 ]; then
	bad read-only "/sys/block/$ro/ro is $rosys"
elif [ "$(sum "$ro" 0)" != "$(param rosum)" ]; then
	bad read-only "sha256 of $ro at 0 does not match the host's"
else
	ok read-only "$ro: ro=1, write refused, data readable"
fi

# --- entropy ----------------------------------------------------------------------------------
n="$(dd if=/dev/hwrng bs=1024 count=4 iflag=fullblock 2>/dev/null | wc -c)"
distinct="$(dd if=/dev/hwrng bs=256 count=1 iflag=fullblock 2>/dev/null | od -An -v -tx1 | tr -s ' ' '\n' | grep . | sort -u | wc -l)"
if [ "$n" -eq 4096 ] && [ "$distinct" -gt 64 ]; then
	ok rng "4096 bytes from $(cat /sys/class/misc/hw_random/rng_current), $distinct distinct values in 256"
else
	bad rng "$n bytes, $distinct distinct byte values in 256"
fi

sync
if [ "$fails" -eq 0 ]; then
	echo "all checks passed" >"$VDK_TEST_DETAIL"
	exit 0
fi
echo "$fails check(s) failed" >"$VDK_TEST_DETAIL"
exit 1
