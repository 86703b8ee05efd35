// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the device settings (<vdk/config.h>, src/config.c,
 * src/devices/{blk,net,rng}_config.c): every setting of blk, net and rng, the ",," escape, unknown and repeated settings, bad values
 * with the message naming the setting, ownership of the copied strings
 * (ASan in make check finds a leak or a double free), and the lists a
 * program builds its options and help from.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <vdk/config.h>
#include <vdk/devices/blk.h>
#include <vdk/devices/net.h>
#include <vdk/devices/rng.h>

static char msg[VDK_CONFIG_MSG_LEN];

/* The message starts with "@name: " and contains @text. */
static void assert_msg(const char *name, const char *text)
{
	size_t n = strlen(name);

	if (strncmp(msg, name, n) || msg[n] != ':' || !strstr(msg, text))
		fail_msg("message '%s', want '%s: ...%s...'", msg, name, text);
	assert_null(strchr(msg, '\n'));
}

/* ---- blk ---------------------------------------------------------------- */

static void test_blk_every_key(void **state)
{
	struct vdk_blk_config c = {0};

	(void)state;
	assert_int_equal(vdk_blk_config_parse(&c,
					      "d.img,readonly,serial=d0,direct,"
					      "aio=io_uring,num-queues=4,"
					      "queue-size=128",
					      msg, sizeof(msg)),
			 0);
	assert_string_equal(msg, "");
	assert_string_equal(c.path, "d.img");
	assert_true(c.read_only);
	assert_string_equal(c.serial, "d0");
	assert_true(c.direct);
	assert_int_equal(c.io_mode, VDK_BLK_IO_ASYNC);
	assert_int_equal(c.num_queues, 4);
	assert_int_equal(c.queue_size, 128);
	assert_ptr_equal(c.path, c.path_copy);
	assert_ptr_equal(c.serial, c.serial_copy);
	vdk_blk_config_fini(&c);
	assert_null(c.path);
	assert_null(c.serial);
	assert_null(c.path_copy);
	assert_true(c.read_only); /* the other members stay */
	vdk_blk_config_fini(&c);  /* twice is harmless */
	vdk_blk_config_fini(NULL);
}

static void test_blk_aliases(void **state)
{
	static const struct {
		const char *spec;
		enum vdk_blk_io_mode mode;
	} aio[] = {
		{"x,aio=auto", VDK_BLK_IO_AUTO},
		{"x,aio=sync", VDK_BLK_IO_SYNC},
		{"x,aio=threads", VDK_BLK_IO_SYNC},
		{"x,aio=io_uring", VDK_BLK_IO_ASYNC},
		{"x,aio=async", VDK_BLK_IO_ASYNC},
	};
	struct vdk_blk_config c = {0};

	(void)state;
	assert_int_equal(
		vdk_blk_config_parse(&c, "x,ro,cache=none", msg, sizeof(msg)),
		0);
	assert_true(c.read_only);
	assert_true(c.direct);
	vdk_blk_config_fini(&c);
	for (size_t i = 0; i < sizeof(aio) / sizeof(aio[0]); i++) {
		struct vdk_blk_config a = {.io_mode = 99};

		assert_int_equal(
			vdk_blk_config_parse(&a, aio[i].spec, msg, sizeof(msg)),
			0);
		assert_int_equal(a.io_mode, aio[i].mode);
		vdk_blk_config_fini(&a);
	}
	/* an alias with another value means nothing */
	assert_int_equal(
		vdk_blk_config_parse(&c, "x,cache=writeback", msg, sizeof(msg)),
		-EINVAL);
	assert_msg("cache", "cache=none");
	vdk_blk_config_fini(&c);
}

