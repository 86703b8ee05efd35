/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PCI bus of a vdk-vmm VM; see pci_bus.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include <vdk/log.h>

#include "pci_bus.h"
#include "pci_host.h"

#define MOD "vmm-pci"

struct vmm_pci_bus {
	struct vmm_kvm *kvm;
	struct vdk_bus *pio, *mmio;
	struct vmm_pci_host *host;
	struct vdk_virtio_pci *fns[VMM_PCI_SLOTS];
	unsigned int slots[VMM_PCI_SLOTS]; /* device number of fns[i] */
	unsigned int nfns;
	pthread_mutex_t intx_lock;
	uint32_t intx_up;    /* slots asserting INTA */
	uint64_t mem64_base; /* the 64-bit BAR window */
	bool pio_on, ecam_on, window_on, window64_on;
};

static void cfg_rd(void *opaque, uint32_t off, void *data, size_t len)
{
	vdk_virtio_pci_config_read(opaque, off, data, len);
}

static void cfg_wr(void *opaque, uint32_t off, const void *data, size_t len)
{
	vdk_virtio_pci_config_write(opaque, off, data, len);
}

static void pio_read(void *opaque, uint64_t base, uint64_t off, void *data,
		     size_t len)
{
	struct vmm_pci_bus *b = opaque;

	vmm_pci_host_pio(b->host, (uint16_t)(base + off), data, len, false);
}

static void pio_write(void *opaque, uint64_t base, uint64_t off,
		      const void *data, size_t len)
{
	struct vmm_pci_bus *b = opaque;

	vmm_pci_host_pio(b->host, (uint16_t)(base + off), (void *)data, len,
			 true);
}

static const struct vdk_bus_device_ops pio_ops = {.read = pio_read,
						  .write = pio_write};

static void ecam_read(void *opaque, uint64_t base, uint64_t off, void *data,
		      size_t len)
{
	(void)base;
	vmm_pci_host_ecam(((struct vmm_pci_bus *)opaque)->host, off, data, len,
			  false);
}

static void ecam_write(void *opaque, uint64_t base, uint64_t off,
		       const void *data, size_t len)
{
	(void)base;
	vmm_pci_host_ecam(((struct vmm_pci_bus *)opaque)->host, off,
			  (void *)data, len, true);
}

static const struct vdk_bus_device_ops ecam_ops = {.read = ecam_read,
						   .write = ecam_write};

/* The BAR window: the function whose BAR decodes the address takes it;
 * nobody's reads 0 (master abort would be all-ones; Linux does not care). */
static void window_read(void *opaque, uint64_t base, uint64_t off, void *data,
			size_t len)
{
	struct vmm_pci_bus *b = opaque;

	for (unsigned int i = 0; i < b->nfns; i++)
		if (vdk_virtio_pci_mmio_read(b->fns[i], base + off, data,
					     len) == 0)
			return;
	memset(data, 0xff, len);
}

static void window_write(void *opaque, uint64_t base, uint64_t off,
			 const void *data, size_t len)
{
	struct vmm_pci_bus *b = opaque;

	for (unsigned int i = 0; i < b->nfns; i++)
		if (vdk_virtio_pci_mmio_write(b->fns[i], base + off, data,
					      len) == 0)
			return;
}

static const struct vdk_bus_device_ops window_ops = {.read = window_read,
						     .write = window_write};

struct vmm_pci_bus *vmm_pci_bus_new(struct vmm_kvm *kvm, struct vdk_bus *pio,
				    struct vdk_bus *mmio, uint64_t ram_end,
				    int *err)
{
	struct vmm_pci_bus *b = NULL;
	uint64_t base = ram_end > (1ull << 32) ? ram_end : 1ull << 32;
	int r = -EINVAL;

	if (base > (1ull << 46))
		goto out;
	r = -ENOMEM;
	b = calloc(1, sizeof(*b));
	if (!b)
		goto out;
	b->mem64_base =
		(base + VMM_PCI_MEM64_ALIGN - 1) & ~(VMM_PCI_MEM64_ALIGN - 1);
	pthread_mutex_init(&b->intx_lock, NULL);
	b->kvm = kvm;
	b->pio = pio;
	b->mmio = mmio;
	b->host = vmm_pci_host_new(VMM_PCI_MEM32_BASE, VMM_PCI_MEM32_SIZE,
				   b->mem64_base, VMM_PCI_MEM64_SIZE, &r);
	if (!b->host)
		goto out;
	r = vdk_bus_register(pio,
			     (struct vdk_bus_range){VMM_PCI_CONFIG_ADDRESS, 8},
			     (struct vdk_bus_device){&pio_ops, b});
	if (r < 0)
		goto out;
	b->pio_on = true;
	r = vdk_bus_register(mmio,
			     (struct vdk_bus_range){VMM_PCI_ECAM_BASE,
						    VMM_PCI_ECAM_BUS_SIZE},
			     (struct vdk_bus_device){&ecam_ops, b});
	if (r < 0)
		goto out;
	b->ecam_on = true;
	r = vdk_bus_register(
		mmio,
		(struct vdk_bus_range){VMM_PCI_MEM32_BASE, VMM_PCI_MEM32_SIZE},
		(struct vdk_bus_device){&window_ops, b});
	if (r < 0)
		goto out;
	b->window_on = true;
	r = vdk_bus_register(
		mmio, (struct vdk_bus_range){b->mem64_base, VMM_PCI_MEM64_SIZE},
		(struct vdk_bus_device){&window_ops, b});
	if (r < 0)
		goto out;
	b->window64_on = true;
out:
	if (err)
		*err = r;
	if (r < 0) {
		vmm_pci_bus_free(b);
		b = NULL;
	}
	return b;
}

