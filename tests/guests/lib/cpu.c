/*
 * CPU tables and exception handling for the test guests: the TSS (RSP0 for
 * exceptions taken in ring 3, IST1 for #DF/NMI/#MC, and an all-zero I/O
 * permission bitmap), an IDT covering the 32 architectural exceptions
 * (Intel SDM vol. 3A, 6.15), the trap handler and user_call(), which runs a
 * function in ring 3 and returns when it does.
 *
 * Ring-3 port I/O: user_call() sets IOPL=3, which is enough on hardware
 * and ordinary KVM, but PVM ignores the guest's IOPL for ring-3 in/out and
 * raises #GP; it does honour the TSS I/O bitmap, so every port is allowed
 * there too (SDM vol. 1, 19.5.2).
 *
 * Exception policy: a ring-3 exception during user_call() ends the call and
 * is reported to its caller; a ring-0 exception on an instruction listed in
 * .ex_table resumes at its fixup (the *_safe helpers in x86.h); anything
 * else prints the vector, error code, RIP and CR2 and powers off with
 * failure. Nothing here uses int3 or int n: on PVM hosts they kill the vCPU.
 */
#include "guest.h"

struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error_code;
	u64 rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "matches lib/isr.S");

struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
	u8 iomap[65536 / 8 + 1]; /* one bit per port, then a 0xff byte */
} __attribute__((packed));
_Static_assert(offsetof(struct tss64, iomap) == 104, "SDM vol. 3A, figure 8-11");

struct idt_gate {
	u16 offset_lo;
	u16 selector;
	u8 ist;
	u8 type_attr;
	u16 offset_mid;
	u32 offset_hi;
	u32 reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate");

struct ex_entry {
	u64 insn;
	u64 resume;
};

#define IDT_VECTORS 32
#define GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define TRAP_STACK_SIZE 0x4000
#define IST_STACK_SIZE 0x2000
#define USER_STACK_SIZE 0x10000

extern u64 gdt[];
extern const u64 isr_stubs[IDT_VECTORS];
extern const struct ex_entry __ex_table_start[], __ex_table_end[];
extern const char user_exit_ud2[];
u64 user_enter(user_fn fn, u64 arg, u64 user_rsp);
__attribute__((noreturn)) void user_leave(u64 value);
void trap_handler(struct trap_frame *f);
void cpu_init(void);

static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[IDT_VECTORS] __attribute__((aligned(16)));
static u8 trap_stack[TRAP_STACK_SIZE] __attribute__((aligned(16)));
static u8 ist_stack[IST_STACK_SIZE] __attribute__((aligned(16)));
static u8 user_stack[USER_STACK_SIZE] __attribute__((aligned(16)));

volatile int ex_vector = -1;

static volatile bool user_active;
static struct user_result user_res;
static int trap_depth;

static const char *const exc_names[IDT_VECTORS] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint",
	"#OF overflow", "#BR bound range", "#UD invalid opcode",
	"#NM device not available", "#DF double fault",
	"coprocessor segment overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault",
	"#GP general protection", "#PF page fault", "reserved 15",
	"#MF x87 error", "#AC alignment check", "#MC machine check",
	"#XM SIMD exception", "#VE virtualization exception",
	"#CP control protection", "reserved 22", "reserved 23",
	"reserved 24", "reserved 25", "reserved 26", "reserved 27",
	"#HV hypervisor injection", "#VC VMM communication",
	"#SX security exception", "reserved 31",
};

const char *exception_name(unsigned vector)
{
	return vector < IDT_VECTORS ? exc_names[vector] : "external interrupt";
}

static void set_gate(unsigned vec, u64 handler, u8 ist)
{
	struct idt_gate *g = &idt[vec];

	g->offset_lo = (u16)handler;
	g->selector = GDT_KCODE;
	g->ist = ist;
	g->type_attr = GATE_INTERRUPT;
	g->offset_mid = (u16)(handler >> 16);
	g->offset_hi = (u32)(handler >> 32);
	g->reserved = 0;
}

