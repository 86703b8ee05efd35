/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_chain: libFuzzer target for the device-side split virtqueue
 * (src/virtq/split.c, src/virtq/chain.c; virtio 1.2 §2.7).
 *
 * The input is a hostile driver. Its first bytes pick the queue
 * configuration; the rest becomes 64 KiB of guest memory holding the
 * descriptor table, the available ring, the used ring, indirect tables and
 * buffers. Guest memory is two adjacent regions, each its own exactly-sized
 * heap block, so AddressSanitizer reports any iovec that runs past a region
 * (a buffer crossing the boundary must come back as two iovecs).
 *
 * The device pops until the ring is empty or the queue stops, touches every
 * byte of every iovec (reads the readable part, writes the writable part),
 * returns each chain and exercises notification suppression.
 *
 * Input layout:
 *   [0] queue size = 1 << (b % 9)          (1 .. 256)
 *   [1] bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 NOTIFY_ON_EMPTY,
 *       bit 3 return chains in reverse order, bit 4 add a bogus used id
 *   [2] iov capacity = 1 + b % 32
 *   [3..4] next_avail (le16), [5..6] next_used (le16)
 *   [7..]  guest memory image, from gpa 0 (zero-filled past the input)
 * Rings: descriptor table at gpa 0, available ring at 0x1000, used ring at
 * 0x2000 (valid for every size up to 256).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>
#include <linux/virtio_config.h>

#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#define REGION_SIZE  0x8000u /* two regions: [0, 32K) and [32K, 64K) */
#define DESC_GPA     0x0u
#define AVAIL_GPA    0x1000u
#define USED_GPA     0x2000u
#define MAX_IOV	     32
#define CONFIG_BYTES 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void silent_sink(void *opaque, enum vdk_log_level level,
			const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

/* Read every readable byte and write every writable one. */
static uint8_t touch_chain(const struct vdk_virtq_chain *c)
{
	uint8_t sum = 0, buf[64];
	uint32_t i;

	for (i = 0; i < c->num_readable; i++) {
		const uint8_t *p = c->iov[i].iov_base;

		for (size_t k = 0; k < c->iov[i].iov_len; k++)
			sum = (uint8_t)(sum + p[k]);
	}
	for (; i < c->num_readable + c->num_writable; i++)
		memset(c->iov[i].iov_base, sum, c->iov[i].iov_len);
	/* the copy helpers, with offsets past the ends too */
	sum ^= (uint8_t)vdk_virtq_chain_copy_from(c, sum, buf, sizeof(buf));
	vdk_virtq_chain_copy_to(c, c->writable_len / 2, buf, sizeof(buf));
	vdk_virtq_chain_copy_to(c, (size_t)c->writable_len + 1, buf, 1);
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static volatile uint8_t sink;
	struct iovec iov[MAX_IOV];
	struct vdk_virtq_chain chain = {.iov = iov};
	uint16_t heads[256];
	unsigned popped = 0;
	struct vdk_virtq q;
	struct vdk_mem *mem;
	uint8_t *ram[2];
	uint64_t features = 0;
	uint16_t qsize;
	uint8_t flags;
	size_t img;
	int r = 0;

	if (size < CONFIG_BYTES)
		return 0;
	vdk_log_set_sink(silent_sink, NULL, VDK_LOG_ERROR);
	qsize = (uint16_t)(1u << (data[0] % 9));
	flags = data[1];
	chain.iov_cap = 1u + data[2] % MAX_IOV;
	if (flags & 1)
		features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (flags & 2)
		features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (flags & 4)
		features |= 1ull << VIRTIO_F_NOTIFY_ON_EMPTY;

	mem = vdk_mem_new(NULL);
	ram[0] = calloc(1, REGION_SIZE);
	ram[1] = calloc(1, REGION_SIZE);
	if (mem == NULL || ram[0] == NULL || ram[1] == NULL)
		goto out;
	img = size - CONFIG_BYTES;
	if (img > 2 * REGION_SIZE)
		img = 2 * REGION_SIZE;
	memcpy(ram[0], data + CONFIG_BYTES,
	       img < REGION_SIZE ? img : REGION_SIZE);
	if (img > REGION_SIZE)
		memcpy(ram[1], data + CONFIG_BYTES + REGION_SIZE,
		       img - REGION_SIZE);
	if (vdk_mem_add_host(mem, 0, REGION_SIZE, ram[0]) != 0 ||
	    vdk_mem_add_host(mem, REGION_SIZE, REGION_SIZE, ram[1]) != 0)
		goto out;

	if (vdk_virtq_init(&q, 256, 0) != 0 || vdk_virtq_set_size(&q, qsize) ||
	    vdk_virtq_set_addrs(&q, DESC_GPA, AVAIL_GPA, USED_GPA) ||
	    vdk_virtq_set_next_avail(&q, (uint16_t)(data[3] | data[4] << 8)) ||
	    vdk_virtq_set_next_used(&q, (uint16_t)(data[5] | data[6] << 8)))
		__builtin_trap();
	vdk_virtq_set_ready(&q, true);
	if (vdk_virtq_activate(&q, mem, features) != 0)
		__builtin_trap(); /* the fixed layout is always valid */

	vdk_virtq_enable_notification(&q, false);
	/* at most size chains can be pending: the loop is bounded */
	while (popped < 256 && (r = vdk_virtq_pop(&q, &chain)) == 1) {
		if (chain.head >= qsize ||
		    chain.num_readable + chain.num_writable > chain.iov_cap)
			__builtin_trap();
		sink = touch_chain(&chain);
		heads[popped++] = chain.head;
	}
	if (r == -EIO && !vdk_virtq_is_broken(&q) && q.active)
		__builtin_trap();
	if (r < 0 && vdk_virtq_pop(&q, &chain) != -EIO)
		__builtin_trap(); /* errors are sticky */
	for (unsigned i = 0; i < popped; i++) {
		uint16_t h = (flags & 8) ? heads[popped - 1 - i] : heads[i];

		vdk_virtq_add_used(&q, h, (uint32_t)i);
	}
	if (flags & 16)
		vdk_virtq_add_used(&q, (uint16_t)(data[3] + popped), 0);
	sink = (uint8_t)(sink + vdk_virtq_should_notify(&q));
	sink = (uint8_t)(sink + vdk_virtq_enable_notification(&q, true));
	sink = (uint8_t)(sink + vdk_virtq_has_avail(&q));
	sink = (uint8_t)(sink + vdk_virtq_should_notify(&q));
	vdk_virtq_reset(&q);
	if (vdk_virtq_is_broken(&q))
		__builtin_trap();
out:
	vdk_mem_free(mem);
	free(ram[0]);
	free(ram[1]);
	return 0;
}
