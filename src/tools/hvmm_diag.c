/* hvmm-diag: the host's diagnostics client with ohcldiag-dev's command line
 * (openhcl/ohcldiag-dev; ../shared/docs/openvmm-reference.md §4), speaking
 * OpenHCL's diag.UnderhillDiag protocol over hvmm's (or OpenVMM's) hybrid
 * vsock socket to hvmm-agent in a Linux guest, or to OpenHCL itself:
 *   hvmm-diag [vsock:]PATH kmsg [-f] [-r] [-v] | shell [SHELL [ARGS]] |
 *             run CMD [ARGS] | file -p PATH [-f] |
 *             vsock-tcp-relay VPORT TCPPORT [-r] [-a] |
 *             inspect [-r] [-l N] [PATH] (hvmm's own tree, not the guest's)
 * Errors are one line on stderr and exit status 1; `run` exits with the
 * command's status.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "diag/diag_client.h"

static const char *prog = "hvmm-diag";

static void __attribute__((noreturn)) usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [vsock:]PATH COMMAND [ARGS]\n"
		"  PATH: hvmm's --vmbus-vsock-path socket (the guest runs hvmm-agent)\n"
		"commands:\n"
		"  kmsg [-f] [-r] [-v]        the guest's kernel log (-f follow, -r reconnect)\n"
		"  shell [SHELL [ARGS]]       an interactive shell on a pty (default /bin/sh)\n"
		"  run CMD [ARGS]             run a command; exits with its status\n"
		"  file -p PATH [-f]          copy a guest file to stdout\n"
		"  vsock-tcp-relay VPORT TCPPORT [-r] [-a]\n"
		"                             relay 127.0.0.1:TCPPORT (-a: all addresses) to\n"
		"                             guest vsock port VPORT\n"
		"  inspect [-r] [-l N] [PATH] hvmm's inspect tree at PATH (-r: all levels,\n"
		"                             -l N: N levels; default the node itself);\n"
		"                             -j/-p: not supported yet\n",
		prog);
	exit(rc);
}

static void __attribute__((noreturn)) die(const char *msg)
{
	fprintf(stderr, "%s: %s\n", prog, msg);
	exit(1);
}

static void open_client(struct diag_client *c, const char *path)
{
	if (diag_client_open(c, diag_hybrid_dial, (void *)path) < 0)
		die(c->err);
}

static int cmd_kmsg(const char *path, int argc, char **argv)
{
	bool follow = false, reconnect = false, verbose = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else if (!strcmp(argv[i], "-r") || !strcmp(argv[i], "--reconnect"))
			reconnect = true;
		else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			verbose = true;
		else
			usage(2);
	}
	for (;;) {
		struct diag_client c;
		if (verbose)
			fprintf(stderr, "Connecting to the diagnostics server.\n");
		int r = diag_client_open(&c, diag_hybrid_dial, (void *)path);
		if (r == 0) {
			if (verbose)
				fprintf(stderr, "Connected.\n");
			r = diag_client_kmsg(&c, follow, STDOUT_FILENO);
		}
		if (r != 0 && !reconnect)
			die(c.err);
		diag_client_close(&c);
		if (!reconnect)
			return 0;
		if (verbose)
			fprintf(stderr, "%s. Reconnecting.\n",
				r ? c.err : "Lost connection to the diagnostics server");
		sleep(1);
	}
}

static int cmd_file(const char *path, int argc, char **argv)
{
	const char *file = NULL;
	bool follow = false;
	struct diag_client c;

	for (int i = 0; i < argc; i++) {
		if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--file-path")) && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else
			usage(2);
	}
	if (!file)
		usage(2);
	open_client(&c, path);
	if (diag_client_read_file(&c, file, follow, STDOUT_FILENO) != 0)
		die(c.err);
	diag_client_close(&c);
	return 0;
}

/* True when fd is /dev/null: no stdin connection is needed. */
static bool is_devnull(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
	       minor(st.st_rdev) == 3;
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
}

static int cmd_exec(const char *path, int argc, char **argv, bool shell)
{
	struct diag_client c;
	struct diag_exec e = { .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO,
			       .err_fd = STDERR_FILENO };
	int code = 0;

	if (shell) {
		e.command = argc > 0 ? argv[0] : "/bin/sh";
		e.tty = true;
		e.term = getenv("TERM") ? getenv("TERM") : "xterm-256color";
	} else {
		if (argc < 1)
			usage(2);
		e.command = argv[0];
		if (is_devnull(STDIN_FILENO))
			e.in_fd = -1;
	}
	e.args = (const char *const *)(argc > 0 ? argv + 1 : argv);
	e.n_args = argc > 0 ? (size_t)argc - 1 : 0;
	open_client(&c, path);
	if (shell && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = true;
		atexit(restore_tty);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	}
	int r = diag_client_run(&c, &e, &code);
	restore_tty();
	tio_saved = false;
	if (r != 0)
		die(c.err);
	diag_client_close(&c);
	if (shell && code != 0)
		fprintf(stderr, "shell exited with non-zero exit code: %d\n", code);
	return code;
}

