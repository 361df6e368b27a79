/* The diagnostics client (see diag_client.h): OpenHCL's diag_client and
 * ohcldiag-dev behaviour (openhcl/diag_client/src/lib.rs) in C. The hybrid
 * vsock handshake is read a byte at a time so nothing after "OK <n>\n" (a
 * data connection's 8-byte id) is swallowed. Whatever the guest sends is
 * untrusted: frames go through the capped ttrpc decoder, kmsg records are
 * bounded by DIAG_FILE_LINE_MAX.
 */
#include "diag/diag_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "diag/diag.pb-c.h"
#include "diag/diag_server.h"
#include "diag/ttrpc.pb-c.h"

#define HYBRID_TIMEOUT_MS 300000 /* a loaded host opens channels slowly */
#define DIAG_SERVICE "diag.UnderhillDiag"

/* Reads one byte with a deadline: 1, 0 on EOF, -errno (-ETIMEDOUT). */
static int read_byte(int fd, uint8_t *b, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, b, 1);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : (int)n;
	}
}

/* Connects to the hybrid vsock socket path: the fd, or -errno with err set. */
static int hybrid_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -ENOENT)
			snprintf(err, errlen,
				 "%s: no such socket (is hvmm running with --vmbus-vsock-path %s?)",
				 path, path);
		else if (r == -ECONNREFUSED)
			snprintf(err, errlen, "%s: connection refused (the VM is gone)", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

int diag_hybrid_inspect(const char *sock, int depth, const char *path, int out_fd, char *err,
			size_t errlen)
{
	char line[300];
	if (depth < -1)
		depth = -1;
	if (strlen(path) > 255) {
		snprintf(err, errlen, "inspect path too long (at most 255 bytes)");
		return -ENAMETOOLONG;
	}
	int fd = hybrid_connect(sock, err, errlen);
	if (fd < 0)
		return fd;
	snprintf(line, sizeof(line), "INSPECT %d%s%s\n", depth, *path ? " " : "", path);
	int r = ttrpc_write_all(fd, line, strlen(line));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s (the VM is gone)", sock, strerror(-r));
		close(fd);
		return r;
	}
	/* The reply is the whole text, then end of stream; "error: ..." alone
	 * is a refusal (no such node). The first bytes decide which. */
	char head[4096];
	size_t hlen = 0, total = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, HYBRID_TIMEOUT_MS);
		if (pr == 0) {
			snprintf(err, errlen, "%s: no inspect answer in %d s", sock,
				 HYBRID_TIMEOUT_MS / 1000);
			r = -ETIMEDOUT;
			goto out;
		}
		char buf[16384];
		ssize_t n = pr < 0 ? -1 : read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", sock, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total <= sizeof(head)) { /* hold short replies to see "error: " */
			memcpy(head + hlen, buf, (size_t)n);
			hlen += (size_t)n;
			continue;
		}
		if (hlen) {
			if ((r = ttrpc_write_all(out_fd, head, hlen)) < 0)
				goto werr;
			hlen = 0;
		}
		if ((r = ttrpc_write_all(out_fd, buf, (size_t)n)) < 0)
			goto werr;
	}
	if (total == 0) {
		snprintf(err, errlen, "%s: the VM does not serve inspect (not hvmm?)", sock);
		r = -EOPNOTSUPP;
		goto out;
	}
	if (hlen >= 7 && !memcmp(head, "error: ", 7)) {
		size_t l = hlen - 7;
		if (l && head[7 + l - 1] == '\n')
			l--;
		for (size_t i = 0; i < l; i++)
			if ((unsigned char)head[7 + i] < 0x20)
				head[7 + i] = '?';
		snprintf(err, errlen, "inspect: %.*s", (int)l, head + 7);
		r = -ENOENT;
		goto out;
	}
	if (hlen && (r = ttrpc_write_all(out_fd, head, hlen)) < 0)
		goto werr;
	r = 0;
	goto out;
werr:
	snprintf(err, errlen, "write: %s", strerror(-r));
out:
	close(fd);
	return r;
}

