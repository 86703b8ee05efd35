#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A stock Linux guest under vdk-vmm (KVM) with --net=tap=vdktap0,queue-pairs=2,mtu=9000: the
# tap is multi-queue, MTU 9000, at 10.78.0.1/24 in a network namespace this test creates (all
# traffic stays in it); vdk-vmm runs inside that namespace. Where this host's /dev/kvm cannot
# run Linux the test runs nested, in an L1 guest (lib/vmm_harness.sh).
#
# The guest boots once per transport (LINUX_VMM_NET_TRANSPORTS, default "mmio pci":
# --transport mmio with 2 vCPUs, then pci with LINUX_VMM_NET_PCI_CPUS, default 4). The guest
# (tests/integration/linux-vmm-tests/vmmnet.sh, console on COM1) checks: MTU 9000 and 2 queue pairs from the device; pings the tap side from
# CPU 0 and CPU 1 (each CPU transmits on its own queue pair) and with 8900-byte frames;
# LINUX_VMM_NET_SIZE bytes (default 64 MiB, as the QEMU guest test, 16 MiB nested; LINUX_VMM_NET_PCI_SIZE over
# virtio-pci, default 4 MiB) go each way over TCP at the same time, the upload from CPU 0 and
# the download on CPU 1, streamed and sha256-checked at both ends; over
# virtio-pci, MSI-X: a config vector and one vector per queue (virtioN-input.0/1,
# output.0/1) on PCI-MSI, receive vectors fired; the host takes the tap down for 3 s and up
# again, and the guest sees its carrier go down and up (VIRTIO_NET_F_STATUS), then pings again.
#
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED. Environment: VDK_BUILD_DIR, VDK_VMM, LINUX_VMM_TIMEOUT
# (seconds per boot, default 300), LINUX_VMM_NET_SIZE (bytes), LINUX_VMM_NET_TRANSPORTS,
# LINUX_VMM_CMDLINE (more kernel parameters), VDK_NESTED (lib/vmm_harness.sh).
set -uo pipefail

name=linux_vmm_net
root=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${LINUX_VMM_TIMEOUT:-300}
# The transfer: 64 MiB each way by default; in the nested harness's L1 guest 16 MiB. There the
# emulation's L2 faults ("Known limit" of lib/vmm_harness.sh) come while the data flows, not
# only as it starts (2026-12-06: vCPU 1's triple fault after 35 s of the boot here, after 148 s
# in CI's run, both after the jumbo pings): the longer the transfer, the likelier one. Measured
# alternately the same day (16:37-16:58, one L1 per boot, mmio only): 64 MiB failed 5 of 11
# (3 L1 deaths, an L2 triple fault, an L2 vCPU that took no event: RCU stall), 16 MiB 0 of 12.
SIZE=${LINUX_VMM_NET_SIZE:-$((64 << 20))}
[[ "${VDK_IN_L1:-0}" == 1 ]] && SIZE=${LINUX_VMM_NET_SIZE:-$((16 << 20))}
# virtio-pci repeats the checks with 4 MiB by default: its boot runs 4 vCPUs on L1's two, and
# under the nested emulation a 4-vCPU guest under network load triple-faults now and then (the
# "Known limit" of lib/vmm_harness.sh). LINUX_VMM_NET_PCI_SIZE=$((64 << 20)) for the full run.
#
# The transfer is streamed through pipes in the guest (urandom | tee | nc, nc | sha256sum),
# which holds it to ~1.7 MB/s each way in the nested L2 (64 MiB in ~40 s). Tried on 2026-12-06
# and given up: the upload from a read-only disk and the download into a file, no pipe, ran 3x
# faster (13 s), but in those runs the emulation failed more often at the start of the
# transfer: L1 itself reset 3 times in about 17 runs (twice in one make check, which then
# failed), and the 4-vCPU pci boot triple-faulted 3 times in 16. The piped transfer has faulted
# there too, less often; a faster transfer seemed to make it likelier (not proven).
PCI_SIZE=${LINUX_VMM_NET_PCI_SIZE:-$((4 << 20))}
TRANSPORTS=${LINUX_VMM_NET_TRANSPORTS:-mmio pci}
PCI_CPUS=${LINUX_VMM_NET_PCI_CPUS:-4}

pass() {
	echo "$name: PASS $*"
	exit 0
}
fail() {
	echo "$name: FAIL $*"
	exit 1
}
skip() {
	echo "SKIPPED: $name: $*" >&2
	echo "SKIPPED: $name: $*"
	exit 77
}

. "$root/tests/integration/lib/vmm_harness.sh"
# shellcheck source-path=SCRIPTDIR source=lib/linux_guest.sh
. "$root/tests/integration/lib/linux_guest.sh"
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m); vdk-vmm boots x86-64 guests"
command -v python3 >/dev/null || skip "python3 not found"
command -v ip >/dev/null || skip "ip (iproute2) not found"

# ---- build vdk-vmm and the guest (on the host) ------------------------------------------
build=$(vmm_build_dir /tmp/vdk-linux-vmm-build)
vmm=${VDK_VMM:-$build/vmm/vdk-vmm}
dir=$root/build/linux-vmm/net
linux_guest_prepare "$build" "$dir" "$root/tests/integration/linux-vmm-tests" ||
	fail "$linux_guest_why"
[ -x "$vmm" ] || fail "$vmm missing"

