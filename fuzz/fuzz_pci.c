/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the PCI configuration space model (src/pci.c) and the
 * virtio-pci transport (src/transport/pci.c) in front of a virtio-rng
 * device, driven by a hostile driver through configuration space and BAR
 * accesses.
 *
 * Input: byte 0: bit 0 set, the whole input is tiled over the 64 KiB of
 * guest memory (guest-physical 0..0xffff); clear, zeroes. Then operations,
 * each one opcode byte and its arguments (little-endian); a truncated
 * operation ends the input:
 *
 *   0 cfg read   off:u16 width:u8             configuration space
 *   1 cfg write  off:u16 width:u8 value:u32
 *   2 bar read   off:u16 width:u8             BAR 0, by offset
 *   3 bar write  off:u16 width:u8 value:u64
 *   4 poke       gpa:u16 len:u8 bytes[len]    guest memory (rings, buffers)
 *   5 phys       addr:u32 width:u8 value:u64  write at a guest-physical
 *                                             address (wherever the BAR is)
 *   6 notify     queue:u8                     inbound notification (ioeventfd)
 *   7 irq        kind:u8                      the device signals
 *   8 migrate    where:u16 xor:u8             sleep, snapshot, XOR one byte
 *                                             of it, restore into a fresh
 *                                             transport and device, wake
 *
 * cfg off: the low 12 bits (ECAM). bar off: bits 15..13 pick a structure
 * (common, ISR, device, notify, MSI-X table, PBA, raw, raw) and the low
 * bits an offset in it. width: 1 << (width & 3) bytes.
 *
 * Whatever the input: no crash, leak or sanitizer report; the INTx line
 * never repeats a level.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtio_pci.h>

#define GUEST_SIZE 0x10000u

struct rig {
	struct vdk_mem *mem;
	struct vdk_rng *rng;
	struct vdk_virtio_pci *t;
	bool intx;
	unsigned msis;
};

static uint8_t guest[GUEST_SIZE] __attribute__((aligned(4096)));

static void quiet(void *opaque, enum vdk_log_level level, const char *module,
		  const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

static void on_intx(void *opaque, bool level)
{
	struct rig *r = opaque;

	if (r->intx == level)
		abort();
	r->intx = level;
}

static void on_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)addr;
	(void)data;
	((struct rig *)opaque)->msis++;
}

static bool take(const uint8_t **p, size_t *left, void *out, size_t n)
{
	if (*left < n)
		return false;
	memcpy(out, *p, n);
	*p += n;
	*left -= n;
	return true;
}

static uint64_t bar_offset(uint16_t off)
{
	static const uint64_t base[8] = {VDK_VIRTIO_PCI_COMMON_OFFSET,
					 VDK_VIRTIO_PCI_ISR_OFFSET,
					 VDK_VIRTIO_PCI_DEVICE_OFFSET,
					 VDK_VIRTIO_PCI_NOTIFY_OFFSET,
					 VDK_VIRTIO_PCI_MSIX_TABLE,
					 VDK_VIRTIO_PCI_MSIX_PBA,
					 0,
					 0};
	unsigned int sel = off >> 13;

	if (sel >= 6)
		return off & 0x7fff;
	return base[sel] + (off & 0x7f);
}

static struct vdk_virtio_pci *new_transport(struct rig *r, struct vdk_rng **rng)
{
	struct vdk_rng_config rc = {.queue_max_size = 16,
				    .max_bytes_per_request = 64};
	struct vdk_virtio_pci_config cfg = {
		.mem = r->mem, .msi = on_msi, .intx = on_intx, .opaque = r};
	struct vdk_virtio_pci *t;

	*rng = vdk_rng_new(&rc, NULL);
	if (!*rng)
		return NULL;
	cfg.device = vdk_rng_device(*rng);
	t = vdk_virtio_pci_new(&cfg, NULL);
	if (!t) {
		vdk_rng_free(*rng);
		*rng = NULL;
	}
	return t;
}

/* Sleep, snapshot, corrupt one byte, restore into a fresh transport. The
 * INTx callback belongs to the rig: a restored transport starts with the
 * line low (the pin state is not part of the snapshot), so it is lowered
 * by hand before the new transport wakes. */
