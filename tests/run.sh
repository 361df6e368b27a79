#!/bin/bash
# hvmm's test suite: everything, in one command (the README's test command).
#
#   tests/run.sh            all suites
#   tests/run.sh --fast     skip the stock Debian kernel boots (slow suite)
#
# Suites: a gcc build with the unit tests, a clang build, the unit tests
# again under ASan+UBSan, the freestanding test guests under hvmm, and boots
# of real Linux kernels (the minimal kernel: fast suite; Debian's cloud
# kernel: slow suite), run in parallel. Tests that need /dev/kvm are skipped
# loudly when it is absent. Ends with the line "N passed, M failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

FAST=0
for a in "$@"; do
	case "$a" in
	--fast) FAST=1 ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "tests/run.sh: unknown argument '$a'" >&2; exit 2 ;;
	esac
done

PASS=0 FAIL=0 SKIP=0
FAILED=()
JOBS=${HVMM_TEST_JOBS:-3}
export HVMM_TEST_OUT=$ROOT/build/test-output
mkdir -p "$HVMM_TEST_OUT"

result() { # name rc
	case "$2" in
	0) PASS=$((PASS + 1)); echo "PASS: $1" ;;
	77) SKIP=$((SKIP + 1)); echo "SKIP: $1" ;;
	*) FAIL=$((FAIL + 1)); FAILED+=("$1"); echo "FAIL: $1 (exit $2)" ;;
	esac
}

# meson test results: count each test case as one result.
meson_suite() { # label builddir
	local label=$1 dir=$2 log
	log=$(meson test -C "$dir" --suite unit --print-errorlogs 2>&1)
	local rc=$?
	echo "$log" | grep -E '^ *[0-9]+/[0-9]+ ' | while read -r line; do echo "  $label: $line"; done
	local ok fail
	ok=$(echo "$log" | sed -n 's/^Ok: *\([0-9]*\).*/\1/p')
	fail=$(echo "$log" | sed -n 's/^Fail: *\([0-9]*\).*/\1/p')
	PASS=$((PASS + ${ok:-0}))
	FAIL=$((FAIL + ${fail:-0}))
	if [ "$rc" -ne 0 ]; then
		FAILED+=("$label unit tests")
		echo "$log" | tail -40
		[ "${fail:-0}" -eq 0 ] && FAIL=$((FAIL + 1))
	fi
}

build() { # dir, meson args...
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$HVMM_TEST_OUT/setup-$(basename "$dir").log" 2>&1 || {
			cat "$HVMM_TEST_OUT/setup-$(basename "$dir").log"; return 1; }
	fi
	ninja -C "$dir" >"$HVMM_TEST_OUT/build-$(basename "$dir").log" 2>&1 || {
		tail -40 "$HVMM_TEST_OUT/build-$(basename "$dir").log"; return 1; }
}

echo "== build (gcc) and unit tests"
if build build; then
	result "build gcc" 0
	meson_suite gcc build
else
	result "build gcc" 1
	echo "$PASS passed, $FAIL failed"
	exit 1
fi

echo "== build (clang)"
if CC=clang build build-clang -Dtests=true; then result "build clang" 0; else result "build clang" 1; fi

echo "== unit tests under ASan and UBSan (clang)"
if CC=clang build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dbuildtype=debug; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson_suite asan build-asan
else
	result "build asan" 1
fi

