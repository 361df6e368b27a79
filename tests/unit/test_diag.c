/*
 * Unit tests for the diagnostics server (src/diag/diag_server.c, what
 * hvmm-agent runs in the guest) and client (src/diag/diag_client.c, what
 * hvmm-diag runs on the host), talking over socketpairs on the host in
 * milliseconds: a fake dial function hands one end of each pair to the
 * server (port 1: a control thread, port 2: a data connection) and the
 * other to the client. Covered: run with stdout/stderr/exit status, stdin,
 * a pty, launch failures, kmsg records formatted, file contents, unknown
 * methods/pids/connections, a peer that is not ttrpc, the hybrid vsock
 * handshake's errors, and the hvmm-diag binary end to end against a fake
 * hybrid vsock socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag/diag.pb-c.h"
#include "diag/diag_client.h"
#include "diag/diag_server.h"

#define MAX_CTL 8

struct fx {
	struct diag_server *srv;
	pthread_t ctl[MAX_CTL];
	int n_ctl;
	int kmsg_fd; /* handed out (dup'd) by the fake open_kmsg */
	char tmpdir[64];
};

struct ctl_arg {
	struct diag_server *srv;
	int fd;
};

static void *ctl_thread(void *p)
{
	struct ctl_arg a = *(struct ctl_arg *)p;
	free(p);
	diag_server_serve_control(a.srv, a.fd);
	return NULL;
}

/* Connects a server end to port 1 or 2 as hvmm-agent's accept loop does. */
static void serve_port(struct fx *f, uint32_t port, int fd)
{
	if (port == DIAG_VSOCK_CONTROL_PORT) {
		struct ctl_arg *a = malloc(sizeof(*a));
		assert_non_null(a);
		*a = (struct ctl_arg){ f->srv, fd };
		assert_true(f->n_ctl < MAX_CTL);
		assert_int_equal(pthread_create(&f->ctl[f->n_ctl++], NULL, ctl_thread, a), 0);
	} else {
		assert_int_equal(diag_server_add_data(f->srv, fd), 0);
	}
}

static int fake_dial(void *opaque, uint32_t port, char *err, size_t errlen)
{
	struct fx *f = opaque;
	int sv[2];
	(void)err;
	(void)errlen;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	serve_port(f, port, sv[1]);
	return sv[0];
}

static int fake_open_kmsg(void *opaque)
{
	struct fx *f = opaque;
	int fd = dup(f->kmsg_fd);
	return fd < 0 ? -errno : fd;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct diag_server_config cfg = { .open_kmsg = fake_open_kmsg, .opaque = f };
	f->kmsg_fd = -1;
	f->srv = diag_server_new(&cfg);
	strcpy(f->tmpdir, "/tmp/test_diag.XXXXXX");
	assert_non_null(mkdtemp(f->tmpdir));
	*state = f;
	return 0;
}

