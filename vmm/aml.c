/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AML byte builder (see aml.h). Encodings from ACPI 6.4 §20.2 (AML
 * grammar) and §6.4 (resource descriptors); written for vdk.
 */
#include "aml.h"

#include <errno.h>
#include <string.h>

/* Opcodes and prefixes, ACPI 6.4 §20.2.3, §20.2.5. */
#define AML_ZERO_OP	    0x00
#define AML_ONE_OP	    0x01
#define AML_NAME_OP	    0x08
#define AML_BYTE_PREFIX	    0x0a
#define AML_WORD_PREFIX	    0x0b
#define AML_DWORD_PREFIX    0x0c
#define AML_STRING_PREFIX   0x0d
#define AML_QWORD_PREFIX    0x0e
#define AML_SCOPE_OP	    0x10
#define AML_BUFFER_OP	    0x11
#define AML_PACKAGE_OP	    0x12
#define AML_DUAL_NAME	    0x2e
#define AML_MULTI_NAME	    0x2f
#define AML_EXT_OP_PREFIX   0x5b
#define AML_ROOT_CHAR	    0x5c
#define AML_DEVICE_OP	    0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ONES_OP	    0xff
#define AML_NULL_NAME	    0x00
#define AML_PKGLENGTH_BYTES 4 /* reserved by an open call */

/* Resource descriptor tags, ACPI 6.4 §6.4.2 (small) and §6.4.3 (large). */
#define RES_IRQ_NOFLAGS	   0x22 /* small item 0x04, length 2 */
#define RES_IO		   0x47 /* small item 0x08, length 7 */
#define RES_END_TAG	   0x79 /* small item 0x0f, length 1 */
#define RES_MEMORY32_FIXED 0x86 /* large item 0x06 */
#define RES_EXT_INTERRUPT  0x89 /* large item 0x09 */
#define RES_DWORD_ADDRESS  0x87 /* large item 0x07 */
#define RES_WORD_ADDRESS   0x88 /* large item 0x08 */
#define RES_QWORD_ADDRESS  0x8a /* large item 0x0a */
/* Address space descriptor fields (ACPI 6.4 §6.4.3.5.1-3). */
#define ADDR_TYPE_MEMORY 0
#define ADDR_TYPE_BUS	 2
#define ADDR_MIF_MAF	 0x0c /* MinFixed, MaxFixed; producer, pos decode */
#define ADDR_MEM_RW	 0x01
#define ADDR_MEM_CACHE	 0x02 /* Cacheable (bits 2:1 = 1) */

static void set_err(struct vmm_aml_builder *b, int err)
{
	if (!b->err)
		b->err = err;
}

void vmm_aml_init(struct vmm_aml_builder *b, uint8_t *buf, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = buf ? cap : 0;
}

int vmm_aml_finish(struct vmm_aml_builder *b)
{
	if (!b->err && b->depth != 0)
		set_err(b, -EINVAL);
	if (b->err)
		return b->err;
	if (b->len > (size_t)INT32_MAX)
		return -E2BIG;
	return (int)b->len;
}

/* Reserve @n bytes at the end; returns NULL (and sets -ENOSPC) if full. */
static uint8_t *reserve(struct vmm_aml_builder *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->cap - b->len) {
		set_err(b, -ENOSPC);
		return NULL;
	}
	b->len += n;
	return b->buf + b->len - n;
}

void vmm_aml_bytes(struct vmm_aml_builder *b, const void *data, size_t n)
{
	uint8_t *p = reserve(b, n);

	if (p && n)
		memcpy(p, data, n);
}

static void put8(struct vmm_aml_builder *b, uint8_t v)
{
	vmm_aml_bytes(b, &v, 1);
}

/* Little-endian integer of @n bytes. */
static void put_le(struct vmm_aml_builder *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];

	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	vmm_aml_bytes(b, tmp, n);
}

