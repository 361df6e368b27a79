/*
 * A small on-disk cache of decompressed kernel payloads, so a bzImage is
 * unpacked once per content rather than once per boot. Entries are keyed by
 * a 64-bit FNV-1a hash and the length of the compressed payload; a cache
 * that cannot be read or written is simply not used.
 */
#ifndef HVMM_X86_KCACHE_H
#define HVMM_X86_KCACHE_H

#include <stddef.h>
#include <stdint.h>

uint64_t kcache_hash(const uint8_t *data, size_t len);

/*
 * Loads entry (key, srclen) from dir if present and exactly `want` bytes
 * long (want 0: any length up to max). 0 with *out malloc'd, or -ENOENT.
 */
int kcache_load(const char *dir, uint64_t key, size_t srclen, size_t want,
		size_t max, uint8_t **out, size_t *len);

/* Stores an entry atomically (temporary file + rename). 0 or -errno. */
int kcache_store(const char *dir, uint64_t key, size_t srclen, const uint8_t *data,
		 size_t len);

/*
 * The cache directory: $HVMM_CACHE_DIR (empty disables), else
 * $XDG_CACHE_HOME/hvmm, else $HOME/.cache/hvmm; created if missing.
 * NULL when there is none. The string is static.
 */
const char *kcache_default_dir(void);

#endif
