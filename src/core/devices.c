/*
 * The PC-compatible platform hvmm presents to a Linux-direct guest: ACPI
 * tables (x86/acpi.c) at 0xE0000, ACPI PM fixed hardware and reset ports
 * (dev/pm.c), the CMOS RTC (dev/rtc.c) and up to four 16550A UARTs
 * (dev/uart.c) on their backends. The interrupt controllers (LAPIC, IOAPIC,
 * PIC) and the PIT are in the KVM kernel module.
 */
#include "core/devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "backend/chardev.h"
#include "core/log.h"
#include "core/storage.h"
#include "dev/ioapic.h"
#include "dev/nvme.h"
#include "dev/pci.h"
#include "core/vm.h"
#include "core/vtl.h"
#include "dev/pm.h"
#include "dev/rtc.h"
#include "dev/uart.h"
#include "x86/acpi.h"

static const struct {
	uint16_t port;
	unsigned irq;
} com_ports[CLI_NUM_COM] = {
	{ 0x3f8, 4 }, { 0x2f8, 3 }, { 0x3e8, 4 }, { 0x2e8, 3 },
};

struct vm_devices {
	struct ioapic ioapic;     /* only with a split irqchip (--vtl2) */
	bool ioapic_ok;
	struct pm pm;
	bool pm_ok;
	struct rtc rtc;
	bool rtc_ok;
	int rtc_timer;            /* timerfd for the RTC's next interrupt, or -1 */
	struct evloop *loop;
	struct uart *uart[CLI_NUM_COM];
	struct pci_bus *pci;      /* only with NVMe controllers */
	struct nvme *nvme[CLI_MAX_NVME];
};

bool devices_com_is_console(const struct vm *vm, unsigned i)
{
	return i < CLI_NUM_COM && vm->com && vm->com[i] &&
	       chardev_backend(vm->com[i]) == CHARDEV_CONSOLE;
}

static void dsdt_pci(struct aml *a, void *opaque)
{
	pci_bus_build_dsdt(opaque, a);
}

/* A device's interrupt message into VTL0's partition (what: for the log line). */
static void device_msi(struct vm *vm, uint64_t addr, uint32_t data, const char *what)
{
	int ret = vm->ops->signal_msi(vm->accel, addr, data);
	if (ret >= 0 && vm->vtl)
		vtl_lower_interrupt(vm->vtl, addr); /* VINA if VTL2 runs */
	if (ret < 0)
		log_guest("%s 0x%llx/0x%x not delivered: %s", what, (unsigned long long)addr,
			  data, strerror(-ret));
}

static void pci_msi(void *opaque, uint64_t addr, uint32_t data)
{
	device_msi(opaque, addr, data, "PCI MSI");
}

/* The IOAPIC's messages and routes (split irqchip). */
static void ioapic_msi(void *opaque, uint64_t addr, uint32_t data)
{
	device_msi(opaque, addr, data, "IOAPIC message");
}

static void ioapic_route(void *opaque, unsigned pin, uint64_t addr, uint32_t data, bool valid)
{
	struct vm *vm = opaque;
	int ret = vm->ops->set_msi_route ?
		vm->ops->set_msi_route(vm->accel, pin, addr, data, valid) : -ENOTSUP;
	if (ret < 0)
		log_guest("IOAPIC pin %u: route not set: %s", pin, strerror(-ret));
}

static const struct ioapic_ops ioapic_ops = { .deliver = ioapic_msi, .route = ioapic_route };

/*
 * With a split irqchip the IOAPIC is ours (dev/ioapic.c): the devices'
 * lines go to it, its pins leave as MSIs, and KVM's EOI exits come back
 * through vm->ioapic (core/vm.c). No PIC or PIT exists then.
 */
static int add_ioapic(struct vm *vm, struct vm_devices *d)
{
	int ret = ioapic_init(&d->ioapic, &ioapic_ops, vm);
	if (ret < 0)
		return ret;
	d->ioapic_ok = true;
	ret = iobus_register(&vm->mmio, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, &ioapic_mmio_ops,
			     &d->ioapic, "ioapic");
	if (ret < 0)
		return ret;
	vm->ioapic = &d->ioapic;
	return 0;
}

