// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for tools/options.c: the command-line conventions of every vdk
 * program (one value per option, one-line errors, --print-capabilities
 * detection, device settings as options and help lines). The ",," escape
 * is the library's now: tests/unit/test_config.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"

/* Two settings as a device type lists them (<vdk/config.h>). */
static const struct vdk_config_key fake_keys[] = {
	{"readonly", NULL, "open read-only"},
	{"serial", "ID", "device ID"},
	{"aio", "auto|sync|io_uring", "how reads and writes are done"},
};

static const struct vdk_config_key *fake_key(size_t i)
{
	return i < sizeof(fake_keys) / sizeof(fake_keys[0]) ? &fake_keys[i]
							    : NULL;
}

static void test_setting_name(void **state)
{
	static const char *const renames[] = {"readonly", "read-only", "path",
					      "blk-file", NULL};

	(void)state;
	assert_string_equal(vdk_tool_setting_name(renames, "readonly"),
			    "read-only");
	assert_string_equal(vdk_tool_setting_name(renames, "path"), "blk-file");
	assert_string_equal(vdk_tool_setting_name(renames, "serial"), "serial");
	assert_string_equal(vdk_tool_setting_name(NULL, "serial"), "serial");
}

/* One line per setting, help at column 25, a long name on its own line. */
static void test_settings_help(void **state)
{
	static const char *const renames[] = {"readonly", "read-only", NULL};
	char buf[512] = {0};
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	(void)state;
	assert_non_null(f);
	vdk_tool_settings_help(f, fake_key, 0, "  ", "--", renames);
	vdk_tool_settings_help(f, fake_key, 1, "    ", "", NULL);
	fclose(f);
	assert_string_equal(buf,
			    "  --read-only            open read-only\n"
			    "  --serial=ID            device ID\n"
			    "  --aio=auto|sync|io_uring\n"
			    "                         how reads and writes are "
			    "done\n"
			    "    serial=ID            device ID\n"
			    "    aio=auto|sync|io_uring\n"
			    "                         how reads and writes are "
			    "done\n");
}

enum { O_DISK = 0x100, O_SOCK, O_FLAG };
static const struct option lo[] = {
	{"disk", required_argument, NULL, O_DISK},
	{"socket-path", required_argument, NULL, O_SOCK},
	{"flag", no_argument, NULL, O_FLAG},
	{"verbose", no_argument, NULL, 'v'},
	{NULL, 0, NULL, 0},
};

/* Parse @argv; return the first '?' position's index or -1 at the end. */
static int parse(struct vdk_tool_cli *c, int argc, char **argv, int *count)
{
	int opt;

	optind = 0; /* full re-initialisation of getopt */
	*count = 0;
	while ((opt = vdk_tool_cli_next(c, argc, argv, "vq:")) != -1) {
		if (opt == '?')
			return '?';
		(*count)++;
	}
	return -1;
}

static void test_once(void **state)
{
	struct vdk_tool_cli c;
	int n;
	char *ok[] = {"p",  "--disk=a", "--socket-path", "s",  "-v",
		      "-v", "--flag",	"--flag",	 "-q", "1",
		      NULL};
	char *twice[] = {"p", "--disk=a", "--disk=b", NULL};
	char *sock2[] = {"p", "--socket-path=a", "--socket-path", "b", NULL};
	char *short2[] = {"p", "-q1", "-q", "2", NULL};

	(void)state;
	vdk_tool_cli_init(&c, "prog", lo);
	assert_int_equal(parse(&c, 10, ok, &n), -1);
	assert_int_equal(n, 7); /* flags and -v repeat freely */
	vdk_tool_cli_init(&c, "prog", lo);
	assert_int_equal(parse(&c, 3, twice, &n), '?');
	assert_int_equal(n, 1);
	vdk_tool_cli_init(&c, "prog", lo);
	assert_int_equal(parse(&c, 4, sock2, &n), '?');
	vdk_tool_cli_init(&c, "prog", lo);
	assert_int_equal(parse(&c, 4, short2, &n), '?');
	/* unless declared repeatable */
	vdk_tool_cli_init(&c, "prog", lo);
	vdk_tool_cli_repeatable(&c, O_DISK);
	assert_int_equal(parse(&c, 3, twice, &n), -1);
	assert_int_equal(n, 2);
}

static void test_bad(void **state)
{
	struct vdk_tool_cli c;
	int n;
	char *unknown[] = {"p", "--bogus", NULL};
	char *unknown_short[] = {"p", "-x", NULL};
	char *missing[] = {"p", "--disk", NULL};
	char *value[] = {"p", "--flag=1", NULL};

	(void)state;
	vdk_tool_cli_init(&c, "prog", lo);
	assert_int_equal(parse(&c, 2, unknown, &n), '?');
	assert_int_equal(parse(&c, 2, unknown_short, &n), '?');
	assert_int_equal(parse(&c, 2, missing, &n), '?');
	assert_int_equal(parse(&c, 2, value, &n), '?');
	assert_int_equal(n, 0);
}

static void test_has(void **state)
{
	char *a[] = {"p", "--bogus", "--print-capabilities", NULL};
	char *b[] = {"p", "--", "--print-capabilities", NULL};
	char *d[] = {"p", "--print-capabilities=1", NULL};

	(void)state;
	assert_true(vdk_tool_cli_has(3, a, "print-capabilities"));
	assert_false(vdk_tool_cli_has(3, b, "print-capabilities"));
	assert_false(vdk_tool_cli_has(2, d, "print-capabilities"));
	assert_false(vdk_tool_cli_has(2, a, "print-capabilities"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setting_name),
		cmocka_unit_test(test_settings_help),
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
