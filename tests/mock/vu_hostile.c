/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-test-vu-hostile: a hostile vhost-user front-end that is also the
 * guest driver, for the integration test tests/integration/
 * vhost_user_hostile.sh. It connects to a backend program's socket, sets
 * up ring 0 of a virtio-rng device over shared, sealed memfd RAM (no
 * protocol features: the ring is enabled by SET_FEATURES), and then does
 * what MODE says:
 *
 *   flood SECONDS   a driver thread keeps ring 0 full (every used buffer
 *                   goes straight back, with a kick) while the main thread
 *                   times GET_FEATURES round trips; prints
 *                   "flood: N round trips, median X ms, worst Y ms,
 *                   Z requests served" and fails if a reply never comes.
 *   stuck-call      makes the ring's call eventfd blocking behind the
 *                   backend's back (fcntl on the shared file description),
 *                   fills its counter to the maximum and posts a request:
 *                   the backend's notification write would wait forever.
 *   half-message    sends half a message header and stops.
 *   state-lowat     (with protocol features) SET_DEVICE_STATE_FD load with
 *                   an AF_UNIX socket whose SO_RCVLOWAT is 8 and that has
 *                   one byte queued: readable to poll(), read() would wait.
 *   idle            nothing more.
 *
 * In every mode but flood it then prints "ready" and waits for stdin to
 * close, keeping the connection open while the test signals the backend.
 * Exit status: 0, or 1 with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vdk/mem.h>
#include <vdk/spec/vhost_user.h>

#include "guest_ring.h"
#include "vu_frontend.h"

#define RAM_SIZE (1u << 20)
#define QSIZE	 256
#define BUF_GPA	 0x40000u

static int sock = -1, kick = -1, call = -1;
static uint8_t *ram;
static struct vdk_mem *mem;
static struct guest_ring gr;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "vdk-test-vu-hostile: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void send_req(uint32_t req, const void *payload, uint32_t size,
		     const int *fds, size_t nfds)
{
	uint8_t buf[sizeof(struct vhost_user_header) + 512];
	struct vhost_user_header h = {req, VHOST_USER_VERSION, size};

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), payload, size);
	if (vu_fe_sendmsg(sock, buf, sizeof(h) + size, fds, nfds, 0) !=
	    (ssize_t)(sizeof(h) + size))
		die("send request %u: %s", req, strerror(errno));
}

static uint64_t get_u64(uint32_t req)
{
	struct vu_fe_msg m;
	uint64_t v;
	int ret;

	send_req(req, NULL, 0, NULL, 0);
	ret = vu_fe_recv(sock, &m, 10000);
	if (ret < 0 || m.h.request != req || m.h.size != 8)
		die("no reply to %u: %s", req, strerror(-ret));
	memcpy(&v, m.payload, 8);
	return v;
}

static void send_u64(uint32_t req, uint64_t v, int fd)
{
	send_req(req, &v, 8, &fd, fd >= 0 ? 1 : 0);
}

static void send_state(uint32_t req, uint32_t index, uint32_t num)
{
	struct vhost_vring_state s = {index, num};

	send_req(req, &s, sizeof(s), NULL, 0);
}

static uint64_t ua(uint64_t gpa)
{
	return (uint64_t)(uintptr_t)ram + gpa;
}

