/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every vdk vhost-user backend program shares: the command line of the
 * vhost-user spec's "Backend program conventions" (--socket-path, --fd,
 * --print-capabilities), logging (tools/log.h), live statistics
 * (tools/stats.h) and serving: one epoll loop
 * (<vdk/loop.h>) with the signals on it, and the library's vhost-user
 * server over the program's device, which registers its own fds there. A
 * program is its device's settings (<vdk/config.h>, offered as options),
 * a few options of its own and a device constructor.
 */
#ifndef VDK_TOOLS_COMMON_H
#define VDK_TOOLS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <getopt.h>

#include <vdk/config.h>
#include <vdk/loop.h>
#include <vdk/vhost_user.h>

#include "log.h"

struct json_object;

/** Options every backend program takes (spec "Backend program conventions"). */
struct vdk_tool_opts {
	const char *socket_path; /**< --socket-path: listen here, or NULL */
	int fd;			 /**< --fd: inherited socket, or -1 */
	/* flags, which getopt_long() sets itself (struct option.flag) */
	int print_capabilities; /**< --print-capabilities */
	int once;	    /**< --once 1 (one front-end), --keep-listening 0 */
	int allow_unsealed; /**< --allow-unsealed-memory */
	int verbosity;	    /**< number of -v */
	enum vdk_tool_log_target log_target; /**< --log */
	const char *stats_socket; /**< --stats-socket: path, or NULL */
	const char *socket_group; /**< --socket-group, or NULL */
};

/** getopt_long() ids of the common long options (above any short option). */
enum {
	VDK_TOOL_OPT_SOCKET_PATH = 0x100,
	VDK_TOOL_OPT_FD,
	VDK_TOOL_OPT_LOG,
	VDK_TOOL_OPT_STATS_SOCKET,
	VDK_TOOL_OPT_SOCKET_GROUP,
	VDK_TOOL_OPT_FIRST_PRIVATE, /**< a program's own options start here */
	/** The device's settings (vdk_tool_program.type->keys) are options from
	 * here on, in the order the device lists them. */
	VDK_TOOL_OPT_FIRST_SETTING = 0x180,
};

/** Help text of the common options, for a program's --help. */
extern const char vdk_tool_common_help[];

/** The short options of the common ones, for getopt_long()'s optstring. */
#define VDK_TOOL_SHORT_OPTIONS "vVh"

/**
 * vdk_tool_parse_common() - handle getopt_long() result @opt if it is a
 * common option that is not a flag (--socket-path, --fd, --log,
 * --stats-socket, --socket-group, -v).
 * @arg: optarg.
 *
 * Return: 1 if @opt was a common option, 0 if not, -EINVAL for a bad value
 * (a message is printed).
 */
int vdk_tool_parse_common(struct vdk_tool_opts *o, int opt, const char *arg);

/**
 * vdk_tool_check_common() - after parsing: one of --socket-path and --fd,
 * or LISTEN_FDS in the environment; --socket-group only with
 * --socket-path, naming a group that exists. Prints a message on error.
 * Return: 0 or -EINVAL.
 */
int vdk_tool_check_common(const struct vdk_tool_opts *o);

/**
 * vdk_tool_parse_u32() - parse a decimal number in [@min, @max].
 * Return: 0 and *@out, or -EINVAL.
 */
int vdk_tool_parse_u32(const char *s, uint32_t min, uint32_t max,
		       uint32_t *out);

/**
 * vdk_tool_parse_opt() - vdk_tool_parse_u32() for option --@name, printing
 * "--@name: want @min..@max" (or "a power of two" if @pow2) on error.
 * Return: 0 and *@out, or -EINVAL.
 */
int vdk_tool_parse_opt(const char *name, const char *arg, uint32_t min,
		       uint32_t max, bool pow2, uint32_t *out);

/**
 * vdk_tool_log_init() - send library messages to the program's log
 * (tools/log.h), prefixed with @prog; verbosity 0 shows warnings and
 * errors, 1 (-v) adds info and debug messages, among them the vhost-user
 * message trace.
 */
void vdk_tool_log_init(const char *prog, int verbosity);

/** vdk_tool_msg() - log the program's own message (always shown,
 * tools/log.h). */
void vdk_tool_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** struct vdk_tool - the program's loop. */
struct vdk_tool {
	struct vdk_loop *loop;	 /**< epoll loop everything runs on */
	int result;		 /**< error of a failed connection, or 0 */
	const char *device_name; /**< set by create(): logs and statistics */
	bool reported; /**< the error that ended serving was already said */
	bool served;   /**< the server was listening (vdk_tool_serve()) */
	/** set by create(): what vdk_tool_device_type.stats is called with
	 * (the struct vdk_blk, ...) */
	void *stats_opaque;
};

/**
 * vdk_tool_start() - ignore SIGPIPE (a closed socket is seen as EPIPE),
 * make the epoll loop, and catch SIGINT, SIGTERM and SIGHUP: one stops the
 * loop, and the process ends itself 1 s later if it has not exited by then,
 * whatever its threads wait on. Call vdk_tool_end() after the device (which
 * registers its fds on the loop) is freed, also on failure.
 * Return: 0 or -errno.
 */
