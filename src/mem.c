/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest memory map (see <vdk/mem.h>).
 *
 * The regions live in one array sorted by guest-physical address, with no
 * two overlapping. A lookup checks the first region (the common case: most
 * guests have one or two RAM regions), then binary-searches for the last
 * region whose gpa is <= the address. Lookups never write to the map, so any
 * number of threads may translate at once.
 *
 * Range checks are written so they cannot overflow: for a region r and an
 * address a inside it, "a + len stays inside r" is "len <= r->size - (a -
 * r->gpa)", which involves no addition; "a lies in r" is "a - r->gpa <
 * r->size" (an address below r->gpa wraps to a huge offset and fails).
 * Regions themselves never wrap: gpa + size is checked when they are added.
 */
#include <vdk/mem.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct vdk_mem {
	size_t n;
	struct vdk_mem_region regions[VDK_MEM_MAX_REGIONS];
};

/* True if @gpa lies in @r. */
static inline bool region_has(const struct vdk_mem_region *r, uint64_t gpa)
{
	return gpa - r->gpa < r->size;
}

/*
 * The region holding @gpa, or NULL. O(log n). The first region is checked
 * on its own first: it is the guest's low RAM in nearly every VM.
 */
static inline const struct vdk_mem_region *mem_lookup(const struct vdk_mem *mem,
						      uint64_t gpa)
{
	const struct vdk_mem_region *r = mem->regions;
	size_t n = mem->n;

	if (n == 0)
		return NULL;
	if (region_has(r, gpa))
		return r;
	/*
	 * Narrow the window [r, r + n) around the last region whose gpa is
	 * <= @gpa: if r[half] qualifies the answer is at or after it,
	 * otherwise before it; both halves fit in the n - half kept.
	 */
	while (n > 1) {
		size_t half = n / 2;

		if (r[half].gpa <= gpa)
			r += half;
		n -= half;
	}
	return region_has(r, gpa) ? r : NULL;
}

struct vdk_mem *vdk_mem_new(int *err)
{
	struct vdk_mem *mem = calloc(1, sizeof(*mem));

	if (err)
		*err = mem ? 0 : -ENOMEM;
	return mem;
}

/* Unmap and close what the map owns in @r. */
static void region_release(struct vdk_mem_region *r)
{
	if (r->map_base)
		munmap(r->map_base, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
}

void vdk_mem_free(struct vdk_mem *mem)
{
	if (!mem)
		return;
	for (size_t i = 0; i < mem->n; i++)
		region_release(&mem->regions[i]);
	free(mem);
}

/*
 * Check that [gpa, gpa + size) is non-empty, does not wrap and overlaps no
 * region; on success set *@pos to the index it would be inserted at.
 */
static int mem_check_new(const struct vdk_mem *mem, uint64_t gpa, uint64_t size,
			 size_t *pos)
{
	size_t lo = 0, hi = mem->n, i;
	uint64_t end;

	if (size == 0 || __builtin_add_overflow(gpa, size, &end))
		return -EINVAL;
	/* lo = index of the first region that starts at or above gpa. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mem->regions[mid].gpa < gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	i = lo;
	if (i > 0 && region_has(&mem->regions[i - 1], gpa))
		return -EEXIST;
	if (i < mem->n && mem->regions[i].gpa < end)
		return -EEXIST;
	if (mem->n >= VDK_MEM_MAX_REGIONS)
		return -ENOSPC;
	*pos = i;
	return 0;
}

/* Insert @r at @pos (from mem_check_new()). */
static void mem_insert(struct vdk_mem *mem, size_t pos,
		       const struct vdk_mem_region *r)
{
	memmove(&mem->regions[pos + 1], &mem->regions[pos],
		(mem->n - pos) * sizeof(mem->regions[0]));
	mem->regions[pos] = *r;
	mem->n++;
}

static uint64_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (uint64_t)ps : 4096;
}

int vdk_mem_add_memfd(struct vdk_mem *mem, uint64_t gpa, uint64_t size,
		      const char *name)
{
	uint64_t ps = page_size();
	struct vdk_mem_region r;
	size_t pos;
	void *p;
	int fd, ret;

	if ((gpa | size) & (ps - 1) || size > SIZE_MAX || size > INT64_MAX)
		return -EINVAL;
	ret = mem_check_new(mem, gpa, size, &pos);
	if (ret)
		return ret;

	fd = memfd_create(name ? name : "vdk-guest-ram",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* Sealed against shrinking and growing: a vhost-user back-end that
	 * maps it must not be made to fault (its F_SEAL_SHRINK check). */
	if (ftruncate(fd, (off_t)size) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}

	r = (struct vdk_mem_region){
		.gpa = gpa,
		.size = size,
		.hva = p,
		.fd = fd,
		.fd_offset = 0,
		.user_addr = 0,
		.map_base = p,
		.map_len = (size_t)size,
	};
	mem_insert(mem, pos, &r);
	return 0;
}

int vdk_mem_add_fd(struct vdk_mem *mem, uint64_t gpa, uint64_t size, int fd,
		   uint64_t fd_offset, uint64_t user_addr)
{
	uint64_t ps = page_size(), map_off, delta, map_len, tmp;
	struct vdk_mem_region r;
	size_t pos;
	void *p;
	int ret;

	if (fd < 0 || size == 0 ||
	    __builtin_add_overflow(fd_offset, size, &tmp) || tmp > INT64_MAX ||
	    __builtin_add_overflow(user_addr, size, &tmp))
		return -EINVAL;
	/* mmap needs a page-aligned offset: map from the page below. */
	map_off = fd_offset & ~(ps - 1);
	delta = fd_offset - map_off;
	if (__builtin_add_overflow(size, delta, &map_len) || map_len > SIZE_MAX)
		return -EINVAL;
	ret = mem_check_new(mem, gpa, size, &pos);
	if (ret)
		return ret;

	p = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)map_off);
	if (p == MAP_FAILED)
		return -errno;

	r = (struct vdk_mem_region){
		.gpa = gpa,
		.size = size,
		.hva = (uint8_t *)p + delta,
		.fd = fd,
		.fd_offset = fd_offset,
		.user_addr = user_addr,
		.map_base = p,
		.map_len = (size_t)map_len,
	};
	mem_insert(mem, pos, &r);
	return 0;
}

