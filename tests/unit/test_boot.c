/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of vmm/boot_x86_64.c: the e820 map, the GDT, bzImage setup header
 * parsing and loading (zero page, command line, initrd, page tables), and
 * PVH ELF note parsing and loading (hvm_start_info, segments), all against
 * synthetic images built here, plus malformed and truncated images.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <asm/bootparam.h>

#include "boot_x86_64.h"

#define MIB	 (1ull << 20)
#define RAM_SIZE (64 * MIB)

/* ---- fixtures ------------------------------------------------------------ */

struct guest {
	uint8_t *ram; /* RAM_SIZE bytes at guest-physical 0 */
	struct vdk_mem *mem;
};

static int guest_setup(void **state)
{
	struct guest *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	g->ram = calloc(1, RAM_SIZE);
	assert_non_null(g->ram);
	memset(g->ram, 0xaa, RAM_SIZE); /* so zeroing is visible */
	g->mem = vdk_mem_new(NULL);
	assert_non_null(g->mem);
	assert_int_equal(vdk_mem_add_host(g->mem, 0, RAM_SIZE, g->ram), 0);
	*state = g;
	return 0;
}

static int guest_teardown(void **state)
{
	struct guest *g = *state;

	vdk_mem_free(g->mem);
	free(g->ram);
	free(g);
	return 0;
}

static struct vmm_boot_config boot_cfg(const void *k, size_t klen)
{
	return (struct vmm_boot_config){.kernel = k,
					.kernel_len = klen,
					.cmdline = "console=ttyS0",
					.ram_low = RAM_SIZE,
					.rsdp_gpa = 0xe0000};
}

/* A bzImage: boot sector + 1 setup sector, then @pm_len bytes of
 * protected-mode kernel filled with a counting pattern. Caller frees. */
static uint8_t *make_bzimage(size_t pm_len, uint16_t version, uint16_t xlf,
			     uint32_t init_size, size_t *len)
{
	uint8_t *img = calloc(1, 1024 + pm_len);
	struct setup_header h;

	assert_non_null(img);
	memset(&h, 0, sizeof(h));
	h.setup_sects = 1;
	h.boot_flag = 0xaa55;
	h.jump = 0x66eb; /* header through 0x268 */
	h.header = 0x53726448;
	h.version = version;
	h.loadflags = LOADED_HIGH;
	h.code32_start = 0x100000;
	h.initrd_addr_max = 0x7fffffff;
	h.xloadflags = xlf;
	h.cmdline_size = 255;
	h.init_size = init_size;
	memcpy(img + 0x1f1, &h, sizeof(h));
	for (size_t i = 0; i < pm_len; i++)
		img[1024 + i] = (uint8_t)(i * 7 + 1);
	*len = 1024 + pm_len;
	return img;
}

/* A PVH ELF image (class ELFCLASS32 or 64) with a note of @desc_len bytes
 * holding @entry, a text segment at 1 MiB (0x40 bytes of 0x90) and a
 * segment at 2 MiB with 16 file bytes and 0x100 bytes in memory.
 * @with_note false leaves the note out. Caller frees. */
