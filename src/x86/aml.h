/*
 * AML byte-code builder (ACPI 6.4 chapter 20, "ACPI Machine Language
 * Specification", and 6.4.2/6.4.3 for resource descriptors). Code builds a
 * definition block body into a growable buffer by calling one function per
 * construct; nested constructs (Scope, Device, Method, Package, Buffer,
 * ResourceTemplate) are opened by their function and closed by aml_end(),
 * which back-fills the PkgLength with the shortest encoding. Any error
 * (allocation, size limit, bad name, misuse such as a Device inside a
 * Package) is recorded once in a sticky error and later calls become no-ops,
 * so callers emit a whole table and check aml_finish() once at the end.
 *
 * Example, a COM port:
 *
 *	aml_scope(a, "\\_SB");
 *	aml_device(a, "COM1");
 *	aml_name_eisaid(a, "_HID", "PNP0501");
 *	aml_name_int(a, "_UID", 1);
 *	aml_sta(a, AML_STA_DEFAULT);
 *	aml_name(a, "_CRS");
 *	aml_restemplate(a);
 *	aml_res_io(a, 0x3F8, 0x3F8, 0, 8);
 *	aml_res_irq_noflags(a, 4);
 *	aml_end(a);	// ResourceTemplate
 *	aml_end(a);	// Device
 *	aml_end(a);	// Scope
 *
 * Integers are encoded for 64-bit definition blocks (revision 2 or later).
 * Not thread safe; one builder per thread.
 */
#ifndef HVMM_X86_AML_H
#define HVMM_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes (ACPI 6.4 section 20.3), spec names. */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX 0x0E
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2E
#define AML_MULTI_NAME_PREFIX 0x2F
#define AML_EXT_OP_PREFIX 0x5B
#define AML_ROOT_CHAR 0x5C
#define AML_PARENT_PREFIX_CHAR 0x5E
#define AML_RETURN_OP 0xA4
#define AML_ONES_OP 0xFF
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */

/* Largest PkgLength value (28 bits, four bytes). */
#define AML_PKGLEN_MAX 0x0FFFFFFFu
/* Hard cap on a builder's size; far above any table we generate. */
#define AML_MAX_BYTES (16u << 20)
/* Deepest nesting of open constructs. */
#define AML_MAX_DEPTH 16

/* _STA bits (ACPI 6.4 section 6.3.7). */
#define AML_STA_PRESENT 0x01
#define AML_STA_ENABLED 0x02
#define AML_STA_SHOWN 0x04 /* shown in UI */
#define AML_STA_FUNCTIONING 0x08
#define AML_STA_DEFAULT 0x0F

struct aml_open {
	size_t start;    /* where the PkgLength will be inserted */
	unsigned count;  /* elements emitted so far (Package only) */
	unsigned kind;   /* enum aml_kind in aml.c */
};

struct aml {
	uint8_t *buf;  /* owned; malloc'd */
	size_t len;    /* bytes emitted */
	size_t cap;    /* bytes allocated */
	int err;       /* first error as -errno, 0 if none (sticky) */
	bool want_value; /* a Name() or Return() awaits its operand */
	unsigned depth;
	struct aml_open open[AML_MAX_DEPTH];
};

/* An empty builder at the root of a definition block. Cannot fail. */
void aml_init(struct aml *a);
/* Frees the buffer; the builder may be aml_init()ed again. */
void aml_free(struct aml *a);
/*
 * 0 when everything emitted is valid and every construct was closed; else
 * the sticky error (-ENOMEM, -E2BIG, -EINVAL) or -EINVAL for open
 * constructs. a->buf/a->len hold the byte code when this returns 0.
 */
int aml_finish(struct aml *a);
/* Records err (a -errno) unless an earlier error is already recorded. */
void aml_set_error(struct aml *a, int err);

/*
 * PkgLength for a construct whose body (everything after the PkgLength) is
 * body_len bytes: writes 1-4 bytes to out and returns how many, or -E2BIG
 * when body_len + encoding exceeds AML_PKGLEN_MAX.
 */
int aml_pkglen_encode(size_t body_len, uint8_t out[4]);

/*
 * Compresses a 7-character EISA id ("PNP0501": three letters A-Z, four
 * upper-case hex digits) into the 32-bit value EISAID() produces:
 * "PNP0501" -> 0x0105D041. 0 or -EINVAL.
 */
int aml_eisaid_encode(const char *id, uint32_t *out);

