# Helpers for hvmm's end-to-end tests (sourced by tests/boot/*.sh).
#
# Each test is a bash script that exits 0 (pass), 1 (fail) or 77 (skipped,
# with the reason on stderr). It runs hvmm with a real guest, talks to it
# through a serial backend, and checks what comes back. Logs go to
# $HVMM_TEST_OUT/<test>/ so a failure can be read afterwards.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${HVMM_BUILD:-$ROOT/build}
HVMM=$BUILD/hvmm
CACHE=${HVMM_CACHE:-$ROOT/.cache}
TEST_NAME=${HVMM_TEST_NAME:-$(basename "$0" .sh)}
OUT=${HVMM_TEST_OUT:-$BUILD/test-output}/$TEST_NAME
mkdir -p "$OUT"

log() { echo "[$TEST_NAME] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }

need_kvm() {
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] ||
		skip "/dev/kvm is not available on this host"
}

# hvmm_skip_on_pvm REASON...: where KVM emulates guest ring 0 (the kvm_pvm
# module is loaded), skips the test: exit 77 with "[TEST] SKIP: KVM here is
# PVM; REASON" on stderr. Returns 0 elsewhere. For the stock Debian kernel's
# boots (debian-*.sh), which do not finish within CI's budget there. Those
# wrappers source lib.sh just for this and then exec their minimal-*.sh:
# sourcing only defines, sets -uo pipefail, traps EXIT (exec drops the trap;
# a skip keeps its 77) and creates $OUT, which the exec'd test of the same
# name creates anyway.
hvmm_skip_on_pvm() {
	[ -e /sys/module/kvm_pvm ] || return 0
	skip "KVM here is PVM; $*"
}

# Kernel and initrd of a suite: minimal (fast) or debian (slow).
guest_files() {
	case "$1" in
	minimal) KERNEL=$CACHE/guest/minimal/bzImage; INITRD=$CACHE/guest/minimal/initrd.img ;;
	minimal-tools) # with hv_kvp_daemon, mke2fs and iperf3 (bigger: slower to boot)
		KERNEL=$CACHE/guest/minimal/bzImage; INITRD=$CACHE/guest/minimal/initrd-tools.img ;;
	debian) KERNEL=$CACHE/guest/debian/vmlinuz; INITRD=$CACHE/guest/debian/initrd.img ;;
	debian-tools) # the same with mke2fs (scripts/mkguest.sh)
		KERNEL=$CACHE/guest/debian/vmlinuz; INITRD=$CACHE/guest/debian/initrd-tools.img ;;
	*) fail "unknown guest $1" ;;
	esac
	[ -f "$KERNEL" ] && [ -f "$INITRD" ] ||
		fail "guest '$1' is not built: run scripts/guest.sh $1"
}

# agent_initrd [GUEST]: KERNEL and INITRD with this build's hvmm-agent
# (started by /init on VMBus). minimal (default): a minimal initramfs,
# uncompressed (no decompression in emulated ring 0). debian: Debian's
# initramfs (its hv_sock module) with a second, uncompressed cpio archive
# appended that adds /usr/sbin/hvmm-agent and this tree's /init (the
# kernel unpacks both; the later archive's files win).
# Skips for a sanitized (dynamic) agent.
agent_initrd() {
	local agent=$BUILD/src/agent/hvmm-agent guest=${1:-minimal}
	[ -x "$agent" ] || fail "build hvmm-agent first ($BUILD)"
	readelf -l "$agent" 2>/dev/null | grep -q 'Requesting program interpreter' &&
		skip "$agent is dynamically linked (a sanitized build): the initramfs has no libc"
	case "$guest" in
	minimal)
		KERNEL=$CACHE/guest/minimal/bzImage INITRD=$OUT/initrd-agent.img
		[ -f "$KERNEL" ] || fail "the minimal kernel is not built: run scripts/guest.sh minimal"
		HVMM_GUEST_AGENT=$agent HVMM_INITRD_COMPRESS=none \
			"$ROOT/scripts/mkinitramfs.sh" "$INITRD" >"$OUT/mkinitramfs.log" 2>&1 ||
			fail "mkinitramfs failed: $(tail -3 "$OUT/mkinitramfs.log")"
		;;
	debian)
		guest_files debian
		local stage=$OUT/agent-stage base=$INITRD
		INITRD=$OUT/initrd-agent.img
		# With this tree's /init too: an initramfs made before the agent
		# existed has an /init that does not start it.
		rm -rf "$stage" && mkdir -p "$stage/usr/sbin" && cp "$agent" "$stage/usr/sbin/" &&
			install -m 0755 "$ROOT/scripts/guest/init" "$stage/init" ||
			fail "cannot stage hvmm-agent in $stage"
		# The kernel looks for the next archive at a 4-byte boundary.
		cp "$base" "$INITRD" && truncate -s %4 "$INITRD" ||
			fail "cannot copy Debian's initramfs"
		(cd "$stage" && find init usr | cpio -o -H newc --owner 0:0 --quiet) >>"$INITRD" ||
			fail "cannot append the agent to $INITRD (cpio)"
		;;
	*) fail "agent_initrd: unknown guest $guest" ;;
	esac
}