static uint8_t *make_elf(bool is64, bool with_note, uint32_t desc_len,
			 uint64_t entry, size_t *len)
{
	size_t ehsz = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phsz = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t note_off = 0x100, text_off = 0x200, data_off = 0x300;
	uint8_t *img = calloc(1, 0x400);
	uint64_t segs[3][5] = {
		/* type, offset, paddr, filesz, memsz */
		{PT_LOAD, text_off, 0x100000, 0x40, 0x40},
		{PT_LOAD, data_off, 0x200000, 0x10, 0x100},
		{PT_NOTE, note_off, 0, 12 + 4 + desc_len, 12 + 4 + desc_len},
	};
	unsigned int phnum = with_note ? 3 : 2;
	uint32_t nh[3] = {4, desc_len, VMM_XEN_ELFNOTE_PHYS32_ENTRY};

	assert_non_null(img);
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	img[EI_DATA] = ELFDATA2LSB;
	img[EI_VERSION] = EV_CURRENT;
	if (is64) {
		Elf64_Ehdr eh = {.e_type = ET_EXEC,
				 .e_machine = EM_X86_64,
				 .e_phoff = ehsz,
				 .e_ehsize = ehsz,
				 .e_phentsize = phsz,
				 .e_phnum = phnum};

		memcpy(eh.e_ident, img, EI_NIDENT);
		memcpy(img, &eh, sizeof(eh));
	} else {
		Elf32_Ehdr eh = {.e_type = ET_EXEC,
				 .e_machine = EM_386,
				 .e_phoff = ehsz,
				 .e_ehsize = ehsz,
				 .e_phentsize = phsz,
				 .e_phnum = phnum};

		memcpy(eh.e_ident, img, EI_NIDENT);
		memcpy(img, &eh, sizeof(eh));
	}
	for (unsigned int i = 0; i < phnum; i++) {
		if (is64) {
			Elf64_Phdr p = {.p_type = segs[i][0],
					.p_offset = segs[i][1],
					.p_paddr = segs[i][2],
					.p_filesz = segs[i][3],
					.p_memsz = segs[i][4]};

			memcpy(img + ehsz + i * phsz, &p, sizeof(p));
		} else {
			Elf32_Phdr p = {.p_type = segs[i][0],
					.p_offset = segs[i][1],
					.p_paddr = segs[i][2],
					.p_filesz = segs[i][3],
					.p_memsz = segs[i][4]};

			memcpy(img + ehsz + i * phsz, &p, sizeof(p));
		}
	}
	memcpy(img + note_off, nh, sizeof(nh));
	memcpy(img + note_off + 12, "Xen", 4);
	memcpy(img + note_off + 16, &entry, desc_len <= 8 ? desc_len : 8);
	memset(img + text_off, 0x90, 0x40);
	memset(img + data_off, 0x5d, 0x10);
	*len = 0x400;
	return img;
}

/* ---- e820 and GDT ------------------------------------------------------- */

static void test_e820_low_only(void **state)
{
	struct vmm_e820_entry e[VMM_BOOT_E820_MAX];

	(void)state;
	assert_int_equal(vmm_boot_e820(RAM_SIZE, 0, e), 4);
	assert_true(e[0].addr == 0 && e[0].size == 0x9fc00 &&
		    e[0].type == VMM_E820_RAM);
	assert_true(e[1].addr == 0x9fc00 && e[1].size == 0x400 &&
		    e[1].type == VMM_E820_RESERVED);
	assert_true(e[2].addr == 0xe0000 && e[2].size == 0x20000 &&
		    e[2].type == VMM_E820_RESERVED);
	assert_true(e[3].addr == 0x100000 && e[3].size == RAM_SIZE - 0x100000 &&
		    e[3].type == VMM_E820_RAM);
}

static void test_e820_high_and_limits(void **state)
{
	struct vmm_e820_entry e[VMM_BOOT_E820_MAX];

	(void)state;
	assert_int_equal(vmm_boot_e820(VMM_BOOT_LOW_RAM_MAX, 1ull << 30, e), 5);
	assert_int_equal(e[3].addr + e[3].size, VMM_BOOT_LOW_RAM_MAX);
	assert_true(e[4].addr == 1ull << 32 && e[4].size == 1ull << 30 &&
		    e[4].type == VMM_E820_RAM);
	assert_int_equal(vmm_boot_e820(MIB, 0, e), -EINVAL);
	assert_int_equal(vmm_boot_e820(VMM_BOOT_LOW_RAM_MAX + 4096, 0, e),
			 -EINVAL);
	assert_int_equal(vmm_boot_e820(RAM_SIZE, UINT64_MAX, e), -EINVAL);
}

static void test_gdt(void **state)
{
	uint64_t code64 = vmm_boot_gdt_entry(VMM_BOOT_SEL_CODE64 / 8);
	uint64_t code32 = vmm_boot_gdt_entry(VMM_BOOT_SEL_CODE32 / 8);
	uint64_t data = vmm_boot_gdt_entry(VMM_BOOT_SEL_DATA / 8);

	(void)state;
	assert_int_equal(vmm_boot_gdt_entry(0), 0);
	assert_true(code64 >> 53 & 1);	/* L */
	assert_false(code64 >> 54 & 1); /* D must be 0 with L */
	assert_true(code32 >> 54 & 1);	/* D: 32-bit */
	assert_false(code32 >> 53 & 1);
	assert_int_equal((code64 >> 40) & 0xff, 0x9b); /* present code */
	assert_int_equal((data >> 40) & 0xff, 0x93);   /* present data */
	assert_int_equal(vmm_boot_gdt_entry(VMM_BOOT_GDT_ENTRIES), 0);
}

