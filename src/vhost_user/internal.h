/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user backend internals shared by message.c (wire, fds, request table,
 * dispatcher, back-end channel, event loop), backend.c (handlers, rings,
 * the connection), memory.c (memory table), inflight.c (inflight region),
 * device_state.c (state transfer), device_adapter.c and connection_loop.c.
 */
#ifndef VDK_VHOST_USER_INTERNAL_H
#define VDK_VHOST_USER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/log.h>
#include <vdk/loop.h>
#include <vdk/vhost_user.h>

#include "backend_ops.h"

#define VU_LOG "vhost-user"

/** Each queue's part of the inflight region starts at a multiple of this
 * many bytes (our layout choice, as libvhost-user's; the front-end only keeps
 * the region). */
#define VU_INFLIGHT_ALIGN 64u

/** One message as received: header, payload and the fds that came with it.
 * A handler that keeps fds[i] sets it to -1; the dispatcher closes the
 * rest. */
struct vu_msg {
	struct vhost_user_header hdr;
	union {
		uint64_t u64;
		struct vhost_vring_state state;
		struct vhost_vring_addr addr;
		struct vhost_user_memory memory;
		struct vhost_user_mem_reg_msg mem_reg;
		struct vhost_user_config config;
		struct vhost_user_inflight inflight;
		struct vhost_user_transfer_device_state transfer_state;
		uint8_t bytes[VDK_VHOST_USER_MAX_PAYLOAD];
	} payload;
	int fds[VHOST_USER_MAX_FDS];
	size_t nfds;
};

/** A reply payload a handler fills for requests that answer explicitly. */
struct vu_reply {
	union {
		uint64_t u64;
		struct vhost_vring_state state;
		struct vhost_user_config config;
		struct vhost_user_inflight inflight;
		struct vhost_user_shmem_config shmem;
	} payload;
	uint32_t size; /**< bytes of payload to send */
	int fd;	       /**< fd to send with the reply (closed after), or -1 */
};

/** Receive state: a message is read in pieces without blocking. */
struct vu_rx {
	size_t have; /**< bytes of header + payload received so far */
	struct vu_msg msg;
	bool fd_overflow; /**< more fds arrived than VHOST_USER_MAX_FDS */
};

/** One ring (virtqueue) as the front-end configures it. */
struct vu_ring {
	struct vdk_virtq q;
	/* kick_fd and err_fd are used on the connection's thread only
	 * (handle_kick, the handlers): replaced between two uses, never
	 * during one. The call fd is in vdk_vhost_user.calls. */
	int kick_fd;   /**< -1: none (polling if started) */
	int err_fd;    /**< -1: none */
	bool started;  /**< SET_VRING_KICK seen, GET_VRING_BASE not since */
	bool enabled;  /**< SET_VRING_ENABLE 1, or no protocol features */
	bool running;  /**< the backend's start_queue() succeeded */
	bool addr_set; /**< SET_VRING_ADDR accepted */
	bool err_signalled;
	bool stopped; /**< GET_VRING_BASE seen, no SET_VRING_NUM/ADDR/BASE
			  since: the next one configures the ring again */
	uint64_t desc_user_addr, avail_user_addr, used_user_addr;
	/* inflight tracking (inflight.c), bound while the ring runs; the
	 * queue's track hook keeps it, on the thread using the queue */
	struct vhost_user_queue_region_split *inflight; /**< or NULL */
	uint64_t inflight_counter; /**< next counter value to hand out */
	uint16_t *pending;	   /**< heads in flight at the last start */
	uint32_t num_pending;
	bool used_open;		/**< a used element not yet settled: */
	uint16_t used_head;	/**< its head */
	uint16_t used_idx_open; /**< the used index that publishes it */
};

/** The inflight region (GET/SET_INFLIGHT_FD), mapped shared. */
struct vu_inflight {
	void *map;	     /**< mmap base, NULL if none */
	size_t map_len;	     /**< bytes mapped */
	uint8_t *base;	     /**< queue 0's region */
	size_t queue_bytes;  /**< bytes per queue region */
	uint16_t num_queues; /**< queues the region covers */
	uint16_t queue_size; /**< descriptors per queue region */
};

