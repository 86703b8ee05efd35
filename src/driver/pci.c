/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Driver side of the modern virtio-pci transport (virtio 1.2 §4.1): find
 * the capabilities, place and map the BARs, negotiate, set up queues and
 * MSI-X vectors. The semantics of the virtio-drivers crate's PciTransport:
 * configuration space through a 32-bit accessor (ports 0xCF8/0xCFC or
 * ECAM), BAR memory through struct vdk_driver_mmio_access.
 *
 * The device is not trusted: capability pointers are followed at most
 * VDK_DRIVER_PCI_MAX_CAPS times and must stay inside configuration space,
 * each structure must lie inside its BAR, and the notification address is
 * computed with overflow checks.
 *
 * Freestanding: no libc, no allocation, no logging.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm-generic/errno.h>
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>

#include <vdk/driver.h>

#define VIRTIO_VENDOR	   0x1af4
#define MODERN_DEVICE_BASE 0x1040
/* Transitional device IDs (virtio 1.2 §4.1.2.3): not spoken here. */
#define LEGACY_DEVICE_MIN 0x1000
#define LEGACY_DEVICE_MAX 0x103f

/* ---- configuration space ------------------------------------------------ */

static uint32_t cfg32(struct vdk_driver_pci *p, uint16_t off)
{
	return p->cfg->read32(p->cfg_opaque, (uint16_t)(off & ~3u));
}

static uint8_t cfg8(struct vdk_driver_pci *p, uint16_t off)
{
	return (uint8_t)(cfg32(p, off) >> (8 * (off & 3)));
}

static uint16_t cfg16(struct vdk_driver_pci *p, uint16_t off)
{
	return (uint16_t)(cfg32(p, off) >> (8 * (off & 2)));
}

/* A 16-bit write as a read-modify-write of its dword. Only used where the
 * other half is read-only or known (command/status, MSI-X control). */
static void cfg_write16(struct vdk_driver_pci *p, uint16_t off, uint16_t v)
{
	uint32_t dw = cfg32(p, off);
	unsigned int sh = 8 * (off & 2);

	if ((off & ~3u) == PCI_COMMAND)
		dw &= 0xffff; /* status bits are write-one-to-clear */
	dw = (dw & ~(0xffffu << sh)) | ((uint32_t)v << sh);
	p->cfg->write32(p->cfg_opaque, (uint16_t)(off & ~3u), dw);
}

/* ---- BAR memory ------------------------------------------------------------ */

static uint8_t rd8(struct vdk_driver_pci *p, uint64_t a)
{
	return p->acc->read8(p->opaque, a);
}

static uint16_t rd16(struct vdk_driver_pci *p, uint64_t a)
{
	return p->acc->read16(p->opaque, a);
}

static uint32_t rd32(struct vdk_driver_pci *p, uint64_t a)
{
	return p->acc->read32(p->opaque, a);
}

static void wr8(struct vdk_driver_pci *p, uint64_t a, uint8_t v)
{
	p->acc->write8(p->opaque, a, v);
}

static void wr16(struct vdk_driver_pci *p, uint64_t a, uint16_t v)
{
	p->acc->write16(p->opaque, a, v);
}

static void wr32(struct vdk_driver_pci *p, uint64_t a, uint32_t v)
{
	p->acc->write32(p->opaque, a, v);
}

static void wr64(struct vdk_driver_pci *p, uint64_t a, uint64_t v)
{
	/* §4.1.3.1: 64-bit fields as two 32-bit accesses, low first. */
	wr32(p, a, (uint32_t)v);
	wr32(p, a + 4, (uint32_t)(v >> 32));
}

#define COMMON(p, field) ((p)->common + VIRTIO_PCI_COMMON_##field)

/* ---- transport ops ---------------------------------------------------------- */

static uint32_t pci_device_type(void *ctx)
{
	return ((struct vdk_driver_pci *)ctx)->device_type;
}

