/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/transport/pci.c (virtio-pci, device side) and
 * src/driver/pci.c (its driver side), one against the other in one
 * process: the echo test device behind a vdk_virtio_pci transport, the
 * driver reaching configuration space and the BAR through accessors that
 * call the transport. Then the hostile-driver cases of the issue, each by
 * raw accesses: wrong widths, queue_select out of range, bad queue sizes,
 * enabling twice, MSI-X vectors beyond the table, notifications for queues
 * that are not running, writes after DEVICE_NEEDS_RESET, the PCI_CFG
 * window pointed outside the BAR; and a hostile device for the driver
 * side (capability loops, structures outside their BAR).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include <vdk/driver.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtio_pci.h>

#include "echo_device.h"

#define RAM_GPA		     0x0ull
#define RAM_SIZE	     (1u << 20)
#define WINDOW_BASE	     0xe0000000ull
#define WINDOW_END	     0xf0000000ull
#define QSIZE		     64
#define F_VERSION_1	     (1ull << VIRTIO_F_VERSION_1)
#define F_RESET		     (1ull << VIRTIO_F_RING_RESET)
#define MSI_ADDR	     0xfee00000ull
#define MSI_DATA(v)	     (0x40u + (v))
#define VIRTIO_PCI_ISR_QUEUE 0x1

struct env {
	struct vdk_mem *mem;
	uint8_t *ram;
	size_t brk;
	struct echo_device *echo;
	struct vdk_device dev;
	struct vdk_device dev_b; /* a restored transport's device */
	struct vdk_device *cur;	 /* &dev, or &dev_b once swapped */
	struct vdk_device_ops ops;
	struct vdk_virtio_pci *t;
	struct vdk_driver_pci drv;
	struct vdk_driver_hal hal;
	struct vdk_driver_pci_window window;
	unsigned msis[8];
	unsigned msi_bad;
	bool intx;
	unsigned intx_raises;
	unsigned echo_notifies;
};

static struct env *g_env;

static uint64_t env_features(void *impl)
{
	return echo_device_vdk(g_env->echo)->ops->features(impl) | F_RESET;
}

static void env_queue_notify(void *impl, uint16_t index)
{
	g_env->echo_notifies++;
	echo_device_vdk(g_env->echo)->ops->queue_notify(impl, index);
}

static void on_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct env *e = opaque;

	if (addr != MSI_ADDR || data < MSI_DATA(0) || data >= MSI_DATA(8)) {
		e->msi_bad++;
		return;
	}
	e->msis[data - MSI_DATA(0)]++;
}

static void on_intx(void *opaque, bool level)
{
	struct env *e = opaque;

	e->intx = level;
	e->intx_raises += level;
}

/* ---- accessors: the driver's view, routed to the transport ------------- */

static uint32_t cfg_rd32(void *o, uint16_t off)
{
	uint32_t v = 0;

	vdk_virtio_pci_config_read(((struct env *)o)->t, off, &v, 4);
	return le32toh(v);
}

static void cfg_wr32(void *o, uint16_t off, uint32_t v)
{
	v = htole32(v);
	vdk_virtio_pci_config_write(((struct env *)o)->t, off, &v, 4);
}

static const struct vdk_driver_pci_cfg_access cfg_access = {
	.read32 = cfg_rd32, .write32 = cfg_wr32};

static uint32_t mem_rd(void *o, uint64_t a, size_t len)
{
	uint32_t v = 0;

	assert_int_equal(
		vdk_virtio_pci_mmio_read(((struct env *)o)->t, a, &v, len), 0);
	return le32toh(v);
}

static void mem_wr(void *o, uint64_t a, uint32_t v, size_t len)
{
	v = htole32(v);
	assert_int_equal(
		vdk_virtio_pci_mmio_write(((struct env *)o)->t, a, &v, len), 0);
}

static uint8_t acc_rd8(void *o, uint64_t a)
{
	return (uint8_t)mem_rd(o, a, 1);
}

static uint16_t acc_rd16(void *o, uint64_t a)
{
	return (uint16_t)mem_rd(o, a, 2);
}

static uint32_t acc_rd32(void *o, uint64_t a)
{
	return mem_rd(o, a, 4);
}

static void acc_wr8(void *o, uint64_t a, uint8_t v)
{
	mem_wr(o, a, v, 1);
}

static void acc_wr16(void *o, uint64_t a, uint16_t v)
{
	mem_wr(o, a, v, 2);
}

static void acc_wr32(void *o, uint64_t a, uint32_t v)
{
	mem_wr(o, a, v, 4);
}

