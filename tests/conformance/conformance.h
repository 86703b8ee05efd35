/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device conformance suite: the C counterpart of crosvm's
 * suspendable_virtio_tests, reusable for any vdk device.
 *
 * A device's test file describes the device with a struct vdk_conformance
 * (a factory, and hooks that put one request on a queue and check its
 * completion) and adds VDK_CONFORMANCE_TESTS(&suite) to its cmocka group:
 *
 *   static const struct vdk_conformance rng_suite = {
 *           .name = "rng", .create = rng_create, .destroy = rng_destroy,
 *           .submit = rng_submit, .check = rng_check,
 *           .modify_changes_snapshot = true,
 *   };
 *   const struct CMUnitTest tests[] = {
 *           cmocka_unit_test(test_rng_fills),
 *           VDK_CONFORMANCE_TESTS(&rng_suite),
 *   };
 *
 * The suite plays the transport: it owns guest memory (one memfd region),
 * the device-side queues (struct vdk_virtq), a callback-backed interrupt
 * that counts notifications, and a guest_ring (mock driver) per queue.
 *
 * Tests:
 *   sleep_snapshot_wake_no_queues  fresh device: sleep, snapshot, wake
 *   sleep_snapshot_wake_with_queues activate, sleep (queues handed back,
 *                                  notifications ignored), snapshot, wake,
 *                                  the device completes requests again
 *   snapshot_restore_fresh         activate, request, sleep, snapshot; a
 *                                  fresh device restores it, snapshots the
 *                                  same bytes, resumes on the same rings
 *   restore_discards_changes       snapshot, more requests, reset, restore:
 *                                  the first snapshot's bytes come back
 *   lifecycle_refusals             every refused transition and its error
 *   event_idx_stream               VIRTIO_RING_F_EVENT_IDX negotiated; the
 *                                  driver submits 4 rings' worth of
 *                                  requests, notifying only when
 *                                  avail_event asks for it and asking for
 *                                  every used buffer through used_event:
 *                                  each completes and is notified (a device
 *                                  that never re-arms avail_event stalls
 *                                  at the second request, as Linux does)
 *   restore_refusals               other device type (-ENODEV), version
 *                                  (-EPROTO), malformed input (-EINVAL);
 *                                  a refused restore changes nothing
 *   queue_stop_start               each queue stops while the others run
 *                                  (their requests complete), is handed
 *                                  back with the same indices, ignores
 *                                  requests while stopped, and after the
 *                                  restart completes them on the next
 *                                  slot; -ENOENT/-EBUSY/-ERANGE refusals
 */
#ifndef VDK_TESTS_CONFORMANCE_H
#define VDK_TESTS_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/device.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

/* Relative to this header, so that it resolves from any include path. */
#include "guest_ring.h"

/** Guest memory the suite maps at gpa 0, bytes. */
#define VDK_CONFORMANCE_MEM_SIZE (1u << 20)
/** Largest queue size the suite sets (smaller if the device's max is). */
#define VDK_CONFORMANCE_QUEUE_SIZE 64
/** Guest-physical start and size of the area for request buffers. */
#define VDK_CONFORMANCE_DATA_GPA  0x40000u
#define VDK_CONFORMANCE_DATA_SIZE (VDK_CONFORMANCE_MEM_SIZE - 0x40000u)

/**
 * struct vdk_conformance_env - what the suite sets up around a device; the
 * hooks read it and use its rings.
 */
struct vdk_conformance_env {
	struct vdk_mem *mem;	  /**< guest memory, one memfd region */
	struct vdk_interrupt irq; /**< counts into the fields below */
	unsigned used_signals[VDK_DEVICE_MAX_QUEUES];
	unsigned config_signals;
	unsigned needs_reset_signals;
	uint16_t num_queues; /**< the device's num_queues() */
	uint64_t features;   /**< what the suite acks before activation */
	/** device side: queue i's state; qptrs[i] == &queues[i] */
	struct vdk_virtq queues[VDK_DEVICE_MAX_QUEUES];
	struct vdk_virtq *qptrs[VDK_DEVICE_MAX_QUEUES];
	/** driver side: the mock driver of queue i */
	struct guest_ring rings[VDK_DEVICE_MAX_QUEUES];
	uint64_t data_next; /**< bump pointer in the data area */
};

