/*
 * nvme_bench: a small polling NVMe driver (NVM Express Base 1.4c) whose
 * measurement loops run in ring 3, so that on PVM hosts the guest side runs
 * at native speed and what is timed is the VMM: each doorbell write is one
 * MMIO exit, each I/O one trip through the VMM's NVMe model and its disk
 * backend. The same image runs on hvmm (--nvme-pci + --disk ...,on=) and on
 * QEMU (-M q35 -device nvme), see bench/nvme.sh.
 *
 * Ring 0 finds the NVMe function on PCI bus 0 (configuration mechanism #1,
 * class 01/08/02), enables memory decoding and bus mastering, reads BAR0 and
 * maps its 2 MiB page uncached (PCD|PWT). Everything else is ring 3, where
 * the whole 4 GiB identity map is user-accessible: controller reset and
 * enable (CC.EN, CSTS.RDY), admin queue, Identify controller and namespace,
 * Set Features (Number of Queues), Create I/O CQ (IEN=0: no interrupts,
 * the CQ phase tag is polled) and SQ, then the workloads. Ring-0 code is
 * emulated ~1 µs an instruction on PVM hosts, so even the bring-up (zeroing
 * queues, polling CSTS) is cheaper in ring 3.
 *
 * Backing-file contract (bench/nvme.sh writes it): every 8-byte word at
 * byte offset o of the disk holds NVB_TAG | o. Reads check the first and
 * last word of every 512-byte block of every I/O and every word of the
 * first `verify=` I/Os of each workload (default 64). Writes go to the last
 * quarter of the disk only (reads stay below it); each 512-byte block
 * written starts with NVB_WTAG | o, and after the write workload a sample
 * of the written blocks is read back and checked. Every completion's status
 * and command id are checked.
 *
 * Command line: secs=<n> per workload (default 2), ios=<n> caps the I/Os
 * of a workload (0: no cap), seqqd=<n> queue depth of the sequential
 * workloads (default 8), verify=<n>, dbbuf=0 keeps MMIO doorbells only
 * where the controller offers shadow doorbells (Doorbell Buffer Config,
 * NVMe 1.3, OACS bit 8; used by default, set up before the I/O queues
 * like Linux does; a doorbell then costs an MMIO write only when the new
 * value passes the controller's EventIdx). With qd= the guest runs one workload
 * given by qd=, bs=, rand=0|1 and write=0|1 instead of the standard four:
 *   rr4k_qd1   4 KiB random reads, QD1
 *   rr4k_qd32  4 KiB random reads, QD32
 *   sr128k     128 KiB sequential reads, QD seqqd
 *   sw128k     128 KiB sequential writes, QD seqqd
 *
 * Output per workload (parseable as bench/nvme.sh does):
 *   BENCH nvme_<job>_iops=<n> nvme_<job>_mbps=<MB/s, x.yyy>
 *     nvme_<job>_ios=<n> nvme_<job>_ns=<elapsed> nvme_<job>_lat_ns=<mean>
 *     nvme_<job>_p50_ns=<median latency> nvme_<job>_p99_ns=<99th percentile>
 *     nvme_<job>_min_ns=<fastest> nvme_<job>_verified=<blocks checked>
 *     nvme_<job>_mmio_db=<MMIO doorbell writes to the I/O queue: VM exits>
 *     bs=<bytes> qd=<n> rand=<0|1> write=<0|1>
 * Latency: from just before the SQ tail doorbell write (or, for a refill,
 * from when the entry was queued behind it) to the guest seeing the CQE.
 * MB/s are 10^6 bytes a second. Times use rdtsc converted with tsc_khz()
 * (PIT channel 2 on both hvmm and QEMU q35; the INFO line names the source)
 * or, with tsc_khz=<kHz> on the command line, with that frequency: a PIT
 * calibration under host load can be a few percent off, and bench/nvme.sh
 * passes the host's TSC rate so that both VMMs' figures use the same one.
 */
#include "guest.h"

const char guest_name[] = "nvme_bench";

#define NVB_TAG  ((u64)0xA5A5000000000000ULL) /* read pattern: NVB_TAG | offset */
#define NVB_WTAG ((u64)0x5A5A000000000000ULL) /* first word of each block written */

#define PAGE 4096u
#define ADMIN_Q 16u
#define IO_Q 64u          /* I/O SQ and CQ entries: QD up to 63 */
#define MAX_QD 32u
#define MAX_BS (128u * 1024)
#define MAX_PRP (MAX_BS / PAGE)
#define IO_QID 1u

