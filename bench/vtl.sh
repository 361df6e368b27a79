#!/bin/bash
# bench/vtl.sh: hvmm --vtl2's VTL switches end to end (issue 8 item 8:
# "VTL0 -> VTL2 -> VTL0 round trip for an intercepted port write, and
# VtlCall/VtlReturn, against a bare KVM exit in the same run; target: an
# intercept round trip within 3x a bare exit"). Builds the vtl2_bench
# payload (tests/guests/vtl2_bench.c) into a VSM_ISOLATION IGVM file
# (`hvmm-igvm build --vsm --relocatable`, with a COMMAND_LINE area for its
# vb_n/vb_batches), runs `hvmm --igvm F --hv --vtl2 -p 1 -m 64MB` RUNS times
# (the guest times its loops with RDTSC and prints one VTL-BENCH line on
# COM3); after each it runs bench/kvm_switch.c (cc -O2), the KVM-level
# model of the same switches, for its bare exit and round-trip rows; the
# median of each figure over the runs goes in the section. Writes the
# "vtl-bench" section of docs/BENCHMARKS.md (OUTPUT=- : stdout only).
#
# usage: bench/vtl.sh   env: RUNS=5 N=2000 BATCHES=7 KS_ITERS=20000
#        HVMM_BUILD=build OUTPUT=docs/BENCHMARKS.md CC=cc
set -uo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=${HVMM_BUILD:-$ROOT/build}
RUNS=${RUNS:-5}
N=${N:-2000}
BATCHES=${BATCHES:-7}
KS_ITERS=${KS_ITERS:-20000}
OUTPUT=${OUTPUT:-$ROOT/docs/BENCHMARKS.md}
HVMM=$BUILD/hvmm
TOOL=$BUILD/src/tools/hvmm-igvm
ELF=$BUILD/tests/guests/vtl2_bench.elf
MARK=vtl-bench

log() { echo "[bench/vtl $(date +%T)] $*" >&2; }
die() { echo "bench/vtl.sh: $*" >&2; exit 2; }

[ -c /dev/kvm ] || die "no /dev/kvm"
for f in "$HVMM" "$TOOL"; do [ -x "$f" ] || die "missing $f (ninja -C $BUILD)"; done
[ -f "$ELF" ] || die "missing $ELF (ninja -C $BUILD)"
W=$(mktemp -d /tmp/hvmm-bench-vtl.XXXXXX)
trap 'rm -rf "$W"' EXIT

"$TOOL" build -o "$W/vtl2_bench.igvm" --elf "$ELF" --vsm --relocatable \
	--param cmdline@0x10000 || die "hvmm-igvm build failed"
load=$(cut -d' ' -f1-3 /proc/loadavg)

# hvmm RUNS times (one VTL-BENCH line each), each followed by a run of
# kvm_switch, the KVM-level model, so both see the same host load.
${CC:-cc} -O2 -Wall -o "$W/kvm_switch" "$ROOT/bench/kvm_switch.c" || die "cannot build kvm_switch"
ks() { grep -F "$1" "$W/ks.out" | head -1 | awk '{ print $(NF - 1) }'; }
for run in $(seq "$RUNS"); do
	timeout 600 "$HVMM" --igvm "$W/vtl2_bench.igvm" --hv --vtl2 -p 1 -m 64MB --com1 none \
		--com3 stderr -c "vb_n=$N vb_batches=$BATCHES" >"$W/run$run.log" 2>&1
	st=$?
	line=$(grep -a '^VTL-BENCH ' "$W/run$run.log" | tail -1)
	grep -qa 'GUEST-RESULT: 10 passed, 0 failed' "$W/run$run.log" && [ "$st" = 0 ] &&
		[ -n "$line" ] || { tail -20 "$W/run$run.log" >&2; die "run $run failed (exit $st)"; }
	"$W/kvm_switch" "$KS_ITERS" >"$W/ks.out" 2>&1 || { cat "$W/ks.out" >&2; die "kvm_switch failed"; }
	kb=$(ks 'bare exit (KVM_RUN to out, VM A)')
	kv=$(ks 'VTL round trip, sync regs + XSAVE GET, SET on change')
	ki=$(ks 'intercept round trip, registers on demand')
	[ -n "$kb" ] && [ -n "$kv" ] && [ -n "$ki" ] ||
		{ cat "$W/ks.out" >&2; die "kvm_switch's rows not found"; }
	line="$line ks_bare_ns=$kb ks_vtl_ns=$kv ks_icpt_ns=$ki"
	log "run $run: $line"
	echo "$line" >>"$W/lines"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# The median over the runs of field $1 of the VTL-BENCH lines.