static const struct vdk_driver_mmio_access mem_access = {
	.read8 = acc_rd8,
	.read16 = acc_rd16,
	.read32 = acc_rd32,
	.write8 = acc_wr8,
	.write16 = acc_wr16,
	.write32 = acc_wr32,
};

static uint64_t hal_v2p(void *opaque, const void *addr, size_t len)
{
	struct env *e = opaque;
	uintptr_t p = (uintptr_t)addr, lo = (uintptr_t)e->ram;

	if (p >= lo && p - lo <= RAM_SIZE && len <= RAM_SIZE - (p - lo))
		return RAM_GPA + (p - lo);
	return VDK_DRIVER_BAD_GPA;
}

/* ---- fixture -------------------------------------------------------------- */

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	int err = -1;

	assert_non_null(e);
	g_env = e;
	e->mem = vdk_mem_new(&err);
	assert_non_null(e->mem);
	assert_int_equal(vdk_mem_add_memfd(e->mem, RAM_GPA, RAM_SIZE, "ram"),
			 0);
	e->ram = vdk_mem_find(e->mem, RAM_GPA)->hva;
	e->echo = echo_device_new(&err);
	assert_non_null(e->echo);
	e->ops = *echo_device_vdk(e->echo)->ops;
	e->ops.features = env_features;
	e->ops.queue_notify = env_queue_notify;
	e->ops.destroy = NULL;
	assert_int_equal(vdk_device_init(&e->dev, &e->ops,
					 echo_device_vdk(e->echo)->impl),
			 0);
	struct vdk_virtio_pci_config cfg = {
		.device = &e->dev,
		.mem = e->mem,
		.msi = on_msi,
		.intx = on_intx,
		.opaque = e,
	};
	e->cur = &e->dev;
	e->t = vdk_virtio_pci_new(&cfg, &err);
	assert_non_null(e->t);
	assert_int_equal(err, 0);
	e->hal = (struct vdk_driver_hal){.opaque = e, .virt_to_phys = hal_v2p};
	e->window = (struct vdk_driver_pci_window){WINDOW_BASE, WINDOW_END};
	assert_int_equal(vdk_driver_pci_init(&e->drv, &cfg_access, e,
					     &mem_access, e, &e->window),
			 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	vdk_virtio_pci_free(e->t);
	vdk_device_fini(e->cur);
	echo_device_free(e->echo);
	vdk_mem_free(e->mem);
	free(e);
	g_env = NULL;
	return 0;
}

static struct vdk_driver_transport *tp(struct env *e)
{
	return &e->drv.transport;
}

static void *ram_alloc(struct env *e, size_t len, size_t align)
{
	size_t off = (e->brk + align - 1) & ~(align - 1);

	assert_true(off + len <= RAM_SIZE);
	e->brk = off + len;
	return e->ram + off;
}

struct dq {
	struct vdk_driver_virtq q;
	struct vdk_driver_virtq_slot slots[QSIZE];
	uint8_t *ring;
};

static int dq_init(struct env *e, struct dq *d, uint16_t index,
		   uint64_t features)
{
	size_t len = vdk_driver_virtq_layout_size(QSIZE);
	struct vdk_driver_virtq_config cfg = {
		.index = index,
		.size = QSIZE,
		.features = features,
		.slots = d->slots,
		.ring_len = len,
	};

	if (!d->ring)
		d->ring = ram_alloc(e, len, 4096);
	cfg.ring = d->ring;
	cfg.ring_gpa = hal_v2p(e, d->ring, len);
	return vdk_driver_virtq_init(&d->q, tp(e), &e->hal, &cfg);
}

static uint64_t bring_up(struct env *e, uint64_t features, struct dq *q0,
			 bool msix)
{
	uint64_t neg = 0, addr[3] = {MSI_ADDR, MSI_ADDR, MSI_ADDR};
	uint32_t data[3] = {MSI_DATA(0), MSI_DATA(1), MSI_DATA(2)};

	assert_int_equal(vdk_driver_begin_init(tp(e), features, &neg), 0);
	if (msix)
		assert_int_equal(
			vdk_driver_pci_enable_msix(&e->drv, addr, data, 3), 0);
	assert_int_equal(dq_init(e, q0, ECHO_QUEUE_ECHO, neg), 0);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	return neg;
}

static uint32_t echo_once(struct dq *d, uint32_t len)
{
	uint8_t *src = ram_alloc(g_env, 64, 64),
		*dst = ram_alloc(g_env, 64, 64);
	struct vdk_driver_buf r = {src, len}, w = {dst, 64};
	uint16_t token = 0xffff;
	uint32_t got = 0;
	int head;

	memset(src, 0x5a, 64);
	memset(dst, 0, 64);
	head = vdk_driver_virtq_add(&d->q, &r, 1, &w, 1);
	assert_true(head >= 0);
	vdk_driver_virtq_kick(&d->q);
	assert_true(vdk_driver_virtq_can_pop(&d->q));
	assert_int_equal(vdk_driver_virtq_pop_used(&d->q, &token, &got), 0);
	assert_int_equal(token, head);
	assert_int_equal(dst[0], 0x5a);
	return got;
}

