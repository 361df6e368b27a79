/* hvmm-agent: the guest side of the diagnostics protocol for Linux guests
 * under hvmm (OpenHCL's diag server, ../shared/docs/openvmm-reference.md §4).
 * Listens on AF_VSOCK port 1 (control: ttrpc requests, one thread per
 * connection) and port 2 (data connections, each registered under the id
 * it is sent first) and serves them with src/diag/diag_server.c. Linked
 * statically so it runs from the busybox initramfs; started by /init when
 * the kernel has hv_sock (scripts/guest/init).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "diag/diag_server.h"

static const char *prog = "hvmm-agent";

static int listen_vsock(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

struct ctl_arg {
	struct diag_server *s;
	int fd;
};

static void *ctl_thread(void *arg)
{
	struct ctl_arg a = *(struct ctl_arg *)arg;
	free(arg);
	diag_server_serve_control(a.s, a.fd);
	return NULL;
}

static unsigned parse_port(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);
	if (*s == '\0' || *end != '\0' || v > 0xffffffffUL) {
		fprintf(stderr, "%s: bad port '%s'\n", prog, s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	unsigned cport = DIAG_VSOCK_CONTROL_PORT, dport = DIAG_VSOCK_DATA_PORT;
	int lfd[2];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--control-port") == 0 && i + 1 < argc) {
			cport = parse_port(argv[++i]);
		} else if (strcmp(argv[i], "--data-port") == 0 && i + 1 < argc) {
			dport = parse_port(argv[++i]);
		} else {
			fprintf(stderr,
				"usage: %s [--control-port N] [--data-port N]\n"
				"Serves hvmm-diag / ohcldiag-dev over AF_VSOCK (defaults 1 and 2).\n",
				prog);
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	lfd[0] = listen_vsock(cport);
	lfd[1] = lfd[0] < 0 ? lfd[0] : listen_vsock(dport);
	if (lfd[0] < 0 || lfd[1] < 0) {
		fprintf(stderr, "%s: cannot listen on vsock ports %u/%u: %s\n", prog, cport, dport,
			strerror(-(lfd[0] < 0 ? lfd[0] : lfd[1])));
		return 1;
	}
	struct diag_server *s = diag_server_new(NULL);
	if (!s) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd[0], .events = POLLIN },
				       { .fd = lfd[1], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
			return 1;
		}
		for (int k = 0; k < 2; k++) {
			if (!p[k].revents)
				continue;
			int fd = accept4(lfd[k], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				/* EMFILE and friends: wait a little, keep serving. */
				if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
					usleep(100000);
				continue;
			}
			if (k == 1) {
				(void)diag_server_add_data(s, fd);
				continue;
			}
			struct ctl_arg *a = malloc(sizeof(*a));
			pthread_t t;
			if (!a) {
				close(fd);
				continue;
			}
			*a = (struct ctl_arg){ .s = s, .fd = fd };
			if (pthread_create(&t, NULL, ctl_thread, a) != 0) {
				free(a);
				close(fd);
				continue;
			}
			pthread_detach(t);
		}
	}
}
