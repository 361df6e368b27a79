/*
 * Unit tests for the hybrid vsock relay (src/core/vsock_relay.c): the
 * CONNECT request parser and the PATH_<port>/PATH_<guid> names, then the
 * relay's state machine end to end on a real event loop and real Unix
 * sockets in a temporary directory, against the real VMBus server with the
 * fake host (test_vmbus_fake.h, its lock a real mutex here because the
 * relay runs on the loop thread) and this file playing the Linux guest's
 * hv_sock side of the rings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "test_vmbus_fake.h"
#include "core/evloop.h"
#include "core/vsock_relay.h"
#include "dev/hvsock.h"

#define V(a, b) ((uint32_t)(a) << 16 | (b))
#define RING_PAGES 12

/* ---- the parser ------------------------------------------------------------- */

static int parse(const char *s, struct vsock_request *r)
{
	return vsock_parse_request(s, strlen(s), r);
}

static void test_parse(void **state)
{
	(void)state;
	struct vsock_request r;
	struct vmbus_guid g;
	assert_int_equal(parse("CONNECT 5000", &r), 0);
	assert_true(r.is_port);
	assert_int_equal(r.port, 5000);
	hvsock_port_guid(5000, &g);
	assert_memory_equal(r.service.b, g.b, 16);
	assert_int_equal(parse("connect 1", &r), 0);
	assert_int_equal(r.port, 1);
	assert_int_equal(parse("CoNnEcT 0\r", &r), 0);
	assert_int_equal(r.port, 0);
	assert_int_equal(parse("CONNECT 2147483647", &r), 0);
	assert_int_equal(parse("CONNECT 00001388-facb-11e6-bd58-64006a7986d3", &r), 0);
	assert_false(r.is_port);
	assert_memory_equal(r.service.b, g.b, 16);
	assert_int_equal(parse("CONNECT 8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1f", &r), 0);
	assert_false(r.is_port);
	assert_int_equal(r.service.b[0], 0xc1); /* data1 little-endian on the wire */
	assert_int_equal(r.service.b[3], 0x8e);

	const char *bad[] = {
		"", "CONNECT", "CONNECT ", "CONNECT  5000", "CONNECTX 5000", "CONNEC 5000",
		"HELLO", "CONNECT -1", "CONNECT +5", "CONNECT 5000 ", "CONNECT 5000x",
		"CONNECT 2147483648", "CONNECT 4294967296", "CONNECT 99999999999",
		"CONNECT 0x10", "CONNECT 8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1g",
		"CONNECT {8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1}",
		"CONNECT 8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1f0",
		"CONNECT 5000\r\r", " CONNECT 5000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &r) == 0)
			fail_msg("accepted '%s'", bad[i]);
	}
	/* An embedded NUL is not a digit. */
	assert_int_equal(vsock_parse_request("CONNECT 5\0" "0", 10, &r), -EINVAL);
	/* Longer than a request may be. */
	char lng[128];
	memset(lng, '1', sizeof(lng));
	memcpy(lng, "CONNECT ", 8);
	assert_int_equal(vsock_parse_request(lng, sizeof(lng), &r), -EINVAL);
}

static void test_host_path(void **state)
{
	(void)state;
	struct vmbus_guid g;
	char out[108];
	hvsock_port_guid(6000, &g);
	assert_int_equal(vsock_host_path("/run/vm.sock", &g, true, out, sizeof(out)), 0);
	assert_string_equal(out, "/run/vm.sock_6000");
	assert_int_equal(vsock_host_path("/run/vm.sock", &g, false, out, sizeof(out)), 0);
	assert_string_equal(out, "/run/vm.sock_00001770-facb-11e6-bd58-64006a7986d3");
	assert_int_equal(vmbus_guid_parse("8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1f", &g), 0);
	assert_int_equal(vsock_host_path("/s", &g, true, out, sizeof(out)), 0);
	assert_string_equal(out, "/s_8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1f");
	char base[100];
	memset(base, 'a', sizeof(base) - 1);
	base[sizeof(base) - 1] = 0;
	assert_int_equal(vsock_host_path(base, &g, false, out, sizeof(out)), -ENAMETOOLONG);
}

