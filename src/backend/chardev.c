/*
 * Character backend data path (contract and buffering policy in chardev.h):
 * an output ring filled by vCPU threads and drained by the event loop into a
 * non-blocking host fd, an input buffer filled from the host fd and handed
 * to the device, and the listen= / term socket server that attaches one
 * client at a time. Console and term set-up live in chardev_host.c, the
 * serial-string parser in chardev_spec.c.
 *
 * Threads: producers (chardev_write, any thread) only append to the ring
 * and kick the loop through an eventfd; everything that touches host fds
 * runs on the loop thread. The ring's rd/wr counters are under cd->lock; the
 * loop writes ring bytes to the fd without the lock, which is safe because
 * producers never overwrite unread bytes while a reader is attached (they
 * only drop old bytes in backlog mode, and attaching/detaching a reader
 * happens on the loop thread itself).
 */
#include "backend/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/log.h"

#define CHARDEV_INBUF 4096
/* How long chardev_destroy() waits for a slow reader to take the rest. */
#define CHARDEV_FINAL_FLUSH_MS 1000

struct chardev {
	enum chardev_backend backend;
	struct evloop *loop;
	char desc[CHARDEV_PATH_MAX + 32]; /* "listen=/path" etc., for messages */

	pthread_mutex_t lock;
	pthread_cond_t cb_done;

	/* Device side. */
	const struct chardev_ops *ops;
	void *ops_opaque;
	bool cb_running; /* a device callback runs on the loop thread */
	int escape;      /* byte value or -1 */
	void (*escape_fn)(void *opaque);
	void *escape_opaque;
	/* Input diverted away from the device (interactive console). */
	const struct chardev_ops *divert_ops;
	void *divert_opaque;
	/* Input injected for the device (console `i TEXT`), sent first. */
	uint8_t inj_buf[CHARDEV_INBUF];
	size_t inj_len;
	bool inj_paused;

	int kickfd;
	bool kick_pending;
	bool closing;

	/* Output ring; rd and wr count bytes since creation. */
	uint8_t *ring;
	size_t ring_cap;
	uint64_t rd, wr;
	bool discard;      /* none, or no output fd: output goes nowhere */
	bool drain_active; /* loop will drain: producers need not kick */
	bool out_blocked;  /* EAGAIN: waiting for EPOLLOUT */
	bool out_dead;     /* host fd failed: output discarded, counted */
	bool want_room;
	uint64_t dropped, dropped_logged;
	struct log_ratelimit drop_rl;

	/*
	 * Host fds; in_fd == out_fd for sockets ("peer" mode: one epoll
	 * registration with a combined mask). Changed on the loop thread.
	 */
	int in_fd, out_fd;
	bool in_sock, out_sock;
	bool in_pollable, out_pollable;
	bool in_watched, out_watched;
	uint32_t peer_events;
	bool in_eof, in_paused, resume_req;
	uint8_t in_buf[CHARDEV_INBUF];
	size_t in_off, in_len;

	/* listen= and term */
	bool is_listen;
	bool connected; /* always true for backends that are not listen/term */
	int listen_fd;
	int tcp_port;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char tmpdir[PATH_MAX];
	bool console;
};

