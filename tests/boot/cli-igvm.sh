#!/bin/bash
# hvmm-igvm verify/dump on IGVM files written by an independent encoder (the
# Python below follows the igvm_defs layout, not src/igvm's writer): a valid
# file verifies (exit 0) and dumps every header; broken ones exit 1 with one
# line naming the header index and the rule; usage and I/O errors exit 2.
# `build` round trips (--elf with every --param type, --kernel with the
# minimal kernel) verify and dump as built; hvmm --igvm reports bad files and
# flags in one line before any VM exists (relocation arguments included);
# build --vsm --relocatable round trips with its relocation headers. Needs
# no /dev/kvm.
source "$(dirname "$0")/lib.sh"
TOOL=$BUILD/src/tools/hvmm-igvm
[ -x "$TOOL" ] || fail "$TOOL not built"
python3 - "$OUT" <<'PY' || fail "cannot generate IGVM files"
import struct, sys, zlib
out = sys.argv[1]
def tlv(t, payload):
    pad = (-len(payload)) % 8
    return struct.pack('<II', t, len(payload)) + payload + b'\0' * pad
def build(page_gpa=0x100000, corrupt_crc=False, ctx_vtl2=2):
    regs = [(0x20010, 0x1000), (0x20004, 0x8000), (0x40000, 0x80000011)]  # Rip, Rsp, Cr0
    ctx = struct.pack('<I', len(regs)) + b''.join(
        struct.pack('<BI11s', ctx_vtl2 if i else 2, name, b'') + struct.pack('<QQ', val, 0)
        for i, (name, val) in enumerate(regs))
    headers_len = 24 + 32 + 32          # platform, page data, vp context (20 -> 24)
    data_off = 24 + headers_len
    page = bytes(range(256)) * 16
    var = tlv(0x001, struct.pack('<IBBHQ', 1, 2, 1, 1, 0))                    # VSM_ISOLATION, VTL2
    var += tlv(0x302, struct.pack('<QIIIHH', page_gpa, 1, data_off, 0, 0, 0))  # PAGE_DATA
    var += tlv(0x304, struct.pack('<QIIHH', 0, 1, data_off + 4096, 0, 0))     # VP_CONTEXT
    assert len(var) == headers_len
    data = page + ctx
    total = data_off + len(data)
    fixed = struct.pack('<IIIIII', 0x4D564749, 1, 24, len(var), total, 0)
    crc = zlib.crc32(fixed + var) & 0xffffffff
    if corrupt_crc:
        crc ^= 1
    return struct.pack('<IIIIII', 0x4D564749, 1, 24, len(var), total, crc) + var + data
open(out + '/good.igvm', 'wb').write(build())
open(out + '/bad-gpa.igvm', 'wb').write(build(page_gpa=0x100001))
open(out + '/bad-crc.igvm', 'wb').write(build(corrupt_crc=True))
open(out + '/bad-vtl.igvm', 'wb').write(build(ctx_vtl2=0))
PY
run() { # expected-status stdout-file stderr-file args...
	local want=$1 o=$2 e=$3
	shift 3
	"$TOOL" "$@" >"$o" 2>"$e"
	local st=$?
	[ "$st" = "$want" ] || fail "hvmm-igvm $*: exit $st, expected $want ($(cat "$e"))"
}
one_line() { # file regex
	[ "$(grep -c . "$1")" = 1 ] || fail "not one line: $(cat "$1")"
	grep -qE -- "$2" "$1" || fail "'$(cat "$1")' does not match /$2/"
	log "ok: $(cat "$1")"
}
run 0 "$OUT/o" "$OUT/e" verify "$OUT/good.igvm"
grep -q "valid IGVM v1, 3 headers" "$OUT/o" || fail "verify output: $(cat "$OUT/o")"
run 0 "$OUT/dump" "$OUT/e" dump "$OUT/good.igvm"
for want in '^\[0\] IGVM_VHT_SUPPORTED_PLATFORM mask 0x1 VSM_ISOLATION highest_vtl 2' \
	'^\[1\] IGVM_VHT_PAGE_DATA mask 0x1 gpa 0x100000 type NORMAL' \
	'^\[2\] IGVM_VHT_VP_CONTEXT mask 0x1 .*VBS VTL 2, 3 registers' \
	'Rip +\(0x20010\) = 0x0+1000$' 'Cr0 +\(0x40000\) = 0x0+80000011$'; do
	grep -qE -- "$want" "$OUT/dump" || fail "dump lacks /$want/: $(cat "$OUT/dump")"
