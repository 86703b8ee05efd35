/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user wire format, spelled as QEMU's docs/interop/vhost-user.rst ("the
 * vhost-user spec") spells it: the message header and its flags, front-end
 * and back-end request ids, protocol feature bits, and every payload layout
 * vdk sends or receives. Apart from VHOST_USER_MAX_SHMEM_REGIONS (see
 * there), nothing here is vdk's own choice; the library's limits are in
 * <vdk/vhost_user.h>.
 *
 * Names: request ids, flags, feature bits and limits are the spec's macros
 * and enumerators. The spec describes payloads with tables and names the C
 * structures QEMU uses for them (section "C structure": VhostUserMsg,
 * VhostUserMemory, ...); here each is a struct tag without typedef,
 * VhostUserFooBar -> struct vhost_user_foo_bar, with QEMU's field names.
 * The inflight region's DescStateSplit / QueueRegionSplit (spec "Inflight I/O
 * tracking") get the same prefix. Where the Linux uapi (<linux/vhost_types.h>)
 * already defines a payload, it is used as is: struct vhost_vring_state
 * ("A vring state description"), struct vhost_vring_addr ("A vring address
 * description"), struct vhost_iotlb_msg ("An IOTLB message").
 *
 * All numbers are in the machine's native byte order (spec "Message
 * Specification"). Nothing here is validated: a received struct is a copy of
 * what the peer sent, to be checked field by field before use.
 */
#ifndef VDK_SPEC_VHOST_USER_H
#define VDK_SPEC_VHOST_USER_H

#include <stddef.h>
#include <stdint.h>

#ifndef __cplusplus
#include <linux/vhost_types.h>
#else
/* <linux/vhost_types.h> does not compile as C++ (its <linux/virtio_ring.h>
 * converts void pointers implicitly), so C++ gets the three payloads this
 * header uses from it, with the uapi's layout (checked by the static
 * asserts of the C build). */
struct vhost_vring_state {
	unsigned int index;
	unsigned int num;
};
struct vhost_vring_addr {
	unsigned int index;
	unsigned int flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};
struct vhost_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint8_t perm;
	uint8_t type;
};
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---- request ids --------------------------------------------------------- */

/** Front-end request ids (spec "Front-end message types"; QEMU's
 * VhostUserRequest). */
enum vhost_user_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21, /**< was SET_SLAVE_REQ_FD */
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	VHOST_USER_POSTCOPY_ADVISE = 28,
	VHOST_USER_POSTCOPY_LISTEN = 29,
	VHOST_USER_POSTCOPY_END = 30,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_VRING_KICK = 35,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_GET_SHARED_OBJECT = 41,
	VHOST_USER_SET_DEVICE_STATE_FD = 42,
	VHOST_USER_CHECK_DEVICE_STATE = 43,
	VHOST_USER_GET_SHMEM_CONFIG = 44,
	VHOST_USER_MAX /**< one past the last id */
};

/** Back-end request ids, sent by the back-end on the channel that
 * VHOST_USER_SET_BACKEND_REQ_FD sets up (spec "Back-end message types";
 * QEMU's VhostUserBackendRequest; formerly VHOST_USER_SLAVE_*). */
enum vhost_user_backend_request {
	VHOST_USER_BACKEND_NONE = 0,
	VHOST_USER_BACKEND_IOTLB_MSG = 1,
	VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
	VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3,
	VHOST_USER_BACKEND_VRING_CALL = 4,
	VHOST_USER_BACKEND_VRING_ERR = 5,
	VHOST_USER_BACKEND_SHARED_OBJECT_ADD = 6,
	VHOST_USER_BACKEND_SHARED_OBJECT_REMOVE = 7,
	VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP = 8,
	VHOST_USER_BACKEND_MAX /**< one past the last id */
};

/**
 * vhost_user_request_str() - the spec's name of front-end request @request
 * ("VHOST_USER_SET_MEM_TABLE"), or NULL for an id the spec does not define.
 */
