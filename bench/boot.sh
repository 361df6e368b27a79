#!/bin/bash
# bench/boot.sh: hvmm side by side with QEMU on this host, in one run, and the
# report docs/BENCHMARKS.md. A benchmark, not a test: a slow or failing VMM is
# a result to report, not an error; the script fails (status 2) only when a
# prerequisite is missing.
#
# What it measures, each RUNS times (runs of different VMMs interleaved, one
# VM at a time, so load drift hits all of them alike; medians reported):
#  1. Linux boot of the minimal kernel + initramfs (.cache/guest/minimal):
#     wall time from launch to the first serial output, the kernel banner
#     (its first console line), `Run /init as init process`, the
#     `HVMM-INIT-OK` line of /init, and VMM
#     exit (the guest powers off: hvmm.autorun=poweroff). hvmm, QEMU -M
#     microvm and QEMU -M pc. For each run: how far it got and why it stopped.
#  2. VMM memory beyond guest RAM: RssAnon+RssFile of the VMM process (guest
#     RAM is a memfd for both, so it is RssShmem), at the kernel banner and
#     at HVMM-INIT-OK; hvmm's largest mappings at HVMM-INIT-OK.
#  3. tests/guests/pio_bench.elf: ring-3 and ring-0 port-I/O round trips;
#     tests/guests/hello.elf: launch-to-exit wall time.
#
# usage: bench/boot.sh            (from anywhere; writes docs/BENCHMARKS.md)
# env:   RUNS=3         runs per VMM and workload (>= 1; >= 3 for medians)
#        TIMEOUT=300    seconds per Linux run before it is stopped
#        POLL=0.02      seconds between looks at the logs
#        MEM_MB=512     guest RAM for the Linux runs
#        PIO_ITERS=20000  pio_bench iterations
#        ONLY=linux,pio,hello   subset of workloads
#        OUTPUT=docs/BENCHMARKS.md  where the report goes
#        KEEP=1         keep the scratch directory (logs of every run)
#        RERENDER=DIR   no runs: rewrite the report from DIR, a scratch
#                       directory kept by KEEP=1 (after editing the layout)
#        QEMU=qemu-system-x86_64, HVMM_BUILD=build, HVMM_CACHE=.cache
# exit:  0 report written, 2 missing prerequisite, 130/143 interrupted
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HVMM_BUILD:-$ROOT/build}
HVMM=$BUILD/hvmm
CACHE=${HVMM_CACHE:-$ROOT/.cache}
QEMU=${QEMU:-qemu-system-x86_64}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-300}
POLL=${POLL:-0.02}
MEM_MB=${MEM_MB:-512}
PIO_ITERS=${PIO_ITERS:-20000}
ONLY=${ONLY:-linux,pio,hello}
OUTPUT=${OUTPUT:-$ROOT/docs/BENCHMARKS.md}
KEEP=${KEEP:-0}
SMALL_TIMEOUT=120 # test guests

KERNEL=$CACHE/guest/minimal/bzImage
INITRD=$CACHE/guest/minimal/initrd.img
PIO_ELF=$BUILD/tests/guests/pio_bench.elf
HELLO_ELF=$BUILD/tests/guests/hello.elf

# What QEMU needs on a PVM host besides -cpu host,-arch-capabilities (the
# shared PVM notes, docs/pvm-notes.md): keep the guest off instructions
# KVM's emulator lacks.
QEMU_LINUX_APPEND="console=ttyS0 noxsave nofsgsbase clearcpuid=smap,popcnt,rdtscp,ssse3 panic=-1 hvmm.autorun=poweroff"
QEMU_MICROVM=microvm,x-option-roms=off,pit=on,rtc=on,isa-serial=on

