// SPDX-License-Identifier: Apache-2.0
/*
 * Shared parts of the vdk vhost-user backend programs: options, logging,
 * signals, accepting the front-end and the serving loop (see common.h).
 */
#include "common.h"
#include "log.h"
#include "socket_perm.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vdk/log.h>

const char vdk_tool_common_help[] =
	"  --socket-path=PATH     listen on the Unix socket PATH for the "
	"front-end\n"
	"  --fd=FDNUM             use the inherited socket FDNUM instead "
	"(listening\n"
	"                         or connected)\n"
	"  --socket-group=GROUP   give the --socket-path socket to GROUP, mode "
	"0660,\n"
	"                         so that its members may connect (default: "
	"the umask\n"
	"                         decides)\n"
	"  --print-capabilities   print the backend capabilities as JSON and "
	"exit\n"
	"  --stats-socket=PATH    answer each connection on the Unix socket "
	"PATH with\n"
	"                         the statistics as one JSON document (SIGUSR1 "
	"logs them)\n"
	"  --log=stderr|syslog    where messages go (default stderr, with "
	"timestamps;\n"
	"                         syslog also reaches journald)\n"
	"  -v, --verbose          more messages: info, debug, the vhost-user "
	"message\n"
	"                         trace\n"
	"  -V, --version          print the version and exit\n"
	"  -h, --help             this text\n";

void vdk_tool_msg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vdk_tool_log_write(VDK_TOOL_LOG_NOTICE, NULL, buf);
}

int vdk_tool_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int vdk_tool_parse_common(struct vdk_tool_opts *o, int opt, const char *arg)
{
	uint32_t fd;

	switch (opt) {
	case VDK_TOOL_OPT_SOCKET_PATH:
		o->socket_path = arg;
		return 1;
	case VDK_TOOL_OPT_FD:
		if (vdk_tool_parse_u32(arg, 0, INT_MAX, &fd) < 0) {
			vdk_tool_msg("--fd: not a file descriptor: '%s'", arg);
			return -EINVAL;
		}
		o->fd = (int)fd;
		return 1;
	case VDK_TOOL_OPT_PRINT_CAPS:
		o->print_capabilities = true;
		return 1;
	case VDK_TOOL_OPT_LOG: {
		enum vdk_tool_log_target t;

		if (vdk_tool_log_parse(arg, &t) < 0) {
			vdk_tool_msg("--log: want stderr or syslog (see "
				     "--help)");
			return -EINVAL;
		}
		o->log_target = (int)t;
		return 1;
	}
	case VDK_TOOL_OPT_STATS_SOCKET:
		o->stats_socket = arg;
		return 1;
	case VDK_TOOL_OPT_SOCKET_GROUP:
		o->socket_group = arg;
		return 1;
	case 'v':
		o->verbosity++;
		return 1;
	default:
		return 0;
	}
}

