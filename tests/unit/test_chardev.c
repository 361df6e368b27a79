/*
 * Unit tests for the serial backends (src/backend/chardev*.c): the OpenVMM
 * serial-string parser (every backend and the error messages), file=,
 * listen= on a Unix socket and on TCP (both directions, disconnect and
 * reconnect, a refused second client, the no-client backlog and its
 * counted overflow), output backpressure and the room callback, input
 * pause/resume, the escape byte, console (one at a time, EOF on stdin does
 * not spin) and term (display and program checks, the spawned command).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/chardev.h"
#include "core/evloop.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

#define WAIT_UNTIL(cond)                                                   \
	({                                                                 \
		bool ok_ = false;                                          \
		for (int i_ = 0; i_ < 5000; i_++) {                        \
			if (cond) {                                        \
				ok_ = true;                                \
				break;                                     \
			}                                                  \
			sleep_ms(1);                                       \
		}                                                          \
		ok_;                                                       \
	})

/* ---- a fake device ----------------------------------------------------- */

struct tdev {
	pthread_mutex_t lock;
	uint8_t buf[1 << 16];
	size_t len;
	atomic_size_t max_take; /* per input call */
	atomic_int input_calls;
	atomic_int room_calls;
	atomic_int escape_calls;
};

static size_t tdev_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct tdev *d = opaque;
	size_t n = len < atomic_load(&d->max_take) ? len : atomic_load(&d->max_take);
	pthread_mutex_lock(&d->lock);
	if (n > sizeof(d->buf) - d->len)
		n = sizeof(d->buf) - d->len;
	memcpy(d->buf + d->len, buf, n);
	d->len += n;
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_add(&d->input_calls, 1);
	return n;
}

static void tdev_room(void *opaque)
{
	struct tdev *d = opaque;
	atomic_fetch_add(&d->room_calls, 1);
}

static void tdev_escape(void *opaque)
{
	struct tdev *d = opaque;
	atomic_fetch_add(&d->escape_calls, 1);
}

static const struct chardev_ops tdev_ops = { tdev_input, tdev_room };

static void tdev_init(struct tdev *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	atomic_init(&d->max_take, SIZE_MAX);
}

static size_t tdev_len(struct tdev *d)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->len;
	pthread_mutex_unlock(&d->lock);
	return n;
}

static bool tdev_has(struct tdev *d, const char *s)
{
	size_t n = strlen(s);
	pthread_mutex_lock(&d->lock);
	bool ok = d->len == n && !memcmp(d->buf, s, n);
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/* ---- helpers ------------------------------------------------------------ */

/* Read exactly n bytes within 5 s; returns bytes read (short on EOF). */
static size_t read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	for (int spins = 0; got < n && spins < 5000;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 1) <= 0) {
			spins++;
			continue;
		}
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		got += (size_t)r;
	}
	return got;
}

