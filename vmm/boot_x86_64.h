/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading a Linux kernel into guest memory on x86_64, the two ways a VMM
 * without firmware can start one:
 *
 *  - bzImage, 64-bit boot protocol (Documentation/arch/x86/boot.rst,
 *    "64-bit Boot Protocol"): the protected-mode kernel goes to 1 MiB, the
 *    VMM fills a zero page (struct boot_params, <asm/bootparam.h>) with the
 *    image's setup header, the command line, the initrd and an e820 map,
 *    builds identity-mapped page tables and a GDT with __BOOT_CS (0x10) and
 *    __BOOT_DS (0x18), and enters at code32_start + 0x200 in long mode with
 *    %rsi = the zero page. Needs protocol 2.12+ with XLF_KERNEL_64.
 *
 *  - PVH (Xen's "x86/HVM direct boot ABI", docs/misc/pvh.rst, as QEMU,
 *    Firecracker and libkrun use it): an ELF image (vmlinux, or any ELF)
 *    whose XEN_ELFNOTE_PHYS32_ENTRY (18) note gives a 32-bit entry point.
 *    The PT_LOAD segments go to their physical addresses; the VMM writes a
 *    struct hvm_start_info (with a memory map and the initrd as module 0)
 *    and enters in 32-bit protected mode, paging off, %ebx = start_info.
 *
 * The loader only writes guest memory (through <vdk/mem.h>) and fills
 * struct vmm_boot_entry, the BSP's initial register state; the vCPU code
 * turns that into KVM registers. It never touches KVM, so it is unit-tested
 * without /dev/kvm.
 *
 * Guest-physical layout (all below 1 MiB, inside RAM at 0):
 *
 *   0x000500  GDT                     0x006000  hvm_start_info (PVH)
 *   0x007000  zero page (bzImage)     0x008ff0  initial stack pointer
 *   0x009000  PML4   0x00a000 PDPT    0x00b000-0x012fff  8 page directories
 *   0x020000  command line (at most VMM_BOOT_CMDLINE_MAX bytes with NUL)
 *   0x0e0000  ACPI tables (acpi.h; reserved in the e820 map)
 *   0x0ffff0  reset stub at the real-mode reset vector f000:fff0 (below)
 *   0x100000  kernel (bzImage) / ELF segments (PVH: at their p_paddr)
 *   initrd: page-aligned, as high in the RAM below 4 GiB as the kernel
 *           allows (initrd_addr_max for a bzImage).
 *
 * Everything read from a kernel image is untrusted: offsets and sizes are
 * checked against the image length and the RAM with checked arithmetic.
 */
#ifndef VDK_BOOT_X86_64_H
#define VDK_BOOT_X86_64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/mem.h>

/* ---- guest-physical layout ------------------------------------------- */

#define VMM_BOOT_GDT_GPA	0x500ull
#define VMM_BOOT_START_INFO_GPA 0x6000ull
#define VMM_BOOT_ZERO_PAGE_GPA	0x7000ull
#define VMM_BOOT_STACK_GPA	0x8ff0ull
#define VMM_BOOT_PML4_GPA	0x9000ull
#define VMM_BOOT_PDPT_GPA	0xa000ull
/** First of VMM_BOOT_NUM_PD page directories (2 MiB pages, 8 GiB total:
 * RAM below 4 GiB and the 64-bit PCI BAR window at 4 GiB for a guest with
 * little RAM, which a 64-bit PVH guest reaches before its own tables). */
#define VMM_BOOT_PD_GPA	     0xb000ull
#define VMM_BOOT_NUM_PD	     8u
#define VMM_BOOT_CMDLINE_GPA 0x20000ull
/** Bytes reserved for the command line, including its NUL. */
#define VMM_BOOT_CMDLINE_MAX 0x10000u
/** Where the protected-mode part of a bzImage goes (1 MiB). */
#define VMM_BOOT_KERNEL_GPA 0x100000ull
/** Lowest address a PVH segment may load at (below: the VMM's own data). */
#define VMM_BOOT_PVH_MIN_GPA 0x100000ull
/** End of the conventional memory the e820 map reports as RAM. */
#define VMM_BOOT_EBDA_GPA 0x9fc00ull
/** The BIOS area holding the ACPI tables, reserved in the e820 map. */
#define VMM_BOOT_BIOS_GPA 0xe0000ull
/**
 * The real-mode alias of the x86 reset vector, f000:fff0: where a kernel
 * jumps to "reboot through the BIOS". Linux does so when the guest has
 * hardware-reduced ACPI and no EFI (arch/x86/kernel/reboot.c: reboot_init()
 * then picks BOOT_EFI, efi_reboot() returns, BOOT_BIOS follows) unless the
 * command line has a reboot= option. With no firmware there, the guest
 * would run zeroes forever; vmm_boot_load() writes VMM_BOOT_RESET_STUB
 * here instead, which asks for a reset the PC/AT way (command 0xfe to the
 * i8042 at port 0x64) and halts.
 */
