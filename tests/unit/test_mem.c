/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/mem.c: region bookkeeping, the translation edge cases a
 * hostile guest aims at (ends, holes, wrap), reads and writes across
 * adjacent regions, fd sharing, vhost-user address translation, the
 * little-endian helpers, and the region cache of the virtqueue hot path
 * (struct vdk_mem_cache, vdk_mem_translate_fill()).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <vdk/mem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096ull

static struct vdk_mem *new_mem(void)
{
	int err = -1;
	struct vdk_mem *mem = vdk_mem_new(&err);

	assert_non_null(mem);
	assert_int_equal(err, 0);
	return mem;
}

static void test_empty_map(void **state)
{
	struct vdk_mem *mem = new_mem();
	uint8_t b;
	void *hva = NULL;

	(void)state;
	assert_int_equal(vdk_mem_num_regions(mem), 0);
	assert_null(vdk_mem_region_at(mem, 0));
	assert_null(vdk_mem_find(mem, 0));
	assert_null(vdk_mem_translate(mem, 0, 1));
	assert_int_equal(vdk_mem_translate_clamped(mem, 0, 1, &hva), 0);
	assert_int_equal(vdk_mem_read(mem, 0, &b, 1), -EFAULT);
	assert_int_equal(vdk_mem_write(mem, 0, &b, 1), -EFAULT);
	vdk_mem_free(mem);
	vdk_mem_free(NULL);
}

/* One region at [0x10000, 0x14000): inside, edges and past the end. */
static void test_translate_edges(void **state)
{
	const uint64_t base = 0x10000, size = 4 * PAGE, end = base + size;
	struct vdk_mem *mem = new_mem();
	const struct vdk_mem_region *r;
	uint8_t *hva;

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, base, size, "t"), 0);
	r = vdk_mem_region_at(mem, 0);
	assert_non_null(r);
	assert_int_equal(r->gpa, base);
	assert_int_equal(r->size, size);
	assert_true(r->fd >= 0);
	hva = r->hva;

	/* Whole region, start, middle, last byte. */
	assert_ptr_equal(vdk_mem_translate(mem, base, size), hva);
	assert_ptr_equal(vdk_mem_translate(mem, base, 1), hva);
	assert_ptr_equal(vdk_mem_translate(mem, base + 100, 16), hva + 100);
	assert_ptr_equal(vdk_mem_translate(mem, end - 1, 1), hva + size - 1);
	assert_ptr_equal(vdk_mem_translate(mem, end - 4, 4), hva + size - 4);
	/* len 0 only checks the address. */
	assert_ptr_equal(vdk_mem_translate(mem, end - 1, 0), hva + size - 1);
	assert_null(vdk_mem_translate(mem, end, 0));

	/* At the end, crossing the end, before the start. */
	assert_null(vdk_mem_translate(mem, end, 1));
	assert_null(vdk_mem_translate(mem, end - 4, 5));
	assert_null(vdk_mem_translate(mem, base, size + 1));
	assert_null(vdk_mem_translate(mem, base - 1, 1));
	assert_null(vdk_mem_translate(mem, base - 1, 2));
	assert_null(vdk_mem_translate(mem, 0, 1));

	/* Wrapping ranges, including ones that would wrap back into RAM. */
	assert_null(vdk_mem_translate(mem, UINT64_MAX, 1));
	assert_null(vdk_mem_translate(mem, UINT64_MAX, 2));
	assert_null(vdk_mem_translate(mem, base, UINT64_MAX));
	assert_null(vdk_mem_translate(mem, base + 8, UINT64_MAX - 7));
	assert_null(vdk_mem_translate(mem, end - 1, UINT64_MAX));

	assert_ptr_equal(vdk_mem_find(mem, end - 1), r);
	assert_null(vdk_mem_find(mem, end));
	assert_null(vdk_mem_find(mem, base - 1));
	vdk_mem_free(mem);
}

