#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vmm_pvh_smoke.sh - boot tiny guests of our own in vdk-vmm under real KVM.
#
# Builds (with as/ld and tests/integration/mkkernel.py) a 32-bit PVH guest
# and a 64-bit bzImage guest that check what the VMM handed them
# (hvm_start_info magic / boot_params "HdrS"), print "OK", the command
# line, the initrd, the virtio-mmio MagicValue/DeviceID of the first device
# on COM1 (port 0x3f8), then write the ACPI S5 value (0x34) to the sleep
# register (port 0x600). Cases:
#   1. PVH, --rng, --initrd: exit 0; output has OK, the command line, the
#      initrd text and "MMIO 4" (virtio-rng behind the first window)
#   2. bzImage (64-bit entry, paging): the same checks
#   3. PVH guest that triple-faults (ud2, no IDT): exit 3, "triple fault"
#   4. PVH guest that resets through the i8042 (0xfe to 0x64): exit 2
#   5. stdin piped to a guest that echoes what COM1 receives until "q"
#   6. --console FILE: the guest's output lands in the file
#   7. SIGTERM to a VM whose vCPUs sleep in KVM_RUN: exit 143
#   8. 2 vCPUs, 4 GiB (RAM above 4 GiB too) and a disk: exit 0
#   9. a guest that hangs (cli; hlt) with --timeout 1, on 1 and 2 vCPUs:
#      exit 5, "guest still running after 1 s (--timeout): stopped"; a
#      guest that powers off before its --timeout: exit 0
# Prints the wall time of case 1 and vdk-vmm's peak RSS (/usr/bin/time).
#
# Environment: VDK_VMM (default: <repo>/build/vmm/vdk-vmm).
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no /dev/kvm, no binary, no as/ld/python3).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vmm="${VDK_VMM:-$repo/build/vmm/vdk-vmm}"
mkkernel="$repo/tests/integration/mkkernel.py"

skip() {
	echo "vmm_pvh_smoke: SKIPPED: $*" >&2
	echo "SKIPPED"
	exit 77
}
failures=0
fail() {
	echo "vmm_pvh_smoke: FAIL: $*" >&2
	failures=$((failures + 1))
}

[[ -x "$vmm" ]] || skip "no vdk-vmm binary at $vmm (build it: ninja -C build, or set VDK_VMM)"
# Here, or nested in an L1 guest (lib/vmm_harness.sh).
. "$repo/tests/integration/lib/vmm_harness.sh"
harness_guest=freestanding # no Linux: runs directly where /dev/kvm can run it
harness_run "$@"
[[ -e /dev/kvm ]] || skip "/dev/kvm does not exist (no KVM on this host): the VMM cannot run a guest"
[[ -r /dev/kvm && -w /dev/kvm ]] || skip "/dev/kvm is not readable and writable by $(id -un)"
for tool in as ld python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (binutils / python3 needed to build the test guests)"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---- guests ------------------------------------------------------------------
cat >"$work/pvh.S" <<'EOF'
	.code32
	.text
	.globl _start
_start:	mov $0x200000, %esp		/* PVH gives no stack */
	mov $0x3f8, %dx			/* COM1 THR */
	cmpl $0x336ec578, (%ebx)	/* hvm_start_info.magic */
	jne fail
.if MODE == 1
	ud2				/* no IDT: #UD -> #DF -> triple fault */
.endif
.if MODE == 3
echo:	mov $0x3fd, %dx			/* LSR: wait for Data Ready */
	in %dx, %al
	test $1, %al
	jz echo
	mov $0x3f8, %dx			/* RBR */
	in %dx, %al
	cmp $'q', %al
	je poweroff
	out %al, %dx
	jmp echo
.endif
.if MODE == 2
	mov $0x64, %dx
	mov $0xfe, %al			/* i8042: pulse the reset line */
	out %al, %dx
	jmp halt
.endif
	mov $msg_ok, %esi
	call puts
	mov 24(%ebx), %esi		/* cmdline_paddr */
	call puts
	call nl
	cmpl $1, 12(%ebx)		/* nr_modules */
	jne 1f
	mov 16(%ebx), %eax		/* modlist_paddr */
	mov (%eax), %esi		/* modlist[0].paddr: the initrd */
	call puts
	call nl