/** A device state transfer (SET_DEVICE_STATE_FD) and its worker. */
struct vu_state_xfer {
	pthread_t thread;
	bool thread_running; /**< joined by vu_state_xfer_stop() */
	int fd;		     /**< the transfer fd; the worker closes it */
	int cancel_fd;	     /**< eventfd: stop the worker now */
	uint32_t direction;  /**< VHOST_TRANSFER_STATE_DIRECTION_* */
	uint8_t *buf;	     /**< state bytes to write / read so far */
	size_t len, cap;
	pthread_mutex_t lock; /**< guards done, result */
	pthread_cond_t cond;
	bool done;
	int result;  /**< the worker's: 0 or -errno */
	bool active; /**< a transfer was set up and not checked yet */
};

struct vdk_vhost_user {
	int sock;
	const struct vdk_vhost_user_backend_ops *ops;
	void *be;
	uint16_t num_queues;
	bool broken;
	bool allow_unsealed;	/* vdk_vhost_user_set_allow_unsealed() */
	bool owner;		/**< SET_OWNER seen */
	unsigned long messages; /**< complete messages dispatched */
	uint64_t acked_features;
	uint64_t acked_protocol_features;
	/** SET_PROTOCOL_FEATURES seen: VHOST_USER_F_PROTOCOL_FEATURES is
	 * negotiated even before SET_FEATURES (QEMU's vhost-user-net sends
	 * SET_VRING_ENABLE from then on) */
	bool protocol_negotiated;
	struct vdk_mem *mem;	  /**< NULL until SET_MEM_TABLE / ADD_MEM_REG */
	struct vdk_interrupt irq; /**< what backends signal through */
	/** eventfd-backed: the rings' call fds, queue_fd[i] for ring i. Device
	 * workers write them (through irq) while SET_VRING_CALL replaces them
	 * with vdk_interrupt_set_queue_fd(), which hands the old fd back only
	 * when no worker can still be writing to it. */
	struct vdk_interrupt calls;
	struct vu_ring rings[VDK_DEVICE_MAX_QUEUES];
	/* the event loop (connection_loop.c); NULL: the caller drives */
	struct vdk_loop *loop;
	struct vu_kick_ctx {
		struct vdk_vhost_user *vu;
		uint16_t index;
	} kick_ctx[VDK_DEVICE_MAX_QUEUES];
	int poll_timer;	 /**< timerfd for rings without a kick fd, or -1 */
	bool poll_armed; /**< poll_timer on the loop and ticking */
	vdk_vhost_user_closed_fn *closed_fn;
	void *closed_opaque;
	/** the device adapter vdk_vhost_user_new() made, freed with us */
	struct vdk_vhost_user_device_adapter *own_adapter;
	struct vu_rx rx;
	struct vdk_ratelimit rl;
	/* back-end channel (VHOST_USER_SET_BACKEND_REQ_FD) */
	pthread_mutex_t backend_lock; /**< guards backend_fd and its use */
	int backend_fd;		      /**< -1: none */
	bool in_dispatch; /**< atomic: a handler runs on dispatch_thread */
	pthread_t dispatch_thread;
	bool config_change_pending; /**< raised by a handler, sent later */
	struct vu_inflight inflight;
	struct vu_state_xfer xfer;
};

/** Where a request carries its queue index. */
enum vu_index_kind {
	VU_INDEX_NONE,
	VU_INDEX_U32,  /**< u32 at payload offset 0 (vring state / addr) */
	VU_INDEX_FILE, /**< u64 bits 0-7, bit 8 = no fd (kick/call/err) */
};

typedef int vu_handler_fn(struct vdk_vhost_user *vu, struct vu_msg *msg,
			  struct vu_reply *reply);