static inline const char *vhost_user_request_str(uint32_t request)
{
#define VU_NAME_(id) [id] = #id
	static const char *const names[VHOST_USER_MAX] = {
		VU_NAME_(VHOST_USER_NONE),
		VU_NAME_(VHOST_USER_GET_FEATURES),
		VU_NAME_(VHOST_USER_SET_FEATURES),
		VU_NAME_(VHOST_USER_SET_OWNER),
		VU_NAME_(VHOST_USER_RESET_OWNER),
		VU_NAME_(VHOST_USER_SET_MEM_TABLE),
		VU_NAME_(VHOST_USER_SET_LOG_BASE),
		VU_NAME_(VHOST_USER_SET_LOG_FD),
		VU_NAME_(VHOST_USER_SET_VRING_NUM),
		VU_NAME_(VHOST_USER_SET_VRING_ADDR),
		VU_NAME_(VHOST_USER_SET_VRING_BASE),
		VU_NAME_(VHOST_USER_GET_VRING_BASE),
		VU_NAME_(VHOST_USER_SET_VRING_KICK),
		VU_NAME_(VHOST_USER_SET_VRING_CALL),
		VU_NAME_(VHOST_USER_SET_VRING_ERR),
		VU_NAME_(VHOST_USER_GET_PROTOCOL_FEATURES),
		VU_NAME_(VHOST_USER_SET_PROTOCOL_FEATURES),
		VU_NAME_(VHOST_USER_GET_QUEUE_NUM),
		VU_NAME_(VHOST_USER_SET_VRING_ENABLE),
		VU_NAME_(VHOST_USER_SEND_RARP),
		VU_NAME_(VHOST_USER_NET_SET_MTU),
		VU_NAME_(VHOST_USER_SET_BACKEND_REQ_FD),
		VU_NAME_(VHOST_USER_IOTLB_MSG),
		VU_NAME_(VHOST_USER_SET_VRING_ENDIAN),
		VU_NAME_(VHOST_USER_GET_CONFIG),
		VU_NAME_(VHOST_USER_SET_CONFIG),
		VU_NAME_(VHOST_USER_CREATE_CRYPTO_SESSION),
		VU_NAME_(VHOST_USER_CLOSE_CRYPTO_SESSION),
		VU_NAME_(VHOST_USER_POSTCOPY_ADVISE),
		VU_NAME_(VHOST_USER_POSTCOPY_LISTEN),
		VU_NAME_(VHOST_USER_POSTCOPY_END),
		VU_NAME_(VHOST_USER_GET_INFLIGHT_FD),
		VU_NAME_(VHOST_USER_SET_INFLIGHT_FD),
		VU_NAME_(VHOST_USER_GPU_SET_SOCKET),
		VU_NAME_(VHOST_USER_RESET_DEVICE),
		VU_NAME_(VHOST_USER_VRING_KICK),
		VU_NAME_(VHOST_USER_GET_MAX_MEM_SLOTS),
		VU_NAME_(VHOST_USER_ADD_MEM_REG),
		VU_NAME_(VHOST_USER_REM_MEM_REG),
		VU_NAME_(VHOST_USER_SET_STATUS),
		VU_NAME_(VHOST_USER_GET_STATUS),
		VU_NAME_(VHOST_USER_GET_SHARED_OBJECT),
		VU_NAME_(VHOST_USER_SET_DEVICE_STATE_FD),
		VU_NAME_(VHOST_USER_CHECK_DEVICE_STATE),
		VU_NAME_(VHOST_USER_GET_SHMEM_CONFIG),
	};
#undef VU_NAME_

	return request < VHOST_USER_MAX ? names[request] : NULL;
}

/* ---- header and flags (spec "Message Specification", "Header") ----------- */

/** Header flags: bits 0-1 the version, bit 2 the reply flag (every reply
 * from the receiver of a request), bit 3 need_reply (spec "REPLY_ACK"). */
#define VHOST_USER_VERSION_MASK	   0x3u
#define VHOST_USER_VERSION	   0x1u /**< the only version: 0x01 */
#define VHOST_USER_REPLY_MASK	   (1u << 2)
#define VHOST_USER_NEED_REPLY_MASK (1u << 3)

/** The header every message starts with (QEMU's VhostUserHeader). */
struct vhost_user_header {
	uint32_t request; /**< enum vhost_user_request, or
			     enum vhost_user_backend_request on the back-end
			     channel */
	uint32_t flags;	  /**< VHOST_USER_VERSION | REPLY | NEED_REPLY */
	uint32_t size;	  /**< bytes of payload that follow the header */
};

/** The u64 payload of SET_VRING_KICK / SET_VRING_CALL / SET_VRING_ERR:
 * bits 0-7 the vring index, bit 8 the invalid FD flag (no fd in the
 * ancillary data: poll the ring). The reply to SET_DEVICE_STATE_FD uses
 * bit 8 the same way. */
#define VHOST_USER_VRING_IDX_MASK  0xffu
#define VHOST_USER_VRING_NOFD_MASK 0x100u

