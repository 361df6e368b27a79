/*
 * hvmm-igvm: inspect and check IGVM files (the format OpenHCL and confidential
 * VM firmware ship in; microsoft/igvm). `verify FILE` runs the validator of
 * src/igvm (every rule of the reference parser and a few more) and exits 0
 * (valid), 1 (invalid, one line on stderr naming the header and the rule) or
 * 2 (usage or I/O error). `dump FILE` validates, then prints every header.
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

int main(int argc, char **argv)
{
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
