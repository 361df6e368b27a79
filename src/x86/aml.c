/*
 * AML byte-code builder: encodings from ACPI 6.4 section 20.2 (AML grammar:
 * PkgLength, NameString, integer and string constants, Scope, Device,
 * Method, Name, Package, Buffer, Return) and section 6.4 (small and large
 * resource descriptors). Open constructs are kept on a small stack; their
 * PkgLength is inserted when they are closed, once the body length is known,
 * so every PkgLength has its shortest encoding as iasl would produce.
 */
#include "x86/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum aml_kind {
	AML_KIND_ROOT,
	AML_KIND_SCOPE, /* Scope, Device, Method: a TermList */
	AML_KIND_PACKAGE,
	AML_KIND_RESTEMPLATE,
};

/* Resource descriptor tags (ACPI 6.4 sections 6.4.2 and 6.4.3). */
#define AML_RES_IRQ_NOFLAGS 0x22 /* small item 0x04, length 2 */
#define AML_RES_IRQ 0x23         /* small item 0x04, length 3 */
#define AML_RES_IO 0x47          /* small item 0x08, length 7 */
#define AML_RES_END_TAG 0x79     /* small item 0x0F, length 1 */
#define AML_RES_MEMORY32_FIXED 0x86
#define AML_RES_DWORD_ADDRESS 0x87
#define AML_RES_WORD_ADDRESS 0x88
#define AML_RES_EXT_INTERRUPT 0x89
#define AML_RES_QWORD_ADDRESS 0x8A

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

void aml_set_error(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

int aml_finish(struct aml *a)
{
	if (!a->err && (a->depth || a->want_value))
		a->err = -EINVAL;
	return a->err;
}

/* Makes room for n more bytes; false (error recorded) when that fails. */
static bool reserve(struct aml *a, size_t n)
{
	if (a->err)
		return false;
	if (n > AML_MAX_BYTES - a->len) {
		aml_set_error(a, -E2BIG);
		return false;
	}
	if (a->len + n <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	uint8_t *nb = realloc(a->buf, cap);
	if (!nb) {
		aml_set_error(a, -ENOMEM);
		return false;
	}
	a->buf = nb;
	a->cap = cap;
	return true;
}

static void emit(struct aml *a, const void *data, size_t n)
{
	if (!n || !reserve(a, n))
		return;
	memcpy(a->buf + a->len, data, n);
	a->len += n;
}

static void emit8(struct aml *a, uint8_t v)
{
	emit(a, &v, 1);
}

/* Little-endian, n bytes of v. */
static void emit_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	emit(a, b, n);
}

static void insert(struct aml *a, size_t pos, const void *data, size_t n)
{
	if (!reserve(a, n))
		return;
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, data, n);
	a->len += n;
}

void aml_raw(struct aml *a, const void *data, size_t len)
{
	emit(a, data, len);
}

int aml_pkglen_encode(size_t body_len, uint8_t out[4])
{
	/* The encoded length counts the PkgLength bytes themselves. */
	static const size_t max[4] = { 0x3F, 0xFFF, 0xFFFFF, AML_PKGLEN_MAX };
	for (unsigned n = 1; n <= 4; n++) {
		if (body_len > max[n - 1] - n)
			continue;
		size_t v = body_len + n;
		if (n == 1) {
			out[0] = (uint8_t)v;
			return 1;
		}
		/* Byte 0: bits 7-6 count of following bytes, 3-0 low nibble. */
		out[0] = (uint8_t)(((n - 1) << 6) | (v & 0x0F));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
		return (int)n;
	}
	return -E2BIG;
}

