/*
 * The console's `v PORT [PROGRAM]` (OpenVMM's "hvsock terminal"): a
 * terminal window connected to a guest program listening on AF_VSOCK port
 * PORT, through the hybrid vsock relay's in-process connection
 * (vsock_relay_connect_port) and the `term` serial backend's machinery (a
 * private Unix socket the window's socat connects to).
 *
 * Each session is a detached thread owning two sockets: it waits for the
 * window to connect and for the relay's "OK <n>" (or end of stream: nobody
 * listens on the port), then copies bytes both ways until either side ends.
 * When the VM stops, the relay closes its end and the session ends.
 */
#include "core/vsock_term.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/chardev.h"
#include "core/log.h"
#include "core/vmbus_glue.h"
#include "core/vsock_relay.h"

#define ACCEPT_TIMEOUT_MS 60000 /* for the window to start and connect */
#define OK_TIMEOUT_MS ((int)VSOCK_OPEN_TIMEOUT_MS + 5000)

struct session {
	uint32_t port;
	int vfd;   /* the relay's connection */
	int lfd;   /* the window's listening socket */
	char dir[256], sock[300];
};

static void session_free(struct session *s)
{
	if (s->vfd >= 0)
		close(s->vfd);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->sock[0])
		unlink(s->sock);
	if (s->dir[0])
		rmdir(s->dir);
	free(s);
}

/* Reads the relay's answer line: 1 = OK, 0 = refused (end of stream), <0 = error. */
static int read_ok(int fd, char *rest, size_t *rest_len)
{
	char buf[64];
	size_t n = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, OK_TIMEOUT_MS);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		ssize_t got = read(fd, buf + n, sizeof(buf) - n);
		if (got < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (got == 0)
			return 0;
		n += (size_t)got;
		char *nl = memchr(buf, '\n', n);
		if (nl) {
			if (strncmp(buf, "OK ", 3) != 0)
				return -EPROTO;
			size_t used = (size_t)(nl + 1 - buf);
			*rest_len = n - used;
			memcpy(rest, nl + 1, *rest_len);
			return 1;
		}
		if (n == sizeof(buf))
			return -EPROTO;
	}
}

static bool write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

/* Copies both ways until either side ends; half-closes are passed on. */
static void bridge(int a, int b)
{
	char buf[16384];
	bool a_open = true, b_open = true;
	while (a_open || b_open) {
		struct pollfd p[2] = { { .fd = a_open ? a : -1, .events = POLLIN },
				       { .fd = b_open ? b : -1, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			int from = i ? b : a, to = i ? a : b;
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(from, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* A terminal window closing ends the session. */
				return;
			}
			if (!write_all(to, buf, (size_t)n))
				return;
		}
	}
}

static void *session_thread(void *arg)
{
	struct session *s = arg;
	struct pollfd p = { .fd = s->lfd, .events = POLLIN };
	int tfd = -1;
	if (poll(&p, 1, ACCEPT_TIMEOUT_MS) == 1)
		tfd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (tfd < 0) {
		log_warn("v %u: the terminal window did not connect", s->port);
		session_free(s);
		return NULL;
	}
	char rest[64];
	size_t rest_len = 0;
	int ok = read_ok(s->vfd, rest, &rest_len);
	if (ok <= 0) {
		char msg[160];
		int n = snprintf(msg, sizeof(msg),
				 ok == 0 ? "hvmm: nothing listens on guest vsock port %u\r\n"
					 : "hvmm: guest vsock port %u: %s\r\n",
				 s->port, ok == 0 ? "" : strerror(-ok));
		write_all(tfd, msg, (size_t)n);
		log_info("v %u: %s", s->port,
			 ok == 0 ? "nothing listens on that guest port" : strerror(-ok));
		sleep(3); /* let the window show the message */
		close(tfd);
		session_free(s);
		return NULL;
	}
	log_info("v %u: connected", s->port);
	if (write_all(tfd, rest, rest_len))
		bridge(tfd, s->vfd);
	close(tfd);
	log_info("v %u: session ended", s->port);
	session_free(s);
	return NULL;
}

int vsock_term_open(struct vm *vm, uint32_t port, const char *program)
{
	int ret = chardev_host_term(program, NULL, NULL, true);
	if (ret < 0)
		return ret;
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->port = port;
	s->vfd = s->lfd = -1;
	ret = vmbus_glue_vsock_connect(vm, port, &s->vfd);
	if (ret < 0) {
		if (ret == -ENODEV)
			log_error("v %u: the VM has no VMBus (start hvmm with --hv)", port);
		else
			log_error("v %u: %s", port, strerror(-ret));
		session_free(s);
		return ret;
	}
	if ((ret = chardev_host_term_dir(s->dir, sizeof(s->dir), s->sock, sizeof(s->sock))) < 0 ||
	    (ret = s->lfd = chardev_host_listen_unix(s->sock)) < 0) {
		session_free(s);
		return ret;
	}
	char title[48];
	snprintf(title, sizeof(title), "vsock %u", port);
	if ((ret = chardev_host_term(program, title, s->sock, false)) < 0) {
		session_free(s);
		return ret;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&t, &attr, session_thread, s);
	pthread_attr_destroy(&attr);
	if (ret < 0) {
		session_free(s);
		return ret;
	}
	return 0;
}
