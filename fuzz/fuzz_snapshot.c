/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: restoring untrusted snapshots. vdk_device_restore()
 * (src/device.c, the device envelope and the rng and blk device states) and
 * vdk_mmio_restore() (src/transport/mmio_snapshot.c, the transport state with
 * a device envelope nested inside), both loading through
 * vdk_snapshot_load() (src/snapshot.c).
 *
 * Input: byte 0 chooses the target and how the rest is used:
 *
 *   mode % 6   target                     the rest of the input
 *   0          vdk_device_restore, rng    the snapshot, as is
 *   1          vdk_device_restore, blk    the snapshot, as is
 *   2          vdk_mmio_restore, rng      the snapshot, as is
 *   3, 4, 5    as 0, 1, 2                 an edit of a valid snapshot:
 *              op:u8 at:u16 n:u8 bytes[...]
 *              op % 4: 0 overwrite, 1 XOR, 2 insert the bytes at @at
 *              (modulo the length), 3 delete @n bytes there
 *
 * The valid snapshots are taken once, at start-up, from a device asleep
 * after a driver set it up (mmio: DRIVER_OK with one ready queue).
 *
 * Whatever the input, the process must not crash, leak or trip a sanitizer,
 * and an accepted snapshot must round-trip: snapshotting the restored device
 * and restoring that into a fresh one succeeds and gives the same bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/devices/blk.h>
#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>

#define GUEST_SIZE 0x10000u
#define IMAGE_SIZE (1u << 20)

enum kind { K_RNG, K_BLK, K_MMIO, K_COUNT };

/* One device, and for K_MMIO the transport in front of it. */
struct unit {
	struct vdk_rng *rng;
	struct vdk_blk *blk;
	struct vdk_mmio *t;
};

static uint8_t guest[GUEST_SIZE] __attribute__((aligned(4096)));
static struct vdk_mem *mem;
static char image_path[64]; /* /proc/self/fd/N of a memfd */
static uint8_t *valid[K_COUNT];
static size_t valid_len[K_COUNT];

