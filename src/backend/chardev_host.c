/*
 * Host plumbing for the character backends (chardev.h): private
 * non-blocking descriptors for stdin/stdout/stderr, the console's claim on
 * stdin and its raw-mode terminal (restored at destroy, exit and fatal
 * signals), the listening sockets of listen= (replacing a stale Unix
 * socket file, never a live one or a regular file), and the temp directory
 * and terminal window of the `term` backend.
 *
 * Non-blocking without side effects: O_NONBLOCK is a property of the open
 * file description, which stdout usually shares with stderr and with the
 * shell. Setting it on fd 1 would make our own log writes fail with EAGAIN
 * and could leave the shell's terminal non-blocking. So ttys, pipes and
 * FIFOs are reopened through /proc/self/fd/N, which yields a new open file
 * description of the same object; sockets use send/recv with MSG_DONTWAIT;
 * regular files never block anyway.
 */
#include "backend/chardev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/log.h"

int chardev_host_std(int stdfd, bool for_write, struct chardev_hostfd *out)
{
	struct stat st;

	out->fd = -1;
	out->sock = false;
	if (fstat(stdfd, &st) < 0)
		return 0; /* closed: no input / output */
	if (S_ISSOCK(st.st_mode)) {
		out->fd = fcntl(stdfd, F_DUPFD_CLOEXEC, 3);
		out->sock = true;
	} else if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ||
		   S_ISDIR(st.st_mode)) {
		out->fd = fcntl(stdfd, F_DUPFD_CLOEXEC, 3);
	} else {
		char path[32];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", stdfd);
		out->fd = open(path,
			       (for_write ? O_WRONLY : O_RDONLY) | O_NONBLOCK |
				       O_CLOEXEC | O_NOCTTY);
		if (out->fd < 0) {
			/* No /proc: share the description after all. */
			out->fd = fcntl(stdfd, F_DUPFD_CLOEXEC, 3);
			if (out->fd >= 0)
				fcntl(out->fd, F_SETFL,
				      fcntl(out->fd, F_GETFL) | O_NONBLOCK);
		}
	}
	if (out->fd < 0) {
		int err = errno;
		log_error("serial: cannot use %s: %s",
			  stdfd == 0 ? "stdin" : stdfd == 1 ? "stdout" : "stderr",
			  strerror(err));
		return -err;
	}
	return 0;
}

static void chardev_host_ignore_sigpipe_once(void)
{
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
	    !(sa.sa_flags & SA_SIGINFO)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

void chardev_host_ignore_sigpipe(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, chardev_host_ignore_sigpipe_once);
}

/* ---- console: the one user of stdin ---------------------------------- */

static pthread_mutex_t console_lock = PTHREAD_MUTEX_INITIALIZER;
static bool console_claimed;
static bool console_hooks_installed;
static struct termios console_saved;
/* Set after console_saved is filled; read by signal handlers. */
static volatile sig_atomic_t console_raw;

static const int console_fatal_signals[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
	SIGABRT,
};

void chardev_console_restore(void)
{
	if (console_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &console_saved);
		console_raw = 0;
	}
}

static void console_fatal_signal(int sig)
{
	chardev_console_restore();
	/* SA_RESETHAND restored the default action: die the usual way. */
	raise(sig);
}

static void console_restore_atexit(void)
{
	chardev_console_restore();
}

/* Called once, with console_lock held. */
static void console_install_hooks(void)
{
	atexit(console_restore_atexit);
	for (size_t i = 0; i < sizeof(console_fatal_signals) /
				       sizeof(console_fatal_signals[0]);
	     i++) {
		int sig = console_fatal_signals[i];
		struct sigaction old, sa;
		if (sigaction(sig, NULL, &old) < 0 ||
		    (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
			continue; /* someone else handles it; leave it be */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = console_fatal_signal;
		sa.sa_flags = SA_RESETHAND;
		sigemptyset(&sa.sa_mask);
		sigaction(sig, &sa, NULL);
	}
}

/* Raw input, output processing kept (see chardev.h). */
static void console_make_raw(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO))
		return;
	/* A background job would be stopped by SIGTTOU: leave the tty be. */
	if (tcgetpgrp(STDIN_FILENO) != getpgrp())
		return;
	if (tcgetattr(STDIN_FILENO, &console_saved) < 0)
		return;
	t = console_saved;
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
				 IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	console_raw = 1;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		console_raw = 0;
}