/* Controller registers (section 3.1). */
#define REG_CAP  0x00
#define REG_VS   0x08
#define REG_CC   0x14
#define REG_CSTS 0x1c
#define REG_AQA  0x24
#define REG_ASQ  0x28
#define REG_ACQ  0x30
#define REG_DBS  0x1000

#define CC_EN (1u << 0)
#define CC_IOSQES (6u << 16)
#define CC_IOCQES (4u << 20)
#define CSTS_RDY (1u << 0)
#define CSTS_CFS (1u << 1)

#define ADM_CREATE_SQ 0x01
#define ADM_CREATE_CQ 0x05
#define ADM_IDENTIFY  0x06
#define ADM_SET_FEATURES 0x09
#define ADM_DBBUF_CONFIG 0x7C /* Doorbell Buffer Config (NVMe 1.3) */
#define OACS_DBBUF (1u << 8)
#define IO_WRITE 0x01
#define IO_READ  0x02

struct sqe {
	u8 opcode, flags;
	u16 cid;
	u32 nsid;
	u64 rsvd;
	u64 mptr;
	u64 prp1, prp2;
	u32 cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct sqe) == 64, "SQE size");

struct cqe {
	u32 result, rsvd;
	u16 sq_head, sq_id;
	u16 cid, status; /* status bit 0: phase tag */
};
_Static_assert(sizeof(struct cqe) == 16, "CQE size");

/* DMA memory: identity-mapped guest RAM, so virtual = physical. */
static struct sqe admin_sq[ADMIN_Q] __attribute__((aligned(PAGE))) GUEST_NOINIT;
static struct cqe admin_cq[ADMIN_Q] __attribute__((aligned(PAGE))) GUEST_NOINIT;
static struct sqe io_sq[IO_Q] __attribute__((aligned(PAGE))) GUEST_NOINIT;
static struct cqe io_cq[IO_Q] __attribute__((aligned(PAGE))) GUEST_NOINIT;
static u8 ident[PAGE] __attribute__((aligned(PAGE))) GUEST_NOINIT;
/* Doorbell Buffer Config: [0] shadow doorbells, [1] EventIdx. */
static u32 dbbuf[2][PAGE / 4] __attribute__((aligned(PAGE))) GUEST_NOINIT;
static u64 prp_list[MAX_QD][PAGE / 8] __attribute__((aligned(PAGE))) GUEST_NOINIT;
static u8 bufs[MAX_QD][MAX_BS] __attribute__((aligned(PAGE))) GUEST_NOINIT;

struct queue {
	volatile struct sqe *sq;
	volatile struct cqe *cq;
	u32 size, sq_tail, cq_head;
	u16 phase;
	u64 sq_db, cq_db;
	/* Shadow doorbell and EventIdx entries, or NULL (MMIO only). */
	volatile u32 *sq_shadow, *cq_shadow, *sq_ei, *cq_ei;
	u64 mmio_db;     /* MMIO doorbell writes made (VM exits) */
};

static struct ctrl {
	u64 bar;
	u32 dstrd;       /* doorbell stride, bytes */
	u64 khz;         /* TSC rate used for every figure */
	u64 timeout_cyc; /* for any single wait */
	u64 lba_shift;
	u64 nlba;        /* namespace size in LBAs */
	u32 mdts_bytes;  /* 0: no limit */
	char sn[21], mn[41];
	bool want_dbbuf; /* dbbuf=0 on the command line: MMIO doorbells only */
	struct queue aq, ioq;
} ctl;

/* ---- ring 0: PCI ---------------------------------------------------------- */

static u32 pci_cfg_read(unsigned dev, unsigned fn, unsigned reg)
{
	outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
	return inl(0xcfc);
}

static void pci_cfg_write(unsigned dev, unsigned fn, unsigned reg, u32 v)
{
	outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
	outl(0xcfc, v);
}

/* Finds the first NVMe function on bus 0; returns its BAR0 or 0. */
static u64 pci_find_nvme(unsigned *where)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			u32 id = pci_cfg_read(dev, fn, 0);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			u32 cls = pci_cfg_read(dev, fn, 8) >> 8;
			if (cls == 0x010802) {
				u32 lo = pci_cfg_read(dev, fn, 0x10);
				u64 bar = lo & ~0xfULL;
				if ((lo & 6) == 4)
					bar |= (u64)pci_cfg_read(dev, fn, 0x14) << 32;
				u32 cmd = pci_cfg_read(dev, fn, 4) & 0xffff;
				pci_cfg_write(dev, fn, 4, cmd | 0x6); /* MSE | BME */
				printf("INFO nvme at 00:%02x.%u id=%04x:%04x bar0=%#lx\n",
				       dev, fn, id & 0xffff, id >> 16, bar);
				*where = dev << 3 | fn;
				return bar;
			}
			if (fn == 0 && !(pci_cfg_read(dev, 0, 0xc) & 0x800000))
				break; /* single-function device */
		}
	}
	return 0;
}

