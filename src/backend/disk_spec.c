/*
 * Parser for OpenVMM's disk string (openvmm_entry cli_args.rs `DiskCli`):
 * `KIND[,flag][,opt=value]...` with KIND one of file:PATH[;direct]
 * [;create=SIZE], a bare PATH, mem:SIZE, memdiff:KIND; flags ro, dvd (implies
 * ro), vtl2, uh, uh-nvme; options on=CTRL, lun=N, nsid=N, pcie_port=P.
 * OpenVMM's rules: uh and uh-nvme exclude each other, uh is not allowed with
 * vtl2, pcie_port not with uh, vtl2 or dvd. Only syntax is checked here.
 */
#include "backend/disk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"

static int kind_parse(const char *s, size_t len, struct disk_kind_spec *out,
		      unsigned depth, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	char buf[DISK_PATH_MAX + 64];
	if (len == 0) {
		snprintf(err, errlen, "empty disk kind");
		return -EINVAL;
	}
	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "disk kind too long");
		return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';

	if (!strncmp(buf, "mem:", 4)) {
		out->kind = DISK_KIND_MEM;
		if (parse_size(buf + 4, &out->mem_size) < 0 || out->mem_size == 0 ||
		    out->mem_size % DISK_SECTOR_SIZE) {
			snprintf(err, errlen, "mem: needs a size that is a non-zero multiple of "
				 "%u bytes, got '%s'", DISK_SECTOR_SIZE, buf + 4);
			return -EINVAL;
		}
		return 0;
	}
	if (!strncmp(buf, "memdiff:", 8)) {
		if (depth + 1 >= DISK_MAX_NESTING) {
			snprintf(err, errlen, "memdiff: nested too deeply");
			return -EINVAL;
		}
		out->kind = DISK_KIND_MEMDIFF;
		out->base = calloc(1, sizeof(*out->base));
		if (!out->base) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		int ret = kind_parse(s + 8, len - 8, out->base, depth + 1, err, errlen);
		if (ret < 0) {
			disk_kind_spec_free(out);
			return ret;
		}
		return 0;
	}
	const char *known[] = { "sql:", "sqldiff:", "autocache:", "blob:", "crypt:",
				"prwrap:", "delay:" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!strncmp(buf, known[i], strlen(known[i]))) {
			snprintf(err, errlen, "disk kind '%.*s' is not supported by hvmm "
				 "(file:, mem:, memdiff: are)", (int)strlen(known[i]) - 1, known[i]);
			return -EINVAL;
		}
	}
	out->kind = DISK_KIND_FILE;
	char *path = buf;
	if (!strncmp(buf, "file:", 5))
		path += 5;
	/* file:PATH;direct;create=SIZE */
	char *opt = strchr(path, ';');
	if (opt)
		*opt++ = '\0';
	if (!*path) {
		snprintf(err, errlen, "disk file path is empty");
		return -EINVAL;
	}
	size_t plen = strlen(path);
	if (plen >= sizeof(out->path)) {
		snprintf(err, errlen, "disk file path too long");
		return -EINVAL;
	}
	memcpy(out->path, path, plen + 1);
	while (opt && *opt) {
		char *next = strchr(opt, ';');
		if (next)
			*next++ = '\0';
		if (!strcmp(opt, "direct")) {
			out->direct = true;
		} else if (!strncmp(opt, "create=", 7)) {
			if (parse_size(opt + 7, &out->create_size) < 0 || out->create_size == 0 ||
			    out->create_size % DISK_SECTOR_SIZE) {
				snprintf(err, errlen, "create= needs a size that is a non-zero "
					 "multiple of %u bytes, got '%s'", DISK_SECTOR_SIZE, opt + 7);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen, "unknown file disk option '%s' (direct, create=SIZE)",
				 opt);
			return -EINVAL;
		}
		opt = next;
	}
	return 0;
}

int disk_kind_spec_parse(const char *s, struct disk_kind_spec *out, char *err,
			 size_t errlen)
{
	return kind_parse(s, strlen(s), out, 0, err, errlen);
}

void disk_kind_spec_free(struct disk_kind_spec *k)
{
	if (!k || !k->base)
		return;
	disk_kind_spec_free(k->base);
	free(k->base);
	k->base = NULL;
}

void disk_cli_spec_free(struct disk_cli_spec *s)
{
	if (s)
		disk_kind_spec_free(&s->kind);
}

static int parse_index(const char *v, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 0);
	if (!*v || *end || errno || n < 0 || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

int disk_cli_spec_parse(const char *s, struct disk_cli_spec *out, char *err,
			size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->lun = out->nsid = -1;
	const char *comma = strchr(s, ',');
	size_t klen = comma ? (size_t)(comma - s) : strlen(s);
	int ret = kind_parse(s, klen, &out->kind, 0, err, errlen);
	if (ret < 0)
		return ret;
	const char *p = comma ? comma + 1 : NULL;
	while (p) {
		const char *next = strchr(p, ',');
		size_t n = next ? (size_t)(next - p) : strlen(p);
		char item[128];
		if (n == 0 || n >= sizeof(item)) {
			snprintf(err, errlen, n ? "disk option too long" : "empty disk option");
			goto bad;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		char *val = strchr(item, '=');
		if (val)
			*val++ = '\0';
		if (!val && !strcmp(item, "ro")) {
			out->ro = true;
		} else if (!val && !strcmp(item, "dvd")) {
			out->dvd = out->ro = true;
		} else if (!val && !strcmp(item, "vtl2")) {
			out->vtl2 = true;
		} else if (!val && !strcmp(item, "uh")) {
			out->uh = true;
		} else if (!val && !strcmp(item, "uh-nvme")) {
			out->uh_nvme = true;
		} else if (val && !strcmp(item, "on")) {
			snprintf(out->on, sizeof(out->on), "%s", val);
		} else if (val && !strcmp(item, "pcie_port")) {
			snprintf(out->pcie_port, sizeof(out->pcie_port), "%s", val);
		} else if (val && !strcmp(item, "lun")) {
			if (parse_index(val, 254, &out->lun) < 0) {
				snprintf(err, errlen, "lun=%s: expected 0-254", val);
				goto bad;
			}
		} else if (val && !strcmp(item, "nsid")) {
			if (parse_index(val, 0xFFFFFFFE, &out->nsid) < 0 || out->nsid == 0) {
				snprintf(err, errlen, "nsid=%s: expected 1-4294967294", val);
				goto bad;
			}
		} else {
			snprintf(err, errlen, "unknown disk option '%s' (flags: ro, dvd, vtl2, uh, "
				 "uh-nvme; options: on=, lun=, nsid=, pcie_port=)", item);
			goto bad;
		}
		p = next ? next + 1 : NULL;
	}
	if (out->uh && out->uh_nvme) {
		snprintf(err, errlen, "disk flags uh and uh-nvme exclude each other");
		goto bad;
	}
	if (out->uh && out->vtl2) {
		snprintf(err, errlen, "disk flag uh is not allowed with vtl2");
		goto bad;
	}
	if (out->pcie_port[0] && (out->uh || out->vtl2 || out->dvd)) {
		snprintf(err, errlen, "pcie_port= is not allowed with uh, vtl2 or dvd");
		goto bad;
	}
	return 0;
bad:
	disk_cli_spec_free(out);
	return -EINVAL;
}
