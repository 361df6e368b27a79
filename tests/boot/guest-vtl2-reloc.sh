#!/bin/bash
# --vtl2 with --igvm-vtl2-relocation-type (igvm-and-vsm.md B.2/B.3): a tiny
# position-independent VTL2 payload (assembled here; tests/guests/vtl2.c is
# linked at a fixed address and cannot run anywhere else) is built into a
# relocatable IGVM file by `hvmm-igvm build --vsm --relocatable` and booted
# at the file's base (disable), at three other bases inside RAM
# (absolute=) and in VTL2 RAM of its own above VTL0's (auto=filesize,
# auto=8M: at 4 GiB, above 64 MiB of RAM and the 32-bit MMIO hole), and with
# vtl2=filesize (the file's base). In VTL2 it reports on COM1 the RIP it runs at, CR3 and the
# GDTR base, reloads CS from the GDT it finds there (far return) and reads a
# marker through its own page tables; the host checks each value is the
# file's plus the relocation offset. Bad placements are one-line loader
# errors naming the rule.
source "$(dirname "$0")/lib.sh"
need_kvm
TOOL=$BUILD/src/tools/hvmm-igvm
[ -x "$TOOL" ] || skip "hvmm-igvm is not built"
command -v gcc >/dev/null || skip "no gcc to assemble the payload"
cat >"$OUT/reloc.S" <<'ASM'
	.code64
	.text
	.globl _start
_start:
	lea stack_top(%rip), %rsp
	lea msg_rip(%rip), %rsi
	call puts
	lea _start(%rip), %rax
	call puthex
	lea msg_cr3(%rip), %rsi
	call puts
	mov %cr3, %rax
	call puthex
	lea msg_gdt(%rip), %rsi
	call puts
	sgdt gdtr(%rip)
	mov gdtr+2(%rip), %rax
	call puthex
	/* CS from the GDT at its (relocated) base: a far return to 0x10:1f. */
	pushq $0x10
	lea 1f(%rip), %rax
	push %rax
	lretq
1:	mov marker(%rip), %eax
	cmp $0x4f4c4552, %eax
	jne 2f
	lea msg_ok(%rip), %rsi
	call puts
2:	mov $0x604, %dx
	mov $0x3400, %ax        /* ACPI PM1a: SLP_TYP 5, SLP_EN */
	out %ax, %dx
3:	hlt
	jmp 3b
puts:	mov $0x3f8, %dx
4:	lodsb
	test %al, %al
	jz 5f
	out %al, %dx
	jmp 4b
5:	ret
puthex:	mov %rax, %rbx
	mov $0x3f8, %dx
	mov $16, %ecx
6:	rol $4, %rbx
	mov %bl, %al
	and $15, %al
	add $'0', %al
	cmp $'9', %al
	jbe 7f
	add $('a' - '9' - 1), %al
7:	out %al, %dx
	dec %ecx
	jnz 6b
	ret
	.data
msg_rip: .asciz "\nRELOC rip=0x"
msg_cr3: .asciz " cr3=0x"
msg_gdt: .asciz " gdtr=0x"
msg_ok:	.asciz "\nRELOC marker ok\n"
marker:	.long 0x4f4c4552
gdtr:	.quad 0, 0
	.bss
	.balign 16
	.skip 4096
stack_top:
ASM
gcc -nostdlib -static -ffreestanding -Wl,--build-id=none -Wl,-Ttext=0x100000 \
	-Wl,-z,noexecstack -Wl,-z,max-page-size=4096 -o "$OUT/reloc.elf" "$OUT/reloc.S" ||
	fail "cannot assemble the payload"
"$TOOL" build -o "$OUT/reloc.igvm" --elf "$OUT/reloc.elf" --vsm --relocatable ||
	fail "hvmm-igvm build --vsm --relocatable failed"
"$TOOL" dump "$OUT/reloc.igvm" >"$OUT/dump" || fail "dump failed"
# The file's own values: entry, page tables, GDT (builder: right after the payload).
field() { grep -E "$1" "$OUT/dump" | head -1 | grep -oE "$2" | head -1; }
rip0=$(python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(), 24)[0])' "$OUT/reloc.elf")
cr30=$(( $(field 'Cr3 +\(0x40002\)' '0x[0-9a-f]+$') ))
# Gdtr prints as a 128-bit number: the base is its high 64 bits.
gdt0=$(( 0x$(field 'Gdtr +\(0x70001\)' '0x[0-9a-f]+$' | cut -c3-18) ))
base0=$(( $(field 'RELOCATABLE_REGION' 'gpa 0x[0-9a-f]+' | cut -d' ' -f2) ))
[ "$rip0" -gt 0 ] && [ "$cr30" -gt 0 ] && [ "$gdt0" -gt 0 ] || fail "cannot read the file's values: $(grep -E 'Cr3|Gdtr|RELOCATABLE' "$OUT/dump")"
rc=0
for base in disable 0x1000000 0x2000000 0x3a00000 auto=filesize auto=8M vtl2=filesize; do
	case $base in
	disable) off=0 type=disable ;;
	vtl2=*) off=0 type=$base ;; # the file's GPAs; VTL2 carves its RAM itself
	auto=*) off=$((0x100000000 - base0)) type=$base ;; # VTL2 RAM of its own at 4 GiB
	*) off=$((base - base0)) type=absolute=$base ;;
	esac
	log_file=$OUT/$type.log
	timeout 300 "$HVMM" --igvm "$OUT/reloc.igvm" --hv --vtl2 -m 64MB --com1 stderr \
		--igvm-vtl2-relocation-type $type >"$log_file" 2>&1 </dev/null
	st=$?
	want=$(printf 'RELOC rip=0x%016x cr3=0x%016x gdtr=0x%016x' $((rip0 + off)) $((cr30 + off)) $((gdt0 + off)))
	if [ "$st" = 0 ] && grep -qa "^$want" "$log_file" && grep -qa '^RELOC marker ok' "$log_file"; then
		log "ok: $type: $want, marker ok"
	else
		log "FAIL: $type (exit $st): want '$want', got '$(grep -a RELOC "$log_file" | tr '\n' ' ')'; log $log_file"
		grep -a 'error\|warning' "$log_file" | head -3 >&2
		rc=1
	fi
done
one_error() { # regex args...
	local re=$1
	shift
	hvmm_one_error "$re" --igvm "$OUT/reloc.igvm" --hv --vtl2 -m 64MB --com1 none "$@" || rc=1
}
one_error 'absolute=0x1100000 is not aligned to relocation_alignment 0x200000' \
	--igvm-vtl2-relocation-type absolute=0x1100000
one_error 'needs RAM at 0x3e00000-0x41fffff' --igvm-vtl2-relocation-type absolute=0x3e00000
one_error 'auto=0x200000 is smaller than the file.s VTL2 memory \(0x400000 bytes\)' \
	--igvm-vtl2-relocation-type auto=2M
one_error "vtl2=0x8000000 is larger than VTL0.s RAM \\(0x4000000 bytes\\)" \
	--igvm-vtl2-relocation-type vtl2=128M
exit $rc
