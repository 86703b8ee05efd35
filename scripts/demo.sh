#!/usr/bin/env bash
# demo.sh - `make demo`: an unmodified Linux guest under QEMU uses vdk's vhost-user devices.
#
#   1. installs missing Debian packages (scripts/install-deps.sh, plus qemu-system-x86)
#   2. builds vdk-vhost-user-blk, -rng and -net (meson + ninja in build/)
#   3. builds the test guest with the demo script (scripts/build-guest.sh, docs/guest.md)
#   4. creates a 64 MiB disk image and starts the blk and rng backends on Unix sockets
#   5. as root: creates a network namespace with a tap (10.79.0.1/24) served by
#      vdk-vhost-user-net, and in it busybox udhcpd (the guest's address) and busybox httpd
#      (a page); the traffic stays inside that namespace. Not root: no networking, said so.
#   6. boots QEMU with vhost-user-blk-pci, vhost-user-rng-pci and virtio-net-pci on
#      -netdev vhost-user; the guest lists its virtio devices, writes a message to the disk,
#      reads it back, reads /dev/hwrng, takes an address by DHCP, fetches the page, powers off
#   7. checks the message in the image and prints what each backend served and the page
#
# Environment: VDK_BUILD_DIR (default build), VDK_DEMO_DIR (default build/demo: image, logs),
# VDK_QEMU_ACCEL=kvm|tcg (default: kvm only where KVM can run Linux).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
build="${VDK_BUILD_DIR:-build}"
demo="${VDK_DEMO_DIR:-build/demo}"
guest=build/vhost-user-guest
t0="$(date +%s.%N)"

bold='' plain=''
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
die() {
	echo "demo: error: $*" >&2
	exit 1
}
elapsed() { awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

step "Dependencies"
scripts/install-deps.sh qemu-system-x86

step "Building the vhost-user backends ($build)"
[[ -f "$build/build.ninja" ]] || meson setup "$build" >/dev/null
ninja -C "$build" tools/vdk-vhost-user-blk tools/vdk-vhost-user-rng tools/vdk-vhost-user-net | tail -n 1

step "Building the guest (Debian cloud kernel + busybox initramfs)"
scripts/build-guest.sh "$guest" tests/integration/guest-tests

step "Starting the backends"
mkdir -p "$demo"
rm -f "$demo"/*.log
truncate -s 0 "$demo/disk.img"
truncate -s 64M "$demo/disk.img"
sock="$(mktemp -d /tmp/vdk-demo.XXXXXX)" # socket paths must be short
pids=()
ns=""
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[[ -z "$ns" ]] || ip netns del "$ns" 2>/dev/null || true
	rm -rf "$sock"
}
trap cleanup EXIT
"$build/tools/vdk-vhost-user-blk" --socket-path="$sock/blk.sock" \
	--disk="$demo/disk.img,serial=vdk-demo-disk" --once 2>"$demo/blk.log" &
pids+=($!)
"$build/tools/vdk-vhost-user-rng" --socket-path="$sock/rng.sock" --once 2>"$demo/rng.log" &
pids+=($!)
for _ in $(seq 100); do
	[[ -S "$sock/blk.sock" && -S "$sock/rng.sock" ]] && break
	sleep 0.05
done
[[ -S "$sock/blk.sock" && -S "$sock/rng.sock" ]] || die "the backends did not start; see $demo/*.log"
echo "vdk-vhost-user-blk (pid ${pids[0]}) serves $demo/disk.img on $sock/blk.sock"
echo "vdk-vhost-user-rng (pid ${pids[1]}) serves entropy on $sock/rng.sock"

# --- Networking: a namespace of our own with a tap, DHCP and HTTP; nothing leaves it ---------
# busybox for udhcpd and httpd: the host's, else the busybox-static build-guest.sh unpacked.
net_opts=() net_append="" net_why=""
busybox="$(command -v busybox || true)"
[[ -n "$busybox" ]] || busybox="$(find "${VDK_GUEST_CACHE:-build/guest-cache}/root" \
	-path '*/busybox-static_*/bin/busybox' -print -quit 2>/dev/null || true)"
if [[ -z "$busybox" ]]; then
	net_why="no busybox for udhcpd/httpd"
elif ! command -v ip >/dev/null; then
	net_why="no ip (iproute2)"
elif [[ ! -c /dev/net/tun ]]; then
	net_why="no /dev/net/tun"
elif ! ip netns add "vdk-demo-$$" 2>/dev/null; then
	net_why="cannot create a network namespace (not root?)"
else
	ns="vdk-demo-$$"
	busybox="$(realpath "$busybox")"
	ip -n "$ns" link set lo up
	ip -n "$ns" tuntap add dev vdkdemo0 mode tap || die "cannot create a tap in $ns"
	ip -n "$ns" addr add 10.79.0.1/24 dev vdkdemo0
	ip -n "$ns" link set vdkdemo0 up
	ip netns exec "$ns" "$build/tools/vdk-vhost-user-net" --socket-path="$sock/net.sock" \
		--tap=vdkdemo0 --mac=52:54:00:79:00:02 --once 2>"$demo/net.log" &
	pids+=($!)
	mkdir -p "$sock/www"
	cat >"$sock/www/index.html" <<-END
		<h1>Hello from the vdk demo</h1>
		<p>Served by busybox httpd at 10.79.0.1 in network namespace $ns, through a tap and vdk-vhost-user-net.</p>
	END
	cat >"$sock/udhcpd.conf" <<-END
		interface vdkdemo0
		start 10.79.0.100
		end 10.79.0.199
		max_leases 100
		lease_file $sock/udhcpd.leases
		pidfile $sock/udhcpd.pid
		option subnet 255.255.255.0
		option lease 600
	END
	: >"$sock/udhcpd.leases"
	ip netns exec "$ns" "$busybox" udhcpd -f "$sock/udhcpd.conf" >"$demo/udhcpd.log" 2>&1 &
	pids+=($!)
	ip netns exec "$ns" "$busybox" httpd -f -v -p 10.79.0.1:80 -h "$sock/www" >"$demo/httpd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [[ -S "$sock/net.sock" ]] && break; sleep 0.05; done
	[[ -S "$sock/net.sock" ]] || die "vdk-vhost-user-net did not start; see $demo/net.log"
	echo "vdk-vhost-user-net (pid ${pids[2]}) serves tap vdkdemo0 (10.79.0.1/24) in namespace $ns on $sock/net.sock"
	echo "busybox udhcpd (10.79.0.100-199) and httpd (http://10.79.0.1/) run in $ns"
	# vectors=0 (INTx): QEMU 7.2 (Debian 12) crashes starting vhost-user-net with MSI-X.
	net_opts=(-chardev "socket,id=net0,path=$sock/net.sock" -netdev "vhost-user,id=n0,chardev=net0"
		-device "virtio-net-pci,netdev=n0,vectors=0,mac=52:54:00:79:00:02,romfile=")
	net_append=" vdk.url=http://10.79.0.1/index.html"
fi
[[ -z "$net_why" ]] || echo "demo: NOTE: no networking in this demo: $net_why"

# KVM only where it can run a stock kernel: not PVM-backed (kvm_pvm), and vmx/svm present.
accel=tcg
if [[ -n "${VDK_QEMU_ACCEL:-}" ]]; then
	accel="$VDK_QEMU_ACCEL"
elif [[ -w /dev/kvm ]] && ! grep -qs '^kvm_pvm ' /proc/modules && grep -qwE 'vmx|svm' /proc/cpuinfo; then
	accel=kvm
fi
case "$accel" in
kvm) accel_opts=(-enable-kvm -cpu host) ;;
*) accel_opts=(-accel tcg) ;;
esac