static void test_blk_escape(void **state)
{
	struct vdk_blk_config c = {0};

	(void)state;
	/* ",,," is an escaped comma, then a separator */
	assert_int_equal(vdk_blk_config_parse(&c, "a,,b.img,serial=x,,y,,,ro",
					      msg, sizeof(msg)),
			 0);
	assert_string_equal(c.path, "a,b.img");
	assert_string_equal(c.serial, "x,y,");
	assert_true(c.read_only);
	vdk_blk_config_fini(&c);
	/* the first field is the path even with a '=' in it */
	assert_int_equal(
		vdk_blk_config_parse(&c, "dir/a=b.img", msg, sizeof(msg)), 0);
	assert_string_equal(c.path, "dir/a=b.img");
	vdk_blk_config_fini(&c);
	/* a single comma splits: "b.img" is an unknown setting */
	assert_int_equal(vdk_blk_config_parse(&c, "a,b.img", msg, sizeof(msg)),
			 -EINVAL);
	assert_msg("b.img", "unknown setting");
	vdk_blk_config_fini(&c);
}

static void test_blk_unknown_and_twice(void **state)
{
	static const struct {
		const char *spec, *name, *text;
	} bad[] = {
		{"x,bogus", "bogus", "unknown setting"},
		{"x,bogus=1", "bogus", "unknown setting"},
		{"x,serial=a,serial=b", "serial", "given twice"},
		{"x,ro,readonly", "readonly", "given twice"},
		{"x,path=y", "path", "given twice"},
		{"x,readonly=on", "readonly", "takes no value"},
		{"x,serial", "serial", "needs a value"},
		{"x,", "spec", "empty setting"},
		{"x,,,", "spec", "empty setting"},
		{",x", "path", "empty"},
		{"", "spec", "empty"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vdk_blk_config c = {0};

		if (vdk_blk_config_parse(&c, bad[i].spec, msg, sizeof(msg)) !=
		    -EINVAL)
			fail_msg("'%s' accepted", bad[i].spec);
		assert_msg(bad[i].name, bad[i].text);
		vdk_blk_config_fini(&c);
	}
	assert_int_equal(vdk_blk_config_parse(NULL, "x", msg, sizeof(msg)),
			 -EINVAL);
}

static void test_blk_bad_values(void **state)
{
	static const struct {
		const char *key, *value, *text;
	} bad[] = {
		{"serial", "123456789012345678901", "at most 20 bytes"},
		{"num-queues", "0", "want 1..16"},
		{"num-queues", "17", "want 1..16"},
		{"num-queues", "-1", "want 1..16"},
		{"num-queues", "1x", "want 1..16"},
		{"num-queues", "", "want 1..16"},
		{"num-queues", " 2", "want 1..16"},
		{"num-queues", "99999999999999999999999", "want 1..16"},
		{"queue-size", "2", "power of two 4..1024"},
		{"queue-size", "100", "power of two 4..1024"},
		{"queue-size", "2048", "power of two 4..1024"},
		{"aio", "native", "want auto|sync|io_uring"},
		{"path", "", "empty"},
	};
	struct vdk_blk_config c = {.num_queues = 3, .queue_size = 64};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vdk_blk_config_set(&c, bad[i].key, bad[i].value, msg,
				       sizeof(msg)) != -EINVAL)
			fail_msg("%s=%s accepted", bad[i].key, bad[i].value);
		assert_msg(bad[i].key, bad[i].text);
	}
	/* unchanged on error */
	assert_int_equal(c.num_queues, 3);
	assert_int_equal(c.queue_size, 64);
	assert_null(c.serial);
	/* the limits themselves are fine; 20 bytes and an empty serial too */
	assert_int_equal(
		vdk_blk_config_set(&c, "num-queues", "16", msg, sizeof(msg)),
		0);
	assert_int_equal(
		vdk_blk_config_set(&c, "queue-size", "4", msg, sizeof(msg)), 0);
	assert_int_equal(vdk_blk_config_set(&c, "serial",
					    "12345678901234567890", msg,
					    sizeof(msg)),
			 0);
	assert_int_equal(vdk_blk_config_set(&c, "serial", "", msg, sizeof(msg)),
			 0);
	assert_string_equal(c.serial, "");
	assert_int_equal(c.num_queues, 16);
	assert_int_equal(c.queue_size, 4);
	/* no message buffer: errors still returned */
	assert_int_equal(vdk_blk_config_set(&c, "bogus", NULL, NULL, 0),
			 -EINVAL);
	/* a short buffer is cut, still terminated */
	{
		char small[8];

		assert_int_equal(vdk_blk_config_set(&c, "num-queues", "0",
						    small, sizeof(small)),
				 -EINVAL);
		assert_string_equal(small, "num-que");
	}
	vdk_blk_config_fini(&c);
}