/** One row of the request table. */
struct vu_request {
	vu_handler_fn *handler;
	uint32_t min_size, max_size; /**< payload bytes */
	uint8_t min_fds, max_fds;
	enum vu_index_kind index;
	bool replies;	  /**< answers with a payload of its own */
	bool error_reply; /**< on error answer @error_size bytes (the u64
			     @error_u64 if 8) instead of ending the session */
	uint32_t error_size;
	uint64_t error_u64;
	bool needs_vu_protocol;	 /**< VHOST_USER_F_PROTOCOL_FEATURES acked */
	uint64_t needs_protocol; /**< protocol feature bits negotiated */
};

/* message.c */
const struct vu_request *vu_request_lookup(uint32_t request);
uint64_t vu_supported_protocol_features(void);
void vu_close_fd(int *fd);
/* 0 if @fd may be a ring's call, kick or error fd (a non-blocking
 * eventfd), else -EINVAL (logged, naming @what and @queue) or -EBADF */
int vu_check_notify_fd(int fd, const char *what, uint16_t queue);

/* backend.c and memory.c: handlers named after their requests */
vu_handler_fn vu_get_features, vu_set_features, vu_set_owner, vu_reset_owner,
	vu_get_protocol_features, vu_set_protocol_features, vu_set_mem_table,
	vu_get_queue_num, vu_set_vring_num, vu_set_vring_addr,
	vu_set_vring_base, vu_get_vring_base, vu_set_vring_kick,
	vu_set_vring_call, vu_set_vring_err, vu_set_vring_enable, vu_get_config,
	vu_set_config, vu_reset_device, vu_get_max_mem_slots, vu_add_mem_reg,
	vu_rem_mem_reg;

/* backend.c: ring bookkeeping used by the dispatcher */
void vu_stop_all_rings(struct vdk_vhost_user *vu);
bool vu_any_ring_started(const struct vdk_vhost_user *vu);
bool vu_any_ring_running(const struct vdk_vhost_user *vu);
/* stop the running rings around a memory map change; restart them after */
uint64_t vu_rings_pause(struct vdk_vhost_user *vu);
void vu_rings_resume(struct vdk_vhost_user *vu, uint64_t was);

/* connection_loop.c: the socket, kick fds and polled rings on vu->loop */
int vu_loop_attach(struct vdk_vhost_user *vu, struct vdk_loop *loop);
void vu_loop_detach(struct vdk_vhost_user *vu);
void vu_watch_add(struct vdk_vhost_user *vu, int fd, uint16_t i);
void vu_watch_remove(struct vdk_vhost_user *vu, int fd, uint16_t i);
/* after the rings may have changed: tick while a ring runs without kick */
void vu_poll_update(struct vdk_vhost_user *vu);

/* message.c: the back-end channel */
vu_handler_fn vu_set_backend_req_fd;
int vu_backend_send(struct vdk_vhost_user *vu, uint32_t request,
		    const void *payload, uint32_t size);
void vu_backend_close(struct vdk_vhost_user *vu);

/* inflight.c */
vu_handler_fn vu_get_inflight_fd, vu_set_inflight_fd;
/* before the ring's queue is activated: settle the region, set the queue's
 * next available index, resubmit list and track hook; 0 or -ENOMEM */
int vu_inflight_ring_start(struct vdk_vhost_user *vu, uint16_t i,
			   uint16_t used_idx);
/* after the backend stopped and the queue is deactivated */
void vu_inflight_ring_stop(struct vdk_vhost_user *vu, uint16_t i);
void vu_inflight_free(struct vdk_vhost_user *vu);

/* device_state.c */
vu_handler_fn vu_set_device_state_fd, vu_check_device_state,
	vu_get_shmem_config;
int vu_state_xfer_init(struct vu_state_xfer *x);
void vu_state_xfer_stop(struct vu_state_xfer *x);
void vu_state_xfer_fini(struct vu_state_xfer *x);

#endif /* VDK_VHOST_USER_INTERNAL_H */
