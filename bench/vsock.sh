#!/bin/bash
# bench/vsock.sh: hvmm's hybrid vsock relay (--vmbus-vsock-path, the
# hv_sock transport of Hyper-V sockets, src/core/vsock_relay.c) with the
# minimal kernel, --hv and the tools initramfs (Debian's socat in the
# guest). One boot; the guest runs three socat listeners:
#   5001  a sink (socat -u VSOCK-LISTEN OPEN:/dev/null): host -> guest MB/s,
#         timed from OK to the guest's end of stream after our shutdown;
#   5002  a source (/dev/zero): guest -> host MB/s, OK to BYTES received;
#   5001  again for set-up latency: CONNECT -> OK, median of CONNS.
# Medians over RUNS runs. Writes the docs/BENCHMARKS.md section between the
# "vsock" markers. There is no QEMU figure: QEMU has no hybrid vsock (its
# vhost-vsock is virtio's AF_VSOCK, not Hyper-V sockets over VMBus). On a
# PVM host the guest's ring 0 is emulated, so the figures measure mostly
# the guest kernel's hv_sock path, not the relay.
#
# usage: bench/vsock.sh   env: RUNS=3 BYTES=33554432 CONNS=20 HVMM_BUILD=build
#        HVMM_CACHE=.cache OUTPUT=docs/BENCHMARKS.md (- : stdout) KEEP=<dir>
set -uo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=${HVMM_BUILD:-$ROOT/build}
CACHE=${HVMM_CACHE:-$ROOT/.cache}
RUNS=${RUNS:-3}
BYTES=${BYTES:-33554432}
CONNS=${CONNS:-20}
OUTPUT=${OUTPUT:-$ROOT/docs/BENCHMARKS.md}
HVMM=$BUILD/hvmm
KERNEL=$CACHE/guest/minimal/bzImage
INITRD=$CACHE/guest/minimal/initrd-tools.img
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
MARK=vsock

log() { echo "[bench/vsock $(date +%T)] $*" >&2; }
die() { echo "bench/vsock.sh: $*" >&2; exit 2; }

[ -c /dev/kvm ] || die "no /dev/kvm"
[ -x "$HVMM" ] || die "build hvmm first ($BUILD)"
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || die "the minimal kernel is not built (scripts/guest.sh minimal)"
command -v python3 >/dev/null || die "no python3"

W=${KEEP:-$(mktemp -d /tmp/hvmm-bench-vsock.XXXXXX)}
mkdir -p "$W"
SOCK=$W/vsock.sock
HPID=
cleanup() {
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null
	[ -n "${FD:-}" ] && exec {FD}>&-
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

# The host client: h2g PORT BYTES | g2h PORT BYTES | conn PORT N (prints
# one number: MB/s, or the median set-up time in ms).
cat >"$W/client.py" <<'PY'
import socket, statistics, sys, time
sock, mode, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(600)
    s.connect(sock)
    t0 = time.monotonic()
    s.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            sys.exit("no OK (no guest listener on port %d?)" % port)
        line += b
    if not line.startswith(b"OK "):
        sys.exit("bad answer %r" % line)
    return s, time.monotonic() - t0
if mode == "h2g":
    s, _ = connect()
    buf = b"\0" * 65536
    t0 = time.monotonic(); left = n
    while left:
        left -= s.send(buf[:min(left, len(buf))])
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    print("%.3f" % (n / (time.monotonic() - t0) / 1e6))
elif mode == "g2h":
    s, _ = connect()
    t0 = time.monotonic(); got = 0
    while got < n:
        b = s.recv(65536)
        if not b:
            sys.exit("end of stream after %d bytes" % got)
        got += len(b)
    print("%.3f" % (n / (time.monotonic() - t0) / 1e6))
else:
    ts = []
    for _ in range(n):
        s, t = connect()
        ts.append(t * 1000)
        s.close()
    print("%.1f" % statistics.median(ts))
PY
client() { timeout 1800 python3 "$W/client.py" "$SOCK" "$@"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

log "booting ($KERNEL, $INITRD)"
mkfifo "$W/in"
"$HVMM" --hv -k "$KERNEL" -r "$INITRD" -p 1 -m 512MB --vmbus-vsock-path "$SOCK" \
	<"$W/in" >"$W/console.log" 2>&1 &
HPID=$!
exec {FD}>"$W/in"
waitl() { # REGEX TIMEOUT
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		grep -qaE -- "$1" "$W/console.log" && return 0
		kill -0 "$HPID" 2>/dev/null || return 1
		sleep 1
	done
	return 1
}
waitl 'root@hvmm-guest' "$BOOT_TIMEOUT" || die "no shell prompt (see $W/console.log; KEEP=dir keeps it)"
printf '%s\n' 'socat -u VSOCK-LISTEN:5001,fork,backlog=32 OPEN:/dev/null & socat -U VSOCK-LISTEN:5002,fork OPEN:/dev/zero & sleep 3; echo LISTENERS-UP' >&"$FD"
waitl '^LISTENERS-UP' 120 || die "the guest's listeners did not start"
# Wait until the sink answers (socat may be slow to listen on a loaded host).
for _ in $(seq 60); do client conn 5001 1 >/dev/null 2>&1 && break; sleep 2; done
load=$(cut -d' ' -f1-3 /proc/loadavg)
h2g=() g2h=()
for run in $(seq "$RUNS"); do
	a=$(client h2g 5001 "$BYTES") || die "host -> guest: $a"
	b=$(client g2h 5002 "$BYTES") || die "guest -> host: $b"
	log "run $run: host->guest $a MB/s, guest->host $b MB/s"
	h2g+=("$a"); g2h+=("$b")
done
lat=$(client conn 5001 "$CONNS") || die "latency: $lat"
log "CONNECT -> OK: median $lat ms over $CONNS"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

S=$W/section.md
{
	echo "<!-- $MARK:begin (bench/vsock.sh writes this section) -->"
	echo "## Hybrid vsock (--vmbus-vsock-path)"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, host load average $load at the start, $load_end at the end;"
	echo "the minimal kernel with --hv, 1 vCPU, socat in the guest (tools initramfs);"
	echo "$((BYTES / 1048576)) MiB each way, median of $RUNS runs; set-up latency median of $CONNS."
	echo
	echo "| | hvmm |"
	echo "|---|---|"
	echo "| host -> guest (CONNECT to a guest sink) | $(printf '%s\n' "${h2g[@]}" | median) MB/s |"
	echo "| guest -> host (CONNECT to a guest /dev/zero source) | $(printf '%s\n' "${g2h[@]}" | median) MB/s |"
	echo "| connection set-up (CONNECT -> OK) | $lat ms |"
	echo
	echo "Runs: host -> guest ${h2g[*]}; guest -> host ${g2h[*]} MB/s."
	echo "No QEMU column: QEMU has no hybrid vsock (Hyper-V sockets over VMBus"
	echo "relayed to a Unix socket); its vhost-vsock is virtio AF_VSOCK. On this PVM"
	echo "host the guest's ring 0 is emulated, so the figures are dominated by the guest"
	echo "kernel's hv_sock and VMBus ring code, not by the relay."
	echo "<!-- $MARK:end -->"
} >"$S"
write_section "$MARK" "$S" "$OUTPUT"
log "done"
