/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/pci.c: the type 0 header and its read-only fields,
 * BAR sizing and decoding, a BAR moved onto another, the capability list,
 * capability hooks, MSI-X (table, PBA, per-vector and function masks,
 * pending bits, bad widths, vectors beyond the table) and INTx; every case
 * written as a hostile driver would try it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include <vdk/pci.h>

struct fix {
	struct vdk_pci_dev *d;
	/* bar_map calls */
	int maps, unmaps;
	unsigned int last_bar;
	uint64_t last_addr;
	bool bar_mapped[VDK_PCI_NUM_BARS];
	/* MSI messages */
	int msis;
	uint64_t msi_addr;
	uint32_t msi_data;
	int changed;
	uint16_t changed_vec;
	/* INTx */
	int intx_calls;
	bool intx;
	/* BAR contents */
	int bar_reads, bar_writes;
	uint64_t bar_off;
	size_t bar_len;
};

static void on_bar_map(void *opaque, unsigned int bar, uint64_t addr,
		       uint64_t size, bool mapped)
{
	struct fix *f = opaque;

	(void)size;
	if (mapped) {
		assert_false(f->bar_mapped[bar]);
		f->maps++;
	} else {
		assert_true(f->bar_mapped[bar]);
		f->unmaps++;
	}
	f->bar_mapped[bar] = mapped;
	f->last_bar = bar;
	f->last_addr = addr;
}

static void on_intx(void *opaque, bool level)
{
	struct fix *f = opaque;

	f->intx_calls++;
	f->intx = level;
}

static void on_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct fix *f = opaque;

	f->msis++;
	f->msi_addr = addr;
	f->msi_data = data;
}

static void on_changed(void *opaque, uint16_t vec)
{
	struct fix *f = opaque;

	f->changed++;
	f->changed_vec = vec;
}

static void bar_rd(void *opaque, unsigned int bar, uint64_t off, void *data,
		   size_t len)
{
	struct fix *f = opaque;

	(void)bar;
	f->bar_reads++;
	f->bar_off = off;
	f->bar_len = len;
	memset(data, 0xab, len);
}

static void bar_wr(void *opaque, unsigned int bar, uint64_t off,
		   const void *data, size_t len)
{
	struct fix *f = opaque;

	(void)bar;
	(void)data;
	f->bar_writes++;
	f->bar_off = off;
	f->bar_len = len;
}

static const struct vdk_pci_bar_ops bar_ops = {.read = bar_rd, .write = bar_wr};

#define NVEC 5