/* True when the peer closed: read returns 0 within 5 s. */
static bool sees_eof(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 5000) <= 0)
		return false;
	char c;
	return read(fd, &c, 1) == 0;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int connect_tcp(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void make_tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/hvmm-chardev-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static struct evloop *start_loop(void)
{
	struct evloop *loop = evloop_create();
	assert_non_null(loop);
	assert_int_equal(evloop_start(loop), 0);
	return loop;
}

static void fill_pattern(uint8_t *p, size_t n, size_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((start + i) * 7 + ((start + i) >> 11));
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_ok(void **state)
{
	(void)state;
	struct chardev_spec s;
	char err[256];

	assert_int_equal(chardev_spec_parse("none", &s, err, sizeof(err)), 0);
	assert_int_equal(s.backend, CHARDEV_NONE);
	assert_int_equal(chardev_spec_parse("console", &s, err, sizeof(err)), 0);
	assert_int_equal(s.backend, CHARDEV_CONSOLE);
	assert_int_equal(chardev_spec_parse("stderr", &s, err, sizeof(err)), 0);
	assert_int_equal(s.backend, CHARDEV_STDERR);

	assert_int_equal(chardev_spec_parse("file=/tmp/a=b.log", &s, err,
					    sizeof(err)),
			 0);
	assert_int_equal(s.backend, CHARDEV_FILE);
	assert_string_equal(s.path, "/tmp/a=b.log");

	assert_int_equal(chardev_spec_parse("listen=/run/com1.sock", &s, err,
					    sizeof(err)),
			 0);
	assert_int_equal(s.backend, CHARDEV_LISTEN_UNIX);
	assert_string_equal(s.path, "/run/com1.sock");

	assert_int_equal(chardev_spec_parse("listen=tcp:127.0.0.1:4444", &s,
					    err, sizeof(err)),
			 0);
	assert_int_equal(s.backend, CHARDEV_LISTEN_TCP);
	assert_int_equal(s.tcp_family, AF_INET);
	assert_int_equal(s.tcp_port, 4444);
	assert_memory_equal(s.tcp_addr, "\x7f\x00\x00\x01", 4);

	assert_int_equal(chardev_spec_parse("listen=tcp:0.0.0.0:0", &s, err,
					    sizeof(err)),
			 0);
	assert_int_equal(s.tcp_port, 0);

	assert_int_equal(chardev_spec_parse("listen=tcp:[::1]:65535", &s, err,
					    sizeof(err)),
			 0);
	assert_int_equal(s.tcp_family, AF_INET6);
	assert_int_equal(s.tcp_port, 65535);
	assert_int_equal(s.tcp_addr[15], 1);

	assert_int_equal(chardev_spec_parse("term", &s, err, sizeof(err)), 0);
	assert_int_equal(s.backend, CHARDEV_TERM);
	assert_string_equal(s.path, "");
	assert_string_equal(s.title, "");

	assert_int_equal(chardev_spec_parse("term=/usr/bin/xterm,name=COM 1",
					    &s, err, sizeof(err)),
			 0);
	assert_int_equal(s.backend, CHARDEV_TERM);
	assert_string_equal(s.path, "/usr/bin/xterm");
	assert_string_equal(s.title, "COM 1");

	assert_int_equal(chardev_spec_parse("term,name=vm", &s, NULL, 0), 0);
	assert_string_equal(s.title, "vm");
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{ "", "empty serial configuration" },
		{ "bogus", "unknown serial backend 'bogus'" },
		{ "listenx=/a", "unknown serial backend 'listenx'" },
		{ "file=", "file= needs a path" },
		{ "file", "file= needs a path" },
		{ "listen", "listen= needs a Unix socket path or tcp:IP:PORT" },
		{ "listen=", "listen= needs" },
		{ "listen=tcp:1.2.3.4", "missing port in tcp address '1.2.3.4'" },
		{ "listen=tcp:host:99999", "bad tcp port '99999'" },
		{ "listen=tcp:1.2.3.4:", "bad tcp port ''" },
		{ "listen=tcp:1.2.3.4:-1", "bad tcp port '-1'" },
		{ "listen=tcp:1.2.3.4:8o", "bad tcp port '8o'" },
		{ "listen=tcp:host:80", "bad tcp address 'host'" },
		{ "listen=tcp:::1:80", "bad tcp address '::1'" },
		{ "listen=tcp:[::1]", "missing port in tcp address '[::1]'" },
		{ "listen=tcp:[::1:80", "missing ']'" },
		{ "listen=tcp:[1.2.3.4]:80", "bad tcp address '1.2.3.4'" },
		{ "term,name=", "name= needs a window title" },
		{ "term,name", "name= needs a window title" },
		{ "term=", "term= needs a program" },
		{ "term,name=a,name=b", "duplicate option 'name'" },
		{ "term,title=x", "unexpected option 'title' for 'term'" },
		{ "console=x", "'console' takes no value" },
		{ "none=1", "'none' takes no value" },
		{ "console,raw", "unexpected option 'raw' for 'console'" },
		{ "file=/tmp/x,append", "unexpected option 'append' for 'file'" },
		{ "listen=/tmp/s,foo=1", "unexpected option 'foo' for 'listen'" },
		{ "console,", "empty item" },
		{ ",console", "empty item" },
		{ "term,name=a,x,y,z", "too many options" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct chardev_spec s;
		char err[256] = "";
		int rc = chardev_spec_parse(cases[i].in, &s, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, cases[i].msg))
			fail_msg("'%s': rc %d, message '%s', expected '%s'",
				 cases[i].in, rc, err, cases[i].msg);
		assert_null(strchr(err, '\n'));
	}

	/* Paths that cannot fit. */
	char big[CHARDEV_PATH_MAX + 16];
	memset(big, 'a', sizeof(big));
	memcpy(big, "file=", 5);
	big[sizeof(big) - 1] = '\0';
	struct chardev_spec s;
	char err[256];
	assert_int_equal(chardev_spec_parse(big, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
	char sock[200];
	memset(sock, 'b', sizeof(sock));
	memcpy(sock, "listen=/", 8);
	sock[sizeof(sock) - 1] = '\0';
	assert_int_equal(chardev_spec_parse(sock, &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "socket path is too long"));
	/* A tiny error buffer is still terminated. */
	char tiny[8];
	assert_int_equal(chardev_spec_parse("bogus", &s, tiny, sizeof(tiny)),
			 -EINVAL);
	assert_int_equal(strlen(tiny), 7);
}

/* ---- file= --------------------------------------------------------------- */

static void test_file_backend(void **state)
{
	(void)state;
	char dir[64], path[128], spec_s[160];
	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/out.log", dir);
	FILE *f = fopen(path, "w");
	fputs("old contents that must go away", f);
	fclose(f);

	struct evloop *loop = start_loop();
	struct chardev_spec s;
	snprintf(spec_s, sizeof(spec_s), "file=%s", path);
	assert_int_equal(chardev_spec_parse(spec_s, &s, NULL, 0), 0);
	struct chardev *cd;
	assert_int_equal(chardev_create(&s, loop, &cd), 0);

	static uint8_t data[40000];
	fill_pattern(data, sizeof(data), 0);
	size_t off = 0;
	while (off < sizeof(data)) {
		size_t n = chardev_write(cd, data + off, sizeof(data) - off);
		off += n;
		if (!n)
			sleep_ms(1);
	}
	assert_true(WAIT_UNTIL(chardev_pending(cd) == 0));
	chardev_destroy(cd);
	evloop_destroy(loop);

	static uint8_t back[sizeof(data) + 16];
	f = fopen(path, "r");
	size_t n = fread(back, 1, sizeof(back), f);
	fclose(f);
	assert_int_equal(n, sizeof(data));
	assert_memory_equal(back, data, sizeof(data));
	rm_rf(dir);
}

static void test_file_bad_path(void **state)
{
	(void)state;
	struct evloop *loop = start_loop();
	struct chardev_spec s;
	struct chardev *cd = (struct chardev *)1;
	assert_int_equal(chardev_spec_parse("file=/nonexistent-hvmm-dir/x", &s,
					    NULL, 0),
			 0);
	assert_int_equal(chardev_create(&s, loop, &cd), -ENOENT);
	assert_null(cd);
	evloop_destroy(loop);
}

/* ---- listen= ------------------------------------------------------------ */

static void test_listen_unix(void **state)
{
	(void)state;
	char dir[64], spec_s[160];
	make_tmpdir(dir, sizeof(dir));
	snprintf(spec_s, sizeof(spec_s), "listen=%s/com1.sock", dir);
	struct chardev_spec s;
	assert_int_equal(chardev_spec_parse(spec_s, &s, NULL, 0), 0);

	struct evloop *loop = start_loop();
	struct chardev *cd;
	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	struct tdev d;
	tdev_init(&d);
	chardev_set_ops(cd, &tdev_ops, &d);
	assert_string_equal(chardev_socket_path(cd), s.path);
	assert_int_equal(chardev_tcp_port(cd), -ENOTSUP);
	assert_false(chardev_connected(cd));

	/* Output before any client is kept and replayed. */
	assert_int_equal(chardev_write(cd, "early,", 6), 6);
	assert_int_equal(chardev_room(cd), SIZE_MAX);

	int c1 = connect_unix(s.path);
	assert_true(WAIT_UNTIL(chardev_connected(cd)));
	assert_int_equal(chardev_write(cd, "hello", 5), 5);
	char buf[64] = "";
	assert_int_equal(read_full(c1, buf, 11), 11);
	assert_memory_equal(buf, "early,hello", 11);

	assert_int_equal(write(c1, "typed", 5), 5);
	assert_true(WAIT_UNTIL(tdev_has(&d, "typed")));

	/* A second client is refused while the first is attached. */
	int c2 = connect_unix(s.path);
	assert_true(sees_eof(c2));
	close(c2);
	assert_true(chardev_connected(cd));

	/* Disconnect; output meanwhile is kept for the next client. */
	close(c1);
	assert_true(WAIT_UNTIL(!chardev_connected(cd)));
	assert_int_equal(chardev_write(cd, "while-away", 10), 10);
	assert_int_equal(chardev_pending(cd), 10);

	int c3 = connect_unix(s.path);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read_full(c3, buf, 10), 10);
	assert_memory_equal(buf, "while-away", 10);
	assert_int_equal(write(c3, "+again", 6), 6);
	assert_true(WAIT_UNTIL(tdev_has(&d, "typed+again")));
	assert_int_equal(chardev_dropped(cd), 0);

	chardev_set_ops(cd, NULL, NULL);
	chardev_destroy(cd);
	/* The server closed the client and removed its socket file. */
	assert_true(sees_eof(c3));
	close(c3);
	struct stat st;
	assert_int_equal(stat(s.path, &st), -1);
	evloop_destroy(loop);
	rm_rf(dir);
}

static void test_listen_backlog_overflow(void **state)
{
	(void)state;
	char dir[64], spec_s[160];
	make_tmpdir(dir, sizeof(dir));
	snprintf(spec_s, sizeof(spec_s), "listen=%s/s", dir);
	struct chardev_spec s;
	assert_int_equal(chardev_spec_parse(spec_s, &s, NULL, 0), 0);
	struct evloop *loop = start_loop();
	struct chardev *cd;
	assert_int_equal(chardev_create(&s, loop, &cd), 0);

	/* 1 MiB + 1000 bytes with nobody listening: the oldest 1000 go. */
	const size_t extra = 1000, total = CHARDEV_BACKLOG + extra;
	uint8_t *data = malloc(total);
	fill_pattern(data, total, 0);
	for (size_t off = 0; off < total; off += 4096) {
		size_t n = total - off < 4096 ? total - off : 4096;
		assert_int_equal(chardev_write(cd, data + off, n), n);
	}
	assert_int_equal(chardev_dropped(cd), extra);
	assert_int_equal(chardev_pending(cd), CHARDEV_BACKLOG);

	int c = connect_unix(s.path);
	uint8_t *got = malloc(CHARDEV_BACKLOG);
	assert_int_equal(read_full(c, got, CHARDEV_BACKLOG), CHARDEV_BACKLOG);
	assert_memory_equal(got, data + extra, CHARDEV_BACKLOG);
	assert_true(WAIT_UNTIL(chardev_pending(cd) == 0));
	/* While connected, room is bounded again (backpressure). */
	assert_int_equal(chardev_room(cd), CHARDEV_OUT_ROOM);

	close(c);
	chardev_destroy(cd);
	evloop_destroy(loop);
	free(data);
	free(got);
	rm_rf(dir);
}

static void test_listen_tcp(void **state)
{
	(void)state;
	struct chardev_spec s;
	assert_int_equal(chardev_spec_parse("listen=tcp:127.0.0.1:0", &s, NULL,
					    0),
			 0);
	struct evloop *loop = start_loop();
	struct chardev *cd;
	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	struct tdev d;
	tdev_init(&d);
	chardev_set_ops(cd, &tdev_ops, &d);
	int port = chardev_tcp_port(cd);
	assert_true(port > 0 && port < 65536);
	assert_null(chardev_socket_path(cd));

	for (int round = 0; round < 2; round++) {
		int c = connect_tcp((uint16_t)port);
		assert_true(WAIT_UNTIL(chardev_connected(cd)));
		assert_int_equal(chardev_write(cd, "ping", 4), 4);
		char buf[8] = "";
		assert_int_equal(read_full(c, buf, 4), 4);
		assert_memory_equal(buf, "ping", 4);
		assert_int_equal(write(c, "pong", 4), 4);
		assert_true(WAIT_UNTIL(tdev_len(&d) == 4u * (round + 1)));
		int extra = connect_tcp((uint16_t)port);
		assert_true(sees_eof(extra));
		close(extra);
		close(c);
		assert_true(WAIT_UNTIL(!chardev_connected(cd)));
	}
	assert_true(tdev_has(&d, "pongpong"));

	/* The same port cannot be bound twice. */
	char spec_s[64];
	snprintf(spec_s, sizeof(spec_s), "listen=tcp:127.0.0.1:%d", port);
	struct chardev_spec s2;
	assert_int_equal(chardev_spec_parse(spec_s, &s2, NULL, 0), 0);
	struct chardev *cd2;
	assert_int_equal(chardev_create(&s2, loop, &cd2), -EADDRINUSE);

	chardev_set_ops(cd, NULL, NULL);
	chardev_destroy(cd);
	evloop_destroy(loop);
}

static void test_listen_stale_and_bad_paths(void **state)
{
	(void)state;
	char dir[64], path[128], spec_s[160];
	make_tmpdir(dir, sizeof(dir));
	struct evloop *loop = start_loop();
	struct chardev_spec s;
	struct chardev *cd;

	/* A stale socket file (nobody listening) is replaced. */
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	snprintf(spec_s, sizeof(spec_s), "listen=%s", path);
	assert_int_equal(chardev_spec_parse(spec_s, &s, NULL, 0), 0);
	assert_int_equal(chardev_create(&s, loop, &cd), 0);

	/* A live one is not stolen. */
	struct chardev *cd2;
	assert_int_equal(chardev_create(&s, loop, &cd2), -EADDRINUSE);
	chardev_destroy(cd);

	/* A regular file is never deleted. */
	snprintf(path, sizeof(path), "%s/regular", dir);
	FILE *f = fopen(path, "w");
	fclose(f);
	snprintf(spec_s, sizeof(spec_s), "listen=%s", path);
	assert_int_equal(chardev_spec_parse(spec_s, &s, NULL, 0), 0);
	assert_int_equal(chardev_create(&s, loop, &cd), -EEXIST);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);

	/* A directory that does not exist. */
	assert_int_equal(chardev_spec_parse("listen=/nonexistent-hvmm/s", &s,
					    NULL, 0),
			 0);
	assert_int_equal(chardev_create(&s, loop, &cd), -ENOENT);

	evloop_destroy(loop);
	rm_rf(dir);
}

/* ---- data path on plain fds ------------------------------------------- */

static void test_backpressure_and_room(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct evloop *loop = start_loop();
	struct chardev *cd;
	assert_int_equal(chardev_create_fds(-1, p[1], loop, &cd), 0);
	struct tdev d;
	tdev_init(&d);
	chardev_set_ops(cd, &tdev_ops, &d);

	/*
	 * Nobody reads the pipe: once the pipe and the ring are full the
	 * writer is refused, and stays refused.
	 */
	const size_t total = 512 * 1024;
	uint8_t *data = malloc(total), *got = malloc(total);
	fill_pattern(data, total, 0);
	size_t off = 0;
	for (int spins = 0; spins < 5000; spins++) {
		off += chardev_write(cd, data + off, total - off);
		if (chardev_room(cd) == 0) {
			sleep_ms(20);
			if (chardev_room(cd) == 0)
				break;
		}
	}
	assert_true(off < total);
	assert_int_equal(chardev_pending(cd), CHARDEV_OUT_ROOM);
	int stuck_rooms = atomic_load(&d.room_calls);
	sleep_ms(50);
	assert_int_equal(atomic_load(&d.room_calls), stuck_rooms);

	/* Read everything, writing the rest whenever room comes back. */
	size_t rd = 0;
	int rooms = stuck_rooms;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (int spins = 0; rd < total && spins < 20000; spins++) {
		ssize_t n = read(p[0], got + rd, total - rd);
		if (n > 0)
			rd += (size_t)n;
		else
			sleep_ms(1);
		if (atomic_load(&d.room_calls) > rooms) {
			rooms = atomic_load(&d.room_calls);
			off += chardev_write(cd, data + off, total - off);
		}
	}
	assert_int_equal(rd, total);
	assert_memory_equal(got, data, total);
	assert_true(rooms > stuck_rooms);
	assert_int_equal(chardev_dropped(cd), 0);

	chardev_destroy(cd);
	evloop_destroy(loop);
	close(p[0]);
	free(data);
	free(got);
}

static void test_input_pause_resume_escape(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct evloop *loop = start_loop();
	struct chardev *cd;
	assert_int_equal(chardev_create_fds(p[0], -1, loop, &cd), 0);
	/* No fd for output: writes are accepted and discarded. */
	assert_int_equal(chardev_write(cd, "x", 1), 1);

	/* Input before a device is attached is held, not lost. */
	assert_int_equal(write(p[1], "ab", 2), 2);
	sleep_ms(20);
	struct tdev d;
	tdev_init(&d);
	atomic_store(&d.max_take, 1);
	chardev_set_escape(cd, 0x11, tdev_escape, &d);
	chardev_set_ops(cd, &tdev_ops, &d);
	/* The device takes one byte and so pauses input. */
	assert_true(WAIT_UNTIL(tdev_has(&d, "a")));
	atomic_store(&d.max_take, SIZE_MAX);
	assert_int_equal(write(p[1], "c\x11" "d", 3), 3);
	sleep_ms(50);
	assert_true(tdev_has(&d, "a"));
	int calls = atomic_load(&d.input_calls);
	assert_int_equal(calls, 1);

	/* Resume: the held byte, then the pipe again; 0x11 is taken out. */
	chardev_resume_input(cd);
	assert_true(WAIT_UNTIL(tdev_has(&d, "abcd")));
	assert_int_equal(atomic_load(&d.escape_calls), 1);

	/* EOF on the input: no more callbacks, and no busy loop. */
	close(p[1]);
	calls = atomic_load(&d.input_calls);
	sleep_ms(50);
	assert_int_equal(atomic_load(&d.input_calls), calls);

	chardev_destroy(cd);
	evloop_destroy(loop);
}

static void test_dead_output_is_counted(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]); /* the reader is gone: EPIPE (SIGPIPE is ignored) */
	struct evloop *loop = start_loop();
	struct chardev *cd;
	assert_int_equal(chardev_create_fds(-1, p[1], loop, &cd), 0);
	assert_int_equal(chardev_write(cd, "lost", 4), 4);
	assert_true(WAIT_UNTIL(chardev_dropped(cd) == 4));
	/* From now on output is discarded but still counted, never refused. */
	assert_int_equal(chardev_write(cd, "more", 4), 4);
	assert_int_equal(chardev_dropped(cd), 8);
	chardev_destroy(cd);
	evloop_destroy(loop);
}

