/*
 * Decompressors for kernel payloads and initramfs images, each a thin loop
 * over the real library (zlib, liblzma, liblz4, libzstd). The lz4 "legacy"
 * frame the kernel uses (`lz4 -l`: magic 0x184C2102, then blocks each
 * prefixed by a 32-bit compressed size, 8 MiB of output at most per block)
 * is not handled by liblz4's frame API, so the block loop is here.
 */
#include "x86/decompress.h"

#include <errno.h>
#include <lz4.h>
#include <stdbool.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

enum decomp_format decomp_detect(const uint8_t *b, size_t len)
{
	if (len >= 2 && b[0] == 0x1f && (b[1] == 0x8b || b[1] == 0x9e))
		return DECOMP_GZIP;
	if (len >= 6 && !memcmp(b, "\xfd" "7zXZ\0", 6))
		return DECOMP_XZ;
	if (len >= 3 && b[0] == 0x5d && b[1] == 0 && b[2] == 0)
		return DECOMP_LZMA;
	if (len >= 4 && !memcmp(b, "\x02\x21\x4c\x18", 4))
		return DECOMP_LZ4_LEGACY;
	if (len >= 4 && !memcmp(b, "\x28\xb5\x2f\xfd", 4))
		return DECOMP_ZSTD;
	if (len >= 3 && !memcmp(b, "BZh", 3))
		return DECOMP_BZIP2;
	if (len >= 4 && !memcmp(b, "\x89LZO", 4))
		return DECOMP_LZO;
	return DECOMP_NONE;
}

const char *decomp_name(enum decomp_format f)
{
	static const char *const names[] = {
		"none", "gzip", "xz", "lzma", "lz4", "zstd", "bzip2", "lzo",
	};
	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}

/* Decoder working memory a file may ask for (xz/lzma dictionaries). */
#define DECOMP_MEMLIMIT (256ULL << 20)

/* Growable output buffer capped at max. */
struct obuf {
	uint8_t *p;
	size_t len, cap, max;
};

static int obuf_reserve(struct obuf *o, size_t extra)
{
	if (extra > o->max || o->len > o->max - extra)
		return -EFBIG;
	size_t need = o->len + extra;
	if (need <= o->cap)
		return 0;
	size_t cap = o->cap ? o->cap : (1 << 20);
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > o->max)
		cap = o->max;
	uint8_t *p = realloc(o->p, cap);
	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

/* Room to offer a streaming decoder: grow by a chunk, at least 1 byte. */
static int obuf_grow_chunk(struct obuf *o)
{
	size_t chunk = o->cap ? o->cap : (4 << 20);
	if (chunk > o->max - o->len)
		chunk = o->max - o->len;
	if (chunk == 0)
		return -EFBIG;
	int ret = obuf_reserve(o, chunk);
	if (ret == -EFBIG && o->cap > o->len)
		return 0;
	return ret;
}

static int gunzip(const uint8_t *in, size_t inlen, struct obuf *o, size_t *consumed)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	int ret = 0;
	size_t done_in = 0;
	for (;;) {
		if (o->len == o->cap && (ret = obuf_grow_chunk(o)) < 0)
			break;
		size_t in_chunk = inlen - done_in > UINT32_MAX ? UINT32_MAX : inlen - done_in;
		size_t out_chunk = o->cap - o->len > UINT32_MAX ? UINT32_MAX : o->cap - o->len;
		z.next_in = (Bytef *)(in + done_in);
		z.avail_in = (uInt)in_chunk;
		z.next_out = o->p + o->len;
		z.avail_out = (uInt)out_chunk;
		int zr = inflate(&z, Z_NO_FLUSH);
		done_in += in_chunk - z.avail_in;
		o->len += out_chunk - z.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_BUF_ERROR && z.avail_out != 0) {
			ret = -EINVAL; /* truncated input */
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			ret = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
	}
	inflateEnd(&z);
	*consumed = done_in;
	return ret;
}