static void migrate(struct rig *r, uint16_t where, uint8_t xor)
{
	struct vdk_rng *rng2 = NULL;
	struct vdk_virtio_pci *t2;
	uint8_t *snap = NULL;
	size_t len = 0;

	if (vdk_virtio_pci_sleep(r->t) < 0)
		return;
	if (vdk_virtio_pci_snapshot(r->t, &snap, &len) < 0 || len == 0) {
		free(snap);
		if (vdk_virtio_pci_wake(r->t) < 0)
			abort();
		return;
	}
	snap[where % len] ^= xor;
	t2 = new_transport(r, &rng2);
	if (t2 && vdk_virtio_pci_sleep(t2) == 0 &&
	    vdk_virtio_pci_restore(t2, snap, len) == 0) {
		vdk_virtio_pci_free(r->t);
		vdk_rng_free(r->rng);
		r->t = t2;
		r->rng = rng2;
		r->intx = false;
		if (vdk_virtio_pci_wake(r->t) < 0)
			abort();
	} else {
		vdk_virtio_pci_free(t2);
		vdk_rng_free(rng2);
		if (vdk_virtio_pci_wake(r->t) < 0)
			abort();
	}
	free(snap);
}

static void signal_device(struct rig *r, uint8_t kind)
{
	struct vdk_interrupt *irq = vdk_rng_device(r->rng)->irq;

	if (!irq)
		return; /* not active */
	switch (kind % 3) {
	case 0:
		vdk_interrupt_signal_used_queue(irq, 0);
		break;
	case 1:
		vdk_interrupt_signal_config_changed(irq);
		break;
	default:
		vdk_interrupt_needs_reset(irq);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rig r = {0};
	const uint8_t *p = data;
	size_t left = size;
	uint8_t mode = 0, op, width, len, kind, xor, buf[8], bytes[256];
	uint16_t off, gpa, where;
	uint32_t addr, v32;
	uint64_t value;

	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	if (!take(&p, &left, &mode, 1))
		return 0;
	memset(guest, 0, sizeof(guest));
	for (size_t at = 0; (mode & 1) && size && at < GUEST_SIZE; at += size)
		memcpy(guest + at, data,
		       size < GUEST_SIZE - at ? size : GUEST_SIZE - at);
	r.mem = vdk_mem_new(NULL);
	if (!r.mem || vdk_mem_add_host(r.mem, 0, GUEST_SIZE, guest) < 0)
		goto out;
	r.t = new_transport(&r, &r.rng);

	while (r.t && take(&p, &left, &op, 1)) {
		switch (op % 9) {
		case 0:
			if (!take(&p, &left, &off, 2) ||
			    !take(&p, &left, &width, 1))
				goto out;
			vdk_virtio_pci_config_read(r.t, off & 0xfff, buf,
						   1u << (width & 3));
			break;
		case 1:
			if (!take(&p, &left, &off, 2) ||
			    !take(&p, &left, &width, 1) ||
			    !take(&p, &left, &v32, 4))
				goto out;
			memcpy(buf, &v32, 4);
			vdk_virtio_pci_config_write(
				r.t, off & 0xfff, buf,
				1u << (width & 3) > 4 ? 4 : 1u << (width & 3));
			break;
		case 2:
			if (!take(&p, &left, &off, 2) ||
			    !take(&p, &left, &width, 1))
				goto out;
			vdk_virtio_pci_bar_read(r.t, VDK_VIRTIO_PCI_BAR,
						bar_offset(off), buf,
						1u << (width & 3));
			break;
		case 3:
			if (!take(&p, &left, &off, 2) ||
			    !take(&p, &left, &width, 1) ||
			    !take(&p, &left, &value, 8))
				goto out;
			memcpy(buf, &value, 8);
			vdk_virtio_pci_bar_write(r.t, VDK_VIRTIO_PCI_BAR,
						 bar_offset(off), buf,
						 1u << (width & 3));
			break;
		case 4:
			if (!take(&p, &left, &gpa, 2) ||
			    !take(&p, &left, &len, 1) ||
			    !take(&p, &left, bytes, len))
				goto out;
			(void)vdk_mem_write(r.mem, gpa, bytes, len);
			break;
		case 5:
			if (!take(&p, &left, &addr, 4) ||
			    !take(&p, &left, &width, 1) ||
			    !take(&p, &left, &value, 8))
				goto out;
			memcpy(buf, &value, 8);
			(void)vdk_virtio_pci_mmio_write(r.t, addr, buf,
							1u << (width & 3));
			break;
		case 6:
			if (!take(&p, &left, &kind, 1))
				goto out;
			vdk_virtio_pci_notify(r.t, kind);
			break;
		case 8:
			if (!take(&p, &left, &where, 2) ||
			    !take(&p, &left, &xor, 1))
				goto out;
			migrate(&r, where, xor);
			break;
		default:
			if (!take(&p, &left, &kind, 1))
				goto out;
			signal_device(&r, kind);
			break;
		}
	}
out:
	vdk_virtio_pci_free(r.t);
	vdk_rng_free(r.rng);
	vdk_mem_free(r.mem);
	return 0;
}