/* Raw accesses to the common configuration, as a hostile driver makes. */
static uint32_t common_rd(struct env *e, uint32_t off, size_t len)
{
	return mem_rd(e, e->drv.common + off, len);
}

static void common_wr(struct env *e, uint32_t off, uint32_t v, size_t len)
{
	mem_wr(e, e->drv.common + off, v, len);
}

/* ---- identity and probing ------------------------------------------------- */

static void test_identity_and_caps(void **state)
{
	struct env *e = *state;
	struct vdk_pci_dev *pci = vdk_virtio_pci_dev(e->t);
	uint64_t a, s;

	assert_int_equal(cfg_rd32(e, PCI_VENDOR_ID),
			 (VDK_VIRTIO_PCI_DEVICE_ID_BASE + ECHO_DEVICE_ID)
					 << 16 |
				 0x1af4);
	assert_int_equal(cfg_rd32(e, PCI_REVISION_ID) & 0xff, 1);
	assert_int_equal(cfg_rd32(e, PCI_SUBSYSTEM_VENDOR_ID), 0x11001af4);
	assert_int_equal(e->drv.device_type, ECHO_DEVICE_ID);
	/* The driver placed BAR 0 in the window and turned decoding on. */
	assert_int_equal(vdk_pci_bar_region(pci, 0, &a, &s), 0);
	assert_int_equal(a, WINDOW_BASE);
	assert_int_equal(s, VDK_VIRTIO_PCI_BAR_SIZE);
	assert_int_equal(e->drv.common, WINDOW_BASE);
	assert_int_equal(e->drv.isr, WINDOW_BASE + VDK_VIRTIO_PCI_ISR_OFFSET);
	assert_int_equal(e->drv.device,
			 WINDOW_BASE + VDK_VIRTIO_PCI_DEVICE_OFFSET);
	assert_int_equal(e->drv.device_len, ECHO_CONFIG_SIZE);
	assert_int_equal(e->drv.notify,
			 WINDOW_BASE + VDK_VIRTIO_PCI_NOTIFY_OFFSET);
	assert_int_equal(e->drv.notify_mult, VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER);
	assert_int_equal(e->drv.msix_vectors, ECHO_NUM_QUEUES + 1);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_NUMQ, 2),
			 ECHO_NUM_QUEUES);
	assert_int_equal(vdk_virtio_pci_notify_offset(e->t, 1),
			 VDK_VIRTIO_PCI_NOTIFY_OFFSET + 4);
	assert_int_equal(vdk_virtio_pci_notify_offset(e->t, ECHO_NUM_QUEUES),
			 -ERANGE);
}

/* ---- operation -------------------------------------------------------------- */

static void test_echo_intx(void **state)
{
	struct env *e = *state;
	struct dq q0 = {0};

	bring_up(e, F_VERSION_1, &q0, false);
	assert_int_equal(vdk_driver_virtq_is_broken(&q0.q), false);
	assert_int_equal(echo_once(&q0, 16), 16);
	/* INTx: ISR bit 0 and the pin; reading the ISR clears both. */
	assert_true(e->intx);
	assert_int_equal(vdk_virtio_pci_isr(e->t), VIRTIO_PCI_ISR_QUEUE);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);
	assert_false(e->intx);
	assert_int_equal(vdk_virtio_pci_isr(e->t), 0);
	/* Configuration through the device cfg structure. */
	uint8_t id[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
	echo_device_set_id(e->echo, id);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_CONFIG);
	assert_int_equal(vdk_driver_read_config_consistent(
				 tp(e), ECHO_CONFIG_ID, got, sizeof(got)),
			 0);
	assert_memory_equal(got, id, sizeof(id));
	assert_int_equal(e->msis[0] + e->msis[1], 0);
	/* Reset through the driver. */
	assert_int_equal(vdk_driver_reset(tp(e)), 0);
	assert_int_equal(vdk_virtio_pci_status(e->t), 0);
}