/* The PCI bus and the NVMe controllers on it (--nvme-pci). */
static int add_nvme(struct vm *vm, struct vm_devices *d)
{
	struct pci_msi_sink sink = { .signal = pci_msi, .opaque = vm };
	int ret = pci_bus_create(&sink, &d->pci);
	if (ret == 0)
		ret = pci_bus_register(d->pci, &vm->pio, &vm->mmio);
	if (ret < 0)
		return ret;
	pci_bus_set_cf9(d->pci, &pm_reset_ops, &d->pm);
	for (unsigned i = 0; i < storage_nvme_count(vm->storage); i++) {
		struct disk **disks;
		unsigned n = storage_nvme_disks(vm->storage, i, &disks);
		char serial[21];
		snprintf(serial, sizeof(serial), "hvmm-%s", storage_nvme_name(vm->storage, i));
		struct nvme_config nc = { .serial = serial, .io_queues = vm->nvcpus };
		ret = nvme_create(d->pci, &vm->mem, disks, n, &nc, &d->nvme[i]);
		if (ret < 0) {
			log_error("cannot create NVMe controller %s: %s",
				  storage_nvme_name(vm->storage, i), strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int add_acpi(struct vm *vm, uint64_t *rsdp_gpa)
{
	struct acpi_config ac = {
		.ncpus = vm->nvcpus,
		.vmbus = vm->cfg->hv && !vm->cfg->no_vmbus,
		.no_legacy_pic = vm->split_irqchip,
	};
	if (vm->dev->pci) {
		ac.dsdt_extra = dsdt_pci;
		ac.dsdt_extra_opaque = vm->dev->pci;
	}
	for (unsigned i = 0; i < CLI_NUM_COM; i++)
		ac.com_present[i] = vm->com && vm->com[i];
	void *buf = gmem_map(&vm->mem, ACPI_TABLES_GPA, ACPI_TABLES_MAX);
	if (!buf) {
		log_error("no guest RAM for the ACPI tables at 0x%x", ACPI_TABLES_GPA);
		return -ENOMEM;
	}
	long n = acpi_build(&ac, buf, ACPI_TABLES_MAX, ACPI_TABLES_GPA);
	if (n < 0) {
		log_error("cannot build the ACPI tables: %s", strerror((int)-n));
		return (int)n;
	}
	*rsdp_gpa = ACPI_TABLES_GPA;
	return 0;
}

/* Arms the timer for the RTC's next periodic/alarm/update event. */
static void rtc_timer_arm(void *opaque)
{
	struct vm_devices *d = opaque;
	int64_t ns = rtc_next_event_ns(&d->rtc);
	struct itimerspec its = { 0 };
	if (ns >= 0) {
		if (ns == 0)
			ns = 1; /* 0 would disarm */
		its.it_value.tv_sec = ns / 1000000000;
		its.it_value.tv_nsec = ns % 1000000000;
	}
	if (d->rtc_timer >= 0)
		timerfd_settime(d->rtc_timer, 0, &its, NULL);
}

static void rtc_timer_fired(void *opaque, int fd, uint32_t events)
{
	struct vm_devices *d = opaque;
	uint64_t n;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	rtc_service(&d->rtc);
	rtc_timer_arm(d);
}

int devices_create(struct vm *vm, uint64_t *rsdp_gpa)
{
	struct vm_devices *d = calloc(1, sizeof(*d));
	int ret;
	if (!d)
		return -ENOMEM;
	d->rtc_timer = -1;
	d->loop = vm->loop;
	vm->dev = d;

	if (vm->split_irqchip && (ret = add_ioapic(vm, d)) < 0)
		goto fail;
	struct irq_line sci = vm_irq_line(vm, PM_SCI_IRQ);
	ret = pm_init(&d->pm, &sci, &vm->events);
	if (ret < 0)
		goto fail;
	d->pm_ok = true;
	bool pci = storage_nvme_count(vm->storage) > 0;
	ret = pci ? pm_register_without_reset_port(&d->pm, &vm->pio) :
		    pm_register(&d->pm, &vm->pio);
	if (ret < 0)
		goto fail;
	if (pci && (ret = add_nvme(vm, d)) < 0)
		goto fail;

	struct rtc_config rc = {
		.ram_below_4g = gmem_low_end(&vm->mem),
		.ram_above_4g = vm->mem.size - gmem_low_end(&vm->mem),
		.ncpus = vm->nvcpus,
		.kick = rtc_timer_arm,
		.kick_opaque = d,
	};
	struct irq_line rtc_irq = vm_irq_line(vm, RTC_IRQ);
	ret = rtc_init(&d->rtc, &rc, &rtc_irq);
	if (ret < 0)
		goto fail;
	d->rtc_ok = true;
	ret = rtc_register(&d->rtc, &vm->pio);
	if (ret < 0)
		goto fail;
	/* RTC interrupts (IRQ 8): a timerfd on the event loop. */
	d->rtc_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->rtc_timer < 0) {
		ret = -errno;
		goto fail;
	}
	if (vm->loop) {
		ret = evloop_add_fd(vm->loop, d->rtc_timer, EPOLLIN, rtc_timer_fired, d);
		if (ret < 0)
			goto fail;
	}

	for (unsigned i = 0; i < CLI_NUM_COM; i++) {
		if (!vm->com || !vm->com[i])
			continue;
		struct irq_line irq = vm_irq_line(vm, com_ports[i].irq);
		ret = uart_create(&irq, vm->com[i], &d->uart[i]);
		if (ret < 0)
			goto fail;
		ret = uart_register(d->uart[i], &vm->pio, com_ports[i].port);
		if (ret < 0)
			goto fail;
	}

	ret = add_acpi(vm, rsdp_gpa);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	if (ret != -ENOMEM)
		log_error("cannot create the platform devices: %s", strerror(-ret));
	return ret;
}

void devices_destroy(struct vm *vm)
{
	struct vm_devices *d = vm->dev;
	if (!d)
		return;
	for (unsigned i = 0; i < CLI_MAX_NVME; i++)
		if (d->nvme[i])
			nvme_destroy(d->nvme[i]);
	pci_bus_destroy(d->pci);
	for (unsigned i = 0; i < CLI_NUM_COM; i++)
		if (d->uart[i])
			uart_destroy(d->uart[i]);
	if (d->rtc_timer >= 0) {
		if (d->loop)
			evloop_del_fd(d->loop, d->rtc_timer);
		close(d->rtc_timer);
	}
	if (d->rtc_ok)
		rtc_destroy(&d->rtc);
	if (d->pm_ok)
		pm_destroy(&d->pm);
	vm->ioapic = NULL;
	if (d->ioapic_ok)
		ioapic_destroy(&d->ioapic);
	free(d);
	vm->dev = NULL;
}
