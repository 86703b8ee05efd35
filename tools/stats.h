/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live statistics of the backend programs, on demand:
 *   - a JSON document (json-c) built by the program's render callback from
 *     the device's counters (vdk_tool_stats_blk() / vdk_tool_stats_rng()
 *     fill the "device" and "queues" members, vdk_tool_stats_net() the
 *     "device" and "queue_pairs" members);
 *   - --stats-socket=PATH: a Unix socket answering each connection with
 *     that document, then closing it (`socat - UNIX-CONNECT:PATH`);
 *   - SIGUSR1: the same document, compact, as one log line.
 * Self-contained: vdk_tool_stats_attach() puts the SIGUSR1 signalfd and the
 * socket on the program's loop (<vdk/loop.h>), whose thread then answers,
 * whether or not a front-end is connected.
 *
 * Document (version 1):
 *   {"version": 1, "program": "...", "program_version": "...",
 *    "device_name": "...", "type": "block"|"net"|"rng", "pid": N,
 *    "uptime_ms": milliseconds since vdk_tool_stats_init(),
 *    "device": {counter: N, ...},
 *    "queues": [{"index": i, "started": bool, "in_flight": N,
 *                counter: N, ...,
 *                "used": N, "used_bytes": N, "notify_sent": N,
 *                "notify_suppressed": N,
 *                "latency_us": {"upper": [1, 2, 4, ..., null],
 *                               "count": [N, ...]}}, ...]}
 * net has "queue_pairs": [{"index": p, "tx_packets": N, "rx_packets": N}]
 * (vdk_net_pair_stats()) in place of "queues".
 * latency_us.count[i] counts requests whose pop-to-used latency was below
 * upper[i] microseconds and not below upper[i - 1] (null: no upper bound).
 */
#ifndef VDK_TOOLS_STATS_H
#define VDK_TOOLS_STATS_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct vdk_blk;
struct vdk_net;
struct vdk_rng;

/** What the document says about the program (strings must outlive it). */
struct vdk_tool_stats_info {
	const char *program, *program_version, *device_name, *type;
	uint64_t start_ns; /**< CLOCK_MONOTONIC, set by vdk_tool_stats_init */
};

/** vdk_tool_stats_init() - fill @info and note the start time. */
void vdk_tool_stats_init(struct vdk_tool_stats_info *info, const char *program,
			 const char *program_version, const char *device_name,
			 const char *type);

/**
 * typedef vdk_tool_stats_fn - add the device's members ("device",
 * "queues" or "queue_pairs") to @root. Called on the thread that handles the request.
 * Return: 0 or -ENOMEM.
 */
typedef int vdk_tool_stats_fn(void *opaque, struct json_object *root);

/** vdk_tool_stats_blk() - a vdk_tool_stats_fn for a struct vdk_blk. */
int vdk_tool_stats_blk(void *blk, struct json_object *root);

/** vdk_tool_stats_rng() - a vdk_tool_stats_fn for a struct vdk_rng (the
 * device's counters, and its one queue's virtqueue counters: call it on
 * the thread serving the queue). */
int vdk_tool_stats_rng(void *rng, struct json_object *root);

/** vdk_tool_stats_net() - a vdk_tool_stats_fn for a struct vdk_net: the
 * device's counters (struct vdk_net_stats, by their names) and each queue
 * pair's packets (vdk_net_pair_stats()). Call it on the device's loop. */
int vdk_tool_stats_net(void *net, struct json_object *root);

/**
 * vdk_tool_stats_render() - the whole document as a string.
 * @pretty: indented over several lines (the socket) or one line (the log).
 * Return: a malloc'd NUL-terminated string (caller frees), or NULL if out
 * of memory.
 */
char *vdk_tool_stats_render(const struct vdk_tool_stats_info *info,
			    vdk_tool_stats_fn *fn, void *opaque, int pretty);

struct vdk_tool_stats_server;