/* Marks the 2 MiB page that holds addr (below 4 GiB) uncached. */
static void map_uncached(u64 addr)
{
	extern u64 pml4[];
	u64 *pdpt = (u64 *)(pml4[0] & ~0xfffULL);
	u64 *pd = (u64 *)(pdpt[addr >> 30] & ~0xfffULL);
	pd[(addr >> 21) & 511] |= 0x18; /* PCD | PWT */
	__asm__ volatile("invlpg (%0)" : : "r"(addr) : "memory");
}

/* ---- ring 3: controller ---------------------------------------------------- */

static u32 rd32(u32 off) { return mmio_read32(ctl.bar + off); }
static void wr32(u32 off, u32 v) { mmio_write32(ctl.bar + off, v); }
static void wr64(u32 off, u64 v)
{
	/* Two dword writes (low first): QEMU and hvmm both take either. */
	mmio_write32(ctl.bar + off, (u32)v);
	mmio_write32(ctl.bar + off + 4, (u32)(v >> 32));
}

static bool wait_csts(u32 mask, u32 want)
{
	u64 t0 = rdtsc();
	while ((rd32(REG_CSTS) & mask) != want) {
		if (rdtsc() - t0 > ctl.timeout_cyc)
			return false;
		cpu_relax();
	}
	return true;
}

static void queue_init(struct queue *q, void *sq, void *cq, u32 size, u32 qid)
{
	q->sq = sq;
	q->cq = cq;
	q->size = size;
	q->sq_tail = q->cq_head = 0;
	q->phase = 1;
	q->sq_db = ctl.bar + REG_DBS + (2 * qid) * ctl.dstrd;
	q->cq_db = ctl.bar + REG_DBS + (2 * qid + 1) * ctl.dstrd;
	q->sq_shadow = q->cq_shadow = q->sq_ei = q->cq_ei = NULL;
	q->mmio_db = 0;
	memset(sq, 0, size * sizeof(struct sqe));
	memset(cq, 0, size * sizeof(struct cqe));
}

/* Copies c into the next SQ slot; the caller rings the doorbell. */
static void sq_put(struct queue *q, const struct sqe *c)
{
	volatile u64 *dst = (volatile u64 *)&q->sq[q->sq_tail];
	const u64 *src = (const u64 *)c;
	for (unsigned i = 0; i < 8; i++)
		dst[i] = src[i];
	if (++q->sq_tail == q->size)
		q->sq_tail = 0;
}

/*
 * The event-index rule of shadow doorbells (as virtio's): ring the MMIO
 * doorbell only if the controller's EventIdx lies in [old, new), in 16-bit
 * arithmetic. The shadow store must be visible before EventIdx is read,
 * and the controller publishes EventIdx before it re-reads the shadow: a
 * full fence on each side, so one of them sees the other.
 */
static bool need_event(u16 ei, u16 new, u16 old)
{
	return (u16)(new - ei - 1) < (u16)(new - old);
}

static void ring(struct queue *q, u64 db, volatile u32 *shadow, volatile u32 *ei, u32 v)
{
	if (shadow) {
		u32 old = *shadow;
		*shadow = v;
		__asm__ volatile("mfence" ::: "memory");
		if (!need_event((u16)*ei, (u16)v, (u16)old))
			return;
	}
	q->mmio_db++;
	mmio_write32(db, v);
}

static void sq_ring(struct queue *q)
{
	barrier(); /* SQEs before the tail (x86 keeps store order) */
	ring(q, q->sq_db, q->sq_shadow, q->sq_ei, q->sq_tail);
}

/* The next completion if its phase tag is current, else NULL. */
static volatile struct cqe *cq_peek(struct queue *q)
{
	volatile struct cqe *e = &q->cq[q->cq_head];
	if ((e->status & 1) != q->phase)
		return NULL;
	barrier(); /* the rest of the entry after its phase (loads in order) */
	return e;
}

static void cq_pop(struct queue *q)
{
	if (++q->cq_head == q->size) {
		q->cq_head = 0;
		q->phase ^= 1;
	}
}

static void cq_ring(struct queue *q)
{
	ring(q, q->cq_db, q->cq_shadow, q->cq_ei, q->cq_head);
}

/* Runs one admin command synchronously; returns its status field (0 ok),
 * or 0xffff on timeout. */
