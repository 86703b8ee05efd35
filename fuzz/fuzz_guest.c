/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_guest: guest memory between guard pages for the device fuzz
 * targets; see fuzz_guest.h.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_guest.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif

#define REGION FUZZ_GUEST_REGION
#define GUARD  4096u
#define CANARY 0xa5u

/* guard | region 0 | guard | region 1 | guard */
static uint8_t arena[3 * GUARD + 2 * REGION] __attribute__((aligned(4096)));

static uint8_t *guard(unsigned i)
{
	return arena + i * (REGION + GUARD);
}

static uint8_t *region(unsigned i)
{
	return guard(i) + GUARD;
}

static void poison(bool on)
{
	for (unsigned i = 0; i < 3; i++) {
#ifdef HAVE_ASAN
		if (on)
			__asan_poison_memory_region(guard(i), GUARD);
		else
			__asan_unpoison_memory_region(guard(i), GUARD);
#else
		(void)on;
#endif
	}
}

void fuzz_guest_init(void)
{
	for (unsigned i = 0; i < 3; i++)
		memset(guard(i), CANARY, GUARD);
	poison(true);
}

void fuzz_guest_reset(void)
{
	memset(region(0), 0, REGION);
	memset(region(1), 0, REGION);
}

int fuzz_guest_map(struct vdk_mem *mem)
{
	int ret = vdk_mem_add_host(mem, 0, REGION, region(0));

	if (ret == 0)
		ret = vdk_mem_add_host(mem, REGION, REGION, region(1));
	return ret;
}

uint8_t *fuzz_guest_ptr(uint64_t gpa)
{
	return region(gpa >= REGION) + gpa % REGION;
}

/* Copy (@src) or fill (@v), split at the region boundary. */
static void put(uint64_t gpa, const uint8_t *src, uint8_t v, size_t len)
{
	while (len) {
		size_t n = REGION - gpa % REGION;

		if (n > len)
			n = len;
		if (src) {
			memcpy(fuzz_guest_ptr(gpa), src, n);
			src += n;
		} else {
			memset(fuzz_guest_ptr(gpa), v, n);
		}
		gpa += n;
		len -= n;
	}
}

void fuzz_guest_write(uint64_t gpa, const void *src, size_t len)
{
	put(gpa, src, 0, len);
}

void fuzz_guest_fill(uint64_t gpa, uint8_t v, size_t len)
{
	put(gpa, NULL, v, len);
}

bool fuzz_guest_guards_intact(void)
{
	bool ok = true;

	poison(false);
	for (unsigned i = 0; i < 3; i++)
		for (unsigned k = 0; k < GUARD; k++)
			ok &= guard(i)[k] == CANARY;
	poison(true);
	return ok;
}

int fuzz_lowest_free_fd(void)
{
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);

	if (fd >= 0)
		close(fd);
	return fd;
}