#define VMM_BOOT_RESET_VECTOR_GPA 0xffff0ull
/** The 16-bit code at VMM_BOOT_RESET_VECTOR_GPA (8 of the 16 bytes below
 * 1 MiB): mov al, 0xfe; out 0x64, al; cli; hlt; jmp to the hlt. */
#define VMM_BOOT_RESET_STUB                                                    \
	{                                                                      \
		0xb0, 0xfe, 0xe6, 0x64, 0xfa, 0xf4, 0xeb, 0xfd                 \
	}
/** RAM at 0 ends at most here (the rest goes above 4 GiB). */
#define VMM_BOOT_LOW_RAM_MAX  0xc0000000ull
#define VMM_BOOT_HIGH_RAM_GPA 0x100000000ull

/* GDT selectors (Linux boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18). */
#define VMM_BOOT_SEL_CODE64 0x10u
#define VMM_BOOT_SEL_DATA   0x18u
#define VMM_BOOT_SEL_CODE32 0x20u
#define VMM_BOOT_SEL_TSS    0x28u
/** GDT entries written (the 64-bit TSS descriptor takes two). */
#define VMM_BOOT_GDT_ENTRIES 7u

/* e820 types (ACPI 6.4 §15, "System Address Map Interfaces"). */
#define VMM_E820_RAM	  1u
#define VMM_E820_RESERVED 2u

/** Most e820 entries vmm_boot_e820() produces. */
#define VMM_BOOT_E820_MAX 8u

/** Note type giving the PVH 32-bit entry (Xen public/elfnote.h). */
#define VMM_XEN_ELFNOTE_PHYS32_ENTRY 18u
/** hvm_start_info.magic (Xen public/arch-x86/hvm/start_info.h). */
#define VMM_HVM_START_MAGIC 0x336ec578u
/** Most PT_LOAD segments of a PVH image that are loaded. */
#define VMM_PVH_MAX_SEGMENTS 32u

/** What kind of image a kernel file is. */
enum vmm_kernel_kind {
	VMM_KERNEL_UNKNOWN, /**< neither: refuse it */
	VMM_KERNEL_BZIMAGE, /**< "HdrS" setup header at 0x202 */
	VMM_KERNEL_PVH,	    /**< ELF with a PHYS32_ENTRY note */
};

/** struct vmm_e820_entry - one entry of the guest's memory map. */
struct vmm_e820_entry {
	uint64_t addr; /**< guest-physical start */
	uint64_t size; /**< bytes */
	uint32_t type; /**< VMM_E820_* */
};

/** struct vmm_bzimage_info - what vmm_bzimage_parse() found. */
struct vmm_bzimage_info {
	uint16_t version;	  /**< boot protocol, e.g. 0x020f */
	uint64_t setup_size;	  /**< bytes before the protected-mode kernel */
	uint64_t kernel_size;	  /**< bytes of the protected-mode kernel */
	uint32_t init_size;	  /**< bytes the kernel needs from 1 MiB */
	uint32_t initrd_addr_max; /**< highest byte address an initrd may use */
	uint32_t cmdline_size;	  /**< longest command line, bytes w/o NUL */
	uint64_t hdr_len;	  /**< setup header bytes to copy, from 0x1f1 */
};

/** struct vmm_pvh_segment - one PT_LOAD segment of a PVH image. */
struct vmm_pvh_segment {
	uint64_t offset; /**< in the file, bytes */
	uint64_t filesz; /**< bytes copied from the file */
	uint64_t paddr;	 /**< guest-physical destination */
	uint64_t memsz;	 /**< bytes in memory (the rest zeroed), >= filesz */
};

/** struct vmm_pvh_info - what vmm_pvh_parse() found. */
struct vmm_pvh_info {
	uint32_t entry; /**< guest-physical 32-bit entry point */
	size_t num_segments;
	struct vmm_pvh_segment seg[VMM_PVH_MAX_SEGMENTS];
};

/** struct vmm_boot_config - what to load. Buffers are not retained. */
struct vmm_boot_config {
	const void *kernel;  /**< the kernel file, host-virtual */
	size_t kernel_len;   /**< bytes */
	const void *initrd;  /**< the initrd, or NULL */
	size_t initrd_len;   /**< bytes; 0 for none */
	const char *cmdline; /**< NUL-terminated; NULL for "" */
	uint64_t ram_low;    /**< bytes of RAM at 0 (<= VMM_BOOT_LOW_RAM_MAX) */
	uint64_t ram_high;   /**< bytes of RAM at 4 GiB; may be 0 */
	uint64_t rsdp_gpa;   /**< ACPI RSDP, guest-physical; 0 for none */
};

/** struct vmm_boot_entry - the BSP's register state and what went where. */
struct vmm_boot_entry {
	enum vmm_kernel_kind kind;
	bool long_mode;	      /**< 64-bit (bzImage) or 32-bit (PVH) entry */
	uint64_t rip;	      /**< entry point, guest-physical */
	uint64_t rsp;	      /**< stack pointer */
	uint64_t rsi;	      /**< bzImage: the zero page; else 0 */
	uint64_t rbx;	      /**< PVH: hvm_start_info; else 0 */
	uint64_t cr3;	      /**< long mode: the PML4; else 0 */
	uint16_t cs, ds, tr;  /**< selectors; ds also for es, fs, gs, ss */
	uint64_t kernel_end;  /**< first byte after the kernel, gpa */
	uint64_t initrd_gpa;  /**< 0 if no initrd */
	uint64_t initrd_size; /**< bytes */
};