/* Shortest ComputationalData encoding of v; returns its length. */
static size_t int_encode(uint64_t v, uint8_t out[9])
{
	unsigned n;

	if (v == 0) {
		out[0] = AML_ZERO_OP;
		return 1;
	}
	if (v == 1) {
		out[0] = AML_ONE_OP;
		return 1;
	}
	if (v == UINT64_MAX) {
		out[0] = AML_ONES_OP;
		return 1;
	}
	if (v <= 0xFF) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xFFFF) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xFFFFFFFF) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (unsigned i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

static struct aml_open *top(struct aml *a)
{
	return a->depth ? &a->open[a->depth - 1] : NULL;
}

static unsigned top_kind(struct aml *a)
{
	return a->depth ? a->open[a->depth - 1].kind : AML_KIND_ROOT;
}

/*
 * Called before a data object (integer, string, buffer, package, name
 * reference): counts Package elements and satisfies a pending Name/Return.
 */
static bool data_term(struct aml *a)
{
	if (a->err)
		return false;
	unsigned k = top_kind(a);
	if (k == AML_KIND_RESTEMPLATE) {
		aml_set_error(a, -EINVAL);
		return false;
	}
	if (k == AML_KIND_PACKAGE && !a->want_value) {
		struct aml_open *o = top(a);
		if (o->count == 255) { /* NumElements is one byte */
			aml_set_error(a, -E2BIG);
			return false;
		}
		o->count++;
	}
	a->want_value = false;
	return true;
}

/* Called before a named object or statement: only valid in a TermList. */
static bool stmt_term(struct aml *a)
{
	if (a->err)
		return false;
	unsigned k = top_kind(a);
	if (a->want_value || (k != AML_KIND_ROOT && k != AML_KIND_SCOPE)) {
		aml_set_error(a, -EINVAL);
		return false;
	}
	return true;
}

static void push(struct aml *a, unsigned kind)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		aml_set_error(a, -E2BIG);
		return;
	}
	a->open[a->depth++] = (struct aml_open){ .start = a->len, .kind = kind };
}

static bool is_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_lead_char(c) || (c >= '0' && c <= '9');
}

/* Length of the NameSeg at p (up to '.' or NUL), or 0 when invalid. */
static size_t seg_len(const char *p)
{
	size_t n = 0;
	if (!is_lead_char(p[0]))
		return 0;
	while (p[n] && p[n] != '.') {
		if (n == 4 || !is_name_char(p[n]))
			return 0;
		n++;
	}
	return n;
}

static void emit_namestring(struct aml *a, const char *path)
{
	const char *p = path;
	size_t nseg = 0;

	if (!path || !*path) {
		aml_set_error(a, -EINVAL);
		return;
	}
	/* Validate before emitting anything. */
	if (*p == '\\')
		p++;
	else
		while (*p == '^')
			p++;
	const char *segs = p;
	while (*p) {
		size_t n = seg_len(p);
		if (!n) {
			aml_set_error(a, -EINVAL);
			return;
		}
		nseg++;
		p += n;
		if (*p == '.') {
			p++;
			if (!*p) { /* trailing dot */
				aml_set_error(a, -EINVAL);
				return;
			}
		}
	}
	if (nseg > 255) {
		aml_set_error(a, -EINVAL);
		return;
	}

	emit(a, path, (size_t)(segs - path)); /* '\' or '^'... */
	if (nseg == 0)
		emit8(a, AML_ZERO_OP); /* NullName */
	else if (nseg == 2)
		emit8(a, AML_DUAL_NAME_PREFIX);
	else if (nseg > 2) {
		emit8(a, AML_MULTI_NAME_PREFIX);
		emit8(a, (uint8_t)nseg);
	}
	for (p = segs; *p;) {
		size_t n = seg_len(p);
		char seg[4] = { '_', '_', '_', '_' };
		memcpy(seg, p, n);
		emit(a, seg, 4);
		p += n;
		if (*p == '.')
			p++;
	}
}

void aml_namestring(struct aml *a, const char *path)
{
	if (data_term(a))
		emit_namestring(a, path);
}

void aml_name(struct aml *a, const char *name)
{
	if (!stmt_term(a))
		return;
	emit8(a, AML_NAME_OP);
	emit_namestring(a, name);
	a->want_value = true;
}

void aml_name_int(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	aml_int(a, v);
}

void aml_name_string(struct aml *a, const char *name, const char *s)
{
	aml_name(a, name);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	aml_name(a, name);
	aml_eisaid(a, id);
}

void aml_int(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	if (data_term(a))
		emit(a, b, int_encode(v, b));
}

void aml_string(struct aml *a, const char *s)
{
	if (!data_term(a))
		return;
	if (!s) {
		aml_set_error(a, -EINVAL);
		return;
	}
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] > 0x7F) {
			aml_set_error(a, -EINVAL);
			return;
		}
	}
	emit8(a, AML_STRING_PREFIX);
	emit(a, s, n + 1); /* with the NUL */
}