int diag_hybrid_dial(void *opaque, uint32_t port, char *err, size_t errlen)
{
	const char *path = opaque;
	char line[32];
	uint8_t b;
	int r;
	int fd = hybrid_connect(path, err, errlen);
	if (fd < 0)
		return fd;
	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	r = ttrpc_write_all(fd, line, strlen(line));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s (the VM is gone)", path, strerror(-r));
		close(fd);
		return r;
	}
	/* "OK " then the host port number and '\n' (at most 10 digits). */
	for (size_t i = 0; i < 3 + 11; i++) {
		r = read_byte(fd, &b, HYBRID_TIMEOUT_MS);
		if (r == 0 && i == 0) {
			snprintf(err, errlen,
				 "%s: the VM refused vsock port %u (no agent listening there, or the "
				 "VM is shutting down)",
				 path, port);
			r = -ECONNREFUSED;
			goto fail;
		}
		if (r == -ETIMEDOUT) {
			snprintf(err, errlen, "%s: no answer to CONNECT %u in %d s", path, port,
				 HYBRID_TIMEOUT_MS / 1000);
			goto fail;
		}
		if (r <= 0) {
			snprintf(err, errlen, "%s: connection to vsock port %u lost%s%s", path,
				 port, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
			r = r < 0 ? r : -ECONNRESET;
			goto fail;
		}
		if ((i < 3 && b != "OK "[i]) || (i >= 3 && b != '\n' && (b < '0' || b > '9')))
			break;
		if (i >= 3 && b == '\n')
			return fd;
	}
	snprintf(err, errlen, "%s: not a hybrid vsock socket (bad answer to CONNECT)", path);
	r = -EPROTO;
fail:
	close(fd);
	return r;
}

int diag_client_open(struct diag_client *c, diag_dial_fn dial, void *opaque)
{
	memset(c, 0, sizeof(*c));
	c->dial = dial;
	c->opaque = opaque;
	c->next_stream = 1;
	ttrpc_decoder_init(&c->dec, 0);
	c->ctl = dial(opaque, DIAG_VSOCK_CONTROL_PORT, c->err, sizeof(c->err));
	return c->ctl < 0 ? c->ctl : 0;
}

void diag_client_close(struct diag_client *c)
{
	if (c->ctl >= 0)
		close(c->ctl);
	c->ctl = -1;
	ttrpc_decoder_free(&c->dec);
}

int diag_client_data(struct diag_client *c, uint64_t *id)
{
	uint8_t raw[8];
	int fd = c->dial(c->opaque, DIAG_VSOCK_DATA_PORT, c->err, sizeof(c->err));
	if (fd < 0)
		return fd;
	for (size_t i = 0; i < sizeof(raw); i++) {
		int r = read_byte(fd, &raw[i], HYBRID_TIMEOUT_MS);
		if (r <= 0) {
			snprintf(c->err, sizeof(c->err),
				 "data connection closed before its id (not a diagnostics agent?)");
			close(fd);
			return r < 0 ? r : -EPROTO;
		}
	}
	memcpy(id, raw, sizeof(*id)); /* native endian, as the server sends it */
	return fd;
}

int diag_client_send(struct diag_client *c, const char *service, const char *method,
		     const ProtobufCMessage *arg, uint32_t *stream)
{
	uint8_t *frame;
	size_t len;
	int r;

	*stream = c->next_stream;
	c->next_stream += 2; /* client streams are odd */
	r = ttrpc_frame_request(*stream, service, method, arg, 0, &frame, &len);
	if (r < 0) {
		snprintf(c->err, sizeof(c->err), "cannot encode %s: %s", method, strerror(-r));
		return r;
	}
	r = ttrpc_write_all(c->ctl, frame, len);
	free(frame);
	if (r < 0)
		snprintf(c->err, sizeof(c->err), "sending %s: %s (the VM is gone?)", method,
			 strerror(-r));
	return r;
}

int diag_client_recv(struct diag_client *c, uint32_t stream,
		     const ProtobufCMessageDescriptor *desc, ProtobufCMessage **result)
{
	struct ttrpc_hdr h;
	const uint8_t *payload;

	for (;;) {
		int r = ttrpc_read_frame(c->ctl, &c->dec, &h, &payload);
		if (r == 0 || r == -EPROTO || r == -ECONNRESET) {
			snprintf(c->err, sizeof(c->err),
				 "the connection closed before the answer (the VM is gone?)");
			return r == 0 ? -ECONNRESET : r;
		}
		if (r == -EMSGSIZE || (r > 0 && h.type != TTRPC_MSG_RESPONSE)) {
			snprintf(c->err, sizeof(c->err),
				 "the peer does not speak ttrpc (bad frame: type %u, length %u)",
				 h.type, h.length);
			return -EPROTO;
		}
		if (r < 0) {
			snprintf(c->err, sizeof(c->err), "reading the answer: %s", strerror(-r));
			return r;
		}
		if (h.stream_id != stream)
			continue;
		Ttrpc__Response *resp = ttrpc__response__unpack(NULL, h.length, payload);
		if (!resp) {
			snprintf(c->err, sizeof(c->err), "the peer does not speak ttrpc (bad response)");
			return -EPROTO;
		}
		if (resp->status && resp->status->code != TTRPC_CODE_OK) {
			int code = resp->status->code > 0 ? resp->status->code : TTRPC_CODE_UNKNOWN;
			snprintf(c->err, sizeof(c->err), "%s",
				 resp->status->message && *resp->status->message
					 ? resp->status->message
					 : "the request failed");
			ttrpc__response__free_unpacked(resp, NULL);
			return code;
		}
		r = 0;
		if (desc) {
			*result = protobuf_c_message_unpack(desc, NULL, resp->payload.len,
							    resp->payload.data);
			if (!*result) {
				snprintf(c->err, sizeof(c->err), "bad %s in the answer", desc->name);
				r = -EPROTO;
			}
		}
		ttrpc__response__free_unpacked(resp, NULL);
		return r;
	}
}

