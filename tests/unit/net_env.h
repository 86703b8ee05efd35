/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The environment of the virtio-net tests (test_net.c, test_net_hostile.c):
 * a virtio-net device on a loopback backend behind the virtio-mmio
 * transport on an MMIO bus, driven by the driver-side library (src/driver)
 * as a guest driver would, with VIRTIO_RING_F_EVENT_IDX negotiated.
 *
 * Header-only (static inline) because each unit test is built from its one
 * .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_NET_ENV_H
#define VDK_TESTS_NET_ENV_H

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include <vdk/bus.h>
#include <vdk/device.h>
#include <vdk/devices/net.h>
#include <vdk/driver.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>
#include <vdk/virtq.h>

#define RAM_GPA	  0x40000000ull
#define RAM_SIZE  (16ull << 20)
#define MMIO_BASE 0xd0000000ull
#define QSIZE	  64
#define MAXQ	  (2 * 4 + 1)

#define F(bit)	  (1ull << (bit))

/* What a Linux guest accepts, with EVENT_IDX (MQ added when offered). */
#define NET_GUEST_FEATURES                                                     \
	(F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_EVENT_IDX) |                  \
	 F(VIRTIO_RING_F_INDIRECT_DESC) | F(VIRTIO_NET_F_MAC) |                \
	 F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF) |                  \
	 F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |                   \
	 F(VIRTIO_NET_F_CTRL_VLAN) | F(VIRTIO_NET_F_CTRL_MAC_ADDR) |           \
	 F(VIRTIO_NET_F_GUEST_ANNOUNCE) | F(VIRTIO_NET_F_MQ) |                 \
	 F(VIRTIO_NET_F_MTU) | F(VIRTIO_NET_F_CSUM) |                          \
	 F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |              \
	 F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN) |                \
	 F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |             \
	 F(VIRTIO_NET_F_GUEST_ECN))

static const uint8_t net_mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

struct dq {
	struct vdk_driver_virtq q;
	struct vdk_driver_virtq_slot slots[QSIZE];
	uint8_t *ring;
	uint8_t *indirect;
};

struct net_env {
	struct vdk_mem *mem;
	struct vdk_bus *bus;
	uint8_t *ram;
	size_t brk;
	struct vdk_net_backend *be;
	bool user_be; /* the test's; not freed by ne_free() */
	struct vdk_net *net;
	struct vdk_device *dev;
	struct vdk_mmio *mmio;
	struct vdk_driver_mmio drv;
	struct vdk_driver_hal hal;
	uint64_t neg;
	uint16_t pairs; /* max queue pairs */
	uint16_t nq;	/* queues set up */
	struct dq dq[MAXQ];
	unsigned irq_raises;
	bool irq_level;
};

static inline void net_quiet(void *o, enum vdk_log_level l, const char *m,
			     const char *msg)
{
	(void)o;
	(void)l;
	(void)m;
	(void)msg;
}

static inline void ne_notify(void *opaque, uint16_t queue)
{
	struct net_env *e = opaque;

	vdk_device_queue_notify(e->dev, queue);
}

static inline void ne_irq(void *opaque, bool level)
{
	struct net_env *e = opaque;

	if (level && !e->irq_level)
		e->irq_raises++;
	e->irq_level = level;
}

static inline uint32_t ne_rd(void *o, uint64_t a, size_t len)
{
	uint32_t v = 0;

	if (vdk_bus_read(((struct net_env *)o)->bus, a, &v, len) < 0)
		return 0;
	return v;
}
static inline void ne_wr(void *o, uint64_t a, uint32_t v, size_t len)
{
	(void)vdk_bus_write(((struct net_env *)o)->bus, a, &v, len);
}
static inline uint8_t ne_rd8(void *o, uint64_t a)
{
	return (uint8_t)ne_rd(o, a, 1);
}
static inline uint16_t ne_rd16(void *o, uint64_t a)
{
	return (uint16_t)ne_rd(o, a, 2);
}
static inline uint32_t ne_rd32(void *o, uint64_t a)
{
	return ne_rd(o, a, 4);
}
static inline void ne_wr8(void *o, uint64_t a, uint8_t v)
{
	ne_wr(o, a, v, 1);
}
static inline void ne_wr16(void *o, uint64_t a, uint16_t v)
{
	ne_wr(o, a, v, 2);
}
static inline void ne_wr32(void *o, uint64_t a, uint32_t v)
{
	ne_wr(o, a, v, 4);
}

static const struct vdk_driver_mmio_access ne_access = {
	.read8 = ne_rd8,
	.read16 = ne_rd16,
	.read32 = ne_rd32,
	.write8 = ne_wr8,
	.write16 = ne_wr16,
	.write32 = ne_wr32,
};