# hvmm_one_error [-s STATUS] REGEX ARGS...: `hvmm ARGS` must fail as bad
# user input does: exit 2 (or STATUS, e.g. 1 for an error found while the
# VM is built) with one line (stdout and stderr) matching REGEX. Logs the
# outcome; returns 0 or 1.
hvmm_one_error() {
	local want=2 re out st
	if [ "$1" = -s ]; then
		want=$2
		shift 2
	fi
	re=$1
	shift
	out=$(timeout 60 "$HVMM" "$@" 2>&1 </dev/null)
	st=$?
	if [ "$st" = "$want" ] && [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] &&
		printf '%s\n' "$out" | grep -qE -- "$re"; then
		log "ok: $out"
		return 0
	fi
	log "FAIL: hvmm $*: exit $st: $out (expected exit $want, /$re/)"
	return 1
}

# VTL2 test payloads (tests/guests/vtl2*.c): build, run, verdict.
# vtl2_guest_build NAME [ARGS...]: `hvmm-igvm build --vsm ARGS` of the
# payload tests/guests/NAME.elf into IGVM=$OUT/NAME.igvm (TOOL is
# hvmm-igvm); skips when either is not built, fails when the build does.
vtl2_guest_build() {
	local name=$1
	shift
	TOOL=$BUILD/src/tools/hvmm-igvm
	local elf=$BUILD/tests/guests/$name.elf
	[ -x "$TOOL" ] && [ -f "$elf" ] || skip "hvmm-igvm or the $name guest is not built"
	IGVM=$OUT/$name.igvm
	"$TOOL" build -o "$IGVM" --elf "$elf" --vsm "$@" || fail "hvmm-igvm build --vsm $* failed"
}

# vtl2_guest_run LOGNAME [ARGS...]: boots $IGVM with `hvmm --hv --vtl2 -m
# 64MB --com1 none --com3 file=LOG ARGS` (300 s at most), the payload's
# PASS/FAIL lines and GUEST-RESULT going to LOG=$OUT/LOGNAME.log, hvmm's
# own output to $LOG.hvmm; sets ST to hvmm's exit status and RES to the
# last GUEST-RESULT line.
vtl2_guest_run() {
	LOG=$OUT/$1.log
	shift
	# COM3 alone in $LOG: hvmm's own messages (in $LOG.hvmm) cannot split its lines.
	timeout 300 "$HVMM" --igvm "$IGVM" --hv --vtl2 -m 64MB --com1 none --com3 "file=$LOG" "$@" \
		>"$LOG.hvmm" 2>&1
	ST=$?
	RES=$(grep -a '^GUEST-RESULT:' "$LOG" | tail -1)
}

# vtl2_guest_verdict WHAT N CHECK [INFO]: after vtl2_guest_run, passes when
# hvmm exited 0, RES is "GUEST-RESULT: N passed, 0 failed" and the command
# CHECK (the test's own checks of $LOG) succeeds: logs "ok: WHAT: RES; INFO".
# Else logs the FAIL (WHAT, the exit status, RES, $DETAIL if set, the log
# file) and the log's first 5 FAIL/error/warning lines; returns 1.
vtl2_guest_verdict() {
	local what=$1 n=$2 check=$3 info=${4:-}
	if [ "$ST" = 0 ] && grep -qE "GUEST-RESULT: $n passed, 0 failed" <<<"$RES" && $check; then
		log "ok: ${what:+$what: }$RES${info:+; $info}"
		return 0
	fi
	log "FAIL: ${what:+$what }(exit $ST, '${RES:-no result}'${DETAIL:+,$DETAIL}); log $LOG"
	grep -a 'FAIL\|error\|warning' "$LOG" "$LOG.hvmm" | head -5 >&2
	return 1
}

# wait_for FILE REGEX TIMEOUT_S [PID]: waits until FILE has a line matching
# REGEX; fails early when PID exits first.
wait_for() {
	local file=$1 re=$2 t=$3 pid=${4:-}
	local end=$((SECONDS + t))
	while [ $SECONDS -lt $end ]; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -qE -- "$re" "$file" 2>/dev/null && return 0
			return 1
		fi
		sleep 1
	done
	return 1
}

# Starts hvmm in the background with COM1 on the console, stdin from a fifo
# ($OUT/in) and output in $OUT/console.log. Sets HVMM_PID; send with send.
start_console_vm() {
	rm -f "$OUT/in" "$OUT/console.log" "$OUT/status"
	mkfifo "$OUT/in"
	(
		"$HVMM" "$@" <"$OUT/in" >"$OUT/console.log" 2>&1
		echo $? >"$OUT/status"
	) &
	HVMM_PID=$!
	exec {FIFO_FD}>"$OUT/in"
}

send() { printf '%s\n' "$*" >&"$FIFO_FD"; }

# wait_exit TIMEOUT_S: waits for the VM started by start_console_vm to end;
# sets STATUS.
wait_exit() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		if [ -f "$OUT/status" ]; then
			STATUS=$(cat "$OUT/status")
			return 0
		fi
		sleep 1
	done
	STATUS=timeout
	return 1
}

stop_vm() {
	[ -n "${HVMM_PID:-}" ] || return 0
	pkill -TERM -P "$HVMM_PID" 2>/dev/null
	kill "$HVMM_PID" 2>/dev/null
	wait "$HVMM_PID" 2>/dev/null
	[ -n "${FIFO_FD:-}" ] && exec {FIFO_FD}>&-
	HVMM_PID=
}
trap stop_vm EXIT
