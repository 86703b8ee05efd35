// SPDX-License-Identifier: Apache-2.0
/*
 * The net device's settings (<vdk/devices/net.h>, <vdk/config.h>): one
 * table that vdk-vmm's --net, vdk-vhost-user-net's options and --help all
 * come from.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <vdk/devices/net.h>

#include "../config_rules.h"

#define CFG(m) offsetof(struct vdk_net_config, m)

/* The backend settings tap, tap-fd and loopback exclude each other: which
 * one chose the backend in @cfg, or NULL. */
static const char *backend_key(const struct vdk_net_config *cfg)
{
	switch (cfg->backend_type) {
	case VDK_NET_BACKEND_TAP:
		return cfg->tap.ifname ? "tap" : "tap-fd";
	case VDK_NET_BACKEND_LOOPBACK:
		return "loopback";
	default:
		return NULL;
	}
}

/* Refuse a second backend (the same setting again may replace itself). */
static int check_backend(const struct vdk_net_config *cfg,
			 const struct vdk_config_rule *r, char *msg, size_t len)
{
	const char *prev = backend_key(cfg);

	if (prev && strcmp(prev, r->key.name))
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "%s already chosen (give one of tap, "
				      "tap-fd, loopback)",
				      prev);
	return 0;
}

static int set_tap(void *opaque, const struct vdk_config_rule *r,
		   const char *value, char *msg, size_t len)
{
	struct vdk_net_config *cfg = opaque;
	int ret = check_backend(cfg, r, msg, len);

	if (ret == 0)
		ret = vdk_config_store_string(r, &cfg->tap.ifname,
					      &cfg->tap_ifname_copy, value, msg,
					      len);
	if (ret == 0) {
		cfg->backend_type = VDK_NET_BACKEND_TAP;
		cfg->tap.fd = -1;
	}
	return ret;
}

static int set_tap_fd(void *opaque, const struct vdk_config_rule *r,
		      const char *value, char *msg, size_t len)
{
	struct vdk_net_config *cfg = opaque;
	unsigned long v;
	char *end;
	int ret = check_backend(cfg, r, msg, len);

	if (ret < 0)
		return ret;
	errno = 0;
	v = value[0] >= '0' && value[0] <= '9' ? strtoul(value, &end, 10) : 0;
	if (value[0] < '0' || value[0] > '9' || *end || errno || v > INT_MAX)
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "not a file descriptor: '%s'", value);
	cfg->backend_type = VDK_NET_BACKEND_TAP;
	cfg->tap.fd = (int)v;
	cfg->tap.ifname = NULL;
	return 0;
}

static int set_loopback(void *opaque, const struct vdk_config_rule *r,
			const char *value, char *msg, size_t len)
{
	struct vdk_net_config *cfg = opaque;
	int ret = check_backend(cfg, r, msg, len);

	(void)value;
	if (ret == 0)
		cfg->backend_type = VDK_NET_BACKEND_LOOPBACK;
	return ret;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "52:54:00:12:34:56": six bytes of two hex digits each, ':' between; a
 * device's address is unicast (virtio 1.2 §5.1.4: the low bit of the
 * first byte clear). */
static int set_mac(void *opaque, const struct vdk_config_rule *r,
		   const char *value, char *msg, size_t len)
{
	struct vdk_net_config *cfg = opaque;
	uint8_t mac[6];
	bool ok = strlen(value) == 17;

	for (int i = 0; ok && i < 6; i++) {
		const char *p = value + 3 * i;
		int hi = hex_digit(p[0]), lo = hex_digit(p[1]);

		ok = hi >= 0 && lo >= 0 && (i == 5 || p[2] == ':');
		if (ok)
			mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!ok || (mac[0] & 1))
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "want a unicast address like "
				      "52:54:00:12:34:56, not '%s'",
				      value);
	memcpy(cfg->mac, mac, sizeof(mac));
	return 0;
}

static const struct vdk_config_rule rules[] = {
	{
		.key = {"tap", "IFNAME",
			"an existing tap interface (multi_queue for N > 1)"},
		.type = VDK_CONFIG_CUSTOM,
		.set = set_tap,
		.offset = CFG(tap.ifname),
		.copy = CFG(tap_ifname_copy),
		.min = 1,
		.max = IFNAMSIZ - 1,
	},
	{
		.key = {"tap-fd", "N",
			"an open tap fd with IFF_VNET_HDR (one pair)"},
		.type = VDK_CONFIG_CUSTOM,
		.set = set_tap_fd,
	},
	{
		.key = {"loopback", NULL,
			"send every packet back to the guest"},
		.type = VDK_CONFIG_CUSTOM,
		.set = set_loopback,
	},
	{
		.key = {"mac", "MAC",
			"the device's address (default 52:54:00:12:34:56)"},
		.type = VDK_CONFIG_CUSTOM,
		.set = set_mac,
	},
	{
		.key = {"queue-pairs", "N",
			"receive/transmit queue pairs, 1..31 (default 1)"},
		.type = VDK_CONFIG_U16,
		.offset = CFG(max_queue_pairs),
		.min = 1,
		.max = VDK_NET_MAX_QUEUE_PAIRS,
	},
	{
		.key = {"mtu", "N", "MTU advice, 68..65535 (default: none)"},
		.type = VDK_CONFIG_U16,
		.offset = CFG(mtu),
		.min = 68,
		.max = 65535,
	},
	{
		.key = {"busy-poll", "USEC",
			"poll an emptied transmit queue, 0..1000 (0: off)"},
		.type = VDK_CONFIG_U32,
		.offset = CFG(busy_poll_us),
		.min = 0,
		.max = 1000,
	},
};

_Static_assert(VDK_NET_MAX_QUEUE_PAIRS == 31, "the help line says 1..31");

static const struct vdk_config_schema schema = {
	.rules = rules,
	.n = sizeof(rules) / sizeof(rules[0]),
};

const struct vdk_config_key *vdk_net_config_key(size_t index)
{
	return vdk_config_schema_key(&schema, index);
}

int vdk_net_config_set(struct vdk_net_config *cfg, const char *key,
		       const char *value, char *msg, size_t len)
{
	return vdk_config_schema_set(&schema, cfg, key, value, msg, len);
}

int vdk_net_config_parse(struct vdk_net_config *cfg, const char *spec,
			 char *msg, size_t len)
{
	return vdk_config_schema_parse(&schema, cfg, spec, msg, len);
}

int vdk_net_config_check(const struct vdk_net_config *cfg, char *msg,
			 size_t len)
{
	if (!cfg || (!cfg->backend && !backend_key(cfg)))
		return vdk_config_msg(-EINVAL, msg, len, "backend",
				      "missing (give one of tap, tap-fd, "
				      "loopback)");
	if (!cfg->backend && cfg->backend_type == VDK_NET_BACKEND_TAP &&
	    !cfg->tap.ifname && cfg->max_queue_pairs > 1)
		return vdk_config_msg(-EINVAL, msg, len, "tap-fd",
				      "carries one queue pair (queue-pairs=%u "
				      "needs tap=IFNAME)",
				      cfg->max_queue_pairs);
	if (msg && len)
		msg[0] = '\0';
	return 0;
}

void vdk_net_config_fini(struct vdk_net_config *cfg)
{
	vdk_config_schema_fini(&schema, cfg);
}
