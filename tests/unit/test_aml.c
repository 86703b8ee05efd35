/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for vmm/aml.c, the AML byte builder: PkgLength encoding at
 * every size boundary, integer, NameString, String, EISA ID, Package and
 * Buffer encodings byte for byte, nesting (the PkgLength shrinks and the
 * contents move back), and malformed input and short buffers (sticky
 * errors, no overrun). test_acpi checks a whole DSDT with iasl.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_pkglength(void **state)
{
	uint8_t e[4];

	(void)state;
	/* One byte up to a total of 63 (the byte counts itself). */
	assert_int_equal(vmm_aml_pkglength_encode(0, e), 1);
	assert_int_equal(e[0], 1);
	assert_int_equal(vmm_aml_pkglength_encode(62, e), 1);
	assert_int_equal(e[0], 63);
	/* 63 bytes of content: total 65 in two bytes, 0x41 0x04. */
	assert_int_equal(vmm_aml_pkglength_encode(63, e), 2);
	assert_int_equal(e[0], 0x41);
	assert_int_equal(e[1], 0x04);
	/* Two bytes up to 4095, three up to 2^20 - 1, four up to 2^28 - 1. */
	assert_int_equal(vmm_aml_pkglength_encode(4093, e), 2);
	assert_int_equal(e[0], 0x4f);
	assert_int_equal(e[1], 0xff);
	assert_int_equal(vmm_aml_pkglength_encode(4094, e), 3);
	assert_int_equal(e[0], 0x81); /* 4097 = 0x1001 */
	assert_int_equal(e[1], 0x00);
	assert_int_equal(e[2], 0x01);
	assert_int_equal(vmm_aml_pkglength_encode((1u << 20) - 4, e), 3);
	assert_int_equal(vmm_aml_pkglength_encode((1u << 20) - 3, e), 4);
	assert_int_equal(vmm_aml_pkglength_encode(VMM_AML_PKGLENGTH_MAX - 4, e),
			 4);
	assert_int_equal(e[0], 0xcf);
	assert_int_equal(e[3], 0xff);
	assert_int_equal(vmm_aml_pkglength_encode(VMM_AML_PKGLENGTH_MAX - 3, e),
			 -E2BIG);
	assert_int_equal(vmm_aml_pkglength_encode(SIZE_MAX, e), -E2BIG);
}

static void expect_bytes(void (*emit)(struct vmm_aml_builder *),
			 const uint8_t *want, size_t n)
{
	uint8_t out[64];
	struct vmm_aml_builder b;

	vmm_aml_init(&b, out, sizeof(out));
	emit(&b);
	assert_int_equal(vmm_aml_finish(&b), (int)n);
	assert_memory_equal(out, want, n);
}

static void emit_ints(struct vmm_aml_builder *b)
{
	vmm_aml_integer(b, 0);
	vmm_aml_integer(b, 1);
	vmm_aml_integer(b, 2);
	vmm_aml_integer(b, 0xff);
	vmm_aml_integer(b, 0x100);
	vmm_aml_integer(b, 0x10000);
	vmm_aml_integer(b, 0x100000000ull);
}

static void emit_names(struct vmm_aml_builder *b)
{
	vmm_aml_name_string(b, "_S5");
	vmm_aml_name_string(b, "\\_SB_.COM1");
	vmm_aml_name_string(b, "A.B.C");
	vmm_aml_name_string(b, "\\");
}

static void emit_misc(struct vmm_aml_builder *b)
{
	vmm_aml_eisaid(b, "PNP0501");
	vmm_aml_string(b, "LNRO0005");
	vmm_aml_package_open(b, 2);
	vmm_aml_integer(b, 5);
	vmm_aml_integer(b, 0);
	vmm_aml_close(b);
	vmm_aml_buffer_open(b);
	vmm_aml_res_irq_noflags(b, 4);
	vmm_aml_res_end(b);
	vmm_aml_buffer_close(b);
}

static void test_aml_encodings(void **state)
{
	static const uint8_t ints[] = {
		0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00,
		0x01, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x0e, 0x00,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	};
	static const uint8_t names[] = {
		'_', 'S', '5', '_', 0x5c, 0x2e, '_', 'S', 'B',	'_',
		'C', 'O', 'M', '1', 0x2f, 3,	'A', '_', '_',	'_',
		'B', '_', '_', '_', 'C',  '_',	'_', '_', 0x5c, 0x00,
	};
	static const uint8_t misc[] = {
		/* EisaId("PNP0501") = 0x0105d041 */
		0x0c,
		0x41,
		0xd0,
		0x05,
		0x01,
		/* "LNRO0005" */
		0x0d,
		'L',
		'N',
		'R',
		'O',
		'0',
		'0',
		'0',
		'5',
		0x00,
		/* Package(2){5, 0}: PkgLength 5 = itself + count + 3 */
		0x12,
		0x05,
		0x02,
		0x0a,
		0x05,
		0x00,
		/* Buffer: PkgLength 8 = itself + BufferSize (2) + 5 bytes */
		0x11,
		0x08,
		0x0a,
		0x05,
		0x22,
		0x10,
		0x00,
		0x79,
		0x00,
	};

	(void)state;
	expect_bytes(emit_ints, ints, sizeof(ints));
	expect_bytes(emit_names, names, sizeof(names));
	expect_bytes(emit_misc, misc, sizeof(misc));
}

