/*
 * hvmm-igvm: inspect and check IGVM files (the format OpenHCL and confidential
 * VM firmware ship in; microsoft/igvm). `verify FILE` runs the validator of
 * src/igvm (every rule of the reference parser and a few more) and exits 0
 * (valid), 1 (invalid, one line on stderr naming the header and the rule) or
 * 2 (usage or I/O error). `dump FILE` validates, then prints every header.
 * `build -o OUT --elf FILE [...]` makes a NATIVE x64 file from a freestanding
 * ELF payload (igvm_build_native_elf; with --vsm a VSM_ISOLATION file whose
 * VTL 2 starts there, for hvmm --vtl2; --relocatable adds OpenHCL's relocation
 * headers); `build -o OUT --kernel FILE
 * [--initrd FILE] [--cmdline STR]` one that boots Linux (igvm_build_linux).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "igvm/igvm.h"

#define IGVM_FILE_MAX (4ull << 30) /* sizes in the format are u32 */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvmm-igvm verify FILE   check FILE; exit 0 valid, 1 invalid, 2 error\n"
		"       hvmm-igvm dump FILE     check FILE and print every header\n"
		"       hvmm-igvm build -o OUT --elf FILE [--pt-gpa GPA] [--cmdline-gpa GPA]\n"
		"                 [--rsp VALUE] [--rsi VALUE] [--param NAME@GPA[:PAGES]]... [--vsm]\n"
		"                               NATIVE x64 IGVM from a freestanding ELF64 payload\n"
		"                 [--relocatable [--reloc-min GPA] [--reloc-max GPA] [--reloc-align N]]\n"
		"                               (--vsm: VSM_ISOLATION, the payload runs in VTL 2;\n"
		"                               --relocatable: with relocation headers as OpenHCL's)\n"
"       hvmm-igvm build -o OUT --kernel FILE [--initrd FILE] [--cmdline STR]\n"
"                               NATIVE x64 IGVM booting Linux like hvmm -k/-r\n"
		"       hvmm-igvm --help\n");
}

/* Read the whole file; returns NULL with a message on stderr. */
static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "hvmm-igvm: cannot open '%s': %s\n", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(fp), &st) || !S_ISREG(st.st_mode) || (unsigned long long)st.st_size >= IGVM_FILE_MAX) {
		fprintf(stderr, "hvmm-igvm: '%s': not a regular file under 4 GiB\n", path);
		fclose(fp);
		return NULL;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, fp) != n) {
		fprintf(stderr, "hvmm-igvm: cannot read '%s'\n", path);
		free(buf);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	*len = n;
	return buf;
}

static int parse_u64(const char *flag, const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "hvmm-igvm: invalid %s '%s'\n", flag, s);
		return -1;
	}
	*v = x;
	return 0;
}

/* NAME@GPA[:PAGES], e.g. memory_map@0x12000:2 */
static int parse_param(const char *s, struct igvm_build_opts *o)
{
	char name[32];
	const char *at = strchr(s, '@');
	if (!at || (size_t)(at - s) >= sizeof(name)) {
		fprintf(stderr, "hvmm-igvm: invalid --param '%s': expected NAME@GPA[:PAGES]\n", s);
		return -1;
	}
	memcpy(name, s, (size_t)(at - s));
	name[at - s] = 0;
	struct igvm_build_param p = { .type = igvm_param_type(name) };
	if (!p.type) {
		fprintf(stderr, "hvmm-igvm: unknown parameter '%s' (vp_count, memory_map, cmdline, "
			"mmio_ranges, madt, srat, slit, pptt, device_tree, environment_info)\n", name);
		return -1;
	}
	char *end;
	errno = 0;
	p.gpa = strtoull(at + 1, &end, 0);
	unsigned long pages = 1;
	if (!errno && *end == ':')
		pages = strtoul(end + 1, &end, 0);
	if (errno || end == at + 1 || *end || pages == 0 || pages > 4096 || p.gpa & 0xfff) {
		fprintf(stderr, "hvmm-igvm: invalid --param '%s': GPA must be 4 KiB aligned, "
			"PAGES 1..4096\n", s);
		return -1;
	}
	p.pages = (uint32_t)pages;
	if (o->nparams >= IGVM_BUILD_MAX_PARAMS) {
		fprintf(stderr, "hvmm-igvm: at most %u --param\n", IGVM_BUILD_MAX_PARAMS);
		return -1;
	}
	o->params[o->nparams++] = p;
	return 0;
}

static int write_out(const char *out, uint8_t *file, size_t flen)
{
	FILE *fp = fopen(out, "wb");
	if (!fp || fwrite(file, 1, flen, fp) != flen || fclose(fp)) {
		fprintf(stderr, "hvmm-igvm: cannot write '%s': %s\n", out, strerror(errno));
		free(file);
		return 2;
	}
	free(file);
	return 0;
}