void cpu_init(void)
{
	u64 base = (u64)&tss;
	u64 limit = sizeof(tss) - 1;
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (u64)idt };

	tss.rsp[0] = (u64)trap_stack + sizeof(trap_stack);
	tss.ist[0] = (u64)ist_stack + sizeof(ist_stack);
	tss.iomap_base = offsetof(struct tss64, iomap); /* bitmap is zero: allow all */
	tss.iomap[sizeof(tss.iomap) - 1] = 0xff;

	/* 64-bit available TSS descriptor (type 9), present, DPL 0. */
	gdt[GDT_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
			   (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
			   (((base >> 24) & 0xff) << 56);
	gdt[GDT_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(GDT_TSS));

	for (unsigned v = 0; v < IDT_VECTORS; v++)
		set_gate(v, isr_stubs[v], (v == 2 || v == 8 || v == 18) ? 1 : 0);
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

u64 user_trap_stack_top(void)
{
	return tss.rsp[0];
}

bool user_call(user_fn fn, u64 arg, struct user_result *res)
{
	u64 value;

	if (user_active || cpu_cpl() != 0) {
		printf("FATAL: user_call nested or called from ring 3\n");
		guest_abort("user_call nested or called from ring 3");
	}
	memset(&user_res, 0, sizeof(user_res));
	user_active = true;
	value = user_enter(fn, arg, (u64)user_stack + sizeof(user_stack));
	user_active = false;
	if (!user_res.faulted)
		user_res.value = value;
	if (res)
		*res = user_res;
	return !user_res.faulted;
}

static const struct ex_entry *ex_lookup(u64 rip)
{
	for (const struct ex_entry *e = __ex_table_start; e < __ex_table_end; e++)
		if (e->insn == rip)
			return e;
	return NULL;
}

static void dump_frame(const struct trap_frame *f, u64 cr2)
{
	printf("FATAL: exception %lu (%s) err=%#lx rip=%#lx cs=%#lx "
	       "rflags=%#lx rsp=%#lx cr2=%#lx\n",
	       f->vector, exception_name((unsigned)f->vector), f->error_code,
	       f->rip, f->cs, f->rflags, f->rsp, cr2);
	printf("  rax=%#lx rbx=%#lx rcx=%#lx rdx=%#lx rsi=%#lx rdi=%#lx\n",
	       f->rax, f->rbx, f->rcx, f->rdx, f->rsi, f->rdi);
	printf("  rbp=%#lx r8=%#lx r9=%#lx r10=%#lx r11=%#lx r12=%#lx\n",
	       f->rbp, f->r8, f->r9, f->r10, f->r11, f->r12);
}

void trap_handler(struct trap_frame *f)
{
	u64 cr2 = read_cr2();
	const struct ex_entry *e;
	static char why[96];

	if ((f->cs & 3) == 3 && user_active) {
		if (f->vector == 6 && f->rip == (u64)user_exit_ud2 &&
		    f->rax == USER_EXIT_MAGIC)
			user_leave(f->rdi);
		user_res.faulted = true;
		user_res.vector = (u8)f->vector;
		user_res.error_code = f->error_code;
		user_res.rip = f->rip;
		user_res.cr2 = cr2;
		user_leave(0);
	}
	if ((f->cs & 3) == 0 && (e = ex_lookup(f->rip)) != NULL) {
		ex_vector = (int)f->vector;
		f->rip = e->resume;
		return;
	}
	if (trap_depth++ > 0) /* faulted while reporting: just stop */
		poweroff(EXIT_FATAL);
	dump_frame(f, cr2);
	snprintf(why, sizeof(why), "fatal exception %lu (%s) at rip %#lx",
		 f->vector, exception_name((unsigned)f->vector), f->rip);
	guest_abort(why);
}
