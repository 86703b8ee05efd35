/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: just enough ACPI to find the virtio-mmio devices and to
 * power off (ACPI 6.4 §5.2 tables, §20 AML, §6.4 resource descriptors).
 *
 *   RSDP (hint from hvm_start_info, else a scan of 0xe0000-0xfffff)
 *     -> XSDT (or RSDT) -> FADT -> DSDT
 *
 * The DSDT is not interpreted: a scanner looks for DeviceOp, and inside a
 * device's body for Name(_HID, "LNRO0005") and Name(_CRS, Buffer) whose
 * resource template holds Memory32Fixed and an Interrupt. This is what
 * both QEMU's microvm and vdk-vmm generate (and what Linux's
 * virtio_mmio.c matches). \_S5 gives the SLP_TYP for poweroff.
 *
 * The tables come from the VMM: every length is checked against the
 * table, every table must lie below 4 GiB (what the guest maps) and sum
 * to zero.
 */
#include <asm-generic/errno.h>

#include "guest.h"

#define BIOS_AREA_START 0xe0000u
#define BIOS_AREA_END	0x100000u
#define SDT_HEADER_LEN	36u
/** Largest table accepted (a DSDT of a few hundred devices fits). */
#define SDT_MAX_LEN  (1u << 20)
#define MAPPED_LIMIT (1ull << 32)

/* RSDP fields (ACPI 6.4 §5.2.5.3). */
#define RSDP_V1_LEN    20u
#define RSDP_REVISION  15
#define RSDP_RSDT      16
#define RSDP_LENGTH    20
#define RSDP_XSDT      24
#define RSDP_V2_MINLEN 36u

/* FADT fields (ACPI 6.4 §5.2.9, Table 5.9). */
#define FADT_DSDT	       40
#define FADT_PM1A_CNT_BLK      64
#define FADT_FLAGS	       112
#define FADT_X_DSDT	       140
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_FLAG_HW_REDUCED   (1u << 20)

/* AML opcodes (ACPI 6.4 §20.2). */
#define AML_ZERO_OP	  0x00
#define AML_ONE_OP	  0x01
#define AML_NAME_OP	  0x08
#define AML_BYTE_PREFIX	  0x0a
#define AML_WORD_PREFIX	  0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_BUFFER_OP	  0x11
#define AML_PACKAGE_OP	  0x12
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP	  0x82
#define AML_ONES_OP	  0xff
#define AML_ROOT_CHAR	  0x5c
#define AML_PARENT_CHAR	  0x5e

/* Resource descriptors (ACPI 6.4 §6.4). */
#define RES_SMALL_IRQ_TYPE 0x04
#define RES_SMALL_END_TYPE 0x0f
#define RES_LARGE	   0x80
#define RES_MEMORY32_FIXED 0x86
#define RES_EXTENDED_IRQ   0x89

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static bool sum_zero(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum == 0;
}

static bool mapped(uint64_t addr, uint64_t len)
{
	uint64_t end;

	return addr != 0 && !__builtin_add_overflow(addr, len, &end) &&
	       end <= MAPPED_LIMIT;
}

/*
 * The table at @addr if it is mapped, at least SDT_HEADER_LEN and at most
 * SDT_MAX_LEN long, and its checksum is right; else NULL. *len = its length.
 */
static const uint8_t *get_table(uint64_t addr, uint32_t *len)
{
	const uint8_t *t;
	uint32_t l;

	if (!mapped(addr, SDT_HEADER_LEN))
		return NULL;
	t = (const uint8_t *)(uintptr_t)addr;
	l = get32(t + 4);
	if (l < SDT_HEADER_LEN || l > SDT_MAX_LEN || !mapped(addr, l) ||
	    !sum_zero(t, l))
		return NULL;
	*len = l;
	return t;
}