/* ---- bzImage ------------------------------------------------------------ */

static void test_bzimage_parse(void **state)
{
	struct vmm_bzimage_info bz;
	size_t len;
	uint8_t *img =
		make_bzimage(0x3000, 0x020f, XLF_KERNEL_64, 0x8000, &len);

	(void)state;
	assert_int_equal(vmm_boot_detect(img, len), VMM_KERNEL_BZIMAGE);
	assert_int_equal(vmm_bzimage_parse(img, len, &bz), 0);
	assert_int_equal(bz.version, 0x020f);
	assert_int_equal(bz.setup_size, 1024);
	assert_int_equal(bz.kernel_size, 0x3000);
	assert_int_equal(bz.init_size, 0x8000);
	assert_int_equal(bz.cmdline_size, 255);
	assert_int_equal(bz.hdr_len, 0x268 - 0x1f1);

	img[0x1f1] = 0; /* setup_sects 0 means 4 */
	assert_int_equal(vmm_bzimage_parse(img, len, &bz), 0);
	assert_int_equal(bz.setup_size, 5 * 512);
	img[0x1f1] = 200; /* setup larger than the file */
	assert_int_equal(vmm_bzimage_parse(img, len, &bz), -ENOEXEC);
	img[0x1f1] = 1;
	img[0x202] = 'X';
	assert_int_equal(vmm_bzimage_parse(img, len, &bz), -ENOEXEC);
	assert_int_equal(vmm_boot_detect(img, len), VMM_KERNEL_UNKNOWN);
	free(img);
}

static void test_bzimage_old_or_32bit(void **state)
{
	struct vmm_bzimage_info bz;
	size_t len;
	uint8_t *old = make_bzimage(0x1000, 0x020b, XLF_KERNEL_64, 0, &len);
	uint8_t *k32 = make_bzimage(0x1000, 0x020f, 0, 0, &len);

	(void)state;
	assert_int_equal(vmm_bzimage_parse(old, len, &bz), -EPROTONOSUPPORT);
	assert_int_equal(vmm_bzimage_parse(k32, len, &bz), -EPROTONOSUPPORT);
	free(old);
	free(k32);
}

