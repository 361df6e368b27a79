/*
 * IGVM parse + load timing (issue 7's benchmark): reads FILE into memory,
 * then times, RUNS times each, (a) reading the file from the page cache
 * (the limit: pread of every byte into a buffer), (b) igvm_open (CRC,
 * header walk, every validation rule), (c) igvm_load into fake guest RAM of
 * MEM MiB (page data copied, parameters filled). Prints one line per phase
 * with the median and the MB/s over the file's size. Used by bench/igvm.sh.
 *
 * usage: igvm_load_bench FILE [MEM_MIB=512] [RUNS=7]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/gmem.h"
#include "core/igvm_load.h"
#include "igvm/igvm.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s FILE [MEM_MIB] [RUNS]\n", argv[0]);
		return 2;
	}
	unsigned long mem_mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 512;
	int runs = argc > 3 ? atoi(argv[3]) : 7;
	if (mem_mib < 16 || mem_mib > 65536 || runs < 1 || runs > 100) {
		fprintf(stderr, "igvm_load_bench: MEM_MIB 16..65536, RUNS 1..100\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0) {
		fprintf(stderr, "igvm_load_bench: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *buf = malloc(len);
	uint64_t ram_size = (uint64_t)mem_mib << 20;
	uint8_t *ram = aligned_alloc(4096, ram_size);
	double *t = calloc((size_t)runs, sizeof(double));
	if (!buf || !ram || !t) {
		fprintf(stderr, "igvm_load_bench: out of memory\n");
		return 2;
	}
	memset(ram, 0, ram_size); /* fault the fake RAM in before timing */
	struct gmem mem;
	gmem_init_fake(&mem, ram, ram_size);
	double mb = (double)len / 1e6;
	char err[256];

	for (int i = 0; i < runs; i++) {
		double t0 = now();
		size_t off = 0;
		while (off < len) {
			ssize_t n = pread(fd, buf + off, len - off, (off_t)off);
			if (n <= 0) {
				fprintf(stderr, "igvm_load_bench: read: %s\n", strerror(errno));
				return 2;
			}
			off += (size_t)n;
		}
		t[i] = now() - t0;
	}
	double read_s = median(t, runs);

	struct igvm_file f;
	for (int i = 0; i < runs; i++) {
		double t0 = now();
		if (igvm_open(&f, buf, len, err, sizeof(err)) < 0) {
			fprintf(stderr, "igvm_load_bench: %s\n", err);
			return 1;
		}
		t[i] = now() - t0;
	}
	double parse_s = median(t, runs);

	struct igvm_load_config cfg = { .nvcpus = 1, .cmdline = "console=ttyS0" };
	for (int i = 0; i < runs; i++) {
		struct igvm_boot b;
		double t0 = now();
		if (igvm_load(&mem, buf, len, &cfg, &b, err, sizeof(err)) < 0) {
			fprintf(stderr, "igvm_load_bench: %s\n", err);
			return 1;
		}
		t[i] = now() - t0;
	}
	double load_s = median(t, runs);

	printf("file %.1f MB, %u headers, %d runs (medians)\n", mb, f.n_headers, runs);
	printf("read      %8.2f ms  %8.0f MB/s\n", read_s * 1e3, mb / read_s);
	printf("parse     %8.2f ms  %8.0f MB/s\n", parse_s * 1e3, mb / parse_s);
	printf("load      %8.2f ms  %8.0f MB/s  (igvm_load: validates again, then copies)\n",
	       load_s * 1e3, mb / load_s);
	printf("RESULT read_ms=%.3f parse_ms=%.3f load_ms=%.3f\n", read_s * 1e3, parse_s * 1e3,
	       load_s * 1e3);
	free(t);
	free(ram);
	free(buf);
	close(fd);
	return 0;
}