int vmm_aml_pkglength_encode(size_t content, uint8_t out[4])
{
	/*
	 * ACPI 6.4 §20.2.4: one byte holds values up to 63 in bits 5:0;
	 * otherwise bits 7:6 of the lead byte give the count (1-3) of
	 * following bytes, bits 3:0 the low nibble, and each following byte
	 * the next 8 bits. The value includes the PkgLength bytes.
	 */
	for (int n = 1; n <= 4; n++) {
		size_t total;
		size_t limit = n == 1 ? 0x3f : ((size_t)1 << (4 + 8 * (n - 1)));

		if (__builtin_add_overflow(content, (size_t)n, &total))
			return -E2BIG;
		if (n == 1 && total <= limit) {
			out[0] = (uint8_t)total;
			return 1;
		}
		if (n > 1 && total < limit) {
			out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
			for (int i = 1; i < n; i++)
				out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
			return n;
		}
	}
	return -E2BIG;
}

static bool seg_char_ok(char c, bool lead)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !lead && c >= '0' && c <= '9';
}

/* Parse one segment of @p (up to '.' or NUL) into @seg, padded with '_'. */
static const char *parse_seg(const char *p, char seg[4])
{
	size_t n = 0;

	while (p[n] && p[n] != '.') {
		if (n == 4 || !seg_char_ok(p[n], n == 0))
			return NULL;
		seg[n] = p[n];
		n++;
	}
	if (n == 0)
		return NULL;
	for (size_t i = n; i < 4; i++)
		seg[i] = '_';
	return p + n;
}

void vmm_aml_name_string(struct vmm_aml_builder *b, const char *path)
{
	char segs[255][4];
	size_t nsegs = 0;
	const char *p = path;

	if (b->err)
		return;
	if (!p) {
		set_err(b, -EINVAL);
		return;
	}
	bool root = *p == '\\';
	if (root)
		p++;
	while (*p) {
		if (nsegs == 255) {
			set_err(b, -EINVAL);
			return;
		}
		p = parse_seg(p, segs[nsegs++]);
		if (!p || (*p == '.' && *++p == '\0')) {
			set_err(b, -EINVAL);
			return;
		}
	}
	if (nsegs == 0 && !root) {
		set_err(b, -EINVAL);
		return;
	}
	if (root)
		put8(b, AML_ROOT_CHAR);
	if (nsegs == 0) {
		put8(b, AML_NULL_NAME);
	} else if (nsegs == 2) {
		put8(b, AML_DUAL_NAME);
	} else if (nsegs > 2) {
		put8(b, AML_MULTI_NAME);
		put8(b, (uint8_t)nsegs);
	}
	for (size_t i = 0; i < nsegs; i++)
		vmm_aml_bytes(b, segs[i], 4);
}

void vmm_aml_integer(struct vmm_aml_builder *b, uint64_t v)
{
	if (v == 0) {
		put8(b, AML_ZERO_OP);
	} else if (v == 1) {
		put8(b, AML_ONE_OP);
	} else if (v <= UINT8_MAX) {
		put8(b, AML_BYTE_PREFIX);
		put8(b, (uint8_t)v);
	} else if (v <= UINT16_MAX) {
		put8(b, AML_WORD_PREFIX);
		put_le(b, v, 2);
	} else if (v <= UINT32_MAX) {
		put8(b, AML_DWORD_PREFIX);
		put_le(b, v, 4);
	} else {
		put8(b, AML_QWORD_PREFIX);
		put_le(b, v, 8);
	}
}

