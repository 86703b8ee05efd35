/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.S - a tiny PVH guest that makes the VMM handle one MMIO write
 * N times, for bench/bench_vmm.sh (MMIO exit dispatch rate).
 *
 * Assembled with `as --64 --defsym MODE=m --defsym ITERS=n`, linked as a
 * flat binary at 1 MiB and wrapped in an ELF with a PVH note by
 * tests/integration/mkkernel.py (see build.sh next to this file).
 *
 *   MODE 0 "mmio":   writes QueueSel (0x030) of a virtio-rng device ITERS
 *                    times. Never bound to an ioeventfd: every write is a
 *                    KVM_EXIT_MMIO handled by the VMM in userspace (bus
 *                    lookup, virtio-mmio register file, back to KVM_RUN).
 *   MODE 1 "notify": brings the device up to DRIVER_OK with queue 0 set up
 *                    (empty rings), then writes QueueNotify (0x050) ITERS
 *                    times: the path of a real queue kick. vdk-vmm binds
 *                    QueueNotify to an ioeventfd from the start, QEMU once
 *                    the driver sets DRIVER_OK, so both VMMs see these in
 *                    the kernel and only wake their device thread.
 *   MODE 2 "boot":   ITERS is ignored; finds the device and powers off
 *                    (the baseline for start-up cost).
 *
 * Runs unchanged under vdk-vmm and QEMU microvm: the device is looked for
 * at vdk-vmm's first window (0xd0000000), then in QEMU microvm's 24
 * windows (0xfeb00000 + 0x200 * i). Power off: ACPI S5 (SLP_TYP 5 << 2 |
 * SLP_EN = 0x34) to vdk-vmm's sleep register (port 0x600), then to QEMU
 * microvm's (the GED, MMIO 0xfea00200).
 *
 * COM1 output (the host timestamps the lines as they arrive):
 *   VDK-NOTIFY: device at <hex>
 *   VDK-NOTIFY: start
 *   VDK-NOTIFY: end
 * or "VDK-NOTIFY: FAIL <why>".
 *
 * The PVH entry is 32-bit protected mode, which PVM-backed KVM runs in
 * its instruction emulator; so the guest switches to long mode at once,
 * with page tables assembled into the image (nothing computed at run
 * time), and runs the loop in 64-bit code like any real guest.
 */

	.equ MSR_EFER, 0xc0000080
	.equ COM1, 0x3f8

/* virtio-mmio registers (virtio 1.2 §4.2.2, <linux/virtio_mmio.h>) */
	.equ MMIO_MAGIC, 0x000
	.equ MMIO_VERSION, 0x004
	.equ MMIO_DEVICE_ID, 0x008
	.equ MMIO_DRV_FEAT, 0x020
	.equ MMIO_DRV_FEAT_SEL, 0x024
	.equ MMIO_QUEUE_SEL, 0x030
	.equ MMIO_QUEUE_NUM_MAX, 0x034
	.equ MMIO_QUEUE_NUM, 0x038
	.equ MMIO_QUEUE_READY, 0x044
	.equ MMIO_QUEUE_NOTIFY, 0x050
	.equ MMIO_STATUS, 0x070
	.equ MMIO_QUEUE_DESC, 0x080
	.equ MMIO_QUEUE_AVAIL, 0x090
	.equ MMIO_QUEUE_USED, 0x0a0

	.equ RING_BASE, 0x300000 /* desc, avail, used: one page each */
	.equ QUEUE_SIZE, 16

	.text
	/* ---- 32-bit PVH entry (offset 0 of the image) ----------------- */
	.code32
	.globl _start
_start:	cli
	lgdt gdt_desc
	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax			/* CR4.PAE */
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax		/* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* CR0.PG | CR0.PE */
	movl %eax, %cr0
	ljmp $0x08, $start64

	.code64
start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq $0x200000, %rsp

	/* ---- find a virtio-rng (device ID 4) -------------------------- */
	movl $0xd0000000, %edi		/* zero-extends into %rdi */
	call is_rng
	je found
	movl $0xfeb02e00, %edi		/* QEMU microvm: top window first */
1:	call is_rng
	je found
	subq $0x200, %rdi
	cmpl $0xfeb00000, %edi
	jae 1b
	leaq msg_nodev(%rip), %rsi
	call puts
	jmp poweroff

found:	leaq msg_dev(%rip), %rsi
	call puts
	movq %rdi, %rax
	call puthex
	call putnl
	cmpl $2, MMIO_VERSION(%rdi)
	je 1f
	leaq msg_legacy(%rip), %rsi
	call puts
	jmp poweroff
1:

.if MODE == 1
	/* Driver initialisation, virtio 1.2 §3.1.1 and §4.2.3.2. */
	movl $0, MMIO_STATUS(%rdi)		/* reset */
	movl $1, MMIO_STATUS(%rdi)		/* ACKNOWLEDGE */
	movl $3, MMIO_STATUS(%rdi)		/* | DRIVER */
	movl $1, MMIO_DRV_FEAT_SEL(%rdi)	/* features 32..63 */
	movl $1, MMIO_DRV_FEAT(%rdi)		/* VIRTIO_F_VERSION_1 (32) */
	movl $0, MMIO_DRV_FEAT_SEL(%rdi)
	movl $0, MMIO_DRV_FEAT(%rdi)
	movl $0xb, MMIO_STATUS(%rdi)		/* | FEATURES_OK */
	testl $8, MMIO_STATUS(%rdi)
	jnz 2f
	leaq msg_feat(%rip), %rsi
	call puts
	jmp poweroff
2:	movl $0, MMIO_QUEUE_SEL(%rdi)
	cmpl $QUEUE_SIZE, MMIO_QUEUE_NUM_MAX(%rdi)
	jae 3f
	leaq msg_qmax(%rip), %rsi
	call puts
	jmp poweroff
3:	movl $QUEUE_SIZE, MMIO_QUEUE_NUM(%rdi)
	movl $RING_BASE, MMIO_QUEUE_DESC(%rdi)
	movl $0, MMIO_QUEUE_DESC+4(%rdi)
	movl $RING_BASE+0x1000, MMIO_QUEUE_AVAIL(%rdi)
	movl $0, MMIO_QUEUE_AVAIL+4(%rdi)
	movl $RING_BASE+0x2000, MMIO_QUEUE_USED(%rdi)
	movl $0, MMIO_QUEUE_USED+4(%rdi)
	movl $1, MMIO_QUEUE_READY(%rdi)
	movl $0xf, MMIO_STATUS(%rdi)		/* | DRIVER_OK */
.endif

	leaq msg_start(%rip), %rsi
	call puts
.if MODE != 2
	movl $ITERS, %ecx
loop:
.if MODE == 0
	movl $0, MMIO_QUEUE_SEL(%rdi)
.else
	movl $0, MMIO_QUEUE_NOTIFY(%rdi)	/* queue 0; the avail ring is empty */
.endif
	decl %ecx
	jnz loop
.endif
	leaq msg_end(%rip), %rsi
	call puts

poweroff:
	movw $0x600, %dx			/* vdk-vmm: SLEEP_CONTROL_REG */
	movb $0x34, %al
	outb %al, %dx
	movl $0xfea00200, %eax			/* QEMU microvm: the GED's */
	movb $0x34, (%rax)
halt:	hlt
	jmp halt

/* is_rng: ZF set if %rdi is a virtio-mmio window with device ID 4. */
is_rng:	cmpl $0x74726976, MMIO_MAGIC(%rdi)	/* "virt" */
	jne 1f
	cmpl $4, MMIO_DEVICE_ID(%rdi)
1:	ret

/* puts: the NUL-terminated string at %rsi to COM1. */
puts:	lodsb
	testb %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

/* putc: %al to COM1, after LSR.THRE (bit 5) says the holding register is free. */
putc:	pushq %rax
	movw $COM1+5, %dx
2:	inb %dx, %al
	testb $0x20, %al
	jz 2b
	popq %rax
	movw $COM1, %dx
	outb %al, %dx
	ret

putnl:	movb $'\n', %al
	jmp putc

/* puthex: %eax as 8 hex digits. */
puthex:	movl %eax, %ebx
	movl $8, %ecx
1:	roll $4, %ebx
	movl %ebx, %eax
	andl $0xf, %eax
	leaq hexdigits(%rip), %rsi
	movb (%rsi,%rax), %al
	call putc
	decl %ecx
	jnz 1b
	ret

hexdigits:	.ascii "0123456789abcdef"
msg_dev:	.asciz "VDK-NOTIFY: device at "
msg_start:	.asciz "VDK-NOTIFY: start\n"
msg_end:	.asciz "VDK-NOTIFY: end\n"
msg_nodev:	.asciz "VDK-NOTIFY: FAIL no virtio-rng device found\n"
msg_legacy:	.asciz "VDK-NOTIFY: FAIL not a version 2 virtio-mmio device\n"
msg_feat:	.asciz "VDK-NOTIFY: FAIL device refused FEATURES_OK\n"
msg_qmax:	.asciz "VDK-NOTIFY: FAIL queue 0 smaller than 16\n"

	.balign 8
gdt:	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	/* Identity map of the low 4 GiB in 2 MiB pages; the top GiB (the
	 * MMIO windows) cache-disabled. Assembled, not computed. */
	.balign 4096
pml4:	.quad pdpt + 0x3
	.fill 511, 8, 0
pdpt:	.quad pd + 0x3
	.quad pd + 0x1000 + 0x3
	.quad pd + 0x2000 + 0x3
	.quad pd + 0x3000 + 0x3
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.if i >= 1536
	.quad (i << 21) | 0x9b		/* P W PWT PCD PS */
	.else
	.quad (i << 21) | 0x83		/* P W PS */
	.endif
	.set i, i + 1
	.endr