static void test_blk_set_replaces_copy(void **state)
{
	struct vdk_blk_config c = {.path = "by-hand.img"};

	(void)state;
	/* a string set by hand is not freed by fini */
	vdk_blk_config_fini(&c);
	assert_string_equal(c.path, "by-hand.img");
	assert_int_equal(
		vdk_blk_config_set(&c, "path", "a.img", msg, sizeof(msg)), 0);
	assert_int_equal(
		vdk_blk_config_set(&c, "path", "b.img", msg, sizeof(msg)),
		0); /* frees a.img's copy (ASan: no leak) */
	assert_string_equal(c.path, "b.img");
	assert_int_equal(vdk_blk_config_check(&c, msg, sizeof(msg)), 0);
	vdk_blk_config_fini(&c);
	assert_int_equal(vdk_blk_config_check(&c, msg, sizeof(msg)), -EINVAL);
	assert_msg("path", "missing");
}

/* The settings a program offers: names unique, each with help, flags
 * without a value syntax. */
static void check_keys(vdk_config_key_fn *keys, const char *const *want)
{
	size_t n = 0;

	for (const struct vdk_config_key *k; (k = keys(n)); n++) {
		assert_non_null(want[n]);
		assert_string_equal(k->name, want[n]);
		assert_non_null(k->help);
		assert_null(strchr(k->help, '\n'));
		assert_true(strlen(k->help) <= 54);
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(keys(j)->name, k->name);
	}
	assert_null(want[n]);
	assert_null(keys(n + 100));
}

static void test_keys(void **state)
{
	static const char *const blk[] = {
		"path", "readonly",   "serial",	    "direct",
		"aio",	"num-queues", "queue-size", NULL,
	};
	static const char *const net[] = {
		"tap",	       "tap-fd", "loopback",  "mac",
		"queue-pairs", "mtu",	 "busy-poll", NULL,
	};

	(void)state;
	check_keys(vdk_blk_config_key, blk);
	check_keys(vdk_net_config_key, net);
	assert_null(vdk_blk_config_key(1)->value); /* readonly: a flag */
	assert_string_equal(vdk_blk_config_key(2)->value, "ID");
	assert_null(vdk_net_config_key(2)->value); /* loopback */
}

/* ---- net ---------------------------------------------------------------- */

static void test_net_every_key(void **state)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xCD, 0x01};
	struct vdk_net_config c = {0};

	(void)state;
	assert_int_equal(vdk_net_config_parse(&c,
					      "tap=tap0,mac=52:54:00:ab:CD:01,"
					      "queue-pairs=2,mtu=9000,"
					      "busy-poll=50",
					      msg, sizeof(msg)),
			 0);
	assert_int_equal(c.backend_type, VDK_NET_BACKEND_TAP);
	assert_string_equal(c.tap.ifname, "tap0");
	assert_int_equal(c.tap.fd, -1);
	assert_memory_equal(c.mac, mac, 6);
	assert_int_equal(c.max_queue_pairs, 2);
	assert_int_equal(c.mtu, 9000);
	assert_int_equal(c.busy_poll_us, 50);
	assert_int_equal(vdk_net_config_check(&c, msg, sizeof(msg)), 0);
	vdk_net_config_fini(&c);
	assert_null(c.tap.ifname);
	assert_null(c.tap_ifname_copy);

	memset(&c, 0, sizeof(c));
	assert_int_equal(vdk_net_config_parse(&c, "tap-fd=7", msg, sizeof(msg)),
			 0);
	assert_int_equal(c.backend_type, VDK_NET_BACKEND_TAP);
	assert_null(c.tap.ifname);
	assert_int_equal(c.tap.fd, 7);
	assert_int_equal(vdk_net_config_check(&c, msg, sizeof(msg)), 0);
	assert_int_equal(
		vdk_net_config_set(&c, "queue-pairs", "2", msg, sizeof(msg)),
		0);
	assert_int_equal(vdk_net_config_check(&c, msg, sizeof(msg)), -EINVAL);
	assert_msg("tap-fd", "one queue pair");
	vdk_net_config_fini(&c);

	memset(&c, 0, sizeof(c));
	assert_int_equal(
		vdk_net_config_parse(&c, "mtu=68,loopback", msg, sizeof(msg)),
		0);
	assert_int_equal(c.backend_type, VDK_NET_BACKEND_LOOPBACK);
	assert_int_equal(c.mtu, 68);
	vdk_net_config_fini(&c);
}