static u32 admin(struct sqe *c, u32 *result)
{
	static u16 cid;
	volatile struct cqe *e;
	u64 t0 = rdtsc();

	c->cid = ++cid;
	sq_put(&ctl.aq, c);
	sq_ring(&ctl.aq);
	while (!(e = cq_peek(&ctl.aq))) {
		if (rdtsc() - t0 > ctl.timeout_cyc)
			return 0xffff;
		cpu_relax();
	}
	u32 st = e->status >> 1;
	u16 ecid = e->cid;
	if (result)
		*result = e->result;
	cq_pop(&ctl.aq);
	cq_ring(&ctl.aq);
	if (ecid != cid)
		return 0xfffe;
	return st;
}

static void copy_str(char *dst, const u8 *src, unsigned n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
	while (n && (dst[n - 1] == ' ' || dst[n - 1] == 0))
		dst[--n] = 0;
}

/* Ring 3: reset, enable, Identify, I/O queue pair. 0 or a failure line. */
static u64 ctrl_init(u64 arg)
{
	(void)arg;
	u64 cap = (u64)rd32(REG_CAP) | (u64)rd32(REG_CAP + 4) << 32;
	u32 vs = rd32(REG_VS);
	u64 to_ms = ((cap >> 24) & 0xff) * 500;
	ctl.dstrd = 4u << ((cap >> 32) & 0xf);
	if (to_ms < 1000)
		to_ms = 1000;
	ctl.timeout_cyc = to_ms * ctl.khz;
	printf("INFO nvme cap=%#lx vs=%#x mqes=%lu dstrd=%u\n", cap, vs,
	       (cap & 0xffff) + 1, ctl.dstrd);
	if (!expect(((cap >> 48) & 0xf) == 0, "MPSMIN %lu: 4 KiB pages unsupported",
		    (cap >> 48) & 0xf) ||
	    !expect((cap & 0xffff) + 1 >= IO_Q, "MQES %lu < %u", cap & 0xffff, IO_Q))
		return 1;

	/* Reset (section 7.6.1): CC.EN = 0, wait for CSTS.RDY = 0. */
	if (rd32(REG_CC) & CC_EN) {
		wr32(REG_CC, 0);
		if (!expect(wait_csts(CSTS_RDY, 0), "CSTS.RDY stuck at 1 after reset"))
			return 1;
	}
	queue_init(&ctl.aq, admin_sq, admin_cq, ADMIN_Q, 0);
	wr32(REG_AQA, (ADMIN_Q - 1) << 16 | (ADMIN_Q - 1));
	wr64(REG_ASQ, (u64)admin_sq);
	wr64(REG_ACQ, (u64)admin_cq);
	wr32(REG_CC, CC_IOSQES | CC_IOCQES | CC_EN);
	if (!expect(wait_csts(CSTS_RDY | CSTS_CFS, CSTS_RDY), "CSTS %#x: not ready",
		    rd32(REG_CSTS)))
		return 1;

	struct sqe c;
	u32 st, res = 0;
	memset(&c, 0, sizeof(c));
	c.opcode = ADM_IDENTIFY;
	c.prp1 = (u64)ident;
	c.cdw10 = 1; /* CNS 1: controller */
	st = admin(&c, NULL);
	if (!expect(st == 0, "Identify controller: status %#x", st))
		return 1;
	u16 oacs = (u16)(ident[256] | ident[257] << 8);
	copy_str(ctl.sn, ident + 4, 20);
	copy_str(ctl.mn, ident + 24, 40);
	ctl.mdts_bytes = ident[77] ? PAGE << ident[77] : 0;

	memset(&c, 0, sizeof(c));
	c.opcode = ADM_IDENTIFY;
	c.nsid = 1;
	c.prp1 = (u64)ident;
	c.cdw10 = 0; /* CNS 0: namespace */
	st = admin(&c, NULL);
	if (!expect(st == 0, "Identify namespace 1: status %#x", st))
		return 1;
	memcpy(&ctl.nlba, ident, 8);
	unsigned flbas = ident[26] & 0xf;
	u32 lbaf;
	memcpy(&lbaf, ident + 128 + 4 * flbas, 4);
	ctl.lba_shift = (lbaf >> 16) & 0xff;
	if (!expect(ctl.lba_shift >= 9 && ctl.lba_shift <= 12 && ctl.nlba,
		    "namespace 1: LBADS %lu, NSZE %lu", ctl.lba_shift, ctl.nlba))
		return 1;

	memset(&c, 0, sizeof(c));
	c.opcode = ADM_SET_FEATURES;
	c.cdw10 = 0x07; /* Number of Queues: one SQ, one CQ (0-based) */
	st = admin(&c, &res);
	if (!expect(st == 0, "Set Features queues: status %#x", st))
		return 1;

	/* Shadow doorbells (Doorbell Buffer Config, OACS bit 8) unless
	 * dbbuf=0: set up before the I/O queues, as Linux does. */
	bool use_dbbuf = (oacs & OACS_DBBUF) && ctl.want_dbbuf;
	if (use_dbbuf) {
		memset(dbbuf, 0, sizeof(dbbuf));
		memset(&c, 0, sizeof(c));
		c.opcode = ADM_DBBUF_CONFIG;
		c.prp1 = (u64)dbbuf[0];
		c.prp2 = (u64)dbbuf[1];
		st = admin(&c, NULL);
		if (!expect(st == 0, "Doorbell Buffer Config: status %#x", st))
			return 1;
	}
	printf("INFO nvme oacs=%#x dbbuf=%s\n", oacs,
	       use_dbbuf ? "on" : (oacs & OACS_DBBUF) ? "off (dbbuf=0)" : "off (not offered)");
	queue_init(&ctl.ioq, io_sq, io_cq, IO_Q, IO_QID);
	if (use_dbbuf) {
		unsigned s = 2 * IO_QID * ctl.dstrd / 4, c1 = (2 * IO_QID + 1) * ctl.dstrd / 4;
		ctl.ioq.sq_shadow = &dbbuf[0][s];
		ctl.ioq.cq_shadow = &dbbuf[0][c1];
		ctl.ioq.sq_ei = &dbbuf[1][s];
		ctl.ioq.cq_ei = &dbbuf[1][c1];
	}
	memset(&c, 0, sizeof(c));
	c.opcode = ADM_CREATE_CQ;
	c.prp1 = (u64)io_cq;
	c.cdw10 = (IO_Q - 1) << 16 | IO_QID;
	c.cdw11 = 1; /* PC = 1, IEN = 0: polled */
	st = admin(&c, NULL);
	if (!expect(st == 0, "Create I/O CQ: status %#x", st))
		return 1;
	memset(&c, 0, sizeof(c));
	c.opcode = ADM_CREATE_SQ;
	c.prp1 = (u64)io_sq;
	c.cdw10 = (IO_Q - 1) << 16 | IO_QID;
	c.cdw11 = IO_QID << 16 | 1; /* CQID, PC = 1 */
	st = admin(&c, NULL);
	if (!expect(st == 0, "Create I/O SQ: status %#x", st))
		return 1;
	printf("INFO nvme mn=\"%s\" sn=\"%s\" mdts=%u lba=%u nlba=%lu (%lu MiB) queues=%#x\n",
	       ctl.mn, ctl.sn, ctl.mdts_bytes, 1u << ctl.lba_shift, ctl.nlba,
	       (ctl.nlba << ctl.lba_shift) >> 20, res);
	return 0;
}