/*
 * Names. A path is "\" for the root, an optional "\" or a run of "^"
 * followed by dot-separated segments of 1-4 characters ("\_SB.COM1",
 * "^^PCI0", "_HID"); segments shorter than 4 are padded with '_' ("_SB" is
 * "_SB_"). Characters are A-Z, 0-9 and '_' (first not a digit); anything
 * else is -EINVAL.
 */
void aml_namestring(struct aml *a, const char *path); /* a reference */
/* Name (name, <object>): the next emitted term is the object. */
void aml_name(struct aml *a, const char *name);
void aml_name_int(struct aml *a, const char *name, uint64_t v);
void aml_name_string(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);

/*
 * Data objects. Integers use the shortest encoding: ZeroOp, OneOp, OnesOp
 * (all 64 bits set), then Byte/Word/DWord/QWordPrefix by magnitude.
 * Strings are 7-bit ASCII without NULs (-EINVAL otherwise).
 */
void aml_int(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
void aml_eisaid(struct aml *a, const char *id); /* always a DWordConst */
void aml_buffer(struct aml *a, const void *data, size_t len);

/* Constructs closed by aml_end(). */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *name);
/* nargs 0-7; serialized selects Serialized (sync level 0). */
void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized);
/* Elements are the terms emitted until aml_end() (at most 255). */
void aml_package(struct aml *a);
/*
 * A Buffer of resource descriptors (aml_res_*); aml_end() appends the End
 * Tag with a checksum making the descriptor bytes sum to zero.
 */
void aml_restemplate(struct aml *a);
/* Closes the innermost open construct. */
void aml_end(struct aml *a);

/* Statements (inside a Method). */
void aml_return(struct aml *a); /* Return (<next term>) */
void aml_return_int(struct aml *a, uint64_t v);
/* Method (_STA, 0, NotSerialized) { Return (status) } */
void aml_sta(struct aml *a, uint8_t status);

/* Appends bytes as they are: for opcodes this builder does not cover yet. */
void aml_raw(struct aml *a, const void *data, size_t len);

/*
 * Resource descriptors, only directly inside aml_restemplate().
 */
/* IO (Decode16, min, max, align, len) */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len);
/* IRQNoFlags () {irq}: edge, active high, exclusive; irq 0-15. */
void aml_res_irq_noflags(struct aml *a, unsigned irq);
/* IRQ (Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) {irq}; 0-15. */
void aml_res_irq(struct aml *a, unsigned irq, bool level, bool active_low,
		 bool shared);
/* Interrupt (ResourceConsumer, ...) {gsi}: extended, for any 32-bit GSI. */
void aml_res_interrupt(struct aml *a, uint32_t gsi, bool level,
		       bool active_low, bool shared);
/* Memory32Fixed (ReadWrite|ReadOnly, base, len) */
void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, bool rw);

/* Address space descriptors (ACPI 6.4 section 6.4.3.5). */
#define AML_ADDR_SPACE_MEMORY 0
#define AML_ADDR_SPACE_IO 1
#define AML_ADDR_SPACE_BUS_NUMBER 2

/* General flags */
#define AML_ADDR_CONSUMER 0x01 /* ResourceConsumer (else producer) */
#define AML_ADDR_SUB_DECODE 0x02
#define AML_ADDR_MIN_FIXED 0x04
#define AML_ADDR_MAX_FIXED 0x08

/* Memory type-specific flags */
#define AML_MEM_RW 0x01
#define AML_MEM_NON_CACHEABLE 0x00
#define AML_MEM_CACHEABLE 0x02
#define AML_MEM_WRITE_COMBINING 0x04
#define AML_MEM_PREFETCHABLE 0x06

struct aml_addr {
	uint8_t space;      /* AML_ADDR_SPACE_* */
	uint8_t flags;      /* AML_ADDR_* general flags */
	uint8_t type_flags; /* AML_MEM_* for memory; ISA/entire range for IO */
	uint64_t granularity, min, max, translation, len;
};

/*
 * WordSpace/DWordSpace/QWordSpace descriptor; bits is 16, 32 or 64 and every
 * value must fit in it (-EINVAL otherwise).
 */
void aml_res_address(struct aml *a, unsigned bits, const struct aml_addr *r);
/* DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, ...). */
void aml_res_dword_memory(struct aml *a, uint32_t base, uint32_t len,
			  uint8_t type_flags);
void aml_res_qword_memory(struct aml *a, uint64_t base, uint64_t len,
			  uint8_t type_flags);
/* WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, ...). */
void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max);

#endif
