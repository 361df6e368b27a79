#!/usr/bin/env python3
"""Host side of tests/boot/minimal-vsock.sh: hybrid vsock clients and a
PATH_<port> listener (the protocol of OpenVMM's --vmbus-vsock-path).

  vsock_client.py ready SOCK PORT SECS      CONNECT until a guest listener
                                            answers (and echoes a byte)
  vsock_client.py echo SOCK PORT NBYTES     CONNECT, send NBYTES random bytes
                                            while reading the echo; compare
  vsock_client.py many SOCK PORT N SIZE     N connections at once, each
                                            exchanging SIZE bytes
  vsock_client.py garbage SOCK PORT         a garbage request is refused while
                                            a CONNECT on another socket works
  vsock_client.py refused SOCK PORT SECS    CONNECT to a port nobody listens
                                            on ends without OK within SECS
  vsock_client.py listen PATH OUT SECS      accept one connection on the Unix
                                            socket PATH, save its bytes to OUT
Prints one result line; exits non-zero on failure.
"""
import os
import select
import socket
import sys
import threading
import time


def die(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def connect(sock_path, port, timeout=60.0):
    """Returns (socket, bytes received after the OK line) or dies."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(b"CONNECT %d\n" % port)
    buf = b""
    while b"\n" not in buf:
        try:
            d = s.recv(64)
        except socket.timeout:
            die("no answer to CONNECT %d in %.0f s" % (port, timeout))
        if not d:
            die("CONNECT %d: closed without OK (%r)" % (port, buf))
        buf += d
        if len(buf) > 64:
            die("CONNECT %d: answer too long: %r" % (port, buf))
    line, rest = buf.split(b"\n", 1)
    if not line.startswith(b"OK ") or not line[3:].isdigit():
        die("CONNECT %d: bad answer %r" % (port, line))
    return s, rest


def exchange(s, rest, data, timeout=120.0):
    """Sends data (from a thread) and reads len(data) bytes back."""
    err = []

    def sender():
        try:
            s.sendall(data)
        except OSError as e:
            err.append(e)

    # Blocking sends (a socket timeout would cap sendall's total time);
    # the receive side waits at most `timeout` for each chunk.
    s.settimeout(None)
    t = threading.Thread(target=sender)
    t.start()
    got = bytearray(rest)
    while len(got) < len(data):
        r, _, _ = select.select([s], [], [], timeout)
        if not r:
            break
        d = s.recv(min(1 << 20, len(data) - len(got)))
        if not d:
            break
        got += d
    t.join()
    if err:
        die("send failed: %s" % err[0])
    return bytes(got)


def cmd_ready(sock_path, port, secs):
    end = time.monotonic() + secs
    tries = 0
    while time.monotonic() < end:
        tries += 1
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(sock_path)
        s.sendall(b"CONNECT %d\n" % port)
        buf = b""
        try:
            while b"\n" not in buf:
                d = s.recv(64)
                if not d:
                    break
                buf += d
        except socket.timeout:
            pass
        if buf.startswith(b"OK "):
            line, rest = buf.split(b"\n", 1)
            if exchange(s, rest, b"?") == b"?":
                s.close()
                print("READY after %d attempts" % tries, flush=True)
                return
        s.close()
        time.sleep(1)
    die("no guest listener on port %d after %d s (%d attempts)" % (port, secs, tries))


def cmd_echo(sock_path, port, nbytes):
    data = os.urandom(nbytes)
    t0 = time.monotonic()
    s, rest = connect(sock_path, port)
    got = exchange(s, rest, data)
    dt = time.monotonic() - t0
    s.close()
    if got != data:
        die("echo of %d bytes differs (got %d bytes)" % (nbytes, len(got)))
    print("ECHO-OK %d bytes in %.2f s: %.1f KiB/s each way" %
          (nbytes, dt, nbytes / 1024 / dt), flush=True)


def cmd_many(sock_path, port, n, size):
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(sock_path)
        s.sendall(b"CONNECT %d\n" % port)
        socks.append(s)
    # All requests are in flight at once; now collect the answers.
    conns = []
    for i, s in enumerate(socks):
        buf = b""
        while b"\n" not in buf:
            d = s.recv(64)
            if not d:
                die("connection %d of %d: closed without OK after %.1f s" %
                    (i, n, time.monotonic() - t0))
            buf += d
        line, rest = buf.split(b"\n", 1)
        if not line.startswith(b"OK "):
            die("connection %d: bad answer %r" % (i, line))
        conns.append((s, rest))
    t1 = time.monotonic()
    datas = [os.urandom(size) for _ in range(n)]
    for (s, _), d in zip(conns, datas):
        s.sendall(d)
    for i, ((s, rest), d) in enumerate(zip(conns, datas)):
        got = bytearray(rest)
        while len(got) < size:
            x = s.recv(size - len(got))
            if not x:
                break
            got += x
        if bytes(got) != d:
            die("connection %d of %d: echo differs" % (i, n))
    for s, _ in conns:
        s.close()
    print("MANY-OK %d connections (all open after %.1f s), %d bytes each, %.1f s" %
          (n, t1 - t0, size, time.monotonic() - t0), flush=True)


def cmd_garbage(sock_path, port):
    g = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    g.settimeout(30)
    g.connect(sock_path)
    g.sendall(b"HELLO there\n")
    s, rest = connect(sock_path, port)
    try:
        d = g.recv(64)
    except socket.timeout:
        die("garbage request: the socket stayed open")
    if d:
        die("garbage request answered: %r" % d)
    data = os.urandom(4096)
    got = exchange(s, rest, data)
    if got != data:
        die("the good connection's echo differs (%d of %d bytes back%s)" %
            (len(got), len(data), "" if len(got) < len(data) else ", content differs"))
    s.close()
    print("GARBAGE-OK refused; another connection still relayed", flush=True)


def cmd_refused(sock_path, port, secs):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(secs)
    s.connect(sock_path)
    t0 = time.monotonic()
    s.sendall(b"CONNECT %d\n" % port)
    try:
        d = s.recv(64)
    except socket.timeout:
        die("CONNECT to a port without listener: no answer in %d s" % secs)
    if d:
        die("CONNECT to a port without listener answered %r" % d)
    print("REFUSED-OK closed after %.1f s" % (time.monotonic() - t0), flush=True)


def cmd_listen(path, out, secs):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(4)
    ls.settimeout(secs)
    print("LISTENING", flush=True)
    try:
        c, _ = ls.accept()
    except socket.timeout:
        die("no guest connection to %s in %d s" % (path, secs))
    c.settimeout(secs)
    n = 0
    t0 = time.monotonic()
    with open(out, "wb") as f:
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            f.write(d)
            n += len(d)
    dt = max(time.monotonic() - t0, 1e-6)
    c.close()
    ls.close()
    os.unlink(path)
    print("LISTEN-OK %d bytes in %.2f s: %.1f KiB/s" % (n, dt, n / 1024 / dt), flush=True)


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "ready":
        cmd_ready(a[1], int(a[2]), int(a[3]))
    elif len(a) == 4 and a[0] == "echo":
        cmd_echo(a[1], int(a[2]), int(a[3]))
    elif len(a) == 5 and a[0] == "many":
        cmd_many(a[1], int(a[2]), int(a[3]), int(a[4]))
    elif len(a) == 3 and a[0] == "garbage":
        cmd_garbage(a[1], int(a[2]))
    elif len(a) == 4 and a[0] == "refused":
        cmd_refused(a[1], int(a[2]), int(a[3]))
    elif len(a) == 4 and a[0] == "listen":
        cmd_listen(a[1], a[2], int(a[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
