/*
 * VTL0's view of guest RAM under --vtl2 (TLFS "Virtual Secure Mode":
 * ModifyVtlProtectionMask, HV_MAP_GPA_* flags; shared/docs/igvm-and-vsm.md
 * B.2/B.3): a page-granular map of full / read-only / no-access ranges
 * turned into the minimal set of KVM memory slots for VTL0's partition
 * (VTL2's partition maps all RAM). No-access pages get no slot, read-only
 * pages a KVM_MEM_READONLY slot, so VTL0's violating accesses come back as
 * MMIO exits that vtl.c turns into memory intercepts for VTL2.
 *
 * Execute permission cannot be expressed with KVM memory slots: the
 * HV_MAP_GPA_KERNEL_EXEC/USER_EXEC bits are accepted and ignored (a
 * readable page is executable), and write-only is refused by the caller.
 *
 * Locking: every function takes the map's mutex; vtl_mem_apply changes
 * the accelerator's slots under it, so callers need no lock of their own.
 */
#ifndef HVMM_CORE_VTL_MEM_H
#define HVMM_CORE_VTL_MEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel/accel.h"
#include "core/gmem.h"

/* VTL0's access to a page (ordered: more is more access). */
#define VTL_MEM_NONE 0u
#define VTL_MEM_RO   1u
#define VTL_MEM_FULL 2u

/* Default slot cap: KVM offers more, but every slot costs a lookup. */
#define VTL_MEM_MAX_SLOTS 64
/* Cap on the ranges a guest can create (each costs 24 bytes). */
#define VTL_MEM_MAX_RANGES 4096

struct vtl_mem_range {
	uint64_t first, end;   /* pages [first, end) */
	unsigned prot;         /* VTL_MEM_NONE or VTL_MEM_RO (FULL is not stored) */
};

/* One memory slot of VTL0's partition. */
struct vtl_mem_slot {
	uint64_t gpa, size;
	unsigned region;       /* index in the gmem regions */
	bool readonly;
};

struct vtl_mem {
	pthread_mutex_t lock;
	struct gmem_region ram[GMEM_MAX_REGIONS];
	unsigned nram;
	struct vtl_mem_range *r;   /* sorted, disjoint, adjacent ranges differ */
	unsigned nr;
	unsigned max_slots;        /* <= the accelerator's slot ids used: [0, max_slots) */
	uint64_t hidden_first, hidden_end;   /* VTL2's range, pages (0/0: none) */
	/* What the accelerator has: slot id i holds applied[i] when used[i]. */
	struct vtl_mem_slot applied[VTL_MEM_MAX_SLOTS];
	bool used[VTL_MEM_MAX_SLOTS];
};

/*
 * Copies g's RAM layout; all of it full access but vtl2_only regions (no
 * access, no slot). max_slots (<=
 * VTL_MEM_MAX_SLOTS) caps the slots VTL0 may need. The accelerator is
 * assumed to hold slot i = region i, full, for the other regions (as vm.c
 * maps RAM before the loader adds VTL2's). 0 or -errno.
 */
int vtl_mem_init(struct vtl_mem *m, const struct gmem *g, unsigned max_slots);
void vtl_mem_fini(struct vtl_mem *m);

/* VTL_MEM_* for HV_MAP_GPA flags (readable/writable bits; exec ignored). */
unsigned vtl_mem_prot_from_flags(uint32_t hv_map_flags);

/*
 * Sets VTL0's access to pages [first, first + npages), which must lie in
 * one RAM region: HV_STATUS_SUCCESS, HV_STATUS_INVALID_PARAMETER (not RAM,
 * empty, overflow), or HV_STATUS_INSUFFICIENT_MEMORY when the result would
 * need more than max_slots slots or VTL_MEM_MAX_RANGES ranges (the map is
 * then unchanged). Does not touch the accelerator (vtl_mem_apply does).
 */
uint16_t vtl_mem_set(struct vtl_mem *m, uint64_t first, uint64_t npages, unsigned prot);

/*
 * VTL2's memory range, hidden from VTL0 (no access; page-aligned inward).
 * Same results as vtl_mem_set; the range is remembered for vtl_mem_hidden.
 */
uint16_t vtl_mem_hide(struct vtl_mem *m, uint64_t base, uint64_t size);
bool vtl_mem_hidden(struct vtl_mem *m, uint64_t gpa);

/* VTL0's access to the page of gpa: VTL_MEM_* (FULL outside RAM too). */
unsigned vtl_mem_prot(struct vtl_mem *m, uint64_t gpa);

/*
 * The minimal slot list for the current map into out[0..cap): count, or
 * -ENOSPC when more than cap are needed.
 */
int vtl_mem_slots(struct vtl_mem *m, struct vtl_mem_slot *out, unsigned cap);

/*
 * Makes accelerator `a` (VTL0's partition) map the current slot list:
 * unmaps the slots that changed, then maps the new ones (slot ids in
 * [0, max_slots)); slots that stay are not touched. Between the two steps
 * VTL0 may see a page unmapped (an MMIO exit the caller treats as RAM).
 * 0 or -errno (logged).
 */
int vtl_mem_apply(struct vtl_mem *m, const struct accel_ops *ops, struct accel *a);

/*
 * Length of a simple MOV to or from memory at b[0..n) (88/89/8A/8B/C6/C7
 * with operand-size, address-size, segment and REX prefixes), 0 for
 * anything else. *modrm_at gets the ModRM byte's offset, *disp its
 * sign-extended displacement.
 */
unsigned vtl_mem_mov_len(const uint8_t *b, unsigned n, unsigned *modrm_at, int64_t *disp);