# Here, or nested in an L1 guest (lib/vmm_harness.sh).
harness_run "$@"
if ! harness_in_l1 && ! harness_kvm_runs_linux; then
	skip "$harness_why"
fi
[ -e /dev/kvm ] || skip "/dev/kvm does not exist (no KVM here)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
ns=vdk-vmmnet-$$
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace (ip netns add: not root?)"

work=$(mktemp -d /tmp/$name.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev vdktap0 mode tap multi_queue || fail "cannot create the tap"
ip -n "$ns" link set vdktap0 mtu 9000 up
ip -n "$ns" addr add 10.78.0.1/24 dev vdktap0

# TCP servers in the namespace (per boot, lib/tcp_server.py): 5001 takes the boot's size in
# bytes (sha256 to a file), 5002 sends as many.
srv=$root/tests/integration/lib/tcp_server.py
# boot TRANSPORT: one guest with every check over --transport TRANSPORT.
boot() {
	local transport=$1 w=$work/$1 rc ms start vmm_pid linked gsum got hsum h2gsum size=$SIZE cpus=2
	[ "$transport" = pci ] && size=$PCI_SIZE cpus=$PCI_CPUS
	mkdir -p "$w"
	head -c "$size" /dev/urandom >"$w/h2g.bin"
	h2gsum=$(sha256sum <"$w/h2g.bin" | cut -d' ' -f1)
	local servers=()
	ip netns exec "$ns" python3 "$srv" recv 10.78.0.1 5001 "$size" "$w/g2h" 2>"$w/srv-recv.log" &
	servers+=($!)
	ip netns exec "$ns" python3 "$srv" send 10.78.0.1 5002 0 "$w/h2g.bin" 2>"$w/srv-send.log" &
	servers+=($!)
	pids+=("${servers[@]}")
	ip -n "$ns" link set vdktap0 up

	harness_vmstat "$w/vmstat"
	start=$(date +%s%N)
	ip netns exec "$ns" timeout "$TIMEOUT" "$vmm" --timeout $((TIMEOUT - 5)) --transport "$transport" \
		--kernel "$dir/guest/vmlinuz" --initrd "$dir/guest/initramfs.cpio.gz" --memory 256M --cpus "$cpus" \
		--net tap=vdktap0,queue-pairs=2,mtu=9000,mac=52:54:00:78:00:02 --console "$w/serial.log" \
		--cmdline "console=ttyS0 quiet ${LINUX_VMM_CMDLINE:-} vdk.test=vmmnet vdk.timeout=$((TIMEOUT - 10)) vdk.exit=poweroff vdk.transport=$transport vdk.size=$size vdk.h2gsum=$h2gsum" \
		</dev/null >"$w/vmm.out" 2>"$w/vmm.err" &
	vmm_pid=$!
	pids+=("$vmm_pid")
	# The link test: when the guest asks, the tap goes down for 3 s, then up.
	linked=no
	while kill -0 "$vmm_pid" 2>/dev/null; do
		if [ "$linked" = no ] && grep -aq '^VDK-DATA: link-test' "$w/serial.log" 2>/dev/null; then
			ip -n "$ns" link set vdktap0 down
			sleep 3
			ip -n "$ns" link set vdktap0 up
			linked=yes
		fi
		sleep 0.2
	done
	wait "$vmm_pid"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$w/serial.log" >"$w/serial.txt"
	grep -a -e '^VDK-CHECK' -e '^VDK-TEST' -e '^vmmnet:' "$w/serial.txt" | sed "s/^/$name: $transport: guest: /"
	echo "---- --transport $transport: vdk-vmm stderr (exit $rc, $ms ms)"
	cat "$w/vmm.err"
	harness_vmstat_delta "$w/vmstat"
	# Nested only: the emulation's L2 fault runs the test again in a new L1 (lib/vmm_harness.sh).
	harness_l2_retry "$rc" "$w/vmm.err" "$w/serial.txt" "$transport"
	[ "$rc" -ne 124 ] || {
		tail -n 30 "$w/serial.txt"
		fail "$transport: the guest did not end within ${TIMEOUT}s"
	}
	grep -aq 'VDK-TEST: vmmnet: PASS' "$w/serial.txt" || {
		tail -n 30 "$w/serial.txt"
		fail "$transport: no 'VDK-TEST: vmmnet: PASS' verdict"
	}
	[ "$rc" -eq 0 ] || fail "$transport: vdk-vmm exit status $rc"
	[ "$linked" = yes ] || fail "$transport: the guest never asked for the link test"
	if [ "$transport" = pci ]; then
		grep -aq 'VDK-CHECK: msix: ok' "$w/serial.txt" || fail "pci: no MSI-X check passed in the guest"
	fi
	gsum=$(sed -nE 's/^VDK-DATA: g2h-sum ([0-9a-f]+)$/\1/p' "$w/serial.txt")
	read -r got hsum <"$w/g2h" || fail "$transport: the upload server recorded nothing"
	[ "$got" = "$size" ] && [ "$hsum" = "$gsum" ] ||
		fail "$transport: upload: host received $got bytes with sha256 $hsum, the guest sent $size with $gsum"
	results+=("$transport: $cpus vCPUs, $size bytes each way, ${ms} ms")
}

results=()
for t in $TRANSPORTS; do
	boot "$t"
done
pass "(${results[*]}; sha256-checked both ends, 2 queue pairs, MTU 9000, link down/up seen)"
