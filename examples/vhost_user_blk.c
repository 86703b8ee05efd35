// SPDX-License-Identifier: Apache-2.0
/*
 * Serve vdk's virtio-blk (io_uring) over vhost-user, using only the installed
 * library:  cc vhost_user_blk.c $(pkg-config --cflags --libs vdk)
 *   ./vhost_user_blk IMAGE SOCKET   (front-ends one after the other, until
 *                                    SIGINT or SIGTERM)
 */
#define _GNU_SOURCE /* signalfd, sigprocmask */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <vdk/devices/blk.h>
#include <vdk/loop.h>
#include <vdk/vhost_user.h>

static void on_signal(void *loop, int fd, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si))
		vdk_loop_epoll_stop(loop);
}

int main(int argc, char **argv)
{
	struct vdk_blk_config cfg = {.io_mode = VDK_BLK_IO_ASYNC,
				     .single_thread = true};
	struct vdk_vhost_user_server_config sc = {.fd = -1};
	struct vdk_vhost_user_server *srv = NULL;
	struct vdk_blk *blk = NULL;
	struct vdk_loop *loop;
	sigset_t set;
	int err = -1, sfd;

	if (argc != 3)
		return fprintf(stderr, "usage: %s IMAGE SOCKET\n", argv[0]), 2;
	signal(SIGPIPE, SIG_IGN); /* a front-end's closed pipe is EPIPE */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	cfg.path = argv[1];
	sc.socket_path = argv[2];
	loop = vdk_loop_epoll_new(&err);
	if (loop &&
	    vdk_loop_add(loop, sfd, VDK_LOOP_IN, on_signal, loop) == 0 &&
	    (blk = vdk_blk_new(&cfg, &err)))
		srv = vdk_vhost_user_server_new(&sc, vdk_blk_device(blk), loop,
						&err);
	if (srv)
		err = vdk_loop_epoll_run(loop);
	else
		fprintf(stderr, "cannot serve: %s\n", strerror(-err));
	vdk_vhost_user_server_free(srv);
	vdk_blk_free(blk); /* before the loop it registered its fds on */
	vdk_loop_epoll_free(loop);
	close(sfd);
	return srv && err == 0 ? 0 : 1;
}
