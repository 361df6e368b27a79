/*
 * libFuzzer harness: the NVMe controller (src/dev/nvme*.c) on the PCI bus,
 * in manual mode over fake guest RAM, with a writable and a read-only mem:
 * disk. The harness enables the controller and creates I/O queue pair 1,
 * then replays records of {u8 op, u8 body[64]}:
 *   op % 5 == 0  an admin SQE (body), submitted with its doorbell; with
 *                op bit 7 set, a Doorbell Buffer Config whose PRPs are
 *                folded to pages of RAM (shadow doorbells, then read
 *                from whatever the other records write there)
 *   op % 5 == 1  an I/O SQE on queue 1; when op bit 7 is set the opcode,
 *                nsid and PRPs are folded into plausible values so most
 *                commands reach the data path
 *   op % 5 == 2  a raw doorbell write {u16 offset, u32 value}
 *   op % 5 == 3  a register write {u8 offset, u32 value} (CC, AQA, ...)
 *   op % 5 == 4  copy body into guest RAM at {u16 page} (PRP lists, DSM)
 * After each record the controller runs (nvme_poll) and the host consumes
 * every completion it can see on the admin CQ and CQ 1. Checks: no crash,
 * no sanitizer report, and the controller is destroyed cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/disk.h"
#include "core/gmem.h"
#include "core/log.h"
#include "dev/nvme.h"
#include "dev/nvme_impl.h"
#include "dev/pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM (1u << 20)
#define ASQ 0x1000u
#define ACQ 0x2000u
#define IOSQ 0x3000u
#define IOCQ 0x5000u
#define QS 16
#define REC 65
#define MAX_RECS 64

static uint8_t ram[RAM];

static void msi(void *opaque, uint64_t addr, uint32_t d)
{
	(void)opaque;
	(void)addr;
	(void)d;
}

struct hq {
	uint32_t sq, cq, tail, head, qid;
	bool phase;
};

static struct pci_bus *bus;
static uint64_t bar0;

static void w32(uint64_t off, uint32_t v)
{
	pci_mmio_write(bus, bar0 + off, &v, 4);
}

static void submit(struct hq *q, const void *sqe)
{
	memcpy(ram + q->sq + q->tail * 64, sqe, 64);
	q->tail = (q->tail + 1) % QS;
	w32(NVME_REG_DBS + q->qid * 8, q->tail);
}

static void consume(struct hq *q)
{
	for (unsigned i = 0; i < QS; i++) {
		uint16_t st;
		memcpy(&st, ram + q->cq + q->head * 16 + 14, 2);
		if ((st & 1) != q->phase)
			break;
		if (++q->head == QS) {
			q->head = 0;
			q->phase = !q->phase;
		}
		w32(NVME_REG_DBS + q->qid * 8 + 4, q->head);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	memset(ram, 0, sizeof(ram));
	struct gmem mem;
	gmem_init_fake(&mem, ram, sizeof(ram));
	char err[128];
	struct disk *disks[2];
	struct disk_kind_spec k = { .kind = DISK_KIND_MEM, .mem_size = 64 * 1024 };
	if (disk_open(&k, false, &disks[0], err, sizeof(err)) < 0)
		abort();
	if (disk_open(&k, true, &disks[1], err, sizeof(err)) < 0)
		abort();
	struct pci_msi_sink sink = { msi, NULL };
	if (pci_bus_create(&sink, &bus) < 0)
		abort();
	struct nvme *nv;
	struct nvme_config cfg = { .io_queues = 2, .manual = true };
	if (nvme_create(bus, &mem, disks, 2, &cfg, &nv) < 0)
		abort();
	struct pci_dev *pd = nvme_pci_dev(nv);
	unsigned devfn = pci_dev_slot(pd) << 3;
	pci_config_write(bus, devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_config_write(bus, devfn, PCI_CAP_START + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	bar0 = pci_dev_bar_addr(pd, 0);
	w32(NVME_MSIX_TABLE_OFF + 12, 0);
	w32(NVME_MSIX_TABLE_OFF + 16 + 12, 0);

	struct hq aq = { ASQ, ACQ, 0, 0, 0, true }, ioq = { IOSQ, IOCQ, 0, 0, 1, true };
	w32(NVME_REG_AQA, (QS - 1) << 16 | (QS - 1));
	w32(NVME_REG_ASQ, ASQ);
	w32(NVME_REG_ACQ, ACQ);
	w32(NVME_REG_CC, NVME_CC_EN | NVME_SQES << 16 | NVME_CQES << 20);
	nvme_poll(nv);
	struct nvme_sqe c = { .opcode = NVME_ADM_CREATE_CQ, .prp1 = IOCQ,
			      .cdw10 = (QS - 1) << 16 | 1, .cdw11 = 1u << 16 | 3 };
	submit(&aq, &c);
	c = (struct nvme_sqe){ .opcode = NVME_ADM_CREATE_SQ, .prp1 = IOSQ,
			       .cdw10 = (QS - 1) << 16 | 1, .cdw11 = 1u << 16 | 1 };
	submit(&aq, &c);
	nvme_poll(nv);
	consume(&aq);

	static const uint8_t io_ops[] = { NVME_CMD_READ, NVME_CMD_WRITE, NVME_CMD_FLUSH,
					  NVME_CMD_DSM, NVME_CMD_WRITE_ZEROES };
	size_t nrec = size / REC < MAX_RECS ? size / REC : MAX_RECS;
	for (size_t i = 0; i < nrec; i++) {
		const uint8_t *r = data + i * REC;
		uint8_t op = r[0];
		const uint8_t *b = r + 1;
		switch (op % 5) {
		case 0:
			if (op & 0x80) {
				struct nvme_sqe s;
				memcpy(&s, b, 64);
				s.opcode = NVME_ADM_DBBUF_CONFIG;
				s.flags = 0;
				s.prp1 = (s.prp1 % (RAM / 4096 + 1)) * 4096; /* one past RAM too */
				s.prp2 = (s.prp2 % (RAM / 4096 + 1)) * 4096;
				submit(&aq, &s);
			} else {
				submit(&aq, b);
			}
			break;
		case 1: {
			struct nvme_sqe s;
			memcpy(&s, b, 64);
			if (op & 0x80) {
				s.opcode = io_ops[s.opcode % sizeof(io_ops)];
				s.nsid = s.nsid % 3;
				s.flags &= 0x3C;
				s.prp1 %= RAM + 8192;
				s.prp2 %= RAM + 8192;
				s.cdw11 = 0;
				s.cdw10 %= 160;
				s.cdw12 &= 0x400000FF;
			}
			submit(&ioq, &s);
			break;
		}
		case 2: {
			uint16_t off;
			uint32_t v;
			memcpy(&off, b, 2);
			memcpy(&v, b + 2, 4);
			w32(NVME_REG_DBS + (off % 64), v % 64);
			break;
		}
		case 3: {
			uint32_t v;
			memcpy(&v, b + 1, 4);
			w32(b[0] % 0x40, v);
			break;
		}
		case 4: {
			uint16_t page;
			memcpy(&page, b, 2);
			memcpy(ram + (page % (RAM / 64)) * 64, b + 2, 62);
			break;
		}
		}
		nvme_poll(nv);
		consume(&aq);
		consume(&ioq);
		nvme_poll(nv);
	}
	nvme_destroy(nv);
	pci_bus_destroy(bus);
	disk_close(disks[0]);
	disk_close(disks[1]);
	return 0;
}
