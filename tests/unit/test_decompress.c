/*
 * Unit tests: host-side decompression round trips for every supported
 * format, trailing data, truncated and corrupt input, and the output cap.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "compress_util.h"

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len);
	uint32_t x = 12345;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		/* compressible but not trivial */
		p[i] = (i % 64 < 32) ? (uint8_t)(i / 64) : (uint8_t)(x >> 24);
	}
	return p;
}

static const enum decomp_format formats[] = {
	DECOMP_GZIP, DECOMP_XZ, DECOMP_ZSTD, DECOMP_LZ4_LEGACY,
};

static void test_roundtrip(void **state)
{
	(void)state;
	/* > 8 MiB so lz4 uses more than one legacy block */
	const size_t len = (9u << 20) + 12345;
	uint8_t *data = pattern(len);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		size_t clen;
		uint8_t *c = test_compress(formats[i], data, len, &clen);
		assert_non_null(c);
		assert_int_equal(decomp_detect(c, clen), formats[i]);
		/* trailing junk after the stream, as in a bzImage or initrd */
		uint8_t *c2 = malloc(clen + 8);
		memcpy(c2, c, clen);
		memcpy(c2 + clen, "\xff\xff\xff\x7f" "TAIL", 8);
		uint8_t *out = NULL;
		size_t outlen = 0, used = 0;
		int ret = decomp_stream(formats[i], c2, clen + 8, 64u << 20, &out, &outlen,
					&used);
		if (ret != 0)
			fail_msg("%s: ret %d", decomp_name(formats[i]), ret);
		assert_int_equal(outlen, len);
		assert_memory_equal(out, data, len);
		if (formats[i] != DECOMP_LZ4_LEGACY)
			assert_int_equal(used, clen);
		free(out);

		/* output cap: a "bomb" larger than allowed fails cleanly */
		ret = decomp_stream(formats[i], c, clen, len / 2, &out, &outlen, &used);
		if (ret != -EFBIG)
			fail_msg("%s: cap not enforced (ret %d)", decomp_name(formats[i]), ret);

		/* truncated */
		if (formats[i] != DECOMP_LZ4_LEGACY) {
			ret = decomp_stream(formats[i], c, clen / 2, 64u << 20, &out,
					    &outlen, &used);
			assert_true(ret < 0);
		}
		free(c);
		free(c2);
	}
	free(data);
}

static void test_corrupt(void **state)
{
	(void)state;
	const size_t len = 100000;
	uint8_t *data = pattern(len);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		size_t clen;
		uint8_t *c = test_compress(formats[i], data, len, &clen);
		assert_non_null(c);
		for (size_t j = 16; j < clen; j += 97)
			c[j] ^= 0x5a;
		uint8_t *out = NULL;
		size_t outlen, used;
		int ret = decomp_stream(formats[i], c, clen, 64u << 20, &out, &outlen, &used);
		/* must fail, or at least not produce the original data */
		if (ret == 0) {
			assert_false(outlen == len && !memcmp(out, data, len));
			free(out);
		}
		free(c);
	}
	free(data);
}

static void test_detect(void **state)
{
	(void)state;
	assert_int_equal(decomp_detect((const uint8_t *)"\x1f\x8b\x08", 3), DECOMP_GZIP);
	assert_int_equal(decomp_detect((const uint8_t *)"BZh9", 4), DECOMP_BZIP2);
	assert_int_equal(decomp_detect((const uint8_t *)"\x89LZO", 4), DECOMP_LZO);
	assert_int_equal(decomp_detect((const uint8_t *)"070701", 6), DECOMP_NONE);
	assert_int_equal(decomp_detect((const uint8_t *)"\x1f", 1), DECOMP_NONE);
	uint8_t *out;
	size_t a, b;
	/* regression (found by fuzz_decompress): input shorter than the magic */
	assert_int_equal(decomp_stream(DECOMP_LZ4_LEGACY, (const uint8_t *)"\x02\x21", 2,
				       100, &out, &a, &b), -EINVAL);
	assert_int_equal(decomp_stream(DECOMP_BZIP2, (const uint8_t *)"BZh9", 4, 100, &out,
				       &a, &b), -ENOTSUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_detect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
