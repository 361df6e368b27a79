/*
 * Character backends: the host side of a serial port, configured with
 * OpenVMM's serial string (openvmm_entry cli_args.rs `SerialConfigCli`):
 *
 *   none | console | stderr | file=PATH | listen=PATH | listen=tcp:IP:PORT |
 *   term[=PROGRAM][,name=TITLE]
 *
 * A device (the UART) writes guest output with chardev_write(), which never
 * blocks: bytes go into an output ring that the event loop drains into the
 * host fd. When the ring is full the device is told "no room" and gets a
 * `room` callback once the ring has drained, so a slow reader applies
 * backpressure to the guest instead of losing bytes or stalling a vCPU.
 * Host input arrives through the device's `input` callback on the event loop
 * thread; a device that cannot take all of it returns a short count, which
 * pauses reading from the host fd until chardev_resume_input().
 *
 * Buffering per backend:
 *  - console, stderr, file=: a 64 KiB ring; when full, chardev_write()
 *    takes fewer bytes (backpressure). If the host fd fails for good
 *    (EPIPE, EIO, ENOSPC) output is discarded from then on, counted, and
 *    logged once plus a total at destroy.
 *  - listen= and term: while a client is connected, the same 64 KiB of room
 *    with backpressure. While no client is connected output is kept in a
 *    1 MiB backlog that is replayed to the next client that connects; when
 *    the backlog is full the oldest bytes are dropped, counted
 *    (chardev_dropped()) and reported with a rate-limited warning. One
 *    client at a time: a second connection is accepted and closed at once.
 *    A client may disconnect and another may connect later.
 *  - none: output is discarded, there is never input.
 *
 * term: a listen= Unix socket in a private temp directory, plus a terminal
 * emulator window started as `PROGRAM [-T TITLE] -e socat STDIO,rawer
 * UNIX-CONNECT:<socket>` (PROGRAM defaults to x-terminal-emulator, whose
 * -T/-e options every Debian alternative accepts; socat is the Debian
 * package `socat`). Creation fails with a message when there is no display
 * ($DISPLAY and $WAYLAND_DISPLAY unset) or a program is missing.
 *
 * console: stdin/stdout. When stdin is a terminal it is put in raw mode
 * (input as cfmakeraw, like OpenVMM: Ctrl-C goes to the guest; output
 * post-processing stays on so hvmm's own log lines on the same terminal
 * keep their carriage returns) and restored at
 * destroy, at exit() and on fatal signals (SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) whose handler was still
 * the default. Only one console chardev may exist at a time: a second
 * chardev_create() fails with -EBUSY. EOF on stdin just stops input.
 *
 * The first chardev_create() sets SIGPIPE to SIG_IGN if it was SIG_DFL, so a
 * reader going away shows up as EPIPE instead of killing the process.
 *
 * Threads and locks: chardev_write/room/resume_input may be called from any
 * thread (vCPU threads) and never block on I/O. The device callbacks run on
 * the event loop thread and are called with no chardev lock held, so a
 * device may call chardev_write() from them. Lock order: device lock ->
 * chardev lock -> evloop lock.
 */
#ifndef HVMM_BACKEND_CHARDEV_H
#define HVMM_BACKEND_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct chardev;

enum chardev_backend {
	CHARDEV_NONE,
	CHARDEV_CONSOLE,
	CHARDEV_STDERR,
	CHARDEV_FILE,        /* file=PATH */
	CHARDEV_LISTEN_UNIX, /* listen=PATH */
	CHARDEV_LISTEN_TCP,  /* listen=tcp:IP:PORT */
	CHARDEV_TERM,        /* term[=PROGRAM][,name=TITLE] */
	CHARDEV_FDS,         /* internal: caller's fds (chardev_create_fds) */
};

#define CHARDEV_PATH_MAX 4096
#define CHARDEV_TITLE_MAX 256

/* Output room while a reader exists, and the no-client backlog. */
#define CHARDEV_OUT_ROOM (64u * 1024)
#define CHARDEV_BACKLOG (1024u * 1024)

struct chardev_spec {
	enum chardev_backend backend;
	/* file=, listen= (Unix socket path), term= (program; "" = default) */
	char path[CHARDEV_PATH_MAX];
	/* term: name=TITLE ("" = none) */
	char title[CHARDEV_TITLE_MAX];
	/* listen=tcp: AF_INET or AF_INET6, address in network order. */
	int tcp_family;
	uint8_t tcp_addr[16];
	uint16_t tcp_port; /* 0 = any free port (see chardev_tcp_port) */
};

/*
 * Parse an OpenVMM serial string. 0, or -EINVAL with a one-line message in
 * err (if err && errlen) naming the problem. Only syntax is checked here;
 * files and sockets are opened by chardev_create().
 */
int chardev_spec_parse(const char *s, struct chardev_spec *out, char *err,
		       size_t errlen);

/* "none", "console", ... */
const char *chardev_backend_name(enum chardev_backend b);

/*
 * Open the backend and register its fds with loop (which may already be
 * running). 0, or -errno after logging one line saying what failed (bad
 * path, address in use, second console, no display for term, ...).
 */
int chardev_create(const struct chardev_spec *spec, struct evloop *loop,
		   struct chardev **out);