/* ---- ring 3: workloads ------------------------------------------------------ */

struct job {
	const char *name;
	u32 bs, qd;
	bool rand, write;
	u64 secs, max_ios, verify_full;
	/* results */
	u64 ios, cycles, lat_cycles, verified, bad_status, bad_data, bad_cid;
	u64 nlat, lat_min, lat_p50, lat_p99;
	u64 mmio_db;     /* I/O queue MMIO doorbell writes during the run */
	char why[96];
};

/* Per-I/O latencies (cycles) of the current job, for percentiles: robust
 * where the mean is not, when the host deschedules the vCPU now and then. */
#define MAX_LAT (1u << 18)
static u32 lat[MAX_LAT] GUEST_NOINIT;

struct slot {
	u64 off;      /* byte offset of the I/O in flight */
	u64 t_submit;
};
static struct slot slots[MAX_QD];

static u64 rng = 0x9e3779b97f4a7c15ULL;
static u64 xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The disk is split: reads below wr_base, writes at and above it. */
static u64 disk_bytes(void) { return ctl.nlba << ctl.lba_shift; }
static u64 wr_base(void) { return (disk_bytes() / 4 * 3) & ~(u64)(MAX_BS - 1); }

static u64 seq_pos;

static u64 next_off(const struct job *j)
{
	u64 lo = j->write ? wr_base() : 0;
	u64 hi = j->write ? disk_bytes() : wr_base();
	u64 n = (hi - lo) / j->bs;
	if (j->rand)
		return lo + (xorshift() % n) * j->bs;
	u64 off = lo + (seq_pos % n) * j->bs;
	seq_pos++;
	return off;
}

/* Write buffers: each block starts with NVB_WTAG | its offset. */
static void fill_write(unsigned s, u64 off, u32 bs)
{
	for (u32 b = 0; b < bs; b += 512)
		*(u64 *)&bufs[s][b] = NVB_WTAG | (off + b);
}

