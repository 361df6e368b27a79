/*
 * Parser for OpenVMM's NIC string (openvmm_entry cli_args.rs `NicConfigCli`):
 * colon-separated prefixes uh:, vtl2:, queues=N:, pcie_port=P:, then one
 * backend: none, consomme[:CIDR][,hostfwd=tcp|udp:[A]:HP-[A]:GP]..., tap:NAME
 * (dio[:ID] is Windows-only and refused). Only syntax and ranges are
 * checked here; nothing is opened.
 */
#include "backend/net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Decimal in [min, max] spanning exactly s[0..len). */
static bool parse_uint(const char *s, size_t len, unsigned long min, unsigned long max,
		       unsigned long *out)
{
	if (len == 0 || len > 10)
		return false;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A dotted IPv4 address spanning s[0..len), network order. */
static bool parse_ipv4(const char *s, size_t len, uint32_t *out)
{
	char buf[INET_ADDRSTRLEN];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*out = a.s_addr;
	return true;
}

static uint32_t prefix_mask(unsigned prefix)
{
	return prefix ? ~0u << (32 - prefix) : 0;
}

uint32_t net_consomme_gateway(const struct net_backend_spec *spec)
{
	return spec->network + 1;
}

uint32_t net_consomme_guest(const struct net_backend_spec *spec)
{
	return spec->network + 2;
}

uint32_t net_consomme_dns(const struct net_backend_spec *spec)
{
	return (spec->network | ~prefix_mask(spec->prefix)) - 1;
}

/* CIDR as a.b.c.d/N; host bits are cleared (10.0.0.5/24 is 10.0.0.0/24). */
static int parse_cidr(const char *s, size_t len, struct net_backend_spec *b, char *err,
		      size_t errlen)
{
	const char *slash = memchr(s, '/', len);
	uint32_t addr;
	unsigned long prefix;
	if (!slash || !parse_ipv4(s, (size_t)(slash - s), &addr) ||
	    !parse_uint(slash + 1, len - (size_t)(slash + 1 - s), 0, 32, &prefix))
		return spec_fail(err, errlen, "consomme: '%.*s' is not a CIDR like 10.0.0.0/24",
				 (int)len, s);
	if (prefix < 1 || prefix > NET_CONSOMME_MAX_PREFIX)
		return spec_fail(err, errlen, "consomme: prefix /%lu out of range (1 to %d: the "
				 "network needs a gateway and 16 DHCP addresses)", prefix,
				 NET_CONSOMME_MAX_PREFIX);
	b->prefix = (unsigned)prefix;
	b->network = ntohl(addr) & prefix_mask(b->prefix);
	return 0;
}

/* tcp|udp:[ADDR]:HOSTPORT-[ADDR]:GUESTPORT */
static int parse_hostfwd(const char *s, size_t len, struct net_hostfwd *f, char *err,
			 size_t errlen)
{
	const char *end = s + len, *p = s;
	memset(f, 0, sizeof(*f));
	if (len >= 4 && !memcmp(s, "tcp:", 4)) {
		f->udp = false;
	} else if (len >= 4 && !memcmp(s, "udp:", 4)) {
		f->udp = true;
	} else {
		return spec_fail(err, errlen, "hostfwd='%.*s': expected tcp: or udp: first",
				 (int)len, s);
	}
	p += 4;
	const char *dash = memchr(p, '-', (size_t)(end - p));
	const char *c1 = dash ? memrchr(p, ':', (size_t)(dash - p)) : NULL;
	const char *c2 = dash ? memrchr(dash + 1, ':', (size_t)(end - dash - 1)) : NULL;
	unsigned long hp, gp;
	if (!dash || !c1 || !c2)
		return spec_fail(err, errlen, "hostfwd='%.*s': expected PROTO:[ADDR]:HOSTPORT-"
				 "[ADDR]:GUESTPORT", (int)len, s);
	if (c1 > p && !parse_ipv4(p, (size_t)(c1 - p), &f->host_addr))
		return spec_fail(err, errlen, "hostfwd='%.*s': bad host address '%.*s'",
				 (int)len, s, (int)(c1 - p), p);
	if (!parse_uint(c1 + 1, (size_t)(dash - c1 - 1), 1, 65535, &hp))
		return spec_fail(err, errlen, "hostfwd='%.*s': bad host port '%.*s' (1 to 65535)",
				 (int)len, s, (int)(dash - c1 - 1), c1 + 1);
	if (c2 > dash + 1 && !parse_ipv4(dash + 1, (size_t)(c2 - dash - 1), &f->guest_addr))
		return spec_fail(err, errlen, "hostfwd='%.*s': bad guest address '%.*s'",
				 (int)len, s, (int)(c2 - dash - 1), dash + 1);
	if (!parse_uint(c2 + 1, (size_t)(end - c2 - 1), 1, 65535, &gp))
		return spec_fail(err, errlen, "hostfwd='%.*s': bad guest port '%.*s' (1 to 65535)",
				 (int)len, s, (int)(end - c2 - 1), c2 + 1);
	f->host_port = (uint16_t)hp;
	f->guest_port = (uint16_t)gp;
	return 0;
}

static int parse_consomme(const char *s, struct net_backend_spec *b, char *err, size_t errlen)
{
	b->kind = NET_BACKEND_CONSOMME;
	b->network = 0x0a000000; /* 10.0.0.0/24, OpenVMM's consomme default */
	b->prefix = 24;
	const char *p = s + strlen("consomme");
	if (*p == ':') {
		p++;
		size_t n = strcspn(p, ",");
		int ret = parse_cidr(p, n, b, err, errlen);
		if (ret < 0)
			return ret;
		p += n;
	} else if (*p && *p != ',') {
		return spec_fail(err, errlen, "unknown backend '%s' (expected none, "
				 "consomme[:CIDR][,hostfwd=...] or tap:NAME)", s);
	}
	while (*p == ',') {
		p++;
		size_t n = strcspn(p, ",");
		if (n < 8 || memcmp(p, "hostfwd=", 8))
			return spec_fail(err, errlen, "consomme: unknown option '%.*s' (only "
					 "hostfwd= is known)", (int)n, p);
		if (b->nfwd >= NET_MAX_HOSTFWD)
			return spec_fail(err, errlen, "consomme: too many hostfwd= (at most %d)",
					 NET_MAX_HOSTFWD);
		struct net_hostfwd *f = &b->fwd[b->nfwd];
		int ret = parse_hostfwd(p + 8, n - 8, f, err, errlen);
		if (ret < 0)
			return ret;
		for (unsigned i = 0; i < b->nfwd; i++)
			if (b->fwd[i].udp == f->udp && b->fwd[i].host_port == f->host_port &&
			    b->fwd[i].host_addr == f->host_addr)
				return spec_fail(err, errlen, "consomme: host port %s:%u is "
						 "forwarded twice", f->udp ? "udp" : "tcp",
						 f->host_port);
		b->nfwd++;
		p += n;
	}
	if (*p)
		return spec_fail(err, errlen, "consomme: unexpected '%s'", p);
	/* A guest address must be a host of the network, not the gateway. */
	uint32_t mask = prefix_mask(b->prefix);
	for (unsigned i = 0; i < b->nfwd; i++) {
		uint32_t g = ntohl(b->fwd[i].guest_addr);
		if (!g)
			continue;
		if ((g & mask) != b->network || g == b->network || g == (b->network | ~mask) ||
		    g == net_consomme_gateway(b) || g == net_consomme_dns(b)) {
			char a[INET_ADDRSTRLEN];
			struct in_addr ia = { b->fwd[i].guest_addr };
			inet_ntop(AF_INET, &ia, a, sizeof(a));
			return spec_fail(err, errlen, "consomme: hostfwd guest address %s is not "
					 "a guest address of the network", a);
		}
	}
	return 0;
}

/* Linux's dev_valid_name(): 1..15 bytes, no '/', ':' or space, not . or .. */
static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == ',' || isspace((unsigned char)s[i]) ||
		    !isprint((unsigned char)s[i]))
			return false;
	return true;
}

