/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest entry: the PVH boot protocol (Xen's
 * docs/misc/pvh.pandoc, as QEMU and vdk-vmm implement it).
 *
 * The loader finds XEN_ELFNOTE_PHYS32_ENTRY in the note below and starts
 * the vCPU at that address in 32-bit protected mode: flat 4 GiB code and
 * data segments, paging off, interrupts off, %ebx = guest-physical address
 * of struct hvm_start_info. No stack is provided.
 *
 * From there: zero .bss, build identity page tables for the low 4 GiB
 * (2 MiB pages; the top GiB, where the MMIO windows, IO-APIC and LAPIC
 * live, uncached), load our own GDT, enable PAE + EFER.LME + paging (long
 * mode), and call guest_main(start_info) on a .bss stack.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define CR0_PE   (1 << 0)
#define CR0_PG   (1 << 31)
#define CR4_PAE  (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)

#define PTE_P    0x001 /* present */
#define PTE_W    0x002 /* writable */
#define PTE_PWT  0x008 /* write-through */
#define PTE_PCD  0x010 /* cache disable */
#define PTE_PS   0x080 /* 2 MiB page (in a page directory entry) */

#define SEL_CODE64 0x08
#define SEL_DATA   0x10

#define STACK_SIZE 0x8000

	/* ---- the PVH note (ELF note: namesz, descsz, type, name, desc) -- */
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f
	.long 4f - 3f
	.long XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
3:	.long pvh_start32
4:	.balign 4
	.popsection

	/* ---- 32-bit entry --------------------------------------------- */
	.section .text.boot, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	/* %ebx (start_info) survives everything below: rep stos uses
	 * %eax/%ecx/%edi, the page table loop %eax/%ecx/%edx/%edi. */

	/* Zero .bss (page tables and stack live there). A loader is
	 * supposed to zero p_memsz beyond p_filesz, but do not rely on it. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	/* PML4[0] -> PDPT; PDPT[0..7] -> the eight page directories (8 GiB:
	 * RAM, the devices below 4 GiB and vdk-vmm's 64-bit PCI BAR window
	 * at 4 GiB). */
	movl $pdpt, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, pml4
	movl $pd, %eax
	orl $(PTE_P | PTE_W), %eax
	movl $pdpt, %edi
	movl $8, %ecx
1:	movl %eax, (%edi)
	addl $0x1000, %eax
	addl $8, %edi
	loop 1b

	/* 4096 PDEs of 2 MiB: physical address i << 21, its upper half
	 * (i >> 11) in the entry's upper 32 bits. */
	movl $pd, %edi
	xorl %edx, %edx		/* entry index */
2:	movl %edx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_W | PTE_PS), %eax
	cmpl $1536, %edx	/* 3 GiB and up: devices, uncached */
	jb 3f
	orl $(PTE_PWT | PTE_PCD), %eax
3:	movl %eax, (%edi,%edx,8)
	movl %edx, %eax
	shrl $11, %eax
	movl %eax, 4(%edi,%edx,8)
	incl %edx
	cmpl $4096, %edx
	jb 2b

	/* Long mode: GDT, CR4.PAE, CR3, EFER.LME, CR0.PG (Intel SDM vol. 3
	 * §9.8.5). */
	lgdt gdt_desc
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $long_entry

	/* ---- 64-bit ---------------------------------------------------- */
	.code64
long_entry:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movabsq $stack_top, %rsp
	xorl %ebp, %ebp
	movl %ebx, %edi		/* guest_main(start_info paddr) */
	call guest_main
4:	cli
	hlt
	jmp 4b

	/* ---- GDT ------------------------------------------------------- */
	.section .rodata
	.balign 16
gdt:
	.quad 0				/* null */
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff	/* 0x10: data, 4 GiB flat */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	/* ---- page tables and stack (zeroed above) ---------------------- */
	.section .bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 8 * 4096
	.balign 16
stack:	.skip STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