/* Copies both ways between a and b until both directions ended. */
static void relay(int a, int b)
{
	char buf[16384];
	bool open_ab = true, open_ba = true;
	while (open_ab || open_ba) {
		struct pollfd p[2] = { { .fd = open_ab ? a : -1, .events = POLLIN },
				       { .fd = open_ba ? b : -1, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int k = 0; k < 2; k++) {
			int src = k ? b : a, dst = k ? a : b;
			bool *open = k ? &open_ba : &open_ab;
			if (!p[k].revents)
				continue;
			ssize_t n = read(src, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || ttrpc_write_all(dst, buf, (size_t)n) < 0) {
				*open = false;
				shutdown(dst, SHUT_WR);
			}
		}
	}
}

static int cmd_tcp_relay(const char *path, int argc, char **argv)
{
	bool reconnect = false, remote = false;
	const char *pos[2] = { NULL, NULL };
	int npos = 0;
	char err[512];

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-r") || !strcmp(argv[i], "--reconnect"))
			reconnect = true;
		else if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--allow-remote"))
			remote = true;
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			usage(2);
	}
	if (npos != 2)
		usage(2);
	char *end;
	unsigned long vport = strtoul(pos[0], &end, 0);
	if (*pos[0] == '\0' || *end || vport > 0xffffffffUL)
		die("bad vsock port");
	unsigned long tport = strtoul(pos[1], &end, 0);
	if (*pos[1] == '\0' || *end || tport > 65535)
		die("bad TCP port");
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)tport),
				  .sin_addr.s_addr = htonl(remote ? INADDR_ANY : INADDR_LOOPBACK) };
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0) {
		snprintf(err, sizeof(err), "binding to port %lu: %s", tport, strerror(errno));
		die(err);
	}
	printf("TCP listening on %s:%lu\n", remote ? "0.0.0.0" : "127.0.0.1", tport);
	fflush(stdout);
	do {
		int t = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (t < 0) {
			if (errno == EINTR)
				continue;
			die(strerror(errno));
		}
		printf("TCP accept\n");
		fflush(stdout);
		int v = diag_hybrid_dial((void *)path, (uint32_t)vport, err, sizeof(err));
		if (v < 0)
			die(err);
		printf("VSOCK connect to port %lu\n", vport);
		fflush(stdout);
		relay(t, v);
		close(t);
		close(v);
		printf("Connection closed\n");
		fflush(stdout);
	} while (reconnect);
	close(l);
	return 0;
}

/* inspect [-r] [-l N] [PATH]: hvmm's inspect tree (the socket's INSPECT). */
static int cmd_inspect(const char *sock, int argc, char **argv)
{
	int depth = 0;
	const char *ipath = "";
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-r") || !strcmp(argv[i], "--recursive")) {
			depth = -1;
		} else if ((!strcmp(argv[i], "-l") || !strcmp(argv[i], "--limit")) && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || end == argv[i] || v < 0 || v > 64)
				die("inspect: -l wants a depth from 0 to 64");
			depth = v > 32 ? 32 : (int)v; /* hvmm cuts nesting below 32 anyway */
		} else if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json") ||
			   !strcmp(argv[i], "-p") || !strcmp(argv[i], "--paths") ||
			   !strncmp(argv[i], "-u", 2) || !strcmp(argv[i], "--update")) {
			fprintf(stderr, "%s: inspect %s: not supported yet\n", prog, argv[i]);
			return 2;
		} else if (argv[i][0] == '-' || *ipath) {
			usage(2);
		} else {
			ipath = argv[i];
		}
	}
	char err[512];
	if (diag_hybrid_inspect(sock, depth, ipath, STDOUT_FILENO, err, sizeof(err)) < 0)
		die(err);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		usage(0);
	if (argc < 3)
		usage(2);
	signal(SIGPIPE, SIG_IGN);
	const char *path = argv[1];
	if (!strncmp(path, "vsock:", 6))
		path += 6;
	const char *cmd = argv[2];
	int n = argc - 3;
	char **rest = argv + 3;

	if (!strcmp(cmd, "kmsg"))
		return cmd_kmsg(path, n, rest);
	if (!strcmp(cmd, "file"))
		return cmd_file(path, n, rest);
	if (!strcmp(cmd, "run"))
		return cmd_exec(path, n, rest, false);
	if (!strcmp(cmd, "shell"))
		return cmd_exec(path, n, rest, true);
	if (!strcmp(cmd, "vsock-tcp-relay"))
		return cmd_tcp_relay(path, n, rest);
	if (!strcmp(cmd, "inspect") || !strcmp(cmd, "i"))
		return cmd_inspect(path, n, rest);
	fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
	usage(2);
}
