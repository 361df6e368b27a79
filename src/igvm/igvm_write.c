/*
 * Minimal IGVM writer: lays a file out the way the reference serializer
 * (microsoft/igvm igvm/src/lib.rs IgvmFile::serialize) does: fixed header
 * (v1 24 bytes / v2 32 bytes), variable headers each zero-padded to 8 bytes,
 * file data right after them, total_file_size and the CRC-32 of fixed header
 * (checksum 0) + variable headers patched last. It does not validate, so
 * tests can build broken files; `hvmm-igvm build` will grow from it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "igvm/igvm.h"

static void *grow(struct igvm_writer *w, uint8_t **buf, size_t *len, size_t *cap, size_t add)
{
	if (w->oom)
		return NULL;
	if (*len + add > *cap) {
		size_t n = *cap ? *cap : 256;
		while (n < *len + add)
			n *= 2;
		uint8_t *p = realloc(*buf, n);
		if (!p) {
			w->oom = true;
			return NULL;
		}
		*buf = p;
		*cap = n;
	}
	void *at = *buf + *len;
	*len += add;
	return at;
}

void igvm_writer_init(struct igvm_writer *w, uint32_t version, uint32_t arch)
{
	memset(w, 0, sizeof(*w));
	w->version = version;
	w->arch = arch;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void igvm_writer_header(struct igvm_writer *w, uint32_t type, const void *payload, uint32_t len)
{
	size_t padded = ((size_t)len + 7) & ~(size_t)7;
	uint8_t *p = grow(w, &w->hdrs, &w->hdrs_len, &w->hdrs_cap, 8 + padded);
	if (!p)
		return;
	put32(p, type);
	put32(p + 4, len);
	memcpy(p + 8, payload, len);
	memset(p + 8 + len, 0, padded - len);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

/* Offset of an identical blob already written, or append it. */
static uint32_t store_blob(struct igvm_writer *w, const uint8_t *data, size_t len)
{
	uint64_t h = fnv1a(data, len);
	size_t m = w->blob_slots - 1;
	if (w->blob_slots) {
		for (size_t i = h & m; w->blobs[i].len; i = (i + 1) & m)
			if (w->blobs[i].hash == h && w->blobs[i].len == len &&
			    !memcmp(w->data + w->blobs[i].rel, data, len))
				return w->blobs[i].rel;
	}
	uint32_t rel = (uint32_t)w->data_len;
	uint8_t *d = grow(w, &w->data, &w->data_len, &w->data_cap, len);
	if (!d)
		return 0;
	memcpy(d, data, len);
	if (2 * (w->n_blobs + 1) > w->blob_slots) { /* rehash at half load */
		size_t n = w->blob_slots ? 2 * w->blob_slots : 64;
		struct igvm_writer_blob *t = calloc(n, sizeof(*t));
		if (!t) {
			w->oom = true;
			return 0;
		}
		for (size_t i = 0; i < w->blob_slots; i++) {
			if (!w->blobs[i].len)
				continue;
			size_t j = w->blobs[i].hash & (n - 1);
			while (t[j].len)
				j = (j + 1) & (n - 1);
			t[j] = w->blobs[i];
		}
		free(w->blobs);
		w->blobs = t;
		w->blob_slots = n;
		m = n - 1;
	}
	size_t i = h & m;
	while (w->blobs[i].len)
		i = (i + 1) & m;
	w->blobs[i] = (struct igvm_writer_blob){ h, rel, (uint32_t)len };
	w->n_blobs++;
	return rel;
}

void igvm_writer_header_data(struct igvm_writer *w, uint32_t type, const void *payload,
			     uint32_t len, uint32_t offset_field, const void *data, size_t data_len)
{
	size_t pos = w->hdrs_len + 8 + offset_field;
	igvm_writer_header(w, type, payload, len);
	if (w->oom || data_len > UINT32_MAX) {
		w->oom = true;
		return;
	}
	uint32_t rel = data_len ? store_blob(w, data, data_len) : (uint32_t)w->data_len;
	if (w->n_fix == w->fix_cap) {
		size_t n = w->fix_cap ? 2 * w->fix_cap : 16;
		void *p = realloc(w->fix, n * sizeof(*w->fix));
		if (!p) {
			w->oom = true;
			return;
		}
		w->fix = p;
		w->fix_cap = n;
	}
	w->fix[w->n_fix++] = (struct igvm_writer_fixup){ pos, rel };
}

int igvm_writer_finish(struct igvm_writer *w, uint8_t **out, size_t *out_len)
{
	if (w->oom)
		return -ENOMEM;
	size_t fixed = w->version == IGVM_FORMAT_VERSION_2 ? sizeof(struct igvm_fixed_header_v2)
							   : sizeof(struct igvm_fixed_header);
	size_t base = fixed + w->hdrs_len, total = base + w->data_len;
	if (total > UINT32_MAX)
		return -EFBIG;
	for (size_t i = 0; i < w->n_fix; i++)
		if (w->fix[i].pos + 4 <= w->hdrs_len)
			put32(w->hdrs + w->fix[i].pos, (uint32_t)(base + w->fix[i].rel));
	uint8_t *f = calloc(1, total ? total : 1);
	if (!f)
		return -ENOMEM;
	put32(f, IGVM_MAGIC_VALUE);
	put32(f + 4, w->version);
	put32(f + 8, (uint32_t)fixed);
	put32(f + 12, (uint32_t)w->hdrs_len);
	put32(f + 16, (uint32_t)total);
	if (w->version == IGVM_FORMAT_VERSION_2) {
		put32(f + 24, w->arch);
		put32(f + 28, IGVM_PAGE_SIZE_4K);
	}
	if (w->hdrs_len)
		memcpy(f + fixed, w->hdrs, w->hdrs_len);
	if (w->data_len)
		memcpy(f + base, w->data, w->data_len);
	put32(f + 20, igvm_crc32(0, f, base));
	*out = f;
	*out_len = total;
	return 0;
}

void igvm_writer_free(struct igvm_writer *w)
{
	free(w->hdrs);
	free(w->data);
	free(w->fix);
	free(w->blobs);
	memset(w, 0, sizeof(*w));
}