static const uint8_t *check_rsdp(uint64_t addr)
{
	const uint8_t *r;

	if (!mapped(addr, RSDP_V2_MINLEN))
		return NULL;
	r = (const uint8_t *)(uintptr_t)addr;
	if (memcmp(r, "RSD PTR ", 8) != 0 || !sum_zero(r, RSDP_V1_LEN))
		return NULL;
	if (r[RSDP_REVISION] >= 2) {
		uint32_t l = get32(r + RSDP_LENGTH);

		if (l < RSDP_V2_MINLEN || l > 4096 || !mapped(addr, l) ||
		    !sum_zero(r, l))
			return NULL;
	}
	return r;
}

static const uint8_t *find_rsdp(uint64_t hint, uint64_t *where)
{
	const uint8_t *r;

	if (hint && (r = check_rsdp(hint))) {
		*where = hint;
		return r;
	}
	/* ACPI 6.4 §5.2.5.1: on 16-byte boundaries of the BIOS area. */
	for (uint64_t a = BIOS_AREA_START; a < BIOS_AREA_END; a += 16) {
		r = check_rsdp(a);
		if (r) {
			*where = a;
			return r;
		}
	}
	return NULL;
}

/* ---- AML scanning ---------------------------------------------------- */

/*
 * Decode the PkgLength at @p (ACPI 6.4 §20.2.4), within @end. Sets *len
 * (which counts the PkgLength bytes themselves) and returns the number of
 * encoding bytes; 0 if malformed or truncated.
 */
