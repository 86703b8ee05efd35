/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: virtio-rng (virtio 1.2 §5.4) and virtio-console (§5.3)
 * checks.
 *
 *   rng.init / rng.read       64 bytes of entropy, not all zero
 *   console.init / .write     one line through port 0's transmitq (queue 1)
 *                             (no VIRTIO_CONSOLE_F_MULTIPORT: port 0 only)
 */
#include <asm-generic/errno.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_config.h>

#include "guest.h"

#define RNG_BYTES 64u
/** Requests before giving up on a device that returns 0 bytes. */
#define RNG_TRIES 16

int simple_init(struct guest_dev *d, struct gq *qs, uint16_t nq)
{
	struct vdk_driver_transport *t = d->t;
	uint64_t features;
	int ret;

	ret = vdk_driver_begin_init(
		t, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX,
		&features);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < nq; i++) {
		ret = gq_setup(&qs[i], d, i, 8, features);
		if (ret < 0) {
			vdk_driver_fail(t);
			return ret;
		}
	}
	return vdk_driver_finish_init(t);
}

int rng_fill(struct gq *g, uint8_t *buf, uint32_t len, int *requests)
{
	uint32_t got = 0;
	int ret = 0;

	*requests = 0;
	/* The device may return fewer bytes than asked (§5.4.6). */
	while (got < len && (*requests)++ < RNG_TRIES) {
		struct vdk_driver_buf wr = {buf + got, len - got};

		ret = gq_submit_wait(g, NULL, 0, &wr, 1);
		if (ret < 0)
			break;
		got += (uint32_t)ret;
	}
	return got == 0 && ret < 0 ? ret : (int)got;
}

void rng_run(struct guest_dev *d)
{
	static struct gq qs[MAX_DEVICES];
	uint8_t *buf = arena_alloc(RNG_BYTES, 16);
	uint32_t nonzero = 0;
	int ret, got, tries = 0;

	ret = buf ? simple_init(d, &qs[d->index], 1) : -ENOMEM;
	check("rng.init", ret == 0, "device %u: %d", d->index, ret);
	if (ret < 0)
		return;
	got = rng_fill(&qs[d->index], buf, RNG_BYTES, &tries);
	for (int i = 0; i < got; i++)
		nonzero += buf[i] != 0;
	check("rng.read", got == (int)RNG_BYTES && nonzero > 0,
	      "%d bytes in %d requests, %u non-zero, first %02x%02x%02x%02x",
	      got, tries, nonzero, buf[0], buf[1], buf[2], buf[3]);
}

void console_run(struct guest_dev *d)
{
	static struct gq qs[MAX_DEVICES][2];
	static const char line[] =
		"VDK-TESTGUEST: hello through virtio-console\n";
	uint8_t *buf = arena_alloc(sizeof(line) - 1, 16);
	struct vdk_driver_buf rd = {buf, sizeof(line) - 1};
	int ret;

	/* receiveq(port0) = 0, transmitq(port0) = 1 (§5.3.2). */
	ret = buf ? simple_init(d, qs[d->index], 2) : -ENOMEM;
	check("console.init", ret == 0, "device %u: %d", d->index, ret);
	if (ret < 0)
		return;
	memcpy(buf, line, sizeof(line) - 1);
	ret = gq_submit_wait(&qs[d->index][1], &rd, 1, NULL, 0);
	check("console.write", ret >= 0, "%zu bytes: %d", sizeof(line) - 1,
	      ret);
}
