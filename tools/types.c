// SPDX-License-Identifier: Apache-2.0
/*
 * The device types vdk's backend programs serve, as the programs see them
 * (common.h, struct vdk_tool_device_type): the vhost-user type, the
 * settings, the --print-capabilities features, the statistics.
 */
#include <stddef.h>

#include <vdk/devices/blk.h>
#include <vdk/devices/net.h>
#include <vdk/devices/rng.h>

#include "common.h"
#include "stats.h"

/* vhost-user.json VHostUserBackendCapabilitiesBlk: the spec's --read-only
 * and --blk-file, which are settings of vdk_blk_config_key(). */
static const char *const blk_features[] = {"read-only", "blk-file", NULL};

const struct vdk_tool_device_type vdk_tool_blk_type = {
	.name = "block",
	.keys = vdk_blk_config_key,
	.features = blk_features,
	.stats = vdk_tool_stats_blk,
};

const struct vdk_tool_device_type vdk_tool_net_type = {
	.name = "net",
	.keys = vdk_net_config_key,
	.stats = vdk_tool_stats_net,
};

const struct vdk_tool_device_type vdk_tool_rng_type = {
	.name = "rng",
	.keys = vdk_rng_config_key,
	.stats = vdk_tool_stats_rng,
};