die() {
	echo "bench/boot.sh: error: $*" >&2
	exit 2
}
note() { echo "[bench $(date +%T)] $*" >&2; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---------------------------------------------------------------- checks

check_prereqs() {
	[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "bash >= 5 is needed (for \$EPOCHREALTIME)"
	[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer (got '$RUNS')"
	[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be whole seconds (got '$TIMEOUT')"
	[[ $POLL =~ ^[0-9]*\.?[0-9]+$ ]] || die "POLL must be seconds, e.g. 0.02 (got '$POLL')"
	[[ $MEM_MB =~ ^[1-9][0-9]*$ ]] || die "MEM_MB must be a number of MiB (got '$MEM_MB')"
	[ "$RUNS" -ge 3 ] || note "warning: RUNS=$RUNS; medians need >= 3 runs"
	local w
	for w in ${ONLY//,/ }; do
		case $w in linux | pio | hello) ;; *) die "ONLY: unknown workload '$w' (linux, pio, hello)" ;; esac
	done
	for w in awk sort git mktemp mkfifo; do
		command -v "$w" >/dev/null || die "'$w' is not installed"
	done
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] ||
		die "/dev/kvm is missing or not read/writable by $(id -un)"
	[ -x "$HVMM" ] || die "hvmm is not built ($HVMM): run 'meson setup build && ninja -C build'"
	if want pio || want hello; then
		[ -f "$PIO_ELF" ] && [ -f "$HELLO_ELF" ] ||
			die "test guests are not built ($BUILD/tests/guests/*.elf): run 'ninja -C build'"
	fi
	if want linux && ! { [ -f "$KERNEL" ] && [ -f "$INITRD" ]; }; then
		note "minimal guest missing ($KERNEL, $INITRD): running scripts/guest.sh minimal"
		"$ROOT/scripts/guest.sh" minimal >&2 || die "scripts/guest.sh minimal failed"
		[ -f "$KERNEL" ] && [ -f "$INITRD" ] || die "scripts/guest.sh minimal did not produce $KERNEL and $INITRD"
	fi
	command -v "$QEMU" >/dev/null ||
		die "QEMU not found ('$QEMU'): apt-get install qemu-system-x86, or set QEMU=/path/to/qemu-system-x86_64"
	QEMU_VERSION=$("$QEMU" --version | awk 'NR==1{print $4}')
	[[ $QEMU_VERSION == 7.2* ]] || note "warning: QEMU $QEMU_VERSION, the figures are meant for 7.2"
}

# ---------------------------------------------------------------- scratch, cleanup

TMP=
LIVE_PIDS=()
TICK_FD=

cleanup() {
	local p
	for p in "${LIVE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${LIVE_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$p" 2>/dev/null
	done
	LIVE_PIDS=()
	[ -n "$TICK_FD" ] && exec {TICK_FD}>&-
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "$KEEP" = 1 ]; then
			note "scratch files kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM HUP

# nap: sleeps $POLL seconds without a fork (read with a timeout on a fifo
# that never gets data).
nap() { read -r -t "$POLL" -u "$TICK_FD" _ 2>/dev/null; }

# ---------------------------------------------------------------- one VM run

# Results of the last run_vm: times are absolute $EPOCHREALTIME stamps, RSS
# in kB; empty = never happened.
R_VARS=(R_FIRST R_FIRST_TEXT R_BANNER R_INIT R_INITOK R_AUTORUN R_END R_RC
	R_KILLED R_EMU R_EMU_TEXT R_CODE R_ERR R_PANIC R_BENCH R_RESULT
	R_RSS_BANNER R_RSS_INITOK R_PID R_DIR)
reset_results() {
	local v
	for v in "${R_VARS[@]}"; do printf -v "$v" '%s' ''; done
}
R_T0=''
reset_results
declare -A PART

# rss_sample PID: prints "anon file shmem" (kB) from /proc/PID/status.
rss_sample() {
	local k v _u a='' f='' s=''
	[ -r "/proc/$1/status" ] || return 1
	while read -r k v _u; do
		case $k in
		RssAnon:) a=$v ;;
		RssFile:) f=$v ;;
		RssShmem:) s=$v ;;
		esac
	done <"/proc/$1/status"
	[ -n "$a" ] && [ -n "$f" ] || return 1
	echo "$a $f $s"
}

on_line() {
	local src=$1 line=${2%$'\r'} now=$EPOCHREALTIME
	if [ "$src" = serial ] && [ -z "$R_FIRST" ] && [ -n "$line" ]; then
		R_FIRST=$now
	fi
	case $line in
	*"Linux version "*)
		if [ -z "$R_BANNER" ]; then
			R_BANNER=$now R_FIRST_TEXT=${line#*Linux version }
			R_RSS_BANNER=$(rss_sample "$R_PID")
		fi
		;;
	*"Run /init as init process"*) [ -n "$R_INIT" ] || R_INIT=$now ;;
	HVMM-INIT-OK*)
		if [ -z "$R_INITOK" ]; then
			R_INITOK=$now
			R_RSS_INITOK=$(rss_sample "$R_PID")
			cat "/proc/$R_PID/smaps" >"$R_DIR/smaps" 2>/dev/null
		fi
		;;
	HVMM-AUTORUN-DONE*) [ -n "$R_AUTORUN" ] || R_AUTORUN=$now ;;
	*"Kernel panic - not syncing"*) [ -n "$R_PANIC" ] || R_PANIC=${line#*not syncing: } ;;
	"BENCH "*) R_BENCH+=" ${line#BENCH }" ;;
	GUEST-RESULT:*) R_RESULT=${line#GUEST-RESULT: } ;;
	"KVM internal error"*) [ -n "$R_EMU" ] || R_EMU=$now R_EMU_TEXT=$line ;;
	Code=*) [ -n "$R_CODE" ] || R_CODE=$line ;;
	"hvmm: error:"*) [ -n "$R_ERR" ] || R_ERR=$line ;;
	esac
}

# scan_fd FD SRC: hands every complete new line of the file on FD to on_line;
# keeps a trailing partial line for the next call.
scan_fd() {
	local fd=$1 src=$2 line
	while :; do
		if IFS= read -r -u "$fd" line; then
			on_line "$src" "${PART[$src]-}$line"
			PART[$src]=
		else
			PART[$src]+=$line
			return 0
		fi
	done
}

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
}