static int setup(void **state)
{
	static struct fix f;
	struct vdk_pci_config cfg = {
		.id = {.vendor_id = 0x1af4,
		       .device_id = 0x1042,
		       .subsystem_vendor_id = 0x1af4,
		       .subsystem_id = 0x1100,
		       .revision_id = 1,
		       .class_code = 0x018000,
		       .interrupt_pin = 1},
		.bar_map = on_bar_map,
		.intx = on_intx,
		.opaque = &f,
	};
	int err = -1;

	memset(&f, 0, sizeof(f));
	f.d = vdk_pci_dev_new(&cfg, &err);
	assert_non_null(f.d);
	assert_int_equal(err, 0);
	/* BAR 0: 64-bit 16 KiB with MSI-X table at 0x2000, PBA at 0x3000;
	 * BAR 2: 32-bit 4 KiB; BAR 4: 64-bit prefetchable 8 GiB. */
	assert_int_equal(vdk_pci_add_bar(f.d, 0, 0x4000, VDK_PCI_BAR_MEM64,
					 &bar_ops, &f),
			 0);
	assert_int_equal(vdk_pci_add_bar(f.d, 2, 0x1000, 0, &bar_ops, &f), 0);
	assert_int_equal(
		vdk_pci_add_bar(f.d, 4, 1ull << 33,
				VDK_PCI_BAR_MEM64 | VDK_PCI_BAR_PREFETCH,
				&bar_ops, &f),
		0);
	assert_int_equal(vdk_pci_add_msix(f.d, NVEC, 0, 0x2000, 0x3000, on_msi,
					  on_changed, &f),
			 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	vdk_pci_dev_free(f->d);
	return 0;
}

static uint32_t rd(struct fix *f, uint32_t off, size_t len)
{
	uint32_t v = 0;

	vdk_pci_config_read(f->d, off, &v, len);
	return v;
}

static void wr(struct fix *f, uint32_t off, uint32_t v, size_t len)
{
	vdk_pci_config_write(f->d, off, &v, len);
}

static uint32_t bar_rd32(struct fix *f, unsigned int bar, uint64_t off)
{
	uint32_t v = 0;

	vdk_pci_bar_read(f->d, bar, off, &v, 4);
	return v;
}

static void bar_wr32(struct fix *f, unsigned int bar, uint64_t off, uint32_t v)
{
	vdk_pci_bar_write(f->d, bar, off, &v, 4);
}

/* ---- header --------------------------------------------------------------- */

static void test_header_fields(void **state)
{
	struct fix *f = *state;

	assert_int_equal(rd(f, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(rd(f, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(rd(f, 0, 4), 0x10421af4);
	assert_int_equal(rd(f, PCI_REVISION_ID, 1), 1);
	assert_int_equal(rd(f, PCI_CLASS_DEVICE, 2), 0x0180);
	assert_int_equal(rd(f, PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(rd(f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(rd(f, PCI_SUBSYSTEM_ID, 2), 0x1100);
	assert_int_equal(rd(f, PCI_INTERRUPT_PIN, 1), 1);
	assert_true(rd(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* Extended space is empty. */
	assert_int_equal(rd(f, 0x100, 4), 0);
	assert_int_equal(rd(f, 0xffc, 4), 0);
}

static void test_read_only_fields(void **state)
{
	struct fix *f = *state;
	uint8_t before[256], after[256];

	for (uint32_t o = 0; o < 256; o += 4)
		vdk_pci_config_read(f->d, o, before + o, 4);
	/* All-ones everywhere except BARs and command (tested apart). */
	for (uint32_t o = 0; o < 256; o += 4)
		if (o != PCI_COMMAND && (o < 0x10 || o > 0x24))
			wr(f, o, 0xffffffff, 4);
	for (uint32_t o = 0; o < 256; o += 4)
		vdk_pci_config_read(f->d, o, after + o, 4);
	for (uint32_t o = 0; o < 256; o++) {
		if (o >= 0x10 && o < 0x28)
			continue;
		if (o == PCI_CACHE_LINE_SIZE || o == PCI_LATENCY_TIMER ||
		    o == PCI_INTERRUPT_LINE)
			assert_int_equal(after[o], 0xff);
		else if (o == PCI_COMMAND || o == PCI_COMMAND + 1)
			continue;
		else if (o == 0x42 || o == 0x43) /* the MSI-X control word */
			continue;
		else
			assert_int_equal(after[o], before[o]);
	}
	/* Command: I/O space cannot be turned on (no I/O BARs). */
	wr(f, PCI_COMMAND, 0xffff, 2);
	assert_int_equal(rd(f, PCI_COMMAND, 2),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
				 PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
				 PCI_COMMAND_INTX_DISABLE);
	/* The status register is not writable (no RW1C bit ever set). */
	wr(f, PCI_STATUS, 0xffff, 2);
	assert_int_equal(rd(f, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	/* The expansion ROM BAR is not implemented. */
	wr(f, PCI_ROM_ADDRESS, 0xffffffff, 4);
	assert_int_equal(rd(f, PCI_ROM_ADDRESS, 4), 0);
}

static void test_bad_access_width(void **state)
{
	struct fix *f = *state;
	uint32_t v = 0;
	uint8_t b[8];

	/* Misaligned and odd widths read all-ones, writes are dropped. */
	vdk_pci_config_read(f->d, 1, &v, 2);
	assert_int_equal(v, 0xffff);
	vdk_pci_config_read(f->d, 2, &v, 4);
	assert_int_equal(v, 0xffffffff);
	vdk_pci_config_read(f->d, 0, b, 8);
	assert_int_equal(b[7], 0xff);
	vdk_pci_config_read(f->d, 0, b, 3);
	assert_int_equal(b[0], 0xff);
	vdk_pci_config_read(f->d, 0x1000, &v, 4);
	assert_int_equal(v, 0xffffffff);
	wr(f, PCI_COMMAND + 1, 0xffff, 2); /* misaligned */
	wr(f, PCI_CACHE_LINE_SIZE, 0xff, 3);
	assert_int_equal(rd(f, PCI_COMMAND, 2), 0);
	assert_int_equal(rd(f, PCI_CACHE_LINE_SIZE, 1), 0);
	/* Byte writes do work where the field is writable. */
	wr(f, PCI_INTERRUPT_LINE, 11, 1);
	assert_int_equal(rd(f, PCI_INTERRUPT_LINE, 1), 11);
}

/* ---- BARs ------------------------------------------------------------------ */

static void test_bar_sizing(void **state)
{
	struct fix *f = *state;

	assert_int_equal(rd(f, PCI_BASE_ADDRESS_0, 4),
			 PCI_BASE_ADDRESS_MEM_TYPE_64);
	wr(f, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	wr(f, PCI_BASE_ADDRESS_1, 0xffffffff, 4);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_0, 4),
			 0xffffc000u | PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_1, 4), 0xffffffff);
	/* 32-bit BAR 2, 4 KiB. */
	wr(f, PCI_BASE_ADDRESS_2, 0xffffffff, 4);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_2, 4), 0xfffff000u);
	/* BAR 3 is empty (the 32-bit BAR 2 takes one slot). */
	wr(f, PCI_BASE_ADDRESS_3, 0xffffffff, 4);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_3, 4), 0);
	/* 8 GiB BAR 4: no low address bit is writable. */
	wr(f, PCI_BASE_ADDRESS_4, 0xffffffff, 4);
	wr(f, PCI_BASE_ADDRESS_5, 0xffffffff, 4);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_4, 4),
			 PCI_BASE_ADDRESS_MEM_TYPE_64 |
				 PCI_BASE_ADDRESS_MEM_PREFETCH);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_5, 4), 0xfffffffe);
	/* Program real addresses; byte writes too. */
	wr(f, PCI_BASE_ADDRESS_0, 0xfebf4000, 4);
	wr(f, PCI_BASE_ADDRESS_1, 0x1, 4);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_0, 4),
			 0xfebf4000u | PCI_BASE_ADDRESS_MEM_TYPE_64);
	wr(f, PCI_BASE_ADDRESS_1 + 1, 0x00, 1);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_1, 4), 1);
	uint64_t a, s;
	assert_int_equal(vdk_pci_bar_region(f->d, 0, &a, &s), -ENODEV);
	assert_int_equal(a, 0x1febf4000ull);
	assert_int_equal(s, 0x4000);
	assert_int_equal(vdk_pci_bar_region(f->d, 1, &a, &s), -ENOENT);
	assert_int_equal(vdk_pci_bar_region(f->d, 6, &a, &s), -ENOENT);
}