int vdk_tool_check_common(const struct vdk_tool_opts *o)
{
	if (!o->socket_path == (o->fd < 0)) {
		vdk_tool_msg("give exactly one of --socket-path and --fd "
			     "(--help for usage)");
		return -EINVAL;
	}
	if (o->socket_path &&
	    strlen(o->socket_path) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		vdk_tool_msg("--socket-path: path too long: '%s'",
			     o->socket_path);
		return -EINVAL;
	}
	if (o->socket_group) {
		gid_t gid;
		int r = vdk_tool_group_id(o->socket_group, &gid);

		if (!o->socket_path) {
			vdk_tool_msg("--socket-group needs --socket-path (with "
				     "--fd, whoever made the socket sets its "
				     "permissions)");
			return -EINVAL;
		}
		if (r < 0) {
			vdk_tool_msg("--socket-group=%s: %s", o->socket_group,
				     r == -ENOENT ? "no such group"
						  : strerror(-r));
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- logging ------------------------------------------------------------ */

static void log_sink(void *opaque, enum vdk_log_level level, const char *module,
		     const char *msg)
{
	(void)opaque;
	vdk_tool_log_write((int)level, module, msg);
}

void vdk_tool_log_init(const char *prog, int verbosity)
{
	enum vdk_log_level max = VDK_LOG_WARN;

	vdk_tool_log_set_prog(prog);
	if (verbosity > 0)
		max = VDK_LOG_DEBUG;
	vdk_log_set_sink(log_sink, NULL, max);
}

/* ---- signals and the front-end socket ----------------------------------- */

int vdk_tool_signals(void)
{
	sigset_t set;
	int fd;

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* Read one pending signal; return its number (0 if none). */
static int take_signal(int sigfd)
{
	struct signalfd_siginfo si;

	if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret;

	/* A socket left by an earlier run is replaced; any other file is
	 * refused rather than deleted. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vdk_tool_msg("%s exists and is not a socket", path);
			return -EEXIST;
		}
		if (unlink(path) < 0) {
			ret = -errno;
			vdk_tool_msg("cannot remove stale socket %s: %s", path,
				     strerror(-ret));
			return ret;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Bind to a temporary name and rename it once listening, so that
	 * the socket never appears at @path before it accepts connections
	 * (a front-end that connects as soon as the file exists would get
	 * ECONNREFUSED); paths too long for that are bound directly. */
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path,
			 (int)getpid());
	bool tmp = n > 0 && (size_t)n < sizeof(sa.sun_path);

	if (!tmp)
		memcpy(sa.sun_path, path,
		       strlen(path) + 1); /* length checked */
	else
		(void)unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0 || (tmp && rename(sa.sun_path, path) < 0)) {
		ret = -errno;
		vdk_tool_msg("cannot listen on %s: %s", path, strerror(-ret));
		if (tmp)
			(void)unlink(sa.sun_path);
		close(fd);
		return ret;
	}
	return fd;
}

/* --socket-group: the group may connect (socket_perm.h). */
static int share_socket(const struct vdk_tool_opts *o)
{
	gid_t gid;
	int ret;

	if (!o->socket_group)
		return 0;
	ret = vdk_tool_group_id(o->socket_group, &gid);
	if (ret == 0)
		ret = vdk_tool_socket_share(o->socket_path, gid);
	if (ret < 0)
		vdk_tool_msg("--socket-group=%s: %s: %s", o->socket_group,
			     o->socket_path, strerror(-ret));
	return ret;
}

/* Wait for a connection on @lfd or a signal on @sigfd. */
static int accept_one(int lfd, int sigfd, int *conn)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int ep, ret = 0;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		goto err;
	ev.data.fd = sigfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sigfd, &ev) < 0)
		goto err;
	for (;;) {
		int n = epoll_wait(ep, &ev, 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		if (ev.data.fd == sigfd) {
			if (take_signal(sigfd)) {
				ret = 1;
				break;
			}
			continue;
		}
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0) {
			*conn = c;
			break;
		}
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			goto err;
	}
	close(ep);
	return ret;
err:
	ret = -errno;
	close(ep);
	return ret;
}

int vdk_tool_accept(const struct vdk_tool_opts *o, int sigfd, int *conn)
{
	int lfd, listening = 0, ret;
	socklen_t len = sizeof(listening);

	if (o->fd >= 0) {
		if (getsockopt(o->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
			       &len) < 0) {
			ret = -errno;
			vdk_tool_msg("--fd=%d: not a socket: %s", o->fd,
				     strerror(-ret));
			return ret;
		}
		if (!listening) {
			*conn = o->fd;
			return 0;
		}
		lfd = o->fd;
	} else {
		lfd = listen_at(o->socket_path);
		if (lfd < 0)
			return lfd;
		ret = share_socket(o);
		if (ret < 0) {
			close(lfd);
			(void)unlink(o->socket_path);
			return ret;
		}
		vdk_tool_msg("listening on %s", o->socket_path);
	}
	ret = accept_one(lfd, sigfd, conn);
	if (ret < 0)
		vdk_tool_msg("accept: %s", strerror(-ret));
	close(lfd);
	if (o->socket_path)
		(void)unlink(o->socket_path);
	return ret;
}

/* ---- the serving loop --------------------------------------------------- */

/* epoll tags: kind in the upper 32 bits, queue or handler index below. */
#define TAG_SOCKET (1ull << 32)
#define TAG_SIGNAL (2ull << 32)
#define TAG_KICK   (3ull << 32)
#define TAG_EXTRA  (4ull << 32)
#define TAG_KIND   (0xffffffffull << 32)

