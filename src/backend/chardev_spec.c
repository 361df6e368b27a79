/*
 * Parser for OpenVMM's serial string (`--com1` .. `--com4`,
 * `--vmbus-com1-serial`; openvmm_entry cli_args.rs `SerialConfigCli`):
 * comma-separated `key[=value]` items whose first key picks the backend.
 * OpenVMM silently ignores options it does not know; we reject them so a
 * typo is reported instead of ignored. A value runs to the next comma, so
 * paths cannot contain commas (as in OpenVMM).
 */
#include "backend/chardev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CHARDEV_SPEC_USAGE                                                \
	"none, console, stderr, file=PATH, listen=PATH, "                  \
	"listen=tcp:IP:PORT or term[=PROGRAM][,name=TITLE]"

__attribute__((format(printf, 3, 4))) static int
spec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* One `key[=value]` item, pointing into the caller's string. */
struct spec_item {
	const char *key;
	size_t keylen;
	const char *val; /* NULL when there is no '=' */
	size_t vallen;
};

static bool item_is(const struct spec_item *it, const char *key)
{
	return it->keylen == strlen(key) && !memcmp(it->key, key, it->keylen);
}

static int spec_copy(char *dst, size_t dstlen, const char *src, size_t len,
		     const char *what, char *err, size_t errlen)
{
	if (len >= dstlen)
		return spec_fail(err, errlen, "%s is too long (max %zu bytes)",
				 what, dstlen - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* Decimal 0..65535, digits only. */
static int spec_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;
	if (!len || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* "IP:PORT" or "[IPv6]:PORT", numeric only (like Rust's SocketAddr). */
static int spec_tcp(const char *s, size_t len, struct chardev_spec *out,
		    char *err, size_t errlen)
{
	char addr[64];
	const char *a, *p;
	size_t alen;

	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return spec_fail(err, errlen,
					 "bad tcp address '%.*s': missing ']'",
					 (int)len, s);
		a = s + 1;
		alen = (size_t)(close - a);
		if ((size_t)(close - s) + 1 >= len || close[1] != ':')
			return spec_fail(err, errlen,
					 "missing port in tcp address '%.*s' "
					 "(expected tcp:[IPv6]:PORT)",
					 (int)len, s);
		p = close + 2;
	} else {
		const char *colon = memrchr(s, ':', len);
		if (!colon)
			return spec_fail(err, errlen,
					 "missing port in tcp address '%.*s' "
					 "(expected tcp:IP:PORT)",
					 (int)len, s);
		a = s;
		alen = (size_t)(colon - s);
		p = colon + 1;
	}
	size_t plen = len - (size_t)(p - s);
	if (spec_port(p, plen, &out->tcp_port))
		return spec_fail(err, errlen,
				 "bad tcp port '%.*s' (expected 0-65535)",
				 (int)plen, p);
	if (alen >= sizeof(addr))
		return spec_fail(err, errlen, "bad tcp address '%.*s'",
				 (int)alen, a);
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	/* Like Rust's SocketAddr: IPv6 only in brackets, IPv4 only bare. */
	if (s[0] != '[' && inet_pton(AF_INET, addr, out->tcp_addr) == 1)
		out->tcp_family = AF_INET;
	else if (s[0] == '[' && inet_pton(AF_INET6, addr, out->tcp_addr) == 1)
		out->tcp_family = AF_INET6;
	else
		return spec_fail(err, errlen,
				 "bad tcp address '%s' (expected a numeric "
				 "IPv4 address or [IPv6] address)",
				 addr);
	return 0;
}

static int spec_listen(const struct spec_item *it, struct chardev_spec *out,
		       char *err, size_t errlen)
{
	if (!it->val || !it->vallen)
		return spec_fail(err, errlen,
				 "listen= needs a Unix socket path or "
				 "tcp:IP:PORT");
	if (it->vallen >= 4 && !memcmp(it->val, "tcp:", 4)) {
		out->backend = CHARDEV_LISTEN_TCP;
		return spec_tcp(it->val + 4, it->vallen - 4, out, err, errlen);
	}
	out->backend = CHARDEV_LISTEN_UNIX;
	/* The path must fit sockaddr_un.sun_path with its NUL. */
	if (it->vallen >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return spec_fail(err, errlen,
				 "listen= socket path is too long (max %zu "
				 "bytes)",
				 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return spec_copy(out->path, sizeof(out->path), it->val, it->vallen,
			 "listen= path", err, errlen);
}

static int spec_term_option(const struct spec_item *it,
			    struct chardev_spec *out, bool *have_name,
			    char *err, size_t errlen)
{
	if (!item_is(it, "name"))
		return spec_fail(err, errlen,
				 "unexpected option '%.*s' for 'term' "
				 "(only name=TITLE)",
				 (int)it->keylen, it->key);
	if (*have_name)
		return spec_fail(err, errlen, "duplicate option 'name'");
	if (!it->val || !it->vallen)
		return spec_fail(err, errlen, "name= needs a window title");
	*have_name = true;
	return spec_copy(out->title, sizeof(out->title), it->val, it->vallen,
			 "window title", err, errlen);
}

/* Split s at commas into items; returns the count or -1 on an empty item. */
static int spec_split(const char *s, struct spec_item *items, int max)
{
	int n = 0;
	for (;;) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (!len)
			return -1;
		if (n == max)
			return max + 1;
		const char *eq = memchr(s, '=', len);
		items[n].key = s;
		items[n].keylen = eq ? (size_t)(eq - s) : len;
		items[n].val = eq ? eq + 1 : NULL;
		items[n].vallen = eq ? len - (size_t)(eq + 1 - s) : 0;
		n++;
		if (!end)
			return n;
		s = end + 1;
	}
}

int chardev_spec_parse(const char *s, struct chardev_spec *out, char *err,
		       size_t errlen)
{
	struct spec_item items[4];
	const int max = (int)(sizeof(items) / sizeof(items[0]));

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return spec_fail(err, errlen,
				 "empty serial configuration (expected "
				 CHARDEV_SPEC_USAGE ")");
	int n = spec_split(s, items, max);
	if (n < 0)
		return spec_fail(err, errlen,
				 "empty item in serial configuration '%s'", s);
	if (n > max)
		return spec_fail(err, errlen,
				 "too many options in serial configuration "
				 "'%s'",
				 s);

	const struct spec_item *first = &items[0];
	int rc;
	if (item_is(first, "term")) {
		out->backend = CHARDEV_TERM;
		if (first->val && !first->vallen)
			return spec_fail(err, errlen,
					 "term= needs a program (or use plain "
					 "'term')");
		if (first->val) {
			rc = spec_copy(out->path, sizeof(out->path), first->val,
				       first->vallen, "terminal program", err,
				       errlen);
			if (rc)
				return rc;
		}
		bool have_name = false;
		for (int i = 1; i < n; i++) {
			rc = spec_term_option(&items[i], out, &have_name, err,
					      errlen);
			if (rc)
				return rc;
		}
		return 0;
	}

	if (item_is(first, "none") || item_is(first, "console") ||
	    item_is(first, "stderr")) {
		out->backend = item_is(first, "none")	 ? CHARDEV_NONE :
			       item_is(first, "console") ? CHARDEV_CONSOLE :
							   CHARDEV_STDERR;
		if (first->val)
			return spec_fail(err, errlen, "'%.*s' takes no value",
					 (int)first->keylen, first->key);
	} else if (item_is(first, "file")) {
		out->backend = CHARDEV_FILE;
		if (!first->val || !first->vallen)
			return spec_fail(err, errlen, "file= needs a path");
		rc = spec_copy(out->path, sizeof(out->path), first->val,
			       first->vallen, "file= path", err, errlen);
		if (rc)
			return rc;
	} else if (item_is(first, "listen")) {
		rc = spec_listen(first, out, err, errlen);
		if (rc)
			return rc;
	} else {
		return spec_fail(err, errlen,
				 "unknown serial backend '%.*s' (expected "
				 CHARDEV_SPEC_USAGE ")",
				 (int)first->keylen, first->key);
	}
	if (n > 1)
		return spec_fail(err, errlen,
				 "unexpected option '%.*s' for '%s'",
				 (int)items[1].keylen, items[1].key,
				 chardev_backend_name(out->backend));
	return 0;
}

const char *chardev_backend_name(enum chardev_backend b)
{
	switch (b) {
	case CHARDEV_NONE: return "none";
	case CHARDEV_CONSOLE: return "console";
	case CHARDEV_STDERR: return "stderr";
	case CHARDEV_FILE: return "file";
	case CHARDEV_LISTEN_UNIX: return "listen";
	case CHARDEV_LISTEN_TCP: return "listen=tcp";
	case CHARDEV_TERM: return "term";
	case CHARDEV_FDS: return "fds";
	}
	return "?";
}