static inline uint64_t ne_v2p(void *opaque, const void *addr, size_t len)
{
	struct net_env *e = opaque;
	uintptr_t p = (uintptr_t)addr, lo = (uintptr_t)e->ram;

	if (p >= lo && p - lo <= RAM_SIZE && len <= RAM_SIZE - (p - lo))
		return RAM_GPA + (p - lo);
	return VDK_DRIVER_BAD_GPA;
}

static inline void *ne_alloc(struct net_env *e, size_t len, size_t align)
{
	size_t off = (e->brk + align - 1) & ~(align - 1);

	assert_true(off + len <= RAM_SIZE);
	e->brk = off + len;
	return e->ram + off;
}

/* vdk_net_config.busy_poll_us of the next ne_new*(). */
static uint32_t ne_busy_poll_us;

/* A device with @pairs queue pairs and MTU @mtu on backend @be (NULL: a
 * loopback, freed with the environment). */
static inline struct net_env *ne_new_be(uint16_t pairs, uint16_t mtu,
					struct vdk_net_backend *be)
{
	struct net_env *e = calloc(1, sizeof(*e));
	struct vdk_net_config cfg = {.max_queue_pairs = pairs, .mtu = mtu};
	int err = -1;

	assert_non_null(e);
	vdk_log_set_sink(net_quiet, NULL, VDK_LOG_DEBUG);
	e->pairs = pairs;
	e->mem = vdk_mem_new(&err);
	assert_non_null(e->mem);
	assert_int_equal(vdk_mem_add_memfd(e->mem, RAM_GPA, RAM_SIZE, "ram"),
			 0);
	e->ram = vdk_mem_find(e->mem, RAM_GPA)->hva;
	e->bus = vdk_bus_new(VDK_BUS_MMIO, &err);
	assert_non_null(e->bus);
	if (be) {
		e->user_be = true;
		e->be = be;
	} else {
		e->be = vdk_net_loopback_new(pairs, 0, &err);
	}
	assert_non_null(e->be);
	cfg.backend = e->be;
	memcpy(cfg.mac, net_mac, 6);
	cfg.queue_max_size = QSIZE;
	cfg.busy_poll_us = ne_busy_poll_us;
	e->net = vdk_net_new(&cfg, &err);
	assert_non_null(e->net);
	e->dev = vdk_net_device(e->net);
	struct vdk_mmio_config mc = {
		.device = e->dev,
		.mem = e->mem,
		.notify = ne_notify,
		.notify_opaque = e,
		.irq = ne_irq,
		.irq_opaque = e,
	};
	e->mmio = vdk_mmio_new(&mc, &err);
	assert_non_null(e->mmio);
	assert_int_equal(vdk_mmio_register(e->mmio, e->bus, MMIO_BASE), 0);
	e->hal = (struct vdk_driver_hal){.opaque = e, .virt_to_phys = ne_v2p};
	assert_int_equal(
		vdk_driver_mmio_init(&e->drv, MMIO_BASE, &ne_access, e), 0);
	return e;
}

static inline struct net_env *ne_new(uint16_t pairs, uint16_t mtu)
{
	return ne_new_be(pairs, mtu, NULL);
}

static inline void ne_free(struct net_env *e)
{
	assert_int_equal(vdk_bus_deregister(e->bus, MMIO_BASE, NULL), 0);
	vdk_mmio_free(e->mmio);
	vdk_net_free(e->net);
	if (!e->user_be)
		vdk_net_backend_free(e->be);
	vdk_bus_free(e->bus);
	vdk_mem_free(e->mem);
	free(e);
	vdk_log_set_sink(NULL, NULL, VDK_LOG_INFO);
}

static inline struct vdk_driver_transport *ne_tp(struct net_env *e)
{
	return &e->drv.transport;
}

/* Initialise the device accepting @features; set up rx/tx of every pair
 * the negotiation allows and the control queue if negotiated. */
static inline void ne_up(struct net_env *e, uint64_t features)
{
	assert_int_equal(vdk_driver_begin_init(ne_tp(e), features, &e->neg), 0);
	uint16_t pairs = (e->neg & F(VIRTIO_NET_F_MQ)) ? e->pairs : 1;

	e->nq = (uint16_t)(2 * pairs +
			   ((e->neg & F(VIRTIO_NET_F_CTRL_VQ)) ? 1 : 0));
	for (uint16_t i = 0; i < e->nq; i++) {
		struct dq *d = &e->dq[i];
		size_t len = vdk_driver_virtq_layout_size(QSIZE);
		struct vdk_driver_virtq_config c = {
			.index = i,
			.size = QSIZE,
			.features = e->neg,
			.slots = d->slots,
			.ring_len = len,
			.indirect_max = 8,
		};

		if (!d->ring) {
			d->ring = ne_alloc(e, len, 4096);
			d->indirect = ne_alloc(e, QSIZE * 8 * 16, 16);
		}
		c.ring = d->ring;
		c.ring_gpa = ne_v2p(e, d->ring, len);
		c.indirect = d->indirect;
		c.indirect_gpa = ne_v2p(e, d->indirect, QSIZE * 8 * 16);
		assert_int_equal(
			vdk_driver_virtq_init(&d->q, ne_tp(e), &e->hal, &c), 0);
	}
	assert_int_equal(vdk_driver_finish_init(ne_tp(e)), 0);
}