int aml_eisaid_encode(const char *id, uint32_t *out)
{
	uint32_t v = 0;

	if (!id || strlen(id) != 7)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
	for (int i = 3; i < 7; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return -EINVAL;

	/* Three 5-bit letters ('A' = 1) then four nibbles, big-endian. */
	uint32_t be = (uint32_t)(id[0] - 0x40) << 26 |
		      (uint32_t)(id[1] - 0x40) << 21 |
		      (uint32_t)(id[2] - 0x40) << 16;
	for (int i = 3; i < 7; i++) {
		unsigned d = id[i] <= '9' ? (unsigned)(id[i] - '0')
					  : (unsigned)(id[i] - 'A' + 10);
		be |= (uint32_t)d << (4 * (6 - i));
	}
	/* Stored as bytes in that order, read as a little-endian DWord. */
	for (int i = 0; i < 4; i++)
		v |= ((be >> (24 - 8 * i)) & 0xFF) << (8 * i);
	*out = v;
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;

	if (!data_term(a))
		return;
	if (aml_eisaid_encode(id, &v) < 0) {
		aml_set_error(a, -EINVAL);
		return;
	}
	emit8(a, AML_DWORD_PREFIX);
	emit_le(a, v, 4);
}

/* Inserts the PkgLength for the body that runs from start to the end. */
static void close_pkglen(struct aml *a, size_t start)
{
	uint8_t pl[4];
	int n = aml_pkglen_encode(a->len - start, pl);
	if (n < 0)
		aml_set_error(a, n);
	else
		insert(a, start, pl, (size_t)n);
}

/* Buffer: inserts BufferSize (the bytes from start) and the PkgLength. */
static void close_buffer(struct aml *a, size_t start)
{
	uint8_t b[9];
	insert(a, start, b, int_encode(a->len - start, b));
	close_pkglen(a, start);
}

void aml_buffer(struct aml *a, const void *data, size_t len)
{
	if (!data_term(a))
		return;
	emit8(a, AML_BUFFER_OP);
	size_t start = a->len;
	emit(a, data, len);
	close_buffer(a, start);
}

void aml_scope(struct aml *a, const char *path)
{
	if (!stmt_term(a))
		return;
	emit8(a, AML_SCOPE_OP);
	push(a, AML_KIND_SCOPE);
	emit_namestring(a, path);
}

void aml_device(struct aml *a, const char *name)
{
	if (!stmt_term(a))
		return;
	emit8(a, AML_EXT_OP_PREFIX);
	emit8(a, AML_DEVICE_OP);
	push(a, AML_KIND_SCOPE);
	emit_namestring(a, name);
}

void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (!stmt_term(a))
		return;
	if (nargs > 7) {
		aml_set_error(a, -EINVAL);
		return;
	}
	emit8(a, AML_METHOD_OP);
	push(a, AML_KIND_SCOPE);
	emit_namestring(a, name);
	/* MethodFlags: bits 2-0 ArgCount, bit 3 SerializeFlag, 7-4 SyncLevel */
	emit8(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_package(struct aml *a)
{
	if (!data_term(a))
		return;
	emit8(a, AML_PACKAGE_OP);
	push(a, AML_KIND_PACKAGE);
	emit8(a, 0); /* NumElements, patched by aml_end() */
}

void aml_restemplate(struct aml *a)
{
	if (!data_term(a))
		return;
	emit8(a, AML_BUFFER_OP);
	push(a, AML_KIND_RESTEMPLATE);
}

void aml_end(struct aml *a)
{
	if (a->err)
		return;
	if (!a->depth || a->want_value) {
		aml_set_error(a, -EINVAL);
		return;
	}
	struct aml_open o = a->open[--a->depth];
	uint8_t sum = 0;

	switch (o.kind) {
	case AML_KIND_PACKAGE:
		a->buf[o.start] = (uint8_t)o.count;
		close_pkglen(a, o.start);
		break;
	case AML_KIND_RESTEMPLATE:
		emit8(a, AML_RES_END_TAG);
		if (a->err)
			return;
		for (size_t i = o.start; i < a->len; i++)
			sum = (uint8_t)(sum + a->buf[i]);
		emit8(a, (uint8_t)-sum);
		close_buffer(a, o.start);
		break;
	default:
		close_pkglen(a, o.start);
		break;
	}
}

void aml_return(struct aml *a)
{
	if (!stmt_term(a))
		return;
	emit8(a, AML_RETURN_OP);
	a->want_value = true;
}

void aml_return_int(struct aml *a, uint64_t v)
{
	aml_return(a);
	aml_int(a, v);
}

void aml_sta(struct aml *a, uint8_t status)
{
	aml_method(a, "_STA", 0, false);
	aml_return_int(a, status);
	aml_end(a);
}

/* Resource descriptors may only appear directly in a ResourceTemplate. */
static bool res_term(struct aml *a)
{
	if (a->err)
		return false;
	if (top_kind(a) != AML_KIND_RESTEMPLATE) {
		aml_set_error(a, -EINVAL);
		return false;
	}
	return true;
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len)
{
	if (!res_term(a))
		return;
	emit8(a, AML_RES_IO);
	emit8(a, 0x01); /* Information: bit 0 = 16-bit decode */
	emit_le(a, min, 2);
	emit_le(a, max, 2);
	emit8(a, align);
	emit8(a, len);
}

void aml_res_irq_noflags(struct aml *a, unsigned irq)
{
	if (!res_term(a))
		return;
	if (irq > 15) {
		aml_set_error(a, -EINVAL);
		return;
	}
	emit8(a, AML_RES_IRQ_NOFLAGS);
	emit_le(a, 1u << irq, 2);
}

void aml_res_irq(struct aml *a, unsigned irq, bool level, bool active_low,
		 bool shared)
{
	if (!res_term(a))
		return;
	if (irq > 15) {
		aml_set_error(a, -EINVAL);
		return;
	}
	emit8(a, AML_RES_IRQ);
	emit_le(a, 1u << irq, 2);
	/* Bit 0 _HE (1 = edge), bit 3 _LL (1 = active low), bit 4 _SHR. */
	emit8(a, (uint8_t)((level ? 0 : 0x01) | (active_low ? 0x08 : 0) |
			   (shared ? 0x10 : 0)));
}

void aml_res_interrupt(struct aml *a, uint32_t gsi, bool level,
		       bool active_low, bool shared)
{
	if (!res_term(a))
		return;
	emit8(a, AML_RES_EXT_INTERRUPT);
	emit_le(a, 6, 2); /* flags, count, one DWord */
	/* Bit 0 consumer, bit 1 _HE (1 = edge), bit 2 _LL, bit 3 _SHR. */
	emit8(a, (uint8_t)(0x01 | (level ? 0 : 0x02) | (active_low ? 0x04 : 0) |
			   (shared ? 0x08 : 0)));
	emit8(a, 1);
	emit_le(a, gsi, 4);
}

void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, bool rw)
{
	if (!res_term(a))
		return;
	emit8(a, AML_RES_MEMORY32_FIXED);
	emit_le(a, 9, 2);
	emit8(a, rw ? 0x01 : 0x00);
	emit_le(a, base, 4);
	emit_le(a, len, 4);
}

void aml_res_address(struct aml *a, unsigned bits, const struct aml_addr *r)
{
	uint8_t tag;

	if (!res_term(a))
		return;
	switch (bits) {
	case 16: tag = AML_RES_WORD_ADDRESS; break;
	case 32: tag = AML_RES_DWORD_ADDRESS; break;
	case 64: tag = AML_RES_QWORD_ADDRESS; break;
	default:
		aml_set_error(a, -EINVAL);
		return;
	}
	const uint64_t v[5] = { r->granularity, r->min, r->max, r->translation,
				r->len };
	unsigned n = bits / 8;
	for (unsigned i = 0; i < 5; i++) {
		if (bits < 64 && v[i] >> bits) {
			aml_set_error(a, -EINVAL);
			return;
		}
	}
	emit8(a, tag);
	emit_le(a, 3 + 5 * n, 2); /* bytes after the length field */
	emit8(a, r->space);
	emit8(a, r->flags);
	emit8(a, r->type_flags);
	for (unsigned i = 0; i < 5; i++)
		emit_le(a, v[i], n);
}

static void res_fixed_range(struct aml *a, unsigned bits, uint8_t space,
			    uint8_t type_flags, uint64_t base, uint64_t len)
{
	if (!len || base + (len - 1) < base) {
		aml_set_error(a, -EINVAL);
		return;
	}
	struct aml_addr r = {
		.space = space,
		.flags = AML_ADDR_MIN_FIXED | AML_ADDR_MAX_FIXED,
		.type_flags = type_flags,
		.min = base,
		.max = base + (len - 1),
		.len = len,
	};
	aml_res_address(a, bits, &r);
}

void aml_res_dword_memory(struct aml *a, uint32_t base, uint32_t len,
			  uint8_t type_flags)
{
	res_fixed_range(a, 32, AML_ADDR_SPACE_MEMORY, type_flags, base, len);
}

void aml_res_qword_memory(struct aml *a, uint64_t base, uint64_t len,
			  uint8_t type_flags)
{
	res_fixed_range(a, 64, AML_ADDR_SPACE_MEMORY, type_flags, base, len);
}

void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	if (max < min) {
		aml_set_error(a, -EINVAL);
		return;
	}
	res_fixed_range(a, 16, AML_ADDR_SPACE_BUS_NUMBER, 0, min,
			(uint64_t)max - min + 1);
}
