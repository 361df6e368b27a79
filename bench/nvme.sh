#!/bin/bash
# bench/nvme.sh: NVMe requests per second and MB/s, hvmm against QEMU 7.2,
# driven by the same test guest (tests/guests/nvme_bench.elf: a polling
# NVMe driver whose loops run in guest ring 3, so on PVM hosts the guest
# side is native and the VMM is what is measured), and against the host's
# own read rate of the backing file (fio). Writes the docs/BENCHMARKS.md
# section between the "nvme-bench" markers ("nvme-bench-direct" with
# DIRECT=1; appended when absent).
#
# Workloads (each SECS seconds, one guest boot per run does all four):
# 4 KiB random reads at QD1 and QD32, 128 KiB sequential reads and writes
# at QD SEQQD (PRP lists). The backing file is BYTES long and holds the
# pattern nvme_bench checks (every 8-byte word = 0xA5A5<<48 | its offset);
# writes go to its last quarter, reads stay below.
#
# Cache mode: hvmm's file backend is buffered unless `;direct` (see
# src/backend/disk_file.c), QEMU's -drive default is cache=writeback, also
# through the host page cache: that pair is the default here, with the file
# read once beforehand so both start warm. DIRECT=1 compares `file:F;direct`
# with cache=none (O_DIRECT both) and measures the host with fio --direct=1.
#
# Doorbells: both VMMs offer shadow doorbells (Doorbell Buffer Config,
# OACS bit 8) and nvme_bench uses them; DBBUF=0 passes dbbuf=0 so that every
# doorbell is an MMIO write (one VM exit). The guest counts the MMIO
# doorbell writes it makes: the tables show them per I/O.
#
# usage: bench/nvme.sh    env: RUNS=5 SECS=2 SEQQD=8 BYTES=1G DIRECT=0 DBBUF=1
#        HVMM_BUILD=build IMG=<dir>/nvme-bench.img OUTPUT=docs/BENCHMARKS.md
#        (OUTPUT=- : stdout only) QEMU=qemu-system-x86_64 KEEP=<dir for logs>
#        TSC_KHZ=<host TSC kHz> (default: /proc/cpuinfo's cpu MHz)
set -uo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=${HVMM_BUILD:-$ROOT/build}
RUNS=${RUNS:-5}
SECS=${SECS:-2}
SEQQD=${SEQQD:-8}
BYTES=${BYTES:-1G}
DIRECT=${DIRECT:-0}
DBBUF=${DBBUF:-1}
QEMU=${QEMU:-qemu-system-x86_64}
OUTPUT=${OUTPUT:-$ROOT/docs/BENCHMARKS.md}
IMG=${IMG:-$ROOT/.cache/bench/nvme-bench.img}
ELF=$BUILD/tests/guests/nvme_bench.elf
log() { echo "[bench/nvme $(date +%T)] $*" >&2; }

if [ ! -x "$BUILD/hvmm" ] || [ ! -f "$ELF" ]; then
	[ -d "$BUILD" ] || meson setup "$BUILD" "$ROOT" >&2 || exit 2
	ninja -C "$BUILD" >&2 || exit 2
fi
[ -c /dev/kvm ] || { echo "bench/nvme.sh: no /dev/kvm" >&2; exit 2; }
command -v "$QEMU" >/dev/null || { echo "bench/nvme.sh: no $QEMU" >&2; exit 2; }
command -v fio >/dev/null || { echo "bench/nvme.sh: no fio (apt-get install fio)" >&2; exit 2; }
size=$(numfmt --from=iec "$BYTES") || exit 2

# The pattern file (kept between runs: writes only touch the last quarter,
# which the reads never check).
mkdir -p "$(dirname "$IMG")"
if [ ! -f "$IMG" ] || [ "$(stat -c %s "$IMG")" != "$size" ]; then
	log "writing the $BYTES pattern file $IMG"
	python3 - "$IMG" "$size" <<'EOF' || exit 2
import array, sys
path, size = sys.argv[1], int(sys.argv[2])
TAG, CH = 0xA5A5000000000000, 1 << 20
with open(path + '.tmp', 'wb') as f:
    for o in range(0, size, CH):
        f.write(array.array('Q', range(TAG | o, TAG | (o + CH), 8)).tobytes())
