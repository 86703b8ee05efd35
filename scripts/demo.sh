#!/usr/bin/env bash
# demo.sh - `make demo`: an unmodified Linux guest under QEMU uses vdk's vhost-user devices.
#
#   1. installs missing Debian packages (scripts/install-deps.sh, plus qemu-system-x86)
#   2. builds vdk-vhost-user-blk and vdk-vhost-user-rng (meson + ninja in build/)
#   3. builds the test guest with the demo script (scripts/build-guest.sh, docs/guest.md)
#   4. creates a 64 MiB disk image and starts both backends on Unix sockets
#   5. boots QEMU with vhost-user-blk-pci and vhost-user-rng-pci; the guest lists its virtio
#      devices, writes a message to the disk, reads it back, reads /dev/hwrng, powers off
#   6. checks the message in the image and prints what each backend served
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
ninja -C "$build" tools/vdk-vhost-user-blk tools/vdk-vhost-user-rng | tail -n 1

step "Building the guest (Debian cloud kernel + busybox initramfs)"
scripts/build-guest.sh "$guest" tests/integration/guest-tests

step "Starting the backends"
mkdir -p "$demo"
rm -f "$demo"/*.log
truncate -s 0 "$demo/disk.img"
truncate -s 64M "$demo/disk.img"
sock="$(mktemp -d /tmp/vdk-demo.XXXXXX)" # socket paths must be short
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$sock"
}
trap cleanup EXIT
"$build/tools/vdk-vhost-user-blk" --socket-path="$sock/blk.sock" \
	--disk="$demo/disk.img,serial=vdk-demo-disk" 2>"$demo/blk.log" &
pids+=($!)
"$build/tools/vdk-vhost-user-rng" --socket-path="$sock/rng.sock" 2>"$demo/rng.log" &
pids+=($!)
for _ in $(seq 100); do
	[[ -S "$sock/blk.sock" && -S "$sock/rng.sock" ]] && break
	sleep 0.05
done
[[ -S "$sock/blk.sock" && -S "$sock/rng.sock" ]] || die "the backends did not start; see $demo/*.log"
echo "vdk-vhost-user-blk (pid ${pids[0]}) serves $demo/disk.img on $sock/blk.sock"
echo "vdk-vhost-user-rng (pid ${pids[1]}) serves entropy on $sock/rng.sock"

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
	-append "console=ttyS0 quiet panic=-1 vdk.test=demo" \
	-chardev socket,id=blk0,path="$sock/blk.sock" -device vhost-user-blk-pci,chardev=blk0 \
	-chardev socket,id=rng0,path="$sock/rng.sock" -device vhost-user-rng-pci,chardev=rng0 \
	</dev/null 2>&1 | sed -uE $'s/\r//g; s/\x1b(c|\\[[0-9;?]*[A-Za-z])//g' | tee "$demo/console.log" |
	grep --line-buffered -aE '^(demo: |VDK-TEST: |VDK-GUEST: kernel)' | sed -u 's/^/  guest | /' || true
boot_s="$(awk -v s="$boot0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"

# The backends exit when QEMU disconnects.
for p in "${pids[@]}"; do
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	wait "$p" || die "backend $p exited with status $?; see $demo/*.log"
done
pids=()

step "Result"
grep -qa '^VDK-TEST: demo: PASS' "$demo/console.log" || die "the guest side failed; console: $demo/console.log"
msg="$(dd if="$demo/disk.img" bs=512 skip=2048 count=1 status=none | tr -d '\0')"
[[ "$msg" == "Hello from a Linux "* ]] || die "the guest's message is not at 1 MiB in $demo/disk.img"
echo "In $demo/disk.img at 1 MiB, written by the guest: \"$msg\""
echo "vdk-vhost-user-blk: $(sed -nE 's/.*: ([0-9]+ reads .*)/\1/p' "$demo/blk.log")"
echo "vdk-vhost-user-rng: $(sed -nE 's/.*vdk-vhost-user-rng[^:]*: ([0-9]+ requests.*)/\1/p' "$demo/rng.log")"
echo "Boot to power off: ${boot_s} s; whole demo: $(elapsed) s. Console log: $demo/console.log"
echo "demo: PASS"