static inline struct dq *ne_rxq(struct net_env *e, uint16_t pair)
{
	return &e->dq[2 * pair];
}
static inline struct dq *ne_txq(struct net_env *e, uint16_t pair)
{
	return &e->dq[2 * pair + 1];
}
static inline struct dq *ne_ctrlq(struct net_env *e)
{
	return &e->dq[e->nq - 1];
}

/* Post one device-writable receive buffer of @len bytes; returns it. */
static inline uint8_t *ne_post_rx(struct net_env *e, uint16_t pair,
				  uint32_t len)
{
	uint8_t *p = ne_alloc(e, len, 64);
	struct vdk_driver_buf w = {p, len};

	memset(p, 0xee, len);
	assert_true(vdk_driver_virtq_add(&ne_rxq(e, pair)->q, NULL, 0, &w, 1) >=
		    0);
	vdk_driver_virtq_kick(&ne_rxq(e, pair)->q);
	return p;
}

/* An Ethernet frame of @len bytes to @dst (NULL: our MAC). */
static inline uint8_t *ne_frame(struct net_env *e, uint32_t len,
				const uint8_t *dst, uint8_t seed)
{
	uint8_t *p = ne_alloc(e, len, 16);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13);
	memcpy(p, dst ? dst : net_mac, 6);
	p[6] = 0x02; /* locally administered source */
	p[12] = 0x08;
	p[13] = 0x00;
	return p;
}

static inline struct virtio_net_hdr_v1 *ne_hdr(struct net_env *e)
{
	struct virtio_net_hdr_v1 *h = ne_alloc(e, sizeof(*h), 16);

	memset(h, 0, sizeof(*h));
	return h;
}

/* Transmit header + frame as two readable buffers and kick. */
static inline void ne_send(struct net_env *e, uint16_t pair,
			   const struct virtio_net_hdr_v1 *h,
			   const uint8_t *frame, uint32_t len)
{
	struct vdk_driver_buf r[2] = {{h, VDK_NET_HDR_LEN}, {frame, len}};

	assert_true(vdk_driver_virtq_add(&ne_txq(e, pair)->q, r, 2, NULL, 0) >=
		    0);
	vdk_driver_virtq_kick(&ne_txq(e, pair)->q);
}

/* Consume every used tx buffer; returns how many. */
static inline unsigned ne_reap_tx(struct net_env *e, uint16_t pair)
{
	uint16_t tok;
	uint32_t len;
	unsigned n = 0;

	while (vdk_driver_virtq_pop_used(&ne_txq(e, pair)->q, &tok, &len) ==
	       0) {
		assert_int_equal(len, 0);
		n++;
	}
	return n;
}

/* Send a control command; returns the ack byte (or -1 for no answer). */
static inline int ne_ctrl(struct net_env *e, uint8_t cls, uint8_t cmd,
			  const void *data, uint32_t len)
{
	uint8_t *hdr = ne_alloc(e, 2, 2), *ack = ne_alloc(e, 1, 1);
	uint8_t *d = len ? ne_alloc(e, len, 8) : NULL;
	struct vdk_driver_buf r[2] = {{hdr, 2}, {d, len}};
	struct vdk_driver_buf w = {ack, 1};
	struct dq *q = ne_ctrlq(e);
	uint16_t tok;
	uint32_t got;

	hdr[0] = cls;
	hdr[1] = cmd;
	if (len)
		memcpy(d, data, len);
	*ack = 0xaa;
	assert_true(vdk_driver_virtq_add(&q->q, r, len ? 2 : 1, &w, 1) >= 0);
	vdk_driver_virtq_kick(&q->q);
	if (vdk_driver_virtq_pop_used(&q->q, &tok, &got) < 0)
		return -2;
	return got == 1 ? *ack : -1;
}

static inline uint16_t ne_status(struct net_env *e)
{
	uint16_t s;

	assert_int_equal(vdk_driver_read_config_consistent(
				 ne_tp(e),
				 offsetof(struct virtio_net_config, status), &s,
				 2),
			 0);
	return le16toh(s);
}

#endif /* VDK_TESTS_NET_ENV_H */
