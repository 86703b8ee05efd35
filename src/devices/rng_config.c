// SPDX-License-Identifier: Apache-2.0
/*
 * The rng device's settings (<vdk/devices/rng.h>, <vdk/config.h>): the
 * options of vdk-vhost-user-rng and their --help lines.
 */
#include <stddef.h>
#include <stdint.h>

#include <vdk/devices/rng.h>

#include "../config_rules.h"

#define CFG(m) offsetof(struct vdk_rng_config, m)

static const struct vdk_config_rule rules[] = {
	{
		.key = {"max-bytes", "N",
			"at most N random bytes per request (default: all)"},
		.type = VDK_CONFIG_U32,
		.offset = CFG(max_bytes_per_request),
		.min = 1,
		.max = UINT32_MAX,
	},
	{
		.key = {"queue-size", "N",
			"largest queue size, a power of two 1..32768 (256)"},
		.type = VDK_CONFIG_U16,
		.offset = CFG(queue_max_size),
		.min = 1,
		.max = VDK_VIRTQ_MAX_SIZE,
		.pow2 = true,
	},
};

_Static_assert(VDK_VIRTQ_MAX_SIZE == 32768 && VDK_RNG_DEFAULT_QUEUE_SIZE == 256,
	       "the help line above says these numbers");

static const struct vdk_config_schema schema = {
	.rules = rules,
	.n = sizeof(rules) / sizeof(rules[0]),
};

const struct vdk_config_key *vdk_rng_config_key(size_t index)
{
	return vdk_config_schema_key(&schema, index);
}

int vdk_rng_config_set(struct vdk_rng_config *cfg, const char *key,
		       const char *value, char *msg, size_t len)
{
	return vdk_config_schema_set(&schema, cfg, key, value, msg, len);
}

int vdk_rng_config_parse(struct vdk_rng_config *cfg, const char *spec,
			 char *msg, size_t len)
{
	return vdk_config_schema_parse(&schema, cfg, spec, msg, len);
}