int diag_client_call(struct diag_client *c, const char *service, const char *method,
		     const ProtobufCMessage *arg, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **result)
{
	uint32_t stream;
	int r = diag_client_send(c, service, method, arg, &stream);
	return r < 0 ? r : diag_client_recv(c, stream, desc, result);
}

/* Copies text into out (NUL-terminated, truncated) with control characters
 * but tab replaced by '?': the peer must not drive our terminal (Linux
 * already escapes them in /dev/kmsg; a hostile guest need not). */
static int copy_printable(char *out, size_t outlen, const char *text, size_t len)
{
	size_t i;
	for (i = 0; i < len && i + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)text[i];
		out[i] = (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
	}
	out[i] = '\0';
	return (int)i;
}

int diag_kmsg_format(const char *rec, size_t len, char *out, size_t outlen)
{
	unsigned long long prio, seq, usec;
	char *end;
	const char *semi = memchr(rec, ';', len);
	size_t text_len;

	if (outlen == 0)
		return -EINVAL;
	/* The header is "prio,seq,usec,flags" before the first ';'. */
	char hdr[96];
	if (!semi || (size_t)(semi - rec) >= sizeof(hdr))
		goto verbatim;
	memcpy(hdr, rec, (size_t)(semi - rec));
	hdr[semi - rec] = '\0';
	prio = strtoull(hdr, &end, 10);
	if (end == hdr || *end != ',')
		goto verbatim;
	seq = strtoull(end + 1, &end, 10);
	if (*end != ',')
		goto verbatim;
	usec = strtoull(end + 1, &end, 10);
	if (*end != ',' && *end != '\0')
		goto verbatim;
	(void)prio;
	(void)seq;
	/* The text ends at the first newline (continuation lines carry
	 * KEY=VALUE dictionary entries). */
	const char *text = semi + 1;
	const char *nl = memchr(text, '\n', len - (size_t)(text - rec));
	text_len = nl ? (size_t)(nl - text) : len - (size_t)(text - rec);
	int n = snprintf(out, outlen, "[%5llu.%06llu] ", usec / 1000000, usec % 1000000);
	if (n < 0 || (size_t)n >= outlen)
		return n;
	return n + copy_printable(out + n, outlen - (size_t)n, text, text_len);
verbatim:
	copy_printable(out, outlen, rec, len);
	return -EINVAL;
}

/* Sends a request naming a fresh data connection and returns its fd. */
static int stream_request(struct diag_client *c, const char *method, ProtobufCMessage *arg,
			  uint64_t *conn_field)
{
	uint64_t id;
	int fd = diag_client_data(c, &id);
	if (fd < 0)
		return fd;
	*conn_field = id;
	int r = diag_client_call(c, DIAG_SERVICE, method, arg, NULL, NULL);
	if (r != 0) {
		close(fd);
		return r > 0 ? -EIO : r;
	}
	return fd;
}