static void chardev_kick_locked(struct chardev *cd)
{
	uint64_t one = 1;
	if (cd->kick_pending)
		return;
	cd->kick_pending = true;
	if (write(cd->kickfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("serial %s: eventfd: %s", cd->desc, strerror(errno));
}

/* ---- output ring ---------------------------------------------------- */

static size_t chardev_used(const struct chardev *cd)
{
	return (size_t)(cd->wr - cd->rd);
}

static void ring_put(struct chardev *cd, const uint8_t *p, size_t n)
{
	size_t off = (size_t)(cd->wr % cd->ring_cap);
	size_t first = n < cd->ring_cap - off ? n : cd->ring_cap - off;
	memcpy(cd->ring + off, p, first);
	memcpy(cd->ring, p + first, n - first);
	cd->wr += n;
}

/* Backlog mode: no reader attached. Keep the newest ring_cap bytes. */
static void ring_put_backlog(struct chardev *cd, const uint8_t *p, size_t n)
{
	size_t lost = 0;
	if (n > cd->ring_cap) {
		lost = n - cd->ring_cap;
		p += lost;
		n = cd->ring_cap;
	}
	size_t free_ = cd->ring_cap - chardev_used(cd);
	if (n > free_) {
		cd->rd += n - free_;
		lost += n - free_;
	}
	ring_put(cd, p, n);
	if (lost) {
		cd->dropped += lost;
		chardev_kick_locked(cd); /* the loop thread reports it */
	}
}

/* Room for producers, under lock. */
static size_t chardev_room_locked(const struct chardev *cd)
{
	if (cd->discard || cd->out_dead || (cd->is_listen && !cd->connected))
		return SIZE_MAX;
	size_t used = chardev_used(cd);
	return used < CHARDEV_OUT_ROOM ? CHARDEV_OUT_ROOM - used : 0;
}

size_t chardev_write(struct chardev *cd, const void *buf, size_t len)
{
	if (!len)
		return 0;
	pthread_mutex_lock(&cd->lock);
	if (cd->discard) {
		pthread_mutex_unlock(&cd->lock);
		return len;
	}
	if (cd->out_dead) {
		cd->dropped += len;
		chardev_kick_locked(cd);
		pthread_mutex_unlock(&cd->lock);
		return len;
	}
	if (cd->is_listen && !cd->connected) {
		ring_put_backlog(cd, buf, len);
		pthread_mutex_unlock(&cd->lock);
		return len;
	}
	size_t room = chardev_room_locked(cd);
	size_t n = len < room ? len : room;
	if (n) {
		ring_put(cd, buf, n);
		if (!cd->drain_active) {
			cd->drain_active = true;
			chardev_kick_locked(cd);
		}
	}
	if (n < len)
		cd->want_room = true;
	pthread_mutex_unlock(&cd->lock);
	return n;
}

size_t chardev_room(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	size_t room = chardev_room_locked(cd);
	if (!room)
		cd->want_room = true;
	pthread_mutex_unlock(&cd->lock);
	return room;
}

void chardev_resume_input(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	cd->resume_req = true;
	chardev_kick_locked(cd);
	pthread_mutex_unlock(&cd->lock);
}

/* ---- fd watches (loop thread, or create/destroy) --------------------- */

static void chardev_fd_cb(void *opaque, int fd, uint32_t events);

static bool chardev_want_in(const struct chardev *cd)
{
	return cd->in_fd >= 0 && !cd->in_eof && !cd->in_paused &&
	       !cd->in_len && !cd->closing &&
	       (cd->divert_ops || (cd->ops && cd->ops->input));
}

static void chardev_watch_one(struct chardev *cd, int fd, bool pollable,
			      bool want, bool *watched, uint32_t events)
{
	if (!pollable) {
		/* epoll cannot watch regular files: they are always ready. */
		if (want)
			chardev_kick_locked(cd);
		return;
	}
	if (want == *watched)
		return;
	int rc = want ? evloop_add_fd(cd->loop, fd, events, chardev_fd_cb, cd)
		      : evloop_del_fd(cd->loop, fd);
	if (rc && want)
		log_error("serial %s: cannot watch fd: %s", cd->desc,
			  strerror(-rc));
	else
		*watched = want;
}

/* Make the epoll registrations match what the state needs. */
static void chardev_update_watch(struct chardev *cd)
{
	if (cd->closing)
		return;
	bool want_in = chardev_want_in(cd);
	bool want_out = cd->out_fd >= 0 && cd->out_blocked && !cd->out_dead;

	if (cd->in_fd >= 0 && cd->in_fd == cd->out_fd) {
		uint32_t ev = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0);
		if (ev != cd->peer_events &&
		    !evloop_mod_fd(cd->loop, cd->in_fd, ev))
			cd->peer_events = ev;
		return;
	}
	if (cd->in_fd >= 0)
		chardev_watch_one(cd, cd->in_fd, cd->in_pollable, want_in,
				  &cd->in_watched, EPOLLIN);
	if (cd->out_fd >= 0)
		chardev_watch_one(cd, cd->out_fd, cd->out_pollable, want_out,
				  &cd->out_watched, EPOLLOUT);
}

/*
 * The socket peer is gone (EOF, error, hang-up). listen=: forget the client
 * and go back to backlog mode; unread output stays for the next client.
 * Otherwise (chardev_create_fds with one fd): input ends, output is dead.
 */
static void chardev_peer_gone(struct chardev *cd)
{
	if (cd->closing || cd->in_fd < 0)
		return;
	int fd = cd->in_fd;
	evloop_del_fd(cd->loop, fd);
	cd->peer_events = 0;
	if (cd->is_listen) {
		close(fd);
		cd->in_fd = cd->out_fd = -1;
		cd->connected = false;
		cd->out_blocked = false;
		cd->drain_active = false;
		cd->in_eof = false;
		log_info("serial %s: client disconnected", cd->desc);
		return;
	}
	/* Keep the fd open (closed at destroy) but stop polling it. */
	cd->in_fd = cd->out_fd = -1;
	cd->in_eof = true;
	if (!cd->out_dead) {
		cd->out_dead = true;
		cd->dropped += chardev_used(cd);
		cd->rd = cd->wr;
	}
	close(fd);
}

/* ---- loop-thread service ------------------------------------------- */

/*
 * Write buffered output to the host fd until empty or EAGAIN. At most a
 * backlog's worth per turn, so producers as fast as the fd cannot keep the
 * loop thread here forever. Lock held.
 */
static void chardev_drain(struct chardev *cd)
{
	size_t budget = CHARDEV_BACKLOG;
	while (!cd->closing && cd->out_fd >= 0 && !cd->out_dead &&
	       !cd->out_blocked) {
		size_t used = chardev_used(cd);
		if (!used) {
			cd->drain_active = false;
			return;
		}
		if (!budget) {
			chardev_kick_locked(cd); /* continue next turn */
			return;
		}
		size_t off = (size_t)(cd->rd % cd->ring_cap);
		size_t chunk = used < cd->ring_cap - off ? used
							 : cd->ring_cap - off;
		int fd = cd->out_fd;
		bool sock = cd->out_sock;
		pthread_mutex_unlock(&cd->lock);
		ssize_t n = sock ? send(fd, cd->ring + off, chunk,
					MSG_DONTWAIT | MSG_NOSIGNAL)
				 : write(fd, cd->ring + off, chunk);
		int err = n < 0 ? errno : EIO;
		pthread_mutex_lock(&cd->lock);
		if (n > 0) {
			cd->rd += (uint64_t)n;
			budget -= (size_t)n < budget ? (size_t)n : budget;
			continue;
		}
		if (n < 0 && err == EINTR)
			continue;
		if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
			cd->out_blocked = true;
			return;
		}
		if (cd->is_listen || cd->in_fd == cd->out_fd) {
			chardev_peer_gone(cd);
			return;
		}
		log_error("serial %s: output failed: %s; further output is "
			  "discarded",
			  cd->desc, strerror(err));
		cd->out_dead = true;
		cd->dropped += used;
		cd->rd = cd->wr;
	}
}