void vmm_aml_string(struct vmm_aml_builder *b, const char *s)
{
	if (!s) {
		set_err(b, -EINVAL);
		return;
	}
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			set_err(b, -EINVAL);
			return;
		}
	}
	put8(b, AML_STRING_PREFIX);
	vmm_aml_bytes(b, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void vmm_aml_eisaid(struct vmm_aml_builder *b, const char *id)
{
	uint32_t vendor = 0, product = 0;

	if (!id || strlen(id) != 7) {
		set_err(b, -EINVAL);
		return;
	}
	/* Three letters, 5 bits each ('A' = 1), big-endian in bytes 0-1. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			set_err(b, -EINVAL);
			return;
		}
		vendor = (vendor << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	/* Four hex digits, big-endian in bytes 2-3. */
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);

		if (d < 0) {
			set_err(b, -EINVAL);
			return;
		}
		product = (product << 4) | (uint32_t)d;
	}
	uint8_t bytes[5] = {AML_DWORD_PREFIX, (uint8_t)(vendor >> 8),
			    (uint8_t)vendor, (uint8_t)(product >> 8),
			    (uint8_t)product};
	vmm_aml_bytes(b, bytes, sizeof(bytes));
}

void vmm_aml_name_begin(struct vmm_aml_builder *b, const char *name)
{
	put8(b, AML_NAME_OP);
	vmm_aml_name_string(b, name);
}

/* Reserve a 4-byte PkgLength and remember where the contents begin. */
static void open_pkg(struct vmm_aml_builder *b, bool is_buffer)
{
	if (b->err)
		return;
	if (b->depth == VMM_AML_MAX_DEPTH) {
		set_err(b, -E2BIG);
		return;
	}
	size_t at = b->len;

	if (!reserve(b, AML_PKGLENGTH_BYTES))
		return;
	b->open[b->depth] = at;
	b->content[b->depth] = b->len;
	b->is_buffer[b->depth] = is_buffer;
	b->depth++;
}

/* Encode the innermost PkgLength and move the contents back over slack. */
static void close_pkg(struct vmm_aml_builder *b)
{
	uint8_t enc[4];
	int n;

	if (b->err)
		return;
	if (b->depth == 0) {
		set_err(b, -EINVAL);
		return;
	}
	b->depth--;
	size_t at = b->open[b->depth];
	size_t start = b->content[b->depth];
	size_t content = b->len - start;

	n = vmm_aml_pkglength_encode(content, enc);
	if (n < 0) {
		set_err(b, n);
		return;
	}
	memcpy(b->buf + at, enc, (size_t)n);
	memmove(b->buf + at + n, b->buf + start, content);
	b->len -= AML_PKGLENGTH_BYTES - (size_t)n;
}

void vmm_aml_scope_open(struct vmm_aml_builder *b, const char *path)
{
	put8(b, AML_SCOPE_OP);
	open_pkg(b, false);
	vmm_aml_name_string(b, path);
}

void vmm_aml_device_open(struct vmm_aml_builder *b, const char *name)
{
	put8(b, AML_EXT_OP_PREFIX);
	put8(b, AML_DEVICE_OP);
	open_pkg(b, false);
	vmm_aml_name_string(b, name);
}

void vmm_aml_package_open(struct vmm_aml_builder *b, unsigned int count)
{
	if (count > UINT8_MAX) {
		set_err(b, -EINVAL);
		return;
	}
	put8(b, AML_PACKAGE_OP);
	open_pkg(b, false);
	put8(b, (uint8_t)count);
}

void vmm_aml_buffer_open(struct vmm_aml_builder *b)
{
	put8(b, AML_BUFFER_OP);
	open_pkg(b, true);
}

void vmm_aml_close(struct vmm_aml_builder *b)
{
	if (!b->err && b->depth && b->is_buffer[b->depth - 1]) {
		set_err(b, -EINVAL);
		return;
	}
	close_pkg(b);
}

void vmm_aml_buffer_close(struct vmm_aml_builder *b)
{
	uint8_t size_enc[9];
	struct vmm_aml_builder tmp;

	if (b->err)
		return;
	if (b->depth == 0 || !b->is_buffer[b->depth - 1]) {
		set_err(b, -EINVAL);
		return;
	}
	/* BufferSize goes before the byte list: encode it, then insert. */
	size_t start = b->content[b->depth - 1];
	size_t bytes = b->len - start;

	vmm_aml_init(&tmp, size_enc, sizeof(size_enc));
	vmm_aml_integer(&tmp, bytes);
	if (tmp.err || !reserve(b, tmp.len)) {
		set_err(b, tmp.err ? tmp.err : -ENOSPC);
		return;
	}
	memmove(b->buf + start + tmp.len, b->buf + start, bytes);
	memcpy(b->buf + start, size_enc, tmp.len);
	close_pkg(b);
}

