#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The nested harness's judgement of a failed Linux L2 boot (harness_l2_crash in
# lib/vmm_harness.sh), on recorded outputs: the emulation's fault signs get one more boot,
# inside L1 only; every other failure is final. No VM runs here.
#
# Exit: 0 PASS, 1 FAIL.
set -uo pipefail

name=nested_harness_signs
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/integration/lib/vmm_harness.sh"
work=$(mktemp -d "/tmp/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0 cases=0

# expect WANT(retry|final) L1(0|1) RC ERR_TEXT SERIAL_TEXT LABEL
expect() {
	local want=$1 inl1=$2 rc=$3 label=$6 got sign
	printf '%b' "$4" >"$work/err"
	printf '%b' "$5" >"$work/serial"
	cases=$((cases + 1))
	if sign=$(VDK_IN_L1=$inl1 harness_l2_crash "$rc" "$work/err" "$work/serial"); then
		got=retry
	else
		got=final
	fi
	if [ "$got" = "$want" ]; then
		echo "$name: ok: $label: $got${sign:+ ($sign)}"
	else
		echo "$name: FAIL: $label: $got, expected $want${sign:+ ($sign)}"
		failures=$((failures + 1))
	fi
}

stuck='vdk-vmm: guest still running after 175 s (--timeout): stopped\nvdk-vmm: vCPU 0: rip 0xffffffffc0760dcc rsp 0xff4f03294088b9a0 rflags 0x10246 cs 0x10 base 0 cr0 0x80050033 cr2 0xffffffffc0760dcc cr3 0x35038000 cr4 0x711eb0\n'
moving='vdk-vmm: guest still running after 175 s (--timeout): stopped\nvdk-vmm: vCPU 0: rip 0xffffffff81a00000 rsp 0xff4f03294088b9a0 rflags 0x246 cs 0x10 base 0 cr0 0x80050033 cr2 0x7ffd81c403f8 cr3 0x35038000 cr4 0x711eb0\n'
triple='vdk-vmm: vCPU 2: triple fault (KVM_EXIT_SHUTDOWN)\n'
df='[   58.2] traps: PANIC: double fault, error_code: 0x0\r\n[   58.2] Kernel panic - not syncing: Fatal exception in interrupt\r\n'
ifetch='[ 3.1] BUG: unable to handle page fault for address: ffffffffc0760dcc\r\n[ 3.1] #PF: supervisor instruction fetch in kernel mode\r\n[ 3.1] Kernel panic - not syncing: Fatal exception\r\n'
syscall='[ 58.2] RIP: 0010:entry_SYSCALL_64+0x0/0x29\r\n[ 58.2] Kernel panic - not syncing: Fatal exception in interrupt\r\n'
oops_only='[ 3.1] #PF: supervisor instruction fetch in kernel mode\r\n[ 3.1] Oops: 0010 [#1] SMP\r\nVDK-TEST: vmmlinux: FAIL\r\n'
bug='[ 3.1] kernel BUG at drivers/virtio/virtio_ring.c:2145!\r\n[ 3.1] Kernel panic - not syncing: Fatal exception\r\n'

expect retry 1 3 "$triple" "" "triple-fault exit in L1"
expect final 0 3 "$triple" "" "triple-fault exit outside L1 (real KVM: final)"
expect final 1 3 "" "" "exit 3 without vdk-vmm's triple-fault line"
expect retry 1 5 "$stuck" "" "--timeout with a vCPU at rip == cr2"
expect retry 1 124 "$stuck" "" "timeout(1) with a vCPU at rip == cr2"
expect final 1 5 "$moving" "" "--timeout with no vCPU at rip == cr2 (a real hang)"
expect final 1 0 "$stuck" "" "a clean exit with a stale state dump"
expect retry 1 2 "" "$df" "L2 panic: double fault (then reboot, exit 2)"
expect retry 1 0 "" "$ifetch" "L2 panic: supervisor instruction fetch"
expect retry 1 2 "" "$syscall" "L2 panic at entry_SYSCALL_64+0x0"
expect final 1 0 "" "$oops_only" "instruction-fetch oops without a panic"
expect final 1 2 "" "$bug" "L2 panic from a kernel BUG (a device could cause it: final)"
expect final 1 0 "" "VDK-TEST: vmmlinux: FAIL vda: MiB 2 read back differs\r\n" "a FAIL verdict"
expect final 1 1 "vdk-vmm: --disk x: No such file or directory\n" "" "a setup error"

if [ "$failures" -gt 0 ]; then
	echo "$name: FAIL ($failures of $cases cases)"
	exit 1
fi
echo "$name: PASS ($cases cases: the nested fault's signs are booted again in L1 only; other failures are final)"
