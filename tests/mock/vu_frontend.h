/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vu_frontend: a scripted vhost-user front-end for the unit tests and the
 * fuzz target of src/vhost_user. It plays QEMU's part over
 * socketpair(AF_UNIX, SOCK_STREAM) in the same process: guest RAM in a memfd
 * that the back-end maps, messages with their fds in SCM_RIGHTS, replies read
 * back, rings laid out by the guest_ring mock driver, kick and call
 * eventfds. (QEMU docs/interop/vhost-user.rst, "the vhost-user spec".)
 *
 * Two layers:
 *   - socket helpers (vu_fe_sendmsg, vu_fe_recv, vu_fe_drain,
 *     vu_fe_count_fds): they return -errno and never fail the caller; this
 *     is what a fuzz target uses.
 *   - struct vu_fe, one front-end with its guest RAM, rings and eventfds,
 *     and request helpers. A helper that sends one request returns what
 *     vdk_vhost_user_process_message() returned, so a test can check the
 *     back-end's answer. A fault of the script itself (a short send, a reply
 *     to another request, a step of a sequence such as vu_fe_start_ring()
 *     that the back-end refused) is reported through fe->fail, which a cmocka
 *     test points at fail_msg(); NULL, or a fail() that returns, aborts.
 *
 * Addresses: "gpa" is guest-physical; vu_fe_ua() gives the front-end's
 * virtual address of a gpa, which is what SET_MEM_TABLE and SET_VRING_ADDR
 * carry. Ring q is laid out at ram_gpa + q * VU_FE_RING_STRIDE.
 *
 * Usage (in a cmocka test):
 *   const struct vu_fe_config cfg = {0x100000, 0x40000, 2, 16};
 *   struct vu_fe fe;
 *   assert_int_equal(vu_fe_init(&fe, &cfg, fail_fn), 0);
 *   assert_int_equal(vu_fe_connect(&fe, &ops, be), 0);
 *   vu_fe_setup(&fe, 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
 *   vu_fe_start_ring(&fe, 0, 0, VU_FE_RING_INIT | VU_FE_RING_ENABLE);
 *   vu_fe_post_kick(&fe, 0, 0x110000);
 *   assert_int_equal(vdk_vhost_user_handle_kick(fe.vu, 0), 1);
 *   assert_int_equal(vu_fe_fini(&fe), 0); // no fd left open
 */
#ifndef VDK_TESTS_VU_FRONTEND_H
#define VDK_TESTS_VU_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/vhost_user.h>

/* the library's private backend interface (src/vhost_user) */
#include "vhost_user/backend_ops.h"

#include "guest_ring.h"

/** Most rings a struct vu_fe keeps eventfds and a guest_ring for. */
#define VU_FE_MAX_QUEUES 4
/** Most fds one message may carry (more than VHOST_USER_MAX_FDS, so that
 * too many can be sent). */
#define VU_FE_MAX_FDS 16
/** Largest payload vu_fe_send() sends and vu_fe_recv() reads (bytes). */
#define VU_FE_MAX_PAYLOAD 4096
/** Bytes of guest RAM between the rings that vu_fe_ring_init() lays out. */
#define VU_FE_RING_STRIDE 0x1000u

/* ---- socket helpers: -errno, never a failure of the caller ------------ */

/**
 * vu_fe_count_fds() - the number of entries in /proc/self/fd (for fd-leak
 * checks: compare two counts).
 * Return: the count, or -errno if the directory cannot be read.
 */
int vu_fe_count_fds(void);

/** vu_fe_quiet_log() - a vdk_log sink that drops every message. */
void vu_fe_quiet_log(void *opaque, enum vdk_log_level level, const char *module,
		     const char *msg);

/**
 * vu_fe_sendmsg() - send @len bytes of @buf on @sock with @nfds fds in one
 * SCM_RIGHTS message (the fds stay the caller's). @flags are sendmsg()
 * flags; MSG_NOSIGNAL is always added.
 * Return: bytes sent, -EINVAL if @nfds > VU_FE_MAX_FDS, or sendmsg()'s
 * -errno.
 */
ssize_t vu_fe_sendmsg(int sock, const void *buf, size_t len, const int *fds,
		      size_t nfds, int flags);

/** struct vu_fe_msg - one message read by vu_fe_recv(). */
struct vu_fe_msg {
	struct vhost_user_header h;
	uint8_t payload[VU_FE_MAX_PAYLOAD]; /**< h.size bytes */
	int fds[VU_FE_MAX_FDS]; /**< received (O_CLOEXEC); the caller's */
	size_t nfds;
};

/**
 * vu_fe_recv() - wait up to @timeout_ms for one message on @sock and read
 * its header, payload and fds into @m. Fds beyond VU_FE_MAX_FDS are lost
 * (closed by the kernel).
 * Return: 0; -ETIMEDOUT if nothing came; -EPROTO if the peer closed or the
 * message ended early; -EMSGSIZE if h.size > VU_FE_MAX_PAYLOAD (header and
 * fds are in @m, the payload is left unread); or recv()'s -errno. On any
 * error, m->nfds fds may still need closing.
 */
int vu_fe_recv(int sock, struct vu_fe_msg *m, int timeout_ms);

/**
 * vu_fe_drain() - read and drop whatever is waiting on @sock without
 * blocking, closing every fd that came with it.
 * Return: the bytes dropped.
 */
size_t vu_fe_drain(int sock);

/** vu_fe_readable() - true if @fd has something to read right now. */
bool vu_fe_readable(int fd);

/* ---- a front-end ------------------------------------------------------- */

/** struct vu_fe_config - what vu_fe_init() sets up. */
struct vu_fe_config {
	uint64_t ram_gpa;    /**< guest-physical base of the RAM */
	uint64_t ram_size;   /**< bytes of RAM (the memfd's size) */
	uint16_t num_queues; /**< rings with eventfds, ≤ VU_FE_MAX_QUEUES */
	uint16_t queue_size; /**< Queue Size vu_fe_start_ring() sets */
};

/** struct vu_fe - one scripted front-end. All members readable by tests. */
struct vu_fe {
	struct vu_fe_config cfg;
	int sock;		   /**< our end of the socketpair; -1: none */
	struct vdk_vhost_user *vu; /**< the back-end under test; or NULL */
	int memfd;		   /**< guest RAM, passed to the back-end */
	uint8_t *ram;		   /**< our mapping of @memfd */
	struct vdk_mem *mem;	   /**< our view of the RAM, for guest_ring */
	struct guest_ring gr[VU_FE_MAX_QUEUES]; /**< the driver's rings */
	int kick[VU_FE_MAX_QUEUES];    /**< eventfds sent as SET_VRING_KICK */
	int call[VU_FE_MAX_QUEUES];    /**< eventfds sent as SET_VRING_CALL */
	int fds_before;		       /**< vu_fe_count_fds() at init */
	void (*fail)(const char *msg); /**< script faults; NULL: abort() */
};

/**
 * vu_fe_init() - counts the open fds, then creates @cfg->ram_size bytes of
 * RAM in a memfd (mapped shared), a struct vdk_mem of it at @cfg->ram_gpa
 * and a non-blocking kick and call eventfd per queue. Not connected yet.
 * @fail: where script faults go (see the file comment); may be NULL.
 * Return: 0; -EINVAL if num_queues > VU_FE_MAX_QUEUES or the rings do not
 * fit in the RAM; or -errno from memfd_create/ftruncate/mmap/eventfd/
 * vdk_mem (then nothing is left allocated).
 */
int vu_fe_init(struct vu_fe *fe, const struct vu_fe_config *cfg,
	       void (*fail)(const char *msg));

/**
 * vu_fe_fini() - frees the back-end (vu_fe_disconnect()) and everything
 * vu_fe_init() made.
 * Return: open fds now minus open fds before vu_fe_init(): 0 if nothing
 * leaked.
 */
int vu_fe_fini(struct vu_fe *fe);

/**
 * vu_fe_connect() - makes a socketpair and a back-end on one end,
 * vu_backend_new(end, @ops, @be, NULL) (the library's private backend
 * interface); fe->sock is the other end.
 * Return: 0, -EBUSY if already connected, or -errno.
 */
int vu_fe_connect(struct vu_fe *fe,
		  const struct vdk_vhost_user_backend_ops *ops, void *be);

/**
 * vu_fe_connect_device() - the same through the public API:
 * vdk_vhost_user_new(end, @dev, NULL).
 */
int vu_fe_connect_device(struct vu_fe *fe, struct vdk_device *dev);

/** vu_fe_disconnect() - vdk_vhost_user_free() and close our end. */
void vu_fe_disconnect(struct vu_fe *fe);

/** vu_fe_ua() - our virtual address of guest-physical @gpa (no checks). */
uint64_t vu_fe_ua(const struct vu_fe *fe, uint64_t gpa);

/** vu_fe_host() - a pointer to guest-physical @gpa in our mapping. */
void *vu_fe_host(const struct vu_fe *fe, uint64_t gpa);

/**
 * vu_fe_ring_init() - lay ring @q out (guest_ring_init(), zeroed) at
 * ram_gpa + @q * VU_FE_RING_STRIDE with cfg.queue_size entries.
 * Return: 0, -ERANGE if @q ≥ cfg.num_queues, or guest_ring_init()'s error.
 */
int vu_fe_ring_init(struct vu_fe *fe, uint16_t q);

/* ---- requests ---------------------------------------------------------- */

/** vu_fe_send_raw() - send bytes and fds as they are; all must go out. */
void vu_fe_send_raw(struct vu_fe *fe, const void *buf, size_t len,
		    const int *fds, size_t nfds);

/**
 * vu_fe_send() - send request @req: a header with VHOST_USER_VERSION |
 * @flags and @size, then @size bytes of @payload (≤ VU_FE_MAX_PAYLOAD),
 * with @nfds fds (the caller's still).
 */
void vu_fe_send(struct vu_fe *fe, uint32_t req, uint32_t flags,
		const void *payload, uint32_t size, const int *fds,
		size_t nfds);

/**
 * vu_fe_req() - vu_fe_send(), then have the back-end handle one message.
 * Return: vdk_vhost_user_process_message()'s result (1 handled, 0 message
 * incomplete, -errno refused or broken).
 */
int vu_fe_req(struct vu_fe *fe, uint32_t req, uint32_t flags,
	      const void *payload, uint32_t size, const int *fds, size_t nfds);

/** vu_fe_req_fd() - vu_fe_req() without flags and with @fd (< 0: none). */
int vu_fe_req_fd(struct vu_fe *fe, uint32_t req, const void *payload,
		 uint32_t size, int fd);

/** vu_fe_req_u64() - vu_fe_req() with a u64 payload and @fd (< 0: none). */
int vu_fe_req_u64(struct vu_fe *fe, uint32_t req, uint64_t v, int fd);

/** vu_fe_req_state() - vu_fe_req() with a struct vhost_vring_state. */
int vu_fe_req_state(struct vu_fe *fe, uint32_t req, uint32_t index,
		    uint32_t num);

/** vu_fe_vring_addr() - SET_VRING_ADDR of ring @q; addresses are ours. */
int vu_fe_vring_addr(struct vu_fe *fe, uint32_t q, uint64_t desc,
		     uint64_t avail, uint64_t used);

/**
 * vu_fe_mem_table() - SET_MEM_TABLE with one region: @size bytes at
 * guest-physical @gpa, @offset bytes into the memfd, at vu_fe_ua(@gpa).
 * Return: as vu_fe_req().
 */
int vu_fe_mem_table(struct vu_fe *fe, uint64_t gpa, uint64_t size,
		    uint64_t offset);

/**
 * vu_fe_reply() - read the reply to @req (waiting up to 3 s) into @payload
 * (at most @max bytes). A fault unless it is a reply (VERSION | REPLY) to
 * @req that fits. @fd: set to the fd that came with it, or -1; if NULL, an
 * fd coming along is a fault.
 * Return: the payload size.
 */
uint32_t vu_fe_reply(struct vu_fe *fe, uint32_t req, void *payload, size_t max,
		     int *fd);

/**
 * vu_fe_get_u64() - a request without payload whose reply is a u64
 * (GET_FEATURES, GET_QUEUE_NUM, ...). A fault unless it is handled.
 * Return: the value.
 */
uint64_t vu_fe_get_u64(struct vu_fe *fe, uint32_t req);

/**
 * vu_fe_negotiate() - GET_FEATURES, SET_FEATURES with the offered bits
 * that are in @features; if @features has VHOST_USER_F_PROTOCOL_FEATURES,
 * GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES with the offered ones in
 * @pf. A fault if VIRTIO_F_VERSION_1 or VHOST_USER_F_PROTOCOL_FEATURES is
 * not offered or a step is refused.
 * Return: the protocol features offered (0 if not asked for).
 */
uint64_t vu_fe_negotiate(struct vu_fe *fe, uint64_t features, uint64_t pf);

/**
 * vu_fe_features_and_memory() - vu_fe_negotiate() of VERSION_1 and
 * protocol features @pf, then SET_MEM_TABLE of the whole RAM (a fault
 * unless handled).
 * Return: the protocol features offered.
 */
uint64_t vu_fe_features_and_memory(struct vu_fe *fe, uint64_t pf);

/** vu_fe_setup() - a new session: SET_OWNER, vu_fe_features_and_memory(). */
uint64_t vu_fe_setup(struct vu_fe *fe, uint64_t pf);

/** vu_fe_start_ring() flags. */
enum {
	VU_FE_RING_INIT = 1 << 0,	/**< lay the ring out first */
	VU_FE_RING_ENABLE = 1 << 1,	/**< end with SET_VRING_ENABLE 1 */
	VU_FE_RING_KICK_FIRST = 1 << 2, /**< KICK before CALL */
};

/**
 * vu_fe_start_ring() - what a front-end sends to start ring @q:
 * SET_VRING_NUM (cfg.queue_size), SET_VRING_BASE @base, SET_VRING_ADDR,
 * SET_VRING_CALL and SET_VRING_KICK with fe->call[q] and fe->kick[q] (that
 * order unless VU_FE_RING_KICK_FIRST), then SET_VRING_ENABLE if
 * VU_FE_RING_ENABLE. Without VU_FE_RING_INIT the ring's driver state is
 * kept (a restart, a new back-end). A fault unless each step is handled.
 */
void vu_fe_start_ring(struct vu_fe *fe, uint16_t q, uint32_t base,
		      unsigned flags);

/**
 * vu_fe_get_vring_base() - GET_VRING_BASE of ring @q (stops it). A fault
 * unless handled and answered for @q.
 * Return: the next available index the back-end reports.
 */
uint32_t vu_fe_get_vring_base(struct vu_fe *fe, uint16_t q);

/**
 * vu_fe_post() - make a chain of one 64-byte device-writable buffer at
 * @gpa available on ring @q (no kick). A fault if it cannot be written.
 * Return: its head.
 */
int vu_fe_post(struct vu_fe *fe, uint16_t q, uint64_t gpa);

/** vu_fe_kick() - signal fe->kick[@q] (as the guest's notification would). */
void vu_fe_kick(struct vu_fe *fe, uint16_t q);

/** vu_fe_post_kick() - vu_fe_post(), then vu_fe_kick(). Return: the head. */
int vu_fe_post_kick(struct vu_fe *fe, uint16_t q, uint64_t gpa);

#endif /* VDK_TESTS_VU_FRONTEND_H */