/* Read one chunk of host input into in_buf. Lock held. */
static void chardev_read_input(struct chardev *cd)
{
	if (!chardev_want_in(cd))
		return;
	int fd = cd->in_fd;
	bool sock = cd->in_sock;
	pthread_mutex_unlock(&cd->lock);
	ssize_t n = sock ? recv(fd, cd->in_buf, sizeof(cd->in_buf),
				MSG_DONTWAIT)
			 : read(fd, cd->in_buf, sizeof(cd->in_buf));
	int err = errno;
	pthread_mutex_lock(&cd->lock);
	if (n > 0) {
		cd->in_off = 0;
		cd->in_len = (size_t)n;
		return;
	}
	if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
		return;
	/* EOF or a dead fd: stop reading, never spin on it. */
	if (cd->in_fd == cd->out_fd) {
		chardev_peer_gone(cd);
		return;
	}
	cd->in_eof = true;
}

/* Hand held input to the device. Lock held; dropped around callbacks. */
/* Injected input goes to the device whatever mode input is in. Lock held. */
static void chardev_feed_injected(struct chardev *cd)
{
	while (cd->inj_len && !cd->inj_paused && !cd->closing && cd->ops &&
	       cd->ops->input) {
		size_t (*input)(void *, const uint8_t *, size_t) =
			cd->ops->input;
		void *op = cd->ops_opaque;
		uint8_t chunk[256];
		size_t len = cd->inj_len < sizeof(chunk) ? cd->inj_len : sizeof(chunk);
		memcpy(chunk, cd->inj_buf, len);
		cd->cb_running = true;
		pthread_mutex_unlock(&cd->lock);
		size_t took = input(op, chunk, len);
		pthread_mutex_lock(&cd->lock);
		cd->cb_running = false;
		pthread_cond_broadcast(&cd->cb_done);
		if (took > len)
			took = len;
		memmove(cd->inj_buf, cd->inj_buf + took, cd->inj_len - took);
		cd->inj_len -= took;
		if (took < len)
			cd->inj_paused = true;
	}
}

