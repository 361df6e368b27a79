/*
 * Host-side decompression of the formats Linux uses for its bzImage payload
 * and initramfs: gzip, xz, lzma, lz4 (the kernel's "legacy" frame), zstd.
 * Decompressing on the host means the guest starts at the kernel's own entry
 * and gets a plain cpio: on PVM that saves minutes of emulated ring-0 code,
 * on hardware a measurable slice of boot.
 */
#ifndef HVMM_X86_DECOMPRESS_H
#define HVMM_X86_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

enum decomp_format {
	DECOMP_NONE,
	DECOMP_GZIP,
	DECOMP_XZ,
	DECOMP_LZMA,
	DECOMP_LZ4_LEGACY,
	DECOMP_ZSTD,
	DECOMP_BZIP2,  /* recognised, not supported */
	DECOMP_LZO,    /* recognised, not supported */
};

/* Format named by the magic at the start of buf (DECOMP_NONE if unknown). */
enum decomp_format decomp_detect(const uint8_t *buf, size_t len);
const char *decomp_name(enum decomp_format f);

/*
 * Decompresses one stream of format f from in[0..inlen). On success returns 0
 * with *out malloc'd (caller frees), *outlen its size and *consumed the input
 * bytes the stream used (trailing bytes may follow, e.g. concatenated
 * archives). Output beyond max_out fails with -EFBIG, so a hostile file
 * cannot exhaust host memory. Corrupt input: -EINVAL; unsupported format:
 * -ENOTSUP.
 */
int decomp_stream(enum decomp_format f, const uint8_t *in, size_t inlen,
		  size_t max_out, uint8_t **out, size_t *outlen, size_t *consumed);

#endif