int chardev_host_console_claim(void)
{
	pthread_mutex_lock(&console_lock);
	if (console_claimed) {
		pthread_mutex_unlock(&console_lock);
		log_error("serial console: stdin/stdout are already used by "
			  "another serial port; only one port may use "
			  "'console'");
		return -EBUSY;
	}
	console_claimed = true;
	if (!console_hooks_installed) {
		console_hooks_installed = true;
		console_install_hooks();
	}
	console_make_raw();
	pthread_mutex_unlock(&console_lock);
	return 0;
}

void chardev_host_console_release(void)
{
	pthread_mutex_lock(&console_lock);
	chardev_console_restore();
	console_claimed = false;
	pthread_mutex_unlock(&console_lock);
}

/* ---- listen= sockets -------------------------------------------------- */

int chardev_host_listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("serial listen=%s: path too long for a Unix socket",
			  path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("serial listen=%s: file exists and is not a "
				  "socket",
				  path);
			return -EEXIST;
		}
		/* A socket file: stale unless someone still listens there. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int live = connect(probe, (struct sockaddr *)&sa,
					   sizeof(sa)) == 0;
			close(probe);
			if (live) {
				log_error("serial listen=%s: another process "
					  "is listening on this socket",
					  path);
				return -EADDRINUSE;
			}
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			int err = errno;
			log_error("serial listen=%s: cannot remove stale "
				  "socket: %s",
				  path, strerror(err));
			return -err;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0) {
		int err = errno;
		close(fd);
		log_error("serial listen=%s: %s", path, strerror(err));
		return -err;
	}
	return fd;
}

int chardev_host_listen_tcp(const struct chardev_spec *spec, int *port,
			    char *desc, size_t desclen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char addr[INET6_ADDRSTRLEN] = "?";

	memset(&ss, 0, sizeof(ss));
	if (spec->tcp_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(spec->tcp_port);
		memcpy(&s6->sin6_addr, spec->tcp_addr, 16);
		len = sizeof(*s6);
	} else if (spec->tcp_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(spec->tcp_port);
		memcpy(&s4->sin_addr, spec->tcp_addr, 4);
		len = sizeof(*s4);
	} else {
		return -EINVAL;
	}
	inet_ntop(spec->tcp_family, spec->tcp_addr, addr, sizeof(addr));

	int fd = socket(spec->tcp_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0) {
		int err = errno;
		close(fd);
		log_error("serial listen=tcp:%s:%u: %s", addr, spec->tcp_port,
			  strerror(err));
		return -err;
	}
	len = sizeof(ss);
	*port = spec->tcp_port;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		*port = ntohs(ss.ss_family == AF_INET6 ?
			      ((struct sockaddr_in6 *)&ss)->sin6_port :
			      ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(desc, desclen,
		 spec->tcp_family == AF_INET6 ? "listen=tcp:[%s]:%d"
					      : "listen=tcp:%s:%d",
		 addr, *port);
	return fd;
}


int chardev_host_term_dir(char *dir, size_t dirlen, char *sock,
			  size_t socklen)
{
	const char *tmp = getenv("TMPDIR");
	int rc = 0;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	if ((size_t)snprintf(dir, dirlen, "%s/hvmm-term-XXXXXX", tmp) >= dirlen)
		rc = -ENAMETOOLONG;
	else if (!mkdtemp(dir))
		rc = -errno;
	if (rc) {
		dir[0] = '\0';
		log_error("serial term: cannot create a temp directory in %s: %s",
			  tmp, strerror(-rc));
		return rc;
	}
	if ((size_t)snprintf(sock, socklen, "%s/serial.sock", dir) >= socklen) {
		log_error("serial term: temp directory path %s is too long for "
			  "a Unix socket",
			  dir);
		rmdir(dir);
		dir[0] = '\0';
		sock[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ---- term: a terminal window relaying to a listen socket ------------- */

