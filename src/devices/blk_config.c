// SPDX-License-Identifier: Apache-2.0
/*
 * The blk device's settings (<vdk/devices/blk.h>, <vdk/config.h>): one
 * table that vdk-vmm's --disk, vdk-vhost-user-blk's options and --help all
 * come from.
 */
#include <errno.h>
#include <stddef.h>

#include <vdk/devices/blk.h>

#include "../config_rules.h"

#define CFG(m) offsetof(struct vdk_blk_config, m)

static const struct vdk_config_choice aio_modes[] = {
	{"auto", VDK_BLK_IO_AUTO},    {"sync", VDK_BLK_IO_SYNC},
	{"threads", VDK_BLK_IO_SYNC}, {"io_uring", VDK_BLK_IO_ASYNC},
	{"async", VDK_BLK_IO_ASYNC},  {NULL, 0},
};

static const struct vdk_config_rule rules[] = {
	{
		.key = {"path", "IMAGE", "the image: a file or a block device"},
		.type = VDK_CONFIG_STRING,
		.offset = CFG(path),
		.copy = CFG(path_copy),
		.min = 1,
		.max = 4095,
	},
	{
		.key = {"readonly", NULL,
			"open read-only, offer VIRTIO_BLK_F_RO"},
		.alias = "ro",
		.type = VDK_CONFIG_FLAG,
		.offset = CFG(read_only),
	},
	{
		.key = {"serial", "ID",
			"device ID (GET_ID, Linux's serial), at most 20 bytes"},
		.type = VDK_CONFIG_STRING,
		.offset = CFG(serial),
		.copy = CFG(serial_copy),
		.min = 0,
		.max = VIRTIO_BLK_ID_BYTES,
	},
	{
		.key = {"direct", NULL,
			"open the image O_DIRECT (no host page cache)"},
		.alias = "cache",
		.alias_value = "none",
		.type = VDK_CONFIG_FLAG,
		.offset = CFG(direct),
	},
	{
		.key = {"aio", "auto|sync|io_uring",
			"reads and writes: preadv/pwritev, io_uring, or auto"},
		.type = VDK_CONFIG_ENUM,
		.offset = CFG(io_mode),
		.choices = aio_modes,
	},
	{
		.key = {"num-queues", "N", "request queues, 1..16 (default 1)"},
		.type = VDK_CONFIG_U16,
		.offset = CFG(num_queues),
		.min = 1,
		.max = VDK_BLK_MAX_QUEUES,
	},
	{
		.key = {"queue-size", "N",
			"largest queue size, a power of two 4..1024 (256)"},
		.type = VDK_CONFIG_U16,
		.offset = CFG(queue_size),
		.min = 4,
		.max = VDK_BLK_MAX_QUEUE_SIZE,
		.pow2 = true,
	},
};

_Static_assert(VDK_BLK_MAX_QUEUES == 16 && VDK_BLK_MAX_QUEUE_SIZE == 1024 &&
		       VDK_BLK_DEFAULT_QUEUE_SIZE == 256,
	       "the help lines above say these numbers");

static const struct vdk_config_schema schema = {
	.rules = rules,
	.n = sizeof(rules) / sizeof(rules[0]),
	.positional = 1, /* path */
};

const struct vdk_config_key *vdk_blk_config_key(size_t index)
{
	return vdk_config_schema_key(&schema, index);
}

int vdk_blk_config_set(struct vdk_blk_config *cfg, const char *key,
		       const char *value, char *msg, size_t len)
{
	return vdk_config_schema_set(&schema, cfg, key, value, msg, len);
}

int vdk_blk_config_parse(struct vdk_blk_config *cfg, const char *spec,
			 char *msg, size_t len)
{
	return vdk_config_schema_parse(&schema, cfg, spec, msg, len);
}

int vdk_blk_config_check(const struct vdk_blk_config *cfg, char *msg,
			 size_t len)
{
	if (!cfg || !cfg->path || !cfg->path[0])
		return vdk_config_msg(-EINVAL, msg, len, "path",
				      "missing (the image)");
	if (msg && len)
		msg[0] = '\0';
	return 0;
}

void vdk_blk_config_fini(struct vdk_blk_config *cfg)
{
	vdk_config_schema_fini(&schema, cfg);
}