import os
os.rename(path + '.tmp', path)
EOF
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
KEEP=${KEEP:-} # a directory to keep the guests' logs in
val() { sed -n "s/.*[ ]$1=\([0-9.a-z-]*\).*/\1/p" "$2" | head -1; }
median() { sort -n | awk '{a[NR]=$1} END{if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
jobs="rr4k_qd1 rr4k_qd32 sr128k sw128k"
# Both guests convert TSC cycles with the host's TSC rate (PVM and KVM
# guests see the host's TSC unscaled) rather than each its own PIT
# calibration, which can be a few percent off under load.
KHZ=${TSC_KHZ:-$(awk -F: '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)}
APPEND="secs=$SECS seqqd=$SEQQD${KHZ:+ tsc_khz=$KHZ}"
[ "$DBBUF" = 1 ] || APPEND="$APPEND dbbuf=0"
if [ "$DIRECT" = 1 ]; then
	HDISK="file:$IMG;direct" QCACHE=none MODE="O_DIRECT (hvmm \`file:F;direct\`, QEMU cache=none)"
	MARK=nvme-bench-direct TITLE="NVMe, O_DIRECT (bench/nvme.sh DIRECT=1)"
else
	HDISK="file:$IMG" QCACHE=writeback MODE="host page cache (hvmm \`file:F\`, QEMU cache=writeback)"
	MARK=nvme-bench TITLE="NVMe (bench/nvme.sh)"
fi
HVMM_CMD=("$BUILD/hvmm" -k "$ELF" -m 64MB --com1 stderr --nvme-pci id=nv0
	--disk "$HDISK,on=nv0" -c "$APPEND")
QEMU_CMD=("$QEMU" -enable-kvm -cpu host,-arch-capabilities -M q35 -m 64M
	-nodefaults -no-user-config -nographic -serial stdio
	-device isa-debug-exit,iobase=0xf4,iosize=4
	-drive "file=$IMG,if=none,id=d0,format=raw,cache=$QCACHE"
	-device nvme,drive=d0,serial=qemu-nv0 -kernel "$ELF" -append "$APPEND")

START=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$DIRECT" = 1 ] || cat "$IMG" >/dev/null # warm the page cache

# The host's own rate for the same file and request sizes (fio, io_uring).
host_fio() { # name rw bs iodepth -> MB/s and IOPS
	fio --name="$1" --filename="$IMG" --rw="$2" --bs="$3" --iodepth="$4" \
		--ioengine=io_uring --direct="$DIRECT" --size=$((size / 4 * 3)) \
		--runtime="$SECS" --time_based --randrepeat=0 --norandommap \
		--output-format=json >"$TMP/fio-$1.json" 2>"$TMP/fio-$1.err" || return
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["read"]; print("%.3f %d" % (j["bw_bytes"]/1e6, j["iops"]))' "$TMP/fio-$1.json"
}
for r in $(seq 1 "$RUNS"); do
	read -r HOST_SR_MBPS[r] HOST_SR_IOPS[r] < <(host_fio sr128k read 128k "$SEQQD")
	read -r HOST_RR1_MBPS[r] HOST_RR1_IOPS[r] < <(host_fio rr4k_qd1 randread 4k 1)
	read -r HOST_RR32_MBPS[r] HOST_RR32_IOPS[r] < <(host_fio rr4k_qd32 randread 4k 32)
	log "host run $r: 128k read ${HOST_SR_MBPS[r]} MB/s, 4k QD1 ${HOST_RR1_IOPS[r]} IOPS, 4k QD32 ${HOST_RR32_IOPS[r]} IOPS"

	LOADS[r]=$(cut -d' ' -f1 /proc/loadavg)
	t0=$EPOCHREALTIME
	timeout 300 "${HVMM_CMD[@]}" >"$TMP/hvmm$r.log" 2>&1
	HST[r]=$? HWALL[r]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
	t0=$EPOCHREALTIME
	timeout 300 "${QEMU_CMD[@]}" >"$TMP/qemu$r.log" 2>&1 </dev/null
	QST[r]=$? QWALL[r]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
	for v in hvmm qemu; do
		{ grep -a '^BENCH' "$TMP/$v$r.log" | tr '\n' ' '; echo; } >"$TMP/$v$r.bench"
		res=$(grep -a '^GUEST-RESULT' "$TMP/$v$r.log" | tail -1)
		echo "${res#GUEST-RESULT: }" >"$TMP/$v$r.result"
		log "$v run $r: ${res:-no result}; $(grep -ao 'nvme_[a-z0-9_]*_iops=[0-9]*' "$TMP/$v$r.log" | tr '\n' ' ')"
	done
done

med() { # vmm key -> median over runs
	for r in $(seq 1 "$RUNS"); do val "$2" "$TMP/$1$r.bench"; done | grep -E '^[0-9.]+$' | median
}
us() { awk -v v="$1" 'BEGIN{print v ~ /^[0-9]+$/ ? int(v/1000) : "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-"}'; }
per_io() { # vmm job -> median over runs of MMIO doorbell writes per I/O
	for r in $(seq 1 "$RUNS"); do
		awk -v d="$(val "nvme_$2_mmio_db" "$TMP/$1$r.bench")" -v n="$(val "nvme_$2_ios" "$TMP/$1$r.bench")" \
			'BEGIN{if (d ~ /^[0-9]+$/ && n > 0) printf "%.3f\n", d / n}'
	done | median
}
host_med() { local -n arr=$1; printf '%s\n' "${arr[@]}" | grep -E '^[0-9.]+$' | median; }
H_SR=$(host_med HOST_SR_MBPS) H_RR1=$(host_med HOST_RR1_IOPS) H_RR32=$(host_med HOST_RR32_IOPS)
H_RR1_MB=$(host_med HOST_RR1_MBPS) H_RR32_MB=$(host_med HOST_RR32_MBPS)

{
	echo "<!-- $MARK:begin (bench/nvme.sh) -->"
	echo "## $TITLE"
	echo
	echo "tests/guests/nvme_bench.elf, a polling NVMe driver whose I/O loops run in"
	echo "guest ring 3 (native here; each MMIO doorbell write is one VM exit), under"
	echo "hvmm (\`--nvme-pci id=nv0 --disk ${HDISK//$ROOT\//},on=nv0\`) and QEMU $("$QEMU" --version | head -1 | sed 's/.*version \([^ ]*\).*/\1/') (\`-M q35 -device nvme\`,"
	echo "\`cache=$QCACHE\`), $RUNS runs each on $(uname -n) at $START, hvmm commit $(git -C "$ROOT" rev-parse --short HEAD)."
	echo "Backing file: $BYTES pattern file; cache mode: $MODE."
	echo "Each workload runs ${SECS} s per boot; medians over the runs. Sequential"
	echo "workloads at QD $SEQQD. The host row is fio (io_uring, --direct=$DIRECT) on the same"
	echo "file with the same request size and depth, $SECS s, median of $RUNS. Load average"
	echo "at the start $LOAD0 (2 shared CPUs: the guest's polling vCPU, the VMM's I/O"
	echo "thread and other users' jobs compete; compare within a run)."
	if [ "$DBBUF" = 1 ]; then
		echo "Doorbells: shadow doorbells (Doorbell Buffer Config), which both VMMs offer;"
		echo "the guest writes an MMIO doorbell only when its new value passes the"
		echo "controller's EventIdx (\`MMIO doorbells per I/O\` below; 2 without them)."
	else
		echo "Doorbells: MMIO only (DBBUF=0: the guest does not use shadow doorbells)."
	fi
	echo
	echo "| workload | hvmm | QEMU | hvmm/QEMU | host (fio) | hvmm/host |"
	echo "|---|---|---|---|---|---|"
	for j in $jobs; do
		hi=$(med hvmm "nvme_${j}_iops") qi=$(med qemu "nvme_${j}_iops")
		hm=$(med hvmm "nvme_${j}_mbps") qm=$(med qemu "nvme_${j}_mbps")
		hl=$(med hvmm "nvme_${j}_lat_ns") ql=$(med qemu "nvme_${j}_lat_ns")
		h50=$(med hvmm "nvme_${j}_p50_ns") q50=$(med qemu "nvme_${j}_p50_ns")
		h99=$(med hvmm "nvme_${j}_p99_ns") q99=$(med qemu "nvme_${j}_p99_ns")
		case $j in
		rr4k_qd1) label="4 KiB random read, QD1" host=$H_RR1 hostm=$H_RR1_MB ;;
		rr4k_qd32) label="4 KiB random read, QD32" host=$H_RR32 hostm=$H_RR32_MB ;;
		sr128k) label="128 KiB sequential read, QD $SEQQD" host="-" hostm=$H_SR ;;
		sw128k) label="128 KiB sequential write, QD $SEQQD" host="-" hostm="-" ;;
		esac
		echo "| $label, IOPS | $hi | $qi | $(ratio "$hi" "$qi") | $host | $(ratio "$hi" "$host") |"
		echo "| $label, MB/s | $hm | $qm | $(ratio "$hm" "$qm") | $hostm | $(ratio "$hm" "$hostm") |"
		echo "| $label, mean latency µs | $(us "$hl") | $(us "$ql") | $(ratio "$hl" "$ql") | | |"
		echo "| $label, median latency µs | $(us "$h50") | $(us "$q50") | $(ratio "$h50" "$q50") | | |"
		echo "| $label, 99th percentile latency µs | $(us "$h99") | $(us "$q99") | $(ratio "$h99" "$q99") | | |"
		hd=$(per_io hvmm "$j") qd=$(per_io qemu "$j")
		echo "| $label, MMIO doorbells per I/O | $hd | $qd | $(ratio "$hd" "$qd") | | |"
	done
	echo
	echo "Targets (issue 4 item 7):"
	echo
	echo "| target | measured | verdict |"
	echo "|---|---|---|"
	r1=$(ratio "$(med hvmm nvme_rr4k_qd1_iops)" "$(med qemu nvme_rr4k_qd1_iops)")
	echo "| ≥ 1.5x QEMU's IOPS at QD1 | hvmm/QEMU = $r1 | $(awk -v r="$r1" 'BEGIN{print (r ~ /^[0-9.]+$/ && r >= 1.5) ? "met" : "not met"}') |"
	rl=$(ratio "$(med qemu nvme_rr4k_qd1_p50_ns)" "$(med hvmm nvme_rr4k_qd1_p50_ns)")
	echo "| (the same, load-robust: QEMU's median QD1 latency / hvmm's) | $rl | $(awk -v r="$rl" 'BEGIN{print (r ~ /^[0-9.]+$/ && r >= 1.5) ? "met" : "not met"}') |"
	rs=$(ratio "$(med hvmm nvme_sr128k_mbps)" "$H_SR")
	echo "| ≥ 80% of the host's 128 KiB read throughput | hvmm/host = $rs | $(awk -v r="$rs" 'BEGIN{print (r ~ /^[0-9.]+$/ && r >= 0.8) ? "met" : "not met"}') |"
	echo
	verdict() { awk -v r="$1" -v t="$2" 'BEGIN{print (r ~ /^[0-9.]+$/ && r >= t) ? "met" : "not met"}'; }
	echo "In this run (load average $LOAD0 at the start, $(printf '%s\n' "${LOADS[@]}" | sort -n | head -1)-$(printf '%s\n' "${LOADS[@]}" | sort -n | tail -1) at each boot):"
	echo "QD1 IOPS hvmm/QEMU = $r1, target 1.5x $(verdict "$r1" 1.5); by median QD1 latency"
	echo "$rl, $(verdict "$rl" 1.5); 128 KiB reads hvmm/host = $rs, target 0.8 $(verdict "$rs" 0.8)."
	echo "MMIO doorbell writes per I/O at QD1: hvmm $(per_io hvmm rr4k_qd1), QEMU $(per_io qemu rr4k_qd1)."
	echo
	cat <<'EOT'