static uint64_t pci_read_device_features(void *ctx)
{
	struct vdk_driver_pci *p = ctx;
	uint64_t lo, hi;

	wr32(p, COMMON(p, DFSELECT), 0);
	lo = rd32(p, COMMON(p, DF));
	wr32(p, COMMON(p, DFSELECT), 1);
	hi = rd32(p, COMMON(p, DF));
	return hi << 32 | lo;
}

static void pci_write_driver_features(void *ctx, uint64_t features)
{
	struct vdk_driver_pci *p = ctx;

	wr32(p, COMMON(p, GFSELECT), 0);
	wr32(p, COMMON(p, GF), (uint32_t)features);
	wr32(p, COMMON(p, GFSELECT), 1);
	wr32(p, COMMON(p, GF), (uint32_t)(features >> 32));
}

static uint16_t num_queues(struct vdk_driver_pci *p)
{
	return rd16(p, COMMON(p, NUMQ));
}

static uint16_t pci_max_queue_size(void *ctx, uint16_t queue)
{
	struct vdk_driver_pci *p = ctx;
	uint16_t max;

	if (queue >= num_queues(p))
		return 0;
	/* §4.1.4.3: queue_size reads the maximum after reset. */
	wr16(p, COMMON(p, Q_SELECT), queue);
	max = rd16(p, COMMON(p, Q_SIZE));
	return max > 32768 ? 32768 : max;
}

/* The notification address of @queue, or 0 if the device's offsets put it
 * outside the notification region (§4.1.4.4). */
static uint64_t notify_addr(struct vdk_driver_pci *p, uint16_t queue)
{
	uint64_t off;
	uint16_t noff;

	if (queue < VDK_DRIVER_PCI_MAX_QUEUES) {
		noff = p->notify_off[queue];
	} else {
		wr16(p, COMMON(p, Q_SELECT), queue);
		noff = rd16(p, COMMON(p, Q_NOFF));
	}
	off = (uint64_t)noff * p->notify_mult;
	if (off + 2 > p->notify_len)
		return 0;
	return p->notify + off;
}

static void pci_notify(void *ctx, uint16_t queue)
{
	struct vdk_driver_pci *p = ctx;
	uint64_t a = notify_addr(p, queue);

	if (a)
		wr16(p, a, queue);
}

static uint8_t pci_get_status(void *ctx)
{
	struct vdk_driver_pci *p = ctx;

	return rd8(p, COMMON(p, STATUS));
}

static void pci_set_status(void *ctx, uint8_t status)
{
	struct vdk_driver_pci *p = ctx;

	wr8(p, COMMON(p, STATUS), status);
}

static int pci_queue_set(void *ctx, uint16_t queue, uint16_t size,
			 uint64_t desc, uint64_t driver, uint64_t device)
{
	struct vdk_driver_pci *p = ctx;
	uint16_t max, vec;

	if (queue >= num_queues(p))
		return -ENOENT;
	/* §4.1.5.1.3: select, read the size and enable state, write the
	 * size, vector and areas, then enable. */
	wr16(p, COMMON(p, Q_SELECT), queue);
	if (rd16(p, COMMON(p, Q_ENABLE)) != 0)
		return -EBUSY;
	max = rd16(p, COMMON(p, Q_SIZE));
	if (max == 0)
		return -ENOENT;
	if (size == 0 || size > max)
		return -EINVAL;
	wr16(p, COMMON(p, Q_SIZE), size);
	if (p->msix_enabled) {
		vec = (uint32_t)queue + 1 < p->msix_vectors
			      ? (uint16_t)(queue + 1)
			      : VIRTIO_MSI_NO_VECTOR;
		wr16(p, COMMON(p, Q_MSIX), vec);
	}
	if (queue < VDK_DRIVER_PCI_MAX_QUEUES)
		p->notify_off[queue] = rd16(p, COMMON(p, Q_NOFF));
	wr64(p, COMMON(p, Q_DESCLO), desc);
	wr64(p, COMMON(p, Q_AVAILLO), driver);
	wr64(p, COMMON(p, Q_USEDLO), device);
	wr16(p, COMMON(p, Q_ENABLE), 1);
	return 0;
}