static void submit(struct job *j, unsigned s)
{
	struct sqe c;
	u64 off = next_off(j);
	u32 nlb = j->bs >> ctl.lba_shift;

	slots[s].off = off;
	if (j->write)
		fill_write(s, off, j->bs);
	memset(&c, 0, sizeof(c));
	c.opcode = j->write ? IO_WRITE : IO_READ;
	c.cid = (u16)s;
	c.nsid = 1;
	c.prp1 = (u64)bufs[s];
	if (j->bs > 2 * PAGE)
		c.prp2 = (u64)prp_list[s];
	else if (j->bs > PAGE)
		c.prp2 = (u64)bufs[s] + PAGE;
	c.cdw10 = (u32)(off >> ctl.lba_shift);
	c.cdw11 = (u32)(off >> ctl.lba_shift >> 32);
	c.cdw12 = nlb - 1;
	sq_put(&ctl.ioq, &c);
	slots[s].t_submit = rdtsc();
}

/* Checks a read buffer: the first and last word of each 512-byte block,
 * or every word when full. Returns false at the first mismatch. */
static bool check_read(struct job *j, unsigned s, bool full)
{
	const u64 *w = (const u64 *)bufs[s];
	u64 off = slots[s].off;
	u32 n = j->bs / 8;
	for (u32 i = 0; i < n; i += full ? 1 : (i % 64 == 0 ? 63 : 1)) {
		if (w[i] != (NVB_TAG | (off + 8 * i))) {
			if (!j->why[0])
				snprintf(j->why, sizeof(j->why),
					 "data at %#lx: %#lx, expected %#lx", off + 8 * i,
					 w[i], NVB_TAG | (off + 8 * i));
			return false;
		}
	}
	j->verified += j->bs / 512;
	return true;
}

static u64 run_job(u64 arg)
{
	struct job *j = (struct job *)arg;
	struct queue *q = &ctl.ioq;
	u64 deadline_cyc = j->secs * 1000 * ctl.khz;
	u64 issued = 0, inflight = 0;
	bool stop = false;

	/* Sequential jobs restart at their region's start. */
	seq_pos = 0;
	u64 t0 = rdtsc(), last = t0;
	for (unsigned s = 0; s < j->qd; s++) {
		submit(j, s);
		issued++;
		inflight++;
	}
	sq_ring(q);
	while (inflight) {
		volatile struct cqe *e = cq_peek(q);
		if (!e) {
			if (rdtsc() - last > ctl.timeout_cyc) {
				snprintf(j->why, sizeof(j->why), "I/O timeout, %lu in flight",
					 inflight);
				break;
			}
			cpu_relax();
			continue;
		}
		bool resubmitted = false;
		/* Reap everything posted, resubmitting into the same slots. */
		do {
			u16 cid = e->cid;
			u16 st = e->status >> 1;
			cq_pop(q);
			u64 now = rdtsc();
			last = now;
			inflight--;
			if (cid >= j->qd) {
				j->bad_cid++;
				if (!j->why[0])
					snprintf(j->why, sizeof(j->why), "completion cid %u", cid);
				stop = true;
				continue;
			}
			j->ios++;
			j->lat_cycles += now - slots[cid].t_submit;
			if (j->nlat < MAX_LAT) {
				u64 l = now - slots[cid].t_submit;
				lat[j->nlat++] = l > 0xffffffffu ? 0xffffffffu : (u32)l;
			}
			if (st) {
				j->bad_status++;
				if (!j->why[0])
					snprintf(j->why, sizeof(j->why), "status %#x at %#lx", st,
						 slots[cid].off);
				stop = true;
			} else if (!j->write && !check_read(j, cid, j->ios <= j->verify_full)) {
				j->bad_data++;
				stop = true;
			}
			if (now - t0 > deadline_cyc || (j->max_ios && issued >= j->max_ios))
				stop = true;
			if (!stop) {
				submit(j, cid);
				issued++;
				inflight++;
				resubmitted = true;
			}
		} while ((e = cq_peek(q)));
		cq_ring(q);
		if (resubmitted)
			sq_ring(q);
	}
	j->cycles = rdtsc() - t0;
	return 0;
}

/* After a write job: reads back a sample of what it wrote (the first
 * blocks of its region, plus random ones within what was written). */
