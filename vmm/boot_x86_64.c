/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linux x86_64 kernel loading: bzImage (64-bit boot protocol) and PVH.
 * See boot_x86_64.h for the guest-physical layout and the two protocols.
 *
 * Do not assume that anything read from a kernel image is sensible: every
 * offset and size comes from the file, so each is checked against the file
 * length (and the RAM) with overflow-checked arithmetic before it is used.
 */
#include "boot_x86_64.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include <asm/bootparam.h>

/* ---- small helpers ----------------------------------------------------- */

/* Offsets in a bzImage (boot.rst, "The Real-Mode Kernel Header"). */
#define BZ_HDR_OFFSET	  0x1f1u /* struct setup_header in the image */
#define BZ_JUMP_OFFSET	  0x201u /* second byte of the jump: header size */
#define BZ_BOOT_FLAG	  0xaa55u
#define BZ_HDRS		  0x53726448u /* "HdrS" */
#define BZ_MIN_VERSION	  0x020cu     /* 2.12: xloadflags */
#define BZ_64BIT_ENTRY	  0x200u      /* startup_64 - startup_32 */
#define BZ_LOADER_UNKNOWN 0xffu	      /* type_of_loader: "undefined" */
#define BZ_HEAP_END	  0xfe00u     /* heap_end_ptr, as QEMU sets it */
#define BZ_INITRD_MAX_OLD 0x37ffffffu /* initrd_addr_max before 2.03 */

#define PAGE_SIZE_4K	  0x1000ull
#define PTE_P		  0x1ull  /* present */
#define PTE_RW		  0x2ull  /* writable */
#define PTE_PS		  0x80ull /* 2 MiB page (in a page directory) */
#define PD_PAGE_SIZE	  (2ull << 20)

/* struct hvm_start_info and friends: Xen public/arch-x86/hvm/start_info.h
 * (version 1). Field names as Xen spells them. */
struct hvm_start_info {
	uint32_t magic;		 /* VMM_HVM_START_MAGIC */
	uint32_t version;	 /* 1: the memmap fields are present */
	uint32_t flags;		 /* SIF_xxx; 0 */
	uint32_t nr_modules;	 /* entries at modlist_paddr */
	uint64_t modlist_paddr;	 /* struct hvm_modlist_entry[] */
	uint64_t cmdline_paddr;	 /* NUL-terminated ASCII */
	uint64_t rsdp_paddr;	 /* ACPI RSDP, or 0 */
	uint64_t memmap_paddr;	 /* struct hvm_memmap_table_entry[] */
	uint32_t memmap_entries; /* entries at memmap_paddr */
	uint32_t reserved;	 /* must be zero */
};

