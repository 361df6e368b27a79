#!/bin/bash
# bench/igvm.sh: IGVM parse + load time against the time to read the file
# (issue 7's benchmark). Builds a ~64 MiB IGVM with `hvmm-igvm build
# --kernel` (the minimal kernel plus a 60 MiB initrd of random bytes in a
# cpio archive: ~17,000 PAGE_DATA headers), then runs igvm_load_bench
# (bench/igvm_load.c): medians of RUNS of (a) reading the file from the
# page cache, (b) igvm_open (CRC-32, header walk, every validation rule),
# (c) igvm_load into fake guest RAM (validates again, copies the pages,
# fills the parameters). No VM is started, so /dev/kvm is not needed.
# Writes the "igvm-bench" section of docs/BENCHMARKS.md.
#
# usage: bench/igvm.sh    env: RUNS=7 HVMM_BUILD=build OUTPUT=docs/BENCHMARKS.md
#        (OUTPUT=- : stdout only) KERNEL=.cache/guest/minimal/bzImage
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
BUILD=${HVMM_BUILD:-$ROOT/build}
RUNS=${RUNS:-7}
OUTPUT=${OUTPUT:-$ROOT/docs/BENCHMARKS.md}
KERNEL=${KERNEL:-$ROOT/.cache/guest/minimal/bzImage}
TOOL=$BUILD/src/tools/hvmm-igvm
BENCH=$BUILD/bench/igvm_load_bench
log() { echo "[igvm-bench] $*" >&2; }
for f in "$TOOL" "$BENCH"; do
	[ -x "$f" ] || { log "missing $f (ninja -C $BUILD)"; exit 2; }
done
[ -f "$KERNEL" ] || { log "missing $KERNEL (scripts/guest.sh minimal)"; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/cpio"
head -c 60M /dev/urandom >"$TMP/cpio/blob"
(cd "$TMP/cpio" && echo blob | cpio -o -H newc >"$TMP/initrd.cpio" 2>/dev/null) ||
	{ log "cpio failed"; exit 2; }
"$TOOL" build -o "$TMP/big.igvm" --kernel "$KERNEL" --initrd "$TMP/initrd.cpio" \
	--cmdline "console=ttyS0" || { log "hvmm-igvm build failed"; exit 2; }
"$TOOL" verify "$TMP/big.igvm" >/dev/null || { log "the built file does not verify"; exit 2; }
out=$("$BENCH" "$TMP/big.igvm" 512 "$RUNS") || { log "igvm_load_bench failed"; exit 2; }
echo "$out" >&2
res=$(grep '^RESULT ' <<<"$out")
val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$res"; }
read_ms=$(val read_ms) parse_ms=$(val parse_ms) load_ms=$(val load_ms)
size=$(stat -c %s "$TMP/big.igvm")
headers=$(sed -n 's/.* MB, \([0-9]*\) headers.*/\1/p' <<<"$out")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mbs() { awk -v s="$size" -v ms="$1" 'BEGIN { printf "%.0f", s / 1e6 / (ms / 1e3) }'; }
{
	echo "<!-- igvm-bench:begin (bench/igvm.sh) -->"
	echo "## IGVM parse and load (bench/igvm.sh)"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg)," \
		"commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')." \
		"A $((size / 1048576)) MiB IGVM file ($headers headers: the minimal kernel and a" \
		"60 MiB initrd as PAGE_DATA, built by \`hvmm-igvm build --kernel\`), medians of $RUNS runs," \
		"all from the page cache. The limit is reading the file; there is no QEMU peer (QEMU 7.2" \
		"has no IGVM loader)."
	echo
	echo "| phase | time (ms) | MB/s | × read |"
	echo "|---|---|---|---|"
	echo "| read the file (pread) | $read_ms | $(mbs "$read_ms") | 1.00 |"
	echo "| parse + validate (igvm_open) | $parse_ms | $(mbs "$parse_ms") | $(ratio "$parse_ms" "$read_ms") |"
	echo "| load (igvm_load: validate, copy pages, fill parameters) | $load_ms | $(mbs "$load_ms") | $(ratio "$load_ms" "$read_ms") |"
	echo
	echo "Parse + load from a file in memory therefore takes $(ratio "$load_ms" "$read_ms")× the time" \
		"to read it; \`hvmm --igvm\` reads the file once (read + load ≈" \
		"$(awk -v a="$read_ms" -v b="$load_ms" 'BEGIN { printf "%.0f", a + b }') ms here) before the" \
		"vCPUs start. Reproduce: \`bench/igvm.sh\` (RUNS=7)."
	echo "<!-- igvm-bench:end -->"
} >"$TMP/section.md"
write_section igvm-bench "$TMP/section.md" "$OUTPUT" || exit 2
log "wrote the igvm-bench section of $OUTPUT"