echo "== fuzz harnesses (libFuzzer, ASan+UBSan), ${HVMM_FUZZ_SECONDS:-20} s each"
if CC=clang build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
	-Dc_args=-fsanitize=fuzzer-no-link -Db_lundef=false -Dbuildtype=debug; then
	for h in build-fuzz/tests/fuzz/fuzz_*; do
		[ -f "$h" ] && [ -x "$h" ] || continue
		name=$(basename "$h")
		corpus=$HVMM_TEST_OUT/corpus/$name
		mkdir -p "$corpus"
		# seeds: our own test guest and a few compressed samples
		if [ "$name" = fuzz_linux_boot ] && [ -f build/tests/guests/hello.elf ]; then
			{ printf '\x00\x40\x00\x00'; cat build/tests/guests/hello.elf; } >"$corpus/seed-elf"
		fi
		if [ "$name" = fuzz_decompress ]; then
			for z in gzip xz zstd; do
				printf 'hvmm seed %.0s' {1..50} | $z -c | { printf '\x01'; cat; } >"$corpus/seed-$z" 2>/dev/null
			done
		fi
		# hand-made seeds that reach deep paths (tests/fuzz/seeds/<harness>)
		if [ -d "$ROOT/tests/fuzz/seeds/$name" ]; then cp -n "$ROOT/tests/fuzz/seeds/$name"/* "$corpus"/; fi
		# inputs that once crashed a harness are replayed every run
		regress=()
		[ -d "$ROOT/tests/fuzz/regressions/$name" ] && regress=("$ROOT/tests/fuzz/regressions/$name")
		if (cd "$HVMM_TEST_OUT" && "$ROOT/$h" -max_total_time="${HVMM_FUZZ_SECONDS:-20}" \
			-rss_limit_mb=2048 -print_final_stats=0 "$corpus" "${regress[@]}" \
			>"$HVMM_TEST_OUT/$name.log" 2>&1); then
			result "$name ($(grep -o 'Done [0-9]* runs' "$HVMM_TEST_OUT/$name.log"))" 0
		else
			result "$name" 1
			grep -A15 'ERROR' "$HVMM_TEST_OUT/$name.log" | head -30
		fi
	done
else
	result "build fuzz" 1
fi

echo "== test guests and real-Linux boots"
# Longest first, so the slow Debian boots overlap everything else.
TESTS=()
[ "$FAST" = 1 ] || TESTS+=(tests/boot/debian-*.sh)
TESTS+=(tests/boot/minimal-*.sh tests/boot/guest-*.sh tests/boot/cli-*.sh)
if [ ! -c /dev/kvm ]; then
	echo "SKIP: /dev/kvm is absent: every test that runs a VM is skipped" >&2
fi
# Guest images (cached; rebuilt only when their inputs change).
if ! scripts/guest.sh minimal >"$HVMM_TEST_OUT/guest-minimal.log" 2>&1; then
	tail -20 "$HVMM_TEST_OUT/guest-minimal.log"
	result "build minimal guest" 1
fi
if [ "$FAST" = 0 ] && ! scripts/guest.sh debian >"$HVMM_TEST_OUT/guest-debian.log" 2>&1; then
	tail -20 "$HVMM_TEST_OUT/guest-debian.log"
	result "build debian guest" 1
fi

# Run them JOBS at a time; each writes its verdict to a file.
RESULTS=$HVMM_TEST_OUT/results
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
run_one() {
	local t=$1 name
	name=$(basename "$t" .sh)
	local start=$SECONDS
	bash "$t" >"$HVMM_TEST_OUT/$name.log" 2>&1
	echo "$? $((SECONDS - start))" >"$RESULTS/$name"
}
export -f run_one
export RESULTS
printf '%s\n' "${TESTS[@]}" | grep -v '\*' |
	xargs -P "$JOBS" -I{} bash -c 'run_one {}'
for f in "$RESULTS"/*; do
	[ -e "$f" ] || continue
	read -r rc secs <"$f"
	name=$(basename "$f")
	result "$name (${secs}s)" "$rc"
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		echo "---- last lines of $HVMM_TEST_OUT/$name.log"
		tail -30 "$HVMM_TEST_OUT/$name.log"
	fi
	[ "$rc" = 77 ] && grep SKIP "$HVMM_TEST_OUT/$name.log" | head -1
done

echo
if [ ${#FAILED[@]} -gt 0 ]; then
	echo "failed: ${FAILED[*]}"
fi
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
