/* Test helper: compress buffers in every format hvmm's loader unpacks. */
#ifndef HVMM_TESTS_COMPRESS_UTIL_H
#define HVMM_TESTS_COMPRESS_UTIL_H

#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "x86/decompress.h"

/* Returns a malloc'd compressed copy of in, or NULL. */
static inline uint8_t *test_compress(enum decomp_format f, const uint8_t *in,
				     size_t len, size_t *outlen)
{
	size_t cap = len + len / 2 + 65536;
	uint8_t *out = malloc(cap);
	if (!out)
		return NULL;
	switch (f) {
	case DECOMP_GZIP: {
		z_stream z;
		memset(&z, 0, sizeof(z));
		deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
		z.next_in = (Bytef *)in;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		deflate(&z, Z_FINISH);
		*outlen = z.total_out;
		deflateEnd(&z);
		return out;
	}
	case DECOMP_XZ: {
		size_t pos = 0;
		if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &pos,
					    cap) != LZMA_OK)
			break;
		*outlen = pos;
		return out;
	}
	case DECOMP_ZSTD: {
		size_t n = ZSTD_compress(out, cap, in, len, 3);
		if (ZSTD_isError(n))
			break;
		*outlen = n;
		return out;
	}
	case DECOMP_LZ4_LEGACY: {
		const size_t block = 8u << 20;
		size_t pos = 4;
		memcpy(out, "\x02\x21\x4c\x18", 4);
		for (size_t off = 0; off < len; off += block) {
			size_t n = len - off < block ? len - off : block;
			int c = LZ4_compress_default((const char *)in + off,
						     (char *)out + pos + 4, (int)n,
						     (int)(cap - pos - 4));
			if (c <= 0)
				goto fail;
			out[pos] = (uint8_t)c;
			out[pos + 1] = (uint8_t)(c >> 8);
			out[pos + 2] = (uint8_t)(c >> 16);
			out[pos + 3] = (uint8_t)(c >> 24);
			pos += 4 + (size_t)c;
		}
		*outlen = pos;
		return out;
	}
	default:
		break;
	}
fail:
	free(out);
	return NULL;
}

#endif