med() {
	sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$W/lines" | sort -n |
		awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
all() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$W/lines" | awk '{ printf "%s%.1f", (NR > 1 ? " " : ""), $1 / 1000 }'; }
B3=$(med bare_ns) B0=$(med bare_r0_ns) I3=$(med intercept_ns) I0=$(med intercept_r0_ns)
V=$(med vtlcall_ns) H=$(med handler_ns) S=$(med setvp_ns) T=$(med instr_intercept_ns)
R0=$(med r0_insn_ps) HI=$(med handler_insns) E0=$(med bare_r0_emul) EI=$(med intercept_emul)
EI0=$(med intercept_r0_emul) EV=$(med vtlcall_emul) KHZ=$(med tsc_khz)
ks_bare=$(med ks_bare_ns) ks_vtl=$(med ks_vtl_ns) ks_icpt=$(med ks_icpt_ns)
case "$(grep -ao 'tsc_khz=[0-9]* ([a-z0-9-]*)' "$W/run1.log" | head -1)" in
*hv-msr*) KSRC=HV_X64_MSR_TSC_FREQUENCY ;;
*) KSRC="lib/tsc.c's calibration" ;;
esac
MB0=$(med emu_bare_r0_ns) MI0=$(med emu_intercept_r0_ns) MV=$(med emu_vtlcall_ns)
P3=$(med intercept_rp_ns) P0=$(med intercept_rp_r0_ns) MP0=$(med emu_intercept_rp_r0_ns)
EP=$(med intercept_rp_emul) EP0=$(med intercept_rp_r0_emul)
# f EXPR: awk arithmetic on the figures (ns), printed with 1 decimal ("us" helpers divide).
f() {
	awk -v b3="$B3" -v b0="$B0" -v i3="$I3" -v i0="$I0" -v v="$V" -v h="$H" -v s="$S" \
		-v t="$T" -v r0="$R0" -v hi="$HI" -v e0="$E0" -v ei="$EI" -v ei0="$EI0" -v ev="$EV" \
		-v kb="$ks_bare" -v kv="$ks_vtl" -v ki="$ks_icpt" -v mb0="$MB0" -v mi0="$MI0" -v mv="$MV" \
		-v p3="$P3" -v p0="$P0" -v mp0="$MP0" \
		"BEGIN { mi3 = mi0 - mb0; b0e = b0 - mb0; i3e = i3 - mi3; i0e = i0 - mi0; ve = v - mv;
			 mp3 = mp0 - mb0; p3e = p3 - mp3; p0e = p0 - mp0;
			 printf \"%.${2:-1}f\", $1 }"
}
# r EXPR [DECIMALS]: EXPR (names as in f) evaluated in each run, the median over the runs:
# the ratios and differences, so that each combines figures of one run.
r() {
	awk '{ for (i = 2; i <= NF; i++) { split($i, p_, "="); x[p_[1]] = p_[2] }
		b3 = x["bare_ns"]; b0 = x["bare_r0_ns"]; i3 = x["intercept_ns"]; i0 = x["intercept_r0_ns"]
		v = x["vtlcall_ns"]; mb0 = x["emu_bare_r0_ns"]; mi0 = x["emu_intercept_r0_ns"]
		mv = x["emu_vtlcall_ns"]; kb = x["ks_bare_ns"]; kv = x["ks_vtl_ns"]; ki = x["ks_icpt_ns"]
		p3 = x["intercept_rp_ns"]; p0 = x["intercept_rp_r0_ns"]; mp0 = x["emu_intercept_rp_r0_ns"]
		mi3 = mi0 - mb0; b0e = b0 - mb0; i3e = i3 - mi3; i0e = i0 - mi0; ve = v - mv
		mp3 = mp0 - mb0; p3e = p3 - mp3; p0e = p0 - mp0
		printf "%.6f\n", '"$1"' }' "$W/lines" | sort -g |
		awk -v d="${2:-1}" '{ a[NR] = $1 } END { printf "%.*f", d, a[int((NR + 1) / 2)] }'
}
log "medians (ns): bare $B3 bare_r0 $B0 intercept $I3 intercept_r0 $I0 vtlcall $V handler $H"