/* ---- the relay end to end --------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void mu_lock(void *o)
{
	(void)o;
	pthread_mutex_lock(&mu);
}

static void mu_unlock(void *o)
{
	(void)o;
	pthread_mutex_unlock(&mu);
}

struct gch {
	uint32_t relid, conn;
	uint8_t offer[196];
	struct gring out, in;
};

struct rt {
	struct fake *f;
	struct evloop *loop;
	struct vsock_relay *r;
	char dir[64];
	char path[108];
	uint64_t next_pfn;
	uint32_t next_gpadl;
	unsigned ring_pages; /* per channel, both directions */
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Waits up to ms for a host message of type; copies it to out. */
static bool wait_msg(struct rt *t, uint32_t type, struct fake_msg *out, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		pthread_mutex_lock(&mu);
		struct fake *f = t->f;
		/* Take the first of that type; others stay for later waits. */
		for (unsigned k = f->next; k < f->nmsg; k++) {
			if (m32(&f->msg[k], 0) == type) {
				*out = f->msg[k];
				memmove(&f->msg[k], &f->msg[k + 1],
					(f->nmsg - k - 1) * sizeof(f->msg[0]));
				f->nmsg--;
				pthread_mutex_unlock(&mu);
				return true;
			}
		}
		pthread_mutex_unlock(&mu);
		sleep_ms(1);
	}
	return false;
}

/* A stand-in for hvmm's inspect tree: one node "vmbus" with a child "0". */
static int fake_render(void *opaque, const char *path, int depth, char **out)
{
	(void)opaque;
	char buf[128];
	if (!strcmp(path, ""))
		snprintf(buf, sizeof(buf), "{ depth: %d, vmbus: {...} }\n", depth);
	else if (!strcmp(path, "vmbus"))
		snprintf(buf, sizeof(buf), "{ depth: %d, 0: { state: \"open\" } }\n", depth);
	else if (!strcmp(path, "big")) {
		/* 1 MiB: more than a socket buffer holds, written as it drains. */
		char *t = malloc(1u << 20);
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i + 1 < (1u << 20); i++)
			t[i] = (char)('a' + i % 26);
		t[(1u << 20) - 1] = 0;
		*out = t;
		return 0;
	} else if (strstr(path, "//"))
		return -EINVAL;
	else
		return -ENOENT;
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

static struct rt *rt_new(void)
{
	struct rt *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ram = calloc(1, FAKE_RAM);
	assert_non_null(f->ram);
	struct vmbus_host h = {
		.opaque = f, .map = fake_map, .post_message = fake_post,
		.signal_event = fake_signal, .lock = mu_lock, .unlock = mu_unlock,
	};
	struct vmbus_server_config cfg = { .max_version = 0, .nvps = 1 };
	assert_int_equal(vmbus_server_create(&h, &cfg, &f->srv), 0);
	t->f = f;
	assert_int_equal(guest_contact(f, 4, V(5, 2), 0), 0);
	guest_simple(f, 3, 0, 0);
	struct fake_msg m;
	assert_true(wait_msg(t, 4, &m, 100));
	t->loop = evloop_create();
	assert_non_null(t->loop);
	assert_int_equal(evloop_start(t->loop), 0);
	snprintf(t->dir, sizeof(t->dir), "/tmp/hvmm-vsock-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/vm.sock", t->dir);
	assert_int_equal(vsock_relay_create(t->loop, f->srv, t->path, fake_render, NULL, &t->r), 0);
	struct stat st;
	assert_int_equal(stat(t->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	t->next_pfn = 64;
	t->next_gpadl = 0xE1E10;
	t->ring_pages = RING_PAGES;
	return t;
}

static void rt_free(struct rt *t)
{
	vsock_relay_destroy(t->r);
	struct stat st;
	assert_int_not_equal(stat(t->path, &st), 0); /* unlinked */
	evloop_destroy(t->loop);
	vmbus_server_destroy(t->f->srv);
	free(t->f->ram);
	free(t->f);
	rmdir(t->dir);
	free(t);
}

static int client(struct rt *t, const char *req)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (req)
		assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	return fd;
}

/* Reads from fd with a timeout: bytes, 0 at EOF, -1 on an error (a reset
 * is how a peer that closed with our bytes unread ends), -2 on timeout. */
static ssize_t read_to(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) <= 0)
		return -2;
	return recv(fd, buf, len, 0);
}

