/*
 * Unit tests: the consomme backend (libslirp, for real) with no guest. The
 * test plays the guest's NIC: it sends Ethernet frames and polls the
 * backend the way core/network.c does. DHCP DISCOVER gets an OFFER of
 * 10.0.0.2 (or .2 of the --net CIDR); ARP for the gateway is answered; a
 * host connection to a hostfwd port becomes a TCP SYN towards the guest; a
 * guest connection to the gateway reaches the host's loopback.
 * Also the `none` backend, tap's error for a missing device and, where the
 * test may create one (CAP_NET_ADMIN), frames both ways through a real tap.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/net.h"

#define MAX_FRAMES 64

static const uint8_t guest_mac[6] = { 0x00, 0x15, 0x5d, 0x68, 0x76, 0x00 };

struct capture {
	unsigned n;
	size_t len[MAX_FRAMES];
	uint8_t frame[MAX_FRAMES][NET_MAX_FRAME];
};

static void on_rx(void *opaque, const void *frame, size_t len)
{
	struct capture *c = opaque;
	assert_true(len <= NET_MAX_FRAME);
	if (c->n >= MAX_FRAMES)
		return;
	memcpy(c->frame[c->n], frame, len);
	c->len[c->n++] = len;
}

static struct net_backend *open_spec(const char *s, struct capture *cap)
{
	struct net_cli_spec ns;
	char err[256];
	assert_int_equal(net_cli_spec_parse(s, &ns, err, sizeof(err)), 0);
	struct net_backend *b;
	int ret = net_backend_open(&ns.backend, ns.queues, guest_mac, on_rx, cap, &b, err,
				   sizeof(err));
	if (ret < 0)
		fail_msg("open '%s': %s", s, err);
	return b;
}

/* One round of the NIC thread's loop: fill, poll (at most ms), done. */
static void poll_once(struct net_backend *b, int ms)
{
	struct pollfd fds[64];
	unsigned n = 0;
	int timeout = ms;
	assert_int_equal(net_backend_poll_fill(b, fds, &n, 64, &timeout, true), 0);
	if (timeout < 0 || timeout > ms)
		timeout = ms;
	int r = poll(fds, n, timeout);
	net_backend_poll_done(b, fds, n, r < 0);
}

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static size_t eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, type);
	return 14;
}

/* A BOOTP/DHCP DISCOVER from 0.0.0.0:68 to 255.255.255.255:67. */
static size_t dhcp_discover(uint8_t *f, uint32_t xid)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	memset(f, 0, NET_MAX_FRAME);
	size_t off = eth_header(f, bcast, 0x0800);
	uint8_t *ip = f + off, *udp = ip + 20, *bp = udp + 8;
	const size_t bootp_len = 236 + 312; /* fixed part + options, as slirp wants */
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + 8 + bootp_len));
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 16, 0xffffffff);
	put16(ip + 10, ip_checksum(ip, 20));
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, (uint16_t)(8 + bootp_len));
	bp[0] = 1; /* BOOTREQUEST */
	bp[1] = 1;
	bp[2] = 6;
	put32(bp + 4, xid);
	memcpy(bp + 28, guest_mac, 6);
	uint8_t *opt = bp + 236;
	put32(opt, 0x63825363);
	opt[4] = 53; /* DHCP message type: DISCOVER */
	opt[5] = 1;
	opt[6] = 1;
	opt[7] = 255;
	return off + 20 + 8 + bootp_len;
}

/* The DHCP message type of a BOOTREPLY frame for xid, or -1. */
static int dhcp_reply_type(const uint8_t *f, size_t len, uint32_t xid, uint32_t *yiaddr)
{
	if (len < 14 + 20 + 8 + 240 || get16(f + 12) != 0x0800)
		return -1;
	const uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	if (ip[9] != 17 || len < 14 + ihl + 8 + 240)
		return -1;
	const uint8_t *udp = ip + ihl, *bp = udp + 8;
	if (get16(udp) != 67 || get16(udp + 2) != 68 || bp[0] != 2 || get32(bp + 4) != xid)
		return -1;
	if (memcmp(bp + 28, guest_mac, 6) || get32(bp + 236) != 0x63825363)
		return -1;
	*yiaddr = get32(bp + 16);
	const uint8_t *end = f + len;
	for (const uint8_t *o = bp + 240; o < end && *o != 255;) {
		if (*o == 0) {
			o++;
			continue;
		}
		if (o + 2 > end || o + 2 + o[1] > end)
			return -1;
		if (o[0] == 53 && o[1] == 1)
			return o[2];
		o += 2 + o[1];
	}
	return -1;
}