done
log "ok: dump"
run 1 "$OUT/o" "$OUT/e" verify "$OUT/bad-gpa.igvm"
one_line "$OUT/e" 'header 1 \(IGVM_VHT_PAGE_DATA\): gpa 0x100001 not 4 KiB aligned'
run 1 "$OUT/o" "$OUT/e" dump "$OUT/bad-crc.igvm"
one_line "$OUT/e" 'fixed header: checksum 0x[0-9a-f]+ does not match the CRC-32'
[ -s "$OUT/o" ] && fail "dump of a bad file printed: $(cat "$OUT/o")"
run 1 "$OUT/o" "$OUT/e" verify "$OUT/bad-vtl.igvm"
one_line "$OUT/e" 'header 2 \(IGVM_VHT_VP_CONTEXT\): VBS VP context register 1 names VTL 0, register 0 VTL 2'
head -c 100 "$OUT/good.igvm" >"$OUT/short.igvm"
run 1 "$OUT/o" "$OUT/e" verify "$OUT/short.igvm"
one_line "$OUT/e" 'total_file_size'
run 2 "$OUT/o" "$OUT/e" verify /nonexistent.igvm
one_line "$OUT/e" "cannot open '/nonexistent.igvm'"
run 2 "$OUT/o" "$OUT/e" verify
run 2 "$OUT/o" "$OUT/e" frobnicate "$OUT/good.igvm"
run 2 "$OUT/o" "$OUT/e" verify /tmp
# build: a NATIVE file from the hello test guest; verify it and check the entry.
G=$BUILD/tests/guests/hello.elf
if [ -f "$G" ]; then
	run 0 "$OUT/o" "$OUT/e" build -o "$OUT/hello.igvm" --elf "$G" --cmdline-gpa 0x20000 --rsp 0x80000
	run 0 "$OUT/o" "$OUT/e" verify "$OUT/hello.igvm"
	run 0 "$OUT/dump" "$OUT/e" dump "$OUT/hello.igvm"
	entry=$(python3 -c 'import struct,sys; print(hex(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(), 24)[0]))' "$G")
	grep -qE "^\[0\] IGVM_VHT_SUPPORTED_PLATFORM mask 0x1 NATIVE" "$OUT/dump" || fail "build: no NATIVE platform"
	grep -q "IGVM_VHT_COMMAND_LINE area 0" "$OUT/dump" || fail "build: no command line parameter"
	grep -q "rip $entry rsp 0x80000" "$OUT/dump" || fail "build: entry $entry not in $(grep rip "$OUT/dump")"
	log "ok: build (entry $entry)"
	run 1 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$OUT/good.igvm"
	one_line "$OUT/e" 'not a little-endian x86-64 ELF64'
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm"
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --rsp zz
	# --vsm: VSM_ISOLATION (highest VTL 2), a VBS context of VTL 2 entering there.
	run 0 "$OUT/o" "$OUT/e" build -o "$OUT/vsm.igvm" --elf "$G" --rsp 0x80000 --vsm
	run 0 "$OUT/o" "$OUT/e" verify "$OUT/vsm.igvm"
	run 0 "$OUT/dump" "$OUT/e" dump "$OUT/vsm.igvm"
	grep -qE "^\[0\] IGVM_VHT_SUPPORTED_PLATFORM mask 0x1 VSM_ISOLATION highest_vtl 2" "$OUT/dump" ||
		fail "build --vsm: no VSM_ISOLATION platform with highest VTL 2"
	grep -q "VBS VTL 2, 16 registers" "$OUT/dump" || fail "build --vsm: no VBS VTL 2 context"
	grep -qE "Rip +\(0x20010\) = 0x0*${entry#0x}\$" "$OUT/dump" || fail "build --vsm: Rip is not $entry"
	grep -qE "Rsp +\(0x20004\) = 0x0*80000\$" "$OUT/dump" || fail "build --vsm: Rsp is not 0x80000"
	log "ok: build --vsm"
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --kernel "$G" --vsm
	# --vsm --relocatable: OpenHCL's relocation headers (igvm-and-vsm.md B.1),
	# round trip build -> verify -> dump; bad relocation arguments in one line.
	run 0 "$OUT/o" "$OUT/e" build -o "$OUT/reloc.igvm" --elf "$G" --rsp 0x80000 --vsm --relocatable \
		--reloc-min 0x400000 --reloc-max 0x40000000 --reloc-align 0x200000
	run 0 "$OUT/o" "$OUT/e" verify "$OUT/reloc.igvm"
	run 0 "$OUT/dump" "$OUT/e" dump "$OUT/reloc.igvm"
	for want in '^\[1\] IGVM_VHT_RELOCATABLE_REGION mask 0x1 gpa 0x0 size 0x200000 alignment 0x200000 min 0x400000 max 0x40000000 vp 0 vtl 2 flags 0x7 is_vtl2 apply_rip apply_gdtr$' \
		'^\[2\] IGVM_VHT_PAGE_TABLE_RELOCATION_REGION mask 0x1 gpa 0x200000 size 0x8000 used_size 0x6000 vp 0 vtl 2$' \
		'^\[3\] IGVM_VHT_REQUIRED_MEMORY mask 0x1 gpa 0x0 number_of_bytes 0x400000 vtl2_protectable' \
		'Cr3 +\(0x40002\) = 0x0*200000$'; do
		grep -qE -- "$want" "$OUT/dump" || fail "build --relocatable: dump lacks /$want/"
	done
	log "ok: build --vsm --relocatable"
	run 1 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --relocatable
	one_line "$OUT/e" '--relocatable needs --vsm'
	run 1 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --vsm --relocatable --reloc-align 0x3000
	one_line "$OUT/e" 'relocation alignment 0x3000 is not a power of 2'
	run 1 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --vsm --relocatable --reloc-min 0x1000
	one_line "$OUT/e" 'minimum 0x1000 and maximum 0x8000000000 must be aligned to 0x200000'
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --vsm --relocatable --reloc-max zz
	one_line "$OUT/e" "invalid --reloc-max 'zz'"