/* Reads exactly len bytes (or fails the test). */
static void read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read_to(fd, (uint8_t *)buf + got, len - got, 5000);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* The next offer: its relid, connection id and bytes. */
static void take_offer(struct rt *t, struct gch *c)
{
	struct fake_msg m;
	assert_true(wait_msg(t, 1, &m, 5000));
	memcpy(c->offer, m.b, sizeof(c->offer));
	c->relid = m32(&m, 184);
	c->conn = m32(&m, 192);
	uint16_t flags;
	memcpy(&flags, c->offer + 56, 2);
	assert_int_equal(flags, HVSOCK_CHN_FLAGS);
}

static void g_open(struct rt *t, struct gch *c)
{
	unsigned np = t->ring_pages, half = np / 2;
	uint64_t pfns[RING_PAGES];
	uint64_t base = t->next_pfn;
	t->next_pfn += np;
	assert_true(np <= RING_PAGES && t->next_pfn * 4096 <= FAKE_RAM);
	for (unsigned i = 0; i < np; i++)
		pfns[i] = base + i;
	uint32_t gpadl = t->next_gpadl++;
	guest_gpadl(t->f, c->relid, gpadl, pfns, np);
	struct fake_msg m;
	assert_true(wait_msg(t, 10, &m, 1000));
	c->out.hdr = t->f->ram + base * 4096;
	c->in.hdr = t->f->ram + (base + half) * 4096;
	for (unsigned i = 0; i < half - 1; i++) {
		c->out.data[i] = t->f->ram + (base + 1 + i) * 4096;
		c->in.data[i] = t->f->ram + (base + half + 1 + i) * 4096;
	}
	c->out.size = c->in.size = (half - 1) * 4096;
	guest_open(t->f, c->relid, gpadl, 0, half);
	assert_true(wait_msg(t, 6, &m, 1000));
	assert_int_equal(m32(&m, 16), 0);
	gw32(&c->out, 12, 4120);
}

static void g_send(struct rt *t, struct gch *c, const void *data, uint32_t len)
{
	uint8_t buf[8 + HVSOCK_GUEST_SEND_MAX];
	assert_true(len <= HVSOCK_GUEST_SEND_MAX);
	p32(buf, 0, 1);
	p32(buf, 4, len);
	memcpy(buf + 8, data, len);
	for (int i = 0; i < 5000 && !gring_write(&c->out, 0, buf, 8 + len); i++)
		sleep_ms(1);
	vmbus_server_signal_event(t->f->srv, c->conn);
}

/* One host packet's data (waits up to 5 s): size, 0 for FIN. */
static int g_recv(struct rt *t, struct gch *c, uint8_t *buf, uint32_t buflen)
{
	uint8_t d[16], pkt[HVSOCK_MTU + 64];
	uint64_t trailer;
	for (int i = 0; i < 5000; i++) {
		int n = gring_read(&c->in, d, pkt, sizeof(pkt), &trailer);
		if (n == -EAGAIN) {
			/* Empty: as Linux, tell a host waiting for room. */
			if (gr32(&c->in, 12))
				vmbus_server_signal_event(t->f->srv, c->conn);
			sleep_ms(1);
			continue;
		}
		assert_true(n >= 8);
		uint32_t size;
		memcpy(&size, pkt + 4, 4);
		assert_true(size <= buflen && size <= (uint32_t)n - 8);
		memcpy(buf, pkt + 8, size);
		return (int)size;
	}
	fail_msg("no packet from the host");
	return -1;
}

static void wait_nconns(struct rt *t, unsigned n)
{
	for (int i = 0; i < 5000 && vsock_relay_nconns(t->r) != n; i++)
		sleep_ms(1);
	assert_int_equal(vsock_relay_nconns(t->r), n);
}

/* Guest closes after the host's rescind, as Linux does. */
static void g_close(struct rt *t, struct gch *c)
{
	struct fake_msg m;
	assert_true(wait_msg(t, 2, &m, 5000)); /* RESCIND */
	assert_int_equal(m32(&m, 8), c->relid);
	guest_simple(t->f, 7, c->relid, 0);
	guest_simple(t->f, 13, c->relid, 0);
}