struct hvm_modlist_entry {
	uint64_t paddr;		/* module start */
	uint64_t size;		/* bytes */
	uint64_t cmdline_paddr; /* module command line, or 0 */
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;	   /* base address */
	uint64_t size;	   /* bytes */
	uint32_t type;	   /* e820 type */
	uint32_t reserved; /* must be zero */
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap layout");

#define START_INFO_MODLIST_GPA (VMM_BOOT_START_INFO_GPA + 0x40)
#define START_INFO_MEMMAP_GPA  (VMM_BOOT_START_INFO_GPA + 0x80)

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* True if [off, off + n) lies inside a buffer of @len bytes. */
static bool in_file(uint64_t off, uint64_t n, size_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(off, n, &end) && end <= len;
}

static void set_err(const char **errmsg, const char *msg)
{
	if (errmsg)
		*errmsg = msg;
}

/* ---- bzImage ----------------------------------------------------------- */

int vmm_bzimage_parse(const void *img, size_t len, struct vmm_bzimage_info *out)
{
	const uint8_t *p = img;
	struct setup_header hdr;
	uint64_t setup_sects, hdr_len;

	if (!img || len < BZ_HDR_OFFSET + sizeof(hdr))
		return -ENOEXEC;
	memcpy(&hdr, p + BZ_HDR_OFFSET, sizeof(hdr));
	if (hdr.boot_flag != BZ_BOOT_FLAG || hdr.header != BZ_HDRS)
		return -ENOEXEC;
	if (hdr.version < BZ_MIN_VERSION || !(hdr.xloadflags & XLF_KERNEL_64))
		return -EPROTONOSUPPORT;

	/* "If this field is 0, the real value is 4." */
	setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
	memset(out, 0, sizeof(*out));
	out->version = hdr.version;
	out->setup_size = (setup_sects + 1) * 512;
	if (out->setup_size >= len)
		return -ENOEXEC;
	out->kernel_size = len - out->setup_size;
	out->init_size = hdr.init_size;
	out->initrd_addr_max =
		hdr.initrd_addr_max ? hdr.initrd_addr_max : BZ_INITRD_MAX_OLD;
	out->cmdline_size = hdr.cmdline_size;

	/* The header runs to 0x202 + the byte at 0x201; copy no more than the
	 * struct we know (newer fields stay zero). */
	hdr_len = 0x202u + p[BZ_JUMP_OFFSET] - BZ_HDR_OFFSET;
	if (hdr_len > sizeof(hdr))
		hdr_len = sizeof(hdr);
	out->hdr_len = hdr_len;
	return 0;
}

/* ---- PVH ELF ----------------------------------------------------------- */

/* The ELF header fields the PVH parse uses, whichever class they came from. */
struct ehdr {
	uint16_t machine, phentsize, phnum;
	uint64_t phoff;
};

/* Read the ELF header of @img into @eh. The caller has checked that the
 * header lies inside the file. */
static void read_ehdr(const uint8_t *img, bool is64, struct ehdr *eh)
{
	if (is64) {
		Elf64_Ehdr h;

		memcpy(&h, img, sizeof(h));
		*eh = (struct ehdr){h.e_machine, h.e_phentsize, h.e_phnum,
				    h.e_phoff};
	} else {
		Elf32_Ehdr h;

		memcpy(&h, img, sizeof(h));
		*eh = (struct ehdr){h.e_machine, h.e_phentsize, h.e_phnum,
				    h.e_phoff};
	}
}

/* One program header, whichever ELF class it came from. */
struct phdr {
	uint32_t type;
	uint64_t offset, filesz, paddr, memsz;
};

/* Read program header @i of @img into @ph. The caller has checked that the
 * table lies inside the file. */
static void read_phdr(const uint8_t *img, bool is64, uint64_t phoff,
		      unsigned int i, struct phdr *ph)
{
	if (is64) {
		Elf64_Phdr h;

		memcpy(&h, img + phoff + (uint64_t)i * sizeof(h), sizeof(h));
		*ph = (struct phdr){h.p_type, h.p_offset, h.p_filesz, h.p_paddr,
				    h.p_memsz};
	} else {
		Elf32_Phdr h;

		memcpy(&h, img + phoff + (uint64_t)i * sizeof(h), sizeof(h));
		*ph = (struct phdr){h.p_type, h.p_offset, h.p_filesz, h.p_paddr,
				    h.p_memsz};
	}
}

/* Walk the notes of one PT_NOTE segment [off, off + size) of the file.
 * Return: 1 and *entry if the PVH note is there, 0 if not, -ENOEXEC if a
 * note leaves the segment or its value does not fit in 32 bits. */
static int find_pvh_note(const uint8_t *img, uint64_t off, uint64_t size,
			 uint32_t *entry)
{
	uint64_t pos = 0;

	while (size - pos >= 12) {
		uint32_t namesz = get_le32(img + off + pos);
		uint32_t descsz = get_le32(img + off + pos + 4);
		uint32_t type = get_le32(img + off + pos + 8);
		uint64_t name_pad = ((uint64_t)namesz + 3) & ~3ull;
		uint64_t desc_pad = ((uint64_t)descsz + 3) & ~3ull;
		uint64_t name_off = pos + 12, desc_off = name_off + name_pad;

		/* Both paddings are < 2^33, so these sums cannot wrap. */
		if (desc_off > size || desc_pad > size - desc_off)
			return -ENOEXEC;
		if (namesz == 4 && !memcmp(img + off + name_off, "Xen", 4) &&
		    type == VMM_XEN_ELFNOTE_PHYS32_ENTRY) {
			uint64_t v;

			if (descsz == 4)
				v = get_le32(img + off + desc_off);
			else if (descsz == 8)
				v = get_le64(img + off + desc_off);
			else
				return -ENOEXEC;
			if (v > UINT32_MAX)
				return -ENOEXEC;
			*entry = (uint32_t)v;
			return 1;
		}
		pos = desc_off + desc_pad;
	}
	return 0;
}

int vmm_pvh_parse(const void *img, size_t len, struct vmm_pvh_info *out)
{
	const uint8_t *p = img;
	struct ehdr eh;
	bool is64, found = false;

	if (!img || len < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) ||
	    p[EI_DATA] != ELFDATA2LSB)
		return -ENOEXEC;
	is64 = p[EI_CLASS] == ELFCLASS64;
	if ((!is64 && p[EI_CLASS] != ELFCLASS32) ||
	    len < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
		return -ENOEXEC;
	read_ehdr(p, is64, &eh);
	if (eh.phentsize != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    (eh.machine != EM_X86_64 && eh.machine != EM_386) ||
	    eh.phnum == 0 ||
	    !in_file(eh.phoff, (uint64_t)eh.phentsize * eh.phnum, len))
		return -ENOEXEC;

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < eh.phnum; i++) {
		struct phdr ph;
		uint64_t end;

		read_phdr(p, is64, eh.phoff, i, &ph);
		if (ph.type == PT_NOTE && !found) {
			int r;

			if (!in_file(ph.offset, ph.filesz, len))
				return -ENOEXEC;
			r = find_pvh_note(p, ph.offset, ph.filesz, &out->entry);
			if (r < 0)
				return r;
			found = r > 0;
		} else if (ph.type == PT_LOAD && ph.memsz > 0) {
			if (ph.filesz > ph.memsz ||
			    !in_file(ph.offset, ph.filesz, len) ||
			    __builtin_add_overflow(ph.paddr, ph.memsz, &end))
				return -ENOEXEC;
			if (out->num_segments == VMM_PVH_MAX_SEGMENTS)
				return -E2BIG;
			out->seg[out->num_segments++] =
				(struct vmm_pvh_segment){ph.offset, ph.filesz,
							 ph.paddr, ph.memsz};
		}
	}
	if (!found)
		return -ENOENT;
	if (out->num_segments == 0)
		return -ENOEXEC;
	return 0;
}

