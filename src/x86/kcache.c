/*
 * On-disk cache of decompressed kernel payloads (see kcache.h). Files are
 * named vmlinux-<hash>-<compressed length>.elf; a truncated or foreign file
 * fails the length check and is ignored (the loader re-validates the ELF).
 */
#include "x86/kcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t kcache_hash(const uint8_t *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void entry_path(char *buf, size_t n, const char *dir, uint64_t key,
		       size_t srclen)
{
	snprintf(buf, n, "%s/vmlinux-%016llx-%zu.elf", dir, (unsigned long long)key,
		 srclen);
}

int kcache_load(const char *dir, uint64_t key, size_t srclen, size_t want,
		size_t max, uint8_t **out, size_t *len)
{
	char path[PATH_MAX];
	entry_path(path, sizeof(path), dir, key, srclen);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (want && (size_t)st.st_size != want) || (size_t)st.st_size > max) {
		close(fd);
		return -ENOENT;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n);
	size_t done = 0;
	while (buf && done < n) {
		ssize_t r = read(fd, buf + done, n - done);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	close(fd);
	if (!buf || done != n) {
		free(buf);
		return -ENOENT;
	}
	*out = buf;
	*len = n;
	return 0;
}

int kcache_store(const char *dir, uint64_t key, size_t srclen, const uint8_t *data,
		 size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	entry_path(path, sizeof(path), dir, key, srclen);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, data + done, len - done);
		if (w <= 0) {
			int e = w < 0 ? -errno : -EIO;
			close(fd);
			unlink(tmp);
			return e;
		}
		done += (size_t)w;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

const char *kcache_default_dir(void)
{
	static char dir[PATH_MAX];
	const char *e = getenv("HVMM_CACHE_DIR");
	if (e) {
		if (!*e)
			return NULL;
		snprintf(dir, sizeof(dir), "%s", e);
	} else if ((e = getenv("XDG_CACHE_HOME")) && *e) {
		snprintf(dir, sizeof(dir), "%s/hvmm", e);
	} else if ((e = getenv("HOME")) && *e) {
		snprintf(dir, sizeof(dir), "%s/.cache/hvmm", e);
	} else {
		return NULL;
	}
	/* mkdir -p of the last two components is enough for these layouts */
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		mkdir(parent, 0755);
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return NULL;
	return access(dir, W_OK | R_OK | X_OK) == 0 ? dir : NULL;
}