holds=$(r '(i0e / b0e <= 3 ? 1 : 0)' 0)
holds_rp=$(r '(p0e / b0e <= 3 ? 1 : 0)' 0)
S_=$W/section.md
{
	echo "<!-- $MARK:begin (bench/vtl.sh writes this section) -->"
	echo "## VTL switches end to end in hvmm --vtl2 (bench/vtl.sh)"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, host load average $load at the start, $load_end at the end,"
	echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'). The vtl2_bench payload"
	echo "(tests/guests/vtl2_bench.c) in \`hvmm --igvm F --hv --vtl2 -p 1 -m 64MB\`: VTL2 sets VTL0 up and"
	echo "VTL0 runs each loop $BATCHES times ($N iterations from ring 3, $((N / 4)) from ring 0), timed"
	echo "with RDTSC in the guest ($KHZ kHz, $KSRC); figures are the median over"
	echo "$RUNS runs of each run's median batch. The bare exit is VTL0's \`out\` to a port no device"
	echo "claims; the intercept is VTL0's \`out\` to a port VTL2 intercepts, served by VTL2's asm handler"
	echo "(read the message in the VP assist page, SetVpRegisters VTL0's RIP past the \`out\`,"
	echo "VtlReturn): three exits and two switches; with VTL2's register page (HvX64RegisterPage, as"
	echo "OpenHCL maps it) the handler writes VTL0's next RIP into the page and sets its dirty flag"
	echo "instead, and the VtlReturn applies it: two exits. VtlCall needs CPL 0, so it runs from ring 0."
	echo "The ratios (×) and differences below are the medians of each run's own."
	echo
	echo "| round trip | µs | × bare exit, same ring | emulated ring-0 instructions besides the exits | µs without them (est.) | × bare exit, same ring (est.) |"
	echo "|---|---|---|---|---|---|"
	echo "| bare exit, VTL0 ring 3 | $(f 'b3 / 1000') | 1.00 | 0 | $(f 'b3 / 1000') | 1.00 |"
	echo "| bare exit, VTL0 ring 0 | $(f 'b0 / 1000') | 1.00 | $E0 | $(r 'b0e / 1000') | 1.00 |"
	echo "| intercepted port write, VTL0 ring 3 | $(f 'i3 / 1000') | $(r 'i3 / b3' 2) | $EI (VTL2) | $(r 'i3e / 1000') | $(r 'i3e / b3' 2) |"
	echo "| intercepted port write, VTL0 ring 0 | $(f 'i0 / 1000') | $(r 'i0 / b0' 2) | $EI0 | $(r 'i0e / 1000') | $(r 'i0e / b0e' 2) |"
	echo "| intercepted port write, register page, VTL0 ring 3 | $(f 'p3 / 1000') | $(r 'p3 / b3' 2) | $EP (VTL2) | $(r 'p3e / 1000') | $(r 'p3e / b3' 2) |"
	echo "| intercepted port write, register page, VTL0 ring 0 | $(f 'p0 / 1000') | $(r 'p0 / b0' 2) | $EP0 | $(r 'p0e / 1000') | $(r 'p0e / b0e' 2) |"
	echo "| VtlCall + VtlReturn, VTL0 ring 0 | $(f 'v / 1000') | $(r 'v / b0' 2) | $EV | $(r 've / 1000') | $(r 've / b0e' 2) |"
	echo
	echo "The estimate subtracts what those instructions cost without their exits: the payload runs"
	echo "the same ring-0 instructions in VTL2 with the hypercall stubs' \`out\` left out (bare loop"
	echo "$(f 'mb0 / 1000') µs, intercept from ring 0 $(f 'mi0 / 1000') µs, from ring 3 the difference,"
	echo "VtlCall $(f 'mv / 1000') µs an iteration; a \`dec; jnz\` loop gives $(f 'r0 / 1e6' 2) µs an"
	echo "instruction). VTL2's handler timed itself too: $HI of its instructions, RDTSC to RDTSC, took"
	echo "$(f 'h / 1000') µs ($(f 'h / hi / 1000' 2) µs each); its SetVpRegisters call (9 emulated"
	echo "instructions and one exit) $(f 's / 1000') µs; that instrumented round trip $(f 't / 1000') µs."
	echo "Runs (µs): bare $(all bare_ns); intercept $(all intercept_ns); intercept from ring 0"
	echo "$(all intercept_r0_ns); with the register page $(all intercept_rp_ns), from ring 0"
	echo "$(all intercept_rp_r0_ns); VtlCall $(all vtlcall_ns); kvm_switch's bare exit $(all ks_bare_ns),"
	echo "its intercept $(all ks_icpt_ns)."
	echo
	echo "The KVM-level model of the same switches, run after each hvmm run (bench/kvm_switch.c, two"
	echo "VMs over one memfd, real-mode \`out; jmp\` guests; each run's median of 5 batches of"
	echo "$((KS_ITERS / 4)), the median over the $RUNS runs):"
	echo
	echo "| kvm_switch.c | µs | × its bare exit |"
	echo "|---|---|---|"
	echo "| bare exit (KVM_RUN to an \`out\`) | $(f 'kb / 1000') | 1.00 |"
	echo "| VTL round trip, sync regs + XSAVE GET, SET on change (the VtlCall pattern: 2 exits) | $(f 'kv / 1000') | $(r 'kv / kb' 2) |"
	echo "| intercept round trip, registers on demand (3 exits, SetVpRegisters(RIP)) | $(f 'ki / 1000') | $(r 'ki / kb' 2) |"
	echo
	echo "What it means on this PVM host: VTL2 always runs in ring 0, which KVM emulates at about"
	echo "$(f 'mi0 / ei0 / 1000' 2) µs an instruction, so $(r 'mi3 / 1000') µs of the ring-3 intercept's"
	echo "$(f 'i3 / 1000') µs is PVM emulating VTL2's $EI handler and stub instructions, not hvmm."
	echo "A ring-3 \`out\` exit costs $(f 'b3 / 1000') µs against about $(r 'b0e / 1000') µs from ring 0"
	echo "(PVM takes a #GP and reads the TSS I/O bitmap first), which flatters the ratio to the ring-3"
	echo "bare exit ($(r 'i3 / b3' 2)×, $(r 'i3e / b3' 2)× without VTL2's emulation)."
	echo "Like for like, from ring 0 and without the emulation, an intercept costs $(r 'i0e / 1000') µs,"
	echo "$(r 'i0e / b0e' 1)× a bare exit ($(r 'p0e / 1000') µs, $(r 'p0e / b0e' 1)×, with the register page),"
	echo "and a VtlCall round trip $(r 've / 1000') µs, $(r 've / b0e' 1)×,"
	echo "against $(f 'ki / 1000') µs ($(r 'ki / kb' 1)×) and $(f 'kv / 1000') µs ($(r 'kv / kb' 1)×) for the model's KVM calls alone."
	echo "hvmm makes exactly those calls (strace of a run: VTL0's KVM_RUN, KVM_GET_XSAVE(2), VTL2's two"
	echo "KVM_RUNs, KVM_GET_XSAVE(2) per intercept; no register ioctl), so the difference ($(r '(i0e - ki) / 1000') µs"
	echo "and $(r '(ve - kv) / 1000') µs, noisy from run to run) is hvmm's user-space work plus whatever PVM"
	echo "charges more to enter a paging long-mode guest than the model's real-mode one."
	if [ "$holds" = 1 ] || [ "$holds_rp" = 1 ]; then
		echo "So the 3× target holds here on that like-for-like measure."
	else
		echo "So the 3× target does not hold on that measure here. With SetVpRegisters the round trip"
		echo "is three exits (VTL0's \`out\`, VTL2's SetVpRegisters, its VtlReturn); with the register"
		echo "page two, like VtlCall's, and two switches with an XSAVE read each: the model's KVM calls"
		echo "for that pattern alone cost $(r 'kv / kb' 1)× its bare exit on this host, where every vCPU"
		echo "ioctl costs about half a bare exit (PVM's vCPU load and put), so a VTL switch that"
		echo "carries the shared vector state through KVM's ioctls does not get under 3× on it."
	fi
	echo "Reproduce: \`bench/vtl.sh\` (RUNS=$RUNS N=$N BATCHES=$BATCHES KS_ITERS=$KS_ITERS; needs a build"
	echo "with the test guests, HVMM_BUILD=build)."
	echo "<!-- $MARK:end -->"
} >"$S_"
write_section "$MARK" "$S_" "$OUTPUT" || exit 2
log "wrote the $MARK section of $OUTPUT"
