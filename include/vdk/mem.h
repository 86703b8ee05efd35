/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest memory map: the guest-physical address space as a sorted set of
 * non-overlapping regions, each a shared mapping of a file descriptor
 * (normally a memfd, so it can be handed to another process).
 *
 * Every access to guest RAM in vdk goes through this header. Addresses named
 * "gpa" are guest-physical; pointers are host-virtual. No function here
 * returns a pointer whose [p, p + len) range leaves its region: ranges that
 * wrap, cross the end of a region or fall in a hole are refused.
 *
 * Locking: lookups take no lock and may run concurrently from any number of
 * threads. Adding or removing regions must not run concurrently with anything
 * else on the same map; the owner first deactivates its queues
 * (vdk_virtq_deactivate(): a queue keeps a copy of one region, struct
 * vdk_mem_cache), as a vhost-user backend does around SET_MEM_TABLE /
 * ADD_MEM_REG / REM_MEM_REG.
 */
#ifndef VDK_MEM_H
#define VDK_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Most regions one map holds (vhost-user's GET_MAX_MEM_SLOTS answer). */
#define VDK_MEM_MAX_REGIONS 509

/**
 * struct vdk_mem_region - one contiguous range of guest-physical memory.
 * Read-only to users; filled by vdk_mem_add_*().
 */
struct vdk_mem_region {
	uint64_t gpa;	    /**< first guest-physical address */
	uint64_t size;	    /**< bytes; never 0 */
	uint8_t *hva;	    /**< host-virtual address of @gpa */
	int fd;		    /**< backing fd (owned by the map), or -1 */
	uint64_t fd_offset; /**< offset of @gpa's byte in @fd, bytes */
	uint64_t user_addr; /**< frontend's virtual address of @gpa
			       (vhost-user userspace_addr), or 0 */
	void *map_base;	    /**< what to munmap (page-aligned), or NULL
			       if the map does not own the mapping */
	size_t map_len;	    /**< bytes to munmap */
};

/** struct vdk_mem - the map; opaque outside mem.c. */
struct vdk_mem;

/**
 * vdk_mem_new() - create an empty guest memory map.
 * @err: set to 0, or -ENOMEM; may be NULL.
 *
 * Return: the map, owned by the caller (free with vdk_mem_free()), or NULL.
 */
struct vdk_mem *vdk_mem_new(int *err);

/**
 * vdk_mem_free() - unmap every region the map mapped, close every fd it
 * owns, free the map. NULL is accepted.
 */
void vdk_mem_free(struct vdk_mem *mem);

/**
 * vdk_mem_add_memfd() - create a memfd of @size bytes, map it shared and add
 * it at guest-physical address @gpa.
 * @mem:  the map.
 * @gpa:  guest-physical base; page-aligned.
 * @size: bytes; non-zero, a multiple of the page size.
 * @name: memfd name shown in /proc (debugging aid); may be NULL.
 *
 * The memfd is owned by the map; vdk_mem_region_at() exposes it for sharing
 * (vhost-user SET_MEM_TABLE). It is sealed with F_SEAL_SHRINK and
 * F_SEAL_GROW, so a process it is shared with can map it without fearing a
 * SIGBUS from a shrink (vdk's back-ends insist on F_SEAL_SHRINK).
 *
 * Return: 0; -EINVAL for zero, unaligned or wrapping ranges; -EEXIST if the
 * range overlaps a region; -ENOSPC if the map is full; -errno from
 * memfd_create/ftruncate/fcntl(F_ADD_SEALS)/mmap.
 */
int vdk_mem_add_memfd(struct vdk_mem *mem, uint64_t gpa, uint64_t size,
		      const char *name);

/**
 * vdk_mem_add_fd() - map @size bytes of @fd from @fd_offset (shared,
 * read/write) and add them at guest-physical address @gpa. This is how a
 * vhost-user backend maps the frontend's regions (vhost-user
 * VHOST_USER_SET_MEM_TABLE / VHOST_USER_ADD_MEM_REG).
 * @mem:       the map.
 * @gpa:       guest-physical base.
 * @size:      bytes; non-zero.
 * @fd:        the file to map. On success the map owns it (closes it in
 *             vdk_mem_remove()/vdk_mem_free()); on failure the caller keeps
 *             it.
 * @fd_offset: offset in @fd of the byte at @gpa; need not be page-aligned
 *             (the mapping is widened to the page below).
 * @user_addr: the frontend's virtual address of @gpa, for
 *             vdk_mem_user_to_gpa(); 0 if unused.
 *
 * Return: 0; -EINVAL for zero or wrapping ranges (gpa, user_addr or
 * fd_offset + size); -EEXIST on overlap; -ENOSPC if full; -errno from mmap.
 */
