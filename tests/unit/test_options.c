// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for tools/options.c: the command-line conventions of every vdk
 * program (",," escapes, one value per option, one-line errors,
 * --print-capabilities detection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"

static void test_subopt_plain(void **state)
{
	char s[] = "disk.img,readonly,serial=abc";
	char *cur = s;

	(void)state;
	assert_string_equal(vdk_tool_subopt_next(&cur), "disk.img");
	assert_string_equal(vdk_tool_subopt_next(&cur), "readonly");
	assert_string_equal(vdk_tool_subopt_next(&cur), "serial=abc");
	assert_null(vdk_tool_subopt_next(&cur));
	assert_null(vdk_tool_subopt_next(&cur));
}

static void test_subopt_escape(void **state)
{
	char s[] = "a,,b.img,serial=x,,y,,,ro";
	char *cur = s;

	(void)state;
	assert_string_equal(vdk_tool_subopt_next(&cur), "a,b.img");
	/* ",,," is an escaped comma, then a separator */
	assert_string_equal(vdk_tool_subopt_next(&cur), "serial=x,y,");
	assert_string_equal(vdk_tool_subopt_next(&cur), "ro");
	assert_null(vdk_tool_subopt_next(&cur));
}

static void test_subopt_empty_fields(void **state)
{
	char s1[] = "";
	char s2[] = "x,";
	char s3[] = ",,";
	char *cur;

	(void)state;
	cur = s1;
	assert_string_equal(vdk_tool_subopt_next(&cur), "");
	assert_null(vdk_tool_subopt_next(&cur));
	cur = s2;
	assert_string_equal(vdk_tool_subopt_next(&cur), "x");
	assert_string_equal(vdk_tool_subopt_next(&cur), ""); /* trailing */
	assert_null(vdk_tool_subopt_next(&cur));
	cur = s3;
	assert_string_equal(vdk_tool_subopt_next(&cur), ",");
	assert_null(vdk_tool_subopt_next(&cur));
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
		cmocka_unit_test(test_subopt_plain),
		cmocka_unit_test(test_subopt_escape),
		cmocka_unit_test(test_subopt_empty_fields),
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