static void test_bar_decode_and_move(void **state)
{
	struct fix *f = *state;
	uint64_t off;

	assert_int_equal(vdk_pci_bar_set_addr(f->d, 0, 0x100000000ull), 0);
	assert_int_equal(vdk_pci_bar_set_addr(f->d, 2, 0xc0000000ull), 0);
	assert_int_equal(vdk_pci_bar_set_addr(f->d, 2, 0x1c0000000ull),
			 -EINVAL); /* 32-bit BAR above 4 GiB */
	assert_int_equal(vdk_pci_bar_set_addr(f->d, 0, 0x100001000ull),
			 -EINVAL); /* misaligned */
	assert_int_equal(f->maps, 0);
	/* Memory decoding on: BARs 0 and 2 map (BAR 4 is unassigned). */
	wr(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(f->maps, 2);
	assert_true(f->bar_mapped[0] && f->bar_mapped[2]);
	assert_int_equal(vdk_pci_bar_find(f->d, 0x100000010ull, &off), 0);
	assert_int_equal(off, 0x10);
	assert_int_equal(vdk_pci_bar_find(f->d, 0x100004000ull, &off), -ENOENT);
	/* Driver moves BAR 2 onto BAR 0: both stop decoding. */
	wr(f, PCI_BASE_ADDRESS_2, 0x00000000, 4);
	assert_false(f->bar_mapped[2]);
	vdk_pci_bar_set_addr(f->d, 2, 0xc0000000ull);
	assert_true(f->bar_mapped[2]);
	wr(f, PCI_BASE_ADDRESS_0, 0xc0000000, 4);
	wr(f, PCI_BASE_ADDRESS_1, 0, 4);
	assert_false(f->bar_mapped[0]);
	assert_false(f->bar_mapped[2]);
	assert_int_equal(vdk_pci_bar_region(f->d, 0, NULL, NULL), -EADDRINUSE);
	assert_int_equal(vdk_pci_bar_region(f->d, 2, NULL, NULL), -EADDRINUSE);
	assert_int_equal(vdk_pci_bar_find(f->d, 0xc0000000ull, &off), -ENOENT);
	/* Moved apart: both decode again, at their new places. */
	wr(f, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
	assert_true(f->bar_mapped[0] && f->bar_mapped[2]);
	assert_int_equal(vdk_pci_bar_find(f->d, 0xd0000004ull, &off), 0);
	/* Sizing while decoding: the all-ones address wraps, no decode. */
	wr(f, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	wr(f, PCI_BASE_ADDRESS_1, 0xffffffff, 4);
	assert_false(f->bar_mapped[0]);
	assert_int_equal(vdk_pci_bar_region(f->d, 0, NULL, NULL), -EADDRINUSE);
	/* Decoding off: everything unmaps. */
	wr(f, PCI_COMMAND, 0, 2);
	assert_false(f->bar_mapped[2]);
	assert_int_equal(f->maps, f->unmaps);
}

static void test_bar_access(void **state)
{
	struct fix *f = *state;
	uint8_t b[8];

	/* Inside: reaches the owner with the offset. */
	vdk_pci_bar_read(f->d, 0, 0x10, b, 2);
	assert_int_equal(f->bar_reads, 1);
	assert_int_equal(f->bar_off, 0x10);
	assert_int_equal(b[0], 0xab);
	vdk_pci_bar_write(f->d, 2, 0xffc, b, 4);
	assert_int_equal(f->bar_writes, 1);
	/* Outside the BAR, straddling its end, no such BAR, bad length. */
	vdk_pci_bar_write(f->d, 2, 0xffe, b, 4);
	vdk_pci_bar_write(f->d, 2, 0x1000, b, 1);
	vdk_pci_bar_write(f->d, 2, UINT64_MAX, b, 1);
	vdk_pci_bar_write(f->d, 3, 0, b, 1);
	vdk_pci_bar_write(f->d, 1, 0, b, 1);
	vdk_pci_bar_write(f->d, 9, 0, b, 1);
	vdk_pci_bar_write(f->d, 0, 0, b, 0);
	assert_int_equal(f->bar_writes, 1);
	memset(b, 0x55, sizeof(b));
	vdk_pci_bar_read(f->d, 0, 0x4000, b, 4);
	assert_int_equal(b[0], 0);
	assert_int_equal(f->bar_reads, 1);
}

static void test_bar_add_errors(void **state)
{
	struct fix *f = *state;

	assert_int_equal(vdk_pci_add_bar(f->d, 0, 0x1000, 0, NULL, NULL),
			 -EBUSY);
	assert_int_equal(vdk_pci_add_bar(f->d, 1, 0x1000, 0, NULL, NULL),
			 -EBUSY);
	assert_int_equal(vdk_pci_add_bar(f->d, 3, 0x1000, 0, NULL, NULL), 0);
	assert_int_equal(
		vdk_pci_add_bar(f->d, 5, 0x1000, VDK_PCI_BAR_MEM64, NULL, NULL),
		-ERANGE);
	assert_int_equal(vdk_pci_add_bar(f->d, 6, 0x1000, 0, NULL, NULL),
			 -ERANGE);
	assert_int_equal(vdk_pci_add_bar(f->d, 5, 0x1800, 0, NULL, NULL),
			 -EINVAL);
	assert_int_equal(vdk_pci_add_bar(f->d, 5, 8, 0, NULL, NULL), -EINVAL);
	assert_int_equal(vdk_pci_add_bar(f->d, 5, 1ull << 32, 0, NULL, NULL),
			 -EINVAL);
	assert_int_equal(vdk_pci_add_bar(f->d, 5, 0x1000, 0x80, NULL, NULL),
			 -EINVAL);
}

/* ---- capabilities ---------------------------------------------------------- */

struct hook_rec {
	int reads, writes;
	uint8_t off;
	size_t len;
};

static void cap_fn(void *opaque, uint8_t *cap, uint8_t cap_len, uint8_t off,
		   size_t len, bool write)
{
	struct hook_rec *h = opaque;

	assert_int_equal(cap_len, 8);
	if (write) {
		h->writes++;
	} else {
		h->reads++;
		cap[7] = (uint8_t)h->reads; /* a live field */
	}
	h->off = off;
	h->len = len;
}

static void test_cap_list(void **state)
{
	struct fix *f = *state;
	uint8_t body[6] = {1, 2, 3, 4, 5, 6};
	uint8_t wm[6] = {0, 0, 0xff, 0x0f, 0, 0};
	struct hook_rec h = {0};
	uint8_t off = 0, seen = 0;
	unsigned int hops = 0;

	assert_int_equal(vdk_pci_add_cap(f->d, PCI_CAP_ID_VNDR, body,
					 sizeof(body), wm, cap_fn, &h, &off),
			 0);
	assert_int_equal(off, 0x4c); /* after the 12-byte MSI-X capability */
	/* Walk the list: MSI-X then ours, ending in 0. */
	for (uint8_t p = (uint8_t)rd(f, PCI_CAPABILITY_LIST, 1); p;
	     p = (uint8_t)rd(f, p + 1, 1)) {
		assert_true(p >= 0x40 && (p & 3) == 0);
		assert_true(++hops <= 2);
		seen = p;
	}
	assert_int_equal(seen, 0x4c);
	assert_int_equal(rd(f, 0x40, 1), PCI_CAP_ID_MSIX);
	/* A loop cannot be built: the next pointers are read-only. */
	wr(f, 0x41, 0x40, 1);
	wr(f, off + 1, off, 1);
	wr(f, PCI_CAPABILITY_LIST, 0x4c, 1);
	assert_int_equal(rd(f, 0x41, 1), 0x4c);
	assert_int_equal(rd(f, off + 1, 1), 0);
	assert_int_equal(rd(f, PCI_CAPABILITY_LIST, 1), 0x40);
	/* Write mask: bytes 4 and 5 of the capability (body 2, 3). */
	assert_int_equal(h.writes, 1); /* the next-pointer write above */
	wr(f, off + 4, 0xffffffff, 4);
	assert_int_equal(h.writes, 2);
	assert_int_equal(h.off, 4);
	assert_int_equal(h.len, 4);
	assert_int_equal(rd(f, off + 4, 1), 0xff);
	assert_int_equal(rd(f, off + 5, 1), 0x0f);
	assert_int_equal(rd(f, off + 6, 1), 5);
	/* The read hook may update the bytes before they are returned. */
	uint32_t live = rd(f, off + 4, 4) >> 24;
	assert_int_equal(live, (uint32_t)h.reads);
	/* A capability that does not fit. */
	uint8_t big[180] = {0};
	assert_int_equal(vdk_pci_add_cap(f->d, PCI_CAP_ID_VNDR, big,
					 sizeof(big), NULL, NULL, NULL, NULL),
			 -ENOSPC);
	assert_int_equal(vdk_pci_add_cap(f->d, PCI_CAP_ID_VNDR, NULL, 4, NULL,
					 NULL, NULL, NULL),
			 -EINVAL);
}

/* ---- MSI-X ------------------------------------------------------------------- */

static void program_vector(struct fix *f, uint16_t v, uint32_t data)
{
	bar_wr32(f, 0, 0x2000 + v * 16 + 0, 0xfee00000);
	bar_wr32(f, 0, 0x2000 + v * 16 + 4, 0);
	bar_wr32(f, 0, 0x2000 + v * 16 + 8, data);
}

static void test_msix_cap_layout(void **state)
{
	struct fix *f = *state;

	assert_int_equal(rd(f, 0x40, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(rd(f, 0x42, 2), NVEC - 1);
	assert_int_equal(rd(f, 0x44, 4), 0x2000 | 0);
	assert_int_equal(rd(f, 0x48, 4), 0x3000 | 0);
	/* Table size and locations are read-only. */
	wr(f, 0x40, 0xffffffff, 4);
	wr(f, 0x44, 0x12345677, 4);
	wr(f, 0x48, 0, 4);
	assert_int_equal(rd(f, 0x42, 2) & PCI_MSIX_FLAGS_QSIZE, NVEC - 1);
	assert_int_equal(rd(f, 0x44, 4), 0x2000);
	assert_int_equal(rd(f, 0x48, 4), 0x3000);
	/* ... but enable and function mask were set by that write. */
	assert_true(vdk_pci_msix_enabled(f->d));
	assert_int_equal(rd(f, 0x42, 2), PCI_MSIX_FLAGS_ENABLE |
						 PCI_MSIX_FLAGS_MASKALL |
						 (NVEC - 1));
	assert_int_equal(f->changed_vec, UINT16_MAX);
}

static void test_msix_delivery_and_masks(void **state)
{
	struct fix *f = *state;
	bool masked = false;

	/* Disabled: nothing recorded, the caller falls back to INTx. */
	assert_int_equal(vdk_pci_msix_notify(f->d, 0), -ENODEV);
	assert_false(vdk_pci_msix_pending(f->d, 0));
	program_vector(f, 1, 0x41);
	assert_int_equal(f->changed_vec, 1);
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE, 2);
	/* Vectors start masked: pending. */
	assert_int_equal(vdk_pci_msix_notify(f->d, 1), 1);
	assert_int_equal(f->msis, 0);
	assert_true(vdk_pci_msix_pending(f->d, 1));
	assert_int_equal(bar_rd32(f, 0, 0x3000), 1u << 1);
	/* Unmask the vector: the pending message goes out, bit clears. */
	bar_wr32(f, 0, 0x2000 + 16 + 12, 0);
	assert_int_equal(f->msis, 1);
	assert_int_equal(f->msi_addr, 0xfee00000ull);
	assert_int_equal(f->msi_data, 0x41);
	assert_false(vdk_pci_msix_pending(f->d, 1));
	/* Unmasked: direct delivery. */
	assert_int_equal(vdk_pci_msix_notify(f->d, 1), 0);
	assert_int_equal(f->msis, 2);
	/* Function mask: pending, then delivered on unmask. */
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	assert_int_equal(vdk_pci_msix_entry(f->d, 1, NULL, NULL, &masked), 0);
	assert_true(masked);
	assert_int_equal(vdk_pci_msix_notify(f->d, 1), 1);
	assert_int_equal(f->msis, 2);
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(f->msis, 3);
	/* Vectors beyond the table. */
	assert_int_equal(vdk_pci_msix_notify(f->d, NVEC), -ERANGE);
	assert_int_equal(vdk_pci_msix_notify(f->d, UINT16_MAX), -ERANGE);
	assert_int_equal(vdk_pci_msix_entry(f->d, NVEC, NULL, NULL, NULL),
			 -ERANGE);
	/* Reserved Vector Control bits do not stick. */
	bar_wr32(f, 0, 0x2000 + 16 + 12, 0xfffffffe);
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 16 + 12), 0);
	/* Readback of the entry. */
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 16 + 8), 0x41);
	uint64_t q = 0;
	vdk_pci_bar_read(f->d, 0, 0x2000 + 16, &q, 8);
	assert_int_equal(q, 0xfee00000ull);
}

