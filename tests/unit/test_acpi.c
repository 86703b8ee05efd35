/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for vmm/acpi.c: the tables' checksums and fields (RSDP, XSDT, FADT, MADT), argument checking and buffer bounds, the
 * sleep register decoder, and an independent check with ACPICA's iasl:
 * every table disassembles without errors, the DSDT names every virtio-mmio
 * window (LNRO0005) with its Memory32Fixed base and Interrupt, \_S5 and
 * COM1, and the disassembled tables compile again without errors.
 *
 * iasl (Debian package acpica-tools) is required: without it the iasl test
 * FAILS, saying so. iasl cannot read a bare RSDP, so the RSDP is checked
 * field by field here instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "acpi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define GPA 0xe0000ull

static const struct vmm_acpi_mmio_device devs[] = {
	{.base = 0xd0000000, .size = 0x1000, .irq = 5, .level = false},
	{.base = 0xd0001000, .size = 0x1000, .irq = 6, .level = true},
	{.base = 0xd0002000, .size = 0x1000, .irq = 17, .level = true},
	{.base = 0xfebff000, .size = 0x1000, .irq = 23, .level = false},
};
#define NUM_DEVS (sizeof(devs) / sizeof(devs[0]))

static struct vmm_acpi_config std_config(void)
{
	struct vmm_acpi_config c = {
		.num_vcpus = 3,
		.devices = devs,
		.num_devices = NUM_DEVS,
		.serial = true,
		.sleep_reg = 0x3c0,
	};
	return c;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* Build the standard tables into a heap buffer of exactly 64 KiB. */
static uint8_t *build(struct vmm_acpi_config *c, struct vmm_acpi_layout *l)
{
	uint8_t *buf = malloc(0x10000);

	assert_non_null(buf);
	memset(buf, 0xa5, 0x10000);
	assert_int_equal(vmm_acpi_build(c, buf, 0x10000, GPA, l), 0);
	return buf;
}

/* Host pointer of the table at guest-physical @gpa. */
static const uint8_t *at(const uint8_t *buf, const struct vmm_acpi_layout *l,
			 uint64_t gpa)
{
	assert_true(gpa >= GPA && gpa - GPA < l->total);
	return buf + (gpa - GPA);
}

/* ---- tables ------------------------------------------------------------- */

static void test_checksums(void **state)
{
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *buf = build(&c, &l);
	const uint64_t tables[] = {l.xsdt, l.fadt, l.madt, l.dsdt};

	(void)state;
	assert_int_equal(sum(at(buf, &l, l.rsdp), 20), 0);
	assert_int_equal(sum(at(buf, &l, l.rsdp), 36), 0);
	for (size_t i = 0; i < 4; i++) {
		const uint8_t *t = at(buf, &l, tables[i]);
		uint32_t len = le32(t + 4);

		assert_true(tables[i] % 16 == 0);
		assert_true(tables[i] - GPA + len <= l.total);
		assert_int_equal(sum(t, len), 0);
		assert_int_equal(vmm_acpi_checksum(t, len), 0);
	}
	/* The DSDT ends the tables; nothing past total was written. */
	assert_int_equal(l.dsdt - GPA + le32(at(buf, &l, l.dsdt) + 4), l.total);
	assert_int_equal(buf[l.total], 0xa5);
	free(buf);
}

static void test_rsdp_xsdt(void **state)
{
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *buf = build(&c, &l);
	const uint8_t *r, *x;

	(void)state;
	assert_int_equal(l.rsdp, GPA);
	r = at(buf, &l, l.rsdp);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(r[15], 2);		/* revision */
	assert_int_equal(le32(r + 16), 0);	/* no RSDT */
	assert_int_equal(le32(r + 20), 36);	/* length */
	assert_int_equal(le64(r + 24), l.xsdt); /* XSDT address */

	x = at(buf, &l, l.xsdt);
	assert_memory_equal(x, "XSDT", 4);
	assert_int_equal(le32(x + 4), 36 + 16);
	assert_int_equal(le64(x + 36), l.fadt);
	assert_int_equal(le64(x + 44), l.madt);
	assert_memory_equal(at(buf, &l, l.fadt), "FACP", 4);
	assert_memory_equal(at(buf, &l, l.madt), "APIC", 4);
	assert_memory_equal(at(buf, &l, l.dsdt), "DSDT", 4);
	free(buf);
}

static void check_gas(const uint8_t *g, uint8_t space, uint64_t addr)
{
	assert_int_equal(g[0], space);
	assert_int_equal(g[1], 8);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1);
	assert_int_equal(le64(g + 4), addr);
}

