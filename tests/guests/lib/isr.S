/*
 * Exception entry stubs and the ring-0 <-> ring-3 switch.
 *
 * Each of the 32 exception vectors gets a stub that pushes a dummy error
 * code where the CPU pushes none, then the vector, then all general
 * registers (struct trap_frame in lib/cpu.c), and calls trap_handler().
 * If that returns, the frame (possibly edited) is resumed with iretq.
 *
 * user_enter() saves the ring-0 callee-saved registers and stack pointer
 * and iretqs to user_trampoline in ring 3 (IOPL=3, IF=0). The trampoline
 * calls fn(arg) and then executes ud2 at user_exit_ud2 with RAX holding
 * USER_EXIT_MAGIC and RDI the result: `syscall` and `int n` are unusable on
 * PVM hosts, but exceptions from ring 3 are delivered reliably. The #UD
 * handler (or any other ring-3 exception) calls user_leave(), which drops
 * the trap frame and returns from user_enter() on the saved stack.
 */
#include "boot.h"


	.text

.macro ISR vec, has_err
	.balign 16
isr_\vec:
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

	ISR 0, 0
	ISR 1, 0
	ISR 2, 0
	ISR 3, 0
	ISR 4, 0
	ISR 5, 0
	ISR 6, 0
	ISR 7, 0
	ISR 8, 1
	ISR 9, 0
	ISR 10, 1
	ISR 11, 1
	ISR 12, 1
	ISR 13, 1
	ISR 14, 1
	ISR 15, 0
	ISR 16, 0
	ISR 17, 1
	ISR 18, 0
	ISR 19, 0
	ISR 20, 0
	ISR 21, 1
	ISR 22, 0
	ISR 23, 0
	ISR 24, 0
	ISR 25, 0
	ISR 26, 0
	ISR 27, 0
	ISR 28, 0
	ISR 29, 1
	ISR 30, 1
	ISR 31, 0

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	call trap_handler
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp			/* vector, error code */
	iretq

	.section .rodata
	.balign 8
	.globl isr_stubs
isr_stubs:
	.irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr_\vec
	.endr

	.text
/* u64 user_enter(user_fn fn, u64 arg, u64 user_rsp) */
	.globl user_enter
	.type user_enter, @function
user_enter:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, user_kernel_rsp(%rip)
	pushq $USER_DS			/* SS */
	pushq %rdx			/* RSP */
	pushq $USER_RFLAGS
	pushq $USER_CS
	leaq user_trampoline(%rip), %rax
	pushq %rax
	movl $USER_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	xorl %eax, %eax			/* do not hand kernel values to ring 3 */
	xorl %ebx, %ebx
	xorl %ecx, %ecx
	xorl %edx, %edx
	xorl %ebp, %ebp
	xorl %r8d, %r8d
	xorl %r9d, %r9d
	xorl %r10d, %r10d
	xorl %r11d, %r11d
	xorl %r12d, %r12d
	xorl %r13d, %r13d
	xorl %r14d, %r14d
	xorl %r15d, %r15d
	iretq

/* Ring 3: RDI = fn, RSI = arg, RSP 16-byte aligned. */
user_trampoline:
	movq %rdi, %rax
	movq %rsi, %rdi
	call *%rax
	movq %rax, %rdi
	movabsq $USER_EXIT_MAGIC, %rax
	.globl user_exit_ud2
user_exit_ud2:
	ud2
	jmp user_exit_ud2

/* noreturn void user_leave(u64 value): ring 0, any stack. */
	.globl user_leave
	.type user_leave, @function
user_leave:
	movq user_kernel_rsp(%rip), %rsp
	movq %rdi, %rax
	movl $GDT_KDATA, %ecx
	movl %ecx, %ds
	movl %ecx, %es
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	.bss
	.balign 8
user_kernel_rsp:
	.quad 0

	.section .note.GNU-stack, "", @progbits
