#!/bin/bash
# bench/linux.sh: what an unmodified Linux guest (the minimal kernel, its
# stock drivers, busybox and iperf3 from the initramfs) gets from hvmm's
# devices, and from QEMU 7.2's on the same kernel, in one run:
#
#   network  TCP throughput with iperf3, guest -> host and host -> guest
#            (-R), the server on the host's loopback reached through the
#            user-mode NAT's gateway: hvmm netvsp + consomme (libslirp)
#            against QEMU virtio-net + `-netdev user` (libslirp too).
#   disks    busybox dd, 1 MiB blocks with O_DIRECT (the guest's page cache
#            out of the way): sequential write (then fsync) and read on
#            hvmm's VMBus SCSI (hv_storvsc) and NVMe, and QEMU's NVMe.
#
# One guest boot per VMM per run does everything; medians over RUNS runs,
# VMMs alternating within a run so load affects both. Writes the
# docs/BENCHMARKS.md section between the "linux-guest" markers.
#
# On a PVM host (this project's CI machines) QEMU cannot run Linux: the
# kernel's int3 self-test stops the vCPU (KVM's instruction emulator has no
# int3; hvmm emulates it in user space, src/accel/kvm_pvm_insn.c), and guest
# syscalls from ring 3 need the VMM-side fix QEMU lacks. The script then
# records QEMU's failure (the line that stopped it) instead of figures.
# Guest ring 0 is also emulated there (~2000x slower), so hvmm's absolute
# figures on PVM measure the guest kernel's cost far more than the VMM's.
#
# usage: bench/linux.sh   env: RUNS=3 SECS=10 DD_MB=64 HVMM_BUILD=build
#        HVMM_CACHE=.cache QEMU=qemu-system-x86_64 ONLY=hvmm,qemu
#        OUTPUT=docs/BENCHMARKS.md (OUTPUT=- : stdout only) KEEP=<dir>
set -uo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=${HVMM_BUILD:-$ROOT/build}
CACHE=${HVMM_CACHE:-$ROOT/.cache}
RUNS=${RUNS:-3}
SECS=${SECS:-10}
DD_MB=${DD_MB:-64}
QEMU=${QEMU:-qemu-system-x86_64}
ONLY=${ONLY:-hvmm,qemu}
OUTPUT=${OUTPUT:-$ROOT/docs/BENCHMARKS.md}
KEEP=${KEEP:-}
HVMM=$BUILD/hvmm
KERNEL=$CACHE/guest/minimal/bzImage
INITRD=$CACHE/guest/minimal/initrd-tools.img
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
MARK=linux-guest
# The same workarounds bench/boot.sh gives QEMU on PVM (../shared/docs/pvm-notes.md).
QEMU_APPEND="console=ttyS0 noxsave nofsgsbase clearcpuid=smap,popcnt,rdtscp,ssse3 panic=-1"