/**
 * vdk_tool_stats_server_new() - listen on the Unix socket @path for
 * statistics requests. A stale socket at @path (nobody answers a connect)
 * is replaced; a live one (another process serves it) or any other kind of
 * file is refused. @info, @fn and @opaque must outlive the server.
 * @err: set to 0, -EADDRINUSE (live socket), -EEXIST (not a socket),
 *       -ENAMETOOLONG, -ENOMEM or -errno of socket/bind/listen.
 * Return: the server (vdk_tool_stats_server_free()), or NULL.
 */
struct vdk_tool_stats_server *
vdk_tool_stats_server_new(const char *path,
			  const struct vdk_tool_stats_info *info,
			  vdk_tool_stats_fn *fn, void *opaque, int *err);

/** vdk_tool_stats_server_fd() - the listening socket (non-blocking); watch
 * it for POLLIN. Owned by the server. */
int vdk_tool_stats_server_fd(const struct vdk_tool_stats_server *srv);

/**
 * vdk_tool_stats_server_handle() - accept every pending connection, send
 * each the document (non-blocking: a client that does not read is cut
 * short) and close it. Never blocks.
 * Return: the number of connections answered, or -errno of accept().
 */
int vdk_tool_stats_server_handle(struct vdk_tool_stats_server *srv);

/** vdk_tool_stats_server_free() - close the socket and remove @path. NULL
 * is accepted. */
void vdk_tool_stats_server_free(struct vdk_tool_stats_server *srv);

/**
 * vdk_tool_stats_signal_fd() - block SIGUSR1 and return a non-blocking
 * signalfd for it (caller's).
 * Return: the fd, or -errno.
 */
int vdk_tool_stats_signal_fd(void);

/**
 * vdk_tool_stats_on_signal() - drain @sigfd and, if SIGUSR1 was pending,
 * log the document as one line (tools/log.h, always shown).
 * Return: 1 if it logged, 0 if nothing was pending, -ENOMEM.
 */
int vdk_tool_stats_on_signal(int sigfd, const struct vdk_tool_stats_info *info,
			     vdk_tool_stats_fn *fn, void *opaque);

/**
 * vdk_tool_stats_log() - log the document as one line (tools/log.h, always
 * shown): what SIGUSR1 does, and the programs' last word at exit.
 * Return: 0, or -ENOMEM (nothing logged).
 */
int vdk_tool_stats_log(const struct vdk_tool_stats_info *info,
		       vdk_tool_stats_fn *fn, void *opaque);

/* ---- one bundle for a program ------------------------------------------ */

struct vdk_loop;

/** struct vdk_tool_stats - a program's statistics: document, SIGUSR1 and
 * the optional socket (vdk_tool_stats_start()). */
struct vdk_tool_stats {
	struct vdk_tool_stats_info info;
	vdk_tool_stats_fn *fn;
	void *opaque;
	struct vdk_tool_stats_server *srv; /**< NULL without --stats-socket */
	int sigfd;			   /**< SIGUSR1 */
};

/**
 * vdk_tool_stats_start() - block SIGUSR1 (vdk_tool_stats_signal_fd()) and,
 * if @socket_path is not NULL, listen there (vdk_tool_stats_server_new()).
 * @st->info, @st->fn and @st->opaque must be set. Errors are logged.
 * Return: 0 or -errno; on failure nothing is left open.
 */
int vdk_tool_stats_start(struct vdk_tool_stats *st, const char *socket_path);

/** vdk_tool_stats_stop() - close what vdk_tool_stats_start() opened. */
void vdk_tool_stats_stop(struct vdk_tool_stats *st);

/**
 * vdk_tool_stats_attach() - watch @st's SIGUSR1 signalfd and its socket (if
 * any) on @loop, so that statistics are served from the program's loop
 * whether or not a front-end is connected. Logs an error.
 * Return: 0 or -errno of vdk_loop_add() (nothing left added).
 */
int vdk_tool_stats_attach(struct vdk_tool_stats *st, struct vdk_loop *loop);

/** vdk_tool_stats_detach() - undo vdk_tool_stats_attach() (before
 * vdk_tool_stats_stop() closes the fds). */
void vdk_tool_stats_detach(struct vdk_tool_stats *st, struct vdk_loop *loop);

#endif /* VDK_TOOLS_STATS_H */
