/*
 * libFuzzer harness: the IGVM parser/validator (src/igvm) on arbitrary files.
 * The total size and the CRC-32 would stop almost every mutation at the
 * fixed header, so when the input's last byte is odd the harness sets
 * total_file_size to the input size and recomputes the CRC over the
 * (clamped) header range before parsing. An accepted file is iterated and dumped, which
 * exercises every decoder on validated data. Inputs starting with an ELF
 * magic also go through igvm_build_native_elf (the ELF reader of `build`).
 * Accepted files are also loaded by igvm_load (src/core/igvm_load.c) into
 * 16 MiB of fake guest RAM, once for NATIVE, once with vtl2 (VSM) and once
 * with vtl2 relocated to absolute=(last byte & 7) * 2 MiB; ELF inputs are
 * also built --vsm --relocatable. Inputs starting with "PTRL" are raw page
 * tables for igvm_pt_relocate (byte 4: region pages, 5: CR3 page, 6: offset
 * in 2 MiB, 7 bit 0: plus 4 KiB). Seeds: tests/fuzz/regressions/
 * fuzz_igvm (written by test_igvm with HVMM_IGVM_SEED_DIR).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/igvm_load.h"
#include "igvm/igvm.h"

#define FUZZ_RAM (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	if (size >= 32 && (data[size - 1] & 1)) {
		uint32_t fixed = buf[4] == 2 ? 32 : 24, off, len, zero = 0, total = (uint32_t)size;
		memcpy(buf + 16, &total, 4);
		memcpy(&off, buf + 8, 4);
		memcpy(&len, buf + 12, 4);
		if (off <= size && len <= size - off) {
			memcpy(buf + 20, &zero, 4);
			uint32_t crc = igvm_crc32(igvm_crc32(0, buf, fixed), buf + off, len);
			memcpy(buf + 20, &crc, 4);
		}
	}
	struct igvm_file f;
	char err[256];
	if (igvm_open(&f, buf, size, err, sizeof(err)) == 0) {
		struct igvm_iter it = { 0 };
		struct igvm_hdr h;
		uint32_t n = 0;
		while (igvm_next(&f, &it, &h))
			n++;
		if (n != f.n_headers)
			abort();
		if (devnull)
			igvm_dump(&f, devnull);
		/* The loader over fake RAM: every GPA and size is checked, one-line errors. */
		static uint8_t *ram;
		static struct gmem mem;
		if (!ram && (ram = malloc(FUZZ_RAM)))
			gmem_init_fake(&mem, ram, FUZZ_RAM);
		if (ram) {
			struct igvm_load_config c = { .nvcpus = 2, .cmdline = "console=ttyS0" };
			struct igvm_boot b;
			for (int vtl2 = 0; vtl2 < 3; vtl2++) {
				c.vtl2 = vtl2 > 0;
				c.reloc = vtl2 == 2 ? IGVM_RELOC_ABSOLUTE : IGVM_RELOC_DISABLE;
				c.reloc_addr = (uint64_t)(data[size - 1] & 7) << 21;
				if (igvm_load(&mem, buf, size, &c, &b, err, sizeof(err)) &&
				    (!err[0] || strchr(err, '\n')))
					abort();
			}
		}
	} else if (!err[0] || strchr(err, '\n')) {
		abort(); /* every rejection is exactly one line */
	}
	if (size >= 4 && !memcmp(data, "\x7f" "ELF", 4)) {
		struct igvm_build_opts o = { .elf = buf, .elf_len = size };
		uint8_t *out;
		size_t out_len;
		if (igvm_build_native_elf(&o, &out, &out_len, err, sizeof(err)) == 0)
			free(out);
		o.vsm = o.relocatable = true;
		if (igvm_build_native_elf(&o, &out, &out_len, err, sizeof(err)) == 0)
			free(out);
	}
	if (size >= 8 && !memcmp(data, "PTRL", 4)) {
		uint64_t gpa = 0x400000, pages = 1 + data[4] % 16, have = (size - 8) / 4096;
		uint64_t used = have < pages ? (have ? have : 1) : pages;
		uint8_t *pt = calloc(pages, 4096);
		if (pt) {
			memcpy(pt, data + 8, size - 8 < pages * 4096 ? size - 8 : pages * 4096);
			struct igvm_reloc_range r = { 0, 0x400000 };
			uint64_t off = (uint64_t)data[6] << 21 | (data[7] & 1 ? 0x1000 : 0), nu;
			if (igvm_pt_relocate(pt, gpa, pages * 4096, used * 4096,
					     gpa + (data[5] % used) * 4096, &r, 1, off, &nu, err,
					     sizeof(err)) ? !err[0] || strchr(err, '\n') : nu > pages * 4096)
				abort();
			free(pt);
		}
	}
	free(buf);
	return 0;
}
