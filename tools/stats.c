// SPDX-License-Identifier: Apache-2.0
/*
 * Live statistics of the backend programs (stats.h): the JSON document
 * (json-c), the --stats-socket server and SIGUSR1.
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vdk/devices/blk.h>
#include <vdk/devices/net.h>
#include <vdk/devices/rng.h>

#include "common.h"
#include "log.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void vdk_tool_stats_init(struct vdk_tool_stats_info *info, const char *program,
			 const char *program_version, const char *device_name,
			 const char *type)
{
	*info = (struct vdk_tool_stats_info){
		.program = program,
		.program_version = program_version,
		.device_name = device_name ? device_name : "",
		.type = type,
		.start_ns = mono_ns(),
	};
}

/* ---- the document ------------------------------------------------------ */

/* Add @v as @key to @obj; -ENOMEM if json-c cannot allocate. */
static int add(struct json_object *obj, const char *key, struct json_object *v)
{
	if (!v || json_object_object_add(obj, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_u64(struct json_object *obj, const char *key, uint64_t v)
{
	return add(obj, key, json_object_new_uint64(v));
}

/* Add the device's two members to @root: "device", an object for its
 * counters (*@dev), and @list, an array of its queues or queue pairs
 * (*@items). Return: 0, or -ENOMEM (neither is left to fill). */
static int add_device(struct json_object *root, const char *list,
		      struct json_object **dev, struct json_object **items)
{
	*items = json_object_new_array();
	*dev = json_object_new_object();
	if (add(root, "device", *dev) < 0) {
		json_object_put(*items);
		return -ENOMEM;
	}
	return add(root, list, *items);
}

/* Append a new object to @array. Return: it, or NULL (out of memory). */
static struct json_object *add_item(struct json_object *array)
{
	struct json_object *o = json_object_new_object();

	if (!o || json_object_array_add(array, o) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* The request counters of virtio-blk, as the names of struct
 * vdk_blk_stats. */
static int add_blk_counters(struct json_object *o,
			    const struct vdk_blk_stats *s)
{
	int r = 0;

	r |= add_u64(o, "reads", s->reads);
	r |= add_u64(o, "writes", s->writes);
	r |= add_u64(o, "flushes", s->flushes);
	r |= add_u64(o, "get_ids", s->get_ids);
	r |= add_u64(o, "discards", s->discards);
	r |= add_u64(o, "write_zeroes", s->write_zeroes);
	r |= add_u64(o, "bytes_read", s->bytes_read);
	r |= add_u64(o, "bytes_written", s->bytes_written);
	r |= add_u64(o, "errors", s->io_errors);
	r |= add_u64(o, "unsupported", s->unsupported);
	r |= add_u64(o, "malformed", s->malformed);
	return r ? -ENOMEM : 0;
}

static struct json_object *latency_json(const uint64_t *count)
{
	struct json_object *o = json_object_new_object();
	struct json_object *up = json_object_new_array();
	struct json_object *n = json_object_new_array();
	int r = 0;

	if (!o || !up || !n) {
		json_object_put(o);
		json_object_put(up);
		json_object_put(n);
		return NULL;
	}
	r |= add(o, "upper", up);
	r |= add(o, "count", n);
	for (int i = 0; i < VDK_BLK_LATENCY_BUCKETS && r == 0; i++) {
		/* bucket i < 2^i us; the last has no upper bound */
		if (i == VDK_BLK_LATENCY_BUCKETS - 1)
			r |= json_object_array_add(up, NULL);
		else
			r |= json_object_array_add(
				up, json_object_new_uint64(1ull << i));
		r |= json_object_array_add(n, json_object_new_uint64(count[i]));
	}
	if (r) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int vdk_tool_stats_blk(void *opaque, struct json_object *root)
{
	struct vdk_blk *blk = opaque;
	struct vdk_blk_stats sum = vdk_blk_stats(blk);
	struct vdk_blk_queue_stats qs;
	struct json_object *dev, *queues, *q;
	uint64_t in_flight = 0;
	int r = add_device(root, "queues", &dev, &queues);

	for (uint16_t i = 0; r == 0 && vdk_blk_queue_stats(blk, i, &qs) == 0;
	     i++) {
		if (!(q = add_item(queues)))
			return -ENOMEM;
		in_flight += qs.in_flight;
		r |= add_u64(q, "index", i);
		r |= add(q, "started", json_object_new_boolean(qs.started));
		r |= add_u64(q, "in_flight", qs.in_flight);
		r |= add_blk_counters(q, &qs.req);
		r |= add_u64(q, "used", qs.vq.used);
		r |= add_u64(q, "used_bytes", qs.vq.used_bytes);
		r |= add_u64(q, "notify_sent", qs.vq.notify_sent);
		r |= add_u64(q, "notify_suppressed", qs.vq.notify_suppressed);
		r |= add(q, "latency_us", latency_json(qs.latency));
	}
	if (r)
		return -ENOMEM;
	r |= add_blk_counters(dev, &sum);
	r |= add_u64(dev, "in_flight", in_flight);
	r |= add_u64(dev, "capacity_sectors", vdk_blk_capacity(blk));
	return r ? -ENOMEM : 0;
}

int vdk_tool_stats_rng(void *opaque, struct json_object *root)
{
	struct vdk_rng_stats s = vdk_rng_stats(opaque);
	struct vdk_virtq_stats vq;
	bool started = vdk_rng_queue_stats(opaque, &vq);
	struct json_object *dev, *queues, *q;
	int r = add_device(root, "queues", &dev, &queues);

	if (r < 0 || !(q = add_item(queues)))
		return -ENOMEM;
	r |= add_u64(dev, "requests", s.requests);
	r |= add_u64(dev, "bytes", s.bytes);
	r |= add_u64(q, "index", 0);
	r |= add(q, "started", json_object_new_boolean(started));
	r |= add_u64(q, "used", vq.used);
	r |= add_u64(q, "used_bytes", vq.used_bytes);
	r |= add_u64(q, "notify_sent", vq.notify_sent);
	r |= add_u64(q, "notify_suppressed", vq.notify_suppressed);
	return r ? -ENOMEM : 0;
}

int vdk_tool_stats_net(void *opaque, struct json_object *root)
{
	struct vdk_net *net = opaque;
	struct vdk_net_stats s = vdk_net_stats(net);
	struct json_object *dev, *pairs, *p;
	uint64_t tx, rx;
	int r = add_device(root, "queue_pairs", &dev, &pairs);

	for (uint16_t i = 0;
	     r == 0 && vdk_net_pair_stats(net, i, &tx, &rx) == 0; i++) {
		if (!(p = add_item(pairs)))
			return -ENOMEM;
		r |= add_u64(p, "index", i);
		r |= add_u64(p, "tx_packets", tx);
		r |= add_u64(p, "rx_packets", rx);
	}
	if (r)
		return -ENOMEM;
	r |= add_u64(dev, "tx_packets", s.tx_packets);
	r |= add_u64(dev, "tx_bytes", s.tx_bytes);
	r |= add_u64(dev, "tx_dropped_header", s.tx_dropped_header);
	r |= add_u64(dev, "tx_dropped_backend", s.tx_dropped_backend);
	r |= add_u64(dev, "rx_packets", s.rx_packets);
	r |= add_u64(dev, "rx_bytes", s.rx_bytes);
	r |= add_u64(dev, "rx_dropped_header", s.rx_dropped_header);
	r |= add_u64(dev, "rx_dropped_no_room", s.rx_dropped_no_room);
	r |= add_u64(dev, "rx_filtered", s.rx_filtered);
	r |= add_u64(dev, "ctrl_commands", s.ctrl_commands);
	r |= add_u64(dev, "ctrl_errors", s.ctrl_errors);
	return r ? -ENOMEM : 0;
}

char *vdk_tool_stats_render(const struct vdk_tool_stats_info *info,
			    vdk_tool_stats_fn *fn, void *opaque, int pretty)
{
	struct json_object *root = json_object_new_object();
	char *out = NULL;
	int r = 0;

	if (!root)
		return NULL;
	r |= add_u64(root, "version", 1);
	r |= add(root, "program", json_object_new_string(info->program));
	r |= add(root, "program_version",
		 json_object_new_string(info->program_version));
	r |= add(root, "device_name",
		 json_object_new_string(info->device_name));
	r |= add(root, "type", json_object_new_string(info->type));
	r |= add_u64(root, "pid", (uint64_t)getpid());
	r |= add_u64(root, "uptime_ms",
		     (mono_ns() - info->start_ns) / 1000000u);
	if (r == 0 && fn)
		r = fn(opaque, root);
	if (r == 0) {
		const char *s = json_object_to_json_string_ext(
			root, pretty ? JSON_C_TO_STRING_PRETTY |
					       JSON_C_TO_STRING_SPACED
				     : JSON_C_TO_STRING_PLAIN);
		out = s ? strdup(s) : NULL;
	}
	json_object_put(root);
	return out;
}

/* ---- the socket -------------------------------------------------------- */

struct vdk_tool_stats_server {
	int fd;
	char *path;
	const struct vdk_tool_stats_info *info;
	vdk_tool_stats_fn *fn;
	void *opaque;
};

/* Make @path free to bind: nothing there, or a stale socket (removed).
 * A socket somebody listens on, or another kind of file, is refused. */
static int claim_path(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	r = r == 0 ? 0 : errno;
	close(fd);
	if (r == 0 || r == EAGAIN || r == EINPROGRESS)
		return -EADDRINUSE; /* answered, or its backlog is full */
	if (r != ECONNREFUSED)
		return -r;
	return unlink(sa->sun_path) < 0 && errno != ENOENT ? -errno : 0;
}

struct vdk_tool_stats_server *
vdk_tool_stats_server_new(const char *path,
			  const struct vdk_tool_stats_info *info,
			  vdk_tool_stats_fn *fn, void *opaque, int *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vdk_tool_stats_server *srv;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		*err = -ENOMEM;
		return NULL;
	}
	srv->info = info;
	srv->fn = fn;
	srv->opaque = opaque;
	r = claim_path(&sa);
	if (r == 0) {
		srv->fd = socket(AF_UNIX,
				 SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (srv->fd < 0 ||
		    bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(srv->fd, 8) < 0)
			r = -errno;
		if (r < 0 && srv->fd >= 0)
			close(srv->fd);
	}
	if (r < 0) {
		free(srv->path);
		free(srv);
		*err = r;
		return NULL;
	}
	*err = 0;
	return srv;
}

int vdk_tool_stats_server_fd(const struct vdk_tool_stats_server *srv)
{
	return srv->fd;
}

int vdk_tool_stats_server_handle(struct vdk_tool_stats_server *srv)
{
	char *doc = NULL;
	int n = 0;

	for (;;) {
		int c = accept4(srv->fd, NULL, NULL,
				SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			free(doc);
			return n ? n : -errno;
		}
		if (!doc)
			doc = vdk_tool_stats_render(srv->info, srv->fn,
						    srv->opaque, 1);
		if (doc) {
			size_t len = strlen(doc);

			/* One document per connection; a reader too slow
			 * for the socket buffer gets a truncated one. */
			(void)!send(c, doc, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)!send(c, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		close(c);
		n++;
	}
	free(doc);
	return n;
}

void vdk_tool_stats_server_free(struct vdk_tool_stats_server *srv)
{
	if (!srv)
		return;
	close(srv->fd);
	(void)unlink(srv->path);
	free(srv->path);
	free(srv);
}

/* ---- SIGUSR1 ----------------------------------------------------------- */

int vdk_tool_stats_signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

int vdk_tool_stats_on_signal(int sigfd, const struct vdk_tool_stats_info *info,
			     vdk_tool_stats_fn *fn, void *opaque)
{
	struct signalfd_siginfo si;
	bool got = false;

	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		got |= si.ssi_signo == SIGUSR1;
	if (!got)
		return 0;
	return vdk_tool_stats_log(info, fn, opaque) < 0 ? -ENOMEM : 1;
}

int vdk_tool_stats_log(const struct vdk_tool_stats_info *info,
		       vdk_tool_stats_fn *fn, void *opaque)
{
	char *doc = vdk_tool_stats_render(info, fn, opaque, 0);

	if (!doc)
		return -ENOMEM;
	vdk_tool_log_write(VDK_TOOL_LOG_NOTICE, NULL, doc);
	free(doc);
	return 0;
}

/* ---- one bundle for a program ------------------------------------------ */

int vdk_tool_stats_start(struct vdk_tool_stats *st, const char *socket_path)
{
	int err;

	st->srv = NULL;
	st->sigfd = vdk_tool_stats_signal_fd();
	if (st->sigfd < 0) {
		err = st->sigfd;
		vdk_tool_msg("SIGUSR1: %s", strerror(-err));
		return err;
	}
	if (!socket_path)
		return 0;
	st->srv = vdk_tool_stats_server_new(socket_path, &st->info, st->fn,
					    st->opaque, &err);
	if (!st->srv) {
		vdk_tool_msg("--stats-socket=%s: %s", socket_path,
			     err == -EADDRINUSE ? "another process serves it"
			     : err == -EEXIST	? "exists and is not a socket"
						: strerror(-err));
		close(st->sigfd);
		st->sigfd = -1;
		return err;
	}
	vdk_tool_msg("statistics on %s", socket_path);
	return 0;
}

void vdk_tool_stats_stop(struct vdk_tool_stats *st)
{
	vdk_tool_stats_server_free(st->srv);
	st->srv = NULL;
	if (st->sigfd >= 0)
		close(st->sigfd);
	st->sigfd = -1;
}

static void on_signal(void *opaque, int fd, uint32_t events)
{
	struct vdk_tool_stats *st = opaque;

	(void)fd;
	(void)events;
	(void)vdk_tool_stats_on_signal(st->sigfd, &st->info, st->fn,
				       st->opaque);
}

static void on_socket(void *opaque, int fd, uint32_t events)
{
	struct vdk_tool_stats *st = opaque;

	(void)fd;
	(void)events;
	(void)vdk_tool_stats_server_handle(st->srv);
}

int vdk_tool_stats_attach(struct vdk_tool_stats *st, struct vdk_loop *loop)
{
	int ret = 0;

	if (st->sigfd >= 0)
		ret = vdk_loop_add(loop, st->sigfd, VDK_LOOP_IN, on_signal, st);
	if (ret == 0 && st->srv) {
		ret = vdk_loop_add(loop, vdk_tool_stats_server_fd(st->srv),
				   VDK_LOOP_IN, on_socket, st);
		if (ret < 0 && st->sigfd >= 0)
			(void)vdk_loop_remove(loop, st->sigfd);
	}
	if (ret < 0)
		vdk_tool_msg("statistics: cannot watch: %s", strerror(-ret));
	return ret;
}

void vdk_tool_stats_detach(struct vdk_tool_stats *st, struct vdk_loop *loop)
{
	if (st->srv)
		(void)vdk_loop_remove(loop, vdk_tool_stats_server_fd(st->srv));
	if (st->sigfd >= 0)
		(void)vdk_loop_remove(loop, st->sigfd);
}