static void test_translate_clamped(void **state)
{
	struct vdk_mem *mem = new_mem();
	uint8_t *a, *b;
	void *hva = NULL;

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, 0, PAGE, NULL), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, PAGE, PAGE, NULL), 0);
	a = vdk_mem_region_at(mem, 0)->hva;
	b = vdk_mem_region_at(mem, 1)->hva;

	assert_int_equal(vdk_mem_translate_clamped(mem, 100, 50, &hva), 50);
	assert_ptr_equal(hva, a + 100);
	/* Clamped at the end of the first region. */
	assert_int_equal(vdk_mem_translate_clamped(mem, PAGE - 10, 100, &hva),
			 10);
	assert_ptr_equal(hva, a + PAGE - 10);
	assert_int_equal(vdk_mem_translate_clamped(mem, PAGE, 100, &hva), 100);
	assert_ptr_equal(hva, b);
	/* Hole, zero length, wrap. */
	assert_int_equal(vdk_mem_translate_clamped(mem, 2 * PAGE, 1, &hva), 0);
	assert_int_equal(vdk_mem_translate_clamped(mem, 0, 0, &hva), 0);
	assert_int_equal(
		vdk_mem_translate_clamped(mem, 16, UINT64_MAX - 8, &hva), 0);
	vdk_mem_free(mem);
}