/*
 * A backend on fds the caller already has (pipes, a socketpair, a pty):
 * input is read from in_fd, output written to out_fd; either may be -1 and
 * they may be equal. The chardev takes ownership and closes them. Used by
 * tests and by code that builds its own relays.
 */
int chardev_create_fds(int in_fd, int out_fd, struct evloop *loop,
		       struct chardev **out);

/*
 * Unregister from the loop, write what is still buffered (waiting at most
 * about a second for a slow reader), log a total if output was lost, close
 * everything and restore the tty for console. No callback runs after this
 * returns. Must not be called from the chardev's own callbacks. NULL is ok.
 */
void chardev_destroy(struct chardev *cd);

struct chardev_ops {
	/*
	 * Host input, on the loop thread. Returns how many bytes the device
	 * took; less than len pauses input (the rest is kept, the host fd is no
	 * longer polled) until chardev_resume_input().
	 */
	size_t (*input)(void *opaque, const uint8_t *buf, size_t len);
	/*
	 * Called on the loop thread once output room is available again after
	 * a chardev_write() took fewer bytes than offered or chardev_room()
	 * returned 0.
	 */
	void (*room)(void *opaque);
};

/*
 * Attach the device (ops may be NULL to detach). Input that arrives while
 * no device is attached is held, not dropped. When this returns, callbacks
 * with the old ops are no longer running (unless called from one of them).
 */
void chardev_set_ops(struct chardev *cd, const struct chardev_ops *ops,
		     void *opaque);

/*
 * Queue guest output without blocking. Returns how many bytes were taken
 * (len, or fewer when there is no room: then `room` will be called).
 */
size_t chardev_write(struct chardev *cd, const void *buf, size_t len);

/* Bytes chardev_write() would take now (SIZE_MAX when unlimited). */
size_t chardev_room(struct chardev *cd);

/* Restart input after the device took a short count. Any thread. */
void chardev_resume_input(struct chardev *cd);

/*
 * Intercept one input byte value (e.g. Ctrl-Q for an interactive console):
 * it is removed from the input and fn(opaque) is called on the loop thread
 * instead. byte < 0 removes the escape.
 */
void chardev_set_escape(struct chardev *cd, int byte, void (*fn)(void *opaque),
			void *opaque);

/*
 * Sends host input to ops instead of the attached device (and without the
 * escape byte check) until called again with ops NULL: the interactive
 * console's command mode. Input that arrives meanwhile is not seen by the
 * device. Any thread; from another thread it waits for a running callback.
 */
void chardev_divert_input(struct chardev *cd, const struct chardev_ops *ops,
			  void *opaque);

/*
 * Queues bytes for the device as if they came from the host (console
 * `i TEXT`), ahead of host input and regardless of diversion. Returns how
 * many bytes fitted (a 4 KiB queue). Any thread.
 */
size_t chardev_inject_input(struct chardev *cd, const void *buf, size_t len);

enum chardev_backend chardev_backend(const struct chardev *cd);
/* Bound TCP port of a listen=tcp: backend, or -ENOTSUP. */
int chardev_tcp_port(struct chardev *cd);
/* Socket path of a listen= (Unix) or term backend, or NULL. */
const char *chardev_socket_path(struct chardev *cd);
/* listen=/term: a client is connected. Other backends: always true. */
bool chardev_connected(struct chardev *cd);
/* Output bytes lost so far (backlog overflow, failed host fd). */
uint64_t chardev_dropped(struct chardev *cd);
/* Output bytes buffered and not yet written to the host. */
size_t chardev_pending(struct chardev *cd);

/*
 * Restore the terminal that a console chardev put in raw mode. Async-signal
 * safe, idempotent; for a VMM that installs its own fatal-signal handlers.
 */
void chardev_console_restore(void);

/*
 * Internal to src/backend/chardev*.c: host fd set-up (chardev_host.c).
 */
struct chardev_hostfd {
	int fd;
	bool sock; /* use send/recv with MSG_DONTWAIT */
};
/* A private non-blocking descriptor for stdin/stdout/stderr; fd -1 if closed. */
int chardev_host_std(int stdfd, bool for_write, struct chardev_hostfd *out);
/* Claim stdin for a console chardev (-EBUSY if taken); raw mode if a tty. */
int chardev_host_console_claim(void);
/* Restore the tty and release the claim. */
void chardev_host_console_release(void);
/* SIGPIPE -> SIG_IGN if it is SIG_DFL. */
void chardev_host_ignore_sigpipe(void);
/* Listening sockets (backlog 1, non-blocking): fd or -errno, logged. */
int chardev_host_listen_unix(const char *path);
int chardev_host_listen_tcp(const struct chardev_spec *spec, int *port,
			    char *desc, size_t desclen);
/* term: mkdtemp() a private directory and name the socket inside it. */
int chardev_host_term_dir(char *dir, size_t dirlen, char *sock,
			  size_t socklen);
/*
 * term: check the display and programs, then start
 * `program [-T title] -e socat STDIO,rawer UNIX-CONNECT:sock_path`.
 * check_only stops after the checks. 0 or -errno, logged.
 */
int chardev_host_term(const char *program, const char *title,
		      const char *sock_path, bool check_only);

#endif