# run_vm TAG TIMEOUT_S SERIAL -- CMD...: runs one VM until it exits, hits an
# emulation failure (QEMU then stops the VM but keeps running: it is killed),
# or times out (killed). SERIAL is the file the guest's COM1 goes to, or
# "out"/"err" for the VMM's stdout/stderr. Sets the R_* results.
run_vm() {
	local tag=$1 tmo=$2 serial=$3
	shift 4
	local dir=$TMP/runs/$tag
	mkdir -p "$dir"
	: >"$dir/out"
	: >"$dir/err"
	case $serial in out | err) serial=$dir/$serial ;; *) : >"$serial" ;; esac
	printf '%q ' "$@" >"$dir/cmd"
	reset_results
	R_DIR=$dir
	PART=()

	R_T0=$EPOCHREALTIME
	# The wrapper waits for the VMM and stamps its exit at once, so exit
	# times do not depend on the polling interval.
	(
		"$@" </dev/null >"$dir/out" 2>"$dir/err" &
		echo $! >"$dir/pid"
		wait $!
		echo "$? $EPOCHREALTIME" >"$dir/exit.tmp"
		mv "$dir/exit.tmp" "$dir/exit"
	) &
	local wrapper=$!
	LIVE_PIDS+=("$wrapper")
	while [ ! -s "$dir/pid" ]; do nap; done
	R_PID=$(<"$dir/pid")
	LIVE_PIDS+=("$R_PID")

	local fs fo fe same=
	exec {fo}<"$dir/out" {fe}<"$dir/err"
	if [ "$serial" = "$dir/out" ]; then
		fs=$fo same=out
	elif [ "$serial" = "$dir/err" ]; then
		fs=$fe same=err
	else
		exec {fs}<"$serial"
	fi
	local deadline=$((${R_T0%.*} + tmo)) now
	scan() {
		scan_fd "$fs" serial
		[ "$same" = out ] || scan_fd "$fo" out
		[ "$same" = err ] || scan_fd "$fe" err
	}
	while :; do
		scan
		[ -s "$dir/exit" ] && break
		now=$EPOCHREALTIME
		if [ -n "$R_EMU" ]; then
			# Let QEMU finish its register dump (the Code= line), then stop it.
			if [ -n "$R_CODE" ] || ((${now%.*} > ${R_EMU%.*} + 2)); then
				R_KILLED=emulation
				stop_pid "$R_PID"
				break
			fi
		fi
		if ((${now%.*} >= deadline)); then
			R_KILLED=timeout
			stop_pid "$R_PID"
			break
		fi
		nap
	done
	wait "$wrapper" 2>/dev/null
	scan
	[ "$fs" = "$fo" ] || [ "$fs" = "$fe" ] || exec {fs}<&-
	exec {fo}<&- {fe}<&-
	read -r R_RC R_END <"$dir/exit" 2>/dev/null || R_RC='?' R_END=''
	LIVE_PIDS=()
}

# ---------------------------------------------------------------- results

RES= # TSV: workload vmm run metric value

rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:--}" >>"$RES"; }
# since STAMP: seconds from R_T0 to STAMP (empty if STAMP is empty)
since() { [ -n "$1" ] && awk -v a="$1" -v b="$R_T0" 'BEGIN{printf "%.3f", a - b}'; }
kib2mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN{printf "%.2f", k / 1024}'; }
load1() {
	local a _
	read -r a _ </proc/loadavg
	echo "$a"
}
bench_val() { [[ $R_BENCH =~ (^|\ )$1=([0-9]+) ]] && echo "${BASH_REMATCH[2]}"; }

# The failed instruction, from QEMU's "Code=... <cc> ..." line.
failed_insn() {
	local b
	[[ $R_CODE =~ \<([0-9a-f]{2})\> ]] || { echo "unknown instruction"; return; }
	b=${BASH_REMATCH[1]}
	case $b in
	cc) echo "int3" ;;
	*) echo "opcode 0x$b" ;;
	esac
}

# stop_reason VMM: sets STOP_CLASS (short), STOP_T (s since launch) and
# STOP_TEXT (one line) for the last run.
stop_reason() {
	local vmm=$1
	STOP_T=$(since "$R_END")
	case $R_KILLED in
	emulation)
		STOP_T=$(since "$R_EMU")
		STOP_CLASS="KVM emulation failure at $(failed_insn)"
		STOP_TEXT="$STOP_CLASS after $STOP_T s ('$R_EMU_TEXT'; QEMU paused the VM and was killed)"
		return
		;;
	timeout)
		STOP_T=$(since "$EPOCHREALTIME")
		STOP_CLASS="timeout"
		STOP_TEXT="no exit within the timeout; killed after $STOP_T s"
		return
		;;
	esac
	if [ -n "$R_ERR" ]; then
		STOP_CLASS="VMM error"
		STOP_TEXT="exit $R_RC: ${R_ERR//|//}"
	elif [ -n "$R_PANIC" ]; then
		STOP_CLASS="kernel panic"
		STOP_TEXT="kernel panic ('${R_PANIC//|//}'), exit $R_RC"
	elif [ -n "$R_AUTORUN" ] || [ "$R_RC" = 0 ]; then
		STOP_CLASS="guest power-off"
		STOP_TEXT="guest powered off; $vmm exited $R_RC"
	else
		STOP_CLASS="exit $R_RC"
		STOP_TEXT="$vmm exited $R_RC"
	fi
}

last_milestone() {
	if [ -n "$R_AUTORUN" ] && [ -z "$R_KILLED" ] && [ "$R_RC" = 0 ]; then
		echo "power-off"
	elif [ -n "$R_INITOK" ]; then
		echo "HVMM-INIT-OK"
	elif [ -n "$R_INIT" ]; then
		echo "Run /init"
	elif [ -n "$R_BANNER" ]; then
		echo "kernel banner"
	elif [ -n "$R_FIRST" ]; then
		echo "console output"
	else
		echo "none"
	fi
}