1:	cmpl $0x74726976, 0xd0000000	/* virtio-mmio MagicValue "virt" */
	jne 2f
	cmpl $2, 0xd0000004		/* Version 2 */
	jne 2f
	mov $msg_mmio, %esi
	call puts
	mov 0xd0000008, %eax		/* DeviceID */
	add $'0', %al
	out %al, %dx
	call nl
2:
poweroff:
	mov $0x600, %dx			/* ACPI SLEEP_CONTROL_REG */
	mov $0x34, %al			/* SLP_TYP 5 (S5) << 2 | SLP_EN */
	out %al, %dx
halt:	hlt
	jmp halt
fail:	mov $msg_bad, %esi
	call puts
	jmp halt
puts:	lodsb
	test %al, %al
	jz 1f
	out %al, %dx
	jmp puts
1:	ret
nl:	mov $'\n', %al
	out %al, %dx
	ret
msg_ok:	.asciz "OK\n"
msg_bad: .asciz "BAD start_info\n"
msg_mmio: .asciz "MMIO "
EOF

cat >"$work/bz.S" <<'EOF'
	.code64
	.text
	.globl _start
_start:	hlt				/* startup_32: not used */
	.org 0x200
startup_64:
	mov %rsi, %rbx			/* the zero page */
	mov $0x3f8, %dx
	cmpl $0x53726448, 0x202(%rbx)	/* boot_params.hdr.header "HdrS" */
	jne fail
	mov $msg_ok, %esi
	call puts
	mov 0x228(%rbx), %esi		/* hdr.cmd_line_ptr */
	call puts
	call nl
	cmpl $0, 0x21c(%rbx)		/* hdr.ramdisk_size */
	je 1f
	mov 0x218(%rbx), %esi		/* hdr.ramdisk_image */
	call puts
	call nl
1:	mov $0xd0000000, %eax		/* through the identity map */
	cmpl $0x74726976, (%rax)
	jne 2f
	mov $msg_mmio, %esi
	call puts
	mov 8(%rax), %eax
	add $'0', %al
	out %al, %dx
	call nl
2:	mov $0x600, %dx
	mov $0x34, %al
	out %al, %dx
halt:	hlt
	jmp halt
fail:	mov $msg_bad, %esi
	call puts
	jmp halt
puts:	lodsb
	test %al, %al
	jz 1f
	out %al, %dx
	jmp puts
1:	ret
nl:	mov $'\n', %al
	out %al, %dx
	ret
msg_ok:	.asciz "OK\n"
msg_bad: .asciz "BAD boot_params\n"
msg_mmio: .asciz "MMIO "
EOF

build_pvh() { # MODE OUT
	as --32 --defsym MODE="$1" -o "$work/pvh$1.o" "$work/pvh.S" &&
		ld -m elf_i386 -Ttext=0x100000 -e _start --oformat=binary \
			-o "$work/pvh$1.bin" "$work/pvh$1.o" &&
		python3 "$mkkernel" pvh "$work/pvh$1.bin" "$2"
}
build_pvh 0 "$work/pvh.elf" || skip "cannot assemble the PVH test guest"
build_pvh 1 "$work/pvh-triple.elf" || skip "cannot assemble the PVH test guest"
build_pvh 2 "$work/pvh-reset.elf" || skip "cannot assemble the PVH test guest"
build_pvh 3 "$work/pvh-echo.elf" || skip "cannot assemble the PVH test guest"
as --64 -o "$work/bz.o" "$work/bz.S" &&
	ld -m elf_x86_64 -Ttext=0x100000 -e _start --oformat=binary \
		-o "$work/bz.bin" "$work/bz.o" &&
	python3 "$mkkernel" bzimage "$work/bz.bin" "$work/bzImage" ||
	skip "cannot assemble the bzImage test guest"
printf '\xfa\xf4\xeb\xfd' >"$work/hang.bin" # cli; hlt; jmp .-1
python3 "$mkkernel" pvh "$work/hang.bin" "$work/hang.elf" || skip "mkkernel.py failed"
printf 'INITRD-SMOKE\0' >"$work/initrd"
truncate -s 1M "$work/disk.img"

