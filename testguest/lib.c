/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: the four functions a freestanding C compiler may emit
 * calls to (memset, memcpy, memmove, memcmp; GCC's -ffreestanding contract),
 * and small string helpers. Byte loops: speed does not matter here.
 */
#include "guest.h"

void *memset(void *dst, int c, size_t n)
{
	/* volatile: otherwise GCC recognises the loop and calls memset. */
	volatile uint8_t *d = dst;

	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	volatile uint8_t *d = dst;
	const uint8_t *s = src;

	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	volatile uint8_t *d = dst;
	const uint8_t *s = src;

	if ((uintptr_t)d < (uintptr_t)s) {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	} else {
		for (size_t i = n; i > 0; i--)
			d[i - 1] = s[i - 1];
	}
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

bool mem_eq_str(const void *a, size_t n, const char *lit)
{
	return strlen(lit) >= n && memcmp(a, lit, n) == 0;
}