static u64 verify_writes(u64 arg)
{
	struct job *j = (struct job *)arg;
	u64 written = j->ios * j->bs;
	u64 region = disk_bytes() - wr_base();
	u64 checks = 0;
	if (written > region)
		written = region;
	for (unsigned k = 0; k < 16 && written; k++) {
		u64 off = wr_base() + (k == 0 ? 0 : (xorshift() % (written / j->bs)) * j->bs);
		struct sqe c;
		memset(&c, 0, sizeof(c));
		memset(bufs[0], 0, j->bs);
		c.opcode = IO_READ;
		c.nsid = 1;
		c.prp1 = (u64)bufs[0];
		if (j->bs > 2 * PAGE)
			c.prp2 = (u64)prp_list[0];
		else if (j->bs > PAGE)
			c.prp2 = (u64)bufs[0] + PAGE;
		c.cdw10 = (u32)(off >> ctl.lba_shift);
		c.cdw11 = (u32)(off >> ctl.lba_shift >> 32);
		c.cdw12 = (j->bs >> ctl.lba_shift) - 1;
		sq_put(&ctl.ioq, &c);
		sq_ring(&ctl.ioq);
		volatile struct cqe *e;
		u64 t0 = rdtsc();
		while (!(e = cq_peek(&ctl.ioq))) {
			if (rdtsc() - t0 > ctl.timeout_cyc) {
				snprintf(j->why, sizeof(j->why), "read-back timeout");
				return 1;
			}
			cpu_relax();
		}
		u16 st = e->status >> 1;
		cq_pop(&ctl.ioq);
		cq_ring(&ctl.ioq);
		if (st) {
			snprintf(j->why, sizeof(j->why), "read-back status %#x", st);
			return 1;
		}
		for (u32 b = 0; b < j->bs; b += 512) {
			u64 w = *(u64 *)&bufs[0][b];
			if (w != (NVB_WTAG | (off + b))) {
				snprintf(j->why, sizeof(j->why), "read-back at %#lx: %#lx",
					 off + b, w);
				return 1;
			}
			checks++;
		}
	}
	j->verified = checks;
	return 0;
}

