/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Driver side of the virtio-mmio transport, version 2 (virtio 1.2 §4.2.2,
 * §4.2.3): the register file driven through user-supplied accessors, so the
 * same code runs in a test (accessors routed to an MMIO bus) and in a guest
 * (volatile pointer accesses).
 *
 * Registers are accessed with aligned 32-bit accesses (§4.2.2.2); the
 * configuration space at 0x100 with the natural width of each piece
 * (8/16/32-bit; 64-bit fields as two 32-bit reads, which the generation
 * check of vdk_driver_read_config_consistent() makes safe).
 *
 * Freestanding: no libc, no allocation, no logging.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm-generic/errno.h>
#include <linux/virtio_mmio.h>

#include <vdk/driver.h>

/** MagicValue: "virt" in little-endian (§4.2.2). */
#define MMIO_MAGIC 0x74726976u
/** The only register layout this driver speaks (non-legacy). */
#define MMIO_VERSION_2 2u

/* ---- default accessors: volatile pointers -------------------------- */

static uint8_t vol_read8(void *opaque, uint64_t addr)
{
	(void)opaque;
	return *(volatile uint8_t *)(uintptr_t)addr;
}

static uint16_t vol_read16(void *opaque, uint64_t addr)
{
	uint16_t v;

	(void)opaque;
	v = *(volatile uint16_t *)(uintptr_t)addr;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	return v;
}