Where the time goes (perf and A/B runs of hvmm alone, 2026-11-27; the
figures of this run are in the tables above and below):

- Doorbells. An MMIO doorbell write costs the guest one exit, ~20 µs from
  ring 3 on this PVM host (see pio_bench). Without shadow doorbells
  (DBBUF=0) every I/O costs two, the SQ tail and the CQ head. Both VMMs
  offer Doorbell Buffer Config and nvme_bench uses it, but QEMU 7.2
  publishes EventIdx = the value it has just consumed, so its guest still
  rings for every submission and every CQ head move (2 per I/O at QD1).
  hvmm's CQ worker wants a CQ head only when the CQ is full, and after a
  batch with no disk I/O in flight it polls the shadow page for a while
  (adaptive, up to 50 µs) before it publishes EventIdx and sleeps: a guest
  that submits again within the window makes no exit at all. At QD1 from
  the page cache that is a median latency of ~3 µs when the worker gets
  its own CPU, against ~35-50 µs with MMIO doorbells.
- The price of polling is a CPU. On this 2-CPU host the guest's vCPU also
  spins (it polls its CQ), so when other jobs run the worker and the vCPU
  take turns: the window halves each time it passes without work (an idle
  guest, or a vCPU waiting for the worker's CPU) and the guest falls back
  to one exit per submission, still none for the CQ head. QD1 and the
  exits per I/O therefore move with the load more than anything else.
- 128 KiB reads from the page cache: buffered reads of 64 KiB and more go
  to io_uring with IOSQE_ASYNC (src/backend/disk_file.c), so the page
  copies (perf: `copy_page_to_iter`, nearly all of the time) run on
  io_uring's io-wq workers in parallel instead of inline in the one CQ
  worker; fio's host figure is one thread whose io_uring copies inline.
  On a quiet host alternating runs gave 3.8-4.3 GB/s with it against
  2.3-4.1 GB/s without. Writes stay inline (an A/B showed no gain: one
  file's buffered writes serialise on its inode lock).
- 4 KiB reads at QD32: perf shows the worker's time in the page-cache copy
  and in one `io_uring_enter` per request (the disk queue submits each
  request as it comes); the vCPU's share is the guest polling.
- O_DIRECT: IOSQE_ASYNC does not apply (nothing is copied; io_uring goes
  async by itself when the device would block); the shadow doorbells do,
  but the worker polls only while no disk I/O is in flight, which with
  device latency is seldom, so the guest rings about once per batch.
- Polling against load: the polling worker is always runnable, so on a
  loaded host it waits behind other jobs where a sleeping thread would get
  the scheduler's wake-up preference. At QD32 from the page cache this
  shows as a median latency below QEMU's with a mean and a 99th percentile
  above it, and IOPS that can fall to half of QEMU's (page-cache run of
  2026-11-27 02:27Z, load ~4-5), while on a quiet host alternating hvmm
  runs gave 366-398k QD32 IOPS with shadow doorbells against 285-383k
  without and QD1 120-232k against 20-25k. Tuning the window to the load
  (or polling only at low queue depth) is open.
- 128 KiB reads with O_DIRECT: at load ~2 (2026-11-27 08:27Z) hvmm read
  as fast as fio on the host (1.03x) and at 0.85x QEMU; under load 3-6
  (earlier runs) 0.55-0.7 of both. The CQ worker is mostly idle there
  (perf: page pinning and block submission); one worker per CQ does every
  fetch, submission and completion, while QEMU spreads a batch over its
  threads, which matters more when the host's CPUs are busy.
- IOPS are wall-clock: each time the host deschedules the spinning vCPU
  (other jobs; see the load column) the I/Os in flight wait, which shows
  in the 99th percentile and the mean. The median latency is what the VMM's
  path costs when it runs; at QD1 it is the load-robust comparison.

EOT
	echo "Every run (IOPS; \`result\` is the guest's GUEST-RESULT: every completion's"
	echo "status and command id checked, read data checked against the pattern,"
	echo "written blocks read back):"
	echo
	echo "| VMM | run | load (1 min) | rr4k QD1 | rr4k QD32 | sr128k MB/s | sw128k MB/s | wall, s | result |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for r in $(seq 1 "$RUNS"); do
		for v in hvmm qemu; do
			b=$TMP/$v$r.bench
			if [ $v = hvmm ]; then w=${HWALL[r]}; else w=${QWALL[r]}; fi
			echo "| $v | $r | ${LOADS[r]} | $(val nvme_rr4k_qd1_iops "$b") | $(val nvme_rr4k_qd32_iops "$b") | $(val nvme_sr128k_mbps "$b") | $(val nvme_sw128k_mbps "$b") | $w | $(cat "$TMP/$v$r.result") |"
		done
		echo "| host fio | $r | | ${HOST_RR1_IOPS[r]:-} | ${HOST_RR32_IOPS[r]:-} | ${HOST_SR_MBPS[r]:-} | | | |"
	done
	echo
	echo "Reproduce: \`RUNS=$RUNS SECS=$SECS bench/nvme.sh\` (\`DIRECT=1\` for O_DIRECT on"
	echo "both; \`OUTPUT=-\` prints the section only). By hand:"
	echo
	echo "    build/hvmm -k build/tests/guests/nvme_bench.elf -m 64MB --com1 stderr \\"
	echo "      --nvme-pci id=nv0 --disk '$HDISK,on=nv0' -c '$APPEND'" | sed "s|$ROOT/||g"
	echo "    qemu-system-x86_64 -enable-kvm -cpu host,-arch-capabilities -M q35 -m 64M \\"
	echo "      -nodefaults -no-user-config -nographic -serial stdio \\"
	echo "      -device isa-debug-exit,iobase=0xf4,iosize=4 \\"
	echo "      -drive file=$IMG,if=none,id=d0,format=raw,cache=$QCACHE \\" | sed "s|$ROOT/||g"
	echo "      -device nvme,drive=d0,serial=qemu-nv0 \\"
	echo "      -kernel build/tests/guests/nvme_bench.elf -append '$APPEND'"
	echo "<!-- $MARK:end -->"
} >"$TMP/section.md"
write_section "$MARK" "$TMP/section.md" "$OUTPUT" || exit 2
[ "$OUTPUT" = - ] && exit 0
log "wrote the $MARK section of $OUTPUT"
if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp "$TMP"/*.log "$TMP"/*.bench "$TMP"/*.json "$TMP/section.md" "$KEEP"/; fi