/* Adjacent regions: readable across with vdk_mem_read, not translatable. */
static void test_adjacent_regions(void **state)
{
	static uint8_t big[4 * PAGE];
	struct vdk_mem *mem = new_mem();
	uint8_t in[64], out[64];

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, 0x1000, PAGE, "a"), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, 0x2000, PAGE, "b"), 0);
	/* A third region after a hole. */
	assert_int_equal(vdk_mem_add_memfd(mem, 0x4000, PAGE, "c"), 0);

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(vdk_mem_write(mem, 0x2000 - 32, in, sizeof(in)), 0);
	memset(out, 0, sizeof(out));
	assert_int_equal(vdk_mem_read(mem, 0x2000 - 32, out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	/* Each half landed in its own region. */
	assert_memory_equal(vdk_mem_region_at(mem, 0)->hva + PAGE - 32, in, 32);
	assert_memory_equal(vdk_mem_region_at(mem, 1)->hva, in + 32, 32);

	/* One pointer cannot cover two mappings. */
	assert_null(vdk_mem_translate(mem, 0x2000 - 32, 64));
	assert_non_null(vdk_mem_translate(mem, 0x2000 - 32, 32));

	/* Reading into the hole after region b fails. */
	assert_int_equal(vdk_mem_read(mem, 0x3000 - 8, out, 16), -EFAULT);
	/* A failed write writes nothing, not even the mapped part. */
	memset(vdk_mem_region_at(mem, 1)->hva + PAGE - 8, 0xaa, 8);
	memset(in, 0x55, sizeof(in));
	assert_int_equal(vdk_mem_write(mem, 0x3000 - 8, in, 16), -EFAULT);
	for (int i = 0; i < 8; i++)
		assert_int_equal(vdk_mem_region_at(mem, 1)->hva[PAGE - 8 + i],
				 0xaa);
	/* Both adjacent regions whole: fine; on into the hole: not. */
	assert_int_equal(vdk_mem_read(mem, 0x1000, big, 2 * PAGE), 0);
	assert_int_equal(vdk_mem_write(mem, 0x1000, big, 2 * PAGE), 0);
	assert_int_equal(vdk_mem_read(mem, 0x1000, big, 2 * PAGE + 1), -EFAULT);
	assert_int_equal(vdk_mem_read(mem, 0x1000, big, sizeof(big)), -EFAULT);
	/* Wrap, and an empty read. */
	assert_int_equal(vdk_mem_read(mem, UINT64_MAX - 1, out, 4), -EFAULT);
	assert_int_equal(vdk_mem_read(mem, 0x1000, out, 0), 0);
	vdk_mem_free(mem);
}

static void test_add_errors(void **state)
{
	struct vdk_mem *mem = new_mem();
	static uint8_t buf[4 * PAGE];

	(void)state;
	/* Zero size, unaligned, wrapping. */
	assert_int_equal(vdk_mem_add_memfd(mem, 0, 0, NULL), -EINVAL);
	assert_int_equal(vdk_mem_add_memfd(mem, 100, PAGE, NULL), -EINVAL);
	assert_int_equal(vdk_mem_add_memfd(mem, 0, 100, NULL), -EINVAL);
	assert_int_equal(
		vdk_mem_add_memfd(mem, UINT64_MAX - PAGE + 1, 2 * PAGE, NULL),
		-EINVAL);
	assert_int_equal(vdk_mem_add_host(mem, 0, 0, buf), -EINVAL);
	assert_int_equal(vdk_mem_add_host(mem, UINT64_MAX, 2, buf), -EINVAL);
	assert_int_equal(vdk_mem_add_host(mem, 0, 16, NULL), -EINVAL);
	assert_int_equal(vdk_mem_num_regions(mem), 0);

	/* Overlap on every side. */
	assert_int_equal(vdk_mem_add_host(mem, 0x10000, 0x1000, buf), 0);
	assert_int_equal(vdk_mem_add_host(mem, 0x10000, 0x1000, buf), -EEXIST);
	assert_int_equal(vdk_mem_add_host(mem, 0x0f000, 0x1001, buf), -EEXIST);
	assert_int_equal(vdk_mem_add_host(mem, 0x10fff, 0x10, buf), -EEXIST);
	assert_int_equal(vdk_mem_add_host(mem, 0x10100, 0x10, buf), -EEXIST);
	assert_int_equal(vdk_mem_add_host(mem, 0x0f000, 0x3000, buf), -EEXIST);
	assert_int_equal(vdk_mem_add_memfd(mem, 0x10000, PAGE, NULL), -EEXIST);
	/* Touching is fine. */
	assert_int_equal(vdk_mem_add_host(mem, 0x0f000, 0x1000, buf + PAGE), 0);
	assert_int_equal(vdk_mem_add_host(mem, 0x11000, 0x1000, buf + 2 * PAGE),
			 0);
	assert_int_equal(vdk_mem_num_regions(mem), 3);
	assert_int_equal(vdk_mem_region_at(mem, 0)->gpa, 0x0f000);
	assert_int_equal(vdk_mem_region_at(mem, 1)->gpa, 0x10000);
	assert_int_equal(vdk_mem_region_at(mem, 2)->gpa, 0x11000);
	assert_int_equal(vdk_mem_region_at(mem, 1)->fd, -1);
	vdk_mem_free(mem); /* must not unmap buf */
	buf[0] = 1;
}

static void test_remove(void **state)
{
	struct vdk_mem *mem = new_mem();

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, 0, PAGE, NULL), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, 2 * PAGE, PAGE, NULL), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, 4 * PAGE, PAGE, NULL), 0);

	/* Only an exact match is removed. */
	assert_int_equal(vdk_mem_remove(mem, 2 * PAGE, 2 * PAGE), -ENOENT);
	assert_int_equal(vdk_mem_remove(mem, 2 * PAGE + 1, PAGE - 1), -ENOENT);
	assert_int_equal(vdk_mem_remove(mem, 3 * PAGE, PAGE), -ENOENT);
	assert_int_equal(vdk_mem_remove(mem, 2 * PAGE, PAGE), 0);
	assert_int_equal(vdk_mem_remove(mem, 2 * PAGE, PAGE), -ENOENT);

	assert_int_equal(vdk_mem_num_regions(mem), 2);
	assert_null(vdk_mem_translate(mem, 2 * PAGE, 1));
	assert_non_null(vdk_mem_translate(mem, 0, 1));
	assert_non_null(vdk_mem_translate(mem, 4 * PAGE, 1));
	assert_int_equal(vdk_mem_region_at(mem, 1)->gpa, 4 * PAGE);
	/* The slot can be reused. */
	assert_int_equal(vdk_mem_add_memfd(mem, 2 * PAGE, PAGE, NULL), 0);
	assert_int_equal(vdk_mem_region_at(mem, 1)->gpa, 2 * PAGE);
	vdk_mem_free(mem);
}

/* The memfd is shared: another mapping of the fd sees guest writes. */
static void test_fd_sharing(void **state)
{
	struct vdk_mem *mem = new_mem();
	const struct vdk_mem_region *r;
	uint8_t *other;
	uint32_t v = 0;

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, 0x100000, 2 * PAGE, "share"),
			 0);
	r = vdk_mem_find(mem, 0x100000);
	assert_non_null(r);
	other = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		     0);
	assert_true(other != MAP_FAILED);

	memcpy(r->hva + PAGE + 3, "virtio", 6);
	assert_memory_equal(other + PAGE + 3, "virtio", 6);
	assert_int_equal(vdk_mem_write_le32(mem, 0x100010, 0xdeadbeef), 0);
	assert_int_equal(other[0x10], 0xef);
	assert_int_equal(other[0x13], 0xde);
	/* And the other way round. */
	other[0x20] = 0x34;
	other[0x21] = 0x12;
	assert_int_equal(vdk_mem_read_le32(mem, 0x100020, &v), 0);
	assert_int_equal(v, 0x1234);
	munmap(other, 2 * PAGE);
	vdk_mem_free(mem);
}