void vmm_aml_res_memory32_fixed(struct vmm_aml_builder *b, bool writeable,
				uint32_t base, uint32_t size)
{
	/* §6.4.3.4: tag, length 9 (u16), information (bit 0: writeable). */
	put8(b, RES_MEMORY32_FIXED);
	put_le(b, 9, 2);
	put8(b, writeable ? 1 : 0);
	put_le(b, base, 4);
	put_le(b, size, 4);
}

void vmm_aml_res_interrupt(struct vmm_aml_builder *b, bool level, uint32_t gsi)
{
	/*
	 * §6.4.3.6: flags bit 0 consumer, bit 1 edge (0 = level), bit 2
	 * active low, bit 3 shared; then a table of one interrupt.
	 */
	uint8_t flags = 0x01 | (level ? 0 : 0x02);

	put8(b, RES_EXT_INTERRUPT);
	put_le(b, 6, 2);
	put8(b, flags);
	put8(b, 1);
	put_le(b, gsi, 4);
}

void vmm_aml_res_io(struct vmm_aml_builder *b, uint16_t port, uint8_t align,
		    uint8_t len)
{
	/* §6.4.2.5: information bit 0 = 16-bit decode; min, max, align, len. */
	put8(b, RES_IO);
	put8(b, 1);
	put_le(b, port, 2);
	put_le(b, port, 2);
	put8(b, align);
	put8(b, len);
}

void vmm_aml_res_irq_noflags(struct vmm_aml_builder *b, unsigned int irq)
{
	/* §6.4.2.1: a 16-bit mask of ISA IRQs. */
	if (irq > 15) {
		set_err(b, -EINVAL);
		return;
	}
	put8(b, RES_IRQ_NOFLAGS);
	put_le(b, 1u << irq, 2);
}

void vmm_aml_res_end(struct vmm_aml_builder *b)
{
	uint8_t end[2] = {RES_END_TAG, 0};

	vmm_aml_bytes(b, end, sizeof(end));
}

/* The common head of an address space descriptor, then the five fields
 * (granularity, min, max, translation, length) of @w bytes each. */
static void res_address(struct vmm_aml_builder *b, uint8_t tag, size_t w,
			uint8_t type, uint8_t tflags, uint64_t min,
			uint64_t max, uint64_t len)
{
	put8(b, tag);
	put_le(b, 3 + 5 * w, 2);
	put8(b, type);
	put8(b, ADDR_MIF_MAF);
	put8(b, tflags);
	put_le(b, 0, w); /* granularity */
	put_le(b, min, w);
	put_le(b, max, w);
	put_le(b, 0, w); /* translation */
	put_le(b, len, w);
}

void vmm_aml_res_word_bus(struct vmm_aml_builder *b, uint16_t min, uint16_t max)
{
	res_address(b, RES_WORD_ADDRESS, 2, ADDR_TYPE_BUS, 0, min, max,
		    (uint64_t)max - min + 1);
}

void vmm_aml_res_dword_memory(struct vmm_aml_builder *b, bool cacheable,
			      uint32_t base, uint32_t len)
{
	res_address(b, RES_DWORD_ADDRESS, 4, ADDR_TYPE_MEMORY,
		    ADDR_MEM_RW | (cacheable ? ADDR_MEM_CACHE : 0), base,
		    (uint64_t)base + len - 1, len);
}

void vmm_aml_res_qword_memory(struct vmm_aml_builder *b, bool cacheable,
			      uint64_t base, uint64_t len)
{
	res_address(b, RES_QWORD_ADDRESS, 8, ADDR_TYPE_MEMORY,
		    ADDR_MEM_RW | (cacheable ? ADDR_MEM_CACHE : 0), base,
		    base + len - 1, len);
}
