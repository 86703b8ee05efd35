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

# /tests/lib: tests/integration/guest-lib (scripts/build-guest.sh puts it in every test guest).
# shellcheck source-path=SCRIPTDIR source=../guest-lib/check.sh
. /tests/lib/check.sh
# shellcheck source-path=SCRIPTDIR source=../guest-lib/net.sh
. /tests/lib/net.sh

net_find
ok device "$dev"
net_up 10.77.0.2 "$(param mtu)"
# --- ping, from each CPU (each CPU transmits on its own queue: XPS), and with jumbo frames ---
net_ping 10.77.0.1 10 5 3

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