static void test_fadt(void **state)
{
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *buf = build(&c, &l);
	const uint8_t *f = at(buf, &l, l.fadt);
	uint32_t flags = le32(f + 112);

	(void)state;
	assert_int_equal(le32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_true(flags & (1u << 20));   /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));   /* RESET_REG_SUP */
	assert_false(flags & (1u << 0));   /* no WBINVD claim */
	assert_int_equal(le16(f + 46), 0); /* no SCI */
	assert_int_equal(le32(f + 56), 0); /* no PM1a event block */
	assert_int_equal(le64(f + 140), l.dsdt);
	assert_int_equal(le32(f + 40), 0); /* 32-bit DSDT unused */
	check_gas(f + 244, 1, 0x3c0);	   /* SLEEP_CONTROL_REG */
	check_gas(f + 256, 1, 0x3c0);	   /* SLEEP_STATUS_REG */
	check_gas(f + 116, 1, 0x3c0);	   /* RESET_REG */
	assert_int_equal(f[128], VMM_ACPI_RESET_VALUE);
	assert_true(le16(f + 109) & (1u << 5)); /* no CMOS RTC */
	free(buf);

	/* An MMIO sleep register and an RTC. */
	c.sleep_reg = 0xfeb00000;
	c.sleep_reg_mmio = true;
	c.cmos_rtc = true;
	buf = build(&c, &l);
	f = at(buf, &l, l.fadt);
	check_gas(f + 244, 0, 0xfeb00000);
	check_gas(f + 256, 0, 0xfeb00000);
	assert_false(le16(f + 109) & (1u << 5));
	free(buf);
}

static void test_madt(void **state)
{
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *buf = build(&c, &l);
	const uint8_t *m = at(buf, &l, l.madt);
	uint32_t len = le32(m + 4);
	unsigned int lapics = 0, ioapics = 0, isos = 0;
	uint16_t iso_flags[16] = {0};

	(void)state;
	assert_int_equal(le32(m + 36), 0xfee00000);
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;

		assert_true(off + 2 <= len && e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);	  /* UID */
			assert_int_equal(e[3], lapics);	  /* APIC ID */
			assert_int_equal(le32(e + 4), 1); /* enabled */
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(le32(e + 4), 0xfec00000);
			assert_int_equal(le32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0); /* ISA */
			assert_true(e[3] < 16);
			assert_int_equal(le32(e + 4), e[3]);
			iso_flags[e[3]] = le16(e + 8);
			isos++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(lapics, 3);
	assert_int_equal(ioapics, 1);
	/* COM1 (IRQ 4) edge, device IRQ 5 edge, IRQ 6 level; 17, 23 none. */
	assert_int_equal(isos, 3);
	assert_int_equal(iso_flags[4], 0x5);
	assert_int_equal(iso_flags[5], 0x5);
	assert_int_equal(iso_flags[6], 0xd);
	free(buf);
}

