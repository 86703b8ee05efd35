#!/usr/bin/env bash
# Install the Debian 12 packages vdk needs to build and test, only those that
# are missing. Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build
	clang clang-format libclang-rt-14-dev   # fuzzers (libFuzzer) and format check
	libcmocka-dev                           # unit tests
	libcbor-dev                             # device snapshots
	liburing-dev                            # io_uring in virtio-blk
	linux-libc-dev                          # <linux/virtio_*.h>, <linux/kvm.h>
	valgrind                                # callgrind in bench/
	acpica-tools                            # iasl: checks vdk-vmm's ACPI tables
	qemu-system-x86                         # real-guest integration tests (TCG)
	qemu-system-common                      # qemu-storage-daemon: vmm_vhost_user.sh's other back-end
	kmod cpio                               # depmod + cpio for the guest initramfs
	iproute2                                # network namespaces, taps (virtio-net tests)
	dpdk-dev                                    # dpdk-testpmd: the peer in bench/bench_net.sh
	"$@"
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