static void chardev_feed(struct chardev *cd)
{
	chardev_feed_injected(cd);
	while (cd->in_len && !cd->in_paused && !cd->closing) {
		bool diverted = cd->divert_ops != NULL;
		const struct chardev_ops *ops = diverted ? cd->divert_ops : cd->ops;
		if (!ops || !ops->input)
			break;
		const uint8_t *p = cd->in_buf + cd->in_off;
		size_t len = cd->in_len;
		if (!diverted && cd->escape >= 0 && cd->escape_fn) {
			const uint8_t *e = memchr(p, cd->escape, len);
			if (e == p) {
				void (*fn)(void *) = cd->escape_fn;
				void *op = cd->escape_opaque;
				cd->in_off++;
				cd->in_len--;
				cd->cb_running = true;
				pthread_mutex_unlock(&cd->lock);
				fn(op);
				pthread_mutex_lock(&cd->lock);
				cd->cb_running = false;
				pthread_cond_broadcast(&cd->cb_done);
				continue;
			}
			if (e)
				len = (size_t)(e - p);
		}
		size_t (*input)(void *, const uint8_t *, size_t) = ops->input;
		void *op = diverted ? cd->divert_opaque : cd->ops_opaque;
		cd->cb_running = true;
		pthread_mutex_unlock(&cd->lock);
		size_t took = input(op, p, len);
		pthread_mutex_lock(&cd->lock);
		cd->cb_running = false;
		pthread_cond_broadcast(&cd->cb_done);
		if (took > len)
			took = len;
		cd->in_off += took;
		cd->in_len -= took;
		if (took < len)
			cd->in_paused = true;
	}
	if (!cd->in_len)
		cd->in_off = 0;
}

static void chardev_service(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	if (cd->resume_req) {
		cd->resume_req = false;
		cd->in_paused = false;
		cd->inj_paused = false;
	}
	/* Nothing to wait for on a regular file: just try again. */
	if (!cd->out_pollable)
		cd->out_blocked = false;
	chardev_drain(cd);
	chardev_feed(cd);
	/* Regular-file input: one chunk per turn so other fds get served. */
	if (!cd->in_len && !cd->in_pollable) {
		chardev_read_input(cd);
		chardev_feed(cd);
	}
	chardev_update_watch(cd);

	uint64_t lost = cd->dropped - cd->dropped_logged;
	uint64_t total = cd->dropped;
	bool dead = cd->out_dead;
	cd->dropped_logged = cd->dropped;

	void (*room)(void *) = NULL;
	void *op = NULL;
	if (cd->want_room && cd->ops && cd->ops->room && !cd->closing &&
	    chardev_room_locked(cd) >= CHARDEV_OUT_ROOM / 2) {
		cd->want_room = false;
		room = cd->ops->room;
		op = cd->ops_opaque;
		cd->cb_running = true;
	}
	pthread_mutex_unlock(&cd->lock);
	if (lost)
		log_ratelimited(&cd->drop_rl, LOG_WARN,
				"serial %s: %llu bytes of guest output lost (%s); "
				"%llu in total",
				cd->desc, (unsigned long long)lost,
				dead ? "host output failed"
				     : "no client connected and the 1 MiB "
				       "backlog is full",
				(unsigned long long)total);
	if (room) {
		room(op);
		pthread_mutex_lock(&cd->lock);
		cd->cb_running = false;
		pthread_cond_broadcast(&cd->cb_done);
		pthread_mutex_unlock(&cd->lock);
	}
}