static void setup(bool protocol)
{
	uint64_t f = get_u64(VHOST_USER_GET_FEATURES);
	uint64_t want = (1ull << VIRTIO_F_VERSION_1) |
			(protocol ? 1ull << VHOST_USER_F_PROTOCOL_FEATURES : 0);
	int memfd, err;

	if ((f & want) != want)
		die("features 0x%llx lack 0x%llx", (unsigned long long)f,
		    (unsigned long long)want);
	if (protocol) {
		uint64_t pf = get_u64(VHOST_USER_GET_PROTOCOL_FEATURES);

		send_u64(VHOST_USER_SET_PROTOCOL_FEATURES,
			 pf & (1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE), -1);
	}
	send_u64(VHOST_USER_SET_FEATURES, want, -1);
	send_req(VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);

	memfd = memfd_create("vu-hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, RAM_SIZE) < 0 ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		die("memfd: %s", strerror(errno));
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
		   0);
	if (ram == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	mem = vdk_mem_new(&err);
	if (!mem || vdk_mem_add_host(mem, 0, RAM_SIZE, ram) < 0)
		die("vdk_mem");
	if (guest_ring_init(&gr, mem, QSIZE, 0) < 0)
		die("guest_ring_init");

	struct vhost_user_memory m = {.nregions = 1};
	m.regions[0] = (struct vhost_user_memory_region){0, RAM_SIZE, ua(0), 0};
	send_req(VHOST_USER_SET_MEM_TABLE, &m,
		 8 + sizeof(struct vhost_user_memory_region), &memfd, 1);
	close(memfd);
	send_state(VHOST_USER_SET_VRING_NUM, 0, QSIZE);
	send_state(VHOST_USER_SET_VRING_BASE, 0, 0);
	struct vhost_vring_addr a = {.index = 0,
				     .desc_user_addr = ua(gr.desc_gpa),
				     .used_user_addr = ua(gr.used_gpa),
				     .avail_user_addr = ua(gr.avail_gpa)};
	send_req(VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	send_u64(VHOST_USER_SET_VRING_CALL, 0, call);
	send_u64(VHOST_USER_SET_VRING_KICK, 0, kick);
	if (protocol)
		send_state(VHOST_USER_SET_VRING_ENABLE, 0, 1);
	/* a round trip: everything above was handled */
	(void)get_u64(VHOST_USER_GET_FEATURES);
}

static void post_kick(uint64_t gpa)
{
	struct guest_buf b = {gpa, 64, true};
	const uint64_t one = 1;

	if (guest_ring_add_chain(&gr, &b, 1) < 0)
		die("ring full");
	(void)!write(kick, &one, sizeof(one));
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static volatile int flood_stop;
static unsigned long long served;

static void *flood_thread(void *arg)
{
	uint32_t id, len;
	uint64_t v;

	(void)arg;
	for (int i = 0; i < QSIZE; i++)
		post_kick(BUF_GPA + (uint64_t)i * 64);
	while (!__atomic_load_n(&flood_stop, __ATOMIC_RELAXED)) {
		int n = 0;

		while (guest_ring_get_used(&gr, &id, &len) == 1) {
			struct guest_buf b = {
				BUF_GPA + (uint64_t)(n % QSIZE) * 64, 64, true};
			if (guest_ring_add_chain(&gr, &b, 1) < 0)
				die("ring full");
			n++;
		}
		served += (unsigned)n;
		(void)!read(call, &v, sizeof(v));
		v = 1;
		(void)!write(kick, &v, sizeof(v));
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void flood(double seconds)
{
	static double rtt[1 << 20];
	size_t n = 0;
	pthread_t t;
	double end;

	setup(false);
	if (pthread_create(&t, NULL, flood_thread, NULL) != 0)
		die("pthread_create");
	end = now_ms() + seconds * 1e3;
	while (now_ms() < end && n < sizeof(rtt) / sizeof(rtt[0])) {
		double t0 = now_ms();

		(void)get_u64(VHOST_USER_GET_FEATURES);
		rtt[n++] = now_ms() - t0;
		usleep(1000);
	}
	__atomic_store_n(&flood_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	qsort(rtt, n, sizeof(rtt[0]), cmp_double);
	printf("flood: %zu round trips, median %.3f ms, worst %.3f ms, "
	       "%llu requests served\n",
	       n, n ? rtt[n / 2] : 0.0, n ? rtt[n - 1] : 0.0, served);
	if (served < QSIZE)
		die("the backend served only %llu requests", served);
}

static void wait_stdin(void)
{
	char c;

	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const uint64_t max = 0xfffffffffffffffeull;

	if (argc < 3)
		die("usage: vdk-test-vu-hostile SOCKET MODE [SECONDS]");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	for (int i = 0; i < 100; i++) {
		if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (i == 99)
			die("connect %s: %s", argv[1], strerror(errno));
		usleep(50000);
	}
	if (!strcmp(argv[2], "flood")) {
		flood(argc > 3 ? atof(argv[3]) : 3.0);
		return 0;
	} else if (!strcmp(argv[2], "stuck-call")) {
		uint64_t v;

		setup(false);
		(void)!read(call, &v, sizeof(v)); /* the ring's start signal */
		int fl = fcntl(call, F_GETFL);
		if (fcntl(call, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
		    write(call, &max, sizeof(max)) != sizeof(max))
			die("call fd: %s", strerror(errno));
		post_kick(BUF_GPA);
	} else if (!strcmp(argv[2], "half-message")) {
		struct vhost_user_header h = {VHOST_USER_GET_FEATURES,
					      VHOST_USER_VERSION, 0};
		setup(false);
		(void)vu_fe_sendmsg(sock, &h, 6, NULL, 0, 0);
	} else if (!strcmp(argv[2], "state-lowat")) {
		struct vhost_user_transfer_device_state p = {
			.direction = VHOST_TRANSFER_STATE_DIRECTION_LOAD,
			.phase = VHOST_TRANSFER_STATE_PHASE_STOPPED};
		int s[2], lowat = 8;

		setup(true);
		/* the state moves only while every ring is stopped */
		send_state(VHOST_USER_GET_VRING_BASE, 0, 0);
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
		    setsockopt(s[0], SOL_SOCKET, SO_RCVLOWAT, &lowat,
			       sizeof(lowat)) < 0 ||
		    write(s[1], "\x82", 1) != 1)
			die("socket: %s", strerror(errno));
		send_req(VHOST_USER_SET_DEVICE_STATE_FD, &p, sizeof(p), &s[0],
			 1);
		close(s[0]);
	} else if (!strcmp(argv[2], "idle")) {
		setup(false);
	} else {
		die("unknown mode %s", argv[2]);
	}
	wait_stdin();
	return 0;
}
