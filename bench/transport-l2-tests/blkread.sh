#!/bin/sh
# blkread: the guest half of bench/bench_transport_linux.sh. Reads the first virtio disk
# with O_DIRECT, vdk.bs bytes a request, vdk.passes times over the whole disk, and reports
# the requests and the time (ms, from /proc/uptime: 10 ms resolution) on the verdict line.
detail() { echo "$*" >"$VDK_TEST_DETAIL"; echo "blkread: $*"; }
word() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1"=*) echo "${w#*=}"; return ;; esac
	done
}
dev=
for s in /sys/block/vd*; do [ -e "$s" ] && dev=${s##*/} && break; done
[ -n "$dev" ] || { detail "no virtio disk"; exit 1; }
bs=$(word vdk.bs)
passes=$(word vdk.passes)
sectors=$(cat /sys/block/$dev/size)
count=$((sectors * 512 / bs))
uptime_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
t0=$(uptime_ms)
i=0
while [ "$i" -lt "$passes" ]; do
	dd if="/dev/$dev" of=/dev/null bs="$bs" count="$count" iflag=direct 2>/dev/null ||
		{ detail "dd on $dev failed"; exit 1; }
	i=$((i + 1))
done
t1=$(uptime_ms)
detail "BLKREAD requests=$((count * passes)) bs=$bs ms=$((t1 - t0))"