/*
 * The effective address of that MOV's memory operand with general
 * registers gpr[16] (RAX..R15 order) and RIP `next_rip` (the end of the
 * instruction, for RIP-relative forms). Segment bases are ignored (64-bit
 * mode: FS/GS overrides return false). false if it cannot be computed.
 */
bool vtl_mem_mov_ea(const uint8_t *b, unsigned len, const uint64_t gpr[16], uint64_t next_rip,
		    uint64_t *ea);

/*
 * A VTL0 instruction that accessed protected memory, decoded from its bytes
 * so vtl.c can put VTL0 back at its start (the TLFS intercept contract:
 * VTL2 sees the registers as before the instruction). Forms:
 *  - MOV: MOV 88/89/8A/8B/C6/C7, SETcc (0F 90-9F), MOVNTI (0F C3);
 *  - STRING: STOS/MOVS (AA/AB/A4/A5), with REP (F3 or F2): KVM's emulator
 *    retires one iteration per MMIO exit (RDI/RSI moved, RCX decremented,
 *    RIP still at the instruction unless that was the last one);
 *  - RMW: read-modify-write to memory: ALU ops (ADD OR ADC SBB AND SUB XOR,
 *    00-31 r/m forms and 80/81/83 /0-6), XCHG 86/87, NOT/NEG F6/F7 /2-3,
 *    INC/DEC FE/FF /0-1, shifts and rotates C0/C1/D0-D3, XADD 0F C0/C1,
 *    CMPXCHG 0F B0/B1, BTS/BTR/BTC 0F BA /5-7 (LOCK allowed).
 * Prefixes 66 67 F0 F2 F3, segment overrides, REX; 15 bytes at most.
 */
enum vtl_mem_op { VTL_MEM_OP_MOV, VTL_MEM_OP_STRING, VTL_MEM_OP_RMW };
struct vtl_mem_insn {
	unsigned len;          /* bytes */
	enum vtl_mem_op op;
	uint8_t opcode;        /* the opcode byte (the second for 0F xx) */
	bool twobyte;
	unsigned size;         /* operand bytes: 1, 2, 4, 8 */
	bool addr32, fs_gs;    /* 67 prefix; an FS/GS override */
	uint8_t rex;
	unsigned modrm_at;     /* ModRM forms: offset of the ModRM byte */
	int64_t disp;          /* its displacement, sign-extended */
	unsigned reg;          /* ModRM reg field with REX.R */
	uint64_t imm;          /* the immediate, sign-extended */
	bool rep, movs;        /* STRING: REP prefix; MOVS (RSI too) */
};

/* Decodes b[0..n) as one of those forms: its length (d filled), or 0. */
unsigned vtl_mem_decode(const uint8_t *b, unsigned n, struct vtl_mem_insn *d);

/*
 * The memory operand's address: ModRM forms as vtl_mem_mov_ea (b the
 * decoded bytes, next_rip for RIP-relative); STRING: RDI, or RSI for a
 * MOVS read (!write). With the registers as before the instruction (or
 * iteration). False for FS/GS overrides.
 */
bool vtl_mem_insn_ea(const struct vtl_mem_insn *d, const uint8_t *b, const uint64_t gpr[16],
		     uint64_t next_rip, bool write, uint64_t *ea);

/*
 * A write KVM's emulator retired (register writeback done, the memory
 * write dropped by hvmm): gpr[16] and *rflags are turned back into the
 * state before the instruction (STRING: before the iteration). `data` is
 * what it tried to write, `old` the memory's value (unchanged). Restored:
 * STRING's RDI/RSI/RCX (DF and the address size respected); XCHG's and
 * XADD's register (from data and old); CF for the ADC/SBB/RCL/RCR that
 * consumed it. Not restorable: the other arithmetic flags an RMW form
 * rewrote (re-running it rewrites them; VTL2's intercept message shows
 * the new ones). CMPXCHG writes only on success (RAX unchanged). RIP is
 * the caller's. False when the operands contradict the form (ADC/SBB).
 */
bool vtl_mem_undo(const struct vtl_mem_insn *d, uint64_t gpr[16], uint64_t *rflags, uint64_t data,
		  uint64_t old);

/*
 * Where VTL2-only RAM goes (OpenVMM's auto= placement: above VTL0's RAM
 * and its MMIO, which is the 32-bit hole only): the lowest address at or
 * above 4 GiB and above every RAM region, rounded up to `align` (a power
 * of two; smaller than 4 KiB means 4 KiB). 0 on overflow.
 *
 * The contract for --igvm-vtl2-relocation-type auto=: the loader picks
 * base = vtl_mem_vtl2_ram_base(m, region alignment), calls
 * gmem_add_vtl2_region(m, base, size) before writing VTL2's pages there
 * and reports the range in igvm_boot.vtl2_base/vtl2_size. vtl_create then
 * maps that region in VTL2's partition (it maps every region) and
 * vtl_mem_init keeps it out of VTL0's (no access: VTL0's accesses become
 * intercepts); it must be added before vtl_create.
 */
uint64_t vtl_mem_vtl2_ram_base(const struct gmem *g, uint64_t align);

/*
 * VTL2's memory as a VSM_ISOLATION IGVM file declares it: the range its
 * VTL2-protectable REQUIRED_MEMORY headers span (0/0 if none), for when
 * the loader gives no vtl2_base/vtl2_size. 0, or -EINVAL for a bad file.
 */
int vtl_mem_igvm_range(const uint8_t *buf, size_t len, uint64_t *base, uint64_t *size);

#endif