static int parse_backend(const char *s, struct net_backend_spec *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	if (!strcmp(s, "none")) {
		b->kind = NET_BACKEND_NONE;
		return 0;
	}
	if (!strncmp(s, "consomme", 8))
		return parse_consomme(s, b, err, errlen);
	if (!strncmp(s, "tap:", 4)) {
		if (!valid_ifname(s + 4))
			return spec_fail(err, errlen, "tap: '%s' is not an interface name (1 to %d "
					 "characters, no '/', ':', ',' or spaces)", s + 4,
					 IFNAMSIZ - 1);
		b->kind = NET_BACKEND_TAP;
		snprintf(b->tap, sizeof(b->tap), "%s", s + 4);
		return 0;
	}
	if (!strcmp(s, "dio") || !strncmp(s, "dio:", 4))
		return spec_fail(err, errlen, "dio is a Windows backend (hvmm has none, "
				 "consomme and tap)");
	if (!*s)
		return spec_fail(err, errlen, "no backend (expected none, consomme[:CIDR]"
				 "[,hostfwd=...] or tap:NAME)");
	return spec_fail(err, errlen, "unknown backend '%s' (expected none, "
			 "consomme[:CIDR][,hostfwd=...] or tap:NAME)", s);
}

int net_cli_spec_parse(const char *s, struct net_cli_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->queues = 1;
	const char *p = s;
	bool queues_seen = false;
	for (;;) {
		if (!strncmp(p, "uh:", 3)) {
			out->uh = true;
			p += 3;
		} else if (!strncmp(p, "vtl2:", 5)) {
			out->vtl2 = true;
			p += 5;
		} else if (!strncmp(p, "queues=", 7)) {
			const char *colon = strchr(p + 7, ':');
			unsigned long q;
			if (!colon || !parse_uint(p + 7, (size_t)(colon - p - 7), 1, NET_MAX_QUEUES, &q))
				return spec_fail(err, errlen, "queues= needs a number from 1 to %d "
						 "followed by ':'", NET_MAX_QUEUES);
			if (queues_seen)
				return spec_fail(err, errlen, "queues= given twice");
			queues_seen = true;
			out->queues = (unsigned)q;
			p = colon + 1;
		} else if (!strncmp(p, "pcie_port=", 10)) {
			const char *colon = strchr(p + 10, ':');
			if (!colon || colon == p + 10)
				return spec_fail(err, errlen, "pcie_port= needs a port name followed "
						 "by ':'");
			out->pcie_port = true;
			p = colon + 1;
		} else {
			break;
		}
	}
	return parse_backend(p, &out->backend, err, errlen);
}