int vdk_tool_start(struct vdk_tool *t);

/** vdk_tool_end() - free the loop. */
void vdk_tool_end(struct vdk_tool *t);

/**
 * vdk_tool_serve() - serve @dev over vhost-user as the options say
 * (vdk_vhost_user_server_new(): --socket-path, --fd, or systemd's
 * LISTEN_FDS; front-ends one after the other, or only one with --once;
 * --socket-group) on the tool's loop until a signal (or, with --once, the
 * front-end disconnected); then end the connection (the device drains and
 * is reset) and remove the socket file.
 *
 * Return: 0; the error of a connection that failed (not a disconnect);
 * -errno if serving cannot start.
 */
int vdk_tool_serve(struct vdk_tool *t, const struct vdk_tool_opts *o,
		   struct vdk_device *dev);

/**
 * struct vdk_tool_device_type - what the programs know of one device type,
 * whichever program serves it (vdk_tool_blk_type, ...).
 */
struct vdk_tool_device_type {
	/** the vhost-user device type ("block", "net", "rng"): the "type" of
	 * --print-capabilities (vhost-user.json VHostUserBackendType) and of
	 * the statistics document */
	const char *name;
	/** its settings (<vdk/config.h>, e.g. vdk_blk_config_key): each is
	 * an option --NAME[=VALUE] with its line in --help, handed to
	 * vdk_tool_program.set */
	vdk_config_key_fn *keys;
	/** --print-capabilities "features" (vhost-user.json
	 * VHostUserBackendCapabilities<Type>), NULL-terminated; NULL: the
	 * type has none and the member is left out */
	const char *const *features;
	/** the device's members of the statistics document (tools/stats.h),
	 * called with vdk_tool.stats_opaque; NULL: the document has none */
	int (*stats)(void *opaque, struct json_object *root);
};

/** The types vdk's programs serve (tools/types.c). */
extern const struct vdk_tool_device_type vdk_tool_blk_type;
extern const struct vdk_tool_device_type vdk_tool_net_type;
extern const struct vdk_tool_device_type vdk_tool_rng_type;

/**
 * struct vdk_tool_program - a backend program: its options and its device.
 * Everything else (common options, logging, signals, serving) is
 * vdk_tool_main()'s.
 */
struct vdk_tool_program {
	/** for messages: "vdk-vhost-user-blk" */
	const char *name;
	/** its options, for the usage line */
	const char *synopsis;
	/** its own options, {NULL}-terminated, or NULL (the device's
	 * settings come from @type) */
	const struct option *options;
	/** --help: what it does and its own options (the usage line, the
	 * device's settings and the common options are printed after it) */
	void (*usage)(FILE *out);
	/** or the same as a fixed text, if @usage is NULL */
	const char *help;
	/** the device it serves: its settings, capabilities, statistics */
	const struct vdk_tool_device_type *type;
	/** options named otherwise than their setting: {setting, option,
	 * ..., NULL} (vdk_tool_setting_name()); NULL: none */
	const char *const *renames;
	/** Set device setting @key (its name in type->keys) to @value (NULL for a
	 * flag): 0, or -errno with "KEY: why" in @msg (@len bytes), which is
	 * printed as "--OPTION: why"; an empty @msg: already printed. */
	int (*set)(const char *key, const char *value, char *msg, size_t len);
	/** Handle one of its own options: 0, or -EINVAL (message printed).
	 * NULL if it has none. */
	int (*parse)(int opt, const char *arg);
	/** After parsing, before logging starts: whether the options are
	 * complete (a required setting missing, two that conflict): 0, or
	 * -EINVAL after printing why in one line. NULL: nothing to check. */
	int (*check)(void);
	/** After checking: create the device and set vdk_tool.stats_opaque
	 * (it may also set the loop's busy-polling and vdk_tool.device_name). NULL
	 * with *@err -errno (vdk_tool_main() says "cannot create the device:
	 * <why>"), or 0 if it said why itself. The device is
	 * vdk_tool_main()'s: vdk_device_fini() frees it after serving. */
	struct vdk_device *(*create)(struct vdk_tool *t, int *err);
};

/**
 * vdk_tool_main() - the whole program: parse the command line (the common
 * options and @p's, tools/options.h conventions), then --help, --version
 * or --print-capabilities (which ignores every other option), or create
 * the device and serve it (vdk_tool_serve()) with its statistics on the
 * same loop (SIGUSR1, --stats-socket) until a signal or, with --once, the
 * front-end left; then log the statistics document once more (if it
 * listened; the line SIGUSR1 logs) and free the device.
 * Return: the exit status: 0, or 1 on an error.
 */
int vdk_tool_main(const struct vdk_tool_program *p, int argc, char **argv);

#endif /* VDK_TOOLS_COMMON_H */
