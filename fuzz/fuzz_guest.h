/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_guest: guest memory for the device fuzz targets (fuzz_blk,
 * fuzz_console). Two adjacent 32 KiB regions at gpa 0 and 0x8000, backed by
 * one static host arena in which they are separated by guard pages: the
 * guards are poisoned for AddressSanitizer (a device that runs an iovec
 * past a region trips it in user space) and filled with a canary that
 * fuzz_guest_guards_intact() checks (the kernel, writing for io_uring or
 * preadv, bypasses ASan).
 *
 * Not thread-safe; one user per process.
 */
#ifndef VDK_FUZZ_GUEST_H
#define VDK_FUZZ_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/mem.h>

#define FUZZ_GUEST_REGION 0x8000u
#define FUZZ_GUEST_SIZE	  (2 * FUZZ_GUEST_REGION)

/** Fill and poison the guards; once per process. */
void fuzz_guest_init(void);

/** Zero both regions (each input starts from a clean guest). */
void fuzz_guest_reset(void);

/** Add both regions to @mem. Return: 0, or -errno from vdk_mem_add_host. */
int fuzz_guest_map(struct vdk_mem *mem);

/** Host address of guest byte @gpa (< FUZZ_GUEST_SIZE). */
uint8_t *fuzz_guest_ptr(uint64_t gpa);

/** Copy @len bytes to guest memory at @gpa, across the region boundary. */
void fuzz_guest_write(uint64_t gpa, const void *src, size_t len);

/** Set @len guest bytes at @gpa to @v, across the region boundary. */
void fuzz_guest_fill(uint64_t gpa, uint8_t v, size_t len);

/** True if no guard byte changed since fuzz_guest_init(). */
bool fuzz_guest_guards_intact(void);

/**
 * fuzz_lowest_free_fd() - the lowest fd number not in use (-1 on error):
 * the same before and after an input, or something leaked an fd.
 */
int fuzz_lowest_free_fd(void);

#endif /* VDK_FUZZ_GUEST_H */