/* Resolve name like execvp would. 0 or -ENOENT. */
static int host_which(const char *name, char *out, size_t outlen)
{
	struct stat st;

	if (strchr(name, '/')) {
		if (strlen(name) >= outlen || access(name, X_OK) < 0 ||
		    stat(name, &st) < 0 || !S_ISREG(st.st_mode))
			return -ENOENT;
		strcpy(out, name);
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t dlen = end ? (size_t)(end - path) : strlen(path);
		if (dlen && (size_t)snprintf(out, outlen, "%.*s/%s", (int)dlen,
					     path, name) < outlen &&
		    access(out, X_OK) == 0 && stat(out, &st) == 0 &&
		    S_ISREG(st.st_mode))
			return 0;
		if (!end)
			break;
		path = end + 1;
	}
	return -ENOENT;
}

/*
 * Double fork so the window outlives nothing and leaves no zombie; the
 * grandchild reports an exec failure through a close-on-exec pipe. Only
 * async-signal-safe calls between fork and exec.
 */
static int host_spawn(const char *file, char *const argv[])
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -err;
	}
	if (pid == 0) {
		int err;
		sigset_t none;
		close(pfd[0]);
		setsid();
		pid_t g = fork();
		if (g != 0) {
			if (g < 0) {
				err = errno;
				if (write(pfd[1], &err, sizeof(err)) < 0)
					_exit(1);
			}
			_exit(0);
		}
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
			if (nul > STDERR_FILENO)
				close(nul);
		}
#ifdef CLOSE_RANGE_CLOEXEC
		/* Keep our sockets, KVM fds etc. out of the terminal. */
		close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
#endif
		execv(file, argv);
		err = errno;
		if (write(pfd[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	int child_err = 0;
	ssize_t n;
	do
		n = read(pfd[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	return n == (ssize_t)sizeof(child_err) ? -child_err : 0;
}

int chardev_host_term(const char *program, const char *title,
		      const char *sock_path, bool check_only)
{
	const char *prog = program && *program ? program : "x-terminal-emulator";
	const char *disp = getenv("DISPLAY");
	const char *wl = getenv("WAYLAND_DISPLAY");
	char prog_path[PATH_MAX], socat_path[PATH_MAX];

	if ((!disp || !*disp) && (!wl || !*wl)) {
		log_error("serial term: no graphical display ($DISPLAY and "
			  "$WAYLAND_DISPLAY are unset); use listen=PATH and "
			  "connect a terminal to it instead");
		return -ENXIO;
	}
	if (host_which(prog, prog_path, sizeof(prog_path))) {
		log_error("serial term: terminal program '%s' not found%s",
			  prog,
			  program && *program ? ""
					      : " (install a terminal emulator "
						"or pass term=PROGRAM)");
		return -ENOENT;
	}
	if (host_which("socat", socat_path, sizeof(socat_path))) {
		log_error("serial term: 'socat' not found; it relays the "
			  "terminal window to the serial port (Debian package "
			  "'socat')");
		return -ENOENT;
	}
	if (check_only)
		return 0;

	char connect[PATH_MAX];
	snprintf(connect, sizeof(connect), "UNIX-CONNECT:%s", sock_path);
	char *argv[10];
	int n = 0;
	argv[n++] = (char *)prog;
	if (title && *title) {
		argv[n++] = "-T";
		argv[n++] = (char *)title;
	}
	argv[n++] = "-e";
	argv[n++] = socat_path;
	argv[n++] = "STDIO,rawer";
	argv[n++] = connect;
	argv[n] = NULL;

	int rc = host_spawn(prog_path, argv);
	if (rc)
		log_error("serial term: cannot start %s: %s", prog_path,
			  strerror(-rc));
	else
		log_info("serial term: opened a %s window on %s", prog,
			 sock_path);
	return rc;
}
