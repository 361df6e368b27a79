/*
 * libFuzzer harness: the command line, serial-spec and disk-spec parsers on
 * arbitrary arguments (NUL-separated in the input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/chardev.h"
#include "backend/disk.h"
#include "core/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) /* --help and --version print; keep the fuzzer's output clean */
		quiet = freopen("/dev/null", "w", stdout) != NULL;
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = 0;
	char *argv[33] = { "hvmm" };
	int argc = 1;
	for (char *p = buf; p < buf + size && argc < 32; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	struct hvmm_config cfg;
	char err[512];
	cli_parse(argc, argv, &cfg, err, sizeof(err));
	cli_free(&cfg);
	struct chardev_spec spec;
	chardev_spec_parse(buf, &spec, err, sizeof(err));
	struct disk_cli_spec disk;
	if (disk_cli_spec_parse(buf, &disk, err, sizeof(err)) == 0)
		disk_cli_spec_free(&disk);
	free(buf);
	return 0;
}