static void test_host_connect(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	int fd = client(t, "CONNECT 5000\n");
	struct gch c = { 0 };
	take_offer(t, &c);
	struct vmbus_guid g;
	hvsock_port_guid(5000, &g);
	assert_memory_equal(c.offer + 8, g.b, 16);
	assert_int_equal(c.offer[64], 1); /* from the host */
	char line[64];
	assert_int_equal(read_to(fd, line, sizeof(line), 50), -2); /* no OK yet */
	g_open(t, &c);
	ssize_t n = read_to(fd, line, sizeof(line) - 1, 5000);
	assert_true(n > 3);
	line[n] = 0;
	uint32_t d1;
	memcpy(&d1, c.offer + 24, 4); /* the instance GUID's first field */
	char want[32];
	snprintf(want, sizeof(want), "OK %u\n", d1);
	assert_string_equal(line, want);

	/* Host to guest and back. */
	assert_int_equal(send(fd, "ping", 4, 0), 4);
	uint8_t buf[HVSOCK_MTU];
	assert_int_equal(g_recv(t, &c, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	g_send(t, &c, "pong!", 5);
	read_all(fd, buf, 5);
	assert_memory_equal(buf, "pong!", 5);

	/* 100 KiB host to guest through a 20 KiB ring (flow control). */
	static uint8_t big[100 * 1024], got[100 * 1024];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 7);
	assert_int_equal(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
	size_t have = 0;
	while (have < sizeof(big)) {
		int k = g_recv(t, &c, buf, sizeof(buf));
		assert_true(k > 0);
		assert_true(have + (size_t)k <= sizeof(big));
		memcpy(got + have, buf, (size_t)k);
		have += (size_t)k;
	}
	assert_memory_equal(got, big, sizeof(big));

	/* 64 KiB guest to host, in the guest's 4088-byte packets. */
	size_t sent = 0;
	have = 0;
	while (have < 65536) {
		if (sent < 65536) {
			uint32_t k = 65536 - sent < HVSOCK_GUEST_SEND_MAX ?
				(uint32_t)(65536 - sent) : HVSOCK_GUEST_SEND_MAX;
			g_send(t, &c, big + sent, k);
			sent += k;
		}
		ssize_t r = read_to(fd, got + have, 65536 - have, sent < 65536 ? 0 : 5000);
		if (r > 0)
			have += (size_t)r;
		else
			assert_true(r == -2 && sent < 65536);
	}
	assert_memory_equal(got, big, 65536);

	/* The guest's FIN reaches the client as end of stream; the client's
	 * close reaches the guest as FIN; then the relay rescinds. */
	uint8_t fin[8] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	assert_true(gring_write(&c.out, 0, fin, 8));
	vmbus_server_signal_event(t->f->srv, c.conn);
	assert_int_equal(read_to(fd, buf, sizeof(buf), 5000), 0);
	assert_int_equal(vsock_relay_nconns(t->r), 1); /* half closed */
	close(fd);
	assert_int_equal(g_recv(t, &c, buf, sizeof(buf)), 0);
	g_close(t, &c);
	wait_nconns(t, 0);
	rt_free(t);
}

static void test_bad_requests(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	char buf[64];
	int fd = client(t, "HELLO\n");
	assert_int_equal(read_to(fd, buf, sizeof(buf), 5000), 0);
	close(fd);
	/* No newline within the limit. */
	fd = client(t, "CONNECT 0000000000000000000000000000000000000000000000000000");
	ssize_t r = read_to(fd, buf, sizeof(buf), 5000);
	assert_true(r == 0 || r == -1); /* closed (reset: our tail was unread) */
	close(fd);
	/* Closed before the request ends. */
	fd = client(t, "CONN");
	close(fd);
	/* A request in pieces, then data behind it in the same write. */
	fd = client(t, "CONN");
	sleep_ms(20);
	assert_int_equal(send(fd, "ECT 42\nearly", 12, 0), 12);
	struct gch c = { 0 };
	take_offer(t, &c);
	g_open(t, &c);
	ssize_t n = read_to(fd, buf, sizeof(buf), 5000);
	assert_true(n > 3 && !memcmp(buf, "OK ", 3));
	uint8_t pk[HVSOCK_MTU];
	assert_int_equal(g_recv(t, &c, pk, sizeof(pk)), 5);
	assert_memory_equal(pk, "early", 5);
	/* The guest breaks the protocol: the client's socket is closed. */
	uint8_t bad[8] = { 7, 0, 0, 0, 0, 0, 0, 0 };
	assert_true(gring_write(&c.out, 0, bad, 8));
	vmbus_server_signal_event(t->f->srv, c.conn);
	assert_int_equal(read_to(fd, buf, sizeof(buf), 5000), 0);
	g_close(t, &c);
	close(fd);
	wait_nconns(t, 0);
	rt_free(t);
}

/* Reads until end of stream (at most cap bytes); the count. */
static size_t read_eof(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = read_to(fd, buf + got, cap - got, 5000);
		assert_true(n >= 0);
		if (n == 0)
			return got;
		got += (size_t)n;
		assert_true(got < cap);
	}
}

static void test_parse_inspect(void **state)
{
	(void)state;
	char p[INSPECT_PATH_MAX + 1];
	int d = 99;
#define PI(s) vsock_parse_inspect(s, strlen(s), &d, p, sizeof(p))
	assert_int_equal(PI("INSPECT -1"), 0);
	assert_int_equal(d, -1);
	assert_string_equal(p, "");
	assert_int_equal(PI("inspect 2 vmbus/0\r"), 0);
	assert_int_equal(d, 2);
	assert_string_equal(p, "vmbus/0");
	assert_int_equal(PI("CONNECT 5"), -ENOENT);
	assert_int_equal(PI("INSPECT"), -EINVAL);
	assert_int_equal(PI("INSPECT x"), -EINVAL);
	assert_int_equal(PI("INSPECT -2"), -EINVAL);
	assert_int_equal(PI("INSPECT 1x"), -EINVAL);
	assert_int_equal(PI("INSPECT 33"), -EINVAL);   /* > INSPECT_MAX_DEPTH */
	assert_int_equal(PI("INSPECT 1000"), -EINVAL);
	assert_int_equal(PI("INSPECT 1 "), -EINVAL);   /* empty path */
	assert_int_equal(PI("INSPECT 1 a b"), -EINVAL);
	assert_int_equal(PI("INSPECT 1 a\x01"), -EINVAL);
	char big[INSPECT_PATH_MAX + 16];
	memcpy(big, "INSPECT 1 ", 10);
	memset(big + 10, 'a', INSPECT_PATH_MAX + 1);
	assert_int_equal(vsock_parse_inspect(big, 10 + INSPECT_PATH_MAX + 1, &d, p, sizeof(p)),
			 -EINVAL);
	assert_int_equal(vsock_parse_inspect(big, 10 + INSPECT_PATH_MAX, &d, p, sizeof(p)), 0);
	assert_int_equal(strlen(p), INSPECT_PATH_MAX);
#undef PI
}

/* INSPECT requests answered from the render function, then closed. */
static void test_inspect(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	char *buf = malloc((1u << 20) + 16);
	assert_non_null(buf);
	int fd = client(t, "INSPECT -1 vmbus\n");
	size_t n = read_eof(fd, buf, 4096);
	buf[n] = 0;
	assert_string_equal(buf, "{ depth: -1, 0: { state: \"open\" } }\n");
	close(fd);
	fd = client(t, "inspect 3\n");
	n = read_eof(fd, buf, 4096);
	buf[n] = 0;
	assert_string_equal(buf, "{ depth: 3, vmbus: {...} }\n");
	close(fd);
	fd = client(t, "INSPECT 0 nosuch/node\n");
	n = read_eof(fd, buf, 4096);
	buf[n] = 0;
	assert_string_equal(buf, "error: no node nosuch/node\n");
	close(fd);
	fd = client(t, "INSPECT 0 a//b\n");
	n = read_eof(fd, buf, 4096);
	buf[n] = 0;
	assert_string_equal(buf, "error: bad path a//b\n");
	close(fd);
	/* Garbage depth: refused by closing, nothing rendered. */
	fd = client(t, "INSPECT abc vmbus\n");
	assert_int_equal(read_eof(fd, buf, 4096), 0);
	close(fd);
	/* A long path is allowed (CONNECT's shorter limit does not apply). */
	char req[VSOCK_LINE_MAX + 8];
	memcpy(req, "INSPECT 1 ", 10);
	memset(req + 10, 'q', INSPECT_PATH_MAX);
	memcpy(req + 10 + INSPECT_PATH_MAX, "\n", 2);
	fd = client(t, req);
	n = read_eof(fd, buf, 4096);
	buf[n] = 0;
	assert_true(!strncmp(buf, "error: no node qqq", 18));
	close(fd);
	/* 1 MiB: written as the socket drains (read it slowly at first). */
	fd = client(t, "INSPECT -1 big\n");
	sleep_ms(200);
	n = read_eof(fd, buf, (1u << 20) + 16);
	assert_int_equal(n, (1u << 20) - 1);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[n - 1], (char)('a' + (n - 1) % 26));
	close(fd);
	wait_nconns(t, 0);
	free(buf);
	rt_free(t);
}

