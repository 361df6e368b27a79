#!/bin/bash
# Networking end to end: the minimal kernel's hv_netvsc on hvmm's VMBus NIC
# (netvsp) over consomme (libslirp user-mode NAT), with a host-port forward.
# The guest gets a DHCP lease (busybox udhcpc: 10.0.0.2, router 10.0.0.1);
# guest -> host: it fetches a file from a python3 http.server this test
# starts on the host's 127.0.0.1 (reached as 10.0.0.1) and a large file
# (64 MiB; 16 on PVM unless HVMM_SLOW=1) streamed into md5sum; host -> guest:
# busybox httpd in the guest serves a file the host fetches through the
# hostfwd port. Every transfer is compared by MD5 end to end; the large
# transfer's rate is logged.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files "${GUEST:-minimal}"
command -v python3 >/dev/null || fail "python3 is needed for the host's HTTP server (scripts/install-deps.sh installs it)"

# 64 MiB, but 16 on PVM (the guest's TCP receive runs in emulated ring 0
# there at ~0.1 MB/s: 64 MiB would take 10-35 minutes) unless HVMM_SLOW=1.
BIG_MB=64
[ -e /sys/module/kvm_pvm ] && [ "${HVMM_SLOW:-0}" != 1 ] && BIG_MB=16
BIG_MB=${HVMM_NET_BIG_MB:-$BIG_MB}
WWW=$OUT/www
rm -rf "$WWW" && mkdir -p "$WWW"
head -c 1M /dev/urandom >"$WWW/small.bin"
head -c "${BIG_MB}M" /dev/urandom >"$WWW/big.bin"
small_md5=$(md5sum <"$WWW/small.bin" | cut -d' ' -f1)
big_md5=$(md5sum <"$WWW/big.bin" | cut -d' ' -f1)

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
HTTP_PORT=$(free_port)
FWD_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$HTTP_PORT" \
	>"$OUT/http.log" 2>&1 &
HTTP_PID=$!
trap 'kill $HTTP_PID 2>/dev/null; stop_vm' EXIT
trap 'exit 143' TERM INT

start_console_vm --hv -k "$KERNEL" -r "$INITRD" -m 512MB \
	--net "consomme,hostfwd=tcp:127.0.0.1:$FWD_PORT-:8080"
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" || fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
grep -q 'hv_netvsc' "$OUT/console.log" || log "note: no hv_netvsc line in the boot log"

# DHCP.
send 'ip link show eth0 >/dev/null 2>&1 && echo NIC=yes || echo NIC=no'
wait_for "$OUT/console.log" '^NIC=' 120 "$HVMM_PID" || fail "no answer about eth0"
grep -q '^NIC=yes' "$OUT/console.log" || fail "the guest has no eth0 (hv_netvsc did not bind)"
send 'udhcpc -i eth0 -s /etc/udhcpc/default.script -n -q -t 10 -T 3 >/tmp/dhcp.log 2>&1; echo DHCP=$?; cat /tmp/dhcp.log'
wait_for "$OUT/console.log" '^DHCP=' 600 "$HVMM_PID" || fail "udhcpc did not finish"
grep -q '^DHCP=0' "$OUT/console.log" || fail "no DHCP lease: $(grep -A5 '^DHCP=' "$OUT/console.log" | tr -d '\r')"
wait_for "$OUT/console.log" 'udhcpc: eth0 bound 10\.0\.0\.2/255\.255\.255\.0 router 10\.0\.0\.1 dns 10\.0\.0\.254' \
	60 "$HVMM_PID" || fail "unexpected lease: $(grep 'udhcpc: eth0' "$OUT/console.log" | tr -d '\r')"
log "ok: DHCP lease 10.0.0.2/24, router 10.0.0.1, DNS 10.0.0.254"

# Guest -> host: a file from the host's loopback.
send "wget -q -O /tmp/small.bin http://10.0.0.1:$HTTP_PORT/small.bin; echo WGET=\$?; md5sum </tmp/small.bin | sed 's/^/SMD5=/'"
wait_for "$OUT/console.log" '^SMD5=' 300 "$HVMM_PID" || fail "wget of small.bin did not finish"
grep -q '^WGET=0' "$OUT/console.log" || fail "wget failed: $(grep '^WGET=' "$OUT/console.log")"
got=$(sed -n 's/^SMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
[ "$got" = "$small_md5" ] || fail "the guest got $got for small.bin, the host has $small_md5"
log "ok: guest -> host: 1 MiB from the host's 127.0.0.1:$HTTP_PORT intact"

# Host -> guest through the forward: busybox httpd serving a guest file.
# (Not from /dev/urandom: its ChaCha20 runs in ring 0, minutes per MiB on PVM.)
send "mkdir -p /tmp/www && cat /tmp/small.bin /bin/busybox >/tmp/www/g.bin && httpd -p 8080 -h /tmp/www && md5sum </tmp/www/g.bin | sed 's/^/GMD5=/'"
wait_for "$OUT/console.log" '^GMD5=' 300 "$HVMM_PID" || fail "the guest's httpd did not start"
want=$(sed -n 's/^GMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
python3 - "$FWD_PORT" "$OUT/g.bin" <<'EOF' || fail "the host could not fetch the guest's file through hostfwd"
import sys, urllib.request
data = urllib.request.urlopen("http://127.0.0.1:%s/g.bin" % sys.argv[1], timeout=300).read()
open(sys.argv[2], "wb").write(data)
EOF
got=$(md5sum <"$OUT/g.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "the host got $got through hostfwd, the guest serves $want"
log "ok: host -> guest: $(stat -c %s "$OUT/g.bin") bytes from the guest's httpd through 127.0.0.1:$FWD_PORT intact"

# A large transfer, host -> guest (netvsp's receive path), streamed to md5sum.
start=$SECONDS
send "wget -q -O - http://10.0.0.1:$HTTP_PORT/big.bin | md5sum | sed 's/^/BMD5=/'"
wait_for "$OUT/console.log" '^BMD5=' 1800 "$HVMM_PID" || fail "the large transfer did not finish"
secs=$((SECONDS - start))
got=$(sed -n 's/^BMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
[ "$got" = "$big_md5" ] || fail "the guest got $got for ${BIG_MB} MiB, the host has $big_md5"
[ "$secs" -gt 0 ] || secs=1
log "ok: ${BIG_MB} MiB host -> guest intact in ${secs} s ($((BIG_MB * 1024 / secs)) KiB/s)"

send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS"
grep -qE 'hvmm: .*(error|assert)' "$OUT/console.log" && fail "hvmm logged an error"
log "ok: DHCP, guest -> host, host -> guest via hostfwd, ${BIG_MB} MiB intact"