static void test_bzimage_load(void **state)
{
	struct guest *g = *state;
	static const char initrd[] = "initrd-bytes";
	struct vmm_boot_entry e;
	const char *msg = NULL;
	struct boot_params bp;
	uint64_t pml4, pdpt, pd3;
	char cmdline[32];
	size_t len;
	uint8_t *img =
		make_bzimage(0x3000, 0x020f, XLF_KERNEL_64, 0x8000, &len);
	struct vmm_boot_config cfg = boot_cfg(img, len);

	cfg.initrd = initrd;
	cfg.initrd_len = sizeof(initrd);
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), 0);
	assert_int_equal(e.kind, VMM_KERNEL_BZIMAGE);
	assert_true(e.long_mode);
	assert_int_equal(e.rip, 0x100200);
	assert_int_equal(e.rsi, VMM_BOOT_ZERO_PAGE_GPA);
	assert_int_equal(e.cr3, VMM_BOOT_PML4_GPA);
	assert_int_equal(e.cs, 0x10);
	assert_int_equal(e.ds, 0x18);
	assert_int_equal(e.kernel_end, 0x100000 + 0x8000);
	/* The protected-mode kernel, byte for byte, at 1 MiB. */
	assert_memory_equal(g->ram + 0x100000, img + 1024, 0x3000);

	memcpy(&bp, g->ram + VMM_BOOT_ZERO_PAGE_GPA, sizeof(bp));
	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_true(bp.hdr.loadflags & CAN_USE_HEAP);
	assert_true(bp.hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp.hdr.cmd_line_ptr, VMM_BOOT_CMDLINE_GPA);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_int_equal(bp.screen_info.orig_x, 0); /* zeroed, not 0xaa */
	memcpy(cmdline, g->ram + VMM_BOOT_CMDLINE_GPA, sizeof(cmdline));
	assert_string_equal(cmdline, "console=ttyS0");

	/* initrd: page-aligned, at the top of RAM, intact. */
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp.hdr.ramdisk_image % 4096, 0);
	assert_true(bp.hdr.ramdisk_image + sizeof(initrd) <= RAM_SIZE);
	assert_true(bp.hdr.ramdisk_image + 4096 > RAM_SIZE - sizeof(initrd));
	assert_memory_equal(g->ram + bp.hdr.ramdisk_image, initrd,
			    sizeof(initrd));
	assert_int_equal(e.initrd_gpa, bp.hdr.ramdisk_image);

	assert_int_equal(bp.e820_entries, 4);
	assert_int_equal(bp.e820_table[3].addr, 0x100000);
	assert_int_equal(bp.e820_table[3].size, RAM_SIZE - 0x100000);
	assert_int_equal(bp.e820_table[3].type, VMM_E820_RAM);

	/* Page tables: PML4[0] -> PDPT, PDPT[3] -> 4th PD, 2 MiB pages. */
	memcpy(&pml4, g->ram + VMM_BOOT_PML4_GPA, 8);
	memcpy(&pdpt, g->ram + VMM_BOOT_PDPT_GPA + 3 * 8, 8);
	memcpy(&pd3, g->ram + VMM_BOOT_PD_GPA + (3 * 512 + 511) * 8, 8);
	assert_int_equal(pml4, VMM_BOOT_PDPT_GPA | 3);
	assert_int_equal(pdpt, (VMM_BOOT_PD_GPA + 3 * 4096) | 3);
	assert_int_equal(pd3, ((4ull << 30) - (2ull << 20)) | 0x83);
	/* The reset stub at f000:fff0, ending below 1 MiB. */
	{
		static const uint8_t stub[] = VMM_BOOT_RESET_STUB;

		assert_true(VMM_BOOT_RESET_VECTOR_GPA + sizeof(stub) <=
			    0x100000);
		assert_memory_equal(g->ram + VMM_BOOT_RESET_VECTOR_GPA, stub,
				    sizeof(stub));
		/* out 0x64 of 0xfe, then a hlt loop. */
		assert_int_equal(stub[1], 0xfe);
		assert_int_equal(stub[3], 0x64);
	}
	/* GDT in memory matches vmm_boot_gdt_entry(). */
	for (unsigned int i = 0; i < VMM_BOOT_GDT_ENTRIES; i++) {
		uint64_t d;

		memcpy(&d, g->ram + VMM_BOOT_GDT_GPA + i * 8, 8);
		assert_int_equal(d, vmm_boot_gdt_entry(i));
	}
	free(img);
}

static void test_bzimage_load_errors(void **state)
{
	struct guest *g = *state;
	char long_cmdline[300];
	struct vmm_boot_entry e;
	const char *msg = NULL;
	size_t len;
	uint8_t *img =
		make_bzimage(0x1000, 0x020f, XLF_KERNEL_64, 0x2000, &len);
	uint8_t *huge =
		make_bzimage(0x1000, 0x020f, XLF_KERNEL_64, RAM_SIZE, &len);
	struct vmm_boot_config cfg = boot_cfg(img, len);

	memset(long_cmdline, 'a', sizeof(long_cmdline) - 1);
	long_cmdline[sizeof(long_cmdline) - 1] = '\0';
	cfg.cmdline = long_cmdline; /* cmdline_size is 255 */
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -ENAMETOOLONG);
	assert_non_null(strstr(msg, "command line"));

	cfg = boot_cfg(huge, len); /* init_size: all of RAM from 1 MiB */
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -ENOMEM);
	assert_non_null(strstr(msg, "--memory"));

	cfg = boot_cfg(img, len); /* an initrd as large as RAM */
	cfg.initrd = g->ram;
	cfg.initrd_len = RAM_SIZE - 0x100000;
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -ENOMEM);
	assert_non_null(strstr(msg, "initrd"));

	cfg = boot_cfg(img, len); /* more RAM than is mapped */
	cfg.ram_low = 2 * RAM_SIZE;
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -EFAULT);
	free(img);
	free(huge);
}

/* ---- PVH -------------------------------------------------------------- */

