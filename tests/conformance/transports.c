/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device conformance suite's transport tests (see conformance.h):
 * each device, behind a real transport — virtio-mmio and virtio-pci — is
 * brought up by vdk's driver side the way a guest does it (virtio 1.2
 * §3.1.1: reset, features, queues, DRIVER_OK; for PCI also the BAR and
 * MSI-X, one vector per queue), serves requests through the suite's
 * submit/check hooks with transport notifications, signals the interrupt
 * the transport says it should (InterruptStatus for mmio, the queue's MSI-X
 * vector for PCI), and resets. A device does not know which transport
 * carries it: the same hooks serve both.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_ring.h>

#include <vdk/driver.h>
#include <vdk/mmio.h>
#include <vdk/virtio_pci.h>

#include "conformance.h"

#define PCI_WINDOW   0xe0000000ull
#define PCI_MSI_ADDR 0xfee00000ull

struct tctx {
	const struct vdk_conformance *suite;
	struct vdk_conformance_env env;
	struct vdk_device *dev;
	struct vdk_mmio *mmio;
	struct vdk_virtio_pci *pci;
	struct vdk_driver_mmio dmmio;
	struct vdk_driver_pci dpci;
	struct vdk_driver_transport *tp;
	atomic_uint irqs;			     /* mmio line raises */
	atomic_uint msis[VDK_DEVICE_MAX_QUEUES + 1]; /* per vector */
};

/* ---- fixture ------------------------------------------------------------ */