fi
# Round trip with parameter areas: build -> verify -> dump shows each area,
# its usage and its insert, in that order, at the GPAs asked for.
if [ -f "$G" ]; then
	names=(vp_count memory_map cmdline mmio_ranges madt srat slit pptt device_tree environment_info)
	types=(VP_COUNT_PARAMETER MEMORY_MAP COMMAND_LINE MMIO_RANGES MADT SRAT SLIT PPTT DEVICE_TREE
	       ENVIRONMENT_INFO_PARAMETER)
	args=()
	for i in "${!names[@]}"; do args+=(--param "${names[$i]}@$(printf '0x%x' $((0x10000 + i * 0x2000))):2"); done
	run 0 "$OUT/o" "$OUT/e" build -o "$OUT/params.igvm" --elf "$G" "${args[@]}"
	run 0 "$OUT/o" "$OUT/e" verify "$OUT/params.igvm"
	run 0 "$OUT/dump" "$OUT/e" dump "$OUT/params.igvm"
	for i in "${!names[@]}"; do
		a=$((i + 1)) h=$((1 + 3 * i)) gpa=$(printf '0x%x' $((0x10000 + i * 0x2000)))
		grep -qx "\[$h\] IGVM_VHT_PARAMETER_AREA index $a number_of_bytes 0x2000 file_offset 0x0 (zeroed)" "$OUT/dump" &&
		grep -qx "\[$((h + 1))\] IGVM_VHT_${types[$i]} area $a byte_offset 0" "$OUT/dump" &&
		grep -qx "\[$((h + 2))\] IGVM_VHT_PARAMETER_INSERT mask 0x1 gpa $gpa index $a" "$OUT/dump" ||
			fail "round trip: ${names[$i]} not at headers $h..$((h + 2)): $(grep -n "index $a" "$OUT/dump")"
	done
	log "ok: build --param round trip (${#names[@]} parameter types)"
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --param bogus@0x1000
	one_line "$OUT/e" "unknown parameter 'bogus'"
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --elf "$G" --param vp_count@0x1001
	one_line "$OUT/e" "GPA must be 4 KiB aligned"