enum vmm_kernel_kind vmm_boot_detect(const void *img, size_t len)
{
	struct vmm_pvh_info pvh;
	const uint8_t *p = img;

	if (img && len >= BZ_HDR_OFFSET + sizeof(struct setup_header) &&
	    get_le16(p + 0x1fe) == BZ_BOOT_FLAG &&
	    get_le32(p + 0x202) == BZ_HDRS)
		return VMM_KERNEL_BZIMAGE;
	if (vmm_pvh_parse(img, len, &pvh) == 0)
		return VMM_KERNEL_PVH;
	return VMM_KERNEL_UNKNOWN;
}

/* ---- memory map, GDT, page tables -------------------------------------- */

int vmm_boot_e820(uint64_t ram_low, uint64_t ram_high,
		  struct vmm_e820_entry *out)
{
	uint64_t end;
	int n = 0;

	if (ram_low < 2 * VMM_BOOT_KERNEL_GPA ||
	    ram_low > VMM_BOOT_LOW_RAM_MAX ||
	    __builtin_add_overflow(VMM_BOOT_HIGH_RAM_GPA, ram_high, &end))
		return -EINVAL;
	out[n++] = (struct vmm_e820_entry){0, VMM_BOOT_EBDA_GPA, VMM_E820_RAM};
	out[n++] = (struct vmm_e820_entry){VMM_BOOT_EBDA_GPA,
					   0xa0000 - VMM_BOOT_EBDA_GPA,
					   VMM_E820_RESERVED};
	out[n++] = (struct vmm_e820_entry){
		VMM_BOOT_BIOS_GPA, VMM_BOOT_KERNEL_GPA - VMM_BOOT_BIOS_GPA,
		VMM_E820_RESERVED};
	out[n++] = (struct vmm_e820_entry){VMM_BOOT_KERNEL_GPA,
					   ram_low - VMM_BOOT_KERNEL_GPA,
					   VMM_E820_RAM};
	if (ram_high)
		out[n++] = (struct vmm_e820_entry){VMM_BOOT_HIGH_RAM_GPA,
						   ram_high, VMM_E820_RAM};
	return n;
}

