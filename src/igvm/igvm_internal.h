/*
 * Internal interface between the IGVM parser (igvm_parse.c: one header at a
 * time) and the validator (igvm_validate.c: rules across headers). Not for
 * users of src/igvm; see igvm.h.
 */
#ifndef HVMM_IGVM_INTERNAL_H
#define HVMM_IGVM_INTERNAL_H

#include "igvm/igvm.h"

static inline uint16_t igvm_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t igvm_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t igvm_le64(const uint8_t *p)
{
	return (uint64_t)igvm_le32(p) | (uint64_t)igvm_le32(p + 4) << 32;
}

/* Format "header N (TYPE): msg" (or "fixed header: msg" when h is NULL). */
void igvm_errf(char *err, size_t errlen, const struct igvm_hdr *h, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Parse the fixed header and check the CRC; fills f. 0 or -EINVAL. */
int igvm_parse_fixed(struct igvm_file *f, const uint8_t *buf, size_t size, char *err, size_t errlen);

/*
 * Decode the variable header at file offset *cursor (index `index`) into *h
 * and check every rule that needs only this header, the file and the
 * platforms already in f. Advances *cursor past the (padded) entry.
 * Returns 0 or -EINVAL with err set. With check == false it only decodes
 * (for igvm_next on an already validated file).
 */
int igvm_decode(const struct igvm_file *f, uint32_t *cursor, uint32_t index,
		struct igvm_hdr *h, bool check, char *err, size_t errlen);

#endif