static void test_echo_msix(void **state)
{
	struct env *e = *state;
	struct dq q0 = {0};

	bring_up(e, F_VERSION_1, &q0, true);
	assert_int_equal(vdk_virtio_pci_queue_vector(e->t, UINT16_MAX), 0);
	assert_int_equal(vdk_driver_pci_queue_vector(&e->drv, 0), 1);
	assert_int_equal(vdk_virtio_pci_queue_vector(e->t, 0), 1);
	assert_int_equal(echo_once(&q0, 8), 8);
	assert_int_equal(e->msis[1], 1);
	assert_int_equal(e->msis[0], 0);
	assert_false(e->intx);
	assert_int_equal(vdk_virtio_pci_isr(e->t), 0);
	/* A configuration change goes to the config vector. */
	uint8_t id[8] = {9};
	echo_device_set_id(e->echo, id);
	assert_int_equal(e->msis[0], 1);
	/* Masking vector 1 leaves the message pending until unmasked. */
	uint64_t ctl = e->drv.msix_table + 16 + PCI_MSIX_ENTRY_VECTOR_CTRL;
	acc_wr32(e, ctl, 1);
	assert_int_equal(echo_once(&q0, 8), 8);
	assert_int_equal(e->msis[1], 1);
	assert_true(vdk_pci_msix_pending(vdk_virtio_pci_dev(e->t), 1));
	acc_wr32(e, ctl, 0);
	assert_int_equal(e->msis[1], 2);
	/* A queue with VIRTIO_MSI_NO_VECTOR gets no interrupt at all. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR, 2);
	assert_int_equal(echo_once(&q0, 8), 8);
	assert_int_equal(e->msis[1], 2);
	assert_int_equal(vdk_virtio_pci_isr(e->t), 0);
	assert_int_equal(e->msi_bad, 0);
}

static void test_queue_reset(void **state)
{
	struct env *e = *state;
	struct dq q0 = {0};
	uint64_t neg = bring_up(e, F_VERSION_1 | F_RESET, &q0, true);

	assert_true(neg & F_RESET);
	assert_int_equal(echo_once(&q0, 8), 8);
	assert_int_equal(vdk_driver_pci_queue_reset(&e->drv, 0), 0);
	assert_false(tp(e)->ops->queue_used(tp(e)->ctx, 0));
	assert_false(vdk_virtio_pci_queue(e->t, 0)->active);
	assert_int_equal(vdk_virtio_pci_queue_vector(e->t, 0),
			 VIRTIO_MSI_NO_VECTOR);
	/* Notifications for the reset queue are dropped. */
	unsigned before = e->echo_notifies;
	tp(e)->ops->notify(tp(e)->ctx, 0);
	assert_int_equal(e->echo_notifies, before);
	/* Re-enable with a fresh ring: the queue runs again (§2.6.1.2). */
	assert_int_equal(dq_init(e, &q0, ECHO_QUEUE_ECHO, neg), 0);
	assert_true(vdk_virtio_pci_queue(e->t, 0)->active);
	assert_int_equal(echo_once(&q0, 12), 12);
	assert_int_equal(
		vdk_virtio_pci_status(e->t) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

static void test_inbound_notify(void **state)
{
	struct env *e = *state;
	struct dq q0 = {0};
	uint8_t *src = ram_alloc(e, 8, 8), *dst = ram_alloc(e, 8, 8);
	struct vdk_driver_buf r = {src, 8}, w = {dst, 8};
	uint16_t tok;
	uint32_t len;

	bring_up(e, F_VERSION_1, &q0, false);
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	/* The ioeventfd path: the VMM calls vdk_virtio_pci_notify(). */
	vdk_virtio_pci_notify(e->t, ECHO_QUEUE_ECHO);
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &tok, &len), 0);
	/* Queue 1 was never enabled; queue 9 does not exist. */
	unsigned before = e->echo_notifies;
	vdk_virtio_pci_notify(e->t, ECHO_QUEUE_SINK);
	vdk_virtio_pci_notify(e->t, 9);
	assert_int_equal(e->echo_notifies, before);
}

/* ---- hostile driver ---------------------------------------------------------- */

static void test_hostile_widths(void **state)
{
	struct env *e = *state;

	/* queue_select with 4 bytes, num_queues with 1: ignored / 0. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 0x10001, 4);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_NUMQ, 1), 0);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_DF + 1, 2), 0);
	/* device_status as 4 bytes: no status change. */
	common_wr(e, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, 4);
	assert_int_equal(vdk_virtio_pci_status(e->t), 0);
	/* Beyond the common structure, in the gaps, in the ISR. */
	assert_int_equal(common_rd(e, 0x100, 4), 0);
	common_wr(e, 0x4000, 1, 4);
	assert_int_equal(mem_rd(e, e->drv.isr, 4), 0);
	mem_wr(e, e->drv.isr, 0xff, 1);
	/* Notify with a byte or at a misaligned offset: dropped. */
	mem_wr(e, e->drv.notify + 1, 0, 2);
	mem_wr(e, e->drv.notify, 0, 1);
	/* Device config beyond its size. */
	assert_int_equal(mem_rd(e, e->drv.device + ECHO_CONFIG_SIZE, 4), 0);
	assert_int_equal(e->echo_notifies, 0);
	/* Configuration space: misaligned reads are all-ones. */
	uint32_t v = 0;
	vdk_virtio_pci_config_read(e->t, 1, &v, 2);
	assert_int_equal(v, 0xffff);
}