uint64_t vmm_boot_gdt_entry(unsigned int index)
{
	/* Flat 4 GiB descriptors, base 0 (Intel SDM vol. 3 §3.4.5):
	 * 0x9b = present, DPL 0, code, execute/read, accessed;
	 * 0x93 = present, DPL 0, data, read/write, accessed;
	 * 0x8b = present, 32-bit TSS (busy); flags 0xa = G + L, 0xc = G + DB. */
	static const uint64_t gdt[VMM_BOOT_GDT_ENTRIES] = {
		0,
		0,
		0x00af9b000000ffffull, /* 0x10: 64-bit code */
		0x00cf93000000ffffull, /* 0x18: data */
		0x00cf9b000000ffffull, /* 0x20: 32-bit code */
		0x00008b0000000067ull, /* 0x28: TSS, limit 0x67 */
		0,		       /* upper half of the 64-bit TSS entry */
	};

	return index < VMM_BOOT_GDT_ENTRIES ? gdt[index] : 0;
}

static int write_gdt(const struct vdk_mem *mem)
{
	uint64_t gdt[VMM_BOOT_GDT_ENTRIES];

	for (unsigned int i = 0; i < VMM_BOOT_GDT_ENTRIES; i++)
		gdt[i] = vmm_boot_gdt_entry(i);
	return vdk_mem_write(mem, VMM_BOOT_GDT_GPA, gdt, sizeof(gdt));
}

/* The reset stub at the real-mode reset vector (see boot_x86_64.h). */
static int write_reset_stub(const struct vdk_mem *mem)
{
	static const uint8_t stub[] = VMM_BOOT_RESET_STUB;

	return vdk_mem_write(mem, VMM_BOOT_RESET_VECTOR_GPA, stub,
			     sizeof(stub));
}

/* Identity-map the first 8 GiB with 2 MiB pages: PML4[0] -> PDPT[0..7] ->
 * eight page directories (Intel SDM vol. 3 §4.5). */
static int write_page_tables(const struct vdk_mem *mem)
{
	uint64_t *pml4, *pdpt, *pd;

	pml4 = vdk_mem_translate(mem, VMM_BOOT_PML4_GPA, PAGE_SIZE_4K);
	pdpt = vdk_mem_translate(mem, VMM_BOOT_PDPT_GPA, PAGE_SIZE_4K);
	pd = vdk_mem_translate(mem, VMM_BOOT_PD_GPA,
			       VMM_BOOT_NUM_PD * PAGE_SIZE_4K);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, PAGE_SIZE_4K);
	memset(pdpt, 0, PAGE_SIZE_4K);
	pml4[0] = VMM_BOOT_PDPT_GPA | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < VMM_BOOT_NUM_PD; i++)
		pdpt[i] = (VMM_BOOT_PD_GPA + i * PAGE_SIZE_4K) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < VMM_BOOT_NUM_PD * 512; i++)
		pd[i] = (i * PD_PAGE_SIZE) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

/* ---- shared loading steps ---------------------------------------------- */

/* Copy the command line (with its NUL) to VMM_BOOT_CMDLINE_GPA; @max is the
 * longest length the kernel accepts, without the NUL. */
static int write_cmdline(const struct vdk_mem *mem, const char *cmdline,
			 uint64_t max, const char **errmsg)
{
	size_t n = strnlen(cmdline, VMM_BOOT_CMDLINE_MAX);

	if (n >= VMM_BOOT_CMDLINE_MAX || n > max) {
		set_err(errmsg, "command line too long for this kernel");
		return -ENAMETOOLONG;
	}
	return vdk_mem_write(mem, VMM_BOOT_CMDLINE_GPA, cmdline, n + 1);
}

/* Place the initrd page-aligned as high as possible below @limit (the end
 * of usable RAM, exclusive) and above @kernel_end, and copy it. */
static int place_initrd(const struct vdk_mem *mem,
			const struct vmm_boot_config *cfg, uint64_t limit,
			struct vmm_boot_entry *out, const char **errmsg)
{
	uint64_t gpa;

	if (!cfg->initrd_len)
		return 0;
	if (cfg->initrd_len > limit ||
	    limit - cfg->initrd_len < out->kernel_end) {
		set_err(errmsg, "initrd does not fit in guest RAM below 4 GiB "
				"above the kernel (use more --memory)");
		return -ENOMEM;
	}
	gpa = (limit - cfg->initrd_len) & ~(PAGE_SIZE_4K - 1);
	if (gpa < out->kernel_end) {
		set_err(errmsg, "initrd does not fit in guest RAM below 4 GiB "
				"above the kernel (use more --memory)");
		return -ENOMEM;
	}
	out->initrd_gpa = gpa;
	out->initrd_size = cfg->initrd_len;
	return vdk_mem_write(mem, gpa, cfg->initrd, cfg->initrd_len);
}

