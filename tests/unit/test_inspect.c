/*
 * Unit tests for the inspect tree renderer (src/core/inspect.c): paths,
 * depth limits, value formats, hostile names and strings, and errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/inspect.h"

static unsigned leaf_calls;

static void leaf(struct inspect *in, void *opaque)
{
	unsigned n = (unsigned)(uintptr_t)opaque;
	leaf_calls++;
	inspect_u64(in, "reads", 10 + n);
	inspect_hex(in, "gpa", 0x1000u * n);
}

static void disks(struct inspect *in, void *opaque)
{
	(void)opaque;
	for (unsigned i = 0; i < 3; i++)
		inspect_child_index(in, i, leaf, (void *)(uintptr_t)i);
}

static void root(struct inspect *in, void *opaque)
{
	(void)opaque;
	inspect_u64(in, "vcpus", 2);
	inspect_i64(in, "offset", -5);
	inspect_bool(in, "paused", false);
	inspect_str(in, "name", "a \"quoted\"\n\\name");
	inspect_child(in, "disks", disks, NULL);
	inspect_child(in, "odd name/with:chars", disks, NULL);
}

static char *render(const char *path, int depth, int *ret)
{
	char *s = NULL;
	leaf_calls = 0;
	*ret = inspect_render(root, NULL, path, depth, &s);
	return s;
}

static void test_root_depth0(void **state)
{
	(void)state;
	int ret;
	char *s = render("", 0, &ret);
	assert_int_equal(ret, 0);
	assert_string_equal(s,
		"{\n"
		"    vcpus: 2,\n"
		"    offset: -5,\n"
		"    paused: false,\n"
		"    name: \"a \\\"quoted\\\"\\x0a\\\\name\",\n"
		"    disks: {...},\n"
		"    odd_name_with_chars: {...},\n"
		"}\n");
	assert_int_equal(leaf_calls, 0); /* children not expanded are not called */
	free(s);
}

static void test_recursive(void **state)
{
	(void)state;
	int ret;
	char *s = render("/disks", -1, &ret);
	assert_int_equal(ret, 0);
	assert_string_equal(s,
		"{\n"
		"    0: {\n"
		"        reads: 10,\n"
		"        gpa: 0x0,\n"
		"    },\n"
		"    1: {\n"
		"        reads: 11,\n"
		"        gpa: 0x1000,\n"
		"    },\n"
		"    2: {\n"
		"        reads: 12,\n"
		"        gpa: 0x2000,\n"
		"    },\n"
		"}\n");
	free(s);
}

static void test_leaf_path(void **state)
{
	(void)state;
	int ret;
	char *s = render("disks/2/", 0, &ret);
	assert_int_equal(ret, 0);
	assert_string_equal(s, "{\n    reads: 12,\n    gpa: 0x2000,\n}\n");
	assert_int_equal(leaf_calls, 1); /* only the node asked for */
	free(s);
}

static void test_depth1(void **state)
{
	(void)state;
	int ret;
	char *s = render("", 1, &ret);
	assert_int_equal(ret, 0);
	assert_non_null(strstr(s, "    disks: {\n        0: {...},\n        1: {...},\n"));
	assert_int_equal(leaf_calls, 0);
	free(s);
}

static void test_errors(void **state)
{
	(void)state;
	int ret;
	char *s = render("nosuch", 0, &ret);
	assert_int_equal(ret, -ENOENT);
	assert_null(s);
	s = render("disks/7", 0, &ret);
	assert_int_equal(ret, -ENOENT);
	s = render("disks//0", 0, &ret);
	assert_int_equal(ret, -EINVAL);
	s = render("vcpus", 0, &ret); /* a field is not a node */
	assert_int_equal(ret, -ENOENT);
	char longp[INSPECT_PATH_MAX + 2];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	s = render(longp, 0, &ret);
	assert_int_equal(ret, -EINVAL);
}

/* A tree that recurses forever is cut at INSPECT_MAX_DEPTH. */
static void endless(struct inspect *in, void *opaque)
{
	inspect_u64(in, "x", 1);
	inspect_child(in, "again", endless, opaque);
}

static void test_endless(void **state)
{
	(void)state;
	char *s = NULL;
	assert_int_equal(inspect_render(endless, NULL, "", -1, &s), 0);
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, "again: {\n")); p++)
		n++;
	assert_int_equal(n, INSPECT_MAX_DEPTH);
	free(s);
}

/* Huge output stops at INSPECT_OUT_MAX with a note. */
static void wide(struct inspect *in, void *opaque)
{
	(void)opaque;
	for (unsigned i = 0; i < 200000; i++)
		inspect_u64(in, "counter_with_a_long_name", i);
}

static void test_cut(void **state)
{
	(void)state;
	char *s = NULL;
	assert_int_equal(inspect_render(wide, NULL, "", -1, &s), 0);
	assert_true(strlen(s) <= INSPECT_OUT_MAX);
	assert_non_null(strstr(s, "(output cut at 1 MiB)"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_depth0),
		cmocka_unit_test(test_recursive),
		cmocka_unit_test(test_leaf_path),
		cmocka_unit_test(test_depth1),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_endless),
		cmocka_unit_test(test_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
