# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# `A && ok || bad` is if-then-else (ok only echoes); sysfs names are plain:
# shellcheck disable=SC2015,SC2012
#
# net.sh - the guest side of the virtio-net tests (busybox sh), sourced after
# /tests/lib/check.sh by guest-tests/vhost_user_net.sh (QEMU on vdk-vhost-user-net,
# tests/integration/vhost_user_net.sh) and linux-vmm-tests/vmmnet.sh (vdk-vmm --net,
# tests/integration/linux_vmm_net.sh). In both the device has 2 queue pairs and the host's end
# is a tap at x.y.z.1/24 in a network namespace of the host's test.

# carrier_is 0|1: the carrier of the virtio-net interface $dev is that.
carrier_is() { [ "$(cat "/sys/class/net/$dev/carrier" 2>/dev/null)" = "$1" ]; }

# net_find: dev, the name of the virtio-net interface (the one bound to virtio_net); when there
# is none, check "device" fails and the script exits 1.
net_find() {
	dev=""
	for d in /sys/class/net/*; do
		[ "$(readlink "$d/device/driver" 2>/dev/null | sed 's,.*/,,')" = virtio_net ] && dev="${d##*/}"
	done
	[ -n "$dev" ] || {
		bad device "no virtio_net interface"
		exit 1
	}
}

# net_up ADDR MTU: checks "mtu" (the interface took MTU from the device) and "queue-pairs" (2
# rx queues), then brings lo and $dev up with ADDR/24 and checks "carrier" (within 10 s).
net_up() {
	[ "$(cat "/sys/class/net/$dev/mtu")" = "$2" ] && ok mtu "$2" ||
		bad mtu "$(cat "/sys/class/net/$dev/mtu") (want $2 from the device)"
	nq="$(ls -d "/sys/class/net/$dev/queues/rx-"* | wc -l)"
	[ "$nq" = 2 ] && ok queue-pairs 2 || bad queue-pairs "$nq rx queues (want 2)"
	ip link set lo up
	ip link set "$dev" up
	ip addr add "$1/24" dev "$dev"
	wait_for 10 carrier_is 1 || bad carrier "no carrier"
}

# net_ping PEER SECONDS COUNT JUMBO_COUNT: checks "ping": PEER answers within SECONDS, then COUNT
# pings from CPU 0 and COUNT from CPU 1 all come back (each CPU transmits on its own queue
# pair: XPS); "jumbo": JUMBO_COUNT pings of 8900 bytes come back.
net_ping() {
	wait_for "$2" ping -c 1 -W 1 "$1" >/dev/null || bad ping "$1 unreachable"
	taskset 1 ping -c "$3" -i 0.2 "$1" >/dev/null && taskset 2 ping -c "$3" -i 0.2 "$1" >/dev/null &&
		ok ping "from CPU 0 and CPU 1" || bad ping "lost packets"
	ping -c "$4" -s 8900 "$1" >/dev/null && ok jumbo "8900-byte pings" || bad jumbo "8900-byte pings lost"
}
