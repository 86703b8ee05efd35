/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_transport: one virtio-rng device, driven by vdk's driver side in
 * the same process, through virtio-mmio and through virtio-pci, side by
 * side. One operation: make one 64-byte device-writable buffer available,
 * notify through the transport (the device fills it synchronously), take
 * the used buffer, acknowledge the interrupt (mmio: InterruptStatus read
 * and InterruptACK write; pci: MSI-X, nothing to acknowledge).
 *
 * It prints, per transport, operations per second and the register
 * accesses the driver made per operation — the accesses that would be VM
 * exits in a VMM without ioeventfd — and the ratio pci/mmio of each.
 *
 *   build/bench/bench_transport [--iters N]     (default 200000)
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_config.h>

#include <vdk/devices/rng.h>
#include <vdk/driver.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>
#include <vdk/virtio_pci.h>

#define RAM_SIZE (1u << 20)
#define QSIZE	 64

struct rig {
	struct vdk_mem *mem;
	uint8_t *ram;
	struct vdk_mmio *mmio;
	struct vdk_virtio_pci *pci;
	unsigned long accesses;
};

static uint32_t rd(void *o, uint64_t a, size_t n)
{
	struct rig *r = o;
	uint32_t v = 0;

	r->accesses++;
	if (r->pci)
		vdk_virtio_pci_mmio_read(r->pci, a, &v, n);
	else
		vdk_mmio_read(r->mmio, a, &v, n);
	return le32toh(v);
}

static void wr(void *o, uint64_t a, uint32_t v, size_t n)
{
	struct rig *r = o;

	r->accesses++;
	v = htole32(v);
	if (r->pci)
		vdk_virtio_pci_mmio_write(r->pci, a, &v, n);
	else
		vdk_mmio_write(r->mmio, a, &v, n);
}

static uint8_t rd8(void *o, uint64_t a)
{
	return (uint8_t)rd(o, a, 1);
}
static uint16_t rd16(void *o, uint64_t a)
{
	return (uint16_t)rd(o, a, 2);
}
static uint32_t rd32(void *o, uint64_t a)
{
	return rd(o, a, 4);
}
static void wr8(void *o, uint64_t a, uint8_t v)
{
	wr(o, a, v, 1);
}
static void wr16(void *o, uint64_t a, uint16_t v)
{
	wr(o, a, v, 2);
}
static void wr32(void *o, uint64_t a, uint32_t v)
{
	wr(o, a, v, 4);
}

static const struct vdk_driver_mmio_access acc = {rd8, rd16, rd32,
						  wr8, wr16, wr32};

static uint32_t cfg_rd(void *o, uint16_t off)
{
	uint32_t v = 0;

	vdk_virtio_pci_config_read(((struct rig *)o)->pci, off, &v, 4);
	return le32toh(v);
}

static void cfg_wr(void *o, uint16_t off, uint32_t v)
{
	v = htole32(v);
	vdk_virtio_pci_config_write(((struct rig *)o)->pci, off, &v, 4);
}

static const struct vdk_driver_pci_cfg_access cfg = {cfg_rd, cfg_wr};

static void msi(void *o, uint64_t a, uint32_t d)
{
	(void)o;
	(void)a;
	(void)d;
}

static uint64_t v2p(void *o, const void *p, size_t len)
{
	struct rig *r = o;
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)r->ram;

	(void)len;
	return a >= lo && a - lo < RAM_SIZE ? a - lo : VDK_DRIVER_BAD_GPA;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run @iters operations; return ops/s, set *@per to accesses per op. */