int vdk_mem_add_host(struct vdk_mem *mem, uint64_t gpa, uint64_t size,
		     void *hva)
{
	struct vdk_mem_region r;
	uintptr_t end;
	size_t pos;
	int ret;

	if (!hva || size > UINTPTR_MAX ||
	    __builtin_add_overflow((uintptr_t)hva, (uintptr_t)size, &end))
		return -EINVAL;
	ret = mem_check_new(mem, gpa, size, &pos);
	if (ret)
		return ret;

	r = (struct vdk_mem_region){
		.gpa = gpa,
		.size = size,
		.hva = hva,
		.fd = -1,
		.fd_offset = 0,
		.user_addr = 0,
		.map_base = NULL,
		.map_len = 0,
	};
	mem_insert(mem, pos, &r);
	return 0;
}

int vdk_mem_remove(struct vdk_mem *mem, uint64_t gpa, uint64_t size)
{
	const struct vdk_mem_region *found = mem_lookup(mem, gpa);
	size_t i;
	struct vdk_mem_region *r;

	if (!found || found->gpa != gpa || found->size != size)
		return -ENOENT;
	i = (size_t)(found - mem->regions);
	r = &mem->regions[i];
	region_release(r);
	memmove(r, r + 1, (mem->n - i - 1) * sizeof(*r));
	mem->n--;
	return 0;
}

size_t vdk_mem_num_regions(const struct vdk_mem *mem)
{
	return mem->n;
}

const struct vdk_mem_region *vdk_mem_region_at(const struct vdk_mem *mem,
					       size_t i)
{
	return i < mem->n ? &mem->regions[i] : NULL;
}

const struct vdk_mem_region *vdk_mem_find(const struct vdk_mem *mem,
					  uint64_t gpa)
{
	return mem_lookup(mem, gpa);
}

/* Hot path: called once per descriptor by the virtqueue code. */
void *vdk_mem_translate(const struct vdk_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct vdk_mem_region *r;
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	r = mem_lookup(mem, gpa);
	if (!r)
		return NULL;
	/* gpa >= r->gpa, so end - r->gpa cannot wrap. */
	if (end - r->gpa > r->size)
		return NULL;
	return r->hva + (gpa - r->gpa);
}

void *vdk_mem_translate_fill(const struct vdk_mem *mem, uint64_t gpa,
			     uint64_t len, struct vdk_mem_cache *c)
{
	const struct vdk_mem_region *r;
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	r = mem_lookup(mem, gpa);
	if (!r || end - r->gpa > r->size)
		return NULL;
	c->gpa = r->gpa;
	c->size = r->size;
	c->hva = r->hva;
	return r->hva + (gpa - r->gpa);
}

uint64_t vdk_mem_translate_clamped(const struct vdk_mem *mem, uint64_t gpa,
				   uint64_t len, void **hva)
{
	const struct vdk_mem_region *r;
	uint64_t end, off, avail;

	if (len == 0 || __builtin_add_overflow(gpa, len, &end))
		return 0;
	r = mem_lookup(mem, gpa);
	if (!r)
		return 0;
	off = gpa - r->gpa;
	avail = r->size - off;
	*hva = r->hva + off;
	return len < avail ? len : avail;
}