fi
# build --kernel: the Linux payload (minimal kernel when it is built).
K=$ROOT/.cache/guest/minimal
if [ -f "$K/bzImage" ] && [ -f "$K/initrd.img" ]; then
	run 0 "$OUT/o" "$OUT/e" build -o "$OUT/linux.igvm" --kernel "$K/bzImage" --initrd "$K/initrd.img" --cmdline "a=b"
	run 0 "$OUT/o" "$OUT/e" verify "$OUT/linux.igvm"
	run 0 "$OUT/dump" "$OUT/e" dump "$OUT/linux.igvm"
	for want in '^\[1\] IGVM_VHT_REQUIRED_MEMORY mask 0x1 gpa 0x0 number_of_bytes 0x' \
		'IGVM_VHT_COMMAND_LINE area 0 byte_offset 0' 'IGVM_VHT_PARAMETER_INSERT mask 0x1 gpa 0x30000 index 0' \
		'IGVM_VHT_MEMORY_MAP area 1 byte_offset 0' 'IGVM_VHT_PARAMETER_INSERT mask 0x1 gpa 0x2000 index 1' \
		'IGVM_VHT_PAGE_DATA mask 0x1 gpa 0x1000000 ' 'rip 0x1000 rsp 0x8ff0 rsi 0x7000' \
		'cs 0x10/0xa09b ds 0x18/0xc093'; do
		grep -qE -- "$want" "$OUT/dump" || fail "build --kernel: dump lacks /$want/"
	done
	log "ok: build --kernel ($(stat -c %s "$OUT/linux.igvm") bytes)"
	run 1 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --kernel "$OUT/good.igvm"
	run 2 "$OUT/o" "$OUT/e" build -o "$OUT/x.igvm" --kernel "$K/bzImage" --elf "$G"
fi
# hvmm --igvm: configuration errors are one line and exit 2 before any VM exists.
rc=0
hv() { # regex args...
	local re=$1
	shift
	hvmm_one_error "$re" "$@" --com1 none || rc=1
}
hv 'no NATIVE platform \(the file has VSM_ISOLATION\); VSM_ISOLATION needs --vtl2' --igvm "$OUT/good.igvm"
hv 'invalid IGVM file: fixed header: checksum' --igvm "$OUT/bad-crc.igvm"
hv "cannot read IGVM file '/nonexistent.igvm'" --igvm /nonexistent.igvm
hv '--igvm conflicts with -k/--kernel' --igvm "$OUT/good.igvm" -k /dev/null
hv 'igvm-personality uefi is not supported yet' --igvm "$OUT/good.igvm" --igvm-personality uefi
hv "invalid --igvm-personality 'bios'" --igvm "$OUT/good.igvm" --igvm-personality bios
hv 'relocation-type absolute=/auto=/vtl2= needs --vtl2' --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type auto=filesize
hv 'vtl2=x: expected vtl2=filesize or vtl2=SIZE, a multiple of 2 MiB' --igvm "$OUT/good.igvm" \
	--hv --vtl2 --igvm-vtl2-relocation-type vtl2=x
hv 'vtl2=3M: expected vtl2=filesize or vtl2=SIZE' --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type vtl2=3M
hv 'relocation-type absolute=/auto=/vtl2= needs --vtl2' --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type vtl2=filesize
hv 'auto=SIZE, a multiple of 2 MiB' --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type auto=3M
hv 'absolute=0x1001: ADDR must be a 4 KiB aligned address' --igvm "$OUT/good.igvm" \
	--igvm-vtl2-relocation-type absolute=0x1001
hv 'absolute=x: ADDR must be' --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type absolute=x
hv "invalid --igvm-vtl2-relocation-type 'bogus'" --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type bogus
hv 'relocation-type absolute=/auto=/vtl2= needs --vtl2' --igvm "$OUT/good.igvm" --igvm-vtl2-relocation-type absolute=0x1000000
[ "$rc" = 0 ] || fail "hvmm --igvm: some bad inputs were not rejected as expected (FAIL lines above)"
run 0 "$OUT/o" "$OUT/e" --help
grep -q 'hvmm-igvm verify FILE' "$OUT/o" || fail "--help: $(cat "$OUT/o")"
log "PASS"
