#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh - assemble bench/notify_guest/notify.S into a PVH kernel image.
#
# Usage: bench/notify_guest/build.sh MODE ITERS OUT
#   MODE   mmio | notify | boot (see notify.S)
#   ITERS  MMIO writes in the loop (1..4294967295; ignored for boot)
#   OUT    the ELF to write (vdk-vmm --kernel OUT, qemu -kernel OUT)
# Needs binutils (as, ld) and python3 (tests/integration/mkkernel.py).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkkernel="$here/../../tests/integration/mkkernel.py"

[[ $# -eq 3 ]] || { echo "usage: $0 mmio|notify|boot ITERS OUT" >&2; exit 2; }
case $1 in
mmio) mode=0 ;;
notify) mode=1 ;;
boot) mode=2 ;;
*) echo "$0: unknown mode '$1' (mmio, notify, boot)" >&2; exit 2 ;;
esac
[[ $2 =~ ^[1-9][0-9]{0,9}$ && $2 -le 4294967295 ]] ||
	{ echo "$0: ITERS must be 1..4294967295" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
as --64 --defsym MODE="$mode" --defsym ITERS="$2" -o "$tmp/notify.o" "$here/notify.S"
ld -m elf_x86_64 -Ttext=0x100000 -e _start --oformat=binary \
	-o "$tmp/notify.bin" "$tmp/notify.o"
python3 "$mkkernel" pvh "$tmp/notify.bin" "$3"