static void test_pvh_parse(void **state)
{
	struct vmm_pvh_info p;
	size_t len;
	uint8_t *e32 = make_elf(false, true, 4, 0x100010, &len);
	uint8_t *e64 = make_elf(true, true, 8, 0x100020, &len);

	(void)state;
	assert_int_equal(vmm_pvh_parse(e32, len, &p), 0);
	assert_int_equal(p.entry, 0x100010);
	assert_int_equal(p.num_segments, 2);
	assert_int_equal(p.seg[1].paddr, 0x200000);
	assert_int_equal(p.seg[1].filesz, 0x10);
	assert_int_equal(p.seg[1].memsz, 0x100);
	assert_int_equal(vmm_boot_detect(e32, len), VMM_KERNEL_PVH);
	assert_int_equal(vmm_pvh_parse(e64, len, &p), 0);
	assert_int_equal(p.entry, 0x100020);
	assert_int_equal(vmm_boot_detect(e64, len), VMM_KERNEL_PVH);
	free(e32);
	free(e64);
}

static void test_pvh_parse_errors(void **state)
{
	struct vmm_pvh_info p;
	size_t len;
	uint8_t *img;

	(void)state;
	img = make_elf(false, false, 4, 0x100000, &len);
	assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOENT);
	assert_int_equal(vmm_boot_detect(img, len), VMM_KERNEL_UNKNOWN);
	free(img);

	img = make_elf(true, true, 8, 0x100000000ull, &len); /* > 4 GiB */
	assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
	free(img);

	img = make_elf(false, true, 2, 0x100000, &len); /* desc not 4 or 8 */
	assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
	free(img);

	img = make_elf(false, true, 4, 0x100000, &len);
	memset(img + 0x100, 0xff, 4); /* namesz runs off the note segment */
	assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
	free(img);

	img = make_elf(false, true, 4, 0x100000, &len);
	{
		Elf32_Phdr ph;

		memcpy(&ph, img + sizeof(Elf32_Ehdr), sizeof(ph));
		ph.p_filesz = 0x1000; /* past the end of the file */
		ph.p_memsz = 0x1000;
		memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
		assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
		ph.p_filesz = 0x40;
		ph.p_memsz = 0x20; /* memsz < filesz */
		memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
		assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
	}
	free(img);

	img = make_elf(false, true, 4, 0x100000, &len);
	img[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
	img[EI_DATA] = ELFDATA2LSB;
	img[18] = EM_ARM; /* e_machine */
	assert_int_equal(vmm_pvh_parse(img, len, &p), -ENOEXEC);
	free(img);
}

static void test_pvh_load(void **state)
{
	struct guest *g = *state;
	static const char initrd[] = "pvh-initrd";
	struct vmm_boot_entry e;
	const char *msg = NULL;
	uint32_t si[14];
	uint64_t mm[3], mod[4], cmd_gpa, memmap_gpa, modlist_gpa;
	size_t len;
	uint8_t *img = make_elf(false, true, 4, 0x100010, &len);
	struct vmm_boot_config cfg = boot_cfg(img, len);

	cfg.initrd = initrd;
	cfg.initrd_len = sizeof(initrd);
	cfg.cmdline = NULL; /* means "" */
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), 0);
	assert_int_equal(e.kind, VMM_KERNEL_PVH);
	assert_false(e.long_mode);
	assert_int_equal(e.rip, 0x100010);
	assert_int_equal(e.rbx, VMM_BOOT_START_INFO_GPA);
	assert_int_equal(e.cs, VMM_BOOT_SEL_CODE32);
	assert_int_equal(e.kernel_end, 0x200100);

	/* Segments: file bytes copied, the rest of memsz zeroed, the byte
	 * after untouched. */
	assert_int_equal(g->ram[0x100000], 0x90);
	assert_int_equal(g->ram[0x10003f], 0x90);
	assert_int_equal(g->ram[0x20000f], 0x5d);
	assert_int_equal(g->ram[0x200010], 0);
	assert_int_equal(g->ram[0x2000ff], 0);
	assert_int_equal(g->ram[0x200100], 0xaa);

	memcpy(si, g->ram + VMM_BOOT_START_INFO_GPA, sizeof(si));
	assert_int_equal(si[0], VMM_HVM_START_MAGIC);
	assert_int_equal(si[1], 1);  /* version */
	assert_int_equal(si[3], 1);  /* nr_modules */
	assert_int_equal(si[12], 4); /* memmap_entries: no RAM above 4 GiB */
	assert_int_equal(si[13], 0); /* reserved */
	memcpy(&modlist_gpa, &si[4], 8);
	memcpy(&cmd_gpa, &si[6], 8);
	memcpy(&memmap_gpa, &si[10], 8);
	assert_int_equal(cmd_gpa, VMM_BOOT_CMDLINE_GPA);
	assert_int_equal(g->ram[cmd_gpa], 0);
	memcpy(mod, g->ram + modlist_gpa, sizeof(mod));
	assert_int_equal(mod[1], sizeof(initrd));
	assert_true(mod[0] >= e.kernel_end && mod[0] % 4096 == 0);
	assert_memory_equal(g->ram + mod[0], initrd, sizeof(initrd));
	memcpy(mm, g->ram + memmap_gpa + 3 * 24, sizeof(mm));
	assert_int_equal(mm[0], 0x100000);
	assert_int_equal(mm[1], RAM_SIZE - 0x100000);
	assert_int_equal(mm[2], VMM_E820_RAM); /* type, reserved = 0 */
	free(img);
}

