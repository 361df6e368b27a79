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

#include <stdbool.h>
#include <stdint.h>

struct evloop;

/* events: EPOLLIN / EPOLLOUT / ... bits from <sys/epoll.h> */
typedef void (*evloop_fd_cb)(void *opaque, int fd, uint32_t events);

/* Returns NULL (errno set) on failure. */
struct evloop *evloop_create(void);
/* Starts the loop thread. 0 or -errno. */
int evloop_start(struct evloop *loop);
/*
 * Stops the thread (joins it) and frees the loop. Fds are not closed; calls
 * queued with evloop_call() that have not run yet are dropped. Must not be
 * called from the loop thread. Destroy the fds' owners first.
 */
void evloop_destroy(struct evloop *loop);

/*
 * Watch fd for events (level triggered; EPOLLERR/EPOLLHUP are always
 * reported). 0, -EEXIST when fd is already watched, or -errno from epoll
 * (-EPERM for regular files, which epoll cannot watch).
 */
int evloop_add_fd(struct evloop *loop, int fd, uint32_t events,
		  evloop_fd_cb cb, void *opaque);
/* Change the event mask of a watched fd. 0, -ENOENT, or -errno. */
int evloop_mod_fd(struct evloop *loop, int fd, uint32_t events);
/*
 * Stop watching fd. 0 or -ENOENT. From another thread this waits until a
 * running callback for fd has returned, so the caller may then free the
 * callback's opaque data. The fd itself is not closed.
 */
int evloop_del_fd(struct evloop *loop, int fd);

/*
 * Run fn(opaque) on the loop thread soon (used to wake a backend, e.g. when a
 * UART gets new output). Safe from any thread; 0 or -errno.
 */
int evloop_call(struct evloop *loop, void (*fn)(void *opaque), void *opaque);

/* True when called on the loop's own thread (i.e. from a callback). */
bool evloop_in_thread(struct evloop *loop);

#endif
