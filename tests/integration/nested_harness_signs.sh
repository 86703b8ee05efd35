#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The nested harness's judgement of a failed Linux L2 boot (harness_l2_crash in
# lib/vmm_harness.sh), on recorded outputs: the emulation's fault signs, inside L1 only, end
# the test with status 75 so that the harness runs it again in a new L1 (harness_l2_retry);
# every other failure is final. No VM runs here.
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
# 2026-12-06, linux_vmm_net's mmio boot (64 MiB): vCPU 0 took no timer tick for 4 minutes; its
# state line as vdk-vmm prints it since (+ where the thread was: " in KVM_RUN for N ms").
nmi_stuck='vdk-vmm: guest still running after 295 s (--timeout): stopped\nvdk-vmm: vCPU 0: rip 0xffffffffc045adcc rsp 0xff77282600563c90 rflags 0x246 cs 0x10 base 0 cr0 0x80050033 cr2 0x42a7a0 cr3 0x3088000 cr4 0x711eb0 efer 0xd01 idt 0xfffffe0000000000/0xfff gdt 0xfffffe0000001000/0x7f exception none/0 nmi pending mp-state runnable in KVM_RUN for 251022 ms\nvdk-vmm: vCPU 1: rip 0xffffffff85a17a0b rsp 0xff6dd17140093ed8 rflags 0x246 cs 0x10 base 0 cr0 0x80050033 cr2 0x7fff7d4ade00 cr3 0x2b9c000 cr4 0x711ea0 efer 0xd01 idt 0xfffffe0000000000/0xfff gdt 0xfffffe000003c000/0x7f exception none/0 nmi none mp-state runnable\n'
rcu='[   30.241315] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\r\n[   30.245195] rcu: \t0-...0: (366 ticks this GP) idle=1b34/1/0x4000000000000000 softirq=283/285 fqs=2470\r\n'
nmi_none=${nmi_stuck//nmi pending/nmi none}
nmi_user=${nmi_stuck//in KVM_RUN for 251022 ms/in vdk-vmm for 251022 ms, exit reason 6}
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
expect retry 1 5 "$nmi_stuck" "$rcu" "--timeout: RCU stall and a vCPU with an NMI pending"
expect final 1 5 "$nmi_none" "$rcu" "--timeout: RCU stall, no NMI pending (a driver could spin so: final)"
expect final 1 5 "$nmi_stuck" "" "--timeout: an NMI pending, no RCU stall report"
expect final 1 5 "$nmi_user" "$rcu" "--timeout: RCU stall, NMI pending, the thread in vdk-vmm (a stuck exit handler: final)"
expect final 1 0 "$nmi_stuck" "$rcu" "a clean exit despite an RCU stall report"
expect final 1 0 "$stuck" "" "a clean exit with a stale state dump"
expect retry 1 2 "" "$df" "L2 panic: double fault (then reboot, exit 2)"
expect retry 1 0 "" "$ifetch" "L2 panic: supervisor instruction fetch"
expect retry 1 2 "" "$syscall" "L2 panic at entry_SYSCALL_64+0x0"
expect final 1 0 "" "$oops_only" "instruction-fetch oops without a panic"
expect final 1 2 "" "$bug" "L2 panic from a kernel BUG (a device could cause it: final)"
expect final 1 0 "" "VDK-TEST: vmmlinux: FAIL vda: MiB 2 read back differs\r\n" "a FAIL verdict"
expect final 1 1 "vdk-vmm: --disk x: No such file or directory\n" "" "a setup error"

# harness_l2_retry: a fault's sign ends the test with status 75 (the harness then runs it again
# in a new L1), after a RETRY line; any other failure returns 1 and the test goes on to judge it.
# retry_case WANT_STATUS RC ERR_TEXT LABEL
retry_case() {
	printf '%b' "$3" >"$work/err"
	: >"$work/serial"
	cases=$((cases + 1))
	(
		VDK_IN_L1=1
		harness_l2_retry "$2" "$work/err" "$work/serial" "mmio" >"$work/out"
		exit 0
	)
	local got=$?
	if [ "$got" = "$1" ] && { [ "$got" = 0 ] || grep -q "^$name: RETRY mmio: L2 triple fault" "$work/out"; }; then
		echo "$name: ok: harness_l2_retry: $4: status $got"
	else
		echo "$name: FAIL: harness_l2_retry: $4: status $got, expected $1 (output: $(cat "$work/out"))"
		failures=$((failures + 1))
	fi
}
retry_case 75 3 "$triple" "triple-fault exit: test ends, 75"
retry_case 0 1 "vdk-vmm: --disk x: No such file or directory\n" "a setup error: returns, the test judges it"

# harness_l1_attempts, with a stand-in for QEMU that prints an L1 run's console lines: the
# test "fake" ends with the statuses of FAKE_L1_PLAN, one line per L1 boot.
cat >"$work/fake-qemu" <<'QEMU'
#!/bin/bash
n=$(($(cat "$FAKE_L1_COUNT" 2>/dev/null || echo 0) + 1))
echo "$n" >"$FAKE_L1_COUNT"
sleep "${FAKE_L1_SLEEP:-0}"
echo "VDK-L1: start"
echo "VDK-L1: kvm PASS /dev/kvm (a stand-in)"
echo "VDK-L1-OUT fake: fake: L1 boot $n"
echo "VDK-L1: test fake rc=$(sed -n "${n}p" "$FAKE_L1_PLAN")"
echo "VDK-L1: end"
QEMU
chmod +x "$work/fake-qemu"
# l1_case LABEL WANT_STATUS WANT_L1_BOOTS STATUS...
l1_case() {
	local label=$1 want=$2 boots=$3 got n
	shift 3
	cases=$((cases + 1))
	harness_results=$work/l1-$cases
	mkdir -p "$harness_results"
	printf '%s\n' "$@" >"$work/plan"
	rm -f "$work/count"
	FAKE_L1_PLAN=$work/plan FAKE_L1_COUNT=$work/count harness_l1_attempts "$work/fake-qemu" fake >"$work/l1.out" 2>&1
	got=$(cat "$harness_results/fake.rc" 2>/dev/null)
	n=$(cat "$work/count" 2>/dev/null)
	if [ "$got" = "$want" ] && [ "$n" = "$boots" ]; then
		echo "$name: ok: harness_l1_attempts: $label: status $got after $n L1 guest(s)"
	else
		echo "$name: FAIL: harness_l1_attempts: $label: status ${got:-none} after ${n:-0} L1 guest(s), expected $want after $boots"
		sed 's/^/  /' "$work/l1.out"
		failures=$((failures + 1))
	fi
}
export FAKE_L1_PLAN FAKE_L1_COUNT
l1_case "passes at once" 0 1 0
l1_case "a FAIL is final" 1 1 1 0
l1_case "an L2 fault (75), then a pass in a new L1" 0 2 75 0
l1_case "75 twice, then a pass" 0 3 75 75 0
mapfile -t every < <(for ((i = 0; i < HARNESS_L1_ATTEMPTS; i++)); do echo 75; done)
l1_case "75 in every L1: fails after $HARNESS_L1_ATTEMPTS" 1 "$HARNESS_L1_ATTEMPTS" "${every[@]}" 0
# The time budget: L1 guests of 3 s each against a budget of 6 s: a third L1 does not start.
# (The harness counts whole seconds, $SECONDS: after one L1 it reads 3 or 4, after two 6 or 7;
# the margin allows up to a second of overhead per L1.)
HARNESS_L1_BUDGET=6 FAKE_L1_SLEEP=3 l1_case "75 twice, the budget spent: no third L1" 1 2 75 75 0

if [ "$failures" -gt 0 ]; then
	echo "$name: FAIL ($failures of $cases cases)"
	exit 1
fi
echo "$name: PASS ($cases cases: the nested fault's signs are run again in a new L1, in L1 only; other failures are final)"
