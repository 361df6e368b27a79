/*
 * The event loop: one thread that owns host file descriptors (serial
 * backends, sockets, eventfds, timers) and calls back into their owners.
 * vCPU threads never block on I/O; they hand work to this loop.
 *
 * Callbacks run on the loop thread. Registration calls are thread safe and
 * may be made from callbacks. After evloop_del_fd() returns, the callback for
 * that fd is not running and will not run again (unless called from that
 * very callback, which is allowed).
 */
#ifndef HVMM_CORE_EVLOOP_H
#define HVMM_CORE_EVLOOP_H

#include <stdint.h>

struct evloop;

/* events: EPOLLIN / EPOLLOUT / ... bits from <sys/epoll.h> */
typedef void (*evloop_fd_cb)(void *opaque, int fd, uint32_t events);

/* Returns NULL (errno set) on failure. */
struct evloop *evloop_create(void);
/* Starts the loop thread. 0 or -errno. */
int evloop_start(struct evloop *loop);
/* Stops the thread (joins it) and frees the loop. Fds are not closed. */
void evloop_destroy(struct evloop *loop);

int evloop_add_fd(struct evloop *loop, int fd, uint32_t events,
		  evloop_fd_cb cb, void *opaque);
int evloop_mod_fd(struct evloop *loop, int fd, uint32_t events);
int evloop_del_fd(struct evloop *loop, int fd);

/*
 * Run fn(opaque) on the loop thread soon (used to wake a backend, e.g. when a
 * UART gets new output). Safe from any thread; 0 or -errno.
 */
int evloop_call(struct evloop *loop, void (*fn)(void *opaque), void *opaque);

#endif
