/* hvmm-agent's diagnostics server: OpenHCL's diag.UnderhillDiag methods over
 * ttrpc (see diag_server.h; facts from openhcl/diag_server/src/diag_service.rs
 * and ../shared/docs/openvmm-reference.md §4). Requests come from the host
 * and are untrusted: every id is looked up, every string bounded by the
 * frame it came in, counts capped; a malformed frame ends the connection, a
 * malformed request gets an error status.
 *
 * Threads: one per control connection (requests in order), one per Wait
 * (responds when the child exits), one per child (waitpid), one per stream
 * (Kmsg/ReadFile copy, pty relay). Locks: s->lock (data conns, children)
 * and conn->wlock (response writes) are never held together.
 */
#include "diag/diag_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "diag/diag.pb-c.h"
#include "diag/ttrpc.h"
#include "diag/ttrpc.pb-c.h"

#define DIAG_MAX_ARGS 4096

struct data_conn {
	uint64_t id;
	int fd; /* -1: free slot */
};

struct child {
	pid_t pid; /* 0: free slot */
	bool exited;
	int status;
	int hold_out, hold_err; /* parent's copies, shut down at exit */
};

struct diag_server {
	struct diag_server_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t next_id;
	struct data_conn conns[DIAG_MAX_DATA_CONNS];
	struct child children[DIAG_MAX_CHILDREN];
};

/* A control connection, shared by its thread and its pending Wait threads. */
struct ctl_conn {
	int fd;
	pthread_mutex_t wlock;
	int refs; /* under wlock */
};

static void ctl_put(struct ctl_conn *c)
{
	pthread_mutex_lock(&c->wlock);
	int left = --c->refs;
	pthread_mutex_unlock(&c->wlock);
	if (left == 0) {
		close(c->fd);
		pthread_mutex_destroy(&c->wlock);
		free(c);
	}
}