/* A relay without a render function (like OpenVMM) closes INSPECT requests. */
static void test_inspect_unsupported(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	vsock_relay_destroy(t->r);
	assert_int_equal(vsock_relay_create(t->loop, t->f->srv, t->path, NULL, NULL, &t->r), 0);
	char buf[64];
	int fd = client(t, "INSPECT -1\n");
	assert_int_equal(read_to(fd, buf, sizeof(buf), 5000), 0);
	close(fd);
	rt_free(t);
}

static int listener(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void tl_request(struct rt *t, uint32_t local_port, const struct vmbus_guid *service)
{
	uint8_t m[40] = { 0 };
	p32(m, 0, 21);
	struct vmbus_guid ep;
	hvsock_port_guid(local_port, &ep);
	memcpy(m + 8, ep.b, 16);
	memcpy(m + 24, service->b, 16);
	assert_int_equal(guest_post(t->f, 1, m, sizeof(m)), 0);
}

static void test_guest_connect(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	char p[160];
	snprintf(p, sizeof(p), "%s_6000", t->path);
	int lfd = listener(p);
	struct vmbus_guid svc;
	hvsock_port_guid(6000, &svc);
	tl_request(t, 1234, &svc);
	struct gch c = { 0 };
	take_offer(t, &c);
	assert_memory_equal(c.offer + 8, svc.b, 16);
	struct vmbus_guid ep;
	hvsock_port_guid(1234, &ep);
	assert_memory_equal(c.offer + 24, ep.b, 16);
	assert_int_equal(c.offer[64], 0); /* from the guest */
	struct pollfd pf = { .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 5000), 1);
	int afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	g_open(t, &c);
	g_send(t, &c, "hi host", 7);
	char buf[64];
	read_all(afd, buf, 7);
	assert_memory_equal(buf, "hi host", 7);
	assert_int_equal(send(afd, "hi guest", 8, 0), 8);
	uint8_t pk[HVSOCK_MTU];
	assert_int_equal(g_recv(t, &c, pk, sizeof(pk)), 8);
	assert_memory_equal(pk, "hi guest", 8);
	close(afd); /* host closes first: FIN to the guest, then its FIN */
	assert_int_equal(g_recv(t, &c, pk, sizeof(pk)), 0);
	uint8_t fin[8] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	assert_true(gring_write(&c.out, 0, fin, 8));
	vmbus_server_signal_event(t->f->srv, c.conn);
	g_close(t, &c);
	wait_nconns(t, 0);
	close(lfd);
	unlink(p);

	/* A service that is no vsock port: PATH_<guid>. */
	assert_int_equal(vmbus_guid_parse("8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1f", &svc), 0);
	snprintf(p, sizeof(p), "%s_8e5ad3c1-1d06-4b42-a7bc-0e3b4c4a6a1f", t->path);
	lfd = listener(p);
	tl_request(t, 1235, &svc);
	struct gch c2 = { 0 };
	take_offer(t, &c2);
	assert_memory_equal(c2.offer + 8, svc.b, 16);
	pf.fd = lfd;
	assert_int_equal(poll(&pf, 1, 5000), 1);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	close(afd);
	close(lfd);
	unlink(p);

	/* Nobody listens: no offer (the guest's connect times out). */
	hvsock_port_guid(6001, &svc);
	tl_request(t, 1236, &svc);
	struct fake_msg m;
	assert_false(wait_msg(t, 1, &m, 300));
	rt_free(t); /* ends c2 (offered, never opened) */
}