log() { echo "[bench/linux $(date +%T)] $*" >&2; }
die() { echo "bench/linux.sh: $*" >&2; exit 2; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

[ -c /dev/kvm ] || die "no /dev/kvm"
[ -x "$HVMM" ] || { ninja -C "$BUILD" >&2 || die "build failed"; }
[ -f "$KERNEL" ] && [ -f "$INITRD" ] ||
	"$ROOT/scripts/mkkernel.sh" >&2 || die "minimal kernel build failed"
command -v iperf3 >/dev/null || die "no iperf3 on the host (apt-get install iperf3)"
command -v python3 >/dev/null || die "no python3 (scripts/install-deps.sh installs it)"
if want qemu; then
	command -v "$QEMU" >/dev/null || die "no $QEMU (apt-get install qemu-system-x86, or ONLY=hvmm)"
	QEMU_VERSION=$("$QEMU" --version | awk 'NR==1{print $4}')
fi

TMP=$(mktemp -d)
IPERF_PID= VM_PID= FD=
cleanup() {
	[ -n "$VM_PID" ] && { pkill -TERM -P "$VM_PID" 2>/dev/null; kill "$VM_PID" 2>/dev/null; wait "$VM_PID" 2>/dev/null; }
	[ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null
	[ -n "$KEEP" ] && { mkdir -p "$KEEP" && cp "$TMP"/*.log "$TMP"/*.res "$KEEP"/ 2>/dev/null; }
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iperf3 -s -B 127.0.0.1 -p "$PORT" >"$TMP/iperf3-server.log" 2>&1 &
IPERF_PID=$!

# wait_for FILE REGEX TIMEOUT: 0 when a line matches; 1 on timeout, or when
# the VM died or hit an emulation failure (QEMU then pauses and lingers).
wait_for() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		grep -qaE "$2" "$1" 2>/dev/null && return 0
		kill -0 "$VM_PID" 2>/dev/null || return 1
		grep -qa 'KVM internal error' "$1" 2>/dev/null && return 1
		sleep 1
	done
	return 1
}
send() { printf '%s\n' "$*" >&"$FD"; }
value() { sed -n "s/^$1=\\([^ \\r]*\\).*/\\1/p" "$2" | tr -d '\r' | tail -1; }

# boot VMM RUN: starts the VM, console on $TMP/VMM-RUN.log.
boot() {
	local vmm=$1 run=$2 log=$TMP/$1-$2.log
	local disk_scsi=$TMP/scsi.img disk_nvme=$TMP/nvme.img
	rm -f "$disk_scsi" "$disk_nvme" "$TMP/in"
	truncate -s $((DD_MB + 16))M "$disk_scsi" "$disk_nvme"
	mkfifo "$TMP/in"
	case $vmm in
	hvmm)
		CMD=("$HVMM" --hv -k "$KERNEL" -r "$INITRD" -m 512MB --nic
			--disk "file:$disk_scsi"
			--nvme-pci id=nv0 --disk "file:$disk_nvme,on=nv0") ;;
	qemu)
		CMD=("$QEMU" -enable-kvm -cpu host,-arch-capabilities -M q35 -m 512M
			-nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot
			-kernel "$KERNEL" -initrd "$INITRD" -append "$QEMU_APPEND"
			-netdev user,id=n0 -device virtio-net-pci,netdev=n0
			-drive "file=$disk_nvme,if=none,id=d0,format=raw,cache=writeback"
			-device nvme,drive=d0,serial=qemu-nv0) ;;
	esac
	"${CMD[@]}" <"$TMP/in" >"$log" 2>&1 &
	VM_PID=$!
	exec {FD}>"$TMP/in"
	LOG=$log
}

halt() {
	send 'poweroff -f'
	local i
	for i in $(seq 30); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 1; done
	pkill -TERM -P "$VM_PID" 2>/dev/null; kill "$VM_PID" 2>/dev/null
	wait "$VM_PID" 2>/dev/null
	exec {FD}>&-
	VM_PID=
}

# iperf3's receiver-side rate in Mbit/s from a "-f m" summary.
iperf_rate() { awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i+1) == "Mbits/sec") r = $i } END { print r }'; }