/**
 * struct vdk_conformance - a device under test.
 * @name:    for messages.
 * @create:  make a fresh device (state NEW, awake); NULL on failure.
 * @destroy: free it; NULL means vdk_device_fini() (for devices whose
 *           destroy op frees everything).
 * @submit:  put one request on one of the device's queues through
 *           env->rings (guest_ring_add_chain()), without notifying.
 *           Return the queue index used, or -errno.
 * @check:   after the device processed the request submitted last, verify
 *           its completion through env->rings (guest_ring_get_used(), buffer
 *           contents). Return 0 if correct, -errno otherwise. The suite
 *           calls it right after vdk_device_queue_notify() returns, which
 *           suits devices that process synchronously; a device with its
 *           own worker threads should wait here for the used ring.
 * @opaque:  passed to every hook.
 * @features: feature bits to accept; 0 means every offered bit except
 *           VIRTIO_RING_F_EVENT_IDX (so that every used buffer is
 *           notified and the suite can count notifications).
 * @modify_changes_snapshot: true if a completed request changes the
 *           device's snapshot (a counter); then the suite checks it does.
 */
struct vdk_conformance {
	const char *name;
	struct vdk_device *(*create)(void *opaque);
	void (*destroy)(struct vdk_device *dev, void *opaque);
	int (*submit)(struct vdk_conformance_env *env, void *opaque);
	int (*check)(struct vdk_conformance_env *env, void *opaque);
	void *opaque;
	uint64_t features;
	bool modify_changes_snapshot;
};

/**
 * vdk_conformance_alloc() - reserve @len bytes (rounded up to 64) of the
 * data area for a request buffer; wraps to the start when the area is used
 * up (earlier buffers must be finished with by then).
 * Return: the guest-physical address.
 */
uint64_t vdk_conformance_alloc(struct vdk_conformance_env *env, uint32_t len);

/* The tests, each taking a const struct vdk_conformance * as prestate. */
void vdk_conformance_sleep_snapshot_wake_no_queues(void **state);
void vdk_conformance_sleep_snapshot_wake_with_queues(void **state);
void vdk_conformance_snapshot_restore_fresh(void **state);
void vdk_conformance_restore_discards_changes(void **state);
void vdk_conformance_lifecycle_refusals(void **state);
void vdk_conformance_restore_refusals(void **state);
void vdk_conformance_event_idx_stream(void **state);
void vdk_conformance_queue_stop_start(void **state);
int vdk_conformance_setup(void **state);
/* Through real transports (transports.c), with their own fixture. */
void vdk_conformance_over_mmio(void **state);
void vdk_conformance_over_pci(void **state);
int vdk_conformance_transport_setup(void **state);
int vdk_conformance_transport_teardown(void **state);
int vdk_conformance_teardown(void **state);

#define VDK_CONFORMANCE_TEST_(fn, suite)                                       \
	{                                                                      \
#fn, fn, vdk_conformance_setup, vdk_conformance_teardown,      \
			(void *)(suite)                                        \
	}

#define VDK_CONFORMANCE_TRANSPORT_TEST_(fn, suite)                             \
	{                                                                      \
#fn, fn, vdk_conformance_transport_setup,                      \
			vdk_conformance_transport_teardown, (void *)(suite)    \
	}

/** The suite's cmocka tests for device @suite (a struct vdk_conformance *
 * that outlives the test run), to put in a CMUnitTest array. */
#define VDK_CONFORMANCE_TESTS(suite)                                           \
	VDK_CONFORMANCE_TEST_(vdk_conformance_sleep_snapshot_wake_no_queues,   \
			      suite),                                          \
		VDK_CONFORMANCE_TEST_(                                         \
			vdk_conformance_sleep_snapshot_wake_with_queues,       \
			suite),                                                \
		VDK_CONFORMANCE_TEST_(vdk_conformance_snapshot_restore_fresh,  \
				      suite),                                  \
		VDK_CONFORMANCE_TEST_(                                         \
			vdk_conformance_restore_discards_changes, suite),      \
		VDK_CONFORMANCE_TEST_(vdk_conformance_lifecycle_refusals,      \
				      suite),                                  \
		VDK_CONFORMANCE_TEST_(vdk_conformance_restore_refusals,        \
				      suite),                                  \
		VDK_CONFORMANCE_TEST_(vdk_conformance_event_idx_stream,        \
				      suite),                                  \
		VDK_CONFORMANCE_TEST_(vdk_conformance_queue_stop_start,        \
				      suite),                                  \
		VDK_CONFORMANCE_TRANSPORT_TEST_(vdk_conformance_over_mmio,     \
						suite),                        \
		VDK_CONFORMANCE_TRANSPORT_TEST_(vdk_conformance_over_pci,      \
						suite)

#endif /* VDK_TESTS_CONFORMANCE_H */