static double run(bool pci, unsigned long iters, double *per)
{
	static struct vdk_driver_virtq_slot slots[QSIZE];
	struct rig r = {0};
	struct vdk_rng *rng;
	struct vdk_driver_mmio dm;
	struct vdk_driver_pci dp;
	struct vdk_driver_transport *t;
	struct vdk_driver_virtq q;
	struct vdk_driver_hal hal = {&r, v2p};
	struct vdk_driver_pci_window w = {0xe0000000ull, 0xf0000000ull};
	uint64_t neg, addr[2] = {0xfee00000, 0xfee00000};
	uint32_t data[2] = {0, 1};
	uint8_t *buf;
	double t0, t1;

	r.mem = vdk_mem_new(NULL);
	if (!r.mem || vdk_mem_add_memfd(r.mem, 0, RAM_SIZE, "ram") < 0 ||
	    !(rng = vdk_rng_new(NULL, NULL)))
		exit(1);
	r.ram = vdk_mem_find(r.mem, 0)->hva;
	if (pci) {
		struct vdk_virtio_pci_config pc = {.device =
							   vdk_rng_device(rng),
						   .mem = r.mem,
						   .msi = msi};
		r.pci = vdk_virtio_pci_new(&pc, NULL);
		if (!r.pci ||
		    vdk_driver_pci_init(&dp, &cfg, &r, &acc, &r, &w) < 0)
			exit(1);
		t = &dp.transport;
	} else {
		struct vdk_mmio_config mc = {.device = vdk_rng_device(rng),
					     .mem = r.mem};
		r.mmio = vdk_mmio_new(&mc, NULL);
		if (!r.mmio || vdk_driver_mmio_init(&dm, 0, &acc, &r) < 0)
			exit(1);
		t = &dm.transport;
	}
	if (vdk_driver_begin_init(t, 1ull << VIRTIO_F_VERSION_1, &neg) < 0 ||
	    (pci && vdk_driver_pci_enable_msix(&dp, addr, data, 2) < 0))
		exit(1);
	struct vdk_driver_virtq_config qc = {
		.index = 0,
		.size = QSIZE,
		.features = neg,
		.ring = r.ram,
		.ring_gpa = 0,
		.ring_len = vdk_driver_virtq_layout_size(QSIZE),
		.slots = slots,
	};
	if (vdk_driver_virtq_init(&q, t, &hal, &qc) < 0 ||
	    vdk_driver_finish_init(t) < 0)
		exit(1);
	buf = r.ram + 0x10000;
	r.accesses = 0;
	t0 = now();
	for (unsigned long i = 0; i < iters; i++) {
		struct vdk_driver_buf b = {buf, 64};
		uint16_t tok;
		uint32_t len;

		if (vdk_driver_virtq_add(&q, NULL, 0, &b, 1) < 0)
			exit(1);
		vdk_driver_virtq_notify(&q);
		if (vdk_driver_virtq_pop_used(&q, &tok, &len) < 0)
			exit(1);
		if (!pci)
			(void)t->ops->ack_interrupt(t->ctx);
	}
	t1 = now();
	*per = (double)r.accesses / (double)iters;
	vdk_driver_reset(t);
	vdk_mmio_free(r.mmio);
	vdk_virtio_pci_free(r.pci);
	vdk_rng_free(rng);
	vdk_mem_free(r.mem);
	return (double)iters / (t1 - t0);
}

static void quiet(void *o, enum vdk_log_level l, const char *m, const char *s)
{
	(void)o;
	(void)l;
	(void)m;
	(void)s;
}

int main(int argc, char **argv)
{
	unsigned long iters = 200000;
	double mmio_ops, pci_ops, mmio_acc, pci_acc;

	if (argc == 3 && !strcmp(argv[1], "--iters"))
		iters = strtoul(argv[2], NULL, 0);
	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	mmio_ops = run(false, iters, &mmio_acc);
	pci_ops = run(true, iters, &pci_acc);
	printf("transport    ops/s        accesses/op (exits without "
	       "ioeventfd)\n");
	printf("virtio-mmio  %-12.0f %.2f\n", mmio_ops, mmio_acc);
	printf("virtio-pci   %-12.0f %.2f\n", pci_ops, pci_acc);
	printf("pci/mmio     %-12.2f %.2f\n", pci_ops / mmio_ops,
	       pci_acc / mmio_acc);
	return 0;
}