static void test_net_bad(void **state)
{
	static const struct {
		const char *spec, *name, *text;
	} bad[] = {
		{"bogus", "bogus", "unknown setting"},
		{"tap=x,speed=10", "speed", "unknown setting"},
		{"tap=", "tap", "empty"},
		{"tap=0123456789abcdef", "tap", "at most 15 bytes"},
		{"tap=a,loopback", "loopback", "tap already chosen"},
		{"loopback,tap-fd=3", "tap-fd", "loopback already chosen"},
		{"tap-fd=3,tap=a", "tap", "tap-fd already chosen"},
		{"tap=a,tap=b", "tap", "given twice"},
		{"tap-fd=-1", "tap-fd", "not a file descriptor"},
		{"tap-fd=x", "tap-fd", "not a file descriptor"},
		{"tap-fd=99999999999", "tap-fd", "not a file descriptor"},
		{"loopback=1", "loopback", "takes no value"},
		{"loopback,mac=01:00:5e:00:00:01", "mac", "unicast"},
		{"loopback,mac=52:54:00:12:34", "mac", "unicast"},
		{"loopback,mac=52:54:00:12:34:567", "mac", "unicast"},
		{"loopback,mac=52-54-00-12-34-56", "mac", "unicast"},
		{"loopback,mac=52:54:00:12:34:5g", "mac", "unicast"},
		{"loopback,mac= 2:54:00:12:34:56", "mac", "unicast"},
		{"loopback,queue-pairs=0", "queue-pairs", "want 1..31"},
		{"loopback,queue-pairs=32", "queue-pairs", "want 1..31"},
		{"loopback,mtu=67", "mtu", "want 68..65535"},
		{"loopback,mtu=65536", "mtu", "want 68..65535"},
		{"loopback,busy-poll=1001", "busy-poll", "want 0..1000"},
		{"loopback,mtu=1500,mtu=1500", "mtu", "given twice"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vdk_net_config c = {0};

		if (vdk_net_config_parse(&c, bad[i].spec, msg, sizeof(msg)) !=
		    -EINVAL)
			fail_msg("'%s' accepted", bad[i].spec);
		assert_msg(bad[i].name, bad[i].text);
		vdk_net_config_fini(&c);
	}
	{
		struct vdk_net_config c = {0};

		assert_int_equal(vdk_net_config_parse(&c,
						      "mac=52:54:00:12:34:56",
						      msg, sizeof(msg)),
				 0);
		assert_int_equal(vdk_net_config_check(&c, msg, sizeof(msg)),
				 -EINVAL);
		assert_msg("backend", "give one of tap, tap-fd, loopback");
		vdk_net_config_fini(&c);
	}
}

/* The same setting again replaces itself (a program's option given after
 * the same one in a spec); the copy is freed, not leaked. */
static void test_net_set_again(void **state)
{
	struct vdk_net_config c = {0};

	(void)state;
	assert_int_equal(vdk_net_config_set(&c, "tap", "a", msg, sizeof(msg)),
			 0);
	assert_int_equal(vdk_net_config_set(&c, "tap", "b", msg, sizeof(msg)),
			 0);
	assert_string_equal(c.tap.ifname, "b");
	assert_int_equal(
		vdk_net_config_set(&c, "loopback", NULL, msg, sizeof(msg)),
		-EINVAL);
	assert_string_equal(c.tap.ifname, "b"); /* unchanged */
	vdk_net_config_fini(&c);
}

/* A device made from settings alone: vdk_net_new() opens the loopback. */
static void test_net_new_from_settings(void **state)
{
	struct vdk_net_config c = {0};
	struct vdk_net *net;
	int err = 0, fds[2];

	(void)state;
	assert_int_equal(vdk_net_config_parse(&c, "loopback,queue-pairs=2", msg,
					      sizeof(msg)),
			 0);
	net = vdk_net_new(&c, &err);
	assert_non_null(net);
	assert_int_equal(
		vdk_net_pair_stats(net, 1, &(uint64_t){0}, &(uint64_t){0}), 0);
	vdk_net_free(net); /* frees the loopback it opened (ASan) */
	vdk_net_config_fini(&c);

	/* a tap by name filled by hand with the fd left 0, refused before
	 * anything is opened (a name too long): fd 0 is not closed */
	fds[0] = open("/dev/null", O_RDONLY);
	assert_true(fds[0] >= 0);
	assert_int_equal(dup2(fds[0], 0), 0);
	close(fds[0]);
	memset(&c, 0, sizeof(c));
	c.backend_type = VDK_NET_BACKEND_TAP;
	c.tap.ifname = "vdk-name-too-long";
	assert_null(vdk_net_new(&c, &err));
	assert_int_equal(err, -EINVAL);
	assert_true(fcntl(0, F_GETFD) >= 0);

	/* a tap fd that is no tap: refused, and closed */
	assert_int_equal(pipe(fds), 0);
	memset(&c, 0, sizeof(c));
	c.backend_type = VDK_NET_BACKEND_TAP;
	c.tap.fd = fds[0];
	assert_null(vdk_net_new(&c, &err));
	assert_int_equal(err, -EINVAL);
	assert_int_equal(close(fds[0]), -1);
	assert_int_equal(errno, EBADF);
	close(fds[1]);
}

/* ---- rng ---------------------------------------------------------------- */

static void test_rng(void **state)
{
	static const struct {
		const char *spec, *name, *text;
	} bad[] = {
		{"max-bytes=0", "max-bytes", "want 1..4294967295"},
		{"max-bytes=4294967296", "max-bytes", "want 1..4294967295"},
		{"max-bytes", "max-bytes", "needs a value"},
		{"queue-size=3", "queue-size", "power of two 1..32768"},
		{"queue-size=65536", "queue-size", "power of two 1..32768"},
		{"queue-size=8,queue-size=8", "queue-size", "given twice"},
		{"readonly", "readonly", "unknown setting"},
	};
	static const char *const keys[] = {"max-bytes", "queue-size", NULL};
	struct vdk_rng_config c = {0};
	struct vdk_rng *rng;
	int err;

	(void)state;
	check_keys(vdk_rng_config_key, keys);
	assert_int_equal(vdk_rng_config_parse(&c,
					      "max-bytes=4294967295,"
					      "queue-size=32768",
					      msg, sizeof(msg)),
			 0);
	assert_int_equal(c.max_bytes_per_request, UINT32_MAX);
	assert_int_equal(c.queue_max_size, 32768);
	assert_int_equal(
		vdk_rng_config_set(&c, "queue-size", "1", msg, sizeof(msg)), 0);
	assert_int_equal(c.queue_max_size, 1);
	rng = vdk_rng_new(&c, &err); /* the device takes what was set */
	assert_non_null(rng);
	vdk_rng_free(rng);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vdk_rng_config b = {0};

		if (vdk_rng_config_parse(&b, bad[i].spec, msg, sizeof(msg)) !=
		    -EINVAL)
			fail_msg("'%s' accepted", bad[i].spec);
		assert_msg(bad[i].name, bad[i].text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blk_every_key),
		cmocka_unit_test(test_blk_aliases),
		cmocka_unit_test(test_blk_escape),
		cmocka_unit_test(test_blk_unknown_and_twice),
		cmocka_unit_test(test_blk_bad_values),
		cmocka_unit_test(test_blk_set_replaces_copy),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_net_every_key),
		cmocka_unit_test(test_net_bad),
		cmocka_unit_test(test_net_set_again),
		cmocka_unit_test(test_net_new_from_settings),
		cmocka_unit_test(test_rng),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