static int unxz(const uint8_t *in, size_t inlen, struct obuf *o, size_t *consumed,
		bool alone)
{
	lzma_stream s = LZMA_STREAM_INIT;
	/* A hostile header can ask for a huge dictionary: cap the decoder. */
	lzma_ret lr = alone ? lzma_alone_decoder(&s, DECOMP_MEMLIMIT)
			    : lzma_stream_decoder(&s, DECOMP_MEMLIMIT, 0);
	if (lr != LZMA_OK)
		return -ENOMEM;
	int ret = 0;
	s.next_in = in;
	s.avail_in = inlen;
	for (;;) {
		if (o->len == o->cap && (ret = obuf_grow_chunk(o)) < 0)
			break;
		s.next_out = o->p + o->len;
		s.avail_out = o->cap - o->len;
		size_t before = s.avail_out;
		lr = lzma_code(&s, LZMA_FINISH);
		o->len += before - s.avail_out;
		if (lr == LZMA_STREAM_END)
			break;
		if (lr == LZMA_OK)
			continue;
		if (lr == LZMA_BUF_ERROR && s.avail_out == 0)
			continue;
		ret = lr == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
		break;
	}
	*consumed = inlen - s.avail_in;
	lzma_end(&s);
	return ret;
}

#define LZ4_LEGACY_MAGIC 0x184C2102u
#define LZ4_LEGACY_BLOCK (8u << 20)

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int unlz4_legacy(const uint8_t *in, size_t inlen, struct obuf *o,
			size_t *consumed)
{
	size_t pos = 4; /* magic checked by the caller */
	if (inlen < 4)
		return -EINVAL;
	while (inlen - pos >= 4) {
		uint32_t csize = le32(in + pos);
		if (csize == LZ4_LEGACY_MAGIC) { /* next frame of a concatenation */
			pos += 4;
			continue;
		}
		/*
		 * A block can't compress to more than LZ4_compressBound(8 MiB);
		 * anything larger is the end of the stream (e.g. the 4-byte size
		 * the kernel build appends, or a following archive).
		 */
		if (csize == 0 || csize > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
			break;
		if (csize > inlen - pos - 4)
			break; /* trailer or truncation; what was decoded stands */
		int ret = obuf_reserve(o, LZ4_LEGACY_BLOCK);
		if (ret == -EFBIG && o->max - o->len > 0)
			ret = obuf_reserve(o, o->max - o->len);
		if (ret < 0)
			return ret;
		size_t room = o->cap - o->len;
		int n = LZ4_decompress_safe((const char *)in + pos + 4,
					    (char *)o->p + o->len, (int)csize,
					    room > INT32_MAX ? INT32_MAX : (int)room);
		if (n < 0)
			return room < LZ4_LEGACY_BLOCK ? -EFBIG : -EINVAL;
		o->len += (size_t)n;
		pos += 4 + csize;
	}
	*consumed = pos;
	return o->len ? 0 : -EINVAL;
}

static int unzstd(const uint8_t *in, size_t inlen, struct obuf *o, size_t *consumed)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	if (!d)
		return -ENOMEM;
	ZSTD_initDStream(d);
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27); /* 128 MiB, the default */
	ZSTD_inBuffer ib = { in, inlen, 0 };
	int ret = 0;
	for (;;) {
		if (o->len == o->cap && (ret = obuf_grow_chunk(o)) < 0)
			break;
		ZSTD_outBuffer ob = { o->p + o->len, o->cap - o->len, 0 };
		size_t zr = ZSTD_decompressStream(d, &ob, &ib);
		o->len += ob.pos;
		if (ZSTD_isError(zr)) {
			ret = -EINVAL;
			break;
		}
		if (zr == 0)
			break; /* frame complete */
		if (ib.pos == ib.size && ob.pos < ob.size) {
			ret = -EINVAL; /* truncated */
			break;
		}
	}
	*consumed = ib.pos;
	ZSTD_freeDStream(d);
	return ret;
}

int decomp_stream(enum decomp_format f, const uint8_t *in, size_t inlen,
		  size_t max_out, uint8_t **out, size_t *outlen, size_t *consumed)
{
	struct obuf o = { .max = max_out };
	size_t used = 0;
	int ret;

	switch (f) {
	case DECOMP_GZIP:
		ret = gunzip(in, inlen, &o, &used);
		break;
	case DECOMP_XZ:
		ret = unxz(in, inlen, &o, &used, false);
		break;
	case DECOMP_LZMA:
		ret = unxz(in, inlen, &o, &used, true);
		break;
	case DECOMP_LZ4_LEGACY:
		ret = unlz4_legacy(in, inlen, &o, &used);
		break;
	case DECOMP_ZSTD:
		ret = unzstd(in, inlen, &o, &used);
		break;
	default:
		ret = -ENOTSUP;
		break;
	}
	if (ret < 0) {
		free(o.p);
		return ret;
	}
	*out = o.p;
	*outlen = o.len;
	*consumed = used;
	return 0;
}
