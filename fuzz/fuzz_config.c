// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the device settings (<vdk/config.h>): the input,
 * cut at its first NUL bytes, is a blk, a net and an rng spec (any bytes,
 * any length), each parsed into a config, then one KEY=VALUE setting of
 * each set again, then freed. Whatever the bytes, parsing must return 0,
 * -EINVAL or -ENOMEM with a terminated message, never read or write out of
 * bounds, and leave nothing behind that fini does not free (ASan, LSan).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vdk/config.h>
#include <vdk/devices/blk.h>
#include <vdk/devices/net.h>
#include <vdk/devices/rng.h>

/* A NUL-terminated copy of the next field of @data (up to a NUL byte). */
static char *next(const uint8_t **data, size_t *size)
{
	const uint8_t *end = memchr(*data, 0, *size);
	size_t n = end ? (size_t)(end - *data) : *size;
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, *data, n);
	s[n] = '\0';
	*data += end ? n + 1 : n;
	*size -= end ? n + 1 : n;
	return s;
}

static void check(int ret, const char *msg)
{
	if (ret != 0 && ret != -EINVAL && ret != -ENOMEM)
		abort();
	if (strlen(msg) >= VDK_CONFIG_MSG_LEN || (ret < 0 && !msg[0]))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *blk_spec = next(&data, &size), *net_spec = next(&data, &size);
	char *rng_spec = next(&data, &size), *key = next(&data, &size);
	char *value = strchr(key, '=');
	char msg[VDK_CONFIG_MSG_LEN];
	struct vdk_blk_config blk = {0};
	struct vdk_net_config net = {0};
	struct vdk_rng_config rng = {0};

	if (value)
		*value++ = '\0';
	check(vdk_blk_config_parse(&blk, blk_spec, msg, sizeof(msg)), msg);
	check(vdk_blk_config_set(&blk, key, value, msg, sizeof(msg)), msg);
	check(vdk_blk_config_check(&blk, msg, sizeof(msg)), msg);
	check(vdk_net_config_parse(&net, net_spec, msg, sizeof(msg)), msg);
	check(vdk_net_config_set(&net, key, value, msg, sizeof(msg)), msg);
	check(vdk_net_config_check(&net, msg, sizeof(msg)), msg);
	check(vdk_rng_config_parse(&rng, rng_spec, msg, sizeof(msg)), msg);
	check(vdk_rng_config_set(&rng, key, value, msg, sizeof(msg)), msg);
	if (blk.serial && strlen(blk.serial) > VIRTIO_BLK_ID_BYTES)
		abort();
	if (net.tap.ifname && strlen(net.tap.ifname) > 15)
		abort();
	vdk_blk_config_fini(&blk);
	vdk_net_config_fini(&net);
	free(blk_spec);
	free(net_spec);
	free(rng_spec);
	free(key);
	return 0;
}