static void chardev_fd_cb(void *opaque, int fd, uint32_t events)
{
	struct chardev *cd = opaque;

	if (fd == cd->kickfd) {
		uint64_t cnt;
		if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			log_error("serial %s: eventfd: %s", cd->desc,
				  strerror(errno));
		pthread_mutex_lock(&cd->lock);
		cd->kick_pending = false;
		pthread_mutex_unlock(&cd->lock);
		chardev_service(cd);
		return;
	}

	pthread_mutex_lock(&cd->lock);
	if (fd == cd->out_fd && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		cd->out_blocked = false; /* retry; a real error shows then */
	if (fd == cd->in_fd && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		bool had = cd->in_len != 0;
		chardev_read_input(cd);
		/*
		 * A socket hang-up with nothing left to read: the peer is gone.
		 * (With data, the next turn reads on until EOF.)
		 */
		if (cd->in_fd == fd && cd->in_fd == cd->out_fd &&
		    (events & (EPOLLERR | EPOLLHUP)) && (had || !cd->in_len))
			chardev_peer_gone(cd);
	} else if (fd == cd->in_fd && fd == cd->out_fd &&
		   (events & (EPOLLERR | EPOLLHUP))) {
		chardev_peer_gone(cd);
	}
	pthread_mutex_unlock(&cd->lock);
	chardev_service(cd);
}

/* ---- listen= server -------------------------------------------------- */

static void chardev_accept_cb(void *opaque, int lfd, uint32_t events)
{
	struct chardev *cd = opaque;
	(void)events;

	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_guest("serial %s: accept: %s", cd->desc,
				  strerror(errno));
		return;
	}
	pthread_mutex_lock(&cd->lock);
	if (cd->closing || cd->in_fd >= 0) {
		bool busy = !cd->closing;
		pthread_mutex_unlock(&cd->lock);
		close(fd);
		if (busy)
			log_guest("serial %s: refused a second client (one "
				  "client at a time)",
				  cd->desc);
		return;
	}
	cd->in_fd = cd->out_fd = fd;
	cd->in_sock = cd->out_sock = true;
	cd->in_pollable = cd->out_pollable = true;
	cd->in_eof = false;
	cd->out_blocked = false;
	cd->connected = true;
	cd->drain_active = chardev_used(cd) != 0;
	cd->peer_events = chardev_want_in(cd) ? EPOLLIN : 0;
	int rc = evloop_add_fd(cd->loop, fd, cd->peer_events, chardev_fd_cb, cd);
	if (rc) {
		cd->in_fd = cd->out_fd = -1;
		cd->connected = false;
		cd->drain_active = false;
		pthread_mutex_unlock(&cd->lock);
		close(fd);
		log_error("serial %s: cannot watch client: %s", cd->desc,
			  strerror(-rc));
		return;
	}
	size_t backlog = chardev_used(cd);
	pthread_mutex_unlock(&cd->lock);
	if (backlog)
		log_info("serial %s: client connected, replaying %zu buffered "
			 "bytes",
			 cd->desc, backlog);
	else
		log_info("serial %s: client connected", cd->desc);
	chardev_service(cd);
}

/* ---- create / destroy ----------------------------------------------- */

static struct chardev *chardev_alloc(enum chardev_backend backend,
				     struct evloop *loop, size_t ring_cap)
{
	struct chardev *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return NULL;
	cd->ring = malloc(ring_cap);
	cd->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!cd->ring || cd->kickfd < 0) {
		if (cd->kickfd >= 0)
			close(cd->kickfd);
		free(cd->ring);
		free(cd);
		return NULL;
	}
	cd->backend = backend;
	cd->loop = loop;
	cd->ring_cap = ring_cap;
	cd->escape = -1;
	cd->in_fd = cd->out_fd = cd->listen_fd = -1;
	cd->connected = true;
	cd->tcp_port = -ENOTSUP;
	pthread_mutex_init(&cd->lock, NULL);
	pthread_cond_init(&cd->cb_done, NULL);
	snprintf(cd->desc, sizeof(cd->desc), "%s", chardev_backend_name(backend));
	return cd;
}

static void chardev_probe_cb(void *opaque, int fd, uint32_t events)
{
	(void)opaque;
	(void)fd;
	(void)events;
}