/* vhost-user style: map someone else's fd from a non-page-aligned offset. */
static void test_add_fd_unaligned_offset(void **state)
{
	const uint64_t off = PAGE + 0x123, size = 0x2000;
	struct vdk_mem *mem = new_mem();
	const struct vdk_mem_region *r;
	uint8_t *front;
	uint64_t gpa = 0;
	int fd;

	(void)state;
	fd = memfd_create("frontend", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 * PAGE), 0);
	front = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(front != MAP_FAILED);
	for (uint64_t i = 0; i < 4 * PAGE; i++)
		front[i] = (uint8_t)(i ^ (i >> 8));

	/* Invalid arguments leave the fd with the caller. */
	assert_int_equal(vdk_mem_add_fd(mem, 0, 0, fd, off, 0), -EINVAL);
	assert_int_equal(vdk_mem_add_fd(mem, 0, size, -1, off, 0), -EINVAL);
	assert_int_equal(vdk_mem_add_fd(mem, 0, size, fd, UINT64_MAX - 8, 0),
			 -EINVAL);
	assert_int_equal(vdk_mem_add_fd(mem, 0, size, fd, off, UINT64_MAX - 8),
			 -EINVAL);
	assert_int_equal(vdk_mem_add_fd(mem, UINT64_MAX - 8, size, fd, off, 0),
			 -EINVAL);

	assert_int_equal(
		vdk_mem_add_fd(mem, 0x80000000, size, fd, off, 0x7f0000000123),
		0);
	r = vdk_mem_region_at(mem, 0);
	assert_int_equal(r->fd, fd);
	assert_int_equal(r->fd_offset, off);
	assert_int_equal(((uintptr_t)r->map_base) % PAGE, 0);
	assert_int_equal(r->hva - (uint8_t *)r->map_base, 0x123);
	/* The byte at gpa is the byte at fd offset off. */
	assert_int_equal(*(uint8_t *)vdk_mem_translate(mem, 0x80000000, 1),
			 front[off]);
	assert_memory_equal(vdk_mem_translate(mem, 0x80000000, size),
			    front + off, size);
	assert_null(vdk_mem_translate(mem, 0x80000000, size + 1));

	/* user_to_gpa: frontend addresses to guest-physical. */
	assert_int_equal(vdk_mem_user_to_gpa(mem, 0x7f0000000123, 16, &gpa), 0);
	assert_int_equal(gpa, 0x80000000);
	assert_int_equal(
		vdk_mem_user_to_gpa(mem, 0x7f0000000123 + 0x100, 0x10, &gpa),
		0);
	assert_int_equal(gpa, 0x80000100);
	assert_int_equal(
		vdk_mem_user_to_gpa(mem, 0x7f0000000123 + size - 1, 1, &gpa),
		0);
	assert_int_equal(
		vdk_mem_user_to_gpa(mem, 0x7f0000000123 + size - 1, 2, &gpa),
		-EFAULT);
	assert_int_equal(vdk_mem_user_to_gpa(mem, 0x7f0000000122, 1, &gpa),
			 -EFAULT);
	assert_int_equal(
		vdk_mem_user_to_gpa(mem, 0x7f0000000123, UINT64_MAX, &gpa),
		-EFAULT);

	/* remove closes the fd the map took. */
	assert_int_equal(vdk_mem_remove(mem, 0x80000000, size), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	munmap(front, 4 * PAGE);
	vdk_mem_free(mem);
}

