/*
 * Architectural x86-64 register state as hvmm's core sees it, independent of
 * the accelerator (KVM today, WHP later). Backends convert to and from their
 * own layouts.
 */
#ifndef HVMM_X86_REGS_H
#define HVMM_X86_REGS_H

#include <stdint.h>

struct x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

struct x86_sregs {
	struct x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_MP (1ULL << 1)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_NE (1ULL << 5)
#define X86_CR0_WP (1ULL << 16)
#define X86_CR0_AM (1ULL << 18)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_SCE (1ULL << 0)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_EFER_NXE (1ULL << 11)
#define X86_RFLAGS_TF (1ULL << 8)
#define X86_RFLAGS_IF (1ULL << 9)
#define X86_RFLAGS_RF (1ULL << 16)
#define X86_RFLAGS_AC (1ULL << 18)

#define MSR_IA32_APICBASE 0x0000001b
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084

#endif
