// SPDX-License-Identifier: Apache-2.0
/*
 * The vhost-user server (<vdk/vhost_user.h>): where front-ends come from (a
 * Unix socket path, an inherited listening or connected socket, systemd
 * socket activation) and serving them one after the other on a loop.
 *
 * While a front-end is served the listening socket is paused on the loop, so
 * a second front-end waits in the backlog until the first disconnects; then
 * the connection is freed (its rings stop and the device is reset, the
 * adapter's reset op) and the listening socket watched again. QEMU
 * reconnects the same way after a back-end restart, and a VM restart is a
 * new connection. A connection that closes before its first message (a
 * probe: another server checking whether the socket is live) is not a
 * front-end: it is not counted and changes nothing.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define SRV_LOG "vhost-user-server"

/* systemd's first passed fd (sd_listen_fds(3)). */
#define LISTEN_FDS_START 3

struct vdk_vhost_user_server {
	struct vdk_vhost_user_server_config cfg;
	struct vdk_device *dev;
	struct vdk_loop *loop;
	char *path;	/* the socket file we created, or NULL */
	int listen_fd;	/* -1 if serving an inherited connected socket */
	bool listening; /* listen_fd watched (not paused) */
	struct vdk_vhost_user *conn;
	unsigned served;  /* front-ends served (one message or more) */
	bool done_called; /* cfg.done ran */
};

static bool limit_reached(const struct vdk_vhost_user_server *srv)
{
	return srv->cfg.max_connections &&
	       srv->served >= srv->cfg.max_connections;
}

static void srv_event(struct vdk_vhost_user_server *srv,
		      enum vdk_vhost_user_server_event ev, int err)
{
	if (srv->cfg.event)
		srv->cfg.event(srv->cfg.opaque, ev, err);
}

static void srv_done(struct vdk_vhost_user_server *srv)
{
	if (srv->done_called)
		return;
	srv->done_called = true;
	vdk_log(VDK_LOG_INFO, SRV_LOG, "%s: serving no more front-ends",
		srv->dev->ops->name);
	srv_event(srv, VDK_VHOST_USER_SERVER_DONE, 0);
}

/* No more connections: close the listening socket and remove its file. */
static void stop_listening(struct vdk_vhost_user_server *srv)
{
	if (srv->listen_fd >= 0) {
		(void)vdk_loop_remove(srv->loop, srv->listen_fd);
		close(srv->listen_fd);
		srv->listen_fd = -1;
	}
	if (srv->path) {
		(void)unlink(srv->path);
		free(srv->path);
		srv->path = NULL;
	}
}

static void set_listening(struct vdk_vhost_user_server *srv, bool on)
{
	int r;

	if (srv->listen_fd < 0 || srv->listening == on)
		return;
	r = vdk_loop_modify(srv->loop, srv->listen_fd, on ? VDK_LOOP_IN : 0);
	if (r < 0)
		vdk_log(VDK_LOG_ERROR, SRV_LOG, "listening socket: %s",
			strerror(-r));
	else
		srv->listening = on;
}

static void conn_closed(void *opaque, struct vdk_vhost_user *vu, int err)
{
	struct vdk_vhost_user_server *srv = opaque;
	bool probe = vu->messages == 0;

	if (!probe)
		srv->served++;
	if (probe)
		vdk_log(VDK_LOG_INFO, SRV_LOG,
			"%s: a connection closed before its first message",
			srv->dev->ops->name);
	else if (err)
		vdk_log(VDK_LOG_WARN, SRV_LOG,
			"%s: front-end connection ended: %s",
			srv->dev->ops->name, strerror(-err));
	else
		vdk_log(VDK_LOG_INFO, SRV_LOG, "%s: front-end disconnected",
			srv->dev->ops->name);
	/* Stops the rings and resets the device for the next front-end. */
	vdk_vhost_user_free(vu);
	srv->conn = NULL;
	srv_event(srv, VDK_VHOST_USER_SERVER_DISCONNECTED, err);
	if (srv->listen_fd < 0 || limit_reached(srv)) {
		stop_listening(srv);
		srv_done(srv);
		return;
	}
	set_listening(srv, true);
}

/* Serve the connected socket @fd (taken over on success). */
static int serve(struct vdk_vhost_user_server *srv, int fd)
{
	int err;

	srv->conn = vdk_vhost_user_new(fd, srv->dev, srv->loop, &err);
	if (!srv->conn) {
		vdk_log(VDK_LOG_ERROR, SRV_LOG, "%s: cannot serve: %s",
			srv->dev->ops->name, strerror(-err));
		return err;
	}
	vdk_vhost_user_set_allow_unsealed(srv->conn, srv->cfg.allow_unsealed);
	vdk_vhost_user_on_close(srv->conn, conn_closed, srv);
	vdk_log(VDK_LOG_INFO, SRV_LOG, "%s: front-end connected (%u before)",
		srv->dev->ops->name, srv->served);
	srv_event(srv, VDK_VHOST_USER_SERVER_CONNECTED, 0);
	return 0;
}

static void on_listen(void *opaque, int fd, uint32_t events)
{
	struct vdk_vhost_user_server *srv = opaque;
	int c;

	(void)events;
	if (srv->conn || limit_reached(srv)) { /* paused meanwhile */
		set_listening(srv, false);
		return;
	}
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			vdk_log(VDK_LOG_ERROR, SRV_LOG, "accept: %s",
				strerror(errno));
		return;
	}
	if (serve(srv, c) < 0) {
		close(c);
		return;
	}
	set_listening(srv, false);
}

