#!/usr/bin/env bash
# The default Linux guest (scripts/build-guest.sh) boots under QEMU and loads
# its virtio modules; QEMU's own virtio-rng-pci is bound to virtio_rng.
# Exit 0 PASS, 1 FAIL, 77 SKIPPED (no QEMU).
exec "$(dirname "$0")/../../scripts/boot-guest-smoke.sh"
