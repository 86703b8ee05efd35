#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A stock Linux guest under vdk-vmm (KVM): over virtio-mmio at --cpus 1, 2 and 4, over
# virtio-pci (--transport pci) at --cpus 1 and 4. Debian 12's cloud kernel and vdk's busybox
# initramfs (scripts/build-guest.sh, docs/guest.md) find vdk-vmm's virtio-mmio devices through
# ACPI (LNRO0005), or its virtio-pci functions through the PNP0A08 host bridge and ECAM (MCFG),
# and run /tests/vmmlinux.sh
# (tests/integration/linux-vmm-tests/vmmlinux.sh). Where this host's /dev/kvm cannot run Linux
# the test runs nested, in an L1 guest (lib/vmm_harness.sh).
#
# Each boot: 256 MiB, two disks and the rng, the virtio-console as a Linux console
# (--virtio-console stdio, --cmdline console=hvc0), COM1 to a file. The guest checks:
#   - vCPUs online = --cpus (MADT, INIT/SIPI), vdk-vmm's command line prefix and our words,
#     the initrd's size as the kernel freed it
#   - virtio-blk: serials vdk-linux-rw (4 MiB: MiB 0 pseudo-random) and vdk-linux-ro (1 MiB,
#     readonly) on two different disks; sizes, ro flags, SHA-256 of both (O_DIRECT) against the
#     host's, 1 MiB O_DIRECT copy with fsync (FLUSH) read back, a text sector, a write to the
#     read-only disk refused and the disk unchanged
#   - virtio-rng: rng_current is virtio_rng, 64 bytes from /dev/hwrng
#   - every virtio interrupt line fired (irqfd)
#   - virtio-pci only: every function is 1af4:1040+type (revision >= 1, modern) bound to
#     virtio-pci; MSI-X: each device has a PCI-MSI config vector and per-queue vectors
#     (virtioN-config, virtioN-req.0, ...), and its queue vectors fired; on the host, every
#     MSI-X message went through an irqfd on a KVM MSI route (VDK_VMM_STATS), none through
#     KVM_SIGNAL_MSI
#   - one more virtio-pci boot with pci=nomsi: the INTx fallback; no MSI/MSI-X anywhere (guest
#     and host), each device on a level-triggered IO-APIC line that fired
#   - hvc0 is a kernel console; in raw mode the guest writes $CON_LINES generated lines, then
#     reads $CON_LINES host lines (vdk-vmm's stdin) and checks their SHA-256, then echoes them
#     ($CON_LINES_SMP lines at 2 vCPUs or more and with INTx, to keep the nested run short)
# and powers off through ACPI (exit 0); the first virtio-mmio boot (1 vCPU) and the last virtio-pci
# boot (2 vCPUs: Linux first stops the other CPUs) reboot instead (`reboot -f`, no reboot= option:
# Linux takes its default path, which on this hardware-reduced ACPI platform without EFI ends at
# the reset vector f000:fff0, where vdk-vmm's reset stub asks for an i8042 reset), which vdk-vmm
# documents as exit status 2 ("vdk-vmm does not reboot").
# On the host: the verdict line, the exit status, both hvc0 streams byte for byte, rw MiB 2 =
# MiB 0, the text sector, the read-only image unchanged.
#
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED. Environment: VDK_BUILD_DIR, VDK_VMM, LINUX_VMM_DIR (guest,
# default <repo>/build/linux-vmm), LINUX_VMM_TIMEOUT (seconds per boot, default 180),
# LINUX_VMM_CPUS (default "1 2 4"), LINUX_VMM_PCI_CPUS (virtio-pci, default "1 4"),
# LINUX_VMM_PCI_INTX_CPUS (virtio-pci with pci=nomsi, INTx; default "1", "" for none),
# LINUX_VMM_CON_LINES (hvc0 lines, default 3000), LINUX_VMM_CON_LINES_SMP (at 2 vCPUs or more
# and with INTx, default 500),
# LINUX_VMM_SHOW_CONSOLE=1 (print the whole serial console of each boot, not only the verdicts;
# e.g. with LINUX_VMM_CMDLINE=loglevel=7 to see where a boot spends its time),
# LINUX_VMM_TRANSPORTS (default "mmio pci"), LINUX_VMM_FORCE=1 (try a KVM that looks unable to run
# Linux), VDK_NESTED (lib/vmm_harness.sh).
set -uo pipefail

name=linux_vmm
root=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${LINUX_VMM_TIMEOUT:-180}
# Under the nested harness about one 4-vCPU L2 boot in 15 (and rarely a 1- or 2-vCPU one)
# ends in the emulation's fault: a triple fault, a vCPU stuck re-faulting on an instruction
# fetch, or an L2 panic from a spurious instruction-fetch page fault on kernel text. A KVM trace
# in L1 of one: an AP exits for WRMSR, L1's KVM skips it by decoding (TCG's SVM has no NRIPS),
# and on re-entry the fetch of the next instruction takes a not-present #PF whose delivery
# shuts down, while the other vCPUs share the same, sane CR3 and IDT. Such a boot ends the test
# with status 75, loudly, and the harness runs it again in a new L1 guest (harness_l2_retry in
# lib/vmm_harness.sh); any other failure is final.
CPUS=${LINUX_VMM_CPUS:-1 2 4}
PCI_CPUS=${LINUX_VMM_PCI_CPUS:-1 4}
PCI_INTX_CPUS=${LINUX_VMM_PCI_INTX_CPUS-1}
TRANSPORTS=${LINUX_VMM_TRANSPORTS:-mmio pci}
CON_LINES=${LINUX_VMM_CON_LINES:-3000}
CON_LINES_SMP=${LINUX_VMM_CON_LINES_SMP:-500}

pass() { echo "$name: PASS $*"; exit 0; }
fail() { echo "$name: FAIL $*"; exit 1; }
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
command -v timeout >/dev/null || skip "timeout (coreutils) not found"

# ---- build vdk-vmm and the guest (on the host) ------------------------------------------
build=$(vmm_build_dir /tmp/vdk-linux-vmm-build)
vmm=${VDK_VMM:-$build/vmm/vdk-vmm}
dir=${LINUX_VMM_DIR:-$root/build/linux-vmm}
linux_guest_prepare "$build" "$dir" "$root/tests/integration/linux-vmm-tests" ||
	fail "$linux_guest_why"
[ -x "$vmm" ] || fail "$vmm missing"

# Here, or nested in an L1 guest (lib/vmm_harness.sh).
harness_run "$@"
if ! harness_in_l1 && [ "${LINUX_VMM_FORCE:-0}" != 1 ] && ! harness_kvm_runs_linux; then
	skip "$harness_why (LINUX_VMM_FORCE=1 tries anyway)"
fi
[ -e /dev/kvm ] || skip "/dev/kvm does not exist (no KVM here)"

work=$(mktemp -d /tmp/$name.XXXXXX)
vmm_pid=
cleanup() {
	[ -n "$vmm_pid" ] && kill "$vmm_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# streams N: the host's halves of the console streams for N lines, in $work/conN.*: what the
# guest's awk writes (.want), what we send (.in) and its SHA-256 and size (.sum).
streams() {
	[ -f "$work/con$1.sum" ] && return
	python3 - "$work" "$1" <<'PY' || fail "creating the console streams"
import hashlib, sys
d, n = sys.argv[1], int(sys.argv[2])
a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" * 2
out = "".join("VDK-CON-OUT %05d %s\n" % (i, a[i % 62:i % 62 + 20 + i % 41]) for i in range(n))
open(f"{d}/con{n}.want", "w").write(out)
# Input: printable bytes of every kind, lines of varying length.
inp = "".join("vdk-in %05d %s\n" % (i, "".join(chr(33 + (i * 7 + j) % 94) for j in range(i % 70))) for i in range(n))
open(f"{d}/con{n}.in", "w").write(inp)
print(hashlib.sha256(inp.encode()).hexdigest(), len(inp), file=open(f"{d}/con{n}.sum", "w"))
PY
}
# The disks' first contents (each boot gets fresh copies).
sums=$(linux_guest_disks "$work" 0x7664) || fail "creating disk images"
read -r rw_sha ro_sha <<<"$sums"
initrd_kib=$(linux_guest_initrd_kib "$dir")

# extract FILE BEGIN END: the bytes strictly between the lines BEGIN\n and END\n.
extract() {
	python3 - "$@" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
b, e = sys.argv[2].encode() + b"\n", b"\n" + sys.argv[3].encode() + b"\n"
i = data.find(b)
j = data.find(e, i + len(b)) if i >= 0 else -1
if i < 0 or j < 0:
    sys.exit(1)
sys.stdout.buffer.write(data[i + len(b):j + 1])
PY
}

results=()
# boot TRANSPORT CPUS EXIT [intx]: one boot with every check; EXIT is poweroff or reboot.
boot() {
	local transport=$1 cpus=$2 how=$3 irq=${4:-} want_rc=0 rc ms start i lines=$CON_LINES in_sha in_bytes
	local extra=
	[ "$irq" = intx ] && extra="pci=nomsi vdk.intx=1"
	# Thousands of lines at 1 vCPU over each transport; fewer where the boot tests something else.
	[ "$cpus" -ge 2 ] || [ "$irq" = intx ] && lines=$CON_LINES_SMP
	streams "$lines"
	read -r in_sha in_bytes <"$work/con$lines.sum"
	[ "$how" = reboot ] && want_rc=2
	local w=$work/boot$((${#results[@]} + 1))
	mkdir -p "$w"
	cp "$work/rw.img" "$work/ro.img" "$w/"
	cp "$w/ro.img" "$w/ro.orig"
	mkfifo "$w/in" || fail "mkfifo"

	start=$(date +%s%N)
	VDK_VMM_STATS=1 timeout "$TIMEOUT" "$vmm" --timeout $((TIMEOUT - 5)) --kernel "$dir/guest/vmlinuz" \
		--initrd "$dir/guest/initramfs.cpio.gz" --memory 256M --cpus "$cpus" \
		--transport "$transport" \
		--disk "$w/rw.img,serial=vdk-linux-rw" \
		--disk "$w/ro.img,readonly,serial=vdk-linux-ro" --rng \
		--virtio-console stdio --console "$w/serial.log" \
		--cmdline "console=hvc0 quiet $extra ${LINUX_VMM_CMDLINE:-} vdk.test=vmmlinux vdk.transport=$transport vdk.timeout=$((TIMEOUT - 10)) vdk.exit=$how vdk.cpus=$cpus vdk.token=t$RANDOM$RANDOM vdk.initrd_kib=$initrd_kib vdk.rw_sha=$rw_sha vdk.ro_sha=$ro_sha vdk.con_lines=$lines vdk.in_bytes=$in_bytes vdk.in_sha=$in_sha" \
		<"$w/in" >"$w/hvc.out" 2>"$w/vmm.err" &
	vmm_pid=$!
	exec 7>"$w/in"
	# Send the input once the guest's hvc0 is in raw mode (else the line discipline would
	# echo it and cap a line at 4 KiB).
	for ((i = 0; i < TIMEOUT * 10; i++)); do
		grep -aq 'VDK-CON-IN-READY' "$w/hvc.out" && break
		kill -0 "$vmm_pid" 2>/dev/null || break
		sleep 0.1
	done
	if grep -aq 'VDK-CON-IN-READY' "$w/hvc.out"; then
		cat "$work/con$lines.in" >&7
	fi
	wait "$vmm_pid"
	rc=$?
	vmm_pid=
	exec 7>&-
	ms=$((($(date +%s%N) - start) / 1000000))
	sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[a-z]//g' "$w/serial.log" >"$w/serial.txt"
	echo "---- --transport $transport${irq:+ ($extra)} --cpus $cpus, $how: vdk-vmm exit $rc, ${ms} ms"
	if [ -n "${LINUX_VMM_SHOW_CONSOLE:-}" ]; then
		cat "$w/serial.txt"
	else
		grep -a -e 'VDK-GUEST' -e 'VDK-TEST' -e 'vmmlinux' "$w/serial.txt"
	fi
	echo "---- vdk-vmm stderr"
	cat "$w/vmm.err"

	local what="--transport $transport${irq:+ ($extra)} --cpus $cpus"
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
		echo "---- hvc0: $(wc -c <"$w/hvc.out") bytes, markers:"
		grep -a -b -o 'VDK-CON-[A-Z-]*' "$w/hvc.out" | grep -v ':VDK-CON-OUT$'
		echo "---- hvc0: last 300 bytes"
		tail -c 300 "$w/hvc.out"
		echo
	fi
	# Nested only: the emulation's L2 fault runs the test again in a new L1 (lib/vmm_harness.sh).
	harness_l2_retry "$rc" "$w/vmm.err" "$w/serial.txt" "$what"
	[ "$rc" -ne 124 ] && [ "$rc" -ne 5 ] ||
		{ tail -n 30 "$w/serial.txt"; fail "$what: the guest did not end within ${TIMEOUT}s"; }
	grep -aq 'VDK-TEST: vmmlinux: PASS' "$w/serial.txt" ||
		{ tail -n 30 "$w/serial.txt"; tail -c 1000 "$w/hvc.out"; fail "$what: no 'VDK-TEST: vmmlinux: PASS' verdict"; }
	for id in 0x0002 0x0004 0x0003; do
		if [ "$transport" = pci ]; then
			grep -aqE "VDK-GUEST: virtio .* id $id driver .* on 0000:00:[0-9a-f]{2}\.[0-7]\$" "$w/serial.txt" ||
				fail "$what: no virtio device $id bound on a PCI function"
		else
			grep -aq "VDK-GUEST: virtio .* id $id driver .* on LNRO0005" "$w/serial.txt" ||
				fail "$what: no virtio device $id bound on an ACPI (LNRO0005) virtio-mmio device"
		fi
	done
	[ "$rc" -eq "$want_rc" ] || fail "$what: vdk-vmm exit status $rc, expected $want_rc ($how)"
	if [ "$transport" = pci ]; then
		# MSI-X through irqfds on KVM MSI routes, not one KVM_SIGNAL_MSI per message.
		local irqfd ioctl
		read -r irqfd ioctl <<<"$(sed -n 's/.*MSI-X: \([0-9]*\) through irqfds, \([0-9]*\) through KVM_SIGNAL_MSI.*/\1 \2/p' "$w/vmm.err")"
		[ -n "$irqfd" ] || fail "$what: no MSI-X statistics on vdk-vmm's stderr (VDK_VMM_STATS)"
		if [ "$irq" = intx ]; then
			[ "$irqfd" -eq 0 ] && [ "$ioctl" -eq 0 ] ||
				fail "$what: MSI-X messages with pci=nomsi: $irqfd through irqfds, $ioctl through KVM_SIGNAL_MSI"
		else
			[ "$irqfd" -gt 0 ] && [ "$ioctl" -eq 0 ] ||
				fail "$what: MSI-X messages: $irqfd through irqfds, $ioctl through KVM_SIGNAL_MSI (want all through irqfds)"
		fi
	fi
	if [ "$how" = reboot ]; then
		# Linux's default path here: EFI (none), then the BIOS at the reset vector.
		grep -q 'reboot (i8042 reset)' "$w/vmm.err" ||
			fail "$what: no message about the i8042 reset (from the reset stub) on vdk-vmm's stderr"
	fi
	# Both console streams, byte for byte.
	extract "$w/hvc.out" VDK-CON-OUT-BEGIN VDK-CON-OUT-END >"$w/con-out.got" ||
		fail "$what: no VDK-CON-OUT block on hvc0"
	cmp "$w/con-out.got" "$work/con$lines.want" ||
		fail "$what: hvc0 output differs from the $lines lines the guest wrote"
	extract "$w/hvc.out" VDK-CON-ECHO-BEGIN VDK-CON-ECHO-END >"$w/con-echo.got" ||
		fail "$what: no VDK-CON-ECHO block on hvc0"
	cmp "$w/con-echo.got" "$work/con$lines.in" ||
		fail "$what: the input echoed back on hvc0 differs from what we sent"
	python3 - "$w/rw.img" "$cpus" <<'PY' || fail "$what: host: what the guest wrote is not in rw.img"
import sys
d = open(sys.argv[1], "rb").read()
m = 1 << 20
if d[2 * m:3 * m] != d[:m]:
    sys.exit("MiB 2 != MiB 0")
if not d[3 * m:3 * m + 512].startswith(b"VDK-LINUX-WROTE cpus=%s " % sys.argv[2].encode()):
    sys.exit("no text sector at MiB 3: %r" % d[3 * m:3 * m + 32])
PY
	cmp -s "$w/ro.img" "$w/ro.orig" || fail "$what: host: the read-only image changed"
	results+=("$transport${irq:+-$irq} cpus=$cpus $how hvc0 $lines lines, $in_bytes B in ${ms} ms")
	rm -f "$w"/*.img "$w/ro.orig"
}

# The first virtio-mmio boot and the last virtio-pci boot reboot, the others power off.
# virtio-pci at fewer vCPU counts (LINUX_VMM_PCI_CPUS) to keep the nested run short.
for transport in $TRANSPORTS; do
	list=$CPUS
	[ "$transport" = pci ] && list=$PCI_CPUS
	read -ra cpu_list <<<"$list"
	n=0
	for cpus in "${cpu_list[@]}"; do
		n=$((n + 1))
		how=poweroff
		if [ "$transport" = pci ]; then
			[ "$n" -eq "${#cpu_list[@]}" ] && how=reboot
		else
			[ "$n" -eq 1 ] && how=reboot
		fi
		boot "$transport" "$cpus" "$how"
	done
	# virtio-pci's INTx fallback: Linux with pci=nomsi (level-triggered IO-APIC lines).
	if [ "$transport" = pci ]; then
		for cpus in $PCI_INTX_CPUS; do
			boot pci "$cpus" poweroff intx
		done
	fi
done
printf -v summary '%s; ' "${results[@]}"
pass "(${summary%; }; hvc0 both ways byte for byte)"