/* ---- feature bits (spec "Communication", "Protocol features") ------------ */

/** Virtio feature bit 30 (VIRTIO 1.1 §6.3 "UNUSED"), reused: the back-end
 * speaks GET/SET_PROTOCOL_FEATURES. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits: bit numbers in GET/SET_PROTOCOL_FEATURES' u64.
 * Bit 4 is F_MTU in the spec's list (F_NET_MTU in its NET_SET_MTU text and
 * in QEMU's source). */
#define VHOST_USER_PROTOCOL_F_MQ		   0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD		   1
#define VHOST_USER_PROTOCOL_F_RARP		   2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK		   3
#define VHOST_USER_PROTOCOL_F_MTU		   4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ	   5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN	   6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION	   7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT		   8
#define VHOST_USER_PROTOCOL_F_CONFIG		   9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD	   10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER	   11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD	   12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE	   13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS  15
#define VHOST_USER_PROTOCOL_F_STATUS		   16
#define VHOST_USER_PROTOCOL_F_XEN_MMAP		   17
#define VHOST_USER_PROTOCOL_F_SHARED_OBJECT	   18
#define VHOST_USER_PROTOCOL_F_DEVICE_STATE	   19
#define VHOST_USER_PROTOCOL_F_SHMEM		   20

/* ---- limits -------------------------------------------------------------- */

/** Regions in SET_MEM_TABLE (region0..region7; QEMU's name). */
#define VHOST_MEMORY_BASELINE_NREGIONS 8
/** Most fds one message carries: one per SET_MEM_TABLE region; "at most 8"
 * on the back-end channel (spec "Back-end communication"). */
#define VHOST_USER_MAX_FDS 8
/** Largest device configuration space access (QEMU's name). */
#define VHOST_USER_MAX_CONFIG_SIZE 256
/** Entries of VhostUserShMemConfig's memory_sizes. Drafts of the spec say 8
 * or 256; vdk answers with 8 (and zero regions). */
#define VHOST_USER_MAX_SHMEM_REGIONS 8

/* ---- payloads (spec "Payload") ------------------------------------------- */

/** "Memory region description" (QEMU's VhostUserMemoryRegion). */
struct vhost_user_memory_region {
	uint64_t guest_phys_addr; /**< "guest address": guest-physical base */
	uint64_t memory_size;	  /**< "size": bytes */
	uint64_t userspace_addr;  /**< "user address": the front-end's
				     virtual address of the base */
	uint64_t mmap_offset;	  /**< "mmap offset": offset of the base in
				     the region's fd, bytes */
};

/** "Multiple Memory regions description", the SET_MEM_TABLE payload
 * (QEMU's VhostUserMemory); the fds come in the same order. QEMU sends only
 * the @nregions entries used. */
struct vhost_user_memory {
	uint32_t nregions; /**< "num regions": 0..8 */
	uint32_t padding;  /**< 32-bit padding */
	struct vhost_user_memory_region
		regions[VHOST_MEMORY_BASELINE_NREGIONS]; /**< "region0..7" */
};

/** "Single memory region description", the ADD_MEM_REG / REM_MEM_REG
 * payload (QEMU's VhostUserMemRegMsg). */
struct vhost_user_mem_reg_msg {
	uint64_t padding;			/**< 64-bit padding */
	struct vhost_user_memory_region region; /**< the region */
};

/** "Log description", the SET_LOG_BASE payload (QEMU's VhostUserLog). */
struct vhost_user_log {
	uint64_t mmap_size;   /**< "log size": bytes of the log area */
	uint64_t mmap_offset; /**< "log offset": where the log starts in the
				 fd, bytes */
};

/** SET_CONFIG flags ("Virtio device config space", flags). */
#define VHOST_USER_CONFIG_FLAGS_WRITABLE  0 /**< writable fields */
#define VHOST_USER_CONFIG_FLAGS_MIGRATION 1 /**< live migration */

/** "Virtio device config space", the GET_CONFIG / SET_CONFIG payload
 * (QEMU's VhostUserConfig); sent with only @size bytes of @region. */
struct vhost_user_config {
	uint32_t offset; /**< byte offset in the device configuration space */
	uint32_t size;	 /**< bytes accessed: the bytes of @region used */
	uint32_t flags;	 /**< VHOST_USER_CONFIG_FLAGS_* (SET_CONFIG) */
	uint8_t region[VHOST_USER_MAX_CONFIG_SIZE]; /**< "payload": the bytes */
};

