#!/bin/sh
# vhost_user_net.sh - guest side of tests/integration/vhost_user_net.sh (busybox sh).
#
# The host serves a virtio-net device through vdk-vhost-user-net on a tap interface in a
# network namespace at 10.77.0.1/24 (MTU vdk.mtu=), with 2 queue pairs, and runs TCP servers
# there: port 5001 takes 64 MiB from us, port 5002 sends us 64 MiB whose sha256 is vdk.h2gsum=.
# The host kills the backend during our upload and starts it again; QEMU reconnects and TCP
# recovers. QEMU reports the link down while the backend is away (-netdev vhost-user keeps
# the configuration space in QEMU), which we see in the carrier.
# Each check prints "VDK-CHECK: <name>: ok|FAIL <why>"; "VDK-DATA: <key> <value>" for the host.

fails=0
ok() { echo "VDK-CHECK: $1: ok${2:+ ($2)}"; }
bad() {
	echo "VDK-CHECK: $1: FAIL $2"
	fails=$((fails + 1))
}
param() {
	# shellcheck disable=SC2013 # the command line is one line of words
	for w in $(cat /proc/cmdline); do
		case "$w" in "vdk.$1="*) echo "${w#*=}" ;; esac
	done
}
# wait_for SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds.
wait_for() {
	n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
carrier_is() { [ "$(cat "/sys/class/net/$dev/carrier" 2>/dev/null)" = "$1" ]; }

dev=""
for d in /sys/class/net/*; do
	[ "$(readlink "$d/device/driver" 2>/dev/null | sed 's,.*/,,')" = virtio_net ] && dev="${d##*/}"
done
[ -n "$dev" ] || {
	bad device "no virtio_net interface"
	exit 1
}
ok device "$dev"
mtu="$(param mtu)"
[ "$(cat "/sys/class/net/$dev/mtu")" = "$mtu" ] && ok mtu "$mtu" ||
	bad mtu "$(cat "/sys/class/net/$dev/mtu") (want $mtu from the device)"
nq="$(ls -d "/sys/class/net/$dev/queues/rx-"* | wc -l)"
[ "$nq" = 2 ] && ok queue-pairs 2 || bad queue-pairs "$nq rx queues (want 2)"
ip link set lo up
ip link set "$dev" up
ip addr add 10.77.0.2/24 dev "$dev"
wait_for 10 carrier_is 1 || bad carrier "no carrier"

# --- ping, from each CPU (each CPU transmits on its own queue: XPS), and with jumbo frames ---
wait_for 10 ping -c 1 -W 1 10.77.0.1 >/dev/null || bad ping "10.77.0.1 unreachable"
taskset 1 ping -c 5 -i 0.2 10.77.0.1 >/dev/null && taskset 2 ping -c 5 -i 0.2 10.77.0.1 >/dev/null &&
	ok ping "from CPU 0 and CPU 1" || bad ping "lost packets"
ping -c 3 -s 8900 10.77.0.1 >/dev/null && ok jumbo "8900-byte pings" || bad jumbo "8900-byte pings lost"

# --- 64 MiB each way over TCP ------------------------------------------------------------------
# Watch the carrier meanwhile: down while the backend is away, up after.
(while :; do carrier_is 0 && touch /tmp/saw-down; sleep 0.1; done) &
watcher=$!
head -c 67108864 /dev/urandom >/tmp/out.bin
echo "VDK-DATA: g2h-sum $(sha256sum </tmp/out.bin | cut -d' ' -f1)"
echo "VDK-DATA: g2h-start"
taskset 1 nc 10.77.0.1 5001 </tmp/out.bin >/dev/null && ok g2h "64 MiB sent" || bad g2h "nc failed"
rm -f /tmp/out.bin
taskset 2 nc 10.77.0.1 5002 >/tmp/in.bin
sum="$(sha256sum </tmp/in.bin | cut -d' ' -f1)"
[ "$sum" = "$(param h2gsum)" ] && ok h2g "64 MiB received, sha256 matches" ||
	bad h2g "$(wc -c </tmp/in.bin) bytes, sha256 $sum"
rm -f /tmp/in.bin

# --- link down and up around the backend restart -----------------------------------------------
kill "$watcher"
[ -f /tmp/saw-down ] && ok link-down "the carrier went down while the backend was away" ||
	bad link-down "the carrier never went down while the backend was away"
carrier_is 1 && ok link-up || bad link-up "carrier is down"
wait_for 10 ping -c 1 -W 1 10.77.0.1 >/dev/null && ok ping-after-restart || bad ping-after-restart "lost"

[ "$fails" = 0 ]