# measure VMM RUN: one boot, every figure; appends "key value" lines to
# $TMP/VMM-RUN.res; STOP holds why the run ended early.
measure() {
	local vmm=$1 run=$2 res=$TMP/$1-$2.res t0=$SECONDS
	: >"$res"
	boot "$vmm" "$run"
	if ! wait_for "$LOG" '^HVMM-INIT-OK' "$BOOT_TIMEOUT"; then
		local why
		why=$(grep -aE 'KVM internal error|emulation failure|Kernel panic' "$LOG" | head -1 | tr -d '\r|')
		[ -n "$why" ] && why="$why after $((SECONDS - t0)) s; last kernel line: $(grep -a '^\[ *[0-9]' "$LOG" | tail -1 | cut -c1-80 | tr -d '\r|')"
		echo "stop ${why:-no HVMM-INIT-OK within $BOOT_TIMEOUT s}" >>"$res"
		halt; return
	fi
	echo "boot $((SECONDS - t0))" >>"$res"
	wait_for "$LOG" 'root@hvmm-guest' 120 || { echo "stop no shell" >>"$res"; halt; return; }
	send 'udhcpc -i eth0 -s /etc/udhcpc/default.script -n -q -t 10 -T 3 >/tmp/dhcp.log 2>&1; echo DHCP=$?; GW=$(ip route | awk "/^default/ {print \$3}"); echo GW=$GW'
	wait_for "$LOG" '^GW=' 600 || { echo "stop DHCP did not finish" >>"$res"; halt; return; }
	if [ "$(value DHCP "$LOG")" = 0 ]; then
		local dir flag
		for dir in tx rx; do
			flag=; [ $dir = rx ] && flag=-R
			# The summary lines are printed between two markers, so they
			# are complete when the second one shows.
			send "iperf3 -c \$GW -p $PORT -t $SECS -f m $flag >/tmp/ip.log 2>&1; echo IPERF_$dir=\$?; grep -E 'sender|receiver' /tmp/ip.log; echo IPERF_$dir-END"
			wait_for "$LOG" "^IPERF_$dir-END" $((SECS * 6 + 300)) || { echo "stop iperf3 $dir hung" >>"$res"; halt; return; }
			echo "net_$dir $(sed -n "/^IPERF_$dir=0/,/^IPERF_$dir-END/p" "$LOG" | iperf_rate)" >>"$res"
		done
	else
		echo "note DHCP failed" >>"$res"
	fi
	# Disks: find them by driver (sysfs), dd with O_DIRECT.
	send 'for b in /sys/block/sd* /sys/block/nvme*n1; do [ -e "$b" ] && echo "DEV=${b##*/}"; done; echo DEVS-DONE'
	wait_for "$LOG" '^DEVS-DONE' 60 || { echo "stop no disk list" >>"$res"; halt; return; }
	local dev kind
	for dev in $(sed -n 's/^DEV=\([a-z0-9]*\).*/\1/p' "$LOG" | sort -u); do
		case $dev in sd*) kind=storvsc ;; nvme*) kind=nvme ;; *) continue ;; esac
		# busybox dd prints no rate: time it with the guest's /proc/uptime.
		send "s=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero of=/dev/$dev bs=1M count=$DD_MB oflag=direct conv=fsync 2>/dev/null; echo DDW_$dev=\$? \$s \$(cut -d' ' -f1 /proc/uptime)"
		wait_for "$LOG" "^DDW_$dev=" 900 || { echo "stop dd write on $dev hung" >>"$res"; halt; return; }
		send "s=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/$dev of=/dev/null bs=1M count=$DD_MB iflag=direct 2>/dev/null; echo DDR_$dev=\$? \$s \$(cut -d' ' -f1 /proc/uptime)"
		wait_for "$LOG" "^DDR_$dev=" 900 || { echo "stop dd read on $dev hung" >>"$res"; halt; return; }
		echo "dd_w_$kind $(dd_rate DDW_$dev)" >>"$res"
		echo "dd_r_$kind $(dd_rate DDR_$dev)" >>"$res"
	done
	halt
	echo "wall $((SECONDS - t0))" >>"$res"
}

# "KEY=STATUS START END" (guest uptime, s) -> MB/s (10^6) for DD_MB MiB; empty if dd failed.
dd_rate() {
	sed -n "s/^$1=\\(.*\\)/\\1/p" "$LOG" | tr -d '\r' | tail -1 |
		awk -v mb="$DD_MB" '$1 == 0 && $3 > $2 { printf "%.1f", mb * 1048576 / ($3 - $2) / 1e6 }'
}