static int load_bzimage(const struct vdk_mem *mem,
			const struct vmm_boot_config *cfg,
			struct vmm_boot_entry *out, const char **errmsg)
{
	const uint8_t *img = cfg->kernel;
	struct vmm_e820_entry e820[VMM_BOOT_E820_MAX];
	struct vmm_bzimage_info bz;
	struct boot_params *bp;
	uint64_t need, limit;
	int r, n;

	r = vmm_bzimage_parse(cfg->kernel, cfg->kernel_len, &bz);
	if (r == -EPROTONOSUPPORT) {
		set_err(errmsg,
			"bzImage too old or without a 64-bit entry "
			"(needs boot protocol 2.12+ with XLF_KERNEL_64)");
		return r;
	}
	if (r < 0) {
		set_err(errmsg, "malformed bzImage (setup header or sizes)");
		return r;
	}
	need = bz.init_size > bz.kernel_size ? bz.init_size : bz.kernel_size;
	if (need > cfg->ram_low - VMM_BOOT_KERNEL_GPA) {
		set_err(errmsg, "kernel does not fit in guest RAM "
				"(its init_size is larger; use more --memory)");
		return -ENOMEM;
	}
	out->kernel_end = VMM_BOOT_KERNEL_GPA + need;
	r = vdk_mem_write(mem, VMM_BOOT_KERNEL_GPA, img + bz.setup_size,
			  bz.kernel_size);
	if (r < 0)
		return r;
	r = write_cmdline(mem, cfg->cmdline, bz.cmdline_size, errmsg);
	if (r < 0)
		return r;

	/* initrd_addr_max is the address of the last byte it may use. */
	limit = (uint64_t)bz.initrd_addr_max + 1;
	if (limit > cfg->ram_low)
		limit = cfg->ram_low;
	r = place_initrd(mem, cfg, limit, out, errmsg);
	if (r < 0)
		return r;

	/* The zero page: the image's setup header, then the loader's fields
	 * (boot.rst, "Details of Header Fields"). */
	bp = vdk_mem_translate(mem, VMM_BOOT_ZERO_PAGE_GPA, sizeof(*bp));
	if (!bp)
		return -EFAULT;
	memset(bp, 0, sizeof(*bp));
	memcpy(&bp->hdr, img + BZ_HDR_OFFSET, bz.hdr_len);
	bp->hdr.type_of_loader = BZ_LOADER_UNKNOWN;
	bp->hdr.loadflags |= CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = BZ_HEAP_END;
	bp->hdr.cmd_line_ptr = (uint32_t)VMM_BOOT_CMDLINE_GPA;
	bp->hdr.ramdisk_image = (uint32_t)out->initrd_gpa;
	bp->hdr.ramdisk_size = (uint32_t)out->initrd_size;
	bp->acpi_rsdp_addr = cfg->rsdp_gpa; /* read by protocol 2.14+ */
	n = vmm_boot_e820(cfg->ram_low, cfg->ram_high, e820);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		bp->e820_table[i] = (struct boot_e820_entry){
			e820[i].addr, e820[i].size, e820[i].type};
	bp->e820_entries = (uint8_t)n;

	r = write_page_tables(mem);
	if (r < 0)
		return r;
	out->long_mode = true;
	out->rip = VMM_BOOT_KERNEL_GPA + BZ_64BIT_ENTRY;
	out->rsi = VMM_BOOT_ZERO_PAGE_GPA;
	out->cr3 = VMM_BOOT_PML4_GPA;
	out->cs = VMM_BOOT_SEL_CODE64;
	return 0;
}

static int load_pvh(const struct vdk_mem *mem,
		    const struct vmm_boot_config *cfg,
		    struct vmm_boot_entry *out, const char **errmsg)
{
	struct vmm_pvh_info pvh;
	const uint8_t *img = cfg->kernel;
	struct vmm_e820_entry e820[VMM_BOOT_E820_MAX];
	struct hvm_memmap_table_entry mm[VMM_BOOT_E820_MAX];
	struct hvm_modlist_entry mod;
	struct hvm_start_info si;
	int r, n;