static void test_msix_hostile_table_access(void **state)
{
	struct fix *f = *state;
	uint64_t q = UINT64_MAX;
	uint16_t h = 0x1234;
	int changed = f->changed;

	/* Sub-dword, misaligned, straddling the table end, beyond the
	 * table and PBA writes: ignored, never reach the BAR owner. */
	vdk_pci_bar_write(f->d, 0, 0x2000, &h, 2);
	vdk_pci_bar_write(f->d, 0, 0x2002, &q, 4);
	vdk_pci_bar_write(f->d, 0, 0x2004, &q, 8);
	vdk_pci_bar_write(f->d, 0, 0x2000 + NVEC * 16 - 4, &q, 8);
	vdk_pci_bar_write(f->d, 0, 0x3000, &q, 8);
	assert_int_equal(f->changed, changed);
	assert_int_equal(f->bar_writes, 0);
	assert_int_equal(bar_rd32(f, 0, 0x2000), 0);
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 12), 1); /* still masked */
	assert_int_equal(bar_rd32(f, 0, 0x3000), 0);
	/* Just after the table: the BAR owner's space again. */
	bar_wr32(f, 0, 0x2000 + NVEC * 16, 7);
	assert_int_equal(f->bar_writes, 1);
	/* An 8-byte write to mask+data touches two dwords of one entry. */
	q = 0x0000000100000055ull; /* data 0x55, control 1 */
	vdk_pci_bar_write(f->d, 0, 0x2000 + 8, &q, 8);
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 8), 0x55);
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 12), 1);
}