static void test_pvh_load_errors(void **state)
{
	struct guest *g = *state;
	struct vmm_boot_entry e;
	const char *msg = NULL;
	Elf32_Phdr ph;
	size_t len;
	uint8_t *img = make_elf(false, true, 4, 0x100000, &len);
	struct vmm_boot_config cfg = boot_cfg(img, len);

	memcpy(&ph, img + sizeof(Elf32_Ehdr), sizeof(ph));
	ph.p_paddr = 0x8000; /* over the VMM's boot data */
	memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -ENOMEM);
	assert_non_null(strstr(msg, "segment"));
	ph.p_paddr = RAM_SIZE - 0x20; /* runs past the end of RAM */
	memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -ENOMEM);
	free(img);
}

static void test_unknown_kernel(void **state)
{
	struct guest *g = *state;
	uint8_t junk[4096];
	struct vmm_boot_entry e;
	const char *msg = NULL;
	struct vmm_boot_config cfg = boot_cfg(junk, sizeof(junk));

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 31 + 7);
	assert_int_equal(vmm_boot_detect(junk, sizeof(junk)),
			 VMM_KERNEL_UNKNOWN);
	assert_int_equal(vmm_boot_load(g->mem, &cfg, &e, &msg), -ENOEXEC);
	assert_non_null(strstr(msg, "neither a bzImage nor"));
	assert_int_equal(vmm_boot_detect(NULL, 0), VMM_KERNEL_UNKNOWN);
}

/* Every prefix of a valid image parses or fails cleanly (ASan watches the
 * reads); only the whole image (and, for ELF, prefixes that keep every
 * segment) succeeds. */
static void test_truncated_images(void **state)
{
	struct vmm_bzimage_info bz;
	struct vmm_pvh_info p;
	size_t blen, elen;
	uint8_t *bzi = make_bzimage(0x200, 0x020f, XLF_KERNEL_64, 0, &blen);
	uint8_t *elf = make_elf(true, true, 8, 0x100000, &elen);

	(void)state;
	for (size_t n = 0; n < blen; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		int r;

		memcpy(copy, bzi, n);
		r = vmm_bzimage_parse(copy, n, &bz);
		/* The setup part is 1024 bytes: the kernel must follow it. */
		if (n <= 1024) {
			assert_int_equal(r, -ENOEXEC);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(bz.kernel_size, n - 1024);
		}
		free(copy);
	}
	for (size_t n = 0; n <= elen; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		int r;

		memcpy(copy, elf, n);
		r = vmm_pvh_parse(copy, n, &p);
		/* The data segment ends at 0x310: shorter images fail. */
		if (n < 0x310)
			assert_true(r < 0);
		else
			assert_int_equal(r, 0);
		free(copy);
	}
	free(bzi);
	free(elf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820_low_only),
		cmocka_unit_test(test_e820_high_and_limits),
		cmocka_unit_test(test_gdt),
		cmocka_unit_test(test_bzimage_parse),
		cmocka_unit_test(test_bzimage_old_or_32bit),
		cmocka_unit_test_setup_teardown(test_bzimage_load, guest_setup,
						guest_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_load_errors,
						guest_setup, guest_teardown),
		cmocka_unit_test(test_pvh_parse),
		cmocka_unit_test(test_pvh_parse_errors),
		cmocka_unit_test_setup_teardown(test_pvh_load, guest_setup,
						guest_teardown),
		cmocka_unit_test_setup_teardown(test_pvh_load_errors,
						guest_setup, guest_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kernel,
						guest_setup, guest_teardown),
		cmocka_unit_test(test_truncated_images),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