int vdk_mem_add_fd(struct vdk_mem *mem, uint64_t gpa, uint64_t size, int fd,
		   uint64_t fd_offset, uint64_t user_addr);

/**
 * vdk_mem_add_host() - add caller-owned host memory at @gpa (tests, fuzzing,
 * and VMMs that allocate RAM themselves). The map never unmaps it.
 * @hva:  host-virtual address of @size bytes that outlive the map.
 *
 * Return: 0; -EINVAL, -EEXIST or -ENOSPC as for vdk_mem_add_memfd().
 */
int vdk_mem_add_host(struct vdk_mem *mem, uint64_t gpa, uint64_t size,
		     void *hva);

/**
 * vdk_mem_remove() - remove the region that starts at @gpa and has exactly
 * @size bytes, unmapping it and closing its fd if the map owns them.
 *
 * Return: 0, or -ENOENT if no region matches exactly.
 */
int vdk_mem_remove(struct vdk_mem *mem, uint64_t gpa, uint64_t size);

/** vdk_mem_num_regions() - number of regions in the map. */
size_t vdk_mem_num_regions(const struct vdk_mem *mem);

/**
 * vdk_mem_region_at() - the @i-th region in ascending gpa order, or NULL if
 * @i is out of range. Valid until the map changes.
 */
const struct vdk_mem_region *vdk_mem_region_at(const struct vdk_mem *mem,
					       size_t i);

/**
 * vdk_mem_find() - the region containing guest-physical address @gpa, or
 * NULL if @gpa lies in a hole. O(log n) in the number of regions.
 */
const struct vdk_mem_region *vdk_mem_find(const struct vdk_mem *mem,
					  uint64_t gpa);

/**
 * vdk_mem_translate() - host pointer for the guest-physical range
 * [@gpa, @gpa + @len).
 * @len: bytes; 0 is allowed and checks only that @gpa is mapped.
 *
 * Return: the host-virtual address of @gpa, or NULL if the range wraps,
 * touches a hole or does not lie within one region.
 */
void *vdk_mem_translate(const struct vdk_mem *mem, uint64_t gpa, uint64_t len);

/**
 * vdk_mem_translate_clamped() - host pointer for the start of
 * [@gpa, @gpa + @len), clamped to the region holding @gpa (for splitting a
 * guest buffer that spans adjacent regions into several iovecs).
 * @hva: set to the host-virtual address of @gpa on success.
 *
 * Return: bytes available contiguously from @hva, 1..@len; 0 if @gpa is not
 * mapped, @len is 0, or the range wraps.
 */
uint64_t vdk_mem_translate_clamped(const struct vdk_mem *mem, uint64_t gpa,
				   uint64_t len, void **hva);

/**
 * struct vdk_mem_cache - one region remembered by its user (a virtqueue
 * keeps the region of the last buffer it translated), so that the next
 * translation in the same region is a few instructions inline. Use:
 * if vdk_mem_cache_contains(), vdk_mem_cache_translate(); otherwise
 * vdk_mem_translate_fill(), which also refills the cache.
 *
 * A copy, not a reference: it stays valid only while the map is unchanged.
 * Whoever adds or removes regions clears every cache taken from the map
 * first (vdk_mem_cache_clear(); a virtqueue clears its own on
 * vdk_virtq_deactivate() and vdk_virtq_activate()). Empty: size 0.
 */
struct vdk_mem_cache {
	uint64_t gpa;  /**< first guest-physical address of the region */
	uint64_t size; /**< bytes; 0 when empty (then every lookup misses) */
	uint8_t *hva;  /**< host-virtual address of @gpa */
};

/** vdk_mem_cache_clear() - empty @c: every lookup misses until refilled. */
static inline void vdk_mem_cache_clear(struct vdk_mem_cache *c)
{
	*c = (struct vdk_mem_cache){0, 0, NULL};
}

/**
 * vdk_mem_cache_contains() - true if the guest-physical range
 * [@gpa, @gpa + @len) lies inside the cached region. Takes no lock and
 * does not touch the map.
 * @len: bytes; a zero @len is never contained.
 *
 * The check cannot be fooled by overflow: with off = @gpa - c->gpa
 * (wrapping), the range is inside iff off + @len does not overflow and is
 * at most c->size. An address below c->gpa wraps to an offset so large
 * that off + @len either overflows or exceeds c->size, because a region
 * never wraps (c->gpa + c->size <= 2^64 - 1, checked when it is added).
 */