/* The client closed its control connections: every server thread ends. */
static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < f->n_ctl; i++)
		pthread_join(f->ctl[i], NULL);
	if (f->kmsg_fd >= 0)
		close(f->kmsg_fd);
	diag_server_free(f->srv);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->tmpdir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* An in-memory file to collect output; returns its contents (malloc'd). */
static int mem_fd(void)
{
	int fd = memfd_create("out", MFD_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static char *mem_read(int fd)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *s = malloc((size_t)n + 1);
	assert_int_equal(pread(fd, s, (size_t)n, 0), n);
	s[n] = '\0';
	return s;
}

static void run_cmd(struct fx *f, const char *const *argv, size_t argc, int in_fd, bool tty,
		    char **out, char **err, int *code, int *rc)
{
	struct diag_client c;
	int of = mem_fd(), ef = mem_fd();
	struct diag_exec e = { .command = argv[0], .args = argv + 1, .n_args = argc - 1,
			       .tty = tty, .in_fd = in_fd, .out_fd = of, .err_fd = ef };
	assert_int_equal(diag_client_open(&c, fake_dial, f), 0);
	*code = -1;
	*rc = diag_client_run(&c, &e, code);
	if (*rc != 0)
		fprintf(stderr, "run: %s\n", c.err);
	diag_client_close(&c);
	*out = mem_read(of);
	*err = mem_read(ef);
	close(of);
	close(ef);
}

static void test_run_status_and_output(void **state)
{
	struct fx *f = *state;
	const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3" };
	char *out, *err;
	int code, rc;
	run_cmd(f, argv, 3, -1, false, &out, &err, &code, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "out\n");
	assert_string_equal(err, "err\n");
	assert_int_equal(code, 3);
	free(out);
	free(err);

	const char *fls[] = { "false" };
	run_cmd(f, fls, 1, -1, false, &out, &err, &code, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(code, 1);
	free(out);
	free(err);

	/* Killed by a signal: 255, as OpenHCL reports it. */
	const char *kill_self[] = { "sh", "-c", "kill -9 $$" };
	run_cmd(f, kill_self, 3, -1, false, &out, &err, &code, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(code, 255);
	free(out);
	free(err);
}

/* A grandchild that keeps stdout open does not hold the output open. */
static void test_run_background_grandchild(void **state)
{
	struct fx *f = *state;
	const char *argv[] = { "sh", "-c", "sleep 5 & echo started" };
	char *out, *err;
	int code, rc;
	run_cmd(f, argv, 3, -1, false, &out, &err, &code, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "started\n");
	assert_int_equal(code, 0);
	free(out);
	free(err);
}

static void test_run_stdin(void **state)
{
	struct fx *f = *state;
	int in = mem_fd();
	assert_int_equal(write(in, "hello stdin\n", 12), 12);
	lseek(in, 0, SEEK_SET);
	const char *argv[] = { "cat" };
	char *out, *err;
	int code, rc;
	run_cmd(f, argv, 1, in, false, &out, &err, &code, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "hello stdin\n");
	assert_int_equal(code, 0);
	free(out);
	free(err);
	close(in);
}

static void test_run_tty(void **state)
{
	struct fx *f = *state;
	int probe = posix_openpt(O_RDWR | O_NOCTTY);
	if (probe < 0)
		skip();
	close(probe);
	const char *argv[] = { "sh", "-c", "tty; test -t 0 && echo STDIN-TTY; exit 5" };
	char *out, *err;
	int code, rc;
	run_cmd(f, argv, 3, -1, true, &out, &err, &code, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "/dev/pts/"));
	assert_non_null(strstr(out, "STDIN-TTY"));
	assert_int_equal(code, 5);
	free(out);
	free(err);
}

static void test_run_missing_command(void **state)
{
	struct fx *f = *state;
	struct diag_client c;
	struct diag_exec e = { .command = "/nonexistent/hvmm-no-such-program", .in_fd = -1,
			       .out_fd = -1, .err_fd = -1 };
	int code = -1;
	assert_int_equal(diag_client_open(&c, fake_dial, f), 0);
	int rc = diag_client_run(&c, &e, &code);
	assert_true(rc > 0); /* a ttrpc status */
	assert_non_null(strstr(c.err, "failed to launch"));
	assert_non_null(strstr(c.err, "No such file"));
	diag_client_close(&c);
}

static void test_kmsg(void **state)
{
	struct fx *f = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	const char *recs[] = {
		"6,1,1500000,-;Linux version 6.1.0 (hvmm)\n",
		"4,2,2000001,-;second\n SUBSYSTEM=acpi\n DEVICE=+acpi:x\n",
		"not a kmsg record",
		"3,3,3000000,-;evil \x1b]0;title\x07 text\n",
	};
	for (int i = 0; i < 4; i++)
		assert_int_equal(write(sv[0], recs[i], strlen(recs[i])), (ssize_t)strlen(recs[i]));
	close(sv[0]);
	f->kmsg_fd = sv[1];
	struct diag_client c;
	int of = mem_fd();
	assert_int_equal(diag_client_open(&c, fake_dial, f), 0);
	assert_int_equal(diag_client_kmsg(&c, false, of), 0);
	diag_client_close(&c);
	char *out = mem_read(of);
	assert_string_equal(out, "[    1.500000] Linux version 6.1.0 (hvmm)\n"
				 "[    2.000001] second\n"
				 "not a kmsg record\n"
				 "[    3.000000] evil ?]0;title? text\n");
	free(out);
	close(of);
}

static void test_file(void **state)
{
	struct fx *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/data", f->tmpdir);
	size_t n = 300000;
	char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 251);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);

	struct diag_client c;
	int of = mem_fd();
	assert_int_equal(diag_client_open(&c, fake_dial, f), 0);
	assert_int_equal(diag_client_read_file(&c, path, false, of), 0);
	char *out = mem_read(of);
	assert_int_equal(lseek(of, 0, SEEK_END), (off_t)n);
	assert_memory_equal(out, data, n);
	free(out);
	close(of);

	/* Errors come back as a status with OpenHCL's wording. */
	of = mem_fd();
	assert_true(diag_client_read_file(&c, "/nonexistent/file", false, of) != 0);
	assert_non_null(strstr(c.err, "failed to open file"));
	assert_true(diag_client_read_file(&c, f->tmpdir, false, of) != 0);
	assert_non_null(strstr(c.err, "cannot read directory"));
	assert_int_equal(lseek(of, 0, SEEK_END), 0);
	close(of);
	diag_client_close(&c);
	free(data);
}

static void test_bad_requests(void **state)
{
	struct fx *f = *state;
	struct diag_client c;
	Diag__Empty empty = DIAG__EMPTY__INIT;
	assert_int_equal(diag_client_open(&c, fake_dial, f), 0);

	assert_int_equal(diag_client_call(&c, "diag.OpenhclDiag", "Ping", &empty.base, NULL, NULL),
			 0);
	assert_int_equal(diag_client_call(&c, "diag.UnderhillDiag", "Restart", &empty.base, NULL,
					  NULL),
			 TTRPC_CODE_UNIMPLEMENTED);
	assert_int_equal(diag_client_call(&c, "inspect.InspectService", "Inspect", NULL, NULL, NULL),
			 TTRPC_CODE_UNIMPLEMENTED);

	Diag__WaitRequest w = DIAG__WAIT_REQUEST__INIT;
	w.pid = 999999;
	assert_int_equal(diag_client_call(&c, "diag.UnderhillDiag", "Wait", &w.base, NULL, NULL),
			 TTRPC_CODE_NOT_FOUND);
	assert_string_equal(c.err, "pid not found");

	Diag__KmsgRequest k = DIAG__KMSG_REQUEST__INIT;
	k.conn = 12345; /* never handed out */
	assert_int_equal(diag_client_call(&c, "diag.UnderhillDiag", "Kmsg", &k.base, NULL, NULL),
			 TTRPC_CODE_NOT_FOUND);

	/* A payload that is not the method's message. */
	uint32_t stream;
	Diag__FileRequest fr = DIAG__FILE_REQUEST__INIT;
	fr.file_path = "/x";
	assert_int_equal(diag_client_send(&c, "diag.UnderhillDiag", "Exec", &fr.base, &stream), 0);
	assert_true(diag_client_recv(&c, stream, NULL, NULL) > 0);

	/* Still serving after all that. */
	assert_int_equal(diag_client_call(&c, "diag.OpenhclDiag", "Ping", &empty.base, NULL, NULL),
			 0);
	diag_client_close(&c);
}

/* A control connection that sends garbage is closed, the server lives. */
static void test_garbage_control(void **state)
{
	struct fx *f = *state;
	int sv[2];
	char buf[256];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	serve_port(f, DIAG_VSOCK_CONTROL_PORT, sv[1]);
	/* A response-typed frame: no client sends one. */
	const uint8_t bad[] = { 0, 0, 0, 1, 0, 0, 0, 1, TTRPC_MSG_RESPONSE, 0, 0 };
	assert_int_equal(write(sv[0], bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(read(sv[0], buf, sizeof(buf)), 0); /* closed */
	close(sv[0]);

	struct diag_client c;
	Diag__Empty empty = DIAG__EMPTY__INIT;
	assert_int_equal(diag_client_open(&c, fake_dial, f), 0);
	assert_int_equal(diag_client_call(&c, "diag.OpenhclDiag", "Ping", &empty.base, NULL, NULL),
			 0);
	diag_client_close(&c);
}

/* --- hybrid vsock: a fake hvmm socket ------------------------------------------------ */

enum hy_mode { HY_SERVE, HY_CLOSE, HY_GARBAGE };
#define ECHO_PORT 5000

struct hy {
	struct fx *f;
	int lfd;
	enum hy_mode mode;
	int conns; /* how many to accept; -1 until the listener closes */
	pthread_t t;
	char path[108];
};

static void *hy_thread(void *p)
{
	struct hy *h = p;
	for (int i = 0; h->conns < 0 || i < h->conns; i++) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			break;
		char line[64];
		size_t n = 0;
		while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
			n++;
		line[n] = '\0';
		unsigned port = 0;
		if (h->mode == HY_CLOSE || sscanf(line, "CONNECT %u", &port) != 1) {
			close(fd);
			continue;
		}
		if (h->mode == HY_GARBAGE) {
			(void)!write(fd, "SSH-2.0-OpenSSH_9.2\r\n", 21);
			close(fd);
			continue;
		}
		(void)!write(fd, "OK 1073741824\n", 14);
		if (port == ECHO_PORT) { /* a guest echo service */
			char buf[256];
			ssize_t n;
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				(void)!write(fd, buf, (size_t)n);
			close(fd);
			continue;
		}
		serve_port(h->f, port, fd);
	}
	return NULL;
}

static void hy_start(struct hy *h, struct fx *f, enum hy_mode mode, int conns)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	h->f = f;
	h->mode = mode;
	h->conns = conns;
	snprintf(h->path, sizeof(h->path), "%s/vsock.sock", f->tmpdir);
	unlink(h->path);
	strcpy(sa.sun_path, h->path);
	h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(h->lfd, 16), 0);
	assert_int_equal(pthread_create(&h->t, NULL, hy_thread, h), 0);
}