static size_t pkg_length(const uint8_t *p, const uint8_t *end, uint32_t *len)
{
	size_t n;
	uint32_t v;

	if (p >= end)
		return 0;
	n = (size_t)(p[0] >> 6) + 1;
	if ((size_t)(end - p) < n)
		return 0;
	if (n == 1) {
		*len = p[0] & 0x3f;
		return 1;
	}
	v = p[0] & 0x0f;
	for (size_t i = 1; i < n; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	*len = v;
	return n;
}

/* An integer data object (ZeroOp, OneOp, OnesOp, Byte/Word/DWordConst) at
 * @p; returns bytes consumed or 0. */
static size_t aml_integer(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
	if (p >= end)
		return 0;
	switch (p[0]) {
	case AML_ZERO_OP:
		*v = 0;
		return 1;
	case AML_ONE_OP:
		*v = 1;
		return 1;
	case AML_ONES_OP:
		*v = 0xffffffffu;
		return 1;
	case AML_BYTE_PREFIX:
		if (end - p < 2)
			return 0;
		*v = p[1];
		return 2;
	case AML_WORD_PREFIX:
		if (end - p < 3)
			return 0;
		*v = get16(p + 1);
		return 3;
	case AML_DWORD_PREFIX:
		if (end - p < 5)
			return 0;
		*v = get32(p + 1);
		return 5;
	default:
		return 0;
	}
}

/* Where "Name(<seg>, ..." is in [p, end), the NameSeg optionally after
 * RootChar '\\' or ParentPrefixChars '^' (ACPI 6.4 §20.2.2): the byte
 * after the name, or NULL. */
static const uint8_t *find_name(const uint8_t *p, const uint8_t *end,
				const char *seg)
{
	for (; end - p >= 5; p++) {
		const uint8_t *q = p + 1;

		if (p[0] != AML_NAME_OP)
			continue;
		while (q < end &&
		       (*q == AML_ROOT_CHAR || *q == AML_PARENT_CHAR))
			q++;
		if (end - q >= 4 && memcmp(q, seg, 4) == 0)
			return q + 4;
	}
	return NULL;
}

/* Parse a _CRS buffer's resource template into @w. */
static bool parse_crs(const uint8_t *p, const uint8_t *end,
		      struct mmio_window *w)
{
	const uint8_t *bend;
	uint32_t pkg, bufsize;
	size_t n;
	bool have_mem = false;

	if (p >= end || *p++ != AML_BUFFER_OP)
		return false;
	n = pkg_length(p, end, &pkg);
	if (!n || pkg > (size_t)(end - p))
		return false;
	bend = p + pkg;
	p += n;
	n = aml_integer(p, bend, &bufsize);
	if (!n)
		return false;
	p += n;
	if (bufsize < (size_t)(bend - p))
		bend = p + bufsize;

	while (p < bend) {
		uint8_t tag = p[0];
		size_t dlen, hdr;

		if (tag & RES_LARGE) {
			if (bend - p < 3)
				return false;
			dlen = get16(p + 1);
			hdr = 3;
		} else {
			dlen = tag & 7;
			hdr = 1;
			if (((tag >> 3) & 0xf) == RES_SMALL_END_TYPE)
				break;
		}
		if ((size_t)(bend - p) < hdr + dlen)
			return false;
		if (tag == RES_MEMORY32_FIXED && dlen >= 9) {
			w->base = get32(p + hdr + 1);
			w->size = get32(p + hdr + 5);
			have_mem = true;
		} else if (tag == RES_EXTENDED_IRQ && dlen >= 6 &&
			   p[hdr + 1] >= 1) {
			w->irq = get32(p + hdr + 2);
		} else if (!(tag & RES_LARGE) &&
			   ((tag >> 3) & 0xf) == RES_SMALL_IRQ_TYPE &&
			   dlen >= 2) {
			uint16_t mask = get16(p + hdr);

			for (uint32_t i = 0; i < 16; i++) {
				if (mask & (1u << i)) {
					w->irq = i;
					break;
				}
			}
		}
		p += hdr + dlen;
	}
	return have_mem && w->size != 0;
}

/* Look at the Device whose DeviceOp starts at @p. */
static void scan_device(const uint8_t *p, const uint8_t *end,
			struct acpi_info *out)
{
	static const char hid[] = "LNRO0005";
	const uint8_t *body, *dend, *h, *c;
	struct mmio_window w = {0};
	uint32_t pkg;
	size_t n;

	n = pkg_length(p + 2, end, &pkg);
	if (!n || pkg > (size_t)(end - (p + 2)))
		return;
	dend = p + 2 + pkg;
	body = p + 2 + n;
	/* Stop at a nested device: its names are its own. */
	for (const uint8_t *q = body; q + 1 < dend; q++) {
		if (q[0] == AML_EXT_OP_PREFIX && q[1] == AML_DEVICE_OP) {
			dend = q;
			break;
		}
	}
	h = find_name(body, dend, "_HID");
	if (!h || dend - h < (ptrdiff_t)sizeof(hid) + 1 ||
	    h[0] != AML_STRING_PREFIX || memcmp(h + 1, hid, sizeof(hid)) != 0)
		return;
	c = find_name(body, dend, "_CRS");
	if (!c || !parse_crs(c, dend, &w))
		return;
	for (size_t i = 0; i < out->num_windows; i++) {
		if (out->windows[i].base == w.base)
			return;
	}
	if (out->num_windows < MAX_DEVICES)
		out->windows[out->num_windows++] = w;
}

static void scan_s5(const uint8_t *p, const uint8_t *end, struct acpi_info *out)
{
	uint32_t pkg, typ;
	size_t n;

	p = find_name(p, end, "_S5_");
	if (!p || p >= end || *p++ != AML_PACKAGE_OP)
		return;
	n = pkg_length(p, end, &pkg);
	if (!n)
		return;
	p += n + 1; /* NumElements */
	if (aml_integer(p, end, &typ)) {
		out->have_s5 = true;
		out->s5_slp_typ = (uint8_t)(typ & 7);
	}
}

static void scan_dsdt(const uint8_t *t, uint32_t len, struct acpi_info *out)
{
	const uint8_t *end = t + len;

	for (const uint8_t *p = t + SDT_HEADER_LEN; p + 2 < end; p++) {
		if (p[0] == AML_EXT_OP_PREFIX && p[1] == AML_DEVICE_OP)
			scan_device(p, end, out);
	}
	scan_s5(t + SDT_HEADER_LEN, end, out);
}

/* ---- tables ------------------------------------------------------------ */

static void parse_fadt(const uint8_t *f, uint32_t len, struct acpi_info *out)
{
	uint64_t dsdt = 0;
	const uint8_t *d;
	uint32_t dlen;

	if (len >= FADT_DSDT + 4)
		dsdt = get32(f + FADT_DSDT);
	if (len >= FADT_X_DSDT + 8 && get64(f + FADT_X_DSDT))
		dsdt = get64(f + FADT_X_DSDT);
	if (len >= FADT_PM1A_CNT_BLK + 4)
		out->pm1a_cnt = get32(f + FADT_PM1A_CNT_BLK);
	if (len >= FADT_FLAGS + 4)
		out->hw_reduced =
			(get32(f + FADT_FLAGS) & FADT_FLAG_HW_REDUCED);
	if (len >= FADT_SLEEP_CONTROL_REG + 12) {
		const uint8_t *g = f + FADT_SLEEP_CONTROL_REG;

		out->sleep_ctl.space = g[0];
		out->sleep_ctl.bit_width = g[1];
		out->sleep_ctl.bit_offset = g[2];
		out->sleep_ctl.access_size = g[3];
		out->sleep_ctl.address = get64(g + 4);
	}
	d = get_table(dsdt, &dlen);
	if (d && memcmp(d, "DSDT", 4) == 0)
		scan_dsdt(d, dlen, out);
}

int acpi_scan(uint64_t rsdp_hint, struct acpi_info *out)
{
	const uint8_t *rsdp, *root;
	uint32_t len, entry;
	uint64_t addr;

	memset(out, 0, sizeof(*out));
	rsdp = find_rsdp(rsdp_hint, &out->rsdp);
	if (!rsdp)
		return -ENOENT;
	if (rsdp[RSDP_REVISION] >= 2 && get64(rsdp + RSDP_XSDT)) {
		root = get_table(get64(rsdp + RSDP_XSDT), &len);
		entry = 8;
		if (!root || memcmp(root, "XSDT", 4) != 0)
			return -EINVAL;
	} else {
		root = get_table(get32(rsdp + RSDP_RSDT), &len);
		entry = 4;
		if (!root || memcmp(root, "RSDT", 4) != 0)
			return -EINVAL;
	}
	for (uint32_t off = SDT_HEADER_LEN; off + entry <= len; off += entry) {
		const uint8_t *t;
		uint32_t tlen;

		addr = entry == 8 ? get64(root + off) : get32(root + off);
		t = get_table(addr, &tlen);
		if (t && memcmp(t, "FACP", 4) == 0)
			parse_fadt(t, tlen, out);
	}
	return 0;
}

/* ---- poweroff ------------------------------------------------------------ */

#define SLP_TYP_SHIFT	  2 /* sleep control register (§4.8.3.7) */
#define SLP_EN		  (1u << 5)
#define PM1_SLP_TYP_SHIFT 10 /* PM1 control (§4.8.3.2.1) */
#define PM1_SLP_EN	  (1u << 13)
#define GAS_SYSTEM_MEMORY 0
#define GAS_SYSTEM_IO	  1

void acpi_poweroff(const struct acpi_info *ai)
{
	uint8_t typ = ai->have_s5 ? ai->s5_slp_typ : (ai->hw_reduced ? 5 : 0);
	const struct acpi_gas *g = &ai->sleep_ctl;

	if (g->address) {
		uint8_t v = (uint8_t)((typ << SLP_TYP_SHIFT) | SLP_EN);

		if (g->space == GAS_SYSTEM_IO && g->address <= 0xffff)
			outb((uint16_t)g->address, v);
		else if (g->space == GAS_SYSTEM_MEMORY && mapped(g->address, 1))
			*(volatile uint8_t *)(uintptr_t)g->address = v;
	}
	if (ai->pm1a_cnt && ai->pm1a_cnt <= 0xffff)
		outw((uint16_t)ai->pm1a_cnt,
		     (uint16_t)(typ << PM1_SLP_TYP_SHIFT | PM1_SLP_EN));
}
