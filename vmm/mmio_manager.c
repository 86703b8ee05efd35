/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MMIO device manager (see mmio_manager.h): a bump allocator for windows and
 * IRQs plus a registration-ordered array of what was given to whom.
 */
#include "mmio_manager.h"

#include <vdk/log.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vmm_mmio_manager {
	uint64_t next_base;   /* window the next device gets */
	uint64_t window_size; /* bytes per window */
	uint32_t next_irq;    /* IRQ the next device gets */
	uint32_t irq_last;    /* last IRQ of the range, inclusive */
	bool irqs_exhausted;  /* next_irq passed irq_last (it may wrap) */
	struct vmm_mmio_device_info *devs; /* in registration order */
	size_t n, cap;
};

struct vmm_mmio_manager *vmm_mmio_manager_new(uint64_t mmio_base,
					      uint64_t window_size,
					      uint32_t irq_first,
					      uint32_t irq_last, int *err)
{
	struct vmm_mmio_manager *m = NULL;
	int ret = -EINVAL;

	if (window_size != 0 && window_size % 1024 == 0 &&
	    mmio_base % window_size == 0 && irq_first <= irq_last) {
		m = malloc(sizeof(*m));
		ret = m ? 0 : -ENOMEM;
	}
	if (m)
		*m = (struct vmm_mmio_manager){.next_base = mmio_base,
					       .window_size = window_size,
					       .next_irq = irq_first,
					       .irq_last = irq_last};
	if (err)
		*err = ret;
	return m;
}

void vmm_mmio_manager_free(struct vmm_mmio_manager *m)
{
	if (!m)
		return;
	free(m->devs);
	free(m);
}

static struct vmm_mmio_device_info *find(const struct vmm_mmio_manager *m,
					 uint32_t type, const char *id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->devs[i].type == type && strcmp(m->devs[i].id, id) == 0)
			return &m->devs[i];
	return NULL;
}

static int fail(const char **errmsg, const char *msg, int err)
{
	if (errmsg)
		*errmsg = msg;
	return err;
}

int vmm_mmio_manager_register(struct vmm_mmio_manager *m, uint32_t type,
			      const char *id, struct vdk_bus *bus,
			      struct vdk_bus_device dev,
			      struct vmm_mmio_device_info *info,
			      const char **errmsg)
{
	struct vmm_mmio_device_info d;
	size_t id_len;
	uint64_t end;
	int ret;

	if (!m || !id)
		return fail(errmsg, "invalid argument", -EINVAL);
	id_len = strnlen(id, VMM_MMIO_ID_MAX + 1);
	if (id_len == 0 || id_len > VMM_MMIO_ID_MAX)
		return fail(errmsg, "device id is empty or too long", -EINVAL);
	if (bus && !dev.ops)
		return fail(errmsg, "bus device has no ops", -EINVAL);
	if (find(m, type, id))
		return fail(errmsg, "device already registered", -EEXIST);
	/* libkrun checks the IRQ first: exhaustion is the usual failure. */
	if (m->irqs_exhausted || m->next_irq > m->irq_last)
		return fail(errmsg, VMM_MMIO_MSG_NO_IRQS, -ENOSPC);
	if (__builtin_add_overflow(m->next_base, m->window_size - 1, &end))
		return fail(errmsg, "MMIO address space exhausted", -EOVERFLOW);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		void *p = reallocarray(m->devs, cap, sizeof(*m->devs));

		if (!p)
			return fail(errmsg, "out of memory", -ENOMEM);
		m->devs = p;
		m->cap = cap;
	}

	memset(&d, 0, sizeof(d));
	d.type = type;
	memcpy(d.id, id, id_len);
	d.base = m->next_base;
	d.size = m->window_size;
	d.irq = m->next_irq;
	if (bus) {
		struct vdk_bus_range r = {.base = d.base, .size = d.size};

		ret = vdk_bus_register(bus, r, dev);
		if (ret)
			return fail(errmsg, "bus registration failed", ret);
	}

	m->devs[m->n++] = d;
	/* The last window may end at 2^64 - 1: then no further window fits. */
	if (__builtin_add_overflow(m->next_base, m->window_size, &m->next_base))
		m->next_base = UINT64_MAX; /* next register() overflows */
	if (m->next_irq == m->irq_last)
		m->irqs_exhausted = true;
	else
		m->next_irq++;
	if (info)
		*info = d;
	vdk_log(VDK_LOG_INFO, "vmm",
		"mmio device type %" PRIu32 " \"%s\": 0x%" PRIx64 "+0x%" PRIx64
		" irq %" PRIu32,
		d.type, d.id, d.base, d.size, d.irq);
	return 0;
}

const struct vmm_mmio_device_info *
vmm_mmio_manager_lookup(const struct vmm_mmio_manager *m, uint32_t type,
			const char *id)
{
	if (!m || !id)
		return NULL;
	return find(m, type, id);
}

size_t vmm_mmio_manager_count(const struct vmm_mmio_manager *m)
{
	return m ? m->n : 0;
}

const struct vmm_mmio_device_info *
vmm_mmio_manager_at(const struct vmm_mmio_manager *m, size_t index)
{
	if (!m || index >= m->n)
		return NULL;
	return &m->devs[index];
}

int vmm_mmio_manager_cmdline_append(const struct vmm_mmio_manager *m, char *buf,
				    size_t size)
{
	size_t len;

	if (!m || !buf || size == 0)
		return -EINVAL;
	len = strnlen(buf, size);
	if (len == size)
		return -EINVAL;
	size_t start = len;

	for (size_t i = 0; i < m->n; i++) {
		const struct vmm_mmio_device_info *d = &m->devs[i];
		int n = snprintf(buf + len, size - len,
				 "%svirtio_mmio.device=%" PRIu64
				 "K@0x%08" PRIx64 ":%" PRIu32,
				 len ? " " : "", d->size >> 10, d->base,
				 d->irq);

		if (n < 0 || (size_t)n >= size - len) {
			buf[start] = '\0'; /* undo the partial append */
			return -ENOSPC;
		}
		len += (size_t)n;
	}
	if (len > INT32_MAX) {
		buf[start] = '\0';
		return -ENOSPC;
	}
	return (int)len;
}
