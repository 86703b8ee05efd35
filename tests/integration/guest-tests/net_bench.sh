#!/bin/sh
# net_bench.sh - guest side of bench/bench_net_tap.sh (busybox sh): 10.80.0.2/24 on the
# virtio-net interface; vdk.mib= MiB of zeros to 10.80.0.1:5001, then as much from :5002.
param() {
	# shellcheck disable=SC2013 # the command line is one line of words
	for w in $(cat /proc/cmdline); do
		case "$w" in "vdk.$1="*) echo "${w#*=}" ;; esac
	done
}
dev=""
for d in /sys/class/net/*; do
	[ "$(readlink "$d/device/driver" 2>/dev/null | sed 's,.*/,,')" = virtio_net ] && dev="${d##*/}"
done
[ -n "$dev" ] || exit 1
ip link set lo up
ip link set "$dev" up
ip addr add 10.80.0.2/24 dev "$dev"
n=50
until ping -c 1 -W 1 10.80.0.1 >/dev/null; do
	n=$((n - 1))
	[ "$n" -gt 0 ] || exit 1
done
mib="$(param mib)"
dd if=/dev/zero bs=1M count="$mib" 2>/dev/null | nc 10.80.0.1 5001 >/dev/null || exit 1
got="$(nc 10.80.0.1 5002 | wc -c)"
echo "VDK-DATA: received $got bytes"
[ "$got" = $((mib * 1048576)) ]
