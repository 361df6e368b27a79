/*
 * Constants shared by the assembly entry code and C: boot protocols, boot
 * structure offsets (Linux struct boot_params, Xen struct hvm_start_info),
 * control-register bits and the page-table entry flags used for the
 * guest's identity map. Included from .S files, so macros only.
 */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#define BOOT_PROTO_LINUX64 1	/* hvmm: RSI = struct boot_params */
#define BOOT_PROTO_PVH     2	/* QEMU: EBX = struct hvm_start_info */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_HVM_START_MAGIC 0x336ec578
#define HVM_START_CMDLINE_PADDR 24	/* u64 */
#define BP_CMD_LINE_PTR 0x228		/* u32, boot_params.hdr.cmd_line_ptr */
#define BP_EXT_CMD_LINE_PTR 0x0c8	/* u32, boot_params.ext_cmd_line_ptr */

/* GDT layout (lib/entry.S); 0x10/0x18 match hvmm's entry state. */
#define GDT_KCODE32 0x08
#define GDT_KCODE   0x10
#define GDT_KDATA   0x18
#define GDT_UCODE32 0x20
#define GDT_UDATA   0x28
#define GDT_UCODE   0x30
#define GDT_TSS     0x38
#define USER_CS (GDT_UCODE | 3)
#define USER_DS (GDT_UDATA | 3)
#define USER_RFLAGS 0x3002	/* IOPL=3, IF=0 */

/* RAX at the trampoline's ud2 when a user_call() function returned. */
#define USER_EXIT_MAGIC 0x5553455245584954	/* "USEREXIT" */

#define CR0_PE  (1 << 0)
#define CR0_PG  (1 << 31)
#define CR4_TSD  (1 << 2)
#define CR4_PAE  (1 << 5)
#define CR4_SMEP (1 << 20)
#define CR4_SMAP (1 << 21)
#define CR4_PKE  (1 << 22)
#define CR4_CET  (1 << 23)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)

#define PTE_TABLE 0x07		/* present, writable, user */
#define PTE_LARGE 0x87		/* present, writable, user, 2 MiB page */

#define BOOT_STACK_SIZE 0x8000

#endif