int vdk_driver_pci_queue_reset(struct vdk_driver_pci *p, uint16_t queue)
{
	wr16(p, COMMON(p, Q_SELECT), queue);
	wr16(p, COMMON(p, Q_RESET), 1);
	for (unsigned int i = 0; i < VDK_DRIVER_RESET_POLLS; i++) {
		wr16(p, COMMON(p, Q_SELECT), queue);
		if (rd16(p, COMMON(p, Q_RESET)) == 0 &&
		    rd16(p, COMMON(p, Q_ENABLE)) == 0)
			return 0;
	}
	return -ETIMEDOUT;
}

static void pci_queue_unset(void *ctx, uint16_t queue)
{
	/* A PCI driver must not write 0 to queue_enable (§4.1.4.3.2); the
	 * queue is released by queue_reset (if negotiated) or device reset. */
	(void)vdk_driver_pci_queue_reset(ctx, queue);
}

static bool pci_queue_used(void *ctx, uint16_t queue)
{
	struct vdk_driver_pci *p = ctx;

	if (queue >= num_queues(p))
		return false;
	wr16(p, COMMON(p, Q_SELECT), queue);
	return rd16(p, COMMON(p, Q_ENABLE)) != 0;
}

static uint32_t pci_ack_interrupt(void *ctx)
{
	struct vdk_driver_pci *p = ctx;

	/* §4.1.4.5: reading the ISR acknowledges it; bit 0 is a queue
	 * interrupt, bit 1 a configuration change, as the VDK_DRIVER_INT_*
	 * bits. Unused (0) with MSI-X. */
	return rd8(p, p->isr) & (VDK_DRIVER_INT_QUEUE | VDK_DRIVER_INT_CONFIG);
}

static uint32_t pci_config_generation(void *ctx)
{
	struct vdk_driver_pci *p = ctx;

	return rd8(p, COMMON(p, CFGGENERATION));
}

static uint32_t config_width(uint32_t off, uint32_t left)
{
	if (left >= 4 && (off & 3) == 0)
		return 4;
	if (left >= 2 && (off & 1) == 0)
		return 2;
	return 1;
}

static int pci_read_config(void *ctx, uint32_t offset, void *buf, uint32_t len)
{
	struct vdk_driver_pci *p = ctx;
	uint8_t *out = buf;
	uint32_t end;

	if (__builtin_add_overflow(offset, len, &end) || end > p->device_len)
		return -ERANGE;
	for (uint32_t off = offset; off < end;) {
		uint32_t w = config_width(off, end - off);
		uint64_t a = p->device + off;
		uint32_t v = w == 4   ? rd32(p, a)
			     : w == 2 ? rd16(p, a)
				      : rd8(p, a);

		for (uint32_t i = 0; i < w; i++)
			*out++ = (uint8_t)(v >> (8 * i));
		off += w;
	}
	return 0;
}

static int pci_write_config(void *ctx, uint32_t offset, const void *buf,
			    uint32_t len)
{
	struct vdk_driver_pci *p = ctx;
	const uint8_t *in = buf;
	uint32_t end;

	if (__builtin_add_overflow(offset, len, &end) || end > p->device_len)
		return -ERANGE;
	for (uint32_t off = offset; off < end;) {
		uint32_t w = config_width(off, end - off);
		uint64_t a = p->device + off;
		uint32_t v = 0;

		for (uint32_t i = 0; i < w; i++)
			v |= (uint32_t)*in++ << (8 * i);
		if (w == 4)
			wr32(p, a, v);
		else if (w == 2)
			wr16(p, a, (uint16_t)v);
		else
			wr8(p, a, (uint8_t)v);
		off += w;
	}
	return 0;
}

const struct vdk_driver_transport_ops vdk_driver_pci_ops = {
	.device_type = pci_device_type,
	.read_device_features = pci_read_device_features,
	.write_driver_features = pci_write_driver_features,
	.max_queue_size = pci_max_queue_size,
	.notify = pci_notify,
	.get_status = pci_get_status,
	.set_status = pci_set_status,
	.queue_set = pci_queue_set,
	.queue_unset = pci_queue_unset,
	.queue_used = pci_queue_used,
	.ack_interrupt = pci_ack_interrupt,
	.config_generation = pci_config_generation,
	.read_config = pci_read_config,
	.write_config = pci_write_config,
};