static void quiet(void *opaque, enum vdk_log_level level, const char *module,
		  const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

static void unit_free(struct unit *u)
{
	vdk_mmio_free(u->t);
	vdk_rng_free(u->rng);
	vdk_blk_free(u->blk);
	memset(u, 0, sizeof(*u));
}

/* A fresh unit of @kind, asleep (ready for restore); false on failure. */
static bool unit_new(struct unit *u, enum kind kind)
{
	struct vdk_rng_config rc = {.queue_max_size = 16,
				    .max_bytes_per_request = 64};
	struct vdk_blk_config bc = {
		.path = image_path, .serial = "fuzz", .queue_size = 16};
	struct vdk_mmio_config mc = {.mem = mem};

	memset(u, 0, sizeof(*u));
	if (kind == K_BLK) {
		if (!(u->blk = vdk_blk_new(&bc, NULL)))
			return false;
		return vdk_device_sleep(vdk_blk_device(u->blk)) == 0;
	}
	if (!(u->rng = vdk_rng_new(&rc, NULL)))
		return false;
	if (kind == K_RNG)
		return vdk_device_sleep(vdk_rng_device(u->rng)) == 0;
	mc.device = vdk_rng_device(u->rng);
	u->t = vdk_mmio_new(&mc, NULL);
	return u->t && vdk_mmio_sleep(u->t) == 0;
}

static struct vdk_device *unit_device(struct unit *u)
{
	return u->blk ? vdk_blk_device(u->blk) : vdk_rng_device(u->rng);
}

static int unit_restore(struct unit *u, const uint8_t *buf, size_t len)
{
	if (u->t)
		return vdk_mmio_restore(u->t, buf, len);
	return vdk_device_restore(unit_device(u), buf, len);
}

static int unit_snapshot(struct unit *u, uint8_t **buf, size_t *len)
{
	if (u->t)
		return vdk_mmio_snapshot(u->t, buf, len);
	return vdk_device_snapshot(unit_device(u), buf, len);
}

static void mmio_w(struct vdk_mmio *t, uint64_t off, uint32_t val)
{
	vdk_mmio_write(t, off, &val, sizeof(val));
}

/* Take the valid snapshot of @kind a driver would leave. */
static void take_valid(enum kind kind)
{
	struct unit u;

	if (!unit_new(&u, kind))
		abort();
	if (u.t) {
		/* Awake again: a driver sets up queue 0 and DRIVER_OK
		 * (virtio 1.2 §3.1.1, §4.2.3.2). */
		if (vdk_mmio_wake(u.t) < 0)
			abort();
		mmio_w(u.t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
		mmio_w(u.t, VIRTIO_MMIO_STATUS,
		       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
		mmio_w(u.t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
		mmio_w(u.t, VIRTIO_MMIO_DRIVER_FEATURES,
		       1u << (VIRTIO_F_VERSION_1 - 32));
		mmio_w(u.t, VIRTIO_MMIO_STATUS,
		       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			       VIRTIO_CONFIG_S_FEATURES_OK);
		mmio_w(u.t, VIRTIO_MMIO_QUEUE_NUM, 16);
		mmio_w(u.t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
		mmio_w(u.t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x2000);
		mmio_w(u.t, VIRTIO_MMIO_QUEUE_USED_LOW, 0x3000);
		mmio_w(u.t, VIRTIO_MMIO_QUEUE_READY, 1);
		mmio_w(u.t, VIRTIO_MMIO_STATUS,
		       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			       VIRTIO_CONFIG_S_FEATURES_OK |
			       VIRTIO_CONFIG_S_DRIVER_OK);
		if (!(vdk_mmio_status(u.t) & VIRTIO_CONFIG_S_DRIVER_OK) ||
		    vdk_mmio_sleep(u.t) < 0)
			abort();
	}
	if (unit_snapshot(&u, &valid[kind], &valid_len[kind]) < 0)
		abort();
	unit_free(&u);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	mem = vdk_mem_new(NULL);
	if (!mem || vdk_mem_add_host(mem, 0, GUEST_SIZE, guest) < 0)
		abort();
	/* The blk image: a memfd, opened by path through /proc. */
	fd = memfd_create("fuzz_snapshot", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, IMAGE_SIZE) < 0)
		abort();
	snprintf(image_path, sizeof(image_path), "/proc/self/fd/%d", fd);
	for (int k = 0; k < K_COUNT; k++)
		take_valid((enum kind)k);
	return 0;
}

/* Apply the edit in @in to a copy of @base; return the new length. */
static size_t edit(const uint8_t *base, size_t base_len, const uint8_t *in,
		   size_t in_len, uint8_t *out)
{
	size_t at, n, len = base_len;
	uint8_t op;

	memcpy(out, base, base_len);
	if (in_len < 4)
		return len;
	op = in[0] & 3;
	at = (size_t)(in[1] | in[2] << 8) % base_len;
	n = in[3];
	in += 4;
	in_len -= 4;
	switch (op) {
	case 0: /* overwrite */
	case 1: /* XOR */
		for (size_t i = 0; i < in_len && at + i < len; i++)
			out[at + i] = op ? out[at + i] ^ in[i] : in[i];
		break;
	case 2: /* insert */
		memmove(out + at + in_len, out + at, len - at);
		memcpy(out + at, in, in_len);
		len += in_len;
		break;
	default: /* delete */
		if (n > len - at)
			n = len - at;
		memmove(out + at, out + at + n, len - at - n);
		len -= n;
		break;
	}
	return len;
}

/* An accepted snapshot of @kind restored into @u: it must round-trip. */
static void check_round_trip(struct unit *u, enum kind kind)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct unit v;

	if (unit_snapshot(u, &a, &alen) < 0)
		abort();
	if (!unit_new(&v, kind) || unit_restore(&v, a, alen) != 0 ||
	    unit_snapshot(&v, &b, &blen) < 0 || alen != blen ||
	    memcmp(a, b, alen) != 0)
		abort();
	/* Waking activates what was restored active: the queues must
	 * pass activation again against the same memory. */
	if (v.t && vdk_mmio_wake(v.t) < 0)
		abort();
	unit_free(&v);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *snap = data + 1;
	size_t len = size ? size - 1 : 0;
	uint8_t *buf = NULL;
	enum kind kind;
	struct unit u;

	if (size < 1)
		return 0;
	kind = (enum kind)(data[0] % 6 % K_COUNT);
	if (data[0] % 6 >= K_COUNT) {
		buf = malloc(valid_len[kind] + len);
		if (!buf)
			return 0;
		len = edit(valid[kind], valid_len[kind], data + 1, size - 1,
			   buf);
		snap = buf;
	}
	memset(guest, 0, sizeof(guest));
	if (!unit_new(&u, kind))
		abort();
	if (unit_restore(&u, snap, len) == 0)
		check_round_trip(&u, kind);
	if (u.t)
		(void)vdk_mmio_wake(u.t);
	unit_free(&u);
	free(buf);
	return 0;
}
