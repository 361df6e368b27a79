/*
 * x86 helpers for the freestanding test guests: port I/O, MMIO, TSC,
 * control registers and MSRs, each one instruction in inline asm. Port I/O
 * works in ring 3 only with IOPL=3 (user_call() grants it); CR and MSR
 * access is ring 0 only.
 */
#ifndef GUEST_X86_H
#define GUEST_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int32_t s32;
typedef int64_t s64;

#define RFLAGS_RESERVED 0x2ULL
#define RFLAGS_IF       (1ULL << 9)
#define RFLAGS_IOPL3    (3ULL << 12)

static inline void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(u16 port, u16 v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(u16 port, u32 v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u32 inl(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* MMIO: one access of exactly the given width, never merged or split. */
static inline u8 mmio_read8(u64 addr)
{
	return *(volatile u8 *)addr;
}

static inline u16 mmio_read16(u64 addr)
{
	return *(volatile u16 *)addr;
}

static inline u32 mmio_read32(u64 addr)
{
	return *(volatile u32 *)addr;
}

static inline u64 mmio_read64(u64 addr)
{
	return *(volatile u64 *)addr;
}

static inline void mmio_write8(u64 addr, u8 v)
{
	*(volatile u8 *)addr = v;
}

static inline void mmio_write16(u64 addr, u16 v)
{
	*(volatile u16 *)addr = v;
}

static inline void mmio_write32(u64 addr, u32 v)
{
	*(volatile u32 *)addr = v;
}

static inline void mmio_write64(u64 addr, u64 v)
{
	*(volatile u64 *)addr = v;
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void cpuid(u32 leaf, u32 subleaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid"
			 : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
			 : "a"(leaf), "c"(subleaf));
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Current privilege level, from the low bits of CS. Works in any ring. */
static inline unsigned cpu_cpl(void)
{
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

static inline u64 read_cr0(void)
{
	u64 v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline u64 read_cr2(void)
{
	u64 v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline u64 read_cr3(void)
{
	u64 v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline u64 read_cr4(void)
{
	u64 v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}

/*
 * Ring-0 accesses that may fault. A fault on the marked instruction resumes
 * after it (lib/cpu.c looks the RIP up in .ex_table) and the *_safe helper
 * returns false; ex_vector holds the vector that was taken.
 */
extern volatile int ex_vector;

#define EX_TABLE_ENTRY(insn, resume)                                      \
	".pushsection .ex_table, \"a\"\n\t.balign 8\n\t.quad " #insn ", " #resume \
	"\n\t.popsection\n\t"

static inline bool rdmsr_safe(u32 msr, u64 *val)
{
	u32 lo = 0, hi = 0;
	ex_vector = -1;
	__asm__ volatile("1: rdmsr\n2:\n\t" EX_TABLE_ENTRY(1b, 2b)
			 : "+a"(lo), "+d"(hi)
			 : "c"(msr)
			 : "memory");
	*val = ((u64)hi << 32) | lo;
	return ex_vector < 0;
}

static inline bool wrmsr_safe(u32 msr, u64 v)
{
	ex_vector = -1;
	__asm__ volatile("1: wrmsr\n2:\n\t" EX_TABLE_ENTRY(1b, 2b)
			 :
			 : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32))
			 : "memory");
	return ex_vector < 0;
}

static inline bool read64_safe(u64 addr, u64 *val)
{
	u64 v = 0;
	ex_vector = -1;
	__asm__ volatile("1: movq (%1), %0\n2:\n\t" EX_TABLE_ENTRY(1b, 2b)
			 : "+r"(v)
			 : "r"(addr)
			 : "memory");
	*val = v;
	return ex_vector < 0;
}

#endif