/* Is a live process accepting on the socket file at @path? */
static bool socket_alive(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked */
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

/*
 * Listen at @path: a stale socket file is replaced, a live one or any other
 * file refused. The socket is bound to a temporary name and renamed once
 * listening, so that it never appears at @path before it accepts (a
 * front-end that connects as soon as the file exists would get
 * ECONNREFUSED); paths too long for that are bound directly.
 */
static int listen_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	bool tmp;
	int fd, n, ret;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			/* The caller reports it (-EEXIST is documented). */
			vdk_log(VDK_LOG_DEBUG, SRV_LOG,
				"%s exists and is not a socket", path);
			return -EEXIST;
		}
		if (socket_alive(path)) {
			vdk_log(VDK_LOG_DEBUG, SRV_LOG,
				"%s is in use: another process accepts "
				"connections on it",
				path);
			return -EADDRINUSE;
		}
		if (unlink(path) < 0) {
			ret = -errno;
			vdk_log(VDK_LOG_ERROR, SRV_LOG,
				"cannot remove stale socket %s: %s", path,
				strerror(-ret));
			return ret;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path,
		     (int)getpid());
	tmp = n > 0 && (size_t)n < sizeof(sa.sun_path);
	if (!tmp)
		memcpy(sa.sun_path, path, strlen(path) + 1);
	else
		(void)unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0 || (tmp && rename(sa.sun_path, path) < 0)) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, SRV_LOG, "cannot listen on %s: %s", path,
			strerror(-ret));
		if (tmp)
			(void)unlink(sa.sun_path);
		close(fd);
		return ret;
	}
	return fd;
}

/* systemd socket activation: the one fd passed to this process, or -1. */
static int listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long v;

	if (!pid || !fds)
		return -1;
	v = strtol(pid, &end, 10);
	if (*end || v != (long)getpid())
		return -1;
	v = strtol(fds, &end, 10);
	if (*end || v < 1)
		return -1;
	if (v > 1)
		vdk_log(VDK_LOG_WARN, SRV_LOG,
			"LISTEN_FDS=%ld: only fd %d is used", v,
			LISTEN_FDS_START);
	return LISTEN_FDS_START;
}

unsigned
vdk_vhost_user_server_connections(const struct vdk_vhost_user_server *srv)
{
	return srv->served;
}

struct vdk_vhost_user_server *
vdk_vhost_user_server_new(const struct vdk_vhost_user_server_config *cfg,
			  struct vdk_device *dev, struct vdk_loop *loop,
			  int *err)
{
	struct vdk_vhost_user_server *srv = NULL;
	int fd = -1, listening = 0, ret = -EINVAL;
	socklen_t len = sizeof(listening);
	bool inherited = false;

	if (!cfg || !dev || !loop || dev->state == VDK_DEVICE_ACTIVE ||
	    dev->asleep || (cfg->socket_path && cfg->fd >= 0))
		goto fail;
	if (cfg->socket_path &&
	    strlen(cfg->socket_path) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		vdk_log(VDK_LOG_ERROR, SRV_LOG, "socket path too long: %s",
			cfg->socket_path);
		goto fail;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		ret = -ENOMEM;
		goto fail;
	}
	srv->cfg = *cfg;
	srv->cfg.socket_path = NULL;
	srv->dev = dev;
	srv->loop = loop;
	srv->listen_fd = -1;
	if (!dev->loop) {
		ret = vdk_device_attach_loop(dev, loop);
		if (ret < 0)
			goto fail;
	}
	if (cfg->socket_path) {
		srv->path = strdup(cfg->socket_path);
		if (!srv->path) {
			ret = -ENOMEM;
			goto fail;
		}
		fd = listen_at(cfg->socket_path);
		if (fd < 0) {
			ret = fd;
			free(srv->path);
			srv->path = NULL;
			goto fail;
		}
		listening = 1;
		vdk_log(VDK_LOG_INFO, SRV_LOG, "%s: listening on %s",
			dev->ops->name, cfg->socket_path);
	} else {
		fd = cfg->fd >= 0 ? cfg->fd : listen_fds();
		if (fd < 0) {
			vdk_log(VDK_LOG_ERROR, SRV_LOG,
				"no socket path, fd or LISTEN_FDS");
			goto fail;
		}
		inherited = true;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
			       &len) < 0) {
			ret = -errno;
			vdk_log(VDK_LOG_ERROR, SRV_LOG,
				"fd %d: not a socket: %s", fd, strerror(-ret));
			goto fail;
		}
	}
	if (listening) {
		ret = vdk_loop_add(loop, fd, VDK_LOOP_IN, on_listen, srv);
		if (ret < 0)
			goto fail;
		srv->listen_fd = fd;
		srv->listening = true;
	} else {
		ret = serve(srv, fd);
		if (ret < 0)
			goto fail;
	}
	if (err)
		*err = 0;
	return srv;
fail:
	if (fd >= 0 && !inherited)
		close(fd);
	if (srv && srv->path)
		(void)unlink(srv->path);
	if (srv)
		free(srv->path);
	free(srv);
	if (err)
		*err = ret;
	return NULL;
}

void vdk_vhost_user_server_free(struct vdk_vhost_user_server *srv)
{
	if (!srv)
		return;
	if (srv->conn) {
		vdk_log(VDK_LOG_INFO, SRV_LOG,
			"%s: closing the front-end connection",
			srv->dev->ops->name);
		vdk_vhost_user_free(srv->conn);
	}
	stop_listening(srv);
	free(srv);
}