static void hy_stop(struct hy *h)
{
	shutdown(h->lfd, SHUT_RDWR);
	pthread_join(h->t, NULL);
	close(h->lfd);
}

static void test_hybrid_dial_errors(void **state)
{
	struct fx *f = *state;
	char err[512], path[128];
	snprintf(path, sizeof(path), "%s/missing.sock", f->tmpdir);
	assert_int_equal(diag_hybrid_dial(path, 1, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no such socket"));

	/* A socket file nobody listens on any more: the VM is gone. */
	struct hy h;
	hy_start(&h, f, HY_CLOSE, 0);
	hy_stop(&h);
	assert_int_equal(diag_hybrid_dial(h.path, 1, err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "the VM is gone"));

	hy_start(&h, f, HY_CLOSE, 1); /* the relay refuses: no guest listener */
	assert_int_equal(diag_hybrid_dial(h.path, 1, err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "refused vsock port 1"));
	hy_stop(&h);

	hy_start(&h, f, HY_GARBAGE, 1);
	assert_int_equal(diag_hybrid_dial(h.path, 1, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "not a hybrid vsock socket"));
	hy_stop(&h);
}

/* The diag client through the hybrid handshake: the data connection's id
 * right after "OK <n>\n" must not be lost. */
static void test_hybrid_kmsg(void **state)
{
	struct fx *f = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	const char *rec = "5,0,0,-;Linux version 6.1.0\n";
	assert_int_equal(write(sv[0], rec, strlen(rec)), (ssize_t)strlen(rec));
	close(sv[0]);
	f->kmsg_fd = sv[1];
	struct hy h;
	hy_start(&h, f, HY_SERVE, 2);
	struct diag_client c;
	int of = mem_fd();
	assert_int_equal(diag_client_open(&c, diag_hybrid_dial, h.path), 0);
	assert_int_equal(diag_client_kmsg(&c, false, of), 0);
	diag_client_close(&c);
	char *out = mem_read(of);
	assert_string_equal(out, "[    0.000000] Linux version 6.1.0\n");
	free(out);
	close(of);
	hy_stop(&h);
}

/* A stand-in hvmm for INSPECT: accepts one client, keeps its request line,
 * answers reply (NULL: closes without a word, as OpenVMM does) and closes. */
struct insp {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	const char *reply;
	size_t reply_len;
	char req[512];
	pthread_t th;
};

static void *insp_thread(void *arg)
{
	struct insp *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	size_t n = 0;
	while (n + 1 < sizeof(s->req)) {
		ssize_t r = read(fd, s->req + n, 1);
		if (r <= 0 || s->req[n++] == '\n')
			break;
	}
	s->req[n] = 0;
	if (s->reply) {
		size_t off = 0;
		while (off < s->reply_len) {
			ssize_t w = write(fd, s->reply + off, s->reply_len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	close(fd);
	return NULL;
}

static void insp_start(struct insp *s, struct fx *f, const char *reply, size_t len)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "%s/insp.sock", f->tmpdir);
	unlink(s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, s->path, sizeof(sa.sun_path));
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	s->reply = reply;
	s->reply_len = len;
	assert_int_equal(pthread_create(&s->th, NULL, insp_thread, s), 0);
}

static void insp_stop(struct insp *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
	unlink(s->path);
}

/* diag_hybrid_inspect: the request it writes, the text it copies, and its
 * errors (no node, a peer that does not serve inspect). */
static void test_hybrid_inspect(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct insp s;
	const char *tree = "{\n    state: \"open\",\n}\n";
	insp_start(&s, f, tree, strlen(tree));
	int of = mem_fd();
	assert_int_equal(diag_hybrid_inspect(s.path, -1, "vmbus", of, err, sizeof(err)), 0);
	insp_stop(&s);
	assert_string_equal(s.req, "INSPECT -1 vmbus\n");
	char *out = mem_read(of);
	assert_string_equal(out, tree);
	free(out);
	close(of);

	/* The root at depth 2: no path argument at all. */
	insp_start(&s, f, tree, strlen(tree));
	of = mem_fd();
	assert_int_equal(diag_hybrid_inspect(s.path, 2, "", of, err, sizeof(err)), 0);
	insp_stop(&s);
	assert_string_equal(s.req, "INSPECT 2\n");
	close(of);

	/* A long reply (more than the client holds back) arrives whole. */
	size_t big = 100000;
	char *text = malloc(big);
	assert_non_null(text);
	for (size_t i = 0; i < big; i++)
		text[i] = (char)('a' + i % 26);
	insp_start(&s, f, text, big);
	of = mem_fd();
	assert_int_equal(diag_hybrid_inspect(s.path, 0, "x", of, err, sizeof(err)), 0);
	insp_stop(&s);
	out = mem_read(of);
	assert_int_equal(strlen(out), big);
	assert_memory_equal(out, text, big);
	free(out);
	free(text);
	close(of);

	const char *no = "error: no node nosuch\n";
	insp_start(&s, f, no, strlen(no));
	of = mem_fd();
	assert_int_equal(diag_hybrid_inspect(s.path, 0, "nosuch", of, err, sizeof(err)), -ENOENT);
	insp_stop(&s);
	assert_string_equal(err, "inspect: no node nosuch");
	assert_int_equal(lseek(of, 0, SEEK_END), 0); /* nothing on stdout */
	close(of);

	insp_start(&s, f, NULL, 0); /* OpenVMM: CONNECT only */
	of = mem_fd();
	assert_int_equal(diag_hybrid_inspect(s.path, 0, "", of, err, sizeof(err)), -EOPNOTSUPP);
	insp_stop(&s);
	assert_non_null(strstr(err, "the VM does not serve inspect (not hvmm?)"));
	close(of);

	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing.sock", f->tmpdir);
	assert_int_equal(diag_hybrid_inspect(missing, 0, "", 1, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no such socket"));
}

/* The hvmm-diag binary: run's output and status, a clear error line. */
static void test_hvmm_diag_binary(void **state)
{
	struct fx *f = *state;
	const char *b = getenv("HVMM_BUILD_ROOT");
	char tool[512], cmd[1024];
	if (!b)
		skip();
	snprintf(tool, sizeof(tool), "%s/src/tools/hvmm-diag", b);
	if (access(tool, X_OK) != 0)
		skip();
	struct hy h;
	hy_start(&h, f, HY_SERVE, 3); /* control, stdout, stderr (stdin is /dev/null) */
	snprintf(cmd, sizeof(cmd),
		 "%s vsock:%s run sh -c 'echo from-guest; echo oops >&2; exit 7' "
		 "</dev/null >%s/out 2>%s/err",
		 tool, h.path, f->tmpdir, f->tmpdir);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
	hy_stop(&h);
	char path[128], buf[256] = "";
	snprintf(path, sizeof(path), "%s/out", f->tmpdir);
	int fd = open(path, O_RDONLY);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_string_equal(buf, "from-guest\n");
	memset(buf, 0, sizeof(buf));
	snprintf(path, sizeof(path), "%s/err", f->tmpdir);
	fd = open(path, O_RDONLY);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_string_equal(buf, "oops\n");

	snprintf(cmd, sizeof(cmd), "%s %s/none.sock kmsg 2>%s/err", tool, f->tmpdir, f->tmpdir);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	memset(buf, 0, sizeof(buf));
	fd = open(path, O_RDONLY);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_non_null(strstr(buf, "hvmm-diag: "));
	assert_non_null(strstr(buf, "no such socket"));
	assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1); /* one line */
}

/* vsock-tcp-relay: a TCP client reaches the guest's port through the
 * socket; without -r the tool exits 0 after the connection closes. */
static void test_hvmm_diag_tcp_relay(void **state)
{
	struct fx *f = *state;
	const char *b = getenv("HVMM_BUILD_ROOT");
	char tool[512], port[16];
	if (!b)
		skip();
	snprintf(tool, sizeof(tool), "%s/src/tools/hvmm-diag", b);
	if (access(tool, X_OK) != 0)
		skip();
	/* A free TCP port: bind to 0, read it back, release it. */
	int t = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(t, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(t, (struct sockaddr *)&sa, &sl), 0);
	close(t);
	snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
	struct hy h;
	hy_start(&h, f, HY_SERVE, 1);
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 1);
		execl(tool, tool, h.path, "vsock-tcp-relay", "5000", port, (char *)NULL);
		_exit(127);
	}
	int c = -1;
	for (int i = 0; i < 500; i++) { /* until it listens (5 s) */
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(c);
		c = -1;
		usleep(10000);
	}
	assert_true(c >= 0);
	assert_int_equal(write(c, "ping", 4), 4);
	char buf[8] = "";
	size_t got = 0;
	while (got < 4) {
		ssize_t n = read(c, buf + got, 4 - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, "ping", 4);
	close(c);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	hy_stop(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_status_and_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_background_grandchild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_tty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_missing_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kmsg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_dial_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_kmsg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_inspect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hvmm_diag_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hvmm_diag_tcp_relay, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