/* Whether epoll can watch fd (not for regular files or /dev/null). */
static bool chardev_pollable(struct evloop *loop, int fd)
{
	int rc = evloop_add_fd(loop, fd, 0, chardev_probe_cb, NULL);
	if (rc)
		return rc != -EPERM;
	evloop_del_fd(loop, fd);
	return true;
}

/* Attach host fds and register with the loop. */
static int chardev_start(struct chardev *cd, int in_fd, bool in_sock,
			 int out_fd, bool out_sock)
{
	cd->in_fd = in_fd;
	cd->out_fd = out_fd;
	cd->in_sock = in_sock;
	cd->out_sock = out_sock;
	if (in_fd >= 0)
		cd->in_pollable = chardev_pollable(cd->loop, in_fd);
	if (out_fd >= 0)
		cd->out_pollable = chardev_pollable(cd->loop, out_fd);
	if (out_fd < 0 && !cd->is_listen)
		cd->discard = true;
	int rc = evloop_add_fd(cd->loop, cd->kickfd, EPOLLIN, chardev_fd_cb, cd);
	if (rc)
		return rc;
	if (in_fd >= 0 && in_fd == out_fd) {
		rc = evloop_add_fd(cd->loop, in_fd, 0, chardev_fd_cb, cd);
		if (rc) {
			evloop_del_fd(cd->loop, cd->kickfd);
			return rc;
		}
	}
	if (cd->listen_fd >= 0) {
		rc = evloop_add_fd(cd->loop, cd->listen_fd, EPOLLIN,
				   chardev_accept_cb, cd);
		if (rc) {
			evloop_del_fd(cd->loop, cd->kickfd);
			return rc;
		}
	}
	return 0;
}

static void chardev_free(struct chardev *cd)
{
	if (cd->in_fd >= 0)
		close(cd->in_fd);
	if (cd->out_fd >= 0 && cd->out_fd != cd->in_fd)
		close(cd->out_fd);
	if (cd->listen_fd >= 0) {
		close(cd->listen_fd);
		if (cd->sock_path[0])
			unlink(cd->sock_path);
	}
	if (cd->tmpdir[0])
		rmdir(cd->tmpdir);
	if (cd->console)
		chardev_host_console_release();
	close(cd->kickfd);
	pthread_cond_destroy(&cd->cb_done);
	pthread_mutex_destroy(&cd->lock);
	free(cd->ring);
	free(cd);
}

static int chardev_open_term(struct chardev *cd, const struct chardev_spec *spec)
{
	int rc = chardev_host_term(spec->path, spec->title, NULL, true);
	if (!rc)
		rc = chardev_host_term_dir(cd->tmpdir, sizeof(cd->tmpdir),
					   cd->sock_path, sizeof(cd->sock_path));
	if (!rc)
		rc = chardev_host_listen_unix(cd->sock_path);
	if (rc < 0) {
		cd->sock_path[0] = '\0'; /* nothing to unlink */
		return rc;
	}
	cd->listen_fd = rc;
	/* From here chardev_free() removes the socket and the directory. */
	return chardev_host_term(spec->path, spec->title, cd->sock_path, false);
}

int chardev_create(const struct chardev_spec *spec, struct evloop *loop,
		   struct chardev **out)
{
	struct chardev_hostfd in = { -1, false }, outfd = { -1, false };
	bool listen_ = spec->backend == CHARDEV_LISTEN_UNIX ||
		       spec->backend == CHARDEV_LISTEN_TCP ||
		       spec->backend == CHARDEV_TERM;
	int rc = 0;

	*out = NULL;
	if (spec->backend == CHARDEV_FDS)
		return -EINVAL;
	chardev_host_ignore_sigpipe();
	struct chardev *cd = chardev_alloc(spec->backend, loop,
					   listen_ ? CHARDEV_BACKLOG
						   : CHARDEV_OUT_ROOM);
	if (!cd)
		return -ENOMEM;
	cd->is_listen = listen_;
	cd->connected = !listen_;

