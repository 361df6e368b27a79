#!/usr/bin/env python3
"""Drives a guest shell over an hvmm listen= serial port (Unix or TCP).

serial_client.py ADDR LOG [--expect RE] [--send LINE] ... [--eof]

ADDR is a socket path or tcp:HOST:PORT. Steps run in order: --expect waits
(up to --timeout seconds) for RE in the output so far, --send writes a line,
--reconnect closes the connection and connects again, --eof waits for the
VM to close the connection. All output is appended to LOG. Exit 0 when every
step succeeded, 1 otherwise (with the failing step on stderr).
"""
import re
import socket
import sys
import time


def connect(addr, deadline):
    while True:
        try:
            if addr.startswith("tcp:"):
                host, port = addr[4:].rsplit(":", 1)
                s = socket.create_connection((host, int(port)), timeout=5)
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(addr)
            s.settimeout(1.0)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def main():
    args = sys.argv[1:]
    addr, logpath = args[0], args[1]
    steps = args[2:]
    timeout = 600.0
    if "--timeout" in steps:
        i = steps.index("--timeout")
        timeout = float(steps[i + 1])
        del steps[i:i + 2]
    log = open(logpath, "ab")
    buf = b""
    sock = connect(addr, time.time() + timeout)

    def pump(deadline):
        nonlocal buf
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            return False
        buf += data
        log.write(data)
        log.flush()
        return True

    i = 0
    while i < len(steps):
        op = steps[i]
        if op == "--expect":
            rx = re.compile(steps[i + 1].encode())
            deadline = time.time() + timeout
            while not rx.search(buf):
                if time.time() > deadline or not pump(deadline):
                    print(f"serial_client: no /{steps[i + 1]}/ in output", file=sys.stderr)
                    return 1
            buf = buf[rx.search(buf).end():]
            i += 2
        elif op == "--send":
            sock.sendall(steps[i + 1].encode() + b"\n")
            i += 2
        elif op == "--reconnect":
            sock.close()
            time.sleep(0.5)
            sock = connect(addr, time.time() + timeout)
            i += 1
        elif op == "--eof":
            deadline = time.time() + timeout
            while pump(deadline):
                if time.time() > deadline:
                    print("serial_client: connection not closed", file=sys.stderr)
                    return 1
            i += 1
        else:
            print(f"serial_client: bad step {op}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