static void test_msix_add_errors(void **state)
{
	struct fix *f = *state;

	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 2, 0, 0x800, on_msi, NULL, f),
		-EEXIST);
	vdk_pci_dev_free(f->d);
	struct vdk_pci_config cfg = {.id = {.vendor_id = 1}};
	f->d = vdk_pci_dev_new(&cfg, NULL);
	assert_non_null(f->d);
	assert_int_equal(vdk_pci_add_bar(f->d, 0, 0x1000, 0, NULL, NULL), 0);
	assert_int_equal(
		vdk_pci_add_msix(f->d, 0, 0, 0, 0x800, on_msi, NULL, f),
		-EINVAL);
	assert_int_equal(
		vdk_pci_add_msix(f->d, 2049, 0, 0, 0x800, on_msi, NULL, f),
		-EINVAL);
	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 1, 0, 0x800, on_msi, NULL, f),
		-EINVAL); /* no BAR 1 */
	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 0, 0x4, 0x800, on_msi, NULL, f),
		-EINVAL); /* misaligned */
	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 0, 0xff8, 0x800, on_msi, NULL, f),
		-EINVAL); /* table outside */
	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 0, 0x800, 0x810, on_msi, NULL, f),
		-EINVAL); /* overlap */
	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 0, 0x800, 0x810, NULL, NULL, f),
		-EINVAL);
	assert_int_equal(
		vdk_pci_add_msix(f->d, 256, 0, 0, 0x1000 - 32, on_msi, NULL, f),
		-EINVAL); /* 256 * 16 bytes is the whole BAR */
	assert_int_equal(
		vdk_pci_add_msix(f->d, 4, 0, 0x800, 0x840, on_msi, NULL, f), 0);
	struct vdk_pci_config bad = {.id = {.vendor_id = 0xffff}};
	int err = 0;
	assert_null(vdk_pci_dev_new(&bad, &err));
	assert_int_equal(err, -EINVAL);
	bad.id.vendor_id = 1;
	bad.id.interrupt_pin = 5;
	assert_null(vdk_pci_dev_new(&bad, &err));
	assert_null(vdk_pci_dev_new(NULL, &err));
}