	switch (spec->backend) {
	case CHARDEV_NONE:
		break;
	case CHARDEV_CONSOLE:
		rc = chardev_host_console_claim();
		if (rc)
			break;
		cd->console = true;
		rc = chardev_host_std(STDIN_FILENO, false, &in);
		if (!rc)
			rc = chardev_host_std(STDOUT_FILENO, true, &outfd);
		break;
	case CHARDEV_STDERR:
		rc = chardev_host_std(STDERR_FILENO, true, &outfd);
		break;
	case CHARDEV_FILE:
		snprintf(cd->desc, sizeof(cd->desc), "file=%s", spec->path);
		outfd.fd = open(spec->path,
				O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
					O_NOCTTY,
				0644);
		if (outfd.fd < 0) {
			rc = -errno;
			log_error("serial file=%s: %s", spec->path,
				  strerror(errno));
			break;
		}
		/* Regular files ignore it; a FIFO or tty must not block. */
		fcntl(outfd.fd, F_SETFL, fcntl(outfd.fd, F_GETFL) | O_NONBLOCK);
		break;
	case CHARDEV_LISTEN_UNIX:
		snprintf(cd->desc, sizeof(cd->desc), "listen=%s", spec->path);
		rc = chardev_host_listen_unix(spec->path);
		if (rc >= 0) {
			cd->listen_fd = rc;
			strcpy(cd->sock_path, spec->path);
			rc = 0;
		}
		break;
	case CHARDEV_LISTEN_TCP:
		rc = chardev_host_listen_tcp(spec, &cd->tcp_port, cd->desc,
					     sizeof(cd->desc));
		if (rc >= 0) {
			cd->listen_fd = rc;
			rc = 0;
		}
		break;
	case CHARDEV_TERM:
		rc = chardev_open_term(cd, spec);
		break;
	case CHARDEV_FDS:
		break;
	}
	if (!rc)
		rc = chardev_start(cd, in.fd, in.sock, outfd.fd, outfd.sock);
	if (rc) {
		if (in.fd >= 0 && cd->in_fd < 0)
			close(in.fd);
		if (outfd.fd >= 0 && cd->out_fd < 0)
			close(outfd.fd);
		chardev_free(cd);
		return rc;
	}
	if (spec->backend == CHARDEV_LISTEN_UNIX ||
	    spec->backend == CHARDEV_LISTEN_TCP)
		log_info("serial %s: waiting for a client", cd->desc);
	*out = cd;
	return 0;
}

int chardev_create_fds(int in_fd, int out_fd, struct evloop *loop,
		       struct chardev **out)
{
	*out = NULL;
	chardev_host_ignore_sigpipe();
	struct chardev *cd = chardev_alloc(CHARDEV_FDS, loop, CHARDEV_OUT_ROOM);
	if (!cd)
		return -ENOMEM;
	int socktype;
	socklen_t sl = sizeof(socktype);
	bool in_sock = in_fd >= 0 &&
		       !getsockopt(in_fd, SOL_SOCKET, SO_TYPE, &socktype, &sl);
	sl = sizeof(socktype);
	bool out_sock = out_fd >= 0 &&
			!getsockopt(out_fd, SOL_SOCKET, SO_TYPE, &socktype, &sl);
	if (in_fd >= 0 && !in_sock)
		fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
	if (out_fd >= 0 && !out_sock && out_fd != in_fd)
		fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
	int rc = chardev_start(cd, in_fd, in_sock, out_fd, out_sock);
	if (rc) {
		chardev_free(cd);
		return rc;
	}
	*out = cd;
	return 0;
}

static uint64_t chardev_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Destroy-time: write what is left, waiting a bounded time. No loop. */
static void chardev_final_flush(struct chardev *cd)
{
	uint64_t deadline = chardev_now_ms() + CHARDEV_FINAL_FLUSH_MS;
	while (cd->out_fd >= 0 && !cd->out_dead && cd->connected &&
	       chardev_used(cd)) {
		size_t off = (size_t)(cd->rd % cd->ring_cap);
		size_t used = chardev_used(cd);
		size_t chunk = used < cd->ring_cap - off ? used
							 : cd->ring_cap - off;
		ssize_t n = cd->out_sock ? send(cd->out_fd, cd->ring + off,
						chunk,
						MSG_DONTWAIT | MSG_NOSIGNAL)
					 : write(cd->out_fd, cd->ring + off,
						 chunk);
		if (n > 0) {
			cd->rd += (uint64_t)n;
			continue;
		}
		uint64_t now = chardev_now_ms();
		if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
		    now >= deadline)
			break;
		struct pollfd pfd = { .fd = cd->out_fd, .events = POLLOUT };
		poll(&pfd, 1, (int)(deadline - now));
	}
	if (cd->is_listen && !cd->connected) {
		if (chardev_used(cd))
			log_info("serial %s: discarding %zu bytes of output "
				 "that no client connected to read",
				 cd->desc, chardev_used(cd));
		return;
	}
	cd->dropped += chardev_used(cd);
	cd->rd = cd->wr;
}