/*
 * True if every byte of [gpa, gpa + len) is mapped, possibly across
 * adjacent regions. The caller has checked that the range does not wrap.
 */
static bool mem_range_mapped(const struct vdk_mem *mem, uint64_t gpa,
			     uint64_t len)
{
	const struct vdk_mem_region *r = mem_lookup(mem, gpa);
	const struct vdk_mem_region *last = mem->regions + mem->n;
	uint64_t avail;

	if (!r)
		return false;
	for (;;) {
		avail = r->size - (gpa - r->gpa);
		if (len <= avail)
			return true;
		len -= avail;
		gpa += avail; /* == r->gpa + r->size: no wrap, see add */
		if (++r == last || r->gpa != gpa)
			return false;
	}
}

int vdk_mem_read(const struct vdk_mem *mem, uint64_t gpa, void *buf, size_t len)
{
	uint8_t *dst = buf;
	uint64_t end;

	if (__builtin_add_overflow(gpa, (uint64_t)len, &end))
		return -EFAULT;
	while (len > 0) {
		void *src;
		uint64_t n = vdk_mem_translate_clamped(mem, gpa, len, &src);

		if (n == 0)
			return -EFAULT;
		memcpy(dst, src, (size_t)n);
		dst += n;
		gpa += n;
		len -= (size_t)n;
	}
	return 0;
}

int vdk_mem_write(const struct vdk_mem *mem, uint64_t gpa, const void *buf,
		  size_t len)
{
	const uint8_t *src = buf;
	uint64_t end;

	if (__builtin_add_overflow(gpa, (uint64_t)len, &end))
		return -EFAULT;
	/* All or nothing: check the whole range before the first byte. */
	if (len > 0 && !mem_range_mapped(mem, gpa, len))
		return -EFAULT;
	while (len > 0) {
		void *dst;
		uint64_t n = vdk_mem_translate_clamped(mem, gpa, len, &dst);

		if (n == 0)
			return -EFAULT; /* not reached: checked above */
		memcpy(dst, src, (size_t)n);
		src += n;
		gpa += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Typed little-endian helpers (virtio 1.2 §1.4: fields are little-endian).
 * memcpy keeps unaligned addresses safe; vdk_mem_read()/write() handle a
 * value that straddles two adjacent regions.
 */
int vdk_mem_read_le16(const struct vdk_mem *mem, uint64_t gpa, uint16_t *val)
{
	uint16_t v;
	int ret = vdk_mem_read(mem, gpa, &v, sizeof(v));

	if (ret == 0)
		*val = le16toh(v);
	return ret;
}

int vdk_mem_read_le32(const struct vdk_mem *mem, uint64_t gpa, uint32_t *val)
{
	uint32_t v;
	int ret = vdk_mem_read(mem, gpa, &v, sizeof(v));

	if (ret == 0)
		*val = le32toh(v);
	return ret;
}

int vdk_mem_read_le64(const struct vdk_mem *mem, uint64_t gpa, uint64_t *val)
{
	uint64_t v;
	int ret = vdk_mem_read(mem, gpa, &v, sizeof(v));

	if (ret == 0)
		*val = le64toh(v);
	return ret;
}

int vdk_mem_write_le16(const struct vdk_mem *mem, uint64_t gpa, uint16_t val)
{
	uint16_t v = htole16(val);

	return vdk_mem_write(mem, gpa, &v, sizeof(v));
}

int vdk_mem_write_le32(const struct vdk_mem *mem, uint64_t gpa, uint32_t val)
{
	uint32_t v = htole32(val);

	return vdk_mem_write(mem, gpa, &v, sizeof(v));
}

int vdk_mem_write_le64(const struct vdk_mem *mem, uint64_t gpa, uint64_t val)
{
	uint64_t v = htole64(val);

	return vdk_mem_write(mem, gpa, &v, sizeof(v));
}

int vdk_mem_user_to_gpa(const struct vdk_mem *mem, uint64_t uaddr, uint64_t len,
			uint64_t *gpa)
{
	/*
	 * Regions are sorted by gpa, not by user_addr: scan them. This runs
	 * on the control path only (vhost-user SET_VRING_ADDR).
	 */
	for (size_t i = 0; i < mem->n; i++) {
		const struct vdk_mem_region *r = &mem->regions[i];
		uint64_t off = uaddr - r->user_addr;

		if (r->user_addr == 0 || off >= r->size)
			continue;
		if (len > r->size - off)
			continue;
		*gpa = r->gpa + off;
		return 0;
	}
	return -EFAULT;
}