static void test_bad_config(void **state)
{
	static uint8_t buf[0x4000];
	struct vmm_acpi_mmio_device d[2];
	struct vmm_acpi_config c;
	struct vmm_acpi_layout l;

	(void)state;
#define EXPECT_EINVAL(mutate)                                                  \
	do {                                                                   \
		c = std_config();                                              \
		memcpy(d, devs, sizeof(d));                                    \
		c.devices = d;                                                 \
		c.num_devices = 2;                                             \
		mutate;                                                        \
		assert_int_equal(                                              \
			vmm_acpi_build(&c, buf, sizeof(buf), GPA, &l),         \
			-EINVAL);                                              \
	} while (0)
	EXPECT_EINVAL(c.num_vcpus = 0);
	EXPECT_EINVAL(c.num_vcpus = VMM_ACPI_MAX_VCPUS + 1);
	EXPECT_EINVAL(c.devices = NULL);
	EXPECT_EINVAL(c.num_devices = VMM_ACPI_MAX_DEVICES + 1);
	EXPECT_EINVAL(d[1].size = 0);
	EXPECT_EINVAL(d[1].base = 0x100000000ull);
	EXPECT_EINVAL(d[1].base = 0xfffff000; d[1].size = 0x2000);
	EXPECT_EINVAL(d[1].base = UINT64_MAX; d[1].size = 2);
	EXPECT_EINVAL(d[1].size = 0x100000000ull);
	EXPECT_EINVAL(d[1].irq = VMM_ACPI_IOAPIC_PINS);
	EXPECT_EINVAL(d[1].irq = d[0].irq);
	EXPECT_EINVAL(d[1].irq = VMM_ACPI_COM1_IRQ);
	EXPECT_EINVAL(c.sleep_reg = 0);
	EXPECT_EINVAL(c.sleep_reg = 0x10000);
#undef EXPECT_EINVAL

	c = std_config();
	assert_int_equal(vmm_acpi_build(NULL, buf, sizeof(buf), GPA, &l),
			 -EINVAL);
	assert_int_equal(vmm_acpi_build(&c, NULL, sizeof(buf), GPA, &l),
			 -EINVAL);
	assert_int_equal(vmm_acpi_build(&c, buf, sizeof(buf), GPA, NULL),
			 -EINVAL);
	assert_int_equal(vmm_acpi_build(&c, buf, sizeof(buf), GPA + 8, &l),
			 -EINVAL);
	assert_int_equal(
		vmm_acpi_build(&c, buf, sizeof(buf), UINT64_MAX - 0xfff, &l),
		-EINVAL);
	/* Without COM1, IRQ 4 is free; the largest legal config builds. */
	c.serial = false;
	memcpy(d, devs, sizeof(d));
	d[1].irq = VMM_ACPI_COM1_IRQ;
	c.devices = d;
	c.num_devices = 2;
	c.num_vcpus = VMM_ACPI_MAX_VCPUS;
	assert_int_equal(vmm_acpi_build(&c, buf, sizeof(buf), GPA, &l), 0);
}

/* Every buffer smaller than needed fails with -ENOSPC, within bounds. */
static void test_buffer_too_small(void **state)
{
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *full = build(&c, &l);
	size_t total = l.total;

	(void)state;
	for (size_t size = 0; size < total; size++) {
		/* Exact-size heap buffers: ASan catches any overrun. */
		uint8_t *b = malloc(size ? size : 1);

		assert_int_equal(vmm_acpi_build(&c, b, size, GPA, &l), -ENOSPC);
		free(b);
	}
	uint8_t *exact = malloc(total);

	assert_int_equal(vmm_acpi_build(&c, exact, total, GPA, &l), 0);
	assert_int_equal(l.total, total);
	assert_memory_equal(exact, full, total);
	free(exact);
	free(full);
}

static void test_sleep_action(void **state)
{
	unsigned int off = 0, reset = 0;

	(void)state;
	assert_int_equal(vmm_acpi_sleep_reg_action(0x34), VMM_ACPI_POWEROFF);
	assert_int_equal(vmm_acpi_sleep_reg_action(0x80), VMM_ACPI_NONE);
	assert_int_equal(vmm_acpi_sleep_reg_action(0x14), VMM_ACPI_NONE);
	assert_int_equal(vmm_acpi_sleep_reg_action(0x30), VMM_ACPI_NONE);
	assert_int_equal(vmm_acpi_sleep_reg_action(VMM_ACPI_RESET_VALUE),
			 VMM_ACPI_RESET);
	for (unsigned int v = 0; v < 256; v++) {
		enum vmm_acpi_sleep_action a = vmm_acpi_sleep_reg_action(v);

		off += a == VMM_ACPI_POWEROFF;
		reset += a == VMM_ACPI_RESET;
	}
	/* SLP_EN and SLP_TYP fixed; bits 0, 1, 6, 7 free: 16 values. */
	assert_int_equal(off, 16);
	assert_int_equal(reset, 1);
}