step "Booting Linux under QEMU ($accel); guest output:"
# Guest RAM must be shared with the backends: a memfd memory backend with share=on.
boot0="$(date +%s.%N)"
timeout -k 5 120 qemu-system-x86_64 -M q35 "${accel_opts[@]}" -m 512M -nographic -no-reboot -nic none \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 vdk.test=demo$net_append" \
	-chardev socket,id=blk0,path="$sock/blk.sock" -device vhost-user-blk-pci,chardev=blk0 \
	-chardev socket,id=rng0,path="$sock/rng.sock" -device vhost-user-rng-pci,chardev=rng0 \
	"${net_opts[@]}" \
	</dev/null 2>&1 | sed -uE $'s/\r//g; s/\x1b(c|\\[[0-9;?]*[A-Za-z])//g' | tee "$demo/console.log" |
	grep --line-buffered -aE '^(demo: |VDK-TEST: |VDK-GUEST: kernel)' | sed -u 's/^/  guest | /' || true
boot_s="$(awk -v s="$boot0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"

# The backends (the first 3 pids; --once) exit when QEMU disconnects; udhcpd and httpd are stopped.
for p in "${pids[@]:3}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]:0:3}"; do
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	wait "$p" || die "backend $p exited with status $?; see $demo/*.log"
done
pids=()

# counters LOG: the device's counters from the statistics line a back-end logs when it stops.
counters() { python3 scripts/backend-stats.py "$1"; }

step "Result"
grep -qa '^VDK-TEST: demo: PASS' "$demo/console.log" || die "the guest side failed; console: $demo/console.log"
msg="$(dd if="$demo/disk.img" bs=512 skip=2048 count=1 status=none | tr -d '\0')"
[[ "$msg" == "Hello from a Linux "* ]] || die "the guest's message is not at 1 MiB in $demo/disk.img"
echo "In $demo/disk.img at 1 MiB, written by the guest: \"$msg\""
echo "vdk-vhost-user-blk: $(counters "$demo/blk.log")"
echo "vdk-vhost-user-rng: $(counters "$demo/rng.log")"
if [[ -n "$ns" ]]; then
	grep -qa '^demo: fetched http://10.79.0.1/' "$demo/console.log" ||
		die "the guest did not fetch the page; console: $demo/console.log"
	echo "vdk-vhost-user-net: $(counters "$demo/net.log")"
	echo "The guest fetched http://10.79.0.1/index.html from busybox httpd in $ns (the 'demo:   |' lines above)"
fi
echo "Boot to power off: ${boot_s} s; whole demo: $(elapsed) s. Console log: $demo/console.log"
echo "demo: PASS"