static int default_open_kmsg(void *opaque)
{
	(void)opaque;
	int fd = open("/dev/kmsg", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

struct diag_server *diag_server_new(const struct diag_server_config *cfg)
{
	struct diag_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.open_kmsg)
		s->cfg.open_kmsg = default_open_kmsg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->next_id = 1;
	for (int i = 0; i < DIAG_MAX_DATA_CONNS; i++)
		s->conns[i].fd = -1;
	return s;
}

void diag_server_free(struct diag_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < DIAG_MAX_DATA_CONNS; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int diag_server_add_data(struct diag_server *s, int fd)
{
	int slot = 0;
	uint64_t id;

	pthread_mutex_lock(&s->lock);
	/* A free slot, else the oldest untaken connection makes room. */
	for (int i = 0; i < DIAG_MAX_DATA_CONNS; i++) {
		if (s->conns[i].fd < 0) {
			slot = i;
			break;
		}
		if (s->conns[i].id < s->conns[slot].id)
			slot = i;
	}
	if (s->conns[slot].fd >= 0)
		close(s->conns[slot].fd);
	id = s->next_id++;
	s->conns[slot].id = id;
	s->conns[slot].fd = fd;
	pthread_mutex_unlock(&s->lock);

	/* Registered before the id is sent: a request naming it finds it. */
	uint8_t raw[8];
	memcpy(raw, &id, sizeof(raw)); /* native endian, as OpenHCL sends it */
	int r = ttrpc_write_all(fd, raw, sizeof(raw));
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		for (int i = 0; i < DIAG_MAX_DATA_CONNS; i++) {
			if (s->conns[i].fd == fd && s->conns[i].id == id) {
				s->conns[i].fd = -1;
				close(fd);
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/* Removes and returns data connection id's fd; -1 if absent. No waiting:
 * a connection is registered before its id is sent, so a request naming an
 * id the client was given finds it unless it was already taken or dropped. */
static int take_conn(struct diag_server *s, uint64_t id)
{
	int fd = -1;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < DIAG_MAX_DATA_CONNS && id != 0; i++) {
		if (s->conns[i].fd >= 0 && s->conns[i].id == id) {
			fd = s->conns[i].fd;
			s->conns[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return fd;
}

/* --- responses ----------------------------------------------------------- */

static void respond(struct ctl_conn *c, uint32_t stream, int32_t code, const char *msg,
		    const ProtobufCMessage *result)
{
	uint8_t *frame;
	size_t len;
	if (ttrpc_frame_response(stream, code, msg, result, &frame, &len) < 0)
		return;
	pthread_mutex_lock(&c->wlock);
	(void)ttrpc_write_all(c->fd, frame, len);
	pthread_mutex_unlock(&c->wlock);
	free(frame);
}

static void respond_errno(struct ctl_conn *c, uint32_t stream, const char *what, int err)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
	respond(c, stream, TTRPC_CODE_UNKNOWN, msg, NULL);
}

/* --- Kmsg and ReadFile ------------------------------------------------------ */

struct stream_job {
	int src, conn;
	bool records; /* a record device (kmsg): NUL after each read */
	bool follow;
};

/* Copies records (each read + NUL) or raw bytes from src to conn until EOF,
 * no more records (not following), or the client hangs up. */
static void *stream_thread(void *arg)
{
	struct stream_job *j = arg;
	char buf[DIAG_FILE_LINE_MAX];

	for (;;) {
		if (j->follow) {
			struct pollfd p[2] = { { .fd = j->src, .events = POLLIN },
					       { .fd = j->conn, .events = POLLRDHUP } };
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
				break;
			if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		size_t max = j->records ? sizeof(buf) - 1 : sizeof(buf);
		ssize_t n = read(j->src, buf, max);
		if (n < 0) {
			if (errno == EINTR || (errno == EPIPE && j->records))
				continue; /* EPIPE: kmsg overwrote the record; next one */
			break;        /* EAGAIN: no more records, not following */
		}
		if (n == 0)
			break;
		if (j->records)
			buf[n++] = '\0';
		if (ttrpc_write_all(j->conn, buf, (size_t)n) < 0)
			break;
	}
	close(j->src);
	shutdown(j->conn, SHUT_WR);
	close(j->conn);
	free(j);
	return NULL;
}

static int start_detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return -r;
}

/* Opens the source (path, or the kernel log when path is NULL) and streams
 * it to data connection conn_id; responds before streaming starts. */
static void serve_read(struct diag_server *s, struct ctl_conn *c, uint32_t stream,
		       const char *path, uint64_t conn_id, bool follow)
{
	struct stat st;
	int src;

	int conn = take_conn(s, conn_id);
	if (conn < 0) {
		respond(c, stream, TTRPC_CODE_NOT_FOUND, "no such data connection", NULL);
		return;
	}
	if (path) {
		src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (src < 0)
			src = -errno;
	} else {
		src = s->cfg.open_kmsg(s->cfg.opaque);
	}
	if (src < 0) {
		respond_errno(c, stream, "failed to open file", -src);
		close(conn);
		return;
	}
	if (fstat(src, &st) < 0 || S_ISDIR(st.st_mode)) {
		respond(c, stream, TTRPC_CODE_UNKNOWN, "cannot read directory", NULL);
		close(src);
		close(conn);
		return;
	}
	struct stream_job *j = calloc(1, sizeof(*j));
	if (!j) {
		respond(c, stream, TTRPC_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
		close(src);
		close(conn);
		return;
	}
	j->src = src;
	j->conn = conn;
	j->records = !S_ISREG(st.st_mode);
	/* A regular file is copied once; follow applies to devices. */
	j->follow = follow && j->records;
	if (j->records && !j->follow)
		fcntl(src, F_SETFL, fcntl(src, F_GETFL) | O_NONBLOCK);
	if (start_detached(stream_thread, j) < 0) {
		respond(c, stream, TTRPC_CODE_RESOURCE_EXHAUSTED, "no thread", NULL);
		close(src);
		close(conn);
		free(j);
		return;
	}
	Diag__Empty empty = DIAG__EMPTY__INIT;
	respond(c, stream, TTRPC_CODE_OK, NULL, &empty.base);
}

/* --- Exec and Wait ------------------------------------------------------------ */

struct reaper_job {
	struct diag_server *s;
	pid_t pid;
};

static struct child *find_child(struct diag_server *s, pid_t pid)
{
	for (int i = 0; i < DIAG_MAX_CHILDREN; i++)
		if (s->children[i].pid == pid)
			return &s->children[i];
	return NULL;
}

static void *reaper_thread(void *arg)
{
	struct reaper_job *j = arg;
	int st = 0;
	while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&j->s->lock);
	struct child *ch = find_child(j->s, j->pid);
	if (ch) {
		ch->exited = true;
		ch->status = st;
		/* EOF for the client even if a grandchild keeps the socket. */
		if (ch->hold_out >= 0) {
			shutdown(ch->hold_out, SHUT_WR);
			close(ch->hold_out);
		}
		if (ch->hold_err >= 0) {
			shutdown(ch->hold_err, SHUT_WR);
			close(ch->hold_err);
		}
		ch->hold_out = ch->hold_err = -1;
	}
	pthread_cond_broadcast(&j->s->cond);
	pthread_mutex_unlock(&j->s->lock);
	free(j);
	return NULL;
}

struct pty_job {
	int master, in, out; /* in/out: data conns or -1 */
};

/* Relays client stdin -> pty and pty -> client stdout until the pty hangs
 * up (the child and everything on the terminal exited). */
static void *pty_thread(void *arg)
{
	struct pty_job *j = arg;
	char buf[4096];
	bool in_open = j->in >= 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = j->master, .events = POLLIN },
				       { .fd = in_open ? j->in : -1, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			ssize_t n = read(j->master, buf, sizeof(buf));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				break; /* EIO: the terminal's last user left */
			if (n > 0 && j->out >= 0 && ttrpc_write_all(j->out, buf, (size_t)n) < 0)
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(j->in, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false; /* keep the output flowing */
				continue;
			}
			if (ttrpc_write_all(j->master, buf, (size_t)n) < 0)
				break;
		}
	}
	close(j->master);
	if (j->in >= 0)
		close(j->in);
	if (j->out >= 0) {
		shutdown(j->out, SHUT_WR);
		close(j->out);
	}
	free(j);
	return NULL;
}

/* In the child: environment, stdio, exec. Reports errno on errpipe. */
static void __attribute__((noreturn))
child_exec(const Diag__ExecRequest *req, char **argv, int in, int out, int err,
	   const char *pty_name, int errpipe)
{
	int e;
	signal(SIGPIPE, SIG_DFL);
	if (req->clear_env)
		clearenv();
	for (size_t i = 0; i < req->n_env; i++) {
		const Diag__EnvPair *ep = req->env[i];
		if (!ep->name || !*ep->name || strchr(ep->name, '='))
			continue;
		if (ep->value_present_case == DIAG__ENV_PAIR__VALUE_PRESENT_VALUE)
			setenv(ep->name, ep->value, 1);
		else
			unsetenv(ep->name);
	}
	if (pty_name) {
		setsid();
		int t = open(pty_name, O_RDWR);
		if (t < 0)
			goto fail;
		ioctl(t, TIOCSCTTY, 0);
		if (dup2(t, 0) < 0 || dup2(t, 1) < 0 || dup2(t, 2) < 0)
			goto fail;
		if (t > 2)
			close(t);
		execvp(argv[0], argv);
		goto fail;
	}
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if ((in >= 0 ? dup2(in, 0) : dup2(nul, 0)) < 0 ||
	    (out >= 0 ? dup2(out, 1) : dup2(nul, 1)) < 0 ||
	    (err >= 0 ? dup2(err, 2) : dup2(nul, 2)) < 0)
		goto fail;
	execvp(argv[0], argv);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

static void serve_exec(struct diag_server *s, struct ctl_conn *c, uint32_t stream,
		       const Diag__ExecRequest *req)
{
	int in = -1, out = -1, err = -1, master = -1, errpipe[2] = { -1, -1 };
	char pty_name[64] = "";
	char **argv = NULL;
	const char *fail = NULL;
	int fail_errno = 0;
	pid_t pid = -1;

	if (!req->command || !*req->command || req->n_args > DIAG_MAX_ARGS) {
		respond(c, stream, TTRPC_CODE_INVALID_ARGUMENT, "bad command", NULL);
		return;
	}
	if ((req->stdin && (in = take_conn(s, req->stdin)) < 0) ||
	    (req->stdout && (out = take_conn(s, req->stdout)) < 0) ||
	    (req->stderr && (err = take_conn(s, req->stderr)) < 0)) {
		fail = "failed to get stdio conn";
		goto out;
	}
	if (req->combine_stderr && err < 0 && out >= 0)
		err = fcntl(out, F_DUPFD_CLOEXEC, 0); /* not inherited by other children */
	argv = calloc(req->n_args + 2, sizeof(*argv));
	if (!argv) {
		fail = "out of memory";
		goto out;
	}
	argv[0] = req->command;
	for (size_t i = 0; i < req->n_args; i++)
		argv[i + 1] = req->args[i];
	if (req->tty) {
		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
		    ptsname_r(master, pty_name, sizeof(pty_name)) != 0) {
			fail = "failed to create pty";
			fail_errno = errno;
			goto out;
		}
	}
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		fail = "pipe";
		fail_errno = errno;
		goto out;
	}
	/* The child slot first, so the reaper always finds it. */
	pthread_mutex_lock(&s->lock);
	struct child *ch = find_child(s, 0);
	pthread_mutex_unlock(&s->lock);
	if (!ch) {
		fail = "too many unwaited children";
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		fail = "fork";
		fail_errno = errno;
		goto out;
	}
	if (pid == 0)
		child_exec(req, argv, req->tty ? -1 : in, req->tty ? -1 : out,
			   req->tty ? -1 : err, req->tty ? pty_name : NULL, errpipe[1]);
	close(errpipe[1]);
	errpipe[1] = -1;
	int child_errno = 0;
	ssize_t n;
	while ((n = read(errpipe[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	if (n > 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		pid = -1;
		fail = "failed to launch";
		fail_errno = child_errno;
		goto out;
	}

	pthread_mutex_lock(&s->lock);
	ch = find_child(s, 0);
	if (ch) {
		ch->pid = pid;
		ch->exited = false;
		ch->hold_out = req->tty ? -1 : out;
		ch->hold_err = req->tty ? -1 : err;
	}
	pthread_mutex_unlock(&s->lock);
	if (req->tty) {
		struct pty_job *pj = malloc(sizeof(*pj));
		if (pj) {
			*pj = (struct pty_job){ .master = master, .in = in, .out = out };
			if (start_detached(pty_thread, pj) == 0) {
				master = in = out = -1;
			} else {
				free(pj);
			}
		}
		if (err >= 0)
			close(err);
		err = -1;
	} else {
		if (in >= 0)
			close(in);
		in = -1;
		if (ch) /* the reaper closes them */
			out = err = -1;
	}
	struct reaper_job *rj = malloc(sizeof(*rj));
	if (rj) {
		*rj = (struct reaper_job){ .s = s, .pid = pid };
		if (start_detached(reaper_thread, rj) < 0)
			free(rj);
	}
	Diag__ExecResponse resp = DIAG__EXEC_RESPONSE__INIT;
	resp.pid = pid;
	respond(c, stream, TTRPC_CODE_OK, NULL, &resp.base);
out:
	if (fail) {
		if (fail_errno)
			respond_errno(c, stream, fail, fail_errno);
		else
			respond(c, stream, TTRPC_CODE_UNKNOWN, fail, NULL);
	}
	free(argv);
	for (int i = 0; i < 2; i++)
		if (errpipe[i] >= 0)
			close(errpipe[i]);
	if (master >= 0)
		close(master);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
}

struct wait_job {
	struct diag_server *s;
	struct ctl_conn *c;
	uint32_t stream;
	pid_t pid;
};

static void *wait_thread(void *arg)
{
	struct wait_job *j = arg;
	struct diag_server *s = j->s;
	int status = 0;
	bool found = false;

	pthread_mutex_lock(&s->lock);
	struct child *ch = j->pid > 0 ? find_child(s, j->pid) : NULL;
	if (ch) {
		found = true;
		while (!ch->exited)
			pthread_cond_wait(&s->cond, &s->lock);
		status = ch->status;
		ch->pid = 0; /* waited: the slot is free */
	}
	pthread_mutex_unlock(&s->lock);
	if (!found) {
		respond(j->c, j->stream, TTRPC_CODE_NOT_FOUND, "pid not found", NULL);
	} else {
		Diag__WaitResponse resp = DIAG__WAIT_RESPONSE__INIT;
		/* As OpenHCL: the exit status, 255 when killed by a signal. */
		resp.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
		respond(j->c, j->stream, TTRPC_CODE_OK, NULL, &resp.base);
	}
	ctl_put(j->c);
	free(j);
	return NULL;
}

static void serve_wait(struct diag_server *s, struct ctl_conn *c, uint32_t stream, int32_t pid)
{
	struct wait_job *j = malloc(sizeof(*j));
	if (!j) {
		respond(c, stream, TTRPC_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	*j = (struct wait_job){ .s = s, .c = c, .stream = stream, .pid = pid };
	pthread_mutex_lock(&c->wlock);
	c->refs++;
	pthread_mutex_unlock(&c->wlock);
	if (start_detached(wait_thread, j) < 0) {
		ctl_put(c);
		free(j);
		respond(c, stream, TTRPC_CODE_RESOURCE_EXHAUSTED, "no thread", NULL);
	}
}

/* --- dispatch ----------------------------------------------------------------- */

#define UNPACK_OR_FAIL(type, fn, var)                                              \
	type *var = fn(NULL, req->payload.len, req->payload.data);                 \
	if (!var) {                                                                \
		respond(c, stream, TTRPC_CODE_INVALID_ARGUMENT, "bad request", NULL); \
		return;                                                            \
	}

static void dispatch(struct diag_server *s, struct ctl_conn *c, uint32_t stream,
		     const Ttrpc__Request *req)
{
	const char *svc = req->service ? req->service : "";
	const char *m = req->method ? req->method : "";

	if (strcmp(svc, "diag.OpenhclDiag") == 0 && strcmp(m, "Ping") == 0) {
		Diag__Empty empty = DIAG__EMPTY__INIT;
		respond(c, stream, TTRPC_CODE_OK, NULL, &empty.base);
		return;
	}
	if (strcmp(svc, "diag.UnderhillDiag") != 0)
		goto unimplemented;
	if (strcmp(m, "Exec") == 0) {
		UNPACK_OR_FAIL(Diag__ExecRequest, diag__exec_request__unpack, r);
		serve_exec(s, c, stream, r);
		diag__exec_request__free_unpacked(r, NULL);
	} else if (strcmp(m, "Wait") == 0) {
		UNPACK_OR_FAIL(Diag__WaitRequest, diag__wait_request__unpack, r);
		serve_wait(s, c, stream, r->pid);
		diag__wait_request__free_unpacked(r, NULL);
	} else if (strcmp(m, "Kmsg") == 0) {
		UNPACK_OR_FAIL(Diag__KmsgRequest, diag__kmsg_request__unpack, r);
		serve_read(s, c, stream, NULL, r->conn, r->follow);
		diag__kmsg_request__free_unpacked(r, NULL);
	} else if (strcmp(m, "ReadFile") == 0) {
		UNPACK_OR_FAIL(Diag__FileRequest, diag__file_request__unpack, r);
		if (!r->file_path || !*r->file_path)
			respond(c, stream, TTRPC_CODE_INVALID_ARGUMENT, "no file path", NULL);
		else
			serve_read(s, c, stream, r->file_path, r->conn, r->follow);
		diag__file_request__free_unpacked(r, NULL);
	} else {
		goto unimplemented;
	}
	return;
unimplemented:;
	char msg[160];
	snprintf(msg, sizeof(msg), "unknown method %.60s/%.60s", svc, m);
	respond(c, stream, TTRPC_CODE_UNIMPLEMENTED, msg, NULL);
}

void diag_server_serve_control(struct diag_server *s, int fd)
{
	struct ttrpc_decoder d;
	struct ttrpc_hdr h;
	const uint8_t *payload;
	struct ctl_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->refs = 1;
	pthread_mutex_init(&c->wlock, NULL);
	ttrpc_decoder_init(&d, 0);
	for (;;) {
		int r = ttrpc_read_frame(fd, &d, &h, &payload);
		if (r == -EMSGSIZE) {
			respond(c, h.stream_id, TTRPC_CODE_RESOURCE_EXHAUSTED, "message too long",
				NULL);
			continue;
		}
		if (r <= 0)
			break;
		if (h.type != TTRPC_MSG_REQUEST)
			break; /* a client sends nothing else: not ttrpc */
		Ttrpc__Request *req = ttrpc__request__unpack(NULL, h.length, payload);
		if (!req) {
			respond(c, h.stream_id, TTRPC_CODE_INVALID_ARGUMENT, "bad request", NULL);
			continue;
		}
		dispatch(s, c, h.stream_id, req);
		ttrpc__request__free_unpacked(req, NULL);
	}
	ttrpc_decoder_free(&d);
	/* Pending Wait threads still answer; they drop the last reference. */
	shutdown(fd, SHUT_RD);
	ctl_put(c);
}
