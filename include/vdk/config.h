/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device's settings, described once (in the spirit of QEMU's qdev
 * properties): each device type lists its settings ("serial", "num-queues",
 * "mac", ...) with a value syntax and a one-line help, and sets them from
 * strings through one setter. Every program that configures a device uses
 * the same description: vdk-vmm's --disk and --net parse a comma-separated
 * spec with it, the vhost-user backend programs turn each setting into a
 * long option (--serial=ID) and a line of --help.
 *
 * The functions per device type live in the device's header
 * (<vdk/devices/blk.h>: vdk_blk_config_key(), vdk_blk_config_set(),
 * vdk_blk_config_parse(), vdk_blk_config_check(), vdk_blk_config_fini()).
 * They share these rules:
 *  - a setting is "NAME" (a flag: "readonly") or "NAME=VALUE" ("serial=d0");
 *  - a spec is settings separated by commas; ",," is a comma inside a value
 *    or path (QEMU's escape); a device type may give its first field
 *    without a name (blk: the image path);
 *  - every error is -EINVAL (bad, unknown, repeated or conflicting setting)
 *    or -ENOMEM, with a one-line message that starts with the setting's
 *    name ("serial: at most 20 bytes") written to the caller's buffer.
 */
#ifndef VDK_CONFIG_H
#define VDK_CONFIG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A message buffer of this many bytes holds any message in full, unless
 * it quotes a long value ("not '...'"); a message is cut to the buffer
 * given, always NUL-terminated. */
#define VDK_CONFIG_MSG_LEN 160

/**
 * struct vdk_config_key - one setting of a device type, as its
 * vdk_<type>_config_key() lists it. Static strings, owned by the library.
 */
struct vdk_config_key {
	/** The setting's name: "serial", "num-queues" (the key in a spec,
	 * and the long option a backend program offers for it). */
	const char *name;
	/** Its value's syntax for a help text: "ID", "N", "MAC",
	 * "auto|sync|io_uring"; NULL for a flag, given by its name alone. */
	const char *value;
	/** One line (no newline, at most 54 characters) saying what it does,
	 * its range and default: "request queues, 1..16 (default 1)". */
	const char *help;
};

/**
 * typedef vdk_config_key_fn - a device type's list of settings: the
 * @index-th (from 0), or NULL past the last one (vdk_blk_config_key()).
 */
typedef const struct vdk_config_key *vdk_config_key_fn(size_t index);

#ifdef __cplusplus
}
#endif

#endif /* VDK_CONFIG_H */