static inline bool vdk_mem_cache_contains(const struct vdk_mem_cache *c,
					  uint64_t gpa, uint64_t len)
{
	uint64_t end;

	return len != 0 && !__builtin_add_overflow(gpa - c->gpa, len, &end) &&
	       end <= c->size;
}

/**
 * vdk_mem_cache_translate() - host-virtual address of guest-physical @gpa,
 * for a range that vdk_mem_cache_contains() has just accepted.
 */
static inline void *vdk_mem_cache_translate(const struct vdk_mem_cache *c,
					    uint64_t gpa)
{
	return c->hva + (gpa - c->gpa);
}

/**
 * vdk_mem_translate_fill() - vdk_mem_translate(), and on success remember
 * the region holding the range in @c (the path taken when
 * vdk_mem_cache_contains() says no).
 *
 * Return: as vdk_mem_translate(); on NULL @c is left unchanged.
 */
void *vdk_mem_translate_fill(const struct vdk_mem *mem, uint64_t gpa,
			     uint64_t len, struct vdk_mem_cache *c);

/**
 * vdk_mem_read() - copy @len bytes of guest memory at @gpa into @buf. The
 * range may span adjacent regions.
 *
 * Return: 0, or -EFAULT if any byte is unmapped or the range wraps (then
 * @buf's content is unspecified).
 */
int vdk_mem_read(const struct vdk_mem *mem, uint64_t gpa, void *buf,
		 size_t len);

/**
 * vdk_mem_write() - copy @len bytes from @buf to guest memory at @gpa.
 *
 * Return: 0, or -EFAULT as for vdk_mem_read() (then nothing was written).
 */
int vdk_mem_write(const struct vdk_mem *mem, uint64_t gpa, const void *buf,
		  size_t len);

/**
 * vdk_mem_read_le16/32/64() - load a little-endian value at @gpa (which may
 * be unaligned) into *@val in host order.
 *
 * Return: 0, or -EFAULT.
 */
int vdk_mem_read_le16(const struct vdk_mem *mem, uint64_t gpa, uint16_t *val);
int vdk_mem_read_le32(const struct vdk_mem *mem, uint64_t gpa, uint32_t *val);
int vdk_mem_read_le64(const struct vdk_mem *mem, uint64_t gpa, uint64_t *val);

/**
 * vdk_mem_write_le16/32/64() - store @val little-endian at @gpa.
 *
 * Return: 0, or -EFAULT.
 */
int vdk_mem_write_le16(const struct vdk_mem *mem, uint64_t gpa, uint16_t val);
int vdk_mem_write_le32(const struct vdk_mem *mem, uint64_t gpa, uint32_t val);
int vdk_mem_write_le64(const struct vdk_mem *mem, uint64_t gpa, uint64_t val);

/**
 * vdk_mem_user_to_gpa() - translate a frontend virtual address range (as in
 * vhost-user's VHOST_USER_SET_VRING_ADDR) to guest-physical.
 * @uaddr: frontend virtual address.
 * @len:   bytes that must lie in one region.
 * @gpa:   set on success.
 *
 * Return: 0, or -EFAULT if no region's [user_addr, user_addr + size) holds
 * the whole range.
 */
int vdk_mem_user_to_gpa(const struct vdk_mem *mem, uint64_t uaddr, uint64_t len,
			uint64_t *gpa);

/*
 * Ring-index accessors on host pointers already obtained from
 * vdk_mem_translate(). Ring fields are little-endian (virtio 1.2 §2.7); the
 * acquire/release variants order the index against the ring entries it
 * publishes (virtio 1.2 §2.7.13.3, §2.7.8).
 */

/** vdk_le16_load_acquire() - load a __le16 ring index with acquire order. */
static inline uint16_t vdk_le16_load_acquire(const void *p)
{
	uint16_t v = __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	return v;
}

/** vdk_le16_store_release() - store a __le16 ring index with release order. */
static inline void vdk_le16_store_release(void *p, uint16_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

/** vdk_le16_load() - relaxed load of a __le16 field. */
static inline uint16_t vdk_le16_load(const void *p)
{
	uint16_t v = __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	return v;
}

/** vdk_le16_store() - relaxed store of a __le16 field. */
static inline void vdk_le16_store(void *p, uint16_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_MEM_H */