static int finish_one_name(const char *name)
{
	uint8_t out[16];
	struct vmm_aml_builder b;

	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_name_string(&b, name);
	return vmm_aml_finish(&b);
}

static void test_aml_errors(void **state)
{
	static const char *const bad[] = {
		"", "abcd", "1ABC", "ABCDE", "A..B", "A.", ".A", "\\\\A", "A-B",
	};
	uint8_t out[300];
	struct vmm_aml_builder b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(finish_one_name(bad[i]), -EINVAL);
	assert_int_equal(finish_one_name(NULL), -EINVAL);
	assert_int_equal(finish_one_name("A1_"), 4);

	/* Bad EISA IDs and non-ASCII strings. */
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_eisaid(&b, "pnp0501");
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_eisaid(&b, "PNP050G");
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_string(&b, "\xc3\xa9");
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);

	/* Unbalanced open/close, too deep a nesting, too many elements. */
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_scope_open(&b, "\\_SB_");
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_close(&b);
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
	vmm_aml_init(&b, out, sizeof(out));
	for (int i = 0; i <= VMM_AML_MAX_DEPTH; i++)
		vmm_aml_package_open(&b, 1);
	assert_int_equal(vmm_aml_finish(&b), -E2BIG);
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_buffer_open(&b);
	vmm_aml_close(&b); /* a Buffer needs vmm_aml_buffer_close() */
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_package_open(&b, 1);
	vmm_aml_buffer_close(&b); /* and a Package vmm_aml_close() */
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_package_open(&b, 256);
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);

	/* Every too-small buffer fails cleanly, and the error sticks. */
	for (size_t cap = 0; cap < 9; cap++) {
		uint8_t *small = malloc(cap ? cap : 1);

		vmm_aml_init(&b, cap ? small : NULL, cap);
		vmm_aml_buffer_open(&b);
		vmm_aml_res_irq_noflags(&b, 4);
		vmm_aml_res_end(&b);
		vmm_aml_buffer_close(&b);
		vmm_aml_integer(&b, 0);
		assert_int_equal(vmm_aml_finish(&b), -ENOSPC);
		free(small);
	}
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_res_irq_noflags(&b, 16);
	assert_int_equal(vmm_aml_finish(&b), -EINVAL);
}

/* A Device whose contents exceed 63 bytes gets a two-byte PkgLength. */
static void test_aml_nesting(void **state)
{
	uint8_t out[256];
	struct vmm_aml_builder b;
	int n;

	(void)state;
	vmm_aml_init(&b, out, sizeof(out));
	vmm_aml_scope_open(&b, "\\_SB_");
	vmm_aml_device_open(&b, "DEV0");
	for (int i = 0; i < 10; i++) {
		vmm_aml_name_begin(&b, "NAME");
		vmm_aml_integer(&b, 0x1000); /* 1 + 4 + 3 = 8 bytes each */
	}
	vmm_aml_close(&b);
	vmm_aml_close(&b);
	n = vmm_aml_finish(&b);
	/* Scope: 0x10, PkgLength(2), "\_SB_" (5), Device: 0x5b 0x82,
	 * PkgLength(2), "DEV0" (4), 80 bytes of names. */
	assert_int_equal(n, 1 + 2 + 5 + 2 + 2 + 4 + 80);
	assert_int_equal(out[0], 0x10);
	assert_int_equal(out[1] >> 6, 1);
	assert_int_equal((out[1] & 0x0f) | out[2] << 4, n - 1);
	assert_int_equal(out[8], 0x5b);
	assert_int_equal(out[9], 0x82);
	assert_int_equal((out[10] & 0x0f) | out[11] << 4, 2 + 4 + 80);
	assert_memory_equal(out + 12, "DEV0", 4);
	assert_int_equal(out[16], 0x08);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglength),
		cmocka_unit_test(test_aml_encodings),
		cmocka_unit_test(test_aml_errors),
		cmocka_unit_test(test_aml_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
