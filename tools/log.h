/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the programs' messages go: stderr, each line with a UTC timestamp
 * and the program's and device's names, e.g.
 *   2026-12-06T00:51:48.123Z vdk-vhost-user-blk[disk0]: warning: vhost-user: ...
 * or syslog (journald reads it too: --log=syslog), which adds its own
 * timestamp. Before vdk_tool_log_open() a message is "PROG: message", as a
 * command-line error should be.
 */
#ifndef VDK_TOOLS_LOG_H
#define VDK_TOOLS_LOG_H

#include <vdk/log.h>

/** The program's own messages (startup, statistics): always shown. */
#define VDK_TOOL_LOG_NOTICE (-1)

enum vdk_tool_log_target {
	VDK_TOOL_LOG_STDERR,
	VDK_TOOL_LOG_SYSLOG,
};

/**
 * vdk_tool_log_parse() - parse a --log value: "stderr", "syslog" or
 * "journald" (the same as syslog: journald collects syslog(3)).
 * Return: 0 and *@out, or -EINVAL.
 */
int vdk_tool_log_parse(const char *arg, enum vdk_tool_log_target *out);

/**
 * vdk_tool_log_open() - from now on, write to @target with timestamps
 * (stderr) or through openlog(@prog, LOG_PID, LOG_DAEMON) (syslog).
 * @prog must outlive the program's logging.
 */
void vdk_tool_log_open(const char *prog, enum vdk_tool_log_target target);

/** vdk_tool_log_set_prog() - the program name of every line (@prog must
 * outlive logging). */
void vdk_tool_log_set_prog(const char *prog);

/** vdk_tool_log_set_device() - the device name shown in every line (copied,
 * at most 63 bytes kept; NULL or "" for none). */
void vdk_tool_log_set_device(const char *name);

/**
 * vdk_tool_log_write() - write one message line.
 * @level:  an enum vdk_log_level, or VDK_TOOL_LOG_NOTICE
 * @module: the library module for library messages, or NULL
 */
void vdk_tool_log_write(int level, const char *module, const char *msg);

#endif /* VDK_TOOLS_LOG_H */