# ---------------------------------------------------------------- workloads

linux_cmd() { # VMM LOG -> CMD array
	local vmm=$1 log=$2
	case $vmm in
	hvmm)
		CMD=("$HVMM" -k "$KERNEL" -r "$INITRD" -m "${MEM_MB}MB" --com1 "file=$log"
			-c console=ttyS0 -c hvmm.autorun=poweroff)
		;;
	qemu-microvm | qemu-pc)
		local m=$QEMU_MICROVM
		[ "$vmm" = qemu-pc ] && m=pc
		CMD=("$QEMU" -enable-kvm -cpu "host,-arch-capabilities"
			-M "$m,memory-backend=mem" -m "${MEM_MB}M"
			-object "memory-backend-memfd,id=mem,size=${MEM_MB}M"
			-nodefaults -no-user-config -nographic -no-reboot -serial "file:$log"
			-kernel "$KERNEL" -initrd "$INITRD" -append "$QEMU_LINUX_APPEND")
		;;
	esac
}

guest_cmd() { # VMM ELF APPEND -> CMD array (test guests: COM1 on the VMM's stderr/stdout)
	local vmm=$1 elf=$2 append=$3
	case $vmm in
	hvmm)
		CMD=("$HVMM" -k "$elf" -m 64MB --com1 stderr)
		[ -n "$append" ] && CMD+=(-c "$append")
		;;
	qemu-microvm | qemu-pc)
		local m=$QEMU_MICROVM
		[ "$vmm" = qemu-pc ] && m=pc
		CMD=("$QEMU" -enable-kvm -cpu "host,-arch-capabilities" -M "$m" -m 64M
			-nodefaults -no-user-config -nographic -serial stdio
			-device "isa-debug-exit,iobase=0xf4,iosize=4" -kernel "$elf" -append "$append")
		;;
	esac
}
guest_serial() { [ "$1" = hvmm ] && echo err || echo out; }

LINUX_VMMS=(hvmm qemu-microvm qemu-pc)
PIO_VMMS=(hvmm qemu-microvm)
HELLO_VMMS=(hvmm qemu-microvm qemu-pc)

# rec_rss VMM RUN WHEN "ANON FILE SHMEM": records MiB (rss_WHEN = anon+file).
rec_rss() {
	local a='' f='' s=''
	read -r a f s <<<"$4"
	rec linux "$1" "$2" "rss_$3" "$([ -n "$a" ] && kib2mib $((a + f)))"
	rec linux "$1" "$2" "anon_$3" "$(kib2mib "$a")"
	rec linux "$1" "$2" "file_$3" "$(kib2mib "$f")"
	rec linux "$1" "$2" "shm_$3" "$(kib2mib "$s")"
}

bench_linux() {
	local r vmm log
	for ((r = 1; r <= RUNS; r++)); do
		for vmm in "${LINUX_VMMS[@]}"; do
			log=$TMP/runs/linux-$vmm-$r.com1
			linux_cmd "$vmm" "$log"
			note "linux $vmm run $r/$RUNS (load $(load1))"
			rec linux "$vmm" "$r" load "$(load1)"
			run_vm "linux-$vmm-$r" "$TIMEOUT" "$log" -- "${CMD[@]}"
			stop_reason "$vmm"
			rec linux "$vmm" "$r" first "$(since "$R_FIRST")"
			rec linux "$vmm" "$r" banner "$(since "$R_BANNER")"
			rec linux "$vmm" "$r" init "$(since "$R_INIT")"
			rec linux "$vmm" "$r" initok "$(since "$R_INITOK")"
			if [ "$(last_milestone)" = power-off ]; then
				rec linux "$vmm" "$r" exit "$(since "$R_END")"
			else
				rec linux "$vmm" "$r" exit ""
			fi
			rec_rss "$vmm" "$r" banner "$R_RSS_BANNER"
			rec_rss "$vmm" "$r" initok "$R_RSS_INITOK"
			rec linux "$vmm" "$r" milestone "$(last_milestone)"
			rec linux "$vmm" "$r" stop_class "$STOP_CLASS"
			rec linux "$vmm" "$r" stop_t "$STOP_T"
			rec linux "$vmm" "$r" stop "$STOP_TEXT"
			[ -n "$R_FIRST_TEXT" ] && [ "$vmm" = hvmm ] && GUEST_BANNER="Linux ${R_FIRST_TEXT%% (*}"
			note "  -> $(last_milestone); $STOP_TEXT"
		done
	done
}

bench_guest() { # WORKLOAD ELF APPEND VMMS...
	local wl=$1 elf=$2 append=$3 r vmm
	shift 3
	for ((r = 1; r <= RUNS; r++)); do
		for vmm in "$@"; do
			guest_cmd "$vmm" "$elf" "$append"
			note "$wl $vmm run $r/$RUNS"
			rec "$wl" "$vmm" "$r" load "$(load1)"
			run_vm "$wl-$vmm-$r" "$SMALL_TIMEOUT" "$(guest_serial "$vmm")" -- "${CMD[@]}"
			stop_reason "$vmm"
			rec "$wl" "$vmm" "$r" wall "$( [ -z "$R_KILLED" ] && since "$R_END")"
			rec "$wl" "$vmm" "$r" result "${R_RESULT:-none}"
			rec "$wl" "$vmm" "$r" rc "$R_RC"
			rec "$wl" "$vmm" "$r" stop "$STOP_TEXT"
			local k
			for k in pio_out_ns pio_in_ns pio_out_min_ns pio_in_min_ns ring0_pio_out_ns ring0_pio_in_ns ring0_rdtsc_ns; do
				rec "$wl" "$vmm" "$r" "$k" "$(bench_val "$k")"
			done
			note "  -> ${R_RESULT:-no result}; wall $(since "$R_END") s;${R_BENCH:0:60}"
		done
	done
}