/**
 * vmm_boot_detect() - classify a kernel file.
 * @img: @len bytes of the file, host-virtual.
 * Return: VMM_KERNEL_BZIMAGE if it has the boot sector signature 0xaa55 at
 * 0x1fe and "HdrS" at 0x202; VMM_KERNEL_PVH if it is an ELF image with
 * a XEN_ELFNOTE_PHYS32_ENTRY note (vmm_pvh_parse() succeeds); else
 * VMM_KERNEL_UNKNOWN. Any input is safe.
 */
enum vmm_kernel_kind vmm_boot_detect(const void *img, size_t len);

/**
 * vmm_bzimage_parse() - read and check the setup header of a bzImage
 * (boot.rst, "The Real-Mode Kernel Header").
 * @img: @len bytes, host-virtual. @out: filled on success.
 * Return: 0; -ENOEXEC if it is not a bzImage, or its setup size or
 * protected-mode part does not fit the file; -EPROTONOSUPPORT if the boot
 * protocol is older than 2.12 or XLF_KERNEL_64 is clear (no 64-bit entry).
 */
int vmm_bzimage_parse(const void *img, size_t len,
		      struct vmm_bzimage_info *out);

/**
 * vmm_pvh_parse() - find the PT_LOAD segments and the PVH entry of an ELF
 * image (ELFCLASS32 or ELFCLASS64, little-endian, EM_386 or EM_X86_64).
 * The entry comes from a PT_NOTE segment holding a note named "Xen" of type
 * VMM_XEN_ELFNOTE_PHYS32_ENTRY whose descriptor is 4 or 8 bytes (Linux
 * emits a pointer-sized one); the value must be below 4 GiB.
 * @img: @len bytes, host-virtual. @out: filled on success.
 * Return: 0; -ENOEXEC if it is not such an ELF image, a header, note or
 * segment leaves the file, or a segment has memsz < filesz or wraps;
 * -ENOENT if it is an ELF image without the note; -E2BIG if it has more
 * than VMM_PVH_MAX_SEGMENTS loadable segments.
 */
int vmm_pvh_parse(const void *img, size_t len, struct vmm_pvh_info *out);

/**
 * vmm_boot_e820() - the guest's memory map: RAM [0, 0x9fc00), reserved
 * [0x9fc00, 0xa0000) and [0xe0000, 1 MiB), RAM [1 MiB, @ram_low) and, if
 * @ram_high, RAM [4 GiB, 4 GiB + @ram_high).
 * @out: room for VMM_BOOT_E820_MAX entries.
 * Return: the number of entries; -EINVAL if @ram_low is below 2 MiB or
 * above VMM_BOOT_LOW_RAM_MAX, or 4 GiB + @ram_high wraps.
 */
int vmm_boot_e820(uint64_t ram_low, uint64_t ram_high,
		  struct vmm_e820_entry *out);

/**
 * vmm_boot_gdt_entry() - GDT descriptor @index (0..VMM_BOOT_GDT_ENTRIES-1)
 * as written to VMM_BOOT_GDT_GPA: null, null, 64-bit code (0x10), flat
 * data (0x18), flat 32-bit code (0x20), 32-bit busy TSS at 0 (0x28, two
 * slots). Intel SDM vol. 3 §3.4.5. Return: 0 for an index out of range.
 */
uint64_t vmm_boot_gdt_entry(unsigned int index);

/**
 * vmm_boot_load() - load a kernel (and initrd, command line) into @mem and
 * compute the BSP's entry state.
 * @mem: guest memory; RAM at 0 of cfg->ram_low bytes must be mapped.
 * @cfg: what to load. @out: filled on success.
 * @errmsg: if not NULL, set on failure to a static human-readable reason.
 *
 * Writes the GDT and the reset stub (VMM_BOOT_RESET_VECTOR_GPA), and for a
 * bzImage the zero page and page tables, for PVH
 * the hvm_start_info (version 1, memory map, initrd as module 0, RSDP);
 * copies the kernel, command line and initrd.
 *
 * Return: 0; -ENOEXEC (neither a bzImage nor a PVH ELF), -EPROTONOSUPPORT,
 * -E2BIG as the parsers; -ENAMETOOLONG if the command line is longer than
 * the kernel accepts or than VMM_BOOT_CMDLINE_MAX - 1; -ENOMEM if the
 * kernel, a segment or the initrd do not fit in the RAM below 4 GiB (or a
 * segment overlaps the VMM's data below 1 MiB); -EINVAL for a bad @cfg;
 * -EFAULT if @mem does not map the RAM @cfg describes.
 */
int vmm_boot_load(const struct vdk_mem *mem, const struct vmm_boot_config *cfg,
		  struct vmm_boot_entry *out, const char **errmsg);

#endif /* VDK_BOOT_X86_64_H */