/* ---- none, stderr, console ----------------------------------------------- */

static long cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
}

static void test_none_stderr(void **state)
{
	(void)state;
	struct evloop *loop = start_loop();
	struct chardev_spec s;
	struct chardev *cd;
	assert_int_equal(chardev_spec_parse("none", &s, NULL, 0), 0);
	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	assert_int_equal(chardev_write(cd, "gone", 4), 4);
	assert_int_equal(chardev_room(cd), SIZE_MAX);
	assert_int_equal(chardev_dropped(cd), 0);
	chardev_destroy(cd);

	assert_int_equal(chardev_spec_parse("stderr", &s, NULL, 0), 0);
	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	const char *msg = "[test_chardev] stderr backend works\n";
	assert_int_equal(chardev_write(cd, msg, strlen(msg)), strlen(msg));
	assert_true(WAIT_UNTIL(chardev_pending(cd) == 0));
	chardev_destroy(cd);
	evloop_destroy(loop);
}

static void test_console(void **state)
{
	(void)state;
	int saved_stdin = dup(STDIN_FILENO);
	int null = open("/dev/null", O_RDONLY);
	assert_true(saved_stdin >= 0 && null >= 0);
	dup2(null, STDIN_FILENO);
	close(null);

	struct evloop *loop = start_loop();
	struct chardev_spec s;
	assert_int_equal(chardev_spec_parse("console", &s, NULL, 0), 0);
	struct chardev *cd, *cd2;
	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	/* Only one console. */
	assert_int_equal(chardev_create(&s, loop, &cd2), -EBUSY);
	struct tdev d;
	tdev_init(&d);
	chardev_set_ops(cd, &tdev_ops, &d);
	/* stdin is /dev/null: EOF at once, and the loop must not spin. */
	long t0 = cpu_ms();
	sleep_ms(300);
	assert_true(cpu_ms() - t0 < 100);
	assert_int_equal(tdev_len(&d), 0);
	chardev_destroy(cd);

	/* A pipe on stdin: its bytes arrive, then EOF, still no spinning. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	dup2(p[0], STDIN_FILENO);
	close(p[0]);
	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	tdev_init(&d);
	chardev_set_ops(cd, &tdev_ops, &d);
	assert_int_equal(write(p[1], "keys", 4), 4);
	close(p[1]);
	assert_true(WAIT_UNTIL(tdev_has(&d, "keys")));
	t0 = cpu_ms();
	sleep_ms(300);
	assert_true(cpu_ms() - t0 < 100);
	chardev_destroy(cd);

	dup2(saved_stdin, STDIN_FILENO);
	close(saved_stdin);
	evloop_destroy(loop);
}

/* ---- term ------------------------------------------------------------------ */

static void write_script(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(body, f);
	fclose(f);
	chmod(path, 0755);
}

static void test_term(void **state)
{
	(void)state;
	char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	char *old_disp = getenv("DISPLAY") ? strdup(getenv("DISPLAY")) : NULL;
	char *old_wl = getenv("WAYLAND_DISPLAY") ? strdup(getenv("WAYLAND_DISPLAY"))
						 : NULL;
	struct evloop *loop = start_loop();
	struct chardev_spec s;
	struct chardev *cd;

	/* No display. */
	unsetenv("DISPLAY");
	unsetenv("WAYLAND_DISPLAY");
	assert_int_equal(chardev_spec_parse("term", &s, NULL, 0), 0);
	assert_int_equal(chardev_create(&s, loop, &cd), -ENXIO);

	/* A display but no such program. */
	setenv("DISPLAY", ":99", 1);
	assert_int_equal(chardev_spec_parse("term=hvmm-no-such-terminal", &s,
					    NULL, 0),
			 0);
	assert_int_equal(chardev_create(&s, loop, &cd), -ENOENT);

	/* Fake terminal and socat: the terminal records its arguments. */
	char dir[64], spec_s[256], args_path[128], path_env[4096];
	make_tmpdir(dir, sizeof(dir));
	snprintf(args_path, sizeof(args_path), "%s/args", dir);
	char script[512], term_path[128], socat_path[128];
	snprintf(script, sizeof(script),
		 "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > %s.tmp\n"
		 "mv %s.tmp %s\n",
		 args_path, args_path, args_path);
	snprintf(term_path, sizeof(term_path), "%s/fake-term", dir);
	write_script(term_path, script);
	snprintf(socat_path, sizeof(socat_path), "%s/socat", dir);
	write_script(socat_path, "#!/bin/sh\nexit 0\n");
	snprintf(path_env, sizeof(path_env), "%s:%s", dir,
		 old_path ? old_path : "/usr/bin:/bin");
	setenv("PATH", path_env, 1);

	/* Without socat on PATH creation fails too. */
	snprintf(spec_s, sizeof(spec_s), "term=%s,name=My VM COM1", term_path);
	assert_int_equal(chardev_spec_parse(spec_s, &s, NULL, 0), 0);
	setenv("PATH", "/nonexistent-hvmm", 1);
	assert_int_equal(chardev_create(&s, loop, &cd), -ENOENT);
	setenv("PATH", path_env, 1);

	/* A terminal that cannot be executed: error, nothing left behind. */
	char bad_term[128], tmpdir_env[128];
	snprintf(bad_term, sizeof(bad_term), "%s/bad-term", dir);
	write_script(bad_term, "#!/nonexistent/interpreter\n");
	snprintf(tmpdir_env, sizeof(tmpdir_env), "%s/tmp", dir);
	mkdir(tmpdir_env, 0700);
	char *old_tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	setenv("TMPDIR", tmpdir_env, 1);
	struct chardev_spec bad;
	snprintf(spec_s, sizeof(spec_s), "term=%s", bad_term);
	assert_int_equal(chardev_spec_parse(spec_s, &bad, NULL, 0), 0);
	assert_int_equal(chardev_create(&bad, loop, &cd), -ENOENT);
	assert_int_equal(rmdir(tmpdir_env), 0); /* empty: no temp dir leaked */
	if (old_tmp)
		setenv("TMPDIR", old_tmp, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmp);

	assert_int_equal(chardev_create(&s, loop, &cd), 0);
	const char *sock = chardev_socket_path(cd);
	assert_non_null(sock);
	struct stat st;
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_true(WAIT_UNTIL(access(args_path, R_OK) == 0));
	char want[1024], got[1024] = "";
	snprintf(want, sizeof(want),
		 "-T\nMy VM COM1\n-e\n%s\nSTDIO,rawer\nUNIX-CONNECT:%s\n",
		 socat_path, sock);
	FILE *f = fopen(args_path, "r");
	size_t n = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	got[n] = '\0';
	assert_string_equal(got, want);

	/* The window's relay would connect here like any listen= client. */
	int c = connect_unix(sock);
	assert_true(WAIT_UNTIL(chardev_connected(cd)));
	assert_int_equal(chardev_write(cd, "hi", 2), 2);
	char buf[2];
	assert_int_equal(read_full(c, buf, 2), 2);
	close(c);

	char sockdir[PATH_MAX];
	snprintf(sockdir, sizeof(sockdir), "%s", sock);
	*strrchr(sockdir, '/') = '\0';
	chardev_destroy(cd);
	assert_int_equal(stat(sockdir, &st), -1); /* temp dir removed */

	if (old_path)
		setenv("PATH", old_path, 1);
	if (old_disp)
		setenv("DISPLAY", old_disp, 1);
	else
		unsetenv("DISPLAY");
	if (old_wl)
		setenv("WAYLAND_DISPLAY", old_wl, 1);
	free(old_path);
	free(old_disp);
	free(old_wl);
	evloop_destroy(loop);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_file_backend),
		cmocka_unit_test(test_file_bad_path),
		cmocka_unit_test(test_listen_unix),
		cmocka_unit_test(test_listen_backlog_overflow),
		cmocka_unit_test(test_listen_tcp),
		cmocka_unit_test(test_listen_stale_and_bad_paths),
		cmocka_unit_test(test_backpressure_and_room),
		cmocka_unit_test(test_input_pause_resume_escape),
		cmocka_unit_test(test_dead_output_is_counted),
		cmocka_unit_test(test_none_stderr),
		cmocka_unit_test(test_console),
		cmocka_unit_test(test_term),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