void chardev_destroy(struct chardev *cd)
{
	if (!cd)
		return;
	pthread_mutex_lock(&cd->lock);
	cd->closing = true;
	pthread_mutex_unlock(&cd->lock);

	/* From here on callbacks change no fd state; wait them out. */
	if (cd->listen_fd >= 0)
		evloop_del_fd(cd->loop, cd->listen_fd);
	evloop_del_fd(cd->loop, cd->kickfd);
	if (cd->in_fd >= 0 && cd->in_fd == cd->out_fd) {
		evloop_del_fd(cd->loop, cd->in_fd);
	} else {
		if (cd->in_watched)
			evloop_del_fd(cd->loop, cd->in_fd);
		if (cd->out_watched)
			evloop_del_fd(cd->loop, cd->out_fd);
	}

	chardev_final_flush(cd);
	if (cd->dropped)
		log_warn("serial %s: %llu bytes of guest output were lost in "
			 "total",
			 cd->desc, (unsigned long long)cd->dropped);
	chardev_free(cd);
}

void chardev_set_ops(struct chardev *cd, const struct chardev_ops *ops,
		     void *opaque)
{
	pthread_mutex_lock(&cd->lock);
	cd->ops = ops;
	cd->ops_opaque = opaque;
	if (!evloop_in_thread(cd->loop))
		while (cd->cb_running)
			pthread_cond_wait(&cd->cb_done, &cd->lock);
	if (ops)
		chardev_kick_locked(cd); /* deliver held input, start reading */
	pthread_mutex_unlock(&cd->lock);
}

void chardev_set_escape(struct chardev *cd, int byte, void (*fn)(void *opaque),
			void *opaque)
{
	pthread_mutex_lock(&cd->lock);
	cd->escape = byte >= 0 && byte <= 255 ? byte : -1;
	cd->escape_fn = fn;
	cd->escape_opaque = opaque;
	pthread_mutex_unlock(&cd->lock);
}

void chardev_divert_input(struct chardev *cd, const struct chardev_ops *ops,
			  void *opaque)
{
	pthread_mutex_lock(&cd->lock);
	cd->divert_ops = ops;
	cd->divert_opaque = opaque;
	/* A pause belonged to whoever took input before; the new taker decides. */
	cd->in_paused = false;
	if (!evloop_in_thread(cd->loop))
		while (cd->cb_running)
			pthread_cond_wait(&cd->cb_done, &cd->lock);
	chardev_kick_locked(cd);
	pthread_mutex_unlock(&cd->lock);
}

size_t chardev_inject_input(struct chardev *cd, const void *buf, size_t len)
{
	pthread_mutex_lock(&cd->lock);
	size_t room = sizeof(cd->inj_buf) - cd->inj_len;
	if (len > room)
		len = room;
	memcpy(cd->inj_buf + cd->inj_len, buf, len);
	cd->inj_len += len;
	chardev_kick_locked(cd);
	pthread_mutex_unlock(&cd->lock);
	return len;
}

enum chardev_backend chardev_backend(const struct chardev *cd)
{
	return cd->backend;
}

int chardev_tcp_port(struct chardev *cd)
{
	return cd->tcp_port;
}

const char *chardev_socket_path(struct chardev *cd)
{
	return cd->sock_path[0] ? cd->sock_path : NULL;
}

bool chardev_connected(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	bool c = cd->connected;
	pthread_mutex_unlock(&cd->lock);
	return c;
}

uint64_t chardev_dropped(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	uint64_t d = cd->dropped;
	pthread_mutex_unlock(&cd->lock);
	return d;
}

size_t chardev_pending(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	size_t n = chardev_used(cd);
	pthread_mutex_unlock(&cd->lock);
	return n;
}
