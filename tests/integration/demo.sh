#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh - `make demo` (scripts/demo.sh) runs to its end within a bound: the stock Linux guest
# under QEMU uses vdk's blk, rng and (as root) net back-ends, the back-ends exit by themselves
# when QEMU disconnects (--once) and log their counters, which the demo prints. The bound
# catches a demo that waits forever (it did, from the day the back-ends began to keep
# listening by default until they were given --once).
#
# Environment: VDK_DEMO_TIMEOUT (seconds, default 300).
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no QEMU).
set -uo pipefail

name=demo
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v qemu-system-x86_64 >/dev/null || {
	echo "$name: SKIPPED: no qemu-system-x86_64" >&2
	exit 77
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
(cd "$root" && timeout --kill-after=10 "${VDK_DEMO_TIMEOUT:-300}" bash scripts/demo.sh) >"$out" 2>&1
rc=$?
fail() {
	tail -n 30 "$out"
	echo "$name: FAIL: $*"
	exit 1
}
[[ $rc -ne 124 ]] || fail "scripts/demo.sh did not end within ${VDK_DEMO_TIMEOUT:-300} s"
[[ $rc -eq 0 ]] || fail "scripts/demo.sh exited with status $rc"
grep -q '^demo: PASS$' "$out" || fail "no 'demo: PASS'"
grep -qE '^vdk-vhost-user-blk: reads [1-9][0-9]*, writes [1-9]' "$out" || fail "no blk counters (reads and writes)"
grep -qE '^vdk-vhost-user-rng: requests [1-9][0-9]*, bytes [1-9]' "$out" || fail "no rng counters"
if [[ $(id -u) == 0 ]]; then
	grep -qE '^vdk-vhost-user-net: tx_packets [1-9][0-9]*, .*rx_packets [1-9]' "$out" || fail "no net counters"
fi
grep -E '^(vdk-vhost-user-|Boot to power off)' "$out" | sed "s/^/$name: /"
echo "$name: PASS"
