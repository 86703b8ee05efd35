/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI host bridge of vdk-vmm: configuration mechanism #1, ECAM and the BAR
 * allocator. See pci_host.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pci_host.h"

struct slot {
	vmm_pci_cfg_read_fn *rd;
	vmm_pci_cfg_write_fn *wr;
	void *opaque;
};

struct vmm_pci_host {
	struct slot slots[VMM_PCI_SLOTS];
	uint64_t mem_next, mem_end;	/* 32-bit window */
	uint64_t mem64_next, mem64_end; /* 64-bit window (empty: none) */
	_Atomic uint32_t cf8;		/* CONFIG_ADDRESS latch */
};

struct vmm_pci_host *vmm_pci_host_new(uint64_t mem_base, uint64_t mem_size,
				      uint64_t mem64_base, uint64_t mem64_size,
				      int *err)
{
	struct vmm_pci_host *h = NULL;
	int r = -EINVAL;

	if (mem_size != 0 && mem_base + mem_size >= mem_base &&
	    mem_base + mem_size <= (1ull << 32) &&
	    mem64_base + mem64_size >= mem64_base) {
		h = calloc(1, sizeof(*h));
		r = h ? 0 : -ENOMEM;
	}
	if (h) {
		h->mem_next = mem_base;
		h->mem_end = mem_base + mem_size;
		h->mem64_next = mem64_base;
		h->mem64_end = mem64_base + mem64_size;
	}
	if (err)
		*err = r;
	return h;
}

void vmm_pci_host_free(struct vmm_pci_host *h)
{
	free(h);
}

int vmm_pci_host_add(struct vmm_pci_host *h, vmm_pci_cfg_read_fn *rd,
		     vmm_pci_cfg_write_fn *wr, void *opaque, unsigned int *slot)
{
	if (!h || !rd || !wr)
		return -EINVAL;
	for (unsigned int s = 1; s < VMM_PCI_SLOTS; s++) {
		if (h->slots[s].rd)
			continue;
		h->slots[s] = (struct slot){rd, wr, opaque};
		if (slot)
			*slot = s;
		return 0;
	}
	return -ENOSPC;
}

/* @size bytes aligned to @size from [*@next, @end). */
static int window_alloc(uint64_t *next, uint64_t end, uint64_t size,
			uint64_t *addr)
{
	uint64_t a = (*next + size - 1) & ~(size - 1);

	if (a < *next || a > end || end - a < size)
		return -ENOSPC;
	*next = a + size;
	*addr = a;
	return 0;
}

int vmm_pci_host_alloc(struct vmm_pci_host *h, uint64_t size, bool is64,
		       uint64_t *addr)
{
	if (!h || !addr || size == 0 || (size & (size - 1)))
		return -EINVAL;
	if (is64 && window_alloc(&h->mem64_next, h->mem64_end, size, addr) == 0)
		return 0;
	return window_alloc(&h->mem_next, h->mem_end, size, addr);
}

/* The function at bus/device/function, or NULL (all-ones). */
static struct slot *lookup(struct vmm_pci_host *h, uint32_t bus, uint32_t dev,
			   uint32_t fn)
{
	if (bus != 0 || fn != 0 || dev >= VMM_PCI_SLOTS || !h->slots[dev].rd)
		return NULL;
	return &h->slots[dev];
}

/* Pass an access to function @s at register @reg; with no function (NULL),
 * reads give all ones (master abort) and writes are dropped. */
static void cfg_access(struct slot *s, uint32_t reg, void *data, size_t len,
		       bool write)
{
	if (!s) {
		if (!write)
			memset(data, 0xff, len);
	} else if (write) {
		s->wr(s->opaque, reg, data, len);
	} else {
		s->rd(s->opaque, reg, data, len);
	}
}

void vmm_pci_host_ecam(struct vmm_pci_host *h, uint64_t offset, void *data,
		       size_t len, bool write)
{
	struct slot *s = NULL;

	if (!h || !data)
		return;
	if (len >= 1 && len <= 4 && offset < 256ull * VMM_PCI_ECAM_BUS_SIZE)
		s = lookup(h, (uint32_t)(offset >> 20),
			   (uint32_t)(offset >> 15) & 31,
			   (uint32_t)(offset >> 12) & 7);
	cfg_access(s, (uint32_t)offset & 0xfff, data, len, write);
}

/* The data port: CONFIG_ADDRESS selects the dword, the port's low bits
 * the byte in it (PCI 3.0 §3.2.2.3.2). */
void vmm_pci_host_pio(struct vmm_pci_host *h, uint16_t port, void *data,
		      size_t len, bool write)
{
	struct slot *s = NULL;
	uint32_t a, v;

	if (!h || !data || len == 0 || len > 4)
		return;
	if (port == VMM_PCI_CONFIG_ADDRESS && len == 4) {
		if (write) {
			memcpy(&v, data, 4);
			atomic_store(&h->cf8, v & 0x80fffffcu);
		} else {
			v = atomic_load(&h->cf8);
			memcpy(data, &v, 4);
		}
		return;
	}
	a = atomic_load(&h->cf8);
	if (port >= VMM_PCI_CONFIG_DATA &&
	    port + len <= VMM_PCI_CONFIG_DATA + 4 && (a & 0x80000000u))
		s = lookup(h, (a >> 16) & 0xff, (a >> 11) & 31, (a >> 8) & 7);
	cfg_access(s, (a & 0xfc) + (port - VMM_PCI_CONFIG_DATA), data, len,
		   write);
}