static uint32_t vol_read32(void *opaque, uint64_t addr)
{
	uint32_t v;

	(void)opaque;
	v = *(volatile uint32_t *)(uintptr_t)addr;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static void vol_write8(void *opaque, uint64_t addr, uint8_t val)
{
	(void)opaque;
	*(volatile uint8_t *)(uintptr_t)addr = val;
}

static void vol_write16(void *opaque, uint64_t addr, uint16_t val)
{
	(void)opaque;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	val = __builtin_bswap16(val);
#endif
	*(volatile uint16_t *)(uintptr_t)addr = val;
}

static void vol_write32(void *opaque, uint64_t addr, uint32_t val)
{
	(void)opaque;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	val = __builtin_bswap32(val);
#endif
	*(volatile uint32_t *)(uintptr_t)addr = val;
}

const struct vdk_driver_mmio_access vdk_driver_mmio_volatile = {
	.read8 = vol_read8,
	.read16 = vol_read16,
	.read32 = vol_read32,
	.write8 = vol_write8,
	.write16 = vol_write16,
	.write32 = vol_write32,
};

/* ---- register helpers ------------------------------------------------ */

static uint32_t rd(struct vdk_driver_mmio *m, uint32_t reg)
{
	return m->acc->read32(m->opaque, m->base + reg);
}

static void wr(struct vdk_driver_mmio *m, uint32_t reg, uint32_t val)
{
	m->acc->write32(m->opaque, m->base + reg, val);
}

/* ---- transport ops --------------------------------------------------- */

static uint32_t mmio_device_type(void *ctx)
{
	return ((struct vdk_driver_mmio *)ctx)->device_id;
}

static uint64_t mmio_read_device_features(void *ctx)
{
	struct vdk_driver_mmio *m = ctx;
	uint64_t lo, hi;

	/* §4.2.2: DeviceFeatures shows bits 32*sel .. 32*sel+31. */
	wr(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(m, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = rd(m, VIRTIO_MMIO_DEVICE_FEATURES);
	return hi << 32 | lo;
}

static void mmio_write_driver_features(void *ctx, uint64_t features)
{
	struct vdk_driver_mmio *m = ctx;

	wr(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

static uint16_t mmio_max_queue_size(void *ctx, uint16_t queue)
{
	struct vdk_driver_mmio *m = ctx;
	uint32_t max;

	wr(m, VIRTIO_MMIO_QUEUE_SEL, queue);
	max = rd(m, VIRTIO_MMIO_QUEUE_NUM_MAX);
	/* A device claiming more than a split ring can hold (§2.7: 32768)
	 * is clamped rather than trusted. */
	return max > 32768 ? 32768 : (uint16_t)max;
}

static void mmio_notify(void *ctx, uint16_t queue)
{
	wr(ctx, VIRTIO_MMIO_QUEUE_NOTIFY, queue);
}

static uint8_t mmio_get_status(void *ctx)
{
	return (uint8_t)rd(ctx, VIRTIO_MMIO_STATUS);
}

static void mmio_set_status(void *ctx, uint8_t status)
{
	wr(ctx, VIRTIO_MMIO_STATUS, status);
}

static void wr64(struct vdk_driver_mmio *m, uint32_t lo_reg, uint64_t val)
{
	/* The *_HIGH register is always 4 bytes above *_LOW (§4.2.2). */
	wr(m, lo_reg, (uint32_t)val);
	wr(m, lo_reg + 4, (uint32_t)(val >> 32));
}

static int mmio_queue_set(void *ctx, uint16_t queue, uint16_t size,
			  uint64_t desc, uint64_t driver, uint64_t device)
{
	struct vdk_driver_mmio *m = ctx;
	uint32_t max;

	/* §4.2.3.2: select, check not in use, check the maximum, then write
	 * size and the three areas, and finally QueueReady. */
	wr(m, VIRTIO_MMIO_QUEUE_SEL, queue);
	if (rd(m, VIRTIO_MMIO_QUEUE_READY) != 0)
		return -EBUSY;
	max = rd(m, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max == 0)
		return -ENOENT;
	if (size == 0 || size > max)
		return -EINVAL;
	wr(m, VIRTIO_MMIO_QUEUE_NUM, size);
	wr64(m, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	wr64(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, driver);
	wr64(m, VIRTIO_MMIO_QUEUE_USED_LOW, device);
	wr(m, VIRTIO_MMIO_QUEUE_READY, 1);
	return 0;
}

static void mmio_queue_unset(void *ctx, uint16_t queue)
{
	struct vdk_driver_mmio *m = ctx;

	/* §4.2.2.2: write 0 to QueueReady and read it back to synchronise
	 * with the device. */
	wr(m, VIRTIO_MMIO_QUEUE_SEL, queue);
	wr(m, VIRTIO_MMIO_QUEUE_READY, 0);
	(void)rd(m, VIRTIO_MMIO_QUEUE_READY);
	wr(m, VIRTIO_MMIO_QUEUE_NUM, 0);
	wr64(m, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	wr64(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0);
	wr64(m, VIRTIO_MMIO_QUEUE_USED_LOW, 0);
}

static bool mmio_queue_used(void *ctx, uint16_t queue)
{
	struct vdk_driver_mmio *m = ctx;

	wr(m, VIRTIO_MMIO_QUEUE_SEL, queue);
	return rd(m, VIRTIO_MMIO_QUEUE_READY) != 0;
}

static uint32_t mmio_ack_interrupt(void *ctx)
{
	struct vdk_driver_mmio *m = ctx;
	uint32_t pending;

	/* §4.2.3.4: read the causes, acknowledge exactly those. Bits this
	 * driver does not know are acknowledged too (and returned), so a
	 * device cannot keep the line asserted with them. */
	pending = rd(m, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (pending)
		wr(m, VIRTIO_MMIO_INTERRUPT_ACK, pending);
	return pending;
}

static uint32_t mmio_config_generation(void *ctx)
{
	return rd(ctx, VIRTIO_MMIO_CONFIG_GENERATION);
}

/*
 * Width of the next configuration access at @off with @left bytes to go:
 * the widest natural access (4, 2, 1) that is aligned and fits.
 */
static uint32_t config_width(uint32_t off, uint32_t left)
{
	if (left >= 4 && (off & 3) == 0)
		return 4;
	if (left >= 2 && (off & 1) == 0)
		return 2;
	return 1;
}

static int mmio_read_config(void *ctx, uint32_t offset, void *buf, uint32_t len)
{
	struct vdk_driver_mmio *m = ctx;
	uint8_t *out = buf;
	uint32_t end;

	if (__builtin_add_overflow(offset, len, &end) ||
	    end > UINT32_MAX - VIRTIO_MMIO_CONFIG)
		return -ERANGE;
	for (uint32_t off = offset; off < end;) {
		uint32_t w = config_width(off, end - off);
		uint64_t addr = m->base + VIRTIO_MMIO_CONFIG + off;
		uint32_t v;

		if (w == 4)
			v = m->acc->read32(m->opaque, addr);
		else if (w == 2)
			v = m->acc->read16(m->opaque, addr);
		else
			v = m->acc->read8(m->opaque, addr);
		/* Configuration fields are little-endian: store the bytes in
		 * device order whatever the host order. */
		for (uint32_t i = 0; i < w; i++)
			*out++ = (uint8_t)(v >> (8 * i));
		off += w;
	}
	return 0;
}

static int mmio_write_config(void *ctx, uint32_t offset, const void *buf,
			     uint32_t len)
{
	struct vdk_driver_mmio *m = ctx;
	const uint8_t *in = buf;
	uint32_t end;

	if (__builtin_add_overflow(offset, len, &end) ||
	    end > UINT32_MAX - VIRTIO_MMIO_CONFIG)
		return -ERANGE;
	for (uint32_t off = offset; off < end;) {
		uint32_t w = config_width(off, end - off);
		uint64_t addr = m->base + VIRTIO_MMIO_CONFIG + off;
		uint32_t v = 0;

		for (uint32_t i = 0; i < w; i++)
			v |= (uint32_t)*in++ << (8 * i);
		if (w == 4)
			m->acc->write32(m->opaque, addr, v);
		else if (w == 2)
			m->acc->write16(m->opaque, addr, (uint16_t)v);
		else
			m->acc->write8(m->opaque, addr, (uint8_t)v);
		off += w;
	}
	return 0;
}

const struct vdk_driver_transport_ops vdk_driver_mmio_ops = {
	.device_type = mmio_device_type,
	.read_device_features = mmio_read_device_features,
	.write_driver_features = mmio_write_driver_features,
	.max_queue_size = mmio_max_queue_size,
	.notify = mmio_notify,
	.get_status = mmio_get_status,
	.set_status = mmio_set_status,
	.queue_set = mmio_queue_set,
	.queue_unset = mmio_queue_unset,
	.queue_used = mmio_queue_used,
	.ack_interrupt = mmio_ack_interrupt,
	.config_generation = mmio_config_generation,
	.read_config = mmio_read_config,
	.write_config = mmio_write_config,
};

int vdk_driver_mmio_init(struct vdk_driver_mmio *m, uint64_t base,
			 const struct vdk_driver_mmio_access *acc, void *opaque)
{
	uint32_t version;

	m->acc = acc;
	m->opaque = opaque;
	m->base = base;
	m->transport.ops = &vdk_driver_mmio_ops;
	m->transport.ctx = m;
	m->device_id = 0;
	m->vendor_id = 0;

	/* §4.2.3.1.1: check MagicValue, then Version, then DeviceID. */
	if (rd(m, VIRTIO_MMIO_MAGIC_VALUE) != MMIO_MAGIC)
		return -ENXIO;
	version = rd(m, VIRTIO_MMIO_VERSION);
	if (version != MMIO_VERSION_2)
		return -EPROTONOSUPPORT;
	m->device_id = rd(m, VIRTIO_MMIO_DEVICE_ID);
	if (m->device_id == 0)
		return -ENODEV;
	m->vendor_id = rd(m, VIRTIO_MMIO_VENDOR_ID);
	return 0;
}