int diag_client_kmsg(struct diag_client *c, bool follow, int out_fd)
{
	Diag__KmsgRequest req = DIAG__KMSG_REQUEST__INIT;
	char buf[2 * DIAG_FILE_LINE_MAX], line[DIAG_FILE_LINE_MAX + 64];
	size_t have = 0;
	int r = 0;

	req.follow = follow;
	int fd = stream_request(c, "Kmsg", &req.base, &req.conn);
	if (fd < 0)
		return fd;
	for (;;) {
		char *nul;
		while ((nul = memchr(buf, '\0', have)) != NULL) {
			size_t len = (size_t)(nul - buf);
			int n = diag_kmsg_format(buf, len, line, sizeof(line) - 1);
			if (n < 0)
				n = (int)strlen(line);
			if ((size_t)n > sizeof(line) - 2)
				n = (int)sizeof(line) - 2;
			line[n++] = '\n';
			if ((r = ttrpc_write_all(out_fd, line, (size_t)n)) < 0)
				goto out;
			memmove(buf, nul + 1, have - len - 1);
			have -= len + 1;
		}
		if (have >= DIAG_FILE_LINE_MAX) {
			snprintf(c->err, sizeof(c->err), "kmsg: a record without its NUL terminator");
			r = -EPROTO;
			goto out;
		}
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(c->err, sizeof(c->err), "kmsg: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
out:
	close(fd);
	return r;
}

int diag_client_read_file(struct diag_client *c, const char *path, bool follow, int out_fd)
{
	Diag__FileRequest req = DIAG__FILE_REQUEST__INIT;
	char buf[16384];
	int r = 0;

	req.follow = follow;
	req.file_path = (char *)path;
	int fd = stream_request(c, "ReadFile", &req.base, &req.conn);
	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				r = -errno;
				snprintf(c->err, sizeof(c->err), "file: %s", strerror(errno));
			}
			break;
		}
		if ((r = ttrpc_write_all(out_fd, buf, (size_t)n)) < 0)
			break;
	}
	close(fd);
	return r;
}

int diag_client_run(struct diag_client *c, const struct diag_exec *e, int *exit_code)
{
	Diag__ExecRequest req = DIAG__EXEC_REQUEST__INIT;
	Diag__EnvPair term = DIAG__ENV_PAIR__INIT;
	Diag__EnvPair *envp[1] = { &term };
	Diag__WaitRequest wreq = DIAG__WAIT_REQUEST__INIT;
	Diag__ExecResponse *eresp = NULL;
	Diag__WaitResponse *wresp = NULL;
	int in = -1, out = -1, err = -1, r;
	uint32_t wstream;
	char buf[16384];

	req.command = (char *)e->command;
	req.args = (char **)e->args;
	req.n_args = e->n_args;
	req.tty = e->tty;
	if (e->tty && e->term) {
		term.name = "TERM";
		term.value_present_case = DIAG__ENV_PAIR__VALUE_PRESENT_VALUE;
		term.value = (char *)e->term;
		req.env = envp;
		req.n_env = 1;
	}
	if (e->in_fd >= 0 && (r = in = diag_client_data(c, &req.stdin)) < 0)
		goto out;
	if ((r = out = diag_client_data(c, &req.stdout)) < 0)
		goto out;
	if (!e->tty && (r = err = diag_client_data(c, &req.stderr)) < 0)
		goto out;
	r = diag_client_call(c, DIAG_SERVICE, "Exec", &req.base, &diag__exec_response__descriptor,
			     (ProtobufCMessage **)&eresp);
	if (r != 0)
		goto out;
	wreq.pid = eresp->pid;
	if ((r = diag_client_send(c, DIAG_SERVICE, "Wait", &wreq.base, &wstream)) < 0)
		goto out;

	bool local_in = e->in_fd >= 0, waited = false;
	while (out >= 0 || err >= 0 || !waited) {
		struct pollfd p[4] = {
			{ .fd = local_in && in >= 0 ? e->in_fd : -1, .events = POLLIN },
			{ .fd = out, .events = POLLIN },
			{ .fd = err, .events = POLLIN },
			{ .fd = waited ? -1 : c->ctl, .events = POLLIN },
		};
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (p[0].revents) {
			ssize_t n = read(e->in_fd, buf, sizeof(buf));
			if (n <= 0 || ttrpc_write_all(in, buf, (size_t)n) < 0) {
				local_in = false; /* end of input: the child sees EOF */
				close(in);
				in = -1;
			}
		}
		for (int k = 1; k <= 2; k++) {
			int *fd = k == 1 ? &out : &err;
			int dst = k == 1 ? e->out_fd : e->err_fd;
			if (!p[k].revents || *fd < 0)
				continue;
			ssize_t n = read(*fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (ttrpc_write_all(dst, buf, (size_t)n) < 0) {
				close(*fd); /* our output went away: stop reading it */
				*fd = -1;
			}
		}
		if (p[3].revents) {
			r = diag_client_recv(c, wstream, &diag__wait_response__descriptor,
					     (ProtobufCMessage **)&wresp);
			if (r != 0)
				goto out;
			*exit_code = wresp->exit_code;
			waited = true;
		}
	}
	r = 0;
out:
	if (eresp)
		diag__exec_response__free_unpacked(eresp, NULL);
	if (wresp)
		diag__wait_response__free_unpacked(wresp, NULL);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	return r;
}
