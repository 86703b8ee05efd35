#!/bin/sh
# vmmnet.sh - guest side of tests/integration/linux_vmm_net.sh (busybox sh): a Linux guest of
# vdk-vmm --net=tap=vdktap0,queue-pairs=2,mtu=9000 on a tap at 10.78.0.1/24 in a network
# namespace of the host (L1 under the nested harness), which runs TCP servers there: port 5001
# takes vdk.size= bytes from us, port 5002 sends us vdk.size= bytes whose sha256 is vdk.h2gsum=.
# Each check prints "VDK-CHECK: <name>: ok|FAIL <why>"; "VDK-DATA: <key> <value>" for the host.

# /tests/lib: tests/integration/guest-lib (scripts/build-guest.sh puts it in every test guest).
# shellcheck source-path=SCRIPTDIR source=../guest-lib/check.sh
. /tests/lib/check.sh
# shellcheck source-path=SCRIPTDIR source=../guest-lib/net.sh
. /tests/lib/net.sh

net_find
ok device "$dev ($(cat "/sys/class/net/$dev/address"))"
net_up 10.78.0.2 9000
net_ping 10.78.0.1 20 3 2

# --- vdk.size bytes each way over TCP at once: the upload from CPU 0, the download on CPU 1 -----
# Streamed and hashed on the way (no copy in the guest's RAM-backed /tmp): vdk.size= bytes.
size="$(param size)"
rm -f /tmp/g2h.fifo /tmp/g2h.sum /tmp/h2g.sum
mkfifo /tmp/g2h.fifo
t0=$(date +%s)
(taskset 2 nc 10.78.0.1 5002 | sha256sum | cut -d' ' -f1 >/tmp/h2g.sum) &
sha256sum </tmp/g2h.fifo >/tmp/g2h.sum &
head -c "$size" /dev/urandom | tee /tmp/g2h.fifo | taskset 1 nc 10.78.0.1 5001 >/dev/null &&
	ok g2h "$size bytes sent from CPU 0 in $(($(date +%s) - t0)) s" || bad g2h "nc failed"
wait
echo "VDK-DATA: g2h-sum $(cut -d' ' -f1 </tmp/g2h.sum)"
sum="$(cat /tmp/h2g.sum)"
[ "$sum" = "$(param h2gsum)" ] && ok h2g "$size bytes received on CPU 1 (both ways in $(($(date +%s) - t0)) s), sha256 matches" ||
	bad h2g "sha256 $sum (want $(param h2gsum))"

# --- virtio-pci: MSI-X, one vector per queue (virtioN-input.0/1, virtioN-output.0/1) ------------
if [ "$(param transport)" = pci ]; then
	grep virtio /proc/interrupts | tr -s ' ' | sed 's/^/vmmnet:   /'
	n=$(readlink "/sys/class/net/$dev/device" | sed 's,.*/,,')
	grep -q " $n-config\$" /proc/interrupts || bad msix "no MSI-X config vector ($n-config)"
	for q in input.0 input.1 output.0 output.1; do
		line=$(grep " $n-$q\$" /proc/interrupts)
		if [ -z "$line" ]; then
			bad msix "no MSI-X vector $n-$q"
		elif ! echo "$line" | grep -q PCI-MSI; then
			bad msix "$n-$q not on PCI-MSI: $(echo "$line" | tr -s ' ')"
		fi
	done
	fired=$(awk -v n="$n" '$NF ~ "^" n "-input" { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break } END { print s + 0 }' /proc/interrupts)
	[ "$fired" -gt 0 ] && ok msix "$n: config + 4 queue vectors on PCI-MSI, $fired receive interrupts" ||
		bad msix "$n: no receive vector fired"
fi

# --- link down and up: the host takes its tap down for a while (the device's STATUS) -----------
echo "VDK-DATA: link-test"
wait_for 30 carrier_is 0 && ok link-down "carrier 0 while the tap is down" || bad link-down "carrier stayed 1"
wait_for 30 carrier_is 1 && ok link-up "carrier 1 again" || bad link-up "carrier stayed 0"
wait_for 10 ping -c 1 -W 1 10.78.0.1 >/dev/null && ok ping-after-link-up || bad ping-after-link-up "lost"

[ "$fails" = 0 ]