/* 64 host clients at once, each served. */
static void test_many(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	t->ring_pages = 4; /* 64 channels in the fake's 2 MiB */
	enum { N = 64 };
	int fds[N];
	static struct gch c[N];
	for (int i = 0; i < N; i++)
		fds[i] = client(t, "CONNECT 5000\n");
	memset(c, 0, sizeof(c));
	/* At most VSOCK_RELAY_MAX_OFFERED offers wait for the guest at once; the rest queue. */
	const int k = (int)VSOCK_RELAY_MAX_OFFERED;
	for (int i = 0; i < k; i++)
		take_offer(t, &c[i]);
	struct fake_msg m;
	assert_false(wait_msg(t, 1, &m, 200));
	for (int i = 0; i < k; i++)
		g_open(t, &c[i]);
	for (int i = k; i < N; i++) {
		take_offer(t, &c[i]);
		g_open(t, &c[i]);
	}
	wait_nconns(t, N);
	char buf[64];
	for (int i = 0; i < N; i++) {
		ssize_t n = read_to(fds[i], buf, sizeof(buf), 5000);
		assert_true(n > 3 && !memcmp(buf, "OK ", 3));
	}
	/* Which client has which channel is not known: each guest side echoes
	 * what it got, and each client must get its own bytes back. */
	for (int i = 0; i < N; i++) {
		char msg[16];
		int len = snprintf(msg, sizeof(msg), "client %d", i);
		assert_int_equal(send(fds[i], msg, (size_t)len, 0), len);
	}
	for (int i = 0; i < N; i++) {
		uint8_t pk[HVSOCK_MTU];
		int k = g_recv(t, &c[i], pk, sizeof(pk));
		assert_true(k > 0);
		g_send(t, &c[i], pk, (uint32_t)k);
	}
	for (int i = 0; i < N; i++) {
		char msg[16];
		int len = snprintf(msg, sizeof(msg), "client %d", i);
		read_all(fds[i], buf, (size_t)len);
		assert_memory_equal(buf, msg, (size_t)len);
		close(fds[i]);
	}
	rt_free(t); /* open channels rescinded; the server's teardown frees them */
}