/** Bytes of struct vhost_user_config before @region (QEMU's name). */
#define VHOST_USER_CONFIG_HDR_SIZE 12u

/** "Vring area description", the BACKEND_VRING_HOST_NOTIFIER_MSG payload
 * (QEMU's VhostUserVringArea). */
struct vhost_user_vring_area {
	uint64_t u64;	 /**< vring index (bits 0-7) and flags (bit 8: no fd) */
	uint64_t size;	 /**< bytes of the area (the mmap size) */
	uint64_t offset; /**< offset of the area in the fd, bytes */
};

/**
 * "Inflight description", the GET_INFLIGHT_FD / SET_INFLIGHT_FD payload
 * (QEMU's VhostUserInflight). The spec's table has 20 bytes; QEMU sends its
 * C struct, padded to 24.
 */
struct vhost_user_inflight {
	uint64_t mmap_size;   /**< "mmap size": bytes of the shared region */
	uint64_t mmap_offset; /**< "mmap offset": offset of the region in the
				 fd, bytes */
	uint16_t num_queues;  /**< "num queues": virtqueues the region covers */
	uint16_t queue_size;  /**< "queue size": descriptors per virtqueue */
	uint32_t padding;     /**< C struct padding (not in the spec table) */
};

/** Bytes of struct vhost_user_inflight the spec's table defines. */
#define VHOST_USER_INFLIGHT_SPEC_SIZE 20u

/** QueueRegionSplit.version and QueueRegionPacked.version: "It's 1
 * currently. Zero value indicates an uninitialized buffer." */
#define VHOST_USER_INFLIGHT_VERSION 1

/** One descriptor of a split queue's inflight region (spec "Inflight I/O
 * tracking", DescStateSplit). */
struct vhost_user_desc_state_split {
	uint8_t inflight;   /**< 1 while this head is in flight (head only) */
	uint8_t padding[5]; /**< padding */
	uint16_t next;	    /**< next in the list of the last batch of used
			       descriptors */
	uint64_t counter;   /**< fetch order of this head (head only) */
};

/** A split queue's inflight region (spec "Inflight I/O tracking",
 * QueueRegionSplit). */
struct vhost_user_queue_region_split {
	uint64_t features;	  /**< feature flags of the region: 0 */
	uint16_t version;	  /**< VHOST_USER_INFLIGHT_VERSION; 0: unset */
	uint16_t desc_num;	  /**< entries in @desc: the queue size */
	uint16_t last_batch_head; /**< head of the last used batch list */
	uint16_t used_idx;	  /**< the used ring's idx after that batch */
	struct vhost_user_desc_state_split desc[]; /**< per descriptor */
};

/** One descriptor of a packed queue's inflight region (spec "Inflight I/O
 * tracking", DescStatePacked). */
struct vhost_user_desc_state_packed {
	uint8_t inflight; /**< 1 while this head is in flight (head only) */
	uint8_t padding;  /**< padding */
	uint16_t next;	  /**< link to the next free entry */
	uint16_t last;	  /**< last entry of the descriptor list (head only) */
	uint16_t num;	  /**< length of the descriptor list (head only) */
	uint64_t counter; /**< fetch order of this head (head only) */
	uint16_t id;	  /**< the buffer id */
	uint16_t flags;	  /**< the descriptor flags */
	uint32_t len;	  /**< the buffer length, bytes */
	uint64_t addr;	  /**< the buffer address */
};

/** A packed queue's inflight region (spec "Inflight I/O tracking",
 * QueueRegionPacked). */
struct vhost_user_queue_region_packed {
	uint64_t features;	   /**< feature flags of the region: 0 */
	uint16_t version;	   /**< VHOST_USER_INFLIGHT_VERSION; 0: unset */
	uint16_t desc_num;	   /**< entries in @desc: the queue size */
	uint16_t free_head;	   /**< head of the free entry list */
	uint16_t old_free_head;	   /**< its value before the last update */
	uint16_t used_idx;	   /**< used index of the descriptor ring */
	uint16_t old_used_idx;	   /**< its value before the last update */
	uint8_t used_wrap_counter; /**< device ring wrap counter */
	uint8_t old_used_wrap_counter; /**< its value before the last update */
	uint8_t padding[7];	       /**< padding */
	struct vhost_user_desc_state_packed desc[]; /**< per descriptor */
};

/** "VhostUserShared", the payload of GET_SHARED_OBJECT and the back-end's
 * SHARED_OBJECT_* requests. */