int vdk_conformance_transport_setup(void **state)
{
	const struct vdk_conformance *suite = *state;
	struct tctx *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -1;
	c->suite = suite;
	c->env.mem = vdk_mem_new(&err);
	if (!c->env.mem ||
	    vdk_mem_add_memfd(c->env.mem, 0, VDK_CONFORMANCE_MEM_SIZE,
			      "vdk-conformance") < 0) {
		vdk_mem_free(c->env.mem);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static void drop_device(struct tctx *c)
{
	vdk_mmio_free(c->mmio);
	vdk_virtio_pci_free(c->pci);
	c->mmio = NULL;
	c->pci = NULL;
	if (c->dev) {
		if (c->suite->destroy)
			c->suite->destroy(c->dev, c->suite->opaque);
		else
			vdk_device_fini(c->dev);
	}
	c->dev = NULL;
}

int vdk_conformance_transport_teardown(void **state)
{
	struct tctx *c = *state;

	drop_device(c);
	vdk_mem_free(c->env.mem);
	free(c);
	return 0;
}

/* ---- virtio-mmio: the window at address 0 of the accessors -------------- */

static uint32_t mmio_rd(void *o, uint64_t a, size_t n)
{
	uint32_t v = 0;

	vdk_mmio_read(((struct tctx *)o)->mmio, a, &v, n);
	return le32toh(v);
}

static void mmio_wr(void *o, uint64_t a, uint32_t v, size_t n)
{
	v = htole32(v);
	vdk_mmio_write(((struct tctx *)o)->mmio, a, &v, n);
}

/* ---- virtio-pci: configuration space and guest-physical BAR accesses ---- */

static uint32_t pci_cfg_rd(void *o, uint16_t off)
{
	uint32_t v = 0;

	vdk_virtio_pci_config_read(((struct tctx *)o)->pci, off, &v, 4);
	return le32toh(v);
}

static void pci_cfg_wr(void *o, uint16_t off, uint32_t v)
{
	v = htole32(v);
	vdk_virtio_pci_config_write(((struct tctx *)o)->pci, off, &v, 4);
}

static const struct vdk_driver_pci_cfg_access pci_cfg = {.read32 = pci_cfg_rd,
							 .write32 = pci_cfg_wr};

static uint32_t pci_rd(void *o, uint64_t a, size_t n)
{
	uint32_t v = 0;

	assert_int_equal(
		vdk_virtio_pci_mmio_read(((struct tctx *)o)->pci, a, &v, n), 0);
	return le32toh(v);
}

static void pci_wr(void *o, uint64_t a, uint32_t v, size_t n)
{
	v = htole32(v);
	assert_int_equal(
		vdk_virtio_pci_mmio_write(((struct tctx *)o)->pci, a, &v, n),
		0);
}

/* Accessors that go to whichever transport the context has. */
static uint32_t any_rd(void *o, uint64_t a, size_t n)
{
	return ((struct tctx *)o)->pci ? pci_rd(o, a, n) : mmio_rd(o, a, n);
}

static void any_wr(void *o, uint64_t a, uint32_t v, size_t n)
{
	if (((struct tctx *)o)->pci)
		pci_wr(o, a, v, n);
	else
		mmio_wr(o, a, v, n);
}

static uint8_t rd8(void *o, uint64_t a)
{
	return (uint8_t)any_rd(o, a, 1);
}

static uint16_t rd16(void *o, uint64_t a)
{
	return (uint16_t)any_rd(o, a, 2);
}

static uint32_t rd32(void *o, uint64_t a)
{
	return any_rd(o, a, 4);
}

static void wr8(void *o, uint64_t a, uint8_t v)
{
	any_wr(o, a, v, 1);
}

static void wr16(void *o, uint64_t a, uint16_t v)
{
	any_wr(o, a, v, 2);
}

static void wr32(void *o, uint64_t a, uint32_t v)
{
	any_wr(o, a, v, 4);
}

static const struct vdk_driver_mmio_access access = {
	.read8 = rd8,
	.read16 = rd16,
	.read32 = rd32,
	.write8 = wr8,
	.write16 = wr16,
	.write32 = wr32,
};

static void on_mmio_irq(void *opaque, bool level)
{
	if (level)
		atomic_fetch_add(&((struct tctx *)opaque)->irqs, 1);
}

static void on_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct tctx *c = opaque;

	/* May run on a device worker: count, let the test thread check. */
	if (addr == PCI_MSI_ADDR && data <= VDK_DEVICE_MAX_QUEUES)
		atomic_fetch_add(&c->msis[data], 1);
}

/* ---- the driver's part ---------------------------------------------------- */

static void create(struct tctx *c, bool pci)
{
	int err = -1;

	c->dev = c->suite->create(c->suite->opaque);
	assert_non_null(c->dev);
	if (pci) {
		struct vdk_virtio_pci_config cfg = {.device = c->dev,
						    .mem = c->env.mem,
						    .msi = on_msi,
						    .opaque = c};
		struct vdk_driver_pci_window w = {PCI_WINDOW,
						  PCI_WINDOW + 0x100000};

		c->pci = vdk_virtio_pci_new(&cfg, &err);
		assert_non_null(c->pci);
		assert_int_equal(vdk_driver_pci_init(&c->dpci, &pci_cfg, c,
						     &access, c, &w),
				 0);
		assert_int_equal(c->dpci.device_type, c->dev->ops->device_type);
		c->tp = &c->dpci.transport;
	} else {
		struct vdk_mmio_config cfg = {.device = c->dev,
					      .mem = c->env.mem,
					      .irq = on_mmio_irq,
					      .irq_opaque = c};

		c->mmio = vdk_mmio_new(&cfg, &err);
		assert_non_null(c->mmio);
		assert_int_equal(vdk_driver_mmio_init(&c->dmmio, 0, &access, c),
				 0);
		c->tp = &c->dmmio.transport;
	}
}

/* virtio 1.2 §3.1.1, all queues, from a reset device. */
static void bring_up(struct tctx *c, bool pci)
{
	struct vdk_conformance_env *env = &c->env;
	uint64_t offered = c->dev->ops->features(c->dev->impl);
	uint64_t want = c->suite->features
				? c->suite->features
				: offered & ~(1ull << VIRTIO_RING_F_EVENT_IDX);
	uint64_t addr[VDK_DEVICE_MAX_QUEUES + 1];
	uint32_t data[VDK_DEVICE_MAX_QUEUES + 1];

	env->num_queues = c->dev->num_queues;
	env->data_next = VDK_CONFORMANCE_DATA_GPA;
	assert_int_equal(vdk_driver_begin_init(c->tp, want, &env->features), 0);
	assert_int_equal(env->features, want & offered);
	if (pci) {
		for (uint16_t v = 0; v <= env->num_queues; v++) {
			addr[v] = PCI_MSI_ADDR;
			data[v] = v;
		}
		assert_int_equal(vdk_driver_pci_enable_msix(
					 &c->dpci, addr, data,
					 (uint16_t)(env->num_queues + 1)),
				 0);
	}
	for (uint16_t i = 0; i < env->num_queues; i++) {
		uint16_t max = c->tp->ops->max_queue_size(c->tp->ctx, i);
		uint16_t size = max < VDK_CONFORMANCE_QUEUE_SIZE
					? max
					: VDK_CONFORMANCE_QUEUE_SIZE;
		struct guest_ring *gr = &env->rings[i];

		assert_true(max > 0);
		memset(gr, 0, sizeof(*gr));
		assert_int_equal(guest_ring_init(gr, env->mem, size,
						 (uint64_t)i * 0x1000),
				 0);
		assert_int_equal(
			c->tp->ops->queue_set(c->tp->ctx, i, size, gr->desc_gpa,
					      gr->avail_gpa, gr->used_gpa),
			0);
		if (pci)
			assert_int_equal(
				vdk_driver_pci_queue_vector(&c->dpci, i),
				i + 1);
	}
	assert_int_equal(vdk_driver_finish_init(c->tp), 0);
	assert_false(vdk_driver_needs_reset(c->tp));
}

static unsigned interrupts(struct tctx *c, uint16_t q)
{
	return c->pci ? atomic_load(&c->msis[q + 1]) : atomic_load(&c->irqs);
}

/* One request: submit, notify through the transport, check, and see the
 * interrupt arrive (a device with workers may signal just after the used
 * ring is visible: wait for it, bounded). */
static void request(struct tctx *c)
{
	struct vdk_conformance_env *env = &c->env;
	int q = c->suite->submit(env, c->suite->opaque);
	unsigned before;

	assert_true(q >= 0 && q < env->num_queues);
	before = interrupts(c, (uint16_t)q);
	c->tp->ops->notify(c->tp->ctx, (uint16_t)q);
	assert_int_equal(c->suite->check(env, c->suite->opaque), 0);
	for (int i = 0; i < 5000 && interrupts(c, (uint16_t)q) == before; i++) {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
	}
	assert_true(interrupts(c, (uint16_t)q) > before);
	if (!c->pci)
		(void)c->tp->ops->ack_interrupt(c->tp->ctx);
	assert_false(vdk_driver_needs_reset(c->tp));
}

static void run(struct tctx *c, bool pci)
{
	create(c, pci);
	bring_up(c, pci);
	request(c);
	request(c);
	/* Reset, and the device comes up again on the same transport. */
	assert_int_equal(vdk_driver_reset(c->tp), 0);
	assert_int_equal(c->tp->ops->get_status(c->tp->ctx), 0);
	bring_up(c, pci);
	request(c);
	assert_int_equal(vdk_driver_reset(c->tp), 0);
	drop_device(c);
}

void vdk_conformance_over_mmio(void **state)
{
	run(*state, false);
}

void vdk_conformance_over_pci(void **state)
{
	run(*state, true);
}
