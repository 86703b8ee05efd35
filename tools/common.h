/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every vdk vhost-user backend program shares: the command line of the
 * vhost-user spec's "Backend program conventions" (--socket-path, --fd,
 * --print-capabilities), logging to stderr, SIGINT/SIGTERM, accepting the
 * one front-end, and the event loop that serves it.
 *
 * The event loop is the program's own epoll loop on top of the library's
 * hooks (vdk_vhost_user_set_watch() for kick fds,
 * vdk_vhost_user_process_message() for the socket), so that a device can add
 * fds of its own (virtio-blk's io_uring completion eventfds) and a signal
 * ends the loop; vdk_vhost_user_run() offers neither.
 */
#ifndef VDK_TOOLS_COMMON_H
#define VDK_TOOLS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/vhost_user.h>

/** Options every backend program takes (spec "Backend program conventions"). */
struct vdk_tool_opts {
	const char *socket_path;  /**< --socket-path: listen here, or NULL */
	int fd;			  /**< --fd: inherited socket, or -1 */
	bool print_capabilities;  /**< --print-capabilities */
	int verbosity;		  /**< number of -v */
	int log_target;		  /**< --log: enum vdk_tool_log_target */
	const char *stats_socket; /**< --stats-socket: path, or NULL */
	const char *socket_group; /**< --socket-group, or NULL */
};

/** getopt_long() ids of the common long options (above any short option). */
enum {
	VDK_TOOL_OPT_SOCKET_PATH = 0x100,
	VDK_TOOL_OPT_FD,
	VDK_TOOL_OPT_PRINT_CAPS,
	VDK_TOOL_OPT_LOG,
	VDK_TOOL_OPT_STATS_SOCKET,
	VDK_TOOL_OPT_SOCKET_GROUP,
	VDK_TOOL_OPT_FIRST_PRIVATE, /**< a program's own options start here */
};

/** The common long options, to put in a program's struct option table. */
// clang-format off
#define VDK_TOOL_LONG_OPTIONS                                                  \
	{"socket-path", required_argument, NULL, VDK_TOOL_OPT_SOCKET_PATH},    \
	{"fd", required_argument, NULL, VDK_TOOL_OPT_FD},                      \
	{"print-capabilities", no_argument, NULL, VDK_TOOL_OPT_PRINT_CAPS},    \
	{"log", required_argument, NULL, VDK_TOOL_OPT_LOG},                    \
	{"stats-socket", required_argument, NULL, VDK_TOOL_OPT_STATS_SOCKET},  \
	{"socket-group", required_argument, NULL, VDK_TOOL_OPT_SOCKET_GROUP},  \
	{"verbose", no_argument, NULL, 'v'},                                   \
	{"version", no_argument, NULL, 'V'},                                   \
	{"help", no_argument, NULL, 'h'}
// clang-format on

/** Help text of the common options, for a program's --help. */
extern const char vdk_tool_common_help[];

/** The short options of the common ones, for getopt_long()'s optstring. */
#define VDK_TOOL_SHORT_OPTIONS "vVh"

/**
 * vdk_tool_parse_common() - handle getopt_long() result @opt if it is a
 * common option (--socket-path, --fd, --print-capabilities, -v).
 * @arg: optarg.
 *
 * Return: 1 if @opt was a common option, 0 if not, -EINVAL for a bad value
 * (a message is printed).
 */
int vdk_tool_parse_common(struct vdk_tool_opts *o, int opt, const char *arg);

/**
 * vdk_tool_check_common() - after parsing: exactly one of --socket-path
 * and --fd. Prints a message on error.
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
 * vdk_tool_log_init() - send library messages to the program's log
 * (tools/log.h), prefixed with @prog; verbosity 0 shows warnings and
 * errors, 1 (-v) adds info and debug messages, among them the vhost-user
 * message trace.
 */
void vdk_tool_log_init(const char *prog, int verbosity);

/** vdk_tool_msg() - print "@prog: message" to stderr. */
void vdk_tool_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * vdk_tool_signals() - block SIGINT and SIGTERM and return a signalfd for
 * them (owned by the caller); SIGPIPE is ignored (a closed socket is seen
 * as EPIPE).
 * Return: the fd, or -errno.
 */
int vdk_tool_signals(void);

/**
 * vdk_tool_accept() - get the connected front-end socket.
 * With --socket-path: create a listening AF_UNIX socket at that path
 * (replacing a stale socket file, refusing to replace anything else), wait
 * for one connection, then close and unlink the listener, so that no second
 * front-end can connect. With --fd: the fd is taken over; a listening socket
 * (SO_ACCEPTCONN) is accepted on once, a connected one used as it is.
 * @sigfd: from vdk_tool_signals(); a signal while waiting ends the wait.
 * @conn:  set to the connected socket (caller's).
 *
 * Return: 0; 1 if a signal came first (*@conn untouched); -errno.
 */
int vdk_tool_accept(const struct vdk_tool_opts *o, int sigfd, int *conn);

/**
 * struct vdk_tool_fd_handler - an extra fd the serving loop watches for
 * POLLIN; @fn(@opaque, @index) runs on the loop thread when it is readable
 * and must consume what made it readable.
 */
struct vdk_tool_fd_handler {
	int fd;
	void (*fn)(void *opaque, uint16_t index);
	void *opaque;
	uint16_t index;
};

/**
 * vdk_tool_serve() - serve @vu until the front-end disconnects, a signal
 * arrives on @sigfd, or the connection breaks: the socket, every ring's
 * kick fd (through vdk_vhost_user_set_watch()), @sigfd and the @n @extra
 * fds are watched with epoll; rings started without a kick fd are polled
 * every millisecond. A request that fails is logged by the library and
 * serving goes on.
 *
 * Return: 0 on a disconnect between messages (or a connection reset) or a
 * signal; the fatal error
 * (see vdk_vhost_user_process_message()) or -errno from epoll otherwise.
 */
int vdk_tool_serve(struct vdk_vhost_user *vu, int sigfd,
		   const struct vdk_tool_fd_handler *extra, size_t n);

/**
 * vdk_tool_serve_poll() - vdk_tool_serve() that busy-polls: after handling
 * events, the loop keeps checking its fds without sleeping (epoll_wait()
 * with a zero timeout) for up to @poll_us microseconds before it blocks, so
 * that a kick or completion arriving soon is handled without a wake-up of
 * the thread (as QEMU's AioContext polling does). 0 never polls. Costs CPU
 * time while the front-end is busy.
 *
 * Return: as vdk_tool_serve().
 */
int vdk_tool_serve_poll(struct vdk_vhost_user *vu, int sigfd,
			const struct vdk_tool_fd_handler *extra, size_t n,
			uint32_t poll_us);

/**
 * vdk_tool_serve_device() - serve the in-process device @dev to the
 * front-end on @conn through the library's device adapter
 * (vdk_vhost_user_backend_from_device()), with vdk_tool_serve_poll(), then
 * free the connection (every ring stops, the device is reset).
 * @conn: the connected socket; taken over (closed on every path).
 *
 * Return: as vdk_tool_serve(); -errno if the connection cannot be set up.
 */
int vdk_tool_serve_device(struct vdk_device *dev, int conn, int sigfd,
			  const struct vdk_tool_fd_handler *extra, size_t n,
			  uint32_t poll_us);

#endif /* VDK_TOOLS_COMMON_H */