static void test_le_helpers(void **state)
{
	struct vdk_mem *mem = new_mem();
	uint8_t *p;
	uint16_t v16 = 0;
	uint32_t v32 = 0;
	uint64_t v64 = 0;

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, 0, PAGE, NULL), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, PAGE, PAGE, NULL), 0);
	p = vdk_mem_region_at(mem, 0)->hva;

	/* Unaligned stores are little-endian byte by byte. */
	assert_int_equal(vdk_mem_write_le16(mem, 1, 0xa1b2), 0);
	assert_int_equal(p[1], 0xb2);
	assert_int_equal(p[2], 0xa1);
	assert_int_equal(vdk_mem_write_le32(mem, 5, 0x01020304), 0);
	assert_int_equal(p[5], 0x04);
	assert_int_equal(p[8], 0x01);
	assert_int_equal(vdk_mem_write_le64(mem, 11, 0x1122334455667788ull), 0);
	assert_int_equal(p[11], 0x88);
	assert_int_equal(p[18], 0x11);

	assert_int_equal(vdk_mem_read_le16(mem, 1, &v16), 0);
	assert_int_equal(v16, 0xa1b2);
	assert_int_equal(vdk_mem_read_le32(mem, 5, &v32), 0);
	assert_int_equal(v32, 0x01020304);
	assert_int_equal(vdk_mem_read_le64(mem, 11, &v64), 0);
	assert_int_equal(v64, 0x1122334455667788ull);

	/* Straddling two adjacent regions works. */
	assert_int_equal(vdk_mem_write_le64(mem, PAGE - 3, 0x0807060504030201),
			 0);
	assert_int_equal(vdk_mem_region_at(mem, 1)->hva[0], 0x04);
	assert_int_equal(vdk_mem_read_le64(mem, PAGE - 3, &v64), 0);
	assert_int_equal(v64, 0x0807060504030201ull);

	/* Past the end: error, output untouched. */
	v16 = 0x5555;
	assert_int_equal(vdk_mem_read_le16(mem, 2 * PAGE - 1, &v16), -EFAULT);
	assert_int_equal(v16, 0x5555);
	assert_int_equal(vdk_mem_read_le32(mem, 2 * PAGE, &v32), -EFAULT);
	assert_int_equal(vdk_mem_read_le64(mem, UINT64_MAX - 3, &v64), -EFAULT);
	assert_int_equal(vdk_mem_write_le16(mem, 2 * PAGE - 1, 1), -EFAULT);
	assert_int_equal(vdk_mem_write_le32(mem, 2 * PAGE - 3, 1), -EFAULT);
	assert_int_equal(vdk_mem_write_le64(mem, UINT64_MAX, 1), -EFAULT);
	vdk_mem_free(mem);
}

/* Many regions, added out of order: every lookup finds the right one. */
static void test_many_regions(void **state)
{
	const size_t n = VDK_MEM_MAX_REGIONS;
	struct vdk_mem *mem = new_mem();
	uint8_t *buf = calloc(n, 64);
	static uint8_t extra[64];

	(void)state;
	assert_non_null(buf);
	/* Region i: gpa 0x1000 * i + 0x100, 64 bytes; holes between. */
	for (size_t k = 0; k < n; k++) {
		size_t i = (k * 97) % n; /* 97 is coprime with 509 */

		assert_int_equal(vdk_mem_add_host(mem, 0x1000 * i + 0x100, 64,
						  buf + 64 * i),
				 0);
	}
	assert_int_equal(vdk_mem_num_regions(mem), n);
	assert_int_equal(vdk_mem_add_host(mem, 0x10000000, 64, extra), -ENOSPC);

	for (size_t i = 0; i < n; i++) {
		uint64_t g = 0x1000 * i + 0x100;
		const struct vdk_mem_region *r = vdk_mem_region_at(mem, i);

		assert_int_equal(r->gpa, g);
		assert_ptr_equal(vdk_mem_find(mem, g), r);
		assert_ptr_equal(vdk_mem_find(mem, g + 63), r);
		assert_null(vdk_mem_find(mem, g - 1));
		assert_null(vdk_mem_find(mem, g + 64));
		assert_ptr_equal(vdk_mem_translate(mem, g + 10, 54),
				 buf + 64 * i + 10);
		assert_null(vdk_mem_translate(mem, g + 10, 55));
	}
	/* Remove every other region; the rest still resolve. */
	for (size_t i = 0; i < n; i += 2)
		assert_int_equal(vdk_mem_remove(mem, 0x1000 * i + 0x100, 64),
				 0);
	for (size_t i = 0; i < n; i++) {
		void *p = vdk_mem_translate(mem, 0x1000 * i + 0x100, 1);

		if (i % 2)
			assert_ptr_equal(p, buf + 64 * i);
		else
			assert_null(p);
	}
	vdk_mem_free(mem);
	free(buf);
}