	r = vmm_pvh_parse(cfg->kernel, cfg->kernel_len, &pvh);
	if (r < 0) {
		set_err(errmsg, r == -E2BIG ? "ELF kernel has too many "
					      "loadable segments"
					    : "malformed PVH ELF kernel");
		return r;
	}
	out->kernel_end = VMM_BOOT_PVH_MIN_GPA;
	for (size_t i = 0; i < pvh.num_segments; i++) {
		const struct vmm_pvh_segment *s = &pvh.seg[i];
		uint64_t end = s->paddr + s->memsz; /* checked by the parser */
		uint8_t *dst;

		if (s->paddr < VMM_BOOT_PVH_MIN_GPA || end > cfg->ram_low) {
			set_err(errmsg, "ELF segment outside guest RAM "
					"[1 MiB, end of RAM below 4 GiB)");
			return -ENOMEM;
		}
		dst = vdk_mem_translate(mem, s->paddr, s->memsz);
		if (!dst)
			return -EFAULT;
		memcpy(dst, img + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
		if (end > out->kernel_end)
			out->kernel_end = end;
	}
	r = write_cmdline(mem, cfg->cmdline, VMM_BOOT_CMDLINE_MAX - 1, errmsg);
	if (r < 0)
		return r;
	r = place_initrd(mem, cfg, cfg->ram_low, out, errmsg);
	if (r < 0)
		return r;

	n = vmm_boot_e820(cfg->ram_low, cfg->ram_high, e820);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){
			e820[i].addr, e820[i].size, e820[i].type, 0};
	r = vdk_mem_write(mem, START_INFO_MEMMAP_GPA, mm, n * sizeof(mm[0]));
	if (r < 0)
		return r;
	mod = (struct hvm_modlist_entry){out->initrd_gpa, out->initrd_size, 0,
					 0};
	r = vdk_mem_write(mem, START_INFO_MODLIST_GPA, &mod, sizeof(mod));
	if (r < 0)
		return r;
	si = (struct hvm_start_info){
		.magic = VMM_HVM_START_MAGIC,
		.version = 1,
		.nr_modules = out->initrd_size ? 1 : 0,
		.modlist_paddr = out->initrd_size ? START_INFO_MODLIST_GPA : 0,
		.cmdline_paddr = VMM_BOOT_CMDLINE_GPA,
		.rsdp_paddr = cfg->rsdp_gpa,
		.memmap_paddr = START_INFO_MEMMAP_GPA,
		.memmap_entries = (uint32_t)n,
	};
	r = vdk_mem_write(mem, VMM_BOOT_START_INFO_GPA, &si, sizeof(si));
	if (r < 0)
		return r;
	out->long_mode = false;
	out->rip = pvh.entry;
	out->rbx = VMM_BOOT_START_INFO_GPA;
	out->cs = VMM_BOOT_SEL_CODE32;
	return 0;
}

int vmm_boot_load(const struct vdk_mem *mem, const struct vmm_boot_config *cfg,
		  struct vmm_boot_entry *out, const char **errmsg)
{
	struct vmm_e820_entry e820[VMM_BOOT_E820_MAX];
	struct vmm_boot_config c;
	int r;

	if (!mem || !cfg || !out || !cfg->kernel ||
	    (cfg->initrd_len && !cfg->initrd) ||
	    vmm_boot_e820(cfg->ram_low, cfg->ram_high, e820) < 0) {
		set_err(errmsg, "invalid boot configuration");
		return -EINVAL;
	}
	if (!vdk_mem_translate(mem, 0, cfg->ram_low)) {
		set_err(errmsg, "guest RAM at 0 is not mapped");
		return -EFAULT;
	}
	c = *cfg;
	if (!c.cmdline)
		c.cmdline = "";
	memset(out, 0, sizeof(*out));
	out->kind = vmm_boot_detect(c.kernel, c.kernel_len);
	out->rsp = VMM_BOOT_STACK_GPA;
	out->ds = VMM_BOOT_SEL_DATA;
	out->tr = VMM_BOOT_SEL_TSS;
	r = write_gdt(mem);
	if (r == 0)
		r = write_reset_stub(mem);
	if (r < 0)
		return r;
	switch (out->kind) {
	case VMM_KERNEL_BZIMAGE:
		return load_bzimage(mem, &c, out, errmsg);
	case VMM_KERNEL_PVH:
		return load_pvh(mem, &c, out, errmsg);
	default:
		set_err(errmsg, "kernel is neither a bzImage nor an ELF image "
				"with a PVH entry note "
				"(XEN_ELFNOTE_PHYS32_ENTRY)");
		return -ENOEXEC;
	}
}