static size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t *tha, uint32_t spa, uint32_t tpa)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	memset(f, 0, 60);
	size_t off = eth_header(f, op == 1 ? bcast : tha, 0x0806);
	uint8_t *a = f + off;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, guest_mac, 6);
	put32(a + 14, spa);
	if (tha)
		memcpy(a + 18, tha, 6);
	put32(a + 24, tpa);
	return 60; /* padded to Ethernet's minimum */
}

static uint32_t run_dhcp(struct net_backend *b, struct capture *cap)
{
	uint8_t f[NET_MAX_FRAME];
	uint32_t xid = 0x12345678, yiaddr = 0;
	cap->n = 0;
	net_backend_send(b, f, dhcp_discover(f, xid));
	for (int round = 0; round < 20 && !cap->n; round++)
		poll_once(b, 10);
	assert_true(cap->n >= 1);
	int type = -1;
	for (unsigned i = 0; i < cap->n && type < 0; i++)
		type = dhcp_reply_type(cap->frame[i], cap->len[i], xid, &yiaddr);
	assert_int_equal(type, 2); /* DHCPOFFER */
	return yiaddr;
}

static void test_dhcp_offer(void **state)
{
	(void)state;
	static struct capture cap;
	struct net_backend *b = open_spec("consomme", &cap);
	assert_string_equal(net_backend_describe(b), "consomme 10.0.0.0/24");
	assert_int_equal(run_dhcp(b, &cap), 0x0a000002);
	net_backend_close(b);

	b = open_spec("consomme:192.168.77.0/24", &cap);
	assert_int_equal(run_dhcp(b, &cap), 0xc0a84d02);
	net_backend_close(b);
}

static void test_arp_gateway(void **state)
{
	(void)state;
	static struct capture cap;
	struct net_backend *b = open_spec("consomme", &cap);
	uint8_t f[64];
	cap.n = 0;
	net_backend_send(b, f, arp_frame(f, 1, NULL, 0x0a000002, 0x0a000001));
	for (int round = 0; round < 20 && !cap.n; round++)
		poll_once(b, 10);
	assert_int_equal(cap.n, 1);
	const uint8_t *r = cap.frame[0], *a = r + 14;
	assert_true(cap.len[0] >= 42);
	assert_memory_equal(r, guest_mac, 6);
	assert_int_equal(get16(r + 12), 0x0806);
	assert_int_equal(get16(a + 6), 2); /* reply */
	assert_int_equal(get32(a + 14), 0x0a000001);
	assert_memory_equal(a + 18, guest_mac, 6);
	assert_int_equal(get32(a + 24), 0x0a000002);

	/* Nobody answers for an address outside the gateway's. */
	cap.n = 0;
	net_backend_send(b, f, arp_frame(f, 1, NULL, 0x0a000002, 0x0a000063));
	for (int round = 0; round < 5; round++)
		poll_once(b, 5);
	assert_int_equal(cap.n, 0);

	/* Garbage and runts are dropped without a word. */
	net_backend_send(b, f, 0);
	net_backend_send(b, f, 13);
	memset(f, 0xff, sizeof(f));
	net_backend_send(b, f, sizeof(f));
	poll_once(b, 5);
	net_backend_close(b);
}

static uint16_t free_tcp_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	close(s);
	return ntohs(a.sin_port);
}