/* ---- iasl --------------------------------------------------------------- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Collapse every run of whitespace to one space, in place. */
static void squeeze(char *s)
{
	char *w = s;
	bool space = false;

	for (char *r = s; *r; r++) {
		if (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') {
			space = true;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = false;
		*w++ = *r;
	}
	*w = '\0';
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Run @cmd in @dir with output to @log; fail with the log on non-zero. */
static void run(const char *dir, const char *cmd, const char *log)
{
	char line[512];
	int st;

	snprintf(line, sizeof(line), "cd '%s' && (%s) > '%s/%s' 2>&1", dir, cmd,
		 dir, log);
	st = system(line);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(line, sizeof(line), "%s/%s", dir, log);
		char *out = slurp(line);

		fail_msg("'%s' failed (status %d):\n%s", cmd, st, out);
	}
}

/* Disassemble @name.dat, check the log is clean, return the .dsl text. */
static char *disassemble(const char *dir, const char *name)
{
	char cmd[128], path[256];
	char *log;

	snprintf(cmd, sizeof(cmd), "iasl -d %s.dat", name);
	snprintf(path, sizeof(path), "%s.dlog", name);
	run(dir, cmd, path);
	snprintf(path, sizeof(path), "%s/%s.dlog", dir, name);
	log = slurp(path);
	if (strstr(log, "Error") || strstr(log, "Warning") ||
	    strstr(log, "does not contain"))
		fail_msg("iasl -d %s.dat complained:\n%s", name, log);
	free(log);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	return slurp(path);
}

/* Compile @name.dsl again in a subdirectory; require zero errors. */
static void recompile(const char *dir, const char *name)
{
	char cmd[256], path[256];
	char *log;

	snprintf(cmd, sizeof(cmd),
		 "mkdir -p re && cp %s.dsl re/ && cd re && iasl %s.dsl", name,
		 name);
	snprintf(path, sizeof(path), "%s.clog", name);
	run(dir, cmd, path);
	snprintf(path, sizeof(path), "%s/%s.clog", dir, name);
	log = slurp(path);
	if (!strstr(log, "Compilation successful") || !strstr(log, " 0 Errors"))
		fail_msg("iasl %s.dsl did not compile cleanly:\n%s", name, log);
	free(log);
}

static void check_dsdt(char *dsl)
{
	char want[256];

	squeeze(dsl);
	for (size_t i = 0; i < NUM_DEVS; i++) {
		char name[32];
		const char *dev, *next;

		snprintf(name, sizeof(name), "Device (V%03zX)", i);
		dev = strstr(dsl, name);
		if (!dev) {
			fail_msg("no %s in the DSDT:\n%s", name, dsl);
			return;
		}
		next = strstr(dev + strlen(name), "Device (");
		size_t span = next ? (size_t)(next - dev) : strlen(dev);
		char *block = strndup(dev, span);

		assert_non_null(strstr(block, "Name (_HID, \"LNRO0005\")"));
		snprintf(want, sizeof(want),
			 "Memory32Fixed (ReadWrite, 0x%08" PRIX64
			 ", // Address Base 0x%08" PRIX64
			 ", // Address Length )",
			 devs[i].base, devs[i].size);
		if (!strstr(block, want))
			fail_msg("V%03zX: no '%s' in:\n%s", i, want, block);
		snprintf(want, sizeof(want),
			 "Interrupt (ResourceConsumer, %s, ActiveHigh, "
			 "Exclusive, ,, ) { 0x%08X, }",
			 devs[i].level ? "Level" : "Edge", devs[i].irq);
		if (!strstr(block, want))
			fail_msg("V%03zX: no '%s' in:\n%s", i, want, block);
		free(block);
	}
	/* No more virtio devices than configured. */
	snprintf(want, sizeof(want), "Device (V%03zX)", NUM_DEVS);
	assert_null(strstr(dsl, want));

	const char *com1 = strstr(dsl, "Device (COM1)");

	assert_non_null(com1);
	assert_non_null(strstr(com1, "EisaId (\"PNP0501\")"));
	assert_non_null(strstr(com1, "IO (Decode16, 0x03F8, // Range Minimum "
				     "0x03F8, // Range Maximum"));
	assert_non_null(strstr(com1, "IRQNoFlags () {4}"));
	if (!strstr(dsl, "Name (\\_S5, Package (0x04) // _S5_: S5 System "
			 "State { 0x05, Zero, Zero, Zero })"))
		fail_msg("no \\_S5 package in:\n%s", dsl);
}

/* The iasl test's scratch directory; removed by the teardown, pass or fail. */
static char iasl_dir[] = "/tmp/vdk-test-acpi-XXXXXX";
static bool iasl_dir_made;

static int iasl_teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (!iasl_dir_made)
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", iasl_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_iasl(void **state)
{
	char *dir = iasl_dir;
	char path[256];
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *buf;
	char *dsl;
	const struct {
		const char *name;
		const char *needle; /* must appear in the disassembly */
	} tables[] = {
		{"xsdt", "Extended System Description Table"},
		{"facp", "Hardware Reduced (V5) : 1"},
		{"apic", "Local Apic ID : 02"},
		{"dsdt", "DefinitionBlock"},
	};

	(void)state;
	if (system("command -v iasl > /dev/null 2>&1") != 0)
		fail_msg("iasl not found: install the acpica-tools package "
			 "(scripts/install-deps.sh does; make check runs it)");
	buf = build(&c, &l);
	assert_non_null(mkdtemp(dir));
	iasl_dir_made = true;
	for (size_t i = 0; i < 4; i++) {
		uint64_t gpa = i == 0	? l.xsdt
			       : i == 1 ? l.fadt
			       : i == 2 ? l.madt
					: l.dsdt;
		const uint8_t *t = at(buf, &l, gpa);

		snprintf(path, sizeof(path), "%s/%s.dat", dir, tables[i].name);
		write_file(path, t, le32(t + 4));
		dsl = disassemble(dir, tables[i].name);
		char *flat = strdup(dsl);

		squeeze(flat);
		if (!strstr(flat, tables[i].needle))
			fail_msg("%s: '%s' missing from:\n%s", tables[i].name,
				 tables[i].needle, dsl);
		free(flat);
		if (i == 3)
			check_dsdt(dsl);
		free(dsl);
		recompile(dir, tables[i].name);
	}
	free(buf);
}

/* ---- PCI host bridge ---------------------------------------------------- */

static const struct vmm_acpi_pci test_pci = {
	.ecam_base = 0xb0000000ull,
	.mem32_base = 0xc0000000u,
	.mem32_size = 0x10000000u,
	.mem64_base = 0x8000000000ull,
	.mem64_size = 0x1000000000ull,
	.slot_gsi = {[1] = 16, [2] = 17},
};

static char pci_dir[] = "/tmp/vdk-test-acpi-pci-XXXXXX";
static bool pci_dir_made;

static int pci_teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (!pci_dir_made)
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pci_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_pci_tables(void **state)
{
	struct vmm_acpi_config c = std_config();
	struct vmm_acpi_layout l;
	uint8_t *buf;
	const uint8_t *x, *m, *f;
	char path[256], *dsl;

	(void)state;
	c.pci = &test_pci;
	buf = build(&c, &l);
	/* XSDT lists the MCFG; MCFG holds one ECAM range for bus 0. */
	x = at(buf, &l, l.xsdt);
	assert_int_equal(le32(x + 4), 36 + 24);
	assert_int_equal(le64(x + 52), l.mcfg);
	m = at(buf, &l, l.mcfg);
	assert_memory_equal(m, "MCFG", 4);
	assert_int_equal(le32(m + 4), 60);
	assert_int_equal(sum(m, 60), 0);
	assert_int_equal(le64(m + 44), test_pci.ecam_base);
	assert_int_equal(le16(m + 52), 0);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 0);
	/* MSI is allowed (IA-PC boot flags, bit 3 clear). */
	f = at(buf, &l, l.fadt);
	assert_int_equal(le16(f + 109) & (1u << 3), 0);
	assert_int_equal(
		sum(at(buf, &l, l.dsdt), le32(at(buf, &l, l.dsdt) + 4)), 0);
	/* Without PCI: no MCFG, MSI not supported. */
	c.pci = NULL;
	free(buf);
	buf = build(&c, &l);
	assert_int_equal(l.mcfg, 0);
	assert_int_equal(le32(at(buf, &l, l.xsdt) + 4), 36 + 16);
	assert_int_not_equal(le16(at(buf, &l, l.fadt) + 109) & (1u << 3), 0);
	free(buf);
	/* Bad windows. */
	struct vmm_acpi_pci bad = test_pci;
	c.pci = &bad;
	bad.ecam_base = 0xb0001000ull;
	uint8_t *tmp = malloc(0x10000);
	assert_int_equal(vmm_acpi_build(&c, tmp, 0x10000, GPA, &l), -EINVAL);
	bad = test_pci;
	bad.mem32_base = 0xf8000000u;
	assert_int_equal(vmm_acpi_build(&c, tmp, 0x10000, GPA, &l), -EINVAL);
	bad = test_pci;
	bad.slot_gsi[3] = 24;
	assert_int_equal(vmm_acpi_build(&c, tmp, 0x10000, GPA, &l), -EINVAL);
	free(tmp);

	/* What iasl makes of the DSDT: the bridge, its windows, its _PRT. */
	if (system("command -v iasl > /dev/null 2>&1") != 0)
		fail_msg("iasl not found: install the acpica-tools package");
	c.pci = &test_pci;
	buf = build(&c, &l);
	assert_non_null(mkdtemp(pci_dir));
	pci_dir_made = true;
	const struct {
		const char *name;
		uint64_t gpa;
	} t[] = {{"mcfg", l.mcfg}, {"dsdt", l.dsdt}};
	for (size_t i = 0; i < 2; i++) {
		const uint8_t *p = at(buf, &l, t[i].gpa);

		snprintf(path, sizeof(path), "%s/%s.dat", pci_dir, t[i].name);
		write_file(path, p, le32(p + 4));
		dsl = disassemble(pci_dir, t[i].name);
		squeeze(dsl);
		if (i == 0 && !strstr(dsl, "Base Address : 00000000B0000000"))
			fail_msg("MCFG:\n%s", dsl);
		if (i == 1) {
			const char *needles[] = {
				"Device (PCI0)",
				"EisaId (\"PNP0A08\")",
				"EisaId (\"PNP0A03\")",
				"WordBusNumber (ResourceProducer",
				"IO (Decode16, 0x0CF8",
				"DWordMemory (ResourceProducer",
				"0xC0000000, // Range Minimum",
				"QWordMemory (ResourceProducer",
				"0x0000008000000000, // Range Minimum",
				"Package (0x04) { 0x0001FFFF, Zero, Zero, 0x10 "
				"}",
				"Package (0x04) { 0x0002FFFF, Zero, Zero, 0x11 "
				"}",
				"EisaId (\"PNP0C02\")",
				"Memory32Fixed (ReadWrite, 0xB0000000",
			};
			for (size_t k = 0;
			     k < sizeof(needles) / sizeof(*needles); k++)
				if (!strstr(dsl, needles[k]))
					fail_msg("DSDT: no '%s' in:\n%s",
						 needles[k], dsl);
		}
		free(dsl);
		recompile(pci_dir, t[i].name);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksums),
		cmocka_unit_test(test_rsdp_xsdt),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_buffer_too_small),
		cmocka_unit_test(test_sleep_action),
		cmocka_unit_test_teardown(test_iasl, iasl_teardown),
		cmocka_unit_test_teardown(test_pci_tables, pci_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