/* ---- probe ------------------------------------------------------------------- */

/* Size every BAR (PCI 3.0 §6.2.5.1) with decoding off. */
static int size_bars(struct vdk_driver_pci *p)
{
	for (uint16_t i = 0; i < 6; i++) {
		uint16_t reg = (uint16_t)(PCI_BASE_ADDRESS_0 + 4 * i);
		uint32_t lo = cfg32(p, reg), hi = 0, slo, shi = 0xffffffff;
		bool is64;
		uint64_t mask;

		p->bar_size[i] = 0;
		p->bar_addr[i] = 0;
		if (lo & PCI_BASE_ADDRESS_SPACE_IO)
			continue; /* I/O BARs are not used by modern virtio */
		is64 = (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
		       PCI_BASE_ADDRESS_MEM_TYPE_64;
		if (is64 && i == 5)
			return -EIO;
		p->cfg->write32(p->cfg_opaque, reg, 0xffffffff);
		slo = cfg32(p, reg);
		p->cfg->write32(p->cfg_opaque, reg, lo);
		if (is64) {
			hi = cfg32(p, (uint16_t)(reg + 4));
			p->cfg->write32(p->cfg_opaque, (uint16_t)(reg + 4),
					0xffffffff);
			shi = cfg32(p, (uint16_t)(reg + 4));
			p->cfg->write32(p->cfg_opaque, (uint16_t)(reg + 4), hi);
		}
		mask = ((uint64_t)(is64 ? shi : 0xffffffffu) << 32) |
		       (slo & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK);
		if ((slo & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK) != 0 || is64) {
			uint64_t size = ~mask + 1;

			if (mask != 0 && (size & (size - 1)) == 0) {
				p->bar_size[i] = size;
				p->bar_addr[i] =
					((uint64_t)hi << 32) |
					(lo &
					 (uint32_t)PCI_BASE_ADDRESS_MEM_MASK);
			}
		}
		if (is64)
			i++;
	}
	return 0;
}

static int place_bar(struct vdk_driver_pci *p, uint8_t bar,
		     struct vdk_driver_pci_window *w)
{
	uint16_t reg = (uint16_t)(PCI_BASE_ADDRESS_0 + 4 * bar);
	uint64_t size = p->bar_size[bar], a;
	bool is64;

	if (p->bar_addr[bar])
		return 0;
	if (!w)
		return -ENOSPC;
	a = (w->next + size - 1) & ~(size - 1);
	if (a < w->next || a > w->end || w->end - a < size)
		return -ENOSPC;
	is64 = (cfg32(p, reg) & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
	       PCI_BASE_ADDRESS_MEM_TYPE_64;
	if (!is64 && a + size - 1 > 0xffffffffu)
		return -ENOSPC;
	p->cfg->write32(p->cfg_opaque, reg, (uint32_t)a);
	if (is64)
		p->cfg->write32(p->cfg_opaque, (uint16_t)(reg + 4),
				(uint32_t)(a >> 32));
	p->bar_addr[bar] = a;
	w->next = a + size;
	return 0;
}

/* The address of a structure described by a capability, checked to lie
 * in its BAR; 0 if it does not. */
static uint64_t cap_region(struct vdk_driver_pci *p, uint8_t bar,
			   uint32_t offset, uint32_t length, uint32_t min_len)
{
	if (bar > 5 || !p->bar_size[bar] || length < min_len ||
	    (uint64_t)offset + length > p->bar_size[bar])
		return 0;
	return p->bar_addr[bar] + offset;
}

struct found {
	uint8_t bar;
	uint32_t offset, length;
	bool present;
};

int vdk_driver_pci_init(struct vdk_driver_pci *p,
			const struct vdk_driver_pci_cfg_access *cfg,
			void *cfg_opaque,
			const struct vdk_driver_mmio_access *acc, void *opaque,
			struct vdk_driver_pci_window *window)
{
	struct found f[VIRTIO_PCI_CAP_PCI_CFG + 1] = {{0}};
	uint16_t vendor, device;
	uint8_t ptr;
	int r;

	p->cfg = cfg;
	p->cfg_opaque = cfg_opaque;
	p->acc = acc;
	p->opaque = opaque;
	p->transport.ops = &vdk_driver_pci_ops;
	p->transport.ctx = p;
	p->msix_cap = 0;
	p->msix_vectors = 0;
	p->msix_enabled = false;
	p->device_len = 0;
	for (unsigned int i = 0; i < VDK_DRIVER_PCI_MAX_QUEUES; i++)
		p->notify_off[i] = 0;

	vendor = cfg16(p, PCI_VENDOR_ID);
	device = cfg16(p, PCI_DEVICE_ID);
	if (vendor != VIRTIO_VENDOR || device < LEGACY_DEVICE_MIN)
		return -ENXIO;
	if (device <= LEGACY_DEVICE_MAX)
		return -EPROTONOSUPPORT;
	p->device_type = device - MODERN_DEVICE_BASE;

	cfg_write16(p, PCI_COMMAND, 0); /* no decoding while sizing */
	r = size_bars(p);
	if (r < 0)
		return r;

	/* Walk the capability list (PCI 3.0 §6.7), bounded. */
	if (!(cfg16(p, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return -ENODEV;
	ptr = cfg8(p, PCI_CAPABILITY_LIST);
	for (unsigned int n = 0; ptr && n < VDK_DRIVER_PCI_MAX_CAPS; n++) {
		uint8_t id, type, bar, len;

		ptr &= 0xfc;
		if (ptr < 0x40)
			return -EIO;
		id = cfg8(p, ptr);
		if (id == PCI_CAP_ID_MSIX && !p->msix_cap) {
			uint32_t tbl = cfg32(p, (uint16_t)(ptr + 4));

			p->msix_cap = ptr;
			p->msix_vectors =
				(uint16_t)((cfg16(p, (uint16_t)(ptr + 2)) &
					    PCI_MSIX_FLAGS_QSIZE) +
					   1);
			/* The table is placed once the BARs are. */
			f[0].bar = (uint8_t)(tbl & PCI_MSIX_TABLE_BIR);
			f[0].offset = tbl & PCI_MSIX_TABLE_OFFSET;
			f[0].length = (uint32_t)p->msix_vectors * 16;
			f[0].present = true;
		} else if (id == PCI_CAP_ID_VNDR && ptr <= 256 - 16) {
			len = cfg8(p, (uint16_t)(ptr + VIRTIO_PCI_CAP_LEN));
			type = cfg8(p,
				    (uint16_t)(ptr + VIRTIO_PCI_CAP_CFG_TYPE));
			bar = cfg8(p, (uint16_t)(ptr + VIRTIO_PCI_CAP_BAR));
			/* §4.1.4.1: the first of each type is the one to
			 * use; unknown types are skipped. */
			if (len >= 16 && type >= VIRTIO_PCI_CAP_COMMON_CFG &&
			    type <= VIRTIO_PCI_CAP_DEVICE_CFG &&
			    !f[type].present) {
				f[type].bar = bar;
				f[type].offset = cfg32(
					p, (uint16_t)(ptr +
						      VIRTIO_PCI_CAP_OFFSET));
				f[type].length = cfg32(
					p, (uint16_t)(ptr +
						      VIRTIO_PCI_CAP_LENGTH));
				f[type].present = true;
				if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
					if (len < 20)
						return -EIO;
					p->notify_mult = cfg32(
						p,
						(uint16_t)(ptr +
							   VIRTIO_PCI_NOTIFY_CAP_MULT));
				}
			}
		}
		ptr = cfg8(p, (uint16_t)(ptr + 1));
	}
	if (!f[VIRTIO_PCI_CAP_COMMON_CFG].present ||
	    !f[VIRTIO_PCI_CAP_NOTIFY_CFG].present ||
	    !f[VIRTIO_PCI_CAP_ISR_CFG].present)
		return -ENODEV;

	for (unsigned int t = 0; t <= VIRTIO_PCI_CAP_DEVICE_CFG; t++) {
		if (!f[t].present)
			continue;
		if (f[t].bar > 5 || !p->bar_size[f[t].bar])
			return -EIO;
		r = place_bar(p, f[t].bar, window);
		if (r < 0)
			return r;
	}
	p->common = cap_region(p, f[VIRTIO_PCI_CAP_COMMON_CFG].bar,
			       f[VIRTIO_PCI_CAP_COMMON_CFG].offset,
			       f[VIRTIO_PCI_CAP_COMMON_CFG].length,
			       VIRTIO_PCI_COMMON_Q_USEDHI + 4);
	p->isr = cap_region(p, f[VIRTIO_PCI_CAP_ISR_CFG].bar,
			    f[VIRTIO_PCI_CAP_ISR_CFG].offset,
			    f[VIRTIO_PCI_CAP_ISR_CFG].length, 1);
	p->notify = cap_region(p, f[VIRTIO_PCI_CAP_NOTIFY_CFG].bar,
			       f[VIRTIO_PCI_CAP_NOTIFY_CFG].offset,
			       f[VIRTIO_PCI_CAP_NOTIFY_CFG].length, 2);
	p->notify_len = f[VIRTIO_PCI_CAP_NOTIFY_CFG].length;
	if (!p->common || !p->isr || !p->notify)
		return -EIO;
	if (f[VIRTIO_PCI_CAP_DEVICE_CFG].present) {
		p->device = cap_region(p, f[VIRTIO_PCI_CAP_DEVICE_CFG].bar,
				       f[VIRTIO_PCI_CAP_DEVICE_CFG].offset,
				       f[VIRTIO_PCI_CAP_DEVICE_CFG].length, 0);
		if (!p->device)
			return -EIO;
		p->device_len = f[VIRTIO_PCI_CAP_DEVICE_CFG].length;
	}
	if (p->msix_cap) {
		p->msix_table =
			cap_region(p, f[0].bar, f[0].offset, f[0].length, 16);
		if (!p->msix_table)
			p->msix_cap = 0; /* unusable: INTx only */
	}
	cfg_write16(p, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	return 0;
}

int vdk_driver_pci_enable_msix(struct vdk_driver_pci *p, const uint64_t *addr,
			       const uint32_t *data, uint16_t n)
{
	uint16_t ctl;

	if (!p->msix_cap)
		return -ENODEV;
	if (n == 0 || n > p->msix_vectors)
		return -EINVAL;
	for (uint16_t v = 0; v < n; v++) {
		uint64_t e = p->msix_table + (uint64_t)v * PCI_MSIX_ENTRY_SIZE;

		wr32(p, e + PCI_MSIX_ENTRY_LOWER_ADDR, (uint32_t)addr[v]);
		wr32(p, e + PCI_MSIX_ENTRY_UPPER_ADDR,
		     (uint32_t)(addr[v] >> 32));
		wr32(p, e + PCI_MSIX_ENTRY_DATA, data[v]);
		wr32(p, e + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	}
	ctl = cfg16(p, (uint16_t)(p->msix_cap + PCI_MSIX_FLAGS));
	ctl = (uint16_t)((ctl | PCI_MSIX_FLAGS_ENABLE) &
			 ~PCI_MSIX_FLAGS_MASKALL);
	cfg_write16(p, (uint16_t)(p->msix_cap + PCI_MSIX_FLAGS), ctl);
	p->msix_vectors = n;
	p->msix_enabled = true;
	wr16(p, COMMON(p, MSIX), 0);
	if (rd16(p, COMMON(p, MSIX)) != 0)
		return -EIO;
	return 0;
}

uint16_t vdk_driver_pci_queue_vector(struct vdk_driver_pci *p, uint16_t queue)
{
	wr16(p, COMMON(p, Q_SELECT), queue);
	return rd16(p, COMMON(p, Q_MSIX));
}
