/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: the kernel-style command line from hvm_start_info.
 *
 *   virtio_mmio.device=<size>@<base>[:<irq>]  one virtio-mmio window, the
 *       syntax of Linux's drivers/virtio/virtio_mmio.c (size with an
 *       optional K/M/G suffix, numbers in C notation: 0x.. hex, else
 *       decimal). QEMU's microvm adds these itself with
 *       acpi=off,auto-kernel-cmdline=on.
 *   <key>=<value>  any other option (vdk.serial=, vdk.expect=), read with
 *       cmdline_value().
 *
 * The command line comes from the VMM: parsing never reads past its NUL
 * and never trusts a number to fit.
 */
#include <asm-generic/errno.h>

#include "guest.h"

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	return p;
}

static bool is_end(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '\n';
}

/* Parse an unsigned number (0x.. hex or decimal) at *pp; advance *pp. */
static bool parse_u64(const char **pp, uint64_t *out)
{
	const char *p = *pp;
	unsigned int base = 10;
	uint64_t v = 0;
	bool any = false;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (;; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			break;
		if (__builtin_mul_overflow(v, base, &v) ||
		    __builtin_add_overflow(v, d, &v))
			return false;
		any = true;
	}
	*pp = p;
	*out = v;
	return any;
}

/* One "<size>@<base>[:<irq>]" value at @p. */
static bool parse_device(const char *p, struct mmio_window *w)
{
	uint64_t size, base, irq = 0;
	unsigned int shift = 0;

	if (!parse_u64(&p, &size))
		return false;
	switch (*p) {
	case 'K':
	case 'k':
		shift = 10;
		p++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		p++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		p++;
		break;
	default:
		break;
	}
	if (size == 0 || size > (UINT64_MAX >> shift))
		return false;
	size <<= shift;
	if (*p++ != '@' || !parse_u64(&p, &base))
		return false;
	if (*p == ':') {
		p++;
		if (!parse_u64(&p, &irq) || irq > UINT32_MAX)
			return false;
	}
	if (!is_end(*p))
		return false;
	w->base = base;
	w->size = size;
	w->irq = (uint32_t)irq;
	return true;
}

/* The value of the first "<key>=<value>" word at or after @from (NULL:
 * the start), or NULL. */
static const char *find_key(const char *cmdline, const char *key,
			    const char *from)
{
	size_t klen = strlen(key);
	const char *p = from ? from : cmdline;

	for (p = skip_spaces(p); *p; p = skip_spaces(p)) {
		const char *word = p;

		while (!is_end(*p))
			p++;
		if ((size_t)(p - word) > klen && memcmp(word, key, klen) == 0 &&
		    word[klen] == '=')
			return word + klen + 1;
	}
	return NULL;
}

size_t cmdline_devices(const char *cmdline, struct mmio_window *w, size_t max)
{
	const char *key = "virtio_mmio.device";
	const char *v = NULL, *from = cmdline;
	size_t n = 0;

	while (n < max && (v = find_key(cmdline, key, from))) {
		if (parse_device(v, &w[n]))
			n++;
		from = v;
	}
	return n;
}

int cmdline_value(const char *cmdline, const char *key, char *buf, size_t len)
{
	const char *v = find_key(cmdline, key, NULL);
	size_t n = 0;

	if (!v)
		return -ENOENT;
	while (!is_end(v[n]))
		n++;
	if (len) {
		size_t c = n < len - 1 ? n : len - 1;

		memcpy(buf, v, c);
		buf[c] = '\0';
	}
	return (int)n;
}