/* ---- region cache (struct vdk_mem_cache) and vdk_mem_translate_fill ---- */

/* The cache must hold exactly region @r. */
static void assert_cache_is(const struct vdk_mem_cache *c,
			    const struct vdk_mem_region *r)
{
	assert_int_equal(c->gpa, r->gpa);
	assert_int_equal(c->size, r->size);
	assert_ptr_equal(c->hva, r->hva);
}

/* An empty cache contains nothing; a filled one exactly its region. */
static void test_cache_contains_edges(void **state)
{
	const uint64_t base = 0x10000, size = 4 * PAGE, end = base + size;
	struct vdk_mem *mem = new_mem();
	const struct vdk_mem_region *r;
	struct vdk_mem_cache c = {base, size, (uint8_t *)&c};

	(void)state;
	vdk_mem_cache_clear(&c);
	assert_int_equal(c.size, 0);
	assert_null(c.hva);
	assert_false(vdk_mem_cache_contains(&c, 0, 1));
	assert_false(vdk_mem_cache_contains(&c, 0, 0));
	assert_false(vdk_mem_cache_contains(&c, base, 1));
	assert_false(vdk_mem_cache_contains(&c, UINT64_MAX, 1));

	assert_int_equal(vdk_mem_add_memfd(mem, base, size, "c"), 0);
	r = vdk_mem_region_at(mem, 0);
	assert_ptr_equal(vdk_mem_translate_fill(mem, base + 8, 8, &c),
			 r->hva + 8);
	assert_cache_is(&c, r);

	/* Inside: the whole region, first byte, last bytes. */
	assert_true(vdk_mem_cache_contains(&c, base, size));
	assert_true(vdk_mem_cache_contains(&c, base, 1));
	assert_true(vdk_mem_cache_contains(&c, end - 1, 1));
	assert_true(vdk_mem_cache_contains(&c, end - 16, 16));
	assert_ptr_equal(vdk_mem_cache_translate(&c, base), r->hva);
	assert_ptr_equal(vdk_mem_cache_translate(&c, end - 1),
			 r->hva + size - 1);
	assert_ptr_equal(vdk_mem_cache_translate(&c, base + 0x1234),
			 r->hva + 0x1234);
	/* Zero length is never contained, even inside. */
	assert_false(vdk_mem_cache_contains(&c, base, 0));
	assert_false(vdk_mem_cache_contains(&c, base + 100, 0));
	/* Just below and just above the region. */
	assert_false(vdk_mem_cache_contains(&c, base - 1, 1));
	assert_false(vdk_mem_cache_contains(&c, base - 1, 2));
	assert_false(vdk_mem_cache_contains(&c, end, 1));
	assert_false(vdk_mem_cache_contains(&c, end - 1, 2));
	assert_false(vdk_mem_cache_contains(&c, base, size + 1));
	assert_false(vdk_mem_cache_contains(&c, 0, 1));
	/* Ranges that wrap the 64-bit space, some back into the region. */
	assert_false(vdk_mem_cache_contains(&c, UINT64_MAX, 1));
	assert_false(vdk_mem_cache_contains(&c, UINT64_MAX, base + 2));
	assert_false(vdk_mem_cache_contains(&c, base + 8, UINT64_MAX - 7));
	assert_false(vdk_mem_cache_contains(&c, base, UINT64_MAX));
	assert_false(vdk_mem_cache_contains(&c, end - 1, UINT64_MAX));
	assert_false(
		vdk_mem_cache_contains(&c, base - 0x100, 0x100 + size / 2));
	vdk_mem_free(mem);
}

