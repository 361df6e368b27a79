/*
 * Entry points of the test guests.
 *
 *  _start64     ELF e_entry, used by hvmm: Linux 64-bit boot protocol
 *               (Documentation/arch/x86/boot.rst, "64-bit boot protocol"):
 *               long mode, CS=0x10, DS/ES/SS=0x18, identity-mapped paging,
 *               interrupts off, RSI = struct boot_params, RSP undefined.
 *  pvh_start32  Xen PVH entry (xen/include/public/arch-x86/hvm/start_info.h)
 *               named by the XEN_ELFNOTE_PHYS32_ENTRY note, used by QEMU:
 *               32-bit protected mode, paging off, EBX = hvm_start_info.
 *
 * Both load the guest's own GDT and page tables (identity map of the first
 * 4 GiB in 2 MiB pages, user-accessible at every level so ring-3 code can
 * touch any guest page) and call guest_start(protocol, info) in lib/test.c.
 */
#include "boot.h"

	.section .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f			/* namesz */
	.long 4f - 3f			/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
3:	.quad pvh_start32		/* QEMU reads a 64-bit value for ELF64 */
4:	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
	.type pvh_start32, @function
pvh_start32:
	cli
	cld
	movl %ebx, %esi
	movl $BOOT_PROTO_PVH, %edi
	lgdt gdtr
	movl $GDT_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $GDT_KCODE, $pvh_entry64

	.code64
pvh_entry64:
	movl %esi, %esi			/* upper halves undefined after the switch */
	movl %edi, %edi
	jmp entry_common

	.globl _start64
	.type _start64, @function
_start64:
	cli
	cld
	movl $BOOT_PROTO_LINUX64, %edi	/* RSI = struct boot_params */

entry_common:
	lgdt gdtr(%rip)
	movl $GDT_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	leaq boot_stack_top(%rip), %rsp
	pushq $GDT_KCODE		/* reload CS from our GDT */
	leaq 1f(%rip), %rax
	pushq %rax
	lretq
1:	leaq pml4(%rip), %rax
	movq %rax, %cr3
	movq %cr4, %rax			/* kernel code runs on user pages: no SMEP */
	andq $~(CR4_TSD | CR4_SMEP | CR4_SMAP | CR4_PKE | CR4_CET), %rax
	orq $CR4_PAE, %rax
	movq %rax, %cr4
	movq %rdi, %r12
	movq %rsi, %r13
	leaq __bss_start(%rip), %rdi	/* the stack is in .bss but still empty */
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	movq %r12, %rdi
	movq %r13, %rsi
	call guest_start
2:	cli
	hlt
	jmp 2b

	.section .data.gdt, "aw"
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08 kernel code, 32-bit */
	.quad 0x00af9b000000ffff	/* 0x10 kernel code, 64-bit */
	.quad 0x00cf93000000ffff	/* 0x18 kernel data */
	.quad 0x00cffb000000ffff	/* 0x20 user code, 32-bit (unused) */
	.quad 0x00cff3000000ffff	/* 0x28 user data */
	.quad 0x00affb000000ffff	/* 0x30 user code, 64-bit */
	.quad 0, 0			/* 0x38 TSS, filled by cpu_init() */
gdt_end:
	.balign 8
	.word 0
gdtr:
	.word gdt_end - gdt - 1
	.quad gdt

	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + PTE_TABLE
	.quad pd + 0x1000 + PTE_TABLE
	.quad pd + 0x2000 + PTE_TABLE
	.quad pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.quad addr + PTE_LARGE
	.set addr, addr + 0x200000
	.endr

	.section .bss.stack, "aw", @nobits
	.balign 16
boot_stack:
	.skip BOOT_STACK_SIZE
	.globl boot_stack_top
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