static void test_connect_port(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	int fd = -1;
	assert_int_equal(vsock_relay_connect_port(t->r, 7000, &fd), 0);
	struct gch c = { 0 };
	take_offer(t, &c);
	struct vmbus_guid g;
	hvsock_port_guid(7000, &g);
	assert_memory_equal(c.offer + 8, g.b, 16);
	g_open(t, &c);
	char buf[64];
	ssize_t n = read_to(fd, buf, sizeof(buf), 5000);
	assert_true(n > 3 && !memcmp(buf, "OK ", 3));
	assert_int_equal(vsock_relay_connect_port(t->r, 0x80000000u, &fd), -EINVAL);
	close(fd);
	rt_free(t);
}

static void test_stale_and_bad_path(void **state)
{
	(void)state;
	struct rt *t = rt_new();
	vsock_relay_destroy(t->r);
	/* A stale socket is replaced. */
	int lfd = listener(t->path);
	close(lfd);
	assert_int_equal(vsock_relay_create(t->loop, t->f->srv, t->path, fake_render, NULL, &t->r), 0);
	vsock_relay_destroy(t->r);
	/* A regular file is not. */
	FILE *f = fopen(t->path, "w");
	assert_non_null(f);
	fclose(f);
	struct vsock_relay *r = NULL;
	assert_int_equal(vsock_relay_create(t->loop, t->f->srv, t->path, NULL, NULL, &r), -EEXIST);
	unlink(t->path);
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/no/such/dir", t->dir);
	assert_true(vsock_relay_create(t->loop, t->f->srv, bad, NULL, NULL, &r) < 0);
	assert_int_equal(vsock_relay_create(t->loop, t->f->srv, t->path, fake_render, NULL, &t->r), 0);
	rt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_host_path),
		cmocka_unit_test(test_host_connect),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_parse_inspect),
		cmocka_unit_test(test_inspect),
		cmocka_unit_test(test_inspect_unsupported),
		cmocka_unit_test(test_guest_connect),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_connect_port),
		cmocka_unit_test(test_stale_and_bad_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