static void test_hostfwd_syn(void **state)
{
	(void)state;
	static struct capture cap;
	uint16_t port = free_tcp_port();
	char spec[128];
	snprintf(spec, sizeof(spec), "consomme,hostfwd=tcp:127.0.0.1:%u-:80", port);
	struct net_backend *b = open_spec(spec, &cap);

	/* The port is taken now: a second instance cannot forward it. */
	struct net_cli_spec ns;
	char err[256];
	assert_int_equal(net_cli_spec_parse(spec, &ns, err, sizeof(err)), 0);
	struct net_backend *b2;
	assert_true(net_backend_open(&ns.backend, 1, guest_mac, on_rx, &cap, &b2, err,
				     sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot forward host port tcp:127.0.0.1:"));
	assert_null(strchr(err, '\n'));

	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int r = connect(s, (struct sockaddr *)&a, sizeof(a));
	assert_true(r == 0 || errno == EINPROGRESS);

	bool syn = false, arped = false;
	cap.n = 0;
	for (int round = 0; round < 200 && !syn; round++) {
		poll_once(b, 10);
		for (unsigned i = 0; i < cap.n && !syn; i++) {
			const uint8_t *f = cap.frame[i];
			uint16_t type = get16(f + 12);
			if (type == 0x0806 && get16(f + 14 + 6) == 1 &&
			    get32(f + 14 + 24) == 0x0a000002) {
				/* slirp asks who has the guest's address: answer. */
				uint8_t reply[64];
				const uint8_t *gw_mac = f + 14 + 8;
				arp_frame(reply, 2, gw_mac, 0x0a000002, get32(f + 14 + 14));
				net_backend_send(b, reply, 60);
				arped = true;
			} else if (type == 0x0800 && f[14 + 9] == 6) {
				const uint8_t *ip = f + 14, *tcp = ip + (ip[0] & 15) * 4;
				assert_memory_equal(f, guest_mac, 6);
				assert_int_equal(get32(ip + 16), 0x0a000002);
				assert_int_equal(get16(tcp + 2), 80);
				syn = (tcp[13] & 0x12) == 0x02; /* SYN, not ACK */
			}
		}
		cap.n = 0;
	}
	assert_true(arped);
	assert_true(syn);
	close(s);
	net_backend_close(b);
}

static void test_none_and_tap_errors(void **state)
{
	(void)state;
	static struct capture cap;
	struct net_backend *b = open_spec("none", &cap);
	uint8_t f[64] = { 0 };
	net_backend_send(b, f, sizeof(f));
	struct pollfd fds[4];
	unsigned n = 0;
	int timeout = -1;
	assert_int_equal(net_backend_poll_fill(b, fds, &n, 4, &timeout, true), 0);
	assert_int_equal(n, 0);
	assert_int_equal(timeout, -1);
	net_backend_close(b);

	struct net_cli_spec ns;
	char err[256];
	assert_int_equal(net_cli_spec_parse("tap:hvmm-no-such0", &ns, err, sizeof(err)), 0);
	assert_true(net_backend_open(&ns.backend, 1, guest_mac, on_rx, &cap, &b, err,
				     sizeof(err)) < 0);
	assert_non_null(strstr(err, "tap:hvmm-no-such0: no such interface"));
}

/* Creates (persist=1) or deletes (0) a tap device; false without privilege. */
static bool tap_persist(const char *name, int persist)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	bool ok = ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, persist) == 0;
	close(fd);
	return ok;
}

/* The host side of a tap at 192.0.2.1/24, up. */
static bool tap_configure(const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0xc0000201);
	bool ok = ioctl(s, SIOCSIFADDR, &ifr) == 0;
	a->sin_addr.s_addr = htonl(0xffffff00);
	ok = ok && ioctl(s, SIOCSIFNETMASK, &ifr) == 0;
	ok = ok && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
	ifr.ifr_flags |= IFF_UP;
	ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
	close(s);
	return ok;
}