/* A region ending at the top of the address space (2^64 - 1 exclusive). */
static void test_cache_top_of_address_space(void **state)
{
	static uint8_t top[PAGE];
	const uint64_t base = UINT64_MAX - PAGE;
	struct vdk_mem *mem = new_mem();
	struct vdk_mem_cache c;

	(void)state;
	vdk_mem_cache_clear(&c);
	assert_int_equal(vdk_mem_add_host(mem, base, PAGE, top), 0);
	assert_ptr_equal(vdk_mem_translate_fill(mem, base, PAGE, &c), top);
	assert_cache_is(&c, vdk_mem_region_at(mem, 0));
	assert_true(vdk_mem_cache_contains(&c, UINT64_MAX - 1, 1));
	assert_ptr_equal(vdk_mem_cache_translate(&c, UINT64_MAX - 1),
			 top + PAGE - 1);
	assert_false(vdk_mem_cache_contains(&c, UINT64_MAX - 1, 2));
	assert_false(vdk_mem_cache_contains(&c, UINT64_MAX, 1));
	/* Low addresses are "below" the region: huge offsets, refused. */
	assert_false(vdk_mem_cache_contains(&c, 0, 1));
	assert_false(vdk_mem_cache_contains(&c, 0, PAGE));
	assert_false(vdk_mem_cache_contains(&c, base - 1, 2));
	/* Refused by the map too, whatever the length. */
	assert_null(vdk_mem_translate_fill(mem, UINT64_MAX - 1, 2, &c));
	assert_null(vdk_mem_translate_fill(mem, UINT64_MAX, 1, &c));
	assert_null(vdk_mem_translate_fill(mem, base, UINT64_MAX, &c));
	assert_cache_is(&c, vdk_mem_region_at(mem, 0));
	vdk_mem_free(mem);
}

/*
 * Two regions with a hole between and a third adjacent to the first: a
 * miss in the cached region refills it from the map; a failed fill
 * (straddling, hole, past the end, wrapping) leaves it as it was.
 */
static void test_translate_fill_refill(void **state)
{
	const uint64_t a = 0x10000, b = 0x40000, c_gpa = a + 2 * PAGE;
	struct vdk_mem *mem = new_mem();
	const struct vdk_mem_region *ra, *rb, *rc;
	struct vdk_mem_cache c, saved;

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, a, 2 * PAGE, "a"), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, b, PAGE, "b"), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, c_gpa, PAGE, "c"), 0);
	ra = vdk_mem_find(mem, a);
	rb = vdk_mem_find(mem, b);
	rc = vdk_mem_find(mem, c_gpa);
	vdk_mem_cache_clear(&c);

	/* Miss (empty), fill A; an A address hits, a B address misses. */
	assert_false(vdk_mem_cache_contains(&c, a + 16, 16));
	assert_ptr_equal(vdk_mem_translate_fill(mem, a + 16, 16, &c),
			 ra->hva + 16);
	assert_cache_is(&c, ra);
	assert_true(vdk_mem_cache_contains(&c, a + 100, 50));
	assert_false(vdk_mem_cache_contains(&c, b + 100, 50));
	/* Refill with B: now B hits and A misses. */
	assert_ptr_equal(vdk_mem_translate_fill(mem, b + 100, 50, &c),
			 rb->hva + 100);
	assert_cache_is(&c, rb);
	assert_true(vdk_mem_cache_contains(&c, b + 100, 50));
	assert_false(vdk_mem_cache_contains(&c, a + 100, 50));
	assert_ptr_equal(vdk_mem_cache_translate(&c, b + PAGE - 1),
			 rb->hva + PAGE - 1);
	/* C is adjacent to A but is a region of its own. */
	assert_ptr_equal(vdk_mem_translate_fill(mem, c_gpa, PAGE, &c), rc->hva);
	assert_cache_is(&c, rc);
	assert_false(vdk_mem_cache_contains(&c, c_gpa - 1, 1));
	/* Exactly a whole region. */
	assert_ptr_equal(vdk_mem_translate_fill(mem, a, 2 * PAGE, &c), ra->hva);
	assert_cache_is(&c, ra);

	/* Failures return NULL and do not touch the cache. */
	saved = c;
	assert_null(vdk_mem_translate_fill(mem, c_gpa - 8, 16, &c)); /* A|C */
	assert_null(vdk_mem_translate_fill(mem, a, 3 * PAGE, &c));
	assert_null(vdk_mem_translate_fill(mem, b - 1, 2, &c)); /* hole|B */
	assert_null(vdk_mem_translate_fill(mem, b + PAGE - 4, 8, &c));
	assert_null(vdk_mem_translate_fill(mem, b + PAGE, 1, &c));
	assert_null(vdk_mem_translate_fill(mem, 0x100000, 1, &c));
	assert_null(vdk_mem_translate_fill(mem, UINT64_MAX, 1, &c));
	assert_null(vdk_mem_translate_fill(mem, UINT64_MAX, 2, &c));
	assert_null(vdk_mem_translate_fill(mem, b + 8, UINT64_MAX - 7, &c));
	assert_null(vdk_mem_translate_fill(mem, a, UINT64_MAX, &c));
	assert_null(vdk_mem_translate_fill(mem, b + PAGE, 0, &c));
	assert_memory_equal(&c, &saved, sizeof(c));

	/* Zero length: as vdk_mem_translate, only the address is checked,
	 * and the region holding it is cached. */
	assert_ptr_equal(vdk_mem_translate_fill(mem, b + 5, 0, &c),
			 rb->hva + 5);
	assert_cache_is(&c, rb);
	assert_false(vdk_mem_cache_contains(&c, b + 5, 0));
	vdk_mem_free(mem);
}