for run in $(seq "$RUNS"); do
	for vmm in hvmm qemu; do
		want $vmm || continue
		log "run $run/$RUNS: $vmm"
		load=$(cut -d' ' -f1 /proc/loadavg)
		measure $vmm "$run"
		echo "load $load" >>"$TMP/$vmm-$run.res"
		log "  $(tr '\n' ';' <"$TMP/$vmm-$run.res")"
	done
done

get() { awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$TMP/$1.res" 2>/dev/null; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "–"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'; }
med() { local vmm=$1 key=$2 r; for r in $(seq "$RUNS"); do get "$vmm-$r" "$key"; done | grep -E '^[0-9.]+$' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "–" }'; }

{
	echo "<!-- $MARK:begin (bench/linux.sh) -->"
	echo "## Linux guest: iperf3 and dd (bench/linux.sh)"
	echo
	echo "The minimal kernel (Debian's linux-source, scripts/mkkernel.sh) with its stock"
	echo "hv_netvsc, hv_storvsc, nvme and virtio-net drivers, busybox and Debian's iperf3"
	echo "(.cache/guest/minimal/initrd-tools.img). hvmm: \`--hv --nic\` (netvsp +"
	echo "consomme), a VMBus SCSI disk and an NVMe disk (\`file:\` backend, host page"
	echo "cache); QEMU ${QEMU_VERSION:-(not run)}: \`-M q35\`, virtio-net on \`-netdev user\`, NVMe with"
	echo "cache=writeback. iperf3 runs $SECS s per direction against a server on the"
	echo "host's 127.0.0.1, through the NAT's gateway; dd moves $DD_MB MiB in 1 MiB"
	echo "blocks with O_DIRECT. $RUNS runs at $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname), hvmm commit"
	echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); medians."
	echo
	echo "| figure | hvmm | QEMU | hvmm/QEMU |"
	echo "|---|---|---|---|"
	for k in net_tx:"TCP guest -> host, Mbit/s" net_rx:"TCP host -> guest, Mbit/s" \
		dd_w_storvsc:"dd write, VMBus SCSI, MB/s" dd_r_storvsc:"dd read, VMBus SCSI, MB/s" \
		dd_w_nvme:"dd write, NVMe, MB/s" dd_r_nvme:"dd read, NVMe, MB/s" boot:"boot to HVMM-INIT-OK, s"; do
		h=$(med hvmm "${k%%:*}") q=$(med qemu "${k%%:*}")
		echo "| ${k#*:} | $h | $q | $(ratio "$h" "$q") |"
	done
	echo
	echo "Every run (\`–\`: not measured; \"stopped\": why the run ended early):"
	echo
	echo "| VMM | run | load (1 min) | boot s | TCP g->h | TCP h->g | storvsc w/r MB/s | NVMe w/r MB/s | stopped |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for run in $(seq "$RUNS"); do
		for vmm in hvmm qemu; do
			want $vmm || continue
			r=$vmm-$run
			echo "| $vmm | $run | $(get $r load) | $(get $r boot) | $(get $r net_tx) | $(get $r net_rx) |" \
				"$(get $r dd_w_storvsc)/$(get $r dd_r_storvsc) | $(get $r dd_w_nvme)/$(get $r dd_r_nvme) | $(get $r stop) |"
		done
	done
	echo
	echo "On this PVM host guest ring 0 runs in KVM's instruction emulator, so the"
	echo "guest kernel's own per-packet and per-request work dominates these figures;"
	echo "QEMU cannot run Linux here at all (see \"stopped\"). On hardware KVM both rows"
	echo "fill in. Reproduce: \`RUNS=$RUNS SECS=$SECS bench/linux.sh\` (\`ONLY=hvmm\` to skip QEMU;"
	echo "\`OUTPUT=-\` prints the section only)."
	echo "<!-- $MARK:end -->"
} >"$TMP/section.md"

write_section "$MARK" "$TMP/section.md" "$OUTPUT" || exit 2
[ "$OUTPUT" = - ] && exit 0
log "wrote the $MARK section of $OUTPUT"