void vmm_pci_bus_free(struct vmm_pci_bus *b)
{
	if (!b)
		return;
	if (b->pio_on)
		vdk_bus_deregister(b->pio, VMM_PCI_CONFIG_ADDRESS, NULL);
	if (b->ecam_on)
		vdk_bus_deregister(b->mmio, VMM_PCI_ECAM_BASE, NULL);
	if (b->window_on)
		vdk_bus_deregister(b->mmio, VMM_PCI_MEM32_BASE, NULL);
	if (b->window64_on)
		vdk_bus_deregister(b->mmio, b->mem64_base, NULL);
	vmm_pci_host_free(b->host);
	pthread_mutex_destroy(&b->intx_lock);
	free(b);
}

int vmm_pci_bus_add(struct vmm_pci_bus *b, struct vdk_virtio_pci *t,
		    unsigned int *slot)
{
	struct vdk_pci_dev *d = vdk_virtio_pci_dev(t);
	uint64_t addr;
	unsigned int s;
	int r;

	if (!b || !t)
		return -EINVAL;
	if (b->nfns >= VMM_PCI_SLOTS)
		return -ENOSPC;
	r = vmm_pci_host_alloc(b->host, VDK_VIRTIO_PCI_BAR_SIZE, true, &addr);
	if (r < 0)
		return r;
	r = vmm_pci_host_add(b->host, cfg_rd, cfg_wr, t, &s);
	if (r < 0)
		return r;
	r = vdk_pci_bar_set_addr(d, VDK_VIRTIO_PCI_BAR, addr);
	if (r < 0)
		return r;
	vdk_pci_set_command(d, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	b->slots[b->nfns] = s;
	b->fns[b->nfns++] = t;
	if (slot)
		*slot = s;
	return 0;
}

void vmm_pci_bus_msi(void *opaque, uint64_t addr, uint32_t data)
{
	static atomic_bool logged;
	int r = vmm_kvm_signal_msi(opaque, addr, data);

	/* A guest can make this fail at will (a bad address): say it once. */
	if (r < 0 && !atomic_exchange(&logged, true))
		vdk_log(VDK_LOG_WARN, MOD, "KVM_SIGNAL_MSI %#llx/%#x: %s",
			(unsigned long long)addr, data, strerror(-r));
}

static uint32_t intx_gsi(unsigned int slot)
{
	return VMM_PCI_INTX_GSI_FIRST + (slot - 1) % VMM_PCI_INTX_GSIS;
}

void vmm_pci_bus_intx(struct vmm_pci_bus *b, unsigned int slot, bool level)
{
	uint32_t gsi, share = 0, before, after;

	if (!b || slot == 0 || slot >= VMM_PCI_SLOTS)
		return;
	gsi = intx_gsi(slot);
	for (unsigned int s = 1; s < VMM_PCI_SLOTS; s++)
		if (intx_gsi(s) == gsi)
			share |= 1u << s;
	pthread_mutex_lock(&b->intx_lock);
	before = b->intx_up & share;
	if (level)
		b->intx_up |= 1u << slot;
	else
		b->intx_up &= ~(1u << slot);
	after = b->intx_up & share;
	/* The line is the OR of the pins that share it. */
	if (!before != !after && b->kvm)
		(void)vmm_kvm_irq_line(b->kvm, gsi, after != 0);
	pthread_mutex_unlock(&b->intx_lock);
}

void vmm_pci_bus_acpi(const struct vmm_pci_bus *b, struct vmm_acpi_pci *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; b && i < b->nfns; i++)
		out->slot_gsi[b->slots[i]] = intx_gsi(b->slots[i]);
	out->ecam_base = VMM_PCI_ECAM_BASE;
	out->mem32_base = (uint32_t)VMM_PCI_MEM32_BASE;
	out->mem32_size = (uint32_t)VMM_PCI_MEM32_SIZE;
	out->mem64_base = b ? b->mem64_base : 0;
	out->mem64_size = b ? VMM_PCI_MEM64_SIZE : 0;
}