/* A TCP SYN from the guest (10.0.0.2:40000) to dst:port, checksums right. */
static size_t tcp_syn(uint8_t *f, const uint8_t *dst_mac, uint32_t dst, uint16_t port)
{
	memset(f, 0, 64);
	size_t off = eth_header(f, dst_mac, 0x0800);
	uint8_t *ip = f + off, *tcp = ip + 20;
	ip[0] = 0x45;
	put16(ip + 2, 40);
	ip[8] = 64;
	ip[9] = 6;
	put32(ip + 12, 0x0a000002);
	put32(ip + 16, dst);
	put16(ip + 10, ip_checksum(ip, 20));
	put16(tcp, 40000);
	put16(tcp + 2, port);
	put32(tcp + 4, 1000);
	tcp[12] = 5 << 4;
	tcp[13] = 0x02; /* SYN */
	put16(tcp + 14, 65535);
	uint8_t pseudo[12 + 20];
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	put16(pseudo + 10, 20);
	memcpy(pseudo + 12, tcp, 20);
	put16(tcp + 16, ip_checksum(pseudo, sizeof(pseudo)));
	return off + 40 < 60 ? 60 : off + 40;
}

/*
 * TCP to the gateway reaches the host's loopback (regression: with the DNS
 * address equal to the gateway's, libslirp sent it to the host's resolver).
 */
static void test_gateway_is_host_loopback(void **state)
{
	(void)state;
	static struct capture cap;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(l >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);

	struct net_backend *b = open_spec("consomme", &cap);
	uint8_t f[64];
	/* Learn the gateway's MAC, as the guest would. */
	cap.n = 0;
	net_backend_send(b, f, arp_frame(f, 1, NULL, 0x0a000002, 0x0a000001));
	for (int round = 0; round < 20 && !cap.n; round++)
		poll_once(b, 10);
	assert_int_equal(cap.n, 1);
	uint8_t gw_mac[6];
	memcpy(gw_mac, cap.frame[0] + 14 + 8, 6);

	net_backend_send(b, f, tcp_syn(f, gw_mac, 0x0a000001, ntohs(a.sin_port)));
	int c = -1;
	for (int round = 0; round < 200 && c < 0; round++) {
		poll_once(b, 10);
		c = accept(l, NULL, NULL);
	}
	assert_true(c >= 0);
	close(c);
	close(l);
	net_backend_close(b);
}

static unsigned long long tap_stat(const char *name, const char *stat)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", name, stat);
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/*
 * A real tap (needs CAP_NET_ADMIN): frames the backend sends are counted by
 * the host's interface; frames the host sends (IPv6 neighbour discovery and
 * MLD when an interface comes up, where IPv6 is on) reach the callback.
 */
static void test_tap_frames(void **state)
{
	(void)state;
	static struct capture cap;
	char name[IFNAMSIZ];
	snprintf(name, sizeof(name), "hvmmt%u", (unsigned)getpid() % 100000);
	if (!tap_persist(name, 1)) {
		print_message("skipped: cannot create a tap device (needs CAP_NET_ADMIN)\n");
		return;
	}
	char spec[32];
	snprintf(spec, sizeof(spec), "tap:%s", name);
	struct net_backend *b = open_spec(spec, &cap);
	if (!tap_configure(name)) {
		net_backend_close(b);
		tap_persist(name, 0);
		print_message("skipped: cannot configure %s\n", name);
		return;
	}
	unsigned long long before = tap_stat(name, "rx_packets");
	uint8_t f[64];
	for (int i = 0; i < 5; i++)
		net_backend_send(b, f, arp_frame(f, 1, NULL, 0xc0000202, 0xc0000201));
	unsigned long long after = tap_stat(name, "rx_packets");
	cap.n = 0;
	for (int round = 0; round < 150 && !cap.n; round++)
		poll_once(b, 20);
	bool ipv6 = access("/proc/sys/net/ipv6/conf/all/disable_ipv6", F_OK) == 0;
	unsigned got = cap.n;
	net_backend_close(b);
	tap_persist(name, 0);
	assert_true(after >= before + 5);
	if (ipv6)
		assert_true(got >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dhcp_offer),
		cmocka_unit_test(test_arp_gateway),
		cmocka_unit_test(test_hostfwd_syn),
		cmocka_unit_test(test_gateway_is_host_loopback),
		cmocka_unit_test(test_none_and_tap_errors),
		cmocka_unit_test(test_tap_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