static int watch_add(void *opaque, int fd, uint16_t queue)
{
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = TAG_KICK | queue};

	if (epoll_ctl(*(int *)opaque, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

static void watch_remove(void *opaque, int fd, uint16_t queue)
{
	(void)queue;
	(void)epoll_ctl(*(int *)opaque, EPOLL_CTL_DEL, fd, NULL);
}

static const struct vdk_vhost_user_watch_ops watch_ops = {
	.add = watch_add,
	.remove = watch_remove,
};

/* Kick every ring that has no kick fd (polling mode); true if one of them
 * runs, so the loop must come back within a millisecond. */
static bool poll_rings(struct vdk_vhost_user *vu)
{
	bool polled = false;

	for (uint16_t i = 0; i < vdk_vhost_user_num_queues(vu); i++) {
		if (vdk_vhost_user_is_broken(vu))
			break;
		if (vdk_vhost_user_kick_fd(vu, i) != -ENOENT)
			continue;
		if (vdk_vhost_user_handle_kick(vu, i) == 1)
			polled = true;
	}
	return polled;
}

static int add_fd(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait for events: first spin for up to @poll_ns without sleeping, then
 * block (for at most 1 ms if @polled rings need a visit). */
static int wait_events(int ep, struct epoll_event *evs, int max,
		       uint64_t poll_ns, bool polled)
{
	if (poll_ns) {
		uint64_t end = now_ns() + poll_ns;

		do {
			int nev = epoll_wait(ep, evs, max, 0);

			if (nev != 0)
				return nev;
		} while (now_ns() < end);
	}
	return epoll_wait(ep, evs, max, polled ? 1 : -1);
}

int vdk_tool_serve(struct vdk_vhost_user *vu, int sigfd,
		   const struct vdk_tool_fd_handler *extra, size_t n)
{
	return vdk_tool_serve_poll(vu, sigfd, extra, n, 0);
}

int vdk_tool_serve_poll(struct vdk_vhost_user *vu, int sigfd,
			const struct vdk_tool_fd_handler *extra, size_t n,
			uint32_t poll_us)
{
	bool polled = false, stop = false;
	uint64_t poll_ns = (uint64_t)poll_us * 1000u;
	int ep, ret;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	ret = add_fd(ep, vdk_vhost_user_socket_fd(vu), TAG_SOCKET);
	if (ret == 0)
		ret = add_fd(ep, sigfd, TAG_SIGNAL);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = add_fd(ep, extra[i].fd, TAG_EXTRA | i);
	if (ret == 0)
		ret = vdk_vhost_user_set_watch(vu, &watch_ops, &ep);
	while (ret == 0 && !stop && !vdk_vhost_user_is_broken(vu)) {
		struct epoll_event evs[16];
		int nev = wait_events(ep, evs, 16, poll_ns, polled);

		if (nev < 0 && errno == EINTR)
			continue;
		if (nev < 0) {
			ret = -errno;
			break;
		}
		for (int k = 0; k < nev && !vdk_vhost_user_is_broken(vu); k++) {
			uint64_t tag = evs[k].data.u64;
			uint32_t idx = (uint32_t)tag;

			switch (tag & TAG_KIND) {
			case TAG_SOCKET: {
				/* Request errors are logged by the library;
				 * a fatal one breaks the connection. */
				int r = vdk_vhost_user_process_message(vu);

				/* The front-end going away, politely or
				 * not (a reset), is a disconnect. */
				if (vdk_vhost_user_is_broken(vu))
					ret = r == -ENOTCONN || r == -ECONNRESET
						      ? 0
						      : r;
				break;
			}
			case TAG_SIGNAL:
				if (take_signal(sigfd)) {
					vdk_tool_msg("signal: shutting down");
					stop = true;
				}
				break;
			case TAG_KICK:
				(void)vdk_vhost_user_handle_kick(vu,
								 (uint16_t)idx);
				break;
			case TAG_EXTRA:
				if (idx < n)
					extra[idx].fn(extra[idx].opaque,
						      extra[idx].index);
				break;
			}
		}
		polled = poll_rings(vu);
	}
	(void)vdk_vhost_user_set_watch(vu, NULL, NULL);
	close(ep);
	return ret;
}

int vdk_tool_serve_device(struct vdk_device *dev, int conn, int sigfd,
			  const struct vdk_tool_fd_handler *extra, size_t n,
			  uint32_t poll_us)
{
	struct vdk_vhost_user_device_adapter ad;
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_vhost_user *vu;
	int ret;

	ret = vdk_vhost_user_backend_from_device(&ad, dev, &ops);
	if (ret < 0) {
		close(conn);
		return ret;
	}
	vu = vdk_vhost_user_new(conn, ops, &ad, &ret);
	if (!vu) {
		close(conn);
		return ret;
	}
	vdk_tool_msg("front-end connected");
	ret = vdk_tool_serve_poll(vu, sigfd, extra, n, poll_us);
	if (ret == 0 && vdk_vhost_user_is_broken(vu))
		vdk_tool_msg("front-end disconnected");
	/* Stops every ring (a device drains its in-flight requests) and
	 * resets the device before the connection goes. */
	vdk_vhost_user_free(vu);
	return ret;
}