static void test_hostile_queue_fields(void **state)
{
	struct env *e = *state;
	uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	common_wr(e, VIRTIO_PCI_COMMON_STATUS, st, 1);
	/* queue_select out of range: size 0, NO_VECTOR, writes ignored. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, ECHO_NUM_QUEUES, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_MSIX, 2),
			 VIRTIO_MSI_NO_VECTOR);
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 0xffff, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_DESCLO, 0x1000, 4);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
	/* queue_size: not a power of two, above the maximum, zero. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SIZE, 2),
			 ECHO_QUEUE_MAX_SIZE);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SIZE, 100, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SIZE, ECHO_QUEUE_MAX_SIZE * 2, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SIZE, 0, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SIZE, 2),
			 ECHO_QUEUE_MAX_SIZE);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SIZE, 2), 16);
	/* MSI-X vectors beyond the table read back NO_VECTOR. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_MSIX, ECHO_NUM_QUEUES + 1, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_MSIX, 2),
			 VIRTIO_MSI_NO_VECTOR);
	common_wr(e, VIRTIO_PCI_COMMON_MSIX, 0x7ff, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_MSIX, 2),
			 VIRTIO_MSI_NO_VECTOR);
	common_wr(e, VIRTIO_PCI_COMMON_Q_MSIX, ECHO_NUM_QUEUES, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_MSIX, 2),
			 ECHO_NUM_QUEUES);
	/* queue_enable: 0 and 2 ignored; 1 once; fields frozen after. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 0, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	common_wr(e, VIRTIO_PCI_COMMON_Q_DESCLO, 0x1000, 4);
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 0, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	common_wr(e, VIRTIO_PCI_COMMON_Q_DESCLO, 0x2000, 4);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SIZE, 32, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x1000);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SIZE, 2), 16);
	/* Read-only fields. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_NOFF, 5, 2);
	common_wr(e, VIRTIO_PCI_COMMON_NUMQ, 5, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_NUMQ, 2),
			 ECHO_NUM_QUEUES);
	/* queue_reset without RING_RESET: nothing happens. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_RESET, 1, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	/* Features: unoffered bits refuse FEATURES_OK. */
	common_wr(e, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	common_wr(e, VIRTIO_PCI_COMMON_GF, 0x80000001u, 4);
	common_wr(e, VIRTIO_PCI_COMMON_STATUS, st | VIRTIO_CONFIG_S_FEATURES_OK,
		  1);
	assert_int_equal(vdk_virtio_pci_status(e->t), st);
	/* No notification reached the device. */
	mem_wr(e, e->drv.notify, 0, 2);
	assert_int_equal(e->echo_notifies, 0);
}

static void test_hostile_needs_reset(void **state)
{
	struct env *e = *state;
	uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	/* A queue outside guest memory fails at DRIVER_OK. */
	common_wr(e, VIRTIO_PCI_COMMON_STATUS, st, 1);
	common_wr(e, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	common_wr(e, VIRTIO_PCI_COMMON_GF, 1, 4); /* VERSION_1 */
	st |= VIRTIO_CONFIG_S_FEATURES_OK;
	common_wr(e, VIRTIO_PCI_COMMON_STATUS, st, 1);
	assert_int_equal(vdk_virtio_pci_status(e->t), st);
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	common_wr(e, VIRTIO_PCI_COMMON_Q_DESCHI, 0x10, 4);
	common_wr(e, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	common_wr(e, VIRTIO_PCI_COMMON_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK,
		  1);
	assert_true(vdk_virtio_pci_status(e->t) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(vdk_virtio_pci_isr(e->t), VIRTIO_PCI_ISR_CONFIG);
	/* Writes are ignored until the reset. */
	common_wr(e, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
	common_wr(e, VIRTIO_PCI_COMMON_MSIX, 0, 2);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_MSIX, 2),
			 VIRTIO_MSI_NO_VECTOR);
	mem_wr(e, e->drv.notify, 0, 2);
	mem_wr(e, e->drv.device + ECHO_CONFIG_SETTABLE, 7, 4);
	assert_int_equal(echo_device_config(e->echo).settable, 0);
	assert_int_equal(e->echo_notifies, 0);
	/* Reset: clean state, the device works again. */
	common_wr(e, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(vdk_virtio_pci_status(e->t), 0);
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	struct dq q0 = {0};
	bring_up(e, F_VERSION_1, &q0, false);
	assert_int_equal(echo_once(&q0, 4), 4);
}

static void test_pci_cfg_window(void **state)
{
	struct env *e = *state;
	uint8_t cap = 0;
	uint32_t v;

	/* Find VIRTIO_PCI_CAP_PCI_CFG. */
	for (uint8_t p = (uint8_t)cfg_rd32(e, PCI_CAPABILITY_LIST); p;
	     p = (uint8_t)(cfg_rd32(e, p) >> 8)) {
		uint32_t dw = cfg_rd32(e, p);

		if ((dw & 0xff) == PCI_CAP_ID_VNDR &&
		    (dw >> 24) == VIRTIO_PCI_CAP_PCI_CFG)
			cap = p;
	}
	assert_int_not_equal(cap, 0);
	/* Read num_queues through the window. */
	cfg_wr32(e, cap + 4, 0); /* bar 0 */
	cfg_wr32(e, cap + 8, VIRTIO_PCI_COMMON_NUMQ);
	cfg_wr32(e, cap + 12, 2);
	assert_int_equal(cfg_rd32(e, cap + 16) & 0xffff, ECHO_NUM_QUEUES);
	/* Write device_status through it. */
	cfg_wr32(e, cap + 8, VIRTIO_PCI_COMMON_STATUS);
	cfg_wr32(e, cap + 12, 1);
	cfg_wr32(e, cap + 16, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_int_equal(vdk_virtio_pci_status(e->t),
			 VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* Hostile windows: bad length, misaligned, outside the BAR, no
	 * such BAR. Reads give 0, writes do nothing. */
	cfg_wr32(e, cap + 12, 3);
	assert_int_equal(cfg_rd32(e, cap + 16), 0);
	cfg_wr32(e, cap + 12, 2);
	cfg_wr32(e, cap + 8, VIRTIO_PCI_COMMON_NUMQ + 1);
	assert_int_equal(cfg_rd32(e, cap + 16), 0);
	cfg_wr32(e, cap + 8, VDK_VIRTIO_PCI_BAR_SIZE);
	assert_int_equal(cfg_rd32(e, cap + 16), 0);
	cfg_wr32(e, cap + 16, 0);
	cfg_wr32(e, cap + 4, 5);
	cfg_wr32(e, cap + 8, 0);
	assert_int_equal(cfg_rd32(e, cap + 16), 0);
	cfg_wr32(e, cap + 4, 0xff);
	cfg_wr32(e, cap + 16, 0);
	assert_int_equal(vdk_virtio_pci_status(e->t),
			 VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* The capability's type and bar fields stay as they were written:
	 * only bar, offset, length and data are writable. */
	cfg_wr32(e, cap, 0xffffffff);
	v = cfg_rd32(e, cap);
	assert_int_equal(v & 0xff, PCI_CAP_ID_VNDR);
	assert_int_equal(v >> 24, VIRTIO_PCI_CAP_PCI_CFG);
	/* The MSI-X table through the window, 4 bytes. */
	cfg_wr32(e, cap + 4, 0);
	cfg_wr32(e, cap + 8, VDK_VIRTIO_PCI_MSIX_TABLE + 12);
	cfg_wr32(e, cap + 12, 4);
	assert_int_equal(cfg_rd32(e, cap + 16), 1); /* masked */
}

static void test_bar_moves(void **state)
{
	struct env *e = *state;
	uint32_t v = 0;

	/* Decoding off: the BAR is gone from guest-physical space. */
	cfg_wr32(e, PCI_COMMAND, 0);
	assert_int_equal(vdk_virtio_pci_mmio_read(e->t, WINDOW_BASE, &v, 4),
			 -ENOENT);
	/* Moved and re-enabled: found at the new place. */
	cfg_wr32(e, PCI_BASE_ADDRESS_0, 0xd0000000);
	cfg_wr32(e, PCI_COMMAND, PCI_COMMAND_MEMORY);
	assert_int_equal(
		vdk_virtio_pci_mmio_read(
			e->t, 0xd0000000 + VIRTIO_PCI_COMMON_NUMQ, &v, 2),
		0);
	assert_int_equal(v, ECHO_NUM_QUEUES);
	assert_int_equal(vdk_virtio_pci_mmio_read(e->t, WINDOW_BASE, &v, 4),
			 -ENOENT);
}

/* ---- snapshots ------------------------------------------------------------- */

static struct vdk_virtio_pci *fresh_transport(struct env *e,
					      struct echo_device **echo,
					      struct vdk_device *dev)
{
	struct vdk_virtio_pci_config cfg = {
		.mem = e->mem, .msi = on_msi, .intx = on_intx, .opaque = e};
	struct vdk_virtio_pci *t;
	int err = -1;

	*echo = echo_device_new(&err);
	assert_non_null(*echo);
	assert_int_equal(
		vdk_device_init(dev, &e->ops, echo_device_vdk(*echo)->impl), 0);
	cfg.device = dev;
	t = vdk_virtio_pci_new(&cfg, &err);
	assert_non_null(t);
	return t;
}

static void test_snapshot_restore(void **state)
{
	struct env *e = *state;
	struct dq q0 = {0};
	struct echo_device *echo2;
	struct vdk_virtio_pci *t2;
	uint8_t *buf = NULL;
	size_t len = 0;

	bring_up(e, F_VERSION_1 | F_RESET, &q0, true);
	assert_int_equal(echo_once(&q0, 8), 8);
	assert_int_equal(vdk_virtio_pci_snapshot(e->t, &buf, &len), -EBUSY);
	assert_int_equal(vdk_virtio_pci_sleep(e->t), 0);
	assert_int_equal(vdk_virtio_pci_sleep(e->t), -EBUSY);
	/* Asleep: accesses are ignored. */
	assert_int_equal(common_rd(e, VIRTIO_PCI_COMMON_NUMQ, 2), 0);
	assert_int_equal(vdk_virtio_pci_snapshot(e->t, &buf, &len), 0);

	/* Hostile snapshots: each corrupted byte is refused or gives a
	 * transport that still behaves; never a crash. */
	for (size_t at = 0; at < len; at += 7) {
		struct echo_device *ex;
		struct vdk_device dx;
		struct vdk_virtio_pci *tx = fresh_transport(e, &ex, &dx);
		uint8_t *bad = malloc(len);

		assert_non_null(bad);
		memcpy(bad, buf, len);
		bad[at] ^= 0x5a;
		assert_int_equal(vdk_virtio_pci_sleep(tx), 0);
		(void)vdk_virtio_pci_restore(tx, bad, len);
		assert_int_equal(vdk_virtio_pci_wake(tx), 0);
		free(bad);
		vdk_virtio_pci_free(tx);
		vdk_device_fini(&dx);
		echo_device_free(ex);
	}

	/* Into a fresh transport and device: the driver carries on. */
	t2 = fresh_transport(e, &echo2, &e->dev_b);
	assert_int_equal(vdk_virtio_pci_restore(t2, buf, len), -EBUSY);
	assert_int_equal(vdk_virtio_pci_sleep(t2), 0);
	assert_int_equal(vdk_virtio_pci_restore(t2, buf, len - 1), -EINVAL);
	assert_int_equal(vdk_virtio_pci_restore(t2, buf, len), 0);
	assert_int_equal(vdk_virtio_pci_wake(t2), 0);
	vdk_virtio_pci_free(e->t);
	vdk_device_fini(&e->dev);
	echo_device_free(e->echo);
	e->t = t2;
	e->cur = &e->dev_b;
	e->echo = echo2;
	free(buf);
	assert_int_equal(vdk_virtio_pci_status(e->t),
			 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				 VIRTIO_CONFIG_S_FEATURES_OK |
				 VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(vdk_virtio_pci_queue_vector(e->t, 0), 1);
	assert_true(vdk_pci_msix_enabled(vdk_virtio_pci_dev(e->t)));
	unsigned before = e->msis[1];
	assert_int_equal(echo_once(&q0, 8), 8);
	assert_int_equal(e->msis[1], before + 1);
	/* Queue reset still works on the restored transport. */
	assert_int_equal(vdk_driver_pci_queue_reset(&e->drv, 0), 0);
	assert_false(vdk_virtio_pci_queue(e->t, 0)->active);
}

/* ---- hostile device, for the driver side ------------------------------------ */

struct fake {
	uint8_t cfg[256];
};

static uint32_t fake_rd(void *o, uint16_t off)
{
	struct fake *f = o;
	uint32_t v;

	memcpy(&v, f->cfg + (off & 0xfc), 4);
	return v;
}

static void fake_wr(void *o, uint16_t off, uint32_t v)
{
	struct fake *f = o;

	/* BAR 0: a 64-bit 16 KiB memory BAR; the rest read-only. */
	if (off == PCI_COMMAND) {
		memcpy(f->cfg + off, &v, 2); /* status is read-only here */
		return;
	}
	if (off == PCI_BASE_ADDRESS_0)
		v = (v & ~0x3fffu) | PCI_BASE_ADDRESS_MEM_TYPE_64;
	else if (off != PCI_BASE_ADDRESS_1)
		return;
	memcpy(f->cfg + off, &v, 4);
}

static const struct vdk_driver_pci_cfg_access fake_access = {
	.read32 = fake_rd, .write32 = fake_wr};

static void fake_cap(struct fake *f, uint8_t at, uint8_t next, uint8_t type,
		     uint32_t offset, uint32_t length)
{
	uint8_t *c = f->cfg + at;

	c[0] = PCI_CAP_ID_VNDR;
	c[1] = next;
	c[2] = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? 20 : 16;
	c[3] = type;
	c[4] = 0;
	memcpy(c + 8, &offset, 4);
	memcpy(c + 12, &length, 4);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		c[16] = 4;
}

static void fake_init(struct fake *f)
{
	uint32_t bar = PCI_BASE_ADDRESS_MEM_TYPE_64;

	memset(f, 0, sizeof(*f));
	f->cfg[0] = 0xf4;
	f->cfg[1] = 0x1a;
	f->cfg[2] = 0x41; /* 0x1041: net */
	f->cfg[3] = 0x10;
	f->cfg[PCI_STATUS] = PCI_STATUS_CAP_LIST;
	memcpy(f->cfg + PCI_BASE_ADDRESS_0, &bar, 4);
	f->cfg[PCI_CAPABILITY_LIST] = 0x40;
	fake_cap(f, 0x40, 0x50, VIRTIO_PCI_CAP_COMMON_CFG, 0, 0x40);
	fake_cap(f, 0x50, 0x68, VIRTIO_PCI_CAP_NOTIFY_CFG, 0x1000, 0x100);
	fake_cap(f, 0x68, 0x00, VIRTIO_PCI_CAP_ISR_CFG, 0x2000, 4);
}

static void test_driver_hostile_device(void **state)
{
	struct fake f;
	struct vdk_driver_pci p;
	struct vdk_driver_pci_window w = {WINDOW_BASE, WINDOW_END};

	(void)state;
	fake_init(&f);
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 0);
	assert_int_equal(p.device_type, 1);
	assert_int_equal(p.bar_size[0], 0x4000);
	assert_int_equal(p.isr, WINDOW_BASE + 0x2000);
	/* A capability loop: the walk stops; ISR then is missing. */
	fake_init(&f);
	f.cfg[0x51] = 0x40;
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -ENODEV);
	/* A pointer into the header. */
	fake_init(&f);
	f.cfg[0x51] = 0x10;
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -EIO);
	/* A structure beyond its BAR; offset + length wrapping. */
	fake_init(&f);
	fake_cap(&f, 0x68, 0x00, VIRTIO_PCI_CAP_ISR_CFG, 0x3fff, 4);
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -EIO);
	fake_init(&f);
	fake_cap(&f, 0x68, 0x00, VIRTIO_PCI_CAP_ISR_CFG, 0xfffffff0u, 0x20);
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -EIO);
	/* A capability naming a BAR that does not exist. */
	fake_init(&f);
	f.cfg[0x68 + 4] = 2;
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -EIO);
	/* Legacy and foreign IDs; no window for an unassigned BAR. */
	fake_init(&f);
	f.cfg[2] = 0x00;
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -EPROTONOSUPPORT);
	f.cfg[0] = 0x86;
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &w),
			 -ENXIO);
	fake_init(&f);
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, NULL),
			 -ENOSPC);
	struct vdk_driver_pci_window tiny = {WINDOW_BASE, WINDOW_BASE + 0x1000};
	assert_int_equal(vdk_driver_pci_init(&p, &fake_access, &f, &mem_access,
					     NULL, &tiny),
			 -ENOSPC);
}

static void test_new_errors(void **state)
{
	struct env *e = *state;
	struct vdk_virtio_pci_config cfg = {
		.device = &e->dev, .mem = e->mem, .msi = on_msi};
	int err = 0;

	cfg.msi = NULL;
	assert_null(vdk_virtio_pci_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.msi = on_msi;
	cfg.msix_vectors = 257;
	assert_null(vdk_virtio_pci_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.mem = NULL;
	cfg.msix_vectors = 0;
	assert_null(vdk_virtio_pci_new(&cfg, &err));
	assert_null(vdk_virtio_pci_new(NULL, &err));
	vdk_virtio_pci_free(NULL);
}

static void quiet_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity_and_caps),
		T(test_echo_intx),
		T(test_echo_msix),
		T(test_queue_reset),
		T(test_inbound_notify),
		T(test_hostile_widths),
		T(test_hostile_queue_fields),
		T(test_hostile_needs_reset),
		T(test_pci_cfg_window),
		T(test_bar_moves),
		T(test_snapshot_restore),
		cmocka_unit_test(test_driver_hostile_device),
		T(test_new_errors),
	};

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