# ---------------------------------------------------------------- report helpers

vals() { awk -F'\t' -v w="$1" -v v="$2" -v m="$3" '$1==w && $2==v && $4==m {print $5}' "$RES"; }
val() { awk -F'\t' -v w="$1" -v v="$2" -v r="$3" -v m="$4" '$1==w && $2==v && $3==r && $4==m {print $5}' "$RES"; }
numeric() { awk '$1 ~ /^-?[0-9]+(\.[0-9]+)?$/'; }
median() {
	vals "$@" | numeric | sort -g |
		awk '{a[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
count() { vals "$@" | numeric | wc -l; }
total() { vals "$@" | wc -l; }
fmt() { [ -n "$2" ] && awk -v x="$2" -v d="$1" 'BEGIN{printf "%.*f", d, x}'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.2f", a / b}'; }
# Most frequent value of a metric ("a (2/3 runs)").
mode() {
	vals "$@" | sort | uniq -c | sort -rn | awk -v n="$(total "$@")" 'NR==1{c=$1; $1=""; sub(/^ /,""); printf "%s (%d/%d runs)", $0, c, n}'
}

# cell W V M DIGITS: median with "(k/n runs)" when not every run got there;
# "not reached" when none did.
cell() {
	local m n k
	m=$(median "$1" "$2" "$3") n=$(total "$1" "$2" "$3") k=$(count "$1" "$2" "$3")
	if [ -z "$m" ]; then
		echo "not reached"
	elif [ "$k" -lt "$n" ]; then
		echo "$(fmt "$4" "$m") ($k/$n runs)"
	else
		fmt "$4" "$m"
	fi
}

# How QEMU's (vmm V) Linux runs stopped: the commonest reason, median time.
qemu_stop() {
	local v=$1 t
	t=$(median linux "$v" stop_t)
	echo "$(vals linux "$v" stop_class | sort | uniq -c | sort -rn | awk 'NR==1{$1=""; sub(/^ /,""); print}') after $(fmt 1 "$t") s (median)"
}
qemu_why() { echo "QEMU fails here: $(qemu_stop "$1")"; }

# rcell W M DIGITS V: ratio hvmm/V or n/a with the reason.
rcell() {
	local a b
	a=$(median "$1" hvmm "$2") b=$(median "$1" "$4" "$2")
	if [ -n "$a" ] && [ -n "$b" ]; then
		ratio "$a" "$b"
	elif [ -z "$b" ] && [ "$1" = linux ]; then
		echo "n/a ($(qemu_why "$4"))"
	else
		echo "n/a"
	fi
}

# ---------------------------------------------------------------- report

write_report() {
	local out=$1 v r
	local kver cpu pvm mem_total la_end commit dirty
	kver=$(uname -r)
	cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
	mem_total=$(awk '/^MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	if [ -d /sys/module/kvm_pvm ]; then
		pvm="yes: kvm_pvm module (guest ring 0 runs in KVM's instruction emulator)"
	else
		pvm="no"
	fi
	grep -qwE 'vmx|svm' /proc/cpuinfo && pvm+="; vmx/svm present" || pvm+="; no vmx/svm in /proc/cpuinfo"
	la_end=$LOAD_END commit=$COMMIT

	{
		cat <<EOF
# Benchmarks: hvmm and QEMU on this host

Written by \`bench/boot.sh\` (do not edit by hand; run it again). Latest run:
$END_DATE UTC, $RUNS runs per VMM and workload, medians.
Ratios are hvmm / QEMU (below 1: hvmm is faster or smaller).

## Machine

| | |
|---|---|
| date | $START_DATE – ${END_DATE#* } UTC |
| host kernel | $kver |
| CPU | $cpu, $(nproc) logical CPUs, $mem_total RAM |
| KVM is PVM | $pvm |
| load average (1/5/15 min) | start $LOAD_START, end $la_end; per run in the raw tables |
| busiest processes at start (ps %CPU) | $BUSY_START |
| hvmm | commit $commit; \`$(realpath --relative-to="$ROOT" "$HVMM")\` built ${HVMM_MTIME:-?} |
| QEMU | $("$QEMU" --version | head -1) |
| guest (Linux runs) | ${GUEST_BANNER:-?} |
| guest files | \`bzImage\` $(stat -c %s "$KERNEL" 2>/dev/null) bytes, \`initrd.img\` $(stat -c %s "$INITRD" 2>/dev/null) bytes, ${MEM_MB} MiB guest RAM, 1 vCPU |

Other jobs shared the two CPUs during the run (see the load column): times
are wall-clock and move with load; compare the VMMs within one run, not
across runs.

EOF
		local a m d label
		cat <<EOF
## Summary

| measure | hvmm | QEMU microvm | QEMU pc | hvmm/microvm | hvmm/pc |
|---|---|---|---|---|---|
EOF
		if want linux; then
			for a in "banner|2|launch → kernel banner (first kernel console line), s" \
				"init|2|launch → \`Run /init as init process\`, s" \
				"initok|2|launch → \`HVMM-INIT-OK\` (/init runs), s" \
				"exit|2|launch → VMM exit after guest power-off, s" \
				"rss_banner|2|VMM RssAnon+RssFile at the kernel banner, MiB" \
				"rss_initok|2|VMM RssAnon+RssFile at \`HVMM-INIT-OK\`, MiB"; do
				IFS='|' read -r m d label <<<"$a"
				printf '| %s | %s | %s | %s | %s | %s |\n' "$label" \
					"$(cell linux hvmm "$m" "$d")" "$(cell linux qemu-microvm "$m" "$d")" \
					"$(cell linux qemu-pc "$m" "$d")" \
					"$(rcell linux "$m" "$d" qemu-microvm)" "$(rcell linux "$m" "$d" qemu-pc)"
			done
		fi
		if want pio; then
			for a in "pio_out_ns|ring-3 \`out\` round trip, ns" "pio_in_ns|ring-3 \`in\` round trip, ns" \
				"ring0_pio_out_ns|ring-0 \`out\` round trip, ns" "ring0_pio_in_ns|ring-0 \`in\` round trip, ns"; do
				IFS='|' read -r m label <<<"$a"
				printf '| pio_bench: %s | %s | %s | – | %s | – |\n' "$label" \
					"$(cell pio hvmm "$m" 0)" "$(cell pio qemu-microvm "$m" 0)" "$(rcell pio "$m" 0 qemu-microvm)"
			done
		fi
		if want hello; then
			printf '| hello.elf: launch → exit, s | %s | %s | %s | %s | %s |\n' \
				"$(cell hello hvmm wall 3)" "$(cell hello qemu-microvm wall 3)" "$(cell hello qemu-pc wall 3)" \
				"$(rcell hello wall 3 qemu-microvm)" "$(rcell hello wall 3 qemu-pc)"
		fi
		echo
		want linux && write_targets
		want linux && write_linux_raw
		want linux && write_hvmm_smaps
		want pio && write_pio_raw
		want hello && write_hello_raw
		write_method
	} >"$out"
}

write_targets() {
	local hi qm qp qmt qpt rss
	hi=$(median linux hvmm init)
	qm=$(median linux qemu-microvm init) qp=$(median linux qemu-pc init)
	rss=$(median linux hvmm rss_initok)
	echo "## Targets (from the issue)"
	echo
	echo "| target | measured | verdict |"
	echo "|---|---|---|"
	if [ -n "$hi" ] && { [ -n "$qm" ] || [ -n "$qp" ]; }; then
		local best r
		best=$(printf '%s\n' $qm $qp | sort -g | head -1) # the faster QEMU machine
		r=$(ratio "$hi" "$best")
		printf '| hvmm reaches /init in <= 0.5x QEMU'"'"'s time here | %s s vs %s s: %sx | %s |\n' \
			"$(fmt 2 "$hi")" "$(fmt 2 "$best")" "$r" \
			"$(awk -v r="$r" 'BEGIN{print (r <= 0.5) ? "met" : "not met"}')"
	else
		qmt=$(median linux qemu-microvm stop_t) qpt=$(median linux qemu-pc stop_t)
		printf '| hvmm reaches /init in <= 0.5x QEMU'"'"'s time here | hvmm: %s s; QEMU: never (microvm: %s; pc: %s) | not measurable: QEMU 7.2 does not boot Linux on this host. Its stop time bounds its /init time from below, so hvmm/QEMU < %s (microvm) and < %s (pc), which does not decide the 0.5x target. |\n' \
			"$(fmt 2 "$hi")" "$(qemu_stop qemu-microvm)" "$(qemu_stop qemu-pc)" \
			"$(ratio "$hi" "$qmt")" "$(ratio "$hi" "$qpt")"
	fi
	echo "| <= 0.8x QEMU on hardware KVM, by design | – | not measurable on this host (PVM; no vmx/svm) |"
	printf '| VMM overhead < 8 MiB RSS (RssAnon+RssFile) | hvmm %s MiB at HVMM-INIT-OK (RssAnon %s + RssFile %s); %s MiB at the kernel banner | %s |\n' \
		"$(fmt 2 "$rss")" "$(fmt 2 "$(median linux hvmm anon_initok)")" "$(fmt 2 "$(median linux hvmm file_initok)")" \
		"$(fmt 2 "$(median linux hvmm rss_banner)")" \
		"$([ -n "$rss" ] && awk -v r="$rss" 'BEGIN{print (r < 8) ? "met" : "not met"}' || echo "not measured")"
	echo
}

write_linux_raw() {
	local v r
	cat <<EOF
## Linux boot, every run

Seconds from launch; "–": not reached. "serial out": the first line on
COM1 of any kind (on pc, SeaBIOS's banner); "banner": the kernel's
\`Linux version\` line. RSS: RssAnon+RssFile of the VMM process, MiB, with
(RssAnon/RssFile); shmem: RssShmem, the guest RAM touched so far.

| VMM | run | load (1 min) | serial out | banner | Run /init | HVMM-INIT-OK | exit | RSS at banner | RSS at INIT-OK | shmem at INIT-OK | got to | stopped because |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
	for ((r = 1; r <= RUNS; r++)); do
		for v in "${LINUX_VMMS[@]}"; do
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$v" "$r" \
				"$(val linux "$v" "$r" load)" "$(val linux "$v" "$r" first)" "$(val linux "$v" "$r" banner)" \
				"$(val linux "$v" "$r" init)" "$(val linux "$v" "$r" initok)" "$(val linux "$v" "$r" exit)" \
				"$(rss_cell "$v" "$r" banner)" "$(rss_cell "$v" "$r" initok)" \
				"$(val linux "$v" "$r" shm_initok)" "$(val linux "$v" "$r" milestone)" \
				"$(val linux "$v" "$r" stop)"
		done
	done | sed 's/| - /| – /g'
	echo
}

rss_cell() { # VMM RUN WHEN
	local t
	t=$(val linux "$1" "$2" "rss_$3")
	if [ "$t" = - ]; then
		echo -
	else
		echo "$t ($(val linux "$1" "$2" "anon_$3")/$(val linux "$1" "$2" "file_$3"))"
	fi
}

# Where hvmm's RssAnon+RssFile goes: its mappings at HVMM-INIT-OK in the first
# run, guest RAM (the memfd) left out.
write_hvmm_smaps() {
	local f
	f=$(dirname "$RES")/runs/linux-hvmm-1/smaps
	[ -s "$f" ] || return 0
	cat <<EOF
## Where hvmm's resident memory goes

hvmm's mappings at \`HVMM-INIT-OK\` (run 1, from \`/proc/PID/smaps\`),
resident kB, largest first; guest RAM (the memfd) left out, mappings under
64 kB summed in the last row.

| kB | mapping | permissions |
|---|---|---|
EOF
	awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "") ? "(anonymous)" : $6; perm = $2; next}
		/^Rss:/ {if (name !~ /^\/memfd:/) rss[name "|" perm] += $2}
		END {for (k in rss) print rss[k] "|" k}' "$f" | sort -t'|' -k1,1rn |
		awk -F'|' '$1 >= 64 {printf "| %d | %s | %s |\n", $1, $2, $3; next} {rest += $1} END {printf "| %d | everything else | |\n", rest}'
	echo
}

write_pio_raw() {
	local v r
	cat <<EOF
## pio_bench, every run

Medians over ${PIO_ITERS} iterations (ring 3) and 1000 (ring 0) in one run,
ns; each sample includes one \`rdtsc\` (ring 0: \`ring0_rdtsc_ns\`).

| VMM | run | load | out | in | out min | in min | ring-0 out | ring-0 in | ring-0 rdtsc | wall, s | result |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
	for ((r = 1; r <= RUNS; r++)); do
		for v in "${PIO_VMMS[@]}"; do
			printf '| %s | %s |' "$v" "$r"
			for m in load pio_out_ns pio_in_ns pio_out_min_ns pio_in_min_ns ring0_pio_out_ns ring0_pio_in_ns ring0_rdtsc_ns wall result; do
				printf ' %s |' "$(val pio "$v" "$r" "$m")"
			done
			echo
		done
	done
	echo
}

write_hello_raw() {
	local v r
	cat <<EOF
## hello.elf, every run

Launch to VMM exit, s. QEMU's status is isa-debug-exit's (1 = guest passed).

| VMM | run | load | wall, s | guest result | VMM status |
|---|---|---|---|---|---|
EOF
	for ((r = 1; r <= RUNS; r++)); do
		for v in "${HELLO_VMMS[@]}"; do
			printf '| %s | %s | %s | %s | %s | %s |\n' "$v" "$r" "$(val hello "$v" "$r" load)" \
				"$(val hello "$v" "$r" wall)" "$(val hello "$v" "$r" result)" "$(val hello "$v" "$r" rc)"
		done
	done
	echo
}

write_method() {
	local rel_k rel_i
	rel_k=$(realpath --relative-to="$ROOT" "$KERNEL") rel_i=$(realpath --relative-to="$ROOT" "$INITRD")
	cat <<EOF
## How it was measured

The script runs one VM at a time (other users' jobs may run beside it);
the VMMs take turns within each run. Times are wall-clock (\`\$EPOCHREALTIME\`) from just before the launch.
The serial log is polled every ${POLL} s, so a milestone is stamped up to
that much late; the VMM's exit is stamped when \`wait\` returns. The
kernel's first console line is its banner (\`Linux version ...\`): with
\`console=ttyS0\` and no earlyprintk it writes nothing to the serial port
before it registers the console (well into its boot), then replays its log.
RSS is read from \`/proc/PID/status\` when the banner and \`HVMM-INIT-OK\`
are seen. A QEMU run that hits a KVM emulation failure is
stopped by the script (QEMU pauses the VM and would wait forever); one that
does not finish within ${TIMEOUT} s is killed.

Command lines (LOG is a file in the scratch directory):

    # Linux, hvmm (hvmm adds panic=-1 itself)
    build/hvmm -k $rel_k -r $rel_i -m ${MEM_MB}MB --com1 file=LOG \\
      -c console=ttyS0 -c hvmm.autorun=poweroff
    # Linux, QEMU (microvm; -M pc,memory-backend=mem for pc)
    $QEMU -enable-kvm -cpu host,-arch-capabilities \\
      -M $QEMU_MICROVM,memory-backend=mem -m ${MEM_MB}M \\
      -object memory-backend-memfd,id=mem,size=${MEM_MB}M \\
      -nodefaults -no-user-config -nographic -no-reboot -serial file:LOG \\
      -kernel $rel_k -initrd $rel_i \\
      -append "$QEMU_LINUX_APPEND"
    # test guests (pio_bench: APPEND = iters=${PIO_ITERS}; hello: none)
    build/hvmm -k build/tests/guests/pio_bench.elf -m 64MB --com1 stderr -c iters=${PIO_ITERS}
    $QEMU -enable-kvm -cpu host,-arch-capabilities -M $QEMU_MICROVM -m 64M \\
      -nodefaults -no-user-config -nographic -serial stdio \\
      -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel ELF -append APPEND

QEMU gets the kernel options that keep Linux off instructions this host's
KVM cannot emulate (\`noxsave nofsgsbase clearcpuid=...\`); hvmm needs none,
it emulates those instructions itself (docs/ARCHITECTURE.md). hvmm also
decompresses the bzImage on the host, where QEMU's guest does it in
(emulated) ring 0: part of the difference in time to the banner.
$(want linux && echo "How QEMU's Linux runs ended here: microvm: $(mode linux qemu-microvm stop_class); pc: $(mode linux qemu-pc stop_class).")
The shared PVM notes (docs/pvm-notes.md, outside this repository) record
that QEMU with an LD_PRELOAD
shim (not used here) reached the init script of a similar minimal kernel
in 96–97 s (microvm + bzImage) and 117–119 s (pc) on this machine type;
that is context, not a figure of this run.

## Reproduce

    ninja -C build                      # hvmm and the test guests
    scripts/guest.sh minimal            # once: kernel + initramfs (the script does it if missing)
    bench/boot.sh                       # RUNS=3 by default; writes docs/BENCHMARKS.md
    RUNS=5 bench/boot.sh                # more runs
    ONLY=pio,hello RUNS=5 KEEP=1 bench/boot.sh   # the quick part only; keep the logs
    RERENDER=/tmp/hvmm-bench.XXXXXX bench/boot.sh  # rewrite this file from a KEEP=1 run

Knobs: RUNS, TIMEOUT (s per Linux run, default 300), POLL (default 0.02 s),
MEM_MB (512), PIO_ITERS (20000), ONLY (linux,pio,hello), OUTPUT, KEEP, QEMU.
This run took $DURATION_MIN min.
EOF
}

# ---------------------------------------------------------------- main

# Facts about the run that the report needs; saved with the results so that
# RERENDER can rebuild the report later.
save_meta() {
	local dirty
	END_DATE=$(date -u '+%Y-%m-%d %H:%M')
	LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
	DURATION_MIN=$(((SECONDS + 59) / 60))
	COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	HVMM_MTIME=$(date -u -r "$HVMM" '+%Y-%m-%d %H:%M UTC')
	dirty=$(git -C "$ROOT" status --porcelain -- src meson.build 2>/dev/null | wc -l)
	[ "$dirty" -gt 0 ] && COMMIT+=" (+ $dirty uncommitted change(s) under src/ at run time)"
	declare -p RUNS TIMEOUT POLL MEM_MB PIO_ITERS ONLY START_DATE END_DATE LOAD_START \
		LOAD_END BUSY_START GUEST_BANNER DURATION_MIN COMMIT HVMM_MTIME QEMU_VERSION >"$TMP/meta.sh"
}

rerender() {
	local dir=$1
	[ -f "$dir/results.tsv" ] && [ -f "$dir/meta.sh" ] ||
		die "RERENDER: $dir has no results.tsv and meta.sh (run with KEEP=1 first)"
	# shellcheck source=/dev/null
	. "$dir/meta.sh"
	RES=$dir/results.tsv
	write_report "$dir/report.md"
	cp "$dir/report.md" "$OUTPUT"
	note "report rewritten from $dir to $OUTPUT"
}

main() {
	if [ -n "${RERENDER:-}" ]; then
		rerender "$RERENDER"
		return
	fi
	check_prereqs
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/hvmm-bench.XXXXXX") || die "mktemp failed"
	mkdir -p "$TMP/runs"
	mkfifo "$TMP/tick"
	exec {TICK_FD}<>"$TMP/tick"
	RES=$TMP/results.tsv
	: >"$RES"
	START_DATE=$(date -u '+%Y-%m-%d %H:%M')
	LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
	BUSY_START=$(ps -eo pcpu=,comm= --sort=-pcpu | awk 'NR<=3 && $1 > 5 {printf "%s%s %s%%", (n++ ? ", " : ""), $2, $1}')
	[ -n "$BUSY_START" ] || BUSY_START="none above 5% CPU"
	GUEST_BANNER=
	note "RUNS=$RUNS, load $LOAD_START, scratch $TMP"

	want linux && bench_linux
	want pio && bench_guest pio "$PIO_ELF" "iters=$PIO_ITERS" "${PIO_VMMS[@]}"
	want hello && bench_guest hello "$HELLO_ELF" "" "${HELLO_VMMS[@]}"

	save_meta
	write_report "$TMP/report.md"
	mkdir -p "$(dirname "$OUTPUT")"
	cp "$TMP/report.md" "$OUTPUT"
	note "report written to $OUTPUT"
}

main "$@"
