/*
 * Unit tests for the AML builder (x86/aml.c). Expected byte strings come
 * from compiling the equivalent ASL with iasl 20200925 (whose End Tag
 * checksum is 0; ours is the real checksum, checked separately).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "x86/aml.h"

#define BYTES(...)                                                      \
	((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

static void expect_bytes(const struct aml *a, const uint8_t *want, size_t n)
{
	assert_int_equal(a->err, 0);
	assert_int_equal(a->len, n);
	assert_memory_equal(a->buf, want, n);
}

/* Decodes a PkgLength at p; returns the value and sets *n to its size. */
static size_t decode_pkglen(const uint8_t *p, size_t *n)
{
	unsigned follow = p[0] >> 6;
	*n = 1 + follow;
	if (!follow)
		return p[0] & 0x3F;
	size_t v = p[0] & 0x0F;
	for (unsigned i = 0; i < follow; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	return v;
}

static void check_pkglen(size_t body, const uint8_t *want, size_t n)
{
	uint8_t out[4];
	assert_int_equal(aml_pkglen_encode(body, out), (int)n);
	assert_memory_equal(out, want, n);
}

static void test_pkglen_boundaries(void **state)
{
	(void)state;
	uint8_t out[4];

	check_pkglen(0, BYTES(0x01));
	check_pkglen(62, BYTES(0x3F));                  /* largest 1-byte */
	check_pkglen(63, BYTES(0x41, 0x04));            /* 65 in 2 bytes */
	check_pkglen(0xFFD, BYTES(0x4F, 0xFF));         /* largest 2-byte */
	check_pkglen(0xFFE, BYTES(0x81, 0x00, 0x01));   /* 0x1001 */
	check_pkglen(0xFFFFC, BYTES(0x8F, 0xFF, 0xFF)); /* largest 3-byte */
	check_pkglen(0xFFFFD, BYTES(0xC1, 0x00, 0x00, 0x01));
	check_pkglen(0xFFFFFFB, BYTES(0xCF, 0xFF, 0xFF, 0xFF));
	assert_int_equal(aml_pkglen_encode(0xFFFFFFC, out), -E2BIG);
}

/* A Scope whose body is exactly `body` bytes, checked end to end. */
static void check_scope_body(size_t body, size_t pkglen_bytes)
{
	struct aml a;
	uint8_t *fill = calloc(1, body);
	assert_non_null(fill);

	aml_init(&a);
	aml_scope(&a, "\\");          /* NameString 5C 00: 2 bytes of body */
	aml_raw(&a, fill, body - 2);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	assert_int_equal(a.len, 1 + pkglen_bytes + body);
	assert_int_equal(a.buf[0], AML_SCOPE_OP);
	size_t n;
	assert_int_equal(decode_pkglen(a.buf + 1, &n), pkglen_bytes + body);
	assert_int_equal(n, pkglen_bytes);
	assert_int_equal(a.buf[1 + n], AML_ROOT_CHAR);
	assert_int_equal(a.buf[2 + n], 0x00);
	aml_free(&a);
	free(fill);
}

static void test_pkglen_in_scope(void **state)
{
	(void)state;
	check_scope_body(62, 1);
	check_scope_body(63, 2);
	check_scope_body(0xFFD, 2);
	check_scope_body(0xFFE, 3);
	check_scope_body(0xFFFFC, 3);
	check_scope_body(0xFFFFD, 4);
}

static void check_int(uint64_t v, const uint8_t *want, size_t n)
{
	struct aml a;
	aml_init(&a);
	aml_int(&a, v);
	expect_bytes(&a, want, n);
	aml_free(&a);
}

static void test_integers(void **state)
{
	(void)state;
	check_int(0, BYTES(AML_ZERO_OP));
	check_int(1, BYTES(AML_ONE_OP));
	check_int(2, BYTES(0x0A, 0x02));
	check_int(0xFF, BYTES(0x0A, 0xFF));
	check_int(0x100, BYTES(0x0B, 0x00, 0x01));
	check_int(0x1234, BYTES(0x0B, 0x34, 0x12));
	check_int(0xFFFF, BYTES(0x0B, 0xFF, 0xFF));
	check_int(0x10000, BYTES(0x0C, 0x00, 0x00, 0x01, 0x00));
	check_int(0x12345678, BYTES(0x0C, 0x78, 0x56, 0x34, 0x12));
	check_int(0xFFFFFFFF, BYTES(0x0C, 0xFF, 0xFF, 0xFF, 0xFF));
	check_int(0x123456789A, BYTES(0x0E, 0x9A, 0x78, 0x56, 0x34, 0x12, 0, 0, 0));
	check_int(UINT64_MAX, BYTES(AML_ONES_OP));
	check_int(UINT64_MAX - 1,
		  BYTES(0x0E, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF));
}

static void check_name(const char *path, const uint8_t *want, size_t n)
{
	struct aml a;
	aml_init(&a);
	aml_namestring(&a, path);
	expect_bytes(&a, want, n);
	aml_free(&a);
}

static void check_bad_name(const char *path)
{
	struct aml a;
	aml_init(&a);
	aml_namestring(&a, path);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
}

static void test_names(void **state)
{
	(void)state;
	check_name("_SB", BYTES('_', 'S', 'B', '_'));
	check_name("COM1", BYTES('C', 'O', 'M', '1'));
	check_name("\\", BYTES(0x5C, 0x00));
	check_name("\\_SB", BYTES(0x5C, '_', 'S', 'B', '_'));
	check_name("\\_SB.COM1", BYTES(0x5C, 0x2E, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'));
	check_name("^^FOO", BYTES(0x5E, 0x5E, 'F', 'O', 'O', '_'));
	check_name("\\A.B2.C_D", BYTES(0x5C, 0x2F, 0x03, 'A', '_', '_', '_',
				       'B', '2', '_', '_', 'C', '_', 'D', '_'));

	check_bad_name("");
	check_bad_name("1ABC");     /* leading digit */
	check_bad_name("ABCDE");    /* too long */
	check_bad_name("abc");      /* lower case */
	check_bad_name("\\_SB.");   /* trailing dot */
	check_bad_name("A..B");     /* empty segment */
	check_bad_name("\\^A");     /* root and parent prefix */
	check_bad_name("A-B");
}

static void test_eisaid(void **state)
{
	(void)state;
	uint32_t v;

	assert_int_equal(aml_eisaid_encode("PNP0501", &v), 0);
	assert_int_equal(v, 0x0105D041);
	assert_int_equal(aml_eisaid_encode("PNP0B00", &v), 0);
	assert_int_equal(v, 0x000BD041);
	assert_int_equal(aml_eisaid_encode("PNP0A03", &v), 0);
	assert_int_equal(v, 0x030AD041);
	assert_int_equal(aml_eisaid_encode("pnp0501", &v), -EINVAL);
	assert_int_equal(aml_eisaid_encode("PNP050", &v), -EINVAL);
	assert_int_equal(aml_eisaid_encode("PNP05G1", &v), -EINVAL);
	assert_int_equal(aml_eisaid_encode("PNP05011", &v), -EINVAL);

	struct aml a;
	aml_init(&a);
	aml_name_eisaid(&a, "_HID", "PNP0501");
	expect_bytes(&a, BYTES(0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05, 0x01));
	aml_free(&a);
}

/* iasl: Device (COM1) { _HID, _UID, _STA method, _CRS IO + IRQNoFlags } */
static void test_com_device(void **state)
{
	(void)state;
	struct aml a;

	aml_init(&a);
	aml_device(&a, "COM1");
	aml_name_eisaid(&a, "_HID", "PNP0501");
	aml_name_int(&a, "_UID", 1);
	aml_sta(&a, AML_STA_DEFAULT);
	aml_name(&a, "_CRS");
	aml_restemplate(&a);
	aml_res_io(&a, 0x3F8, 0x3F8, 1, 8);
	aml_res_irq_noflags(&a, 4);
	aml_end(&a);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);

	static const uint8_t want[] = {
		0x5B, 0x82, 0x35, 'C', 'O', 'M', '1',
		0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05, 0x01,
		0x08, '_', 'U', 'I', 'D', 0x01,
		0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F,
		0x08, '_', 'C', 'R', 'S',
		0x11, 0x10, 0x0A, 0x0D,
		0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08,
		0x22, 0x10, 0x00,
		0x79, /* checksum follows */
	};
	assert_int_equal(a.len, sizeof(want) + 1);
	assert_memory_equal(a.buf, want, sizeof(want));
	/* End Tag checksum: the 13 descriptor bytes sum to zero. */
	uint8_t sum = 0;
	for (size_t i = a.len - 13; i < a.len; i++)
		sum = (uint8_t)(sum + a.buf[i]);
	assert_int_equal(sum, 0);
	assert_int_not_equal(a.buf[a.len - 1], 0);
	aml_free(&a);
}

static void test_resource_descriptors(void **state)
{
	(void)state;
	struct aml a;

	aml_init(&a);
	aml_restemplate(&a);
	aml_res_irq(&a, 5, true, true, true);
	aml_res_interrupt(&a, 9, true, false, false);
	aml_res_memory32_fixed(&a, 0xFED00000, 0x400, true);
	aml_res_dword_memory(&a, 0xC0000000, 0x3EC00000,
			     AML_MEM_CACHEABLE | AML_MEM_RW);
	aml_res_qword_memory(&a, 0x100000000ULL, 0x100000000ULL,
			     AML_MEM_PREFETCHABLE | AML_MEM_RW);
	aml_res_word_bus_number(&a, 0, 0xFF);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);

	static const uint8_t want[] = {
		0x11, 0x47, 0x07, 0x0A, 0x73,
		0x23, 0x20, 0x00, 0x18,
		0x89, 0x06, 0x00, 0x01, 0x01, 0x09, 0x00, 0x00, 0x00,
		0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xD0, 0xFE, 0x00, 0x04, 0x00, 0x00,
		0x87, 0x17, 0x00, 0x00, 0x0C, 0x03,
		0, 0, 0, 0, 0x00, 0x00, 0x00, 0xC0, 0xFF, 0xFF, 0xBF, 0xFE,
		0, 0, 0, 0, 0x00, 0x00, 0xC0, 0x3E,
		0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x07,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 1, 0, 0, 0,
		0xFF, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 1, 0, 0, 0,
		0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00,
		0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x79,
	};
	assert_int_equal(a.len, sizeof(want) + 1);
	assert_memory_equal(a.buf, want, sizeof(want));
	uint8_t sum = 0;
	for (size_t i = 5; i < a.len; i++)
		sum = (uint8_t)(sum + a.buf[i]);
	assert_int_equal(sum, 0);
	aml_free(&a);
}

static void test_empty_restemplate(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_restemplate(&a);
	aml_end(&a);
	/* Buffer (2) { 0x79, 0x87 }: 0x79 + 0x87 == 0x100 */
	expect_bytes(&a, BYTES(0x11, 0x05, 0x0A, 0x02, 0x79, 0x87));
	aml_free(&a);
}

static void test_package_method_string(void **state)
{
	(void)state;
	struct aml a;

	aml_init(&a);
	aml_name(&a, "_S5");
	aml_package(&a);
	aml_int(&a, 5);
	aml_int(&a, 5);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_end(&a);
	aml_method(&a, "M1", 3, true);
	aml_return_int(&a, UINT64_MAX);
	aml_end(&a);
	aml_name_string(&a, "S1", "hi");
	assert_int_equal(aml_finish(&a), 0);
	expect_bytes(&a, BYTES(0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
			       0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
			       0x14, 0x08, 'M', '1', '_', '_', 0x0B, 0xA4, 0xFF,
			       0x08, 'S', '1', '_', '_', 0x0D, 'h', 'i', 0x00));
	aml_free(&a);
}

static void test_nested_package_counts(void **state)
{
	(void)state;
	struct aml a;

	aml_init(&a);
	aml_package(&a);
	aml_int(&a, 1);
	aml_package(&a);
	aml_int(&a, 2);
	aml_int(&a, 3);
	aml_end(&a);
	aml_string(&a, "x");
	aml_namestring(&a, "\\_SB");
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	expect_bytes(&a, BYTES(0x12, 0x12, 0x04, 0x01,
			       0x12, 0x06, 0x02, 0x0A, 0x02, 0x0A, 0x03,
			       0x0D, 'x', 0x00,
			       0x5C, '_', 'S', 'B', '_'));
	aml_free(&a);

	/* 255 elements fit NumElements; 256 do not. */
	aml_init(&a);
	aml_package(&a);
	for (int i = 0; i < 255; i++)
		aml_int(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	aml_free(&a);
	aml_init(&a);
	aml_package(&a);
	for (int i = 0; i < 256; i++)
		aml_int(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), -E2BIG);
	aml_free(&a);
}

static void test_sticky_errors(void **state)
{
	(void)state;
	struct aml a;

	/* A Device inside a Package; later calls change nothing. */
	aml_init(&a);
	aml_package(&a);
	aml_device(&a, "DEV0");
	size_t len = a.len;
	aml_int(&a, 7);
	aml_end(&a);
	assert_int_equal(a.len, len);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* Unclosed construct */
	aml_init(&a);
	aml_scope(&a, "\\_SB");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* aml_end() with nothing open */
	aml_init(&a);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* Resource descriptor outside a template, integer inside one */
	aml_init(&a);
	aml_res_io(&a, 0x60, 0x60, 1, 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_restemplate(&a);
	aml_int(&a, 1);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* Name without a value; Name followed by a Device */
	aml_init(&a);
	aml_name(&a, "FOO");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_name(&a, "FOO");
	aml_device(&a, "BAR");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* Bad arguments */
	aml_init(&a);
	aml_method(&a, "M", 8, false);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_string(&a, "caf\xc3\xa9");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_restemplate(&a);
	aml_res_irq_noflags(&a, 16);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_name_eisaid(&a, "_HID", "PNPX501");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* Nesting deeper than AML_MAX_DEPTH */
	aml_init(&a);
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_package(&a);
	assert_int_equal(aml_finish(&a), -E2BIG);
	aml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglen_boundaries),
		cmocka_unit_test(test_pkglen_in_scope),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_com_device),
		cmocka_unit_test(test_resource_descriptors),
		cmocka_unit_test(test_empty_restemplate),
		cmocka_unit_test(test_package_method_string),
		cmocka_unit_test(test_nested_package_counts),
		cmocka_unit_test(test_sticky_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
