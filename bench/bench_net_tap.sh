#!/usr/bin/env bash
# bench_net_tap.sh - the tap path: a QEMU (TCG) Linux guest's TCP throughput to and from a
# network namespace, through vdk-vhost-user-net --tap against QEMU's own -netdev tap,vhost=off,
# on the same guest, in the same run, alternating (vdk, qemu, vdk, qemu, ...).
#
# Not iperf3: it would have to go into the busybox guest initramfs with its shared libraries.
# Instead busybox nc in the guest and a Python socket server in the namespace: the guest sends
# SIZE_MIB MiB of zeros (dd | nc) to port 5001 and then reads SIZE_MIB MiB from port 5002;
# the server times each transfer from its first to its last byte (host clock) and the figure
# is MiB/s. The namespace has one tap (10.80.0.1/24, MTU 1500) that both backends use in turn;
# the guest is scripts/build-guest.sh's with tests/integration/guest-tests/net_bench.sh.
#
# Usage: bench/bench_net_tap.sh  (env: BUILD=build, ROUNDS=2, SIZE_MIB=64, VDK_QEMU_ACCEL)
# Prints per direction: "tap g2h: qemu X MiB/s, vdk Y MiB/s, ratio Y/X (runs ...)".
# Exit status: 0, 1 on failure, 77 without QEMU, root (ip netns) or /dev/net/tun.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$repo/build}"
ROUNDS="${ROUNDS:-2}"
SIZE_MIB="${SIZE_MIB:-64}"
name=bench_net_tap

skip() {
	echo "$name: SKIPPED: $*" >&2
	exit 77
}
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
command -v ip >/dev/null || skip "ip (iproute2) not installed"
[[ -c /dev/net/tun ]] || skip "no /dev/net/tun"
ns="vdk-bnt-$$"
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace (not root?)"
tmp="$(mktemp -d /tmp/vdk-bnt.XXXXXX)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; ip netns del "$ns"; rm -rf "$tmp"' EXIT

ninja -C "$BUILD" tools/vdk-vhost-user-net >/dev/null || exit 1
net="$BUILD/tools/vdk-vhost-user-net"
guest="$repo/build/vhost-user-guest"
"$repo/scripts/build-guest.sh" "$guest" "$repo/tests/integration/guest-tests" 2>&1 | tail -n 1
[[ -f "$guest/initramfs.cpio.gz" ]] || exit 1
accel=(-accel tcg)
if [[ "${VDK_QEMU_ACCEL:-}" == kvm ]]; then accel=(-enable-kvm -cpu host); fi

ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev vdktap0 mode tap || exit 1
ip -n "$ns" addr add 10.80.0.1/24 dev vdktap0
ip -n "$ns" link set vdktap0 up

cat >"$tmp/srv.py" <<'PY'
import socket, sys, time
mode, port, size, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.80.0.1", port))
s.listen(1)
c, _ = s.accept()
got, t0 = 0, None
if mode == "recv":
    while got < size:
        b = c.recv(1 << 20)
        if not b:
            break
        if t0 is None:
            t0 = time.monotonic()
        got += len(b)
else:
    buf = bytes(1 << 20)
    t0 = time.monotonic()
    while got < size:
        got += c.send(buf[: min(len(buf), size - got)])
    c.shutdown(socket.SHUT_WR)
    c.recv(1)  # the guest closes once it has everything
t = time.monotonic() - (t0 or time.monotonic())
open(out, "w").write("%d %.6f\n" % (got, t))
c.close()
PY

# run KIND: one boot; prints "G2H_MIBS H2G_MIBS".
run() {
	local kind="$1" size=$((SIZE_MIB << 20)) p be=() netdev=()
	rm -f "$tmp/g2h" "$tmp/h2g" "$tmp/net.sock"
	ip netns exec "$ns" python3 "$tmp/srv.py" recv 5001 "$size" "$tmp/g2h" &
	pids+=($!)
	ip netns exec "$ns" python3 "$tmp/srv.py" send 5002 "$size" "$tmp/h2g" &
	pids+=($!)
	if [[ "$kind" == vdk ]]; then
		ip netns exec "$ns" "$net" --socket-path="$tmp/net.sock" --tap=vdktap0 \
			--mac=52:54:00:80:00:02 >>"$tmp/backend.log" 2>&1 &
		pids+=($!)
		for _ in $(seq 100); do [[ -S "$tmp/net.sock" ]] && break; sleep 0.05; done
		be=(-object "memory-backend-memfd,id=mem,size=512M,share=on" -numa "node,memdev=mem"
			-chardev "socket,id=c0,path=$tmp/net.sock" -netdev "vhost-user,id=n0,chardev=c0")
	else
		be=(-netdev "tap,id=n0,ifname=vdktap0,script=no,downscript=no,vhost=off")
	fi
	# vectors=0 (INTx) for both: QEMU 7.2 crashes starting vhost-user-net with MSI-X.
	netdev=(-device "virtio-net-pci,netdev=n0,vectors=0,mac=52:54:00:80:00:02,romfile=")
	ip netns exec "$ns" timeout -k 5 600 qemu-system-x86_64 -M q35 "${accel[@]}" -m 512M \
		-nographic -no-reboot -nic none "${be[@]}" "${netdev[@]}" \
		-kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1 vdk.test=net_bench vdk.mib=$SIZE_MIB" \
		</dev/null >"$tmp/console-$kind.log" 2>&1
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	pids=()
	grep -qa 'VDK-TEST: net_bench: PASS' "$tmp/console-$kind.log" || {
		echo "$name: $kind: the guest failed: $(grep -a 'VDK-' "$tmp/console-$kind.log" | tail -n 3)" >&2
		return 1
	}
	awk -v s="$size" 'FNR == 1 { if ($1 != s || $2 <= 0) { print "short"; exit 1 }
		printf "%.1f ", s / 1048576 / $2 } END { print "" }' "$tmp/g2h" "$tmp/h2g"
}

q=() v=()
for _ in $(seq "$ROUNDS"); do
	v+=("$(run vdk)") || exit 1
	q+=("$(run qemu)") || exit 1
done
for dir in 1 2; do
	what=g2h
	[[ "$dir" == 2 ]] && what=h2g
	qs="$(for r in "${q[@]}"; do echo "$r" | cut -d' ' -f"$dir"; done | tr '\n' ' ')"
	vs="$(for r in "${v[@]}"; do echo "$r" | cut -d' ' -f"$dir"; done | tr '\n' ' ')"
	awk -v w="$what" -v qs="$qs" -v vs="$vs" -v m="$SIZE_MIB" 'BEGIN {
		nq = split(qs, a, " "); nv = split(vs, b, " "); bq = 0; bv = 0
		for (i = 1; i <= nq; i++) if (a[i] > bq) bq = a[i]
		for (i = 1; i <= nv; i++) if (b[i] > bv) bv = b[i]
		printf "tap %s (%d MiB): qemu tap,vhost=off %.1f MiB/s, vdk-vhost-user-net %.1f MiB/s, ratio %.2f (runs: qemu %s; vdk %s)\n",
			w, m, bq, bv, (bq > 0 ? bv / bq : 0), qs, vs }'
done