struct vhost_user_shared {
	unsigned char uuid[16]; /**< UUID; first three components big-endian */
};

/** "Device state transfer parameters": transfer direction. */
#define VHOST_TRANSFER_STATE_DIRECTION_SAVE 0 /**< back-end → front-end */
#define VHOST_TRANSFER_STATE_DIRECTION_LOAD 1 /**< front-end → back-end */
/** "Device state transfer parameters": migration phase. */
#define VHOST_TRANSFER_STATE_PHASE_STOPPED 0 /**< device suspended */

/** "Device state transfer parameters", the SET_DEVICE_STATE_FD payload
 * (QEMU's VhostUserTransferDeviceState). */
struct vhost_user_transfer_device_state {
	uint32_t direction; /**< "transfer direction":
			       VHOST_TRANSFER_STATE_DIRECTION_* */
	uint32_t phase;	    /**< "migration phase":
			       VHOST_TRANSFER_STATE_PHASE_* */
};

/** "VIRTIO Shared Memory Region configuration", the GET_SHMEM_CONFIG reply
 * (QEMU's VhostUserShMemConfig). */
struct vhost_user_shmem_config {
	uint32_t nregions; /**< "num regions": regions of non-zero size */
	uint32_t padding;  /**< 32-bit padding */
	uint64_t memory_sizes[VHOST_USER_MAX_SHMEM_REGIONS]; /**< "mem size",
							       bytes, by
							       shmid */
};

/**
 * A whole message as it goes on the wire (spec "C structure"; QEMU's
 * VhostUserMsg): the header, then hdr.size bytes of one payload. Packed,
 * so that sizeof(hdr) + hdr.size bytes from &msg are exactly the message.
 */
struct vhost_user_msg {
	struct vhost_user_header hdr; /**< request, flags, size */
	union {
		uint64_t u64; /**< "A single 64-bit integer" */
		struct vhost_vring_state state;	       /**< "vring state" */
		struct vhost_vring_addr addr;	       /**< "vring address" */
		struct vhost_user_memory memory;       /**< SET_MEM_TABLE */
		struct vhost_user_mem_reg_msg mem_reg; /**< ADD/REM_MEM_REG */
		struct vhost_user_log log;	       /**< SET_LOG_BASE */
		struct vhost_iotlb_msg iotlb;	       /**< IOTLB_MSG */
		struct vhost_user_config config;       /**< GET/SET_CONFIG */
		struct vhost_user_vring_area area;     /**< host notifier */
		struct vhost_user_inflight inflight; /**< GET/SET_INFLIGHT_FD */
		struct vhost_user_shared object;     /**< shared objects */
		struct vhost_user_transfer_device_state
			transfer_state; /**< SET_DEVICE_STATE_FD */
		struct vhost_user_shmem_config shmem; /**< GET_SHMEM_CONFIG */
	} payload; /**< hdr.size bytes of one of these */
} __attribute__((packed));

/* The layouts the spec's tables give. */
#ifndef __cplusplus
_Static_assert(sizeof(struct vhost_user_header) == 12, "header");
_Static_assert(sizeof(struct vhost_vring_state) == 8, "vring state");
_Static_assert(sizeof(struct vhost_vring_addr) == 40, "vring address");
_Static_assert(sizeof(struct vhost_user_memory_region) == 32, "region");
_Static_assert(offsetof(struct vhost_user_memory, regions) == 8, "memory");
_Static_assert(sizeof(struct vhost_user_mem_reg_msg) == 40, "mem reg");
_Static_assert(offsetof(struct vhost_user_config, region) ==
		       VHOST_USER_CONFIG_HDR_SIZE,
	       "config header");
_Static_assert(sizeof(struct vhost_user_inflight) == 24, "inflight");
_Static_assert(offsetof(struct vhost_user_inflight, padding) ==
		       VHOST_USER_INFLIGHT_SPEC_SIZE,
	       "inflight spec size");
_Static_assert(sizeof(struct vhost_user_desc_state_split) == 16, "desc");
_Static_assert(sizeof(struct vhost_user_queue_region_split) == 16, "region");
_Static_assert(sizeof(struct vhost_user_desc_state_packed) == 32, "desc");
_Static_assert(sizeof(struct vhost_user_queue_region_packed) == 32, "region");
_Static_assert(sizeof(struct vhost_user_transfer_device_state) == 8, "state");
_Static_assert(offsetof(struct vhost_user_msg, payload) == 12, "msg");
#endif

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_SPEC_VHOST_USER_H */