/*
 * Differential: over every combination of interesting addresses and
 * lengths, vdk_mem_translate_fill() answers as vdk_mem_translate(), and a
 * cache hit never disagrees with the map.
 */
static void test_cache_matches_translate(void **state)
{
	const uint64_t a = 0x10000, b = a + PAGE, d = 0x80000;
	const uint64_t gpas[] = {
		0,	    a - 1,	    a,
		a + 1,	    a + PAGE / 2,   b - 1,
		b,	    b + 1,	    b + PAGE - 1,
		b + PAGE,   d - 1,	    d,
		d + 7,	    d + PAGE - 1,   d + PAGE,
		UINT64_MAX, UINT64_MAX - 1, 1ull << 63,
	};
	const uint64_t lens[] = {
		0,	   1,	     2,	       7,	   PAGE - 1,
		PAGE,	   PAGE + 1, 2 * PAGE, 1ull << 32, UINT64_MAX - a,
		UINT64_MAX};
	const size_t ng = sizeof(gpas) / sizeof(gpas[0]);
	const size_t nl = sizeof(lens) / sizeof(lens[0]);
	struct vdk_mem *mem = new_mem();
	unsigned hits = 0, fills = 0;

	(void)state;
	assert_int_equal(vdk_mem_add_memfd(mem, a, PAGE, "a"), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, b, PAGE, "b"), 0);
	assert_int_equal(vdk_mem_add_memfd(mem, d, PAGE, "d"), 0);
	/* Cache primed with each region in turn, then with nothing. */
	for (size_t k = 0; k <= 3; k++) {
		struct vdk_mem_cache c;

		vdk_mem_cache_clear(&c);
		if (k < 3)
			assert_non_null(vdk_mem_translate_fill(
				mem, vdk_mem_region_at(mem, k)->gpa, 1, &c));
		for (size_t i = 0; i < ng; i++) {
			for (size_t j = 0; j < nl; j++) {
				uint64_t g = gpas[i], l = lens[j];
				void *want = vdk_mem_translate(mem, g, l);
				struct vdk_mem_cache f = c;

				if (vdk_mem_cache_contains(&c, g, l)) {
					assert_non_null(want);
					assert_ptr_equal(
						vdk_mem_cache_translate(&c, g),
						want);
					hits++;
				}
				assert_ptr_equal(
					vdk_mem_translate_fill(mem, g, l, &f),
					want);
				if (want == NULL)
					continue;
				fills++;
				assert_cache_is(&f, vdk_mem_find(mem, g));
				if (l != 0)
					assert_true(vdk_mem_cache_contains(
						&f, g, l));
			}
		}
	}
	/* The grid really exercises both outcomes. */
	assert_true(hits > 20);
	assert_true(fills > hits);
	vdk_mem_free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_map),
		cmocka_unit_test(test_translate_edges),
		cmocka_unit_test(test_translate_clamped),
		cmocka_unit_test(test_adjacent_regions),
		cmocka_unit_test(test_add_errors),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_fd_sharing),
		cmocka_unit_test(test_add_fd_unaligned_offset),
		cmocka_unit_test(test_le_helpers),
		cmocka_unit_test(test_many_regions),
		cmocka_unit_test(test_cache_contains_edges),
		cmocka_unit_test(test_cache_top_of_address_space),
		cmocka_unit_test(test_translate_fill_refill),
		cmocka_unit_test(test_cache_matches_translate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
