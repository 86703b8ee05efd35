// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for tools/stats.c: the statistics document (json-c), the
 * --stats-socket server (stale and live sockets) and SIGUSR1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include <vdk/devices/blk.h>

#include "stats.h"

struct fx {
	char dir[64];
	char path[128];
	struct vdk_tool_stats_info info;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/vdk-test-stats.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/stats.sock", f->dir);
	vdk_tool_stats_init(&f->info, "prog", "1.2.3", "dev0", "block");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int fill_fake(void *opaque, struct json_object *root)
{
	(*(int *)opaque)++;
	json_object_object_add(root, "device", json_object_new_object());
	json_object_object_add(root, "queues", json_object_new_array());
	return 0;
}

static int fill_fail(void *opaque, struct json_object *root)
{
	(void)opaque;
	(void)root;
	return -ENOMEM;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static void test_render(void **state)
{
	struct fx *f = *state;
	int calls = 0;
	char *doc = vdk_tool_stats_render(&f->info, fill_fake, &calls, 0);
	struct json_object *j;

	assert_non_null(doc);
	assert_int_equal(calls, 1);
	assert_null(strchr(doc, '\n')); /* one line, for the log */
	j = json_tokener_parse(doc);
	assert_non_null(j);
	assert_int_equal(json_object_get_int(get(j, "version")), 1);
	assert_string_equal(json_object_get_string(get(j, "program")), "prog");
	assert_string_equal(json_object_get_string(get(j, "program_version")),
			    "1.2.3");
	assert_string_equal(json_object_get_string(get(j, "device_name")),
			    "dev0");
	assert_string_equal(json_object_get_string(get(j, "type")), "block");
	assert_int_equal(json_object_get_int(get(j, "pid")), getpid());
	assert_true(json_object_get_int64(get(j, "uptime_ms")) >= 0);
	json_object_put(j);
	free(doc);
	/* the callback's failure is the render's */
	assert_null(vdk_tool_stats_render(&f->info, fill_fail, NULL, 1));
}

static void test_blk_document(void **state)
{
	struct fx *f = *state;
	char img[160];
	struct vdk_blk_config cfg = {.num_queues = 2};
	struct vdk_blk *blk;
	struct json_object *j, *qs, *q, *lat;
	char *doc;
	int fd;

	snprintf(img, sizeof(img), "%s/disk.img", f->dir);
	fd = open(img, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	cfg.path = img;
	blk = vdk_blk_new(&cfg, NULL);
	assert_non_null(blk);
	doc = vdk_tool_stats_render(&f->info, vdk_tool_stats_blk, blk, 1);
	assert_non_null(doc);
	j = json_tokener_parse(doc);
	assert_non_null(j);
	assert_int_equal(json_object_get_int64(
				 get(get(j, "device"), "capacity_sectors")),
			 2048);
	assert_int_equal(json_object_get_int64(get(get(j, "device"), "reads")),
			 0);
	qs = get(j, "queues");
	assert_int_equal(json_object_array_length(qs), 2);
	q = json_object_array_get_idx(qs, 1);
	assert_int_equal(json_object_get_int(get(q, "index")), 1);
	assert_false(json_object_get_boolean(get(q, "started")));
	assert_int_equal(json_object_get_int64(get(q, "notify_sent")), 0);
	lat = get(q, "latency_us");
	assert_int_equal(json_object_array_length(get(lat, "upper")),
			 VDK_BLK_LATENCY_BUCKETS);
	assert_int_equal(json_object_array_length(get(lat, "count")),
			 VDK_BLK_LATENCY_BUCKETS);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(
				 get(lat, "upper"), 3)),
			 8);
	assert_null(json_object_array_get_idx(get(lat, "upper"),
					      VDK_BLK_LATENCY_BUCKETS - 1));
	json_object_put(j);
	free(doc);
	vdk_blk_free(blk);
}

/* Connect to @path; return the fd or -errno. */
static int client(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static void test_server(void **state)
{
	struct fx *f = *state;
	struct vdk_tool_stats_server *srv, *srv2;
	char buf[4096];
	int calls = 0, err, c1, c2;
	ssize_t n, total = 0;
	struct json_object *j;

	srv = vdk_tool_stats_server_new(f->path, &f->info, fill_fake, &calls,
					&err);
	assert_non_null(srv);
	assert_int_equal(err, 0);
	/* nothing pending: returns at once */
	assert_int_equal(vdk_tool_stats_server_handle(srv), 0);
	c1 = client(f->path);
	c2 = client(f->path);
	assert_true(c1 >= 0 && c2 >= 0);
	assert_int_equal(vdk_tool_stats_server_handle(srv), 2);
	assert_int_equal(calls, 1); /* rendered once for both */
	while ((n = read(c1, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
		total += n;
	buf[total] = '\0';
	j = json_tokener_parse(buf);
	assert_non_null(j);
	assert_string_equal(json_object_get_string(get(j, "device_name")),
			    "dev0");
	json_object_put(j);
	close(c1);
	close(c2);

	/* a live socket is refused */
	srv2 = vdk_tool_stats_server_new(f->path, &f->info, fill_fake, &calls,
					 &err);
	assert_null(srv2);
	assert_int_equal(err, -EADDRINUSE);
	vdk_tool_stats_server_free(srv);
	assert_int_equal(access(f->path, F_OK), -1); /* removed */

	/* a stale one (bound, nobody listening) is replaced */
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		strcpy(sa.sun_path, f->path);
		assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)),
				 0);
		close(s);
	}
	srv = vdk_tool_stats_server_new(f->path, &f->info, fill_fake, &calls,
					&err);
	assert_non_null(srv);
	vdk_tool_stats_server_free(srv);

	/* any other file is left alone */
	close(open(f->path, O_CREAT | O_WRONLY, 0600));
	assert_null(vdk_tool_stats_server_new(f->path, &f->info, fill_fake,
					      &calls, &err));
	assert_int_equal(err, -EEXIST);
	assert_int_equal(access(f->path, F_OK), 0);
}

static void test_sigusr1(void **state)
{
	struct fx *f = *state;
	int calls = 0;
	int fd = vdk_tool_stats_signal_fd();

	assert_true(fd >= 0);
	assert_int_equal(
		vdk_tool_stats_on_signal(fd, &f->info, fill_fake, &calls), 0);
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(raise(SIGUSR1), 0); /* coalesced: one line */
	assert_int_equal(
		vdk_tool_stats_on_signal(fd, &f->info, fill_fake, &calls), 1);
	assert_int_equal(calls, 1);
	assert_int_equal(
		vdk_tool_stats_on_signal(fd, &f->info, fill_fake, &calls), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_render, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_document, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigusr1, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