/* build -o OUT --kernel FILE [--initrd FILE] [--cmdline STR] */
static int build_linux(const char *out, const char *kernel, const char *initrd, const char *cmdline)
{
	struct igvm_linux_opts o = { .cmdline = cmdline };
	uint8_t *k = read_file(kernel, &o.kernel_len), *i = NULL;
	if (!k || (initrd && !(i = read_file(initrd, &o.initrd_len)))) {
		free(k);
		return 2;
	}
	o.kernel = k;
	o.initrd = i;
	uint8_t *file;
	size_t flen;
	char err[256];
	int r = igvm_build_linux(&o, &file, &flen, err, sizeof(err));
	free(k);
	free(i);
	if (r) {
		fprintf(stderr, "hvmm-igvm: %s: %s\n", kernel, err);
		return r == -ENOMEM ? 2 : 1;
	}
	return write_out(out, file, flen);
}

static int cmd_build(int argc, char **argv)
{
	const char *out = NULL, *elf = NULL, *kernel = NULL, *initrd = NULL, *cmdline = NULL;
	struct igvm_build_opts o = { 0 };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--vsm") || !strcmp(a, "--relocatable")) {
			*(a[2] == 'v' ? &o.vsm : &o.relocatable) = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "hvmm-igvm: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "-o"))
			out = v;
		else if (!strcmp(a, "--elf"))
			elf = v;
		else if (!strcmp(a, "--kernel"))
			kernel = v;
		else if (!strcmp(a, "--initrd"))
			initrd = v;
		else if (!strcmp(a, "--cmdline"))
			cmdline = v;
		else if (!strcmp(a, "--param")) {
			if (parse_param(v, &o))
				return 2;
		} else if ((!strcmp(a, "--pt-gpa") && parse_u64(a, v, &o.pt_gpa)) ||
			 (!strcmp(a, "--cmdline-gpa") && parse_u64(a, v, &o.cmdline_gpa)) ||
			 (!strcmp(a, "--rsp") && parse_u64(a, v, &o.rsp)) ||
			 (!strcmp(a, "--rsi") && parse_u64(a, v, &o.rsi)) ||
			 (!strcmp(a, "--reloc-min") && parse_u64(a, v, &o.reloc_min)) ||
			 (!strcmp(a, "--reloc-max") && parse_u64(a, v, &o.reloc_max)) ||
			 (!strcmp(a, "--reloc-align") && parse_u64(a, v, &o.reloc_align)))
			return 2;
		else if (strcmp(a, "--param") && strcmp(a, "--pt-gpa") && strcmp(a, "--cmdline-gpa") && strcmp(a, "--rsp") &&
			 strcmp(a, "--rsi") && strcmp(a, "--reloc-min") && strcmp(a, "--reloc-max") &&
			 strcmp(a, "--reloc-align")) {
			fprintf(stderr, "hvmm-igvm: unknown build option '%s'\n", a);
			return 2;
		}
	}
	if (out && kernel && !elf && !o.nparams && !o.pt_gpa && !o.cmdline_gpa && !o.rsp && !o.rsi &&
	    !o.vsm && !o.relocatable)
		return build_linux(out, kernel, initrd, cmdline);
	if (!out || !elf || kernel || initrd || cmdline) {
		fprintf(stderr, "hvmm-igvm: build needs -o OUT and either --elf FILE [ELF options] "
			"or --kernel FILE [--initrd FILE] [--cmdline STR]\n");
		return 2;
	}
	size_t len;
	uint8_t *payload = read_file(elf, &len);
	if (!payload)
		return 2;
	o.elf = payload;
	o.elf_len = len;
	uint8_t *file;
	size_t flen;
	char err[256];
	int r = igvm_build_native_elf(&o, &file, &flen, err, sizeof(err));
	free(payload);
	if (r) {
		fprintf(stderr, "hvmm-igvm: %s: %s\n", elf, err);
		return r == -EINVAL ? 1 : 2;
	}
	return write_out(out, file, flen);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "build"))
		return cmd_build(argc, argv);
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[1], "verify") && strcmp(argv[1], "dump"))) {
		usage(stderr);
		return 2;
	}
	size_t len;
	uint8_t *buf = read_file(argv[2], &len);
	if (!buf)
		return 2;
	struct igvm_file f;
	char err[256];
	int r = igvm_open(&f, buf, len, err, sizeof(err));
	if (r) {
		fprintf(stderr, "hvmm-igvm: %s: %s\n", argv[2], err);
		free(buf);
		return r == -EINVAL ? 1 : 2;
	}
	if (!strcmp(argv[1], "dump"))
		igvm_dump(&f, stdout);
	else
		printf("%s: valid IGVM v%u, %u headers\n", argv[2], f.format_version, f.n_headers);
	free(buf);
	return 0;
}