# run NAME EXPECTED_STATUS ARGS...: run vdk-vmm (stdin from $input, default
# /dev/null), keep its output in $out.
input=/dev/null
run() {
	local name=$1 want=$2 rc
	shift 2
	out=$(timeout 30 "$vmm" "$@" <"$input" 2>&1)
	rc=$?
	echo "---- $name (exit $rc)"
	echo "$out"
	[[ $rc -eq $want ]] || fail "$name: exit status $rc, expected $want"
}
expect() { # NAME TEXT
	grep -qF -- "$2" <<<"$out" || fail "$1: output lacks '$2'"
}

start=$(date +%s%N)
run pvh 0 --kernel "$work/pvh.elf" --memory 64M --rng --initrd "$work/initrd" \
	--cmdline "vdk.smoke=pvh"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect pvh "OK"
expect pvh "console=ttyS0 panic=-1 pci=off vdk.smoke=pvh"
expect pvh "INITRD-SMOKE"
expect pvh "MMIO 4"

run bzimage 0 --kernel "$work/bzImage" --memory 64M --rng --initrd "$work/initrd" \
	--cmdline "vdk.smoke=bz"
expect bzimage "OK"
expect bzimage "vdk.smoke=bz"
expect bzimage "INITRD-SMOKE"
expect bzimage "MMIO 4"

run triple-fault 3 --kernel "$work/pvh-triple.elf" --memory 32M
expect triple-fault "triple fault"
expect triple-fault "ms, exit reason 8" # "in vdk-vmm for N ms": its thread handled KVM_EXIT_SHUTDOWN

run reset 2 --kernel "$work/pvh-reset.elf" --memory 32M
expect reset "reboot"

printf 'echo-through-uart q' >"$work/input"
input="$work/input"
run stdin-echo 0 --kernel "$work/pvh-echo.elf" --memory 32M
input=/dev/null
expect stdin-echo "echo-through-uart "

run console-file 0 --kernel "$work/pvh.elf" --memory 32M --console "$work/console.log"
out=$(<"$work/console.log")
expect console-file "OK"

# vCPUs asleep in the kernel (halted with interrupts off, APs waiting for
# INIT/SIPI) must still be kicked out when the VMM is told to stop.
"$vmm" --kernel "$work/hang.elf" --memory 32M --cpus 2 </dev/null >"$work/hang.out" 2>&1 &
pid=$!
sleep 0.5
kill -TERM "$pid"
wait "$pid"
rc=$?
out=$(<"$work/hang.out")
echo "---- sigterm (exit $rc)"
echo "$out"
[[ $rc -eq 143 ]] || fail "sigterm: exit status $rc, expected 143"
expect sigterm "stopped by signal 15"

# A guest that stops responding (interrupts off, halted) ends at --timeout
# with a clear message, on 1 and on 2 vCPUs.
run hang-timeout 5 --kernel "$work/hang.elf" --memory 32M --timeout 1
expect hang-timeout "guest still running after 1 s (--timeout): stopped"
expect hang-timeout "vCPU 0: rip 0x10000" # where it hung: the hlt loop at 1 MiB
expect hang-timeout "mp-state halted in KVM_RUN for " # halted in KVM, not in a vdk-vmm handler
run hang-timeout-smp 5 --kernel "$work/hang.elf" --memory 32M --cpus 2 --timeout 1
expect hang-timeout-smp "(--timeout): stopped"
# A guest that ends first is not affected by --timeout.
run pvh-with-timeout 0 --kernel "$work/pvh.elf" --memory 32M --timeout 60
expect pvh-with-timeout "OK"

run smp-disk 0 --kernel "$work/pvh.elf" --memory 4G --cpus 2 \
	--disk "$work/disk.img,serial=smoke" --rng
expect smp-disk "OK"
expect smp-disk "MMIO 2"

echo "vmm_pvh_smoke: PVH boot to poweroff took ${elapsed_ms} ms (wall, incl. process start)"
if [[ -x /usr/bin/time ]]; then
	rss=$(/usr/bin/time -f '%M' "$vmm" --kernel "$work/pvh.elf" --memory 64M \
		</dev/null 2>&1 >/dev/null | tail -n 1)
	echo "vmm_pvh_smoke: peak RSS of vdk-vmm (64 MiB guest): ${rss} KiB"
fi

if [[ $failures -ne 0 ]]; then
	echo "FAIL ($failures)"
	exit 1
fi
echo "PASS"
exit 0