static void sift_down(u32 *a, u64 root, u64 n)
{
	for (;;) {
		u64 child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[root] >= a[child])
			return;
		u32 t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

/* Ring 3: sorts the latencies (heap sort) and picks the percentiles. */
static u64 lat_stats(u64 arg)
{
	struct job *j = (struct job *)arg;
	u64 n = j->nlat;
	if (!n)
		return 0;
	for (u64 i = n / 2; i-- > 0;)
		sift_down(lat, i, n);
	for (u64 end = n; end-- > 1;) {
		u32 t = lat[0];
		lat[0] = lat[end];
		lat[end] = t;
		sift_down(lat, 0, end);
	}
	j->lat_min = lat[0];
	j->lat_p50 = lat[n / 2];
	j->lat_p99 = lat[n * 99 / 100];
	return 0;
}

static void report(struct job *j)
{
	u64 ns = mul_div(j->cycles, 1000000, ctl.khz);
	u64 bytes = j->ios * j->bs;
	u64 iops = ns ? mul_div(j->ios, 1000000000u, ns) : 0;
	/* MB/s in thousandths: bytes * 10^6 / ns */
	u64 mbps_milli = ns ? mul_div(bytes, 1000000u, ns) : 0;
	u64 lat = j->ios ? mul_div(j->lat_cycles / j->ios, 1000000, ctl.khz) : 0;
	printf("BENCH nvme_%s_iops=%lu nvme_%s_mbps=" FIX3_FMT " nvme_%s_ios=%lu "
	       "nvme_%s_ns=%lu nvme_%s_lat_ns=%lu nvme_%s_p50_ns=%lu nvme_%s_p99_ns=%lu "
	       "nvme_%s_min_ns=%lu ",
	       j->name, iops, j->name, FIX3_ARG(mbps_milli), j->name, j->ios, j->name,
	       ns, j->name, lat, j->name, mul_div(j->lat_p50, 1000000, ctl.khz), j->name,
	       mul_div(j->lat_p99, 1000000, ctl.khz), j->name,
	       mul_div(j->lat_min, 1000000, ctl.khz));
	/* One line in two calls: printf() formats up to 255 characters. */
	printf("nvme_%s_verified=%lu nvme_%s_mmio_db=%lu bs=%u qd=%u rand=%u write=%u\n",
	       j->name, j->verified, j->name, j->mmio_db, j->bs, j->qd, j->rand, j->write);
}

static void do_job(struct job *j)
{
	struct user_result r;
	TEST_BEGIN(j->name);
	if (!expect(j->bs >= (1u << ctl.lba_shift) && j->bs <= MAX_BS &&
			    !(j->bs & ((1u << ctl.lba_shift) - 1)) && !(j->bs & 7),
		    "bs=%u unsupported (LBA %u, max %u)", j->bs, 1u << ctl.lba_shift, MAX_BS) ||
	    !expect(!ctl.mdts_bytes || j->bs <= ctl.mdts_bytes, "bs=%u > MDTS %u", j->bs,
		    ctl.mdts_bytes) ||
	    !expect(j->qd >= 1 && j->qd <= MAX_QD, "qd=%u (1..%u)", j->qd, MAX_QD))
		return;
	u64 db0 = ctl.ioq.mmio_db;
	if (!expect(user_call(run_job, (u64)j, &r), "ring 3 faulted: %s at %#lx cr2=%#lx",
		    exception_name(r.vector), r.rip, r.cr2))
		return;
	j->mmio_db = ctl.ioq.mmio_db - db0;
	if (!expect(!j->why[0], "%s", j->why) || !expect(j->ios, "no I/O completed") ||
	    !expect(user_call(lat_stats, (u64)j, &r), "stats faulted"))
		return;
	if (j->write) {
		u64 n_ios = j->ios;
		if (!expect(user_call(verify_writes, (u64)j, &r), "read-back faulted: %s",
			    exception_name(r.vector)) ||
		    !expect(!j->why[0], "%s", j->why))
			return;
		j->ios = n_ios;
	}
	report(j);
}

/* PRP lists: slot s's buffer is contiguous, entry i is page i + 1. */
static u64 init_prps(u64 arg)
{
	(void)arg;
	for (unsigned s = 0; s < MAX_QD; s++)
		for (unsigned i = 0; i < MAX_PRP - 1; i++)
			prp_list[s][i] = (u64)bufs[s] + (u64)(i + 1) * PAGE;
	return 0;
}

int guest_main(const char *cmdline)
{
	struct user_result r;
	unsigned where = 0;
	(void)cmdline;

	TEST_BEGIN("nvme_init");
	u64 khz = tsc_khz();
	ctl.khz = cmdline_u64("tsc_khz", khz);
	if (!expect(ctl.khz, "no TSC frequency"))
		return 0;
	if (ctl.khz != khz)
		printf("INFO tsc_khz=%lu from the command line (calibrated %lu, %s)\n", ctl.khz,
		       khz, tsc_source());
	u64 bar = pci_find_nvme(&where);
	if (!expect(bar, "no NVMe function (class 01/08/02) on PCI bus 0") ||
	    !expect(bar < (4ULL << 30) - 0x4000, "BAR0 %#lx is outside the 4 GiB map", bar))
		return 0;
	map_uncached(bar);
	ctl.bar = bar;
	ctl.want_dbbuf = cmdline_u64("dbbuf", 1) != 0;
	if (!expect(user_call(init_prps, 0, &r), "init faulted") ||
	    !expect(user_call(ctrl_init, 0, &r), "ring 3 faulted: %s at %#lx cr2=%#lx",
		    exception_name(r.vector), r.rip, r.cr2) ||
	    r.value)
		return 0;
	if (!expect(disk_bytes() >= 16 * MAX_BS, "disk of %lu bytes is too small",
		    disk_bytes()))
		return 0;

	u64 secs = cmdline_u64("secs", 2);
	u64 max_ios = cmdline_u64("ios", 0);
	u64 vfull = cmdline_u64("verify", 64);
	u32 seqqd = (u32)cmdline_u64("seqqd", 8);
	static struct job jobs[4];
	unsigned njobs;
	char qdbuf[8];
	if (cmdline_str("qd", qdbuf, sizeof(qdbuf))) {
		jobs[0] = (struct job){ .name = "custom",
					.qd = (u32)cmdline_u64("qd", 1),
					.bs = (u32)cmdline_u64("bs", 4096),
					.rand = cmdline_u64("rand", 1) != 0,
					.write = cmdline_u64("write", 0) != 0 };
		njobs = 1;
	} else {
		jobs[0] = (struct job){ .name = "rr4k_qd1", .bs = 4096, .qd = 1, .rand = true };
		jobs[1] = (struct job){ .name = "rr4k_qd32", .bs = 4096, .qd = 32, .rand = true };
		jobs[2] = (struct job){ .name = "sr128k", .bs = 128 * 1024, .qd = seqqd };
		jobs[3] = (struct job){ .name = "sw128k", .bs = 128 * 1024, .qd = seqqd,
					.write = true };
		njobs = 4;
	}
	for (unsigned i = 0; i < njobs; i++) {
		jobs[i].secs = secs;
		jobs[i].max_ios = max_ios;
		jobs[i].verify_full = vfull;
		do_job(&jobs[i]);
	}
	(void)where;
	return 0;
}
