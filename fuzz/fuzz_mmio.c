/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the virtio-mmio transport (src/transport/mmio.c) in
 * front of a virtio-rng device, driven by a hostile driver.
 *
 * Input: byte 0 chooses how the 64 KiB of guest memory (guest-physical
 * 0..0xffff) starts: bit 0 set, the whole input is tiled over it; clear,
 * zeroes. Then a sequence of operations, each one opcode byte and its
 * arguments (little-endian); a truncated operation ends the input:
 *
 *   0 read   off:u8 width:u8            register/config read
 *   1 write  off:u8 width:u8 value:u64  register/config write
 *   2 poke   gpa:u16 len:u8 bytes[len]  write guest memory (rings, buffers)
 *   3 migrate where:u16 xor:u8          sleep, snapshot, XOR one byte of the
 *                                       snapshot, restore into a fresh
 *                                       transport and device, wake it
 *   4 irq    kind:u8                    the device signals (used buffer,
 *                                       configuration change, needs reset)
 *
 * off: bit 7 clear → register (off & 0x7f) * 4 (0x000..0x1fc, config space
 * included); set → raw byte offset (off & 0x7f) (misaligned accesses).
 * width: 1 << (width & 3) bytes.
 *
 * The queues are real: a driver that writes sensible areas and DRIVER_OK
 * gets requests served from guest memory the input wrote. Whatever the
 * input, the process must not crash, leak or trip a sanitizer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>

#define GUEST_SIZE 0x10000u

/* The interrupt line of one transport. */
struct line {
	bool level;
};

struct rig {
	struct vdk_mem *mem;
	struct vdk_rng *rng;
	struct vdk_mmio *t;
	struct line lines[2]; /* the current transport's and a spare */
	int cur;
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

static void on_irq(void *opaque, bool level)
{
	struct line *l = opaque;

	/* Level-triggered: the transport never repeats a level. */
	if (l->level == level)
		abort();
	l->level = level;
}

static struct vdk_mmio *new_transport(struct rig *r, struct vdk_rng **rng,
				      struct line *line)
{
	struct vdk_rng_config rc = {.queue_max_size = 16,
				    .max_bytes_per_request = 64};
	struct vdk_mmio_config cfg = {
		.mem = r->mem, .irq = on_irq, .irq_opaque = line};
	struct vdk_mmio *t;

	line->level = false;
	*rng = vdk_rng_new(&rc, NULL);
	if (!*rng)
		return NULL;
	cfg.device = vdk_rng_device(*rng);
	t = vdk_mmio_new(&cfg, NULL);
	if (!t) {
		vdk_rng_free(*rng);
		*rng = NULL;
	}
	return t;
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

static uint64_t offset_of(uint8_t off)
{
	return (off & 0x80) ? (uint64_t)(off & 0x7f) : (uint64_t)off * 4;
}

/* Sleep, snapshot, corrupt one byte, restore into a fresh transport. */
static void migrate(struct rig *r, uint16_t where, uint8_t xor)
{
	struct vdk_rng *rng2 = NULL;
	struct vdk_mmio *t2;
	uint8_t *snap = NULL;
	size_t len = 0;

	if (vdk_mmio_sleep(r->t) < 0)
		return;
	if (vdk_mmio_snapshot(r->t, &snap, &len) < 0 || len == 0) {
		free(snap);
		if (vdk_mmio_wake(r->t) < 0)
			abort();
		return;
	}
	snap[where % len] ^= xor;
	t2 = new_transport(r, &rng2, &r->lines[r->cur ^ 1]);
	if (t2 && vdk_mmio_sleep(t2) == 0 &&
	    vdk_mmio_restore(t2, snap, len) == 0 && vdk_mmio_wake(t2) == 0) {
		/* The old pair goes; its line is the spare from now on. */
		vdk_mmio_free(r->t);
		vdk_rng_free(r->rng);
		r->t = t2;
		r->rng = rng2;
		r->cur ^= 1;
	} else {
		/* A refused snapshot: the old transport carries on. */
		vdk_mmio_free(t2);
		vdk_rng_free(rng2);
		if (vdk_mmio_wake(r->t) < 0)
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
	uint8_t mode = 0, op, off, width, len, kind, xor;
	uint8_t buf[8], bytes[256];
	uint16_t gpa, where;
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
	r.t = new_transport(&r, &r.rng, &r.lines[0]);

	while (r.t && take(&p, &left, &op, 1)) {
		switch (op % 5) {
		case 0:
			if (!take(&p, &left, &off, 1) ||
			    !take(&p, &left, &width, 1))
				goto out;
			vdk_mmio_read(r.t, offset_of(off), buf,
				      1u << (width & 3));
			break;
		case 1:
			if (!take(&p, &left, &off, 1) ||
			    !take(&p, &left, &width, 1) ||
			    !take(&p, &left, &value, 8))
				goto out;
			memcpy(buf, &value, 8);
			vdk_mmio_write(r.t, offset_of(off), buf,
				       1u << (width & 3));
			break;
		case 2:
			if (!take(&p, &left, &gpa, 2) ||
			    !take(&p, &left, &len, 1) ||
			    !take(&p, &left, bytes, len))
				goto out;
			(void)vdk_mem_write(r.mem, gpa, bytes, len);
			break;
		case 3:
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
		/* The line always follows InterruptStatus. */
		if (r.lines[r.cur].level !=
		    (vdk_mmio_interrupt_status(r.t) != 0))
			abort();
	}
out:
	vdk_mmio_free(r.t);
	vdk_rng_free(r.rng);
	vdk_mem_free(r.mem);
	return 0;
}