/* ---- INTx -------------------------------------------------------------------- */

static void test_intx(void **state)
{
	struct fix *f = *state;

	vdk_pci_set_intx(f->d, true);
	assert_int_equal(f->intx_calls, 1);
	assert_true(f->intx);
	assert_true(rd(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* INTx disable drops the pin; the status bit stays. */
	wr(f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
	assert_false(f->intx);
	assert_true(rd(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	wr(f, PCI_COMMAND, 0, 2);
	assert_true(f->intx);
	/* MSI-X enabled: no INTx. */
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_false(f->intx);
	wr(f, 0x42, 0, 2);
	assert_true(f->intx);
	vdk_pci_set_intx(f->d, false);
	assert_false(f->intx);
	assert_false(rd(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_int_equal(f->intx_calls, 6);
}

static void test_reset(void **state)
{
	struct fix *f = *state;

	vdk_pci_bar_set_addr(f->d, 0, 0x100000000ull);
	wr(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	program_vector(f, 0, 7);
	bar_wr32(f, 0, 0x2000 + 12, 0);
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	assert_int_equal(vdk_pci_msix_notify(f->d, 0), 1);
	assert_true(f->bar_mapped[0]);
	vdk_pci_reset(f->d);
	assert_false(f->bar_mapped[0]);
	assert_int_equal(rd(f, PCI_COMMAND, 2), 0);
	assert_int_equal(rd(f, PCI_BASE_ADDRESS_0, 4),
			 PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(rd(f, 0x42, 2), NVEC - 1);
	assert_false(vdk_pci_msix_pending(f->d, 0));
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 8), 0);
	assert_int_equal(bar_rd32(f, 0, 0x2000 + 12), 1);
	assert_int_equal(f->msis, 0);
}

static void test_state_save_load(void **state)
{
	struct fix *f = *state;
	size_t n = vdk_pci_state_size(f->d);
	uint8_t *a = malloc(n), *b = malloc(n);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(vdk_pci_save_state(f->d, a, n - 1), -EINVAL);
	vdk_pci_bar_set_addr(f->d, 0, 0x100000000ull);
	wr(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	program_vector(f, 2, 0x77);
	bar_wr32(f, 0, 0x2000 + 2 * 16 + 12, 0);
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	assert_int_equal(vdk_pci_msix_notify(f->d, 2), 1);
	assert_int_equal(vdk_pci_save_state(f->d, a, n), 0);
	/* Into a reset function: everything comes back; the pending
	 * message goes out when the function mask is lifted. */
	vdk_pci_reset(f->d);
	assert_false(f->bar_mapped[0]);
	assert_int_equal(vdk_pci_load_state(f->d, a, n), 0);
	assert_true(f->bar_mapped[0]);
	assert_int_equal(vdk_pci_save_state(f->d, b, n), 0);
	assert_memory_equal(a, b, n);
	assert_true(vdk_pci_msix_pending(f->d, 2));
	wr(f, 0x42, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(f->msis, 1);
	assert_int_equal(f->msi_data, 0x77);
	/* Hostile states: a read-only byte, a misaligned BAR, a reserved
	 * vector control bit, a pending bit beyond the table. */
	memcpy(b, a, n);
	b[PCI_DEVICE_ID] ^= 1;
	assert_int_equal(vdk_pci_load_state(f->d, b, n), -EINVAL);
	memcpy(b, a, n);
	b[256] = 0x10; /* BAR 0 address low byte */
	assert_int_equal(vdk_pci_load_state(f->d, b, n), -EINVAL);
	memcpy(b, a, n);
	b[256 + 48 + 12 + 1] = 1;
	assert_int_equal(vdk_pci_load_state(f->d, b, n), -EINVAL);
	memcpy(b, a, n);
	b[n - 8] = 1u << NVEC;
	assert_int_equal(vdk_pci_load_state(f->d, b, n), -EINVAL);
	assert_int_equal(vdk_pci_load_state(f->d, a, n - 1), -EINVAL);
	free(a);
	free(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_header_fields),
		T(test_read_only_fields),
		T(test_bad_access_width),
		T(test_bar_sizing),
		T(test_bar_decode_and_move),
		T(test_bar_access),
		T(test_bar_add_errors),
		T(test_cap_list),
		T(test_msix_cap_layout),
		T(test_msix_delivery_and_masks),
		T(test_msix_hostile_table_access),
		T(test_msix_add_errors),
		T(test_intx),
		T(test_reset),
		T(test_state_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
