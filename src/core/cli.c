/*
 * Command-line parsing with getopt_long, OpenVMM's spellings. Defaults as in
 * OpenVMM: 1 processor, 1 GB, COM1 on the console, reset action "reset",
 * shutdown and crash actions "halt".
 */
#include "core/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/disk.h"
#include "backend/net.h"

#ifndef HVMM_VERSION
#define HVMM_VERSION "0.1.0"
#endif

static enum cli_result cli_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum cli_result cli_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return CLI_ERROR;
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *suffix; unsigned shift; } units[] = {
		{ "", 0 }, { "b", 0 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
		{ "t", 40 }, { "tb", 40 }, { "tib", 40 },
	};
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix))
			continue;
		if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*out = (uint64_t)v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int parse_guest_action(const char *s, struct guest_action *out)
{
	if (!strcmp(s, "reset")) {
		*out = (struct guest_action){ GUEST_ACTION_RESET, 0 };
		return 0;
	}
	if (!strcmp(s, "halt")) {
		*out = (struct guest_action){ GUEST_ACTION_HALT, 0 };
		return 0;
	}
	if (!strcmp(s, "exit")) {
		*out = (struct guest_action){ GUEST_ACTION_EXIT, 0 };
		return 0;
	}
	if (!strncmp(s, "exit:", 5) && isdigit((unsigned char)s[5])) {
		char *end;
		errno = 0;
		long code = strtol(s + 5, &end, 10);
		if (*end || errno || code < 0 || code > 255)
			return -EINVAL;
		*out = (struct guest_action){ GUEST_ACTION_EXIT, (int)code };
		return 0;
	}
	return -EINVAL;
}

int parse_vmbus_version(const char *s, uint32_t *out)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	const char *dot = strchr(s, '.');
	if (dot) {
		unsigned long major = strtoul(s, &end, 10);
		if (errno || end != dot || major > 0xffff || !isdigit((unsigned char)dot[1]))
			return -EINVAL;
		unsigned long minor = strtoul(dot + 1, &end, 10);
		if (errno || *end || minor > 0xffff)
			return -EINVAL;
		*out = (uint32_t)(major << 16 | minor);
	} else {
		unsigned long long v = strtoull(s, &end, 0);
		if (errno || *end || v > 0xffffffffull)
			return -EINVAL;
		*out = (uint32_t)v;
	}
	return *out ? 0 : -EINVAL;
}

void cli_usage(FILE *f)
{
	fputs(
"usage: hvmm [OPTIONS]\n"
"\n"
"Runs a virtual machine on KVM with OpenVMM's command line.\n"
"\n"
"Core:\n"
"  -p, --processors N        number of virtual processors [1]\n"
"  -m, --memory SIZE         guest memory, e.g. 512MB, 2GB [1GB]\n"
"\n"
"Linux direct boot:\n"
"  -k, --kernel FILE         bzImage or uncompressed 64-bit ELF vmlinux\n"
"  -r, --initrd FILE         initramfs (gzip, xz, lzma, lz4, zstd or plain cpio)\n"
"  -c, --cmdline STR         extra kernel command line (repeatable, joined with\n"
"                            spaces; hvmm puts `panic=-1` first and\n"
"                            `console=ttyS0` when a COM port is `console`)\n"
"\n"
"IGVM boot (instead of -k/-r):\n"
"  --igvm FILE               load an IGVM file (NATIVE platform); -c, also\n"
"                            spelled --igvm-cmdline, fills its COMMAND_LINE\n"
"  --igvm-personality P      linux-direct [default] | uefi (not supported yet)\n"
"  --vtl2                    run the IGVM file's VTL2 under VTL0 (needs --hv)\n"
"  --igvm-vtl2-relocation-type T  disable [default] | absolute=ADDR |\n"
"                            auto=filesize|SIZE | vtl2=filesize|SIZE (with --vtl2)\n"
"\n"
"Serial ports (16550A; COM1 0x3F8/IRQ4, COM2 0x2F8/IRQ3, COM3 0x3E8/IRQ4,\n"
"COM4 0x2E8/IRQ3):\n"
"  --com1 SERIAL .. --com4 SERIAL\n"
"                            SERIAL is none | console | stderr | file=PATH |\n"
"                            listen=PATH | listen=tcp:IP:PORT |\n"
"                            term[=PROGRAM][,name=TITLE]\n"
"                            [com1=console, others none]\n"
"\n"
"Lifecycle (ACTION is reset | halt | exit[:CODE]):\n"
"  --guest-reset-action ACTION     on a guest reboot [reset]\n"
"  --guest-shutdown-action ACTION  on a guest power-off [halt]\n"
"  --guest-crash-action ACTION     on a triple fault or a guest panic [halt]\n"
"\n"
"Hyper-V:\n"
"  --hv                      Hyper-V enlightenments (HV#1: synthetic MSRs,\n"
"                            hypercalls, SynIC, timers, crash MSRs) and VMBus\n"
"  --no-vmbus                with --hv: no VMBus (no ACPI VMBus device)\n"
"  --vmbus-max-version V     newest VMBus version offered, as 5.2 or a number\n"
"                            (0x50002) [newest]\n"
"\n"
"Storage:\n"
"  --disk KIND[,FLAGS][,OPT=V]  a disk on the VMBus SCSI controller (needs --hv);\n"
"                            repeatable. KIND: file:PATH[;direct][;create=SIZE],\n"
"                            PATH, mem:SIZE, memdiff:KIND. FLAGS: ro, dvd.\n"
"                            OPT: on=NAME puts it on that --vmbus-scsi (with\n"
"                            lun=N, 0..63) or --nvme-pci (with nsid=N)\n"
"                            controller; lun=N alone: on the default SCSI\n"
"                            controller. (uh, uh-nvme, vtl2 need --vtl2)\n"
"  --vmbus-scsi id=NAME[,sub_channels=K]  another VMBus SCSI controller for\n"
"                            disks with on=NAME; K (0..63) extra queues the\n"
"                            guest may open (VMBus sub-channels) [0]\n"
"  --scsi-sub-channels K     sub-channels of the default SCSI controller [0]\n"
"  --nvme-pci id=NAME        an NVMe controller on PCI for disks with on=NAME\n"
"\n"
"Networking (a VMBus NIC, needs --hv; at most 4):\n"
"  --nic                     a NIC on consomme (same as --net consomme)\n"
"  --net [queues=N:]BACKEND  a NIC; repeatable. BACKEND: none |\n"
"                            consomme[:CIDR][,hostfwd=tcp|udp:[ADDR]:HOSTPORT-\n"
"                            [ADDR]:GUESTPORT]... (user-mode NAT, default\n"
"                            10.0.0.0/24, host loopback at .1) | tap:NAME.\n"
"                            (uh:, vtl2: need --vtl2)\n"
"\n"
"VMBus sockets (need --hv):\n"
"  --vmbus-vsock-path PATH   relay guest hv_sock (vsock) connections to the Unix\n"
"                            socket PATH: clients send CONNECT <port>; guest\n"
"                            connects reach PATH_<port> (alias --vsock-path)\n"
"  --vmbus-vtl2-vsock-path PATH  the same for VTL2 (not supported yet; alias\n"
"                            --vtl2-vsock-path)\n"
"\n"
"  -h, --help                print this help and exit\n"
"  -V, --version             print the version and exit\n"
"\n"
"Environment: HVMM_LOG=error|warn|info|debug sets the log level;\n"
"HVMM_CACHE_DIR is where decompressed kernels are cached (empty: off).\n"
"See docs/CLI.md for details.\n", f);
}

enum {
	OPT_COM1 = 0x100, OPT_COM2, OPT_COM3, OPT_COM4,
	OPT_RESET_ACTION, OPT_SHUTDOWN_ACTION, OPT_CRASH_ACTION,
	OPT_HV, OPT_NO_VMBUS, OPT_VMBUS_MAX_VERSION, OPT_DISK, OPT_NVME_PCI,
	OPT_VMBUS_SCSI, OPT_SCSI_SUB_CHANNELS,
	OPT_NIC, OPT_NET,
	OPT_VSOCK_PATH, OPT_VTL2_VSOCK_PATH,
	OPT_IGVM, OPT_IGVM_PERSONALITY, OPT_IGVM_RELOC, OPT_VTL2,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "processors", required_argument, NULL, 'p' },
	{ "memory", required_argument, NULL, 'm' },
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'r' },
	{ "cmdline", required_argument, NULL, 'c' },
	{ "igvm", required_argument, NULL, OPT_IGVM },
	{ "vtl2", no_argument, NULL, OPT_VTL2 },
	{ "igvm-cmdline", required_argument, NULL, 'c' },
	{ "igvm-personality", required_argument, NULL, OPT_IGVM_PERSONALITY },
	{ "igvm-vtl2-relocation-type", required_argument, NULL, OPT_IGVM_RELOC },
	{ "com1", required_argument, NULL, OPT_COM1 },
	{ "com2", required_argument, NULL, OPT_COM2 },
	{ "com3", required_argument, NULL, OPT_COM3 },
	{ "com4", required_argument, NULL, OPT_COM4 },
	{ "guest-reset-action", required_argument, NULL, OPT_RESET_ACTION },
	{ "guest-shutdown-action", required_argument, NULL, OPT_SHUTDOWN_ACTION },
	{ "guest-crash-action", required_argument, NULL, OPT_CRASH_ACTION },
	{ "hv", no_argument, NULL, OPT_HV },
	{ "no-vmbus", no_argument, NULL, OPT_NO_VMBUS },
	{ "vmbus-max-version", required_argument, NULL, OPT_VMBUS_MAX_VERSION },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "nvme-pci", required_argument, NULL, OPT_NVME_PCI },
	{ "vmbus-scsi", required_argument, NULL, OPT_VMBUS_SCSI },
	{ "scsi-sub-channels", required_argument, NULL, OPT_SCSI_SUB_CHANNELS },
	{ "nic", no_argument, NULL, OPT_NIC },
	{ "net", required_argument, NULL, OPT_NET },
	{ "vmbus-vsock-path", required_argument, NULL, OPT_VSOCK_PATH },
	{ "vsock-path", required_argument, NULL, OPT_VSOCK_PATH },
	{ "vmbus-vtl2-vsock-path", required_argument, NULL, OPT_VTL2_VSOCK_PATH },
	{ "vtl2-vsock-path", required_argument, NULL, OPT_VTL2_VSOCK_PATH },
	{ NULL, 0, NULL, 0 },
};

static int append_cmdline(struct hvmm_config *cfg, const char *s)
{
	size_t old = cfg->cmdline ? strlen(cfg->cmdline) : 0;
	char *p = realloc(cfg->cmdline, old + strlen(s) + 2);
	if (!p)
		return -ENOMEM;
	if (old)
		p[old++] = ' ';
	strcpy(p + old, s);
	cfg->cmdline = p;
	return 0;
}

/* "--name" or "-c" of the option getopt_long just returned. */
static const char *opt_label(int c, int longindex, char *buf, size_t len)
{
	if (longindex >= 0)
		snprintf(buf, len, "--%s", long_opts[longindex].name);
	else
		snprintf(buf, len, "-%c", c);
	return buf;
}


/* --vmbus-scsi id=NAME[,sub_channels=K][,vtl2] (OpenVMM's spelling). */
static enum cli_result parse_vmbus_scsi(struct hvmm_config *cfg, const char *arg, char *err,
					size_t errlen)
{
	if (cfg->nscsi >= CLI_MAX_SCSI)
		return cli_fail(err, errlen, "too many --vmbus-scsi (at most %d)", CLI_MAX_SCSI);
	char name[32] = "";
	unsigned long k = 0;
	const char *p = arg;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > 3 && !strncmp(p, "id=", 3) && n - 3 < sizeof(name)) {
			memcpy(name, p + 3, n - 3);
			name[n - 3] = 0;
		} else if (n > 13 && !strncmp(p, "sub_channels=", 13)) {
			char num[16] = "";
			char *e;
			if (n - 13 >= sizeof(num))
				goto bad;
			memcpy(num, p + 13, n - 13);
			errno = 0;
			k = strtoul(num, &e, 0);
			if (errno || *e || num[0] == '-' || k > CLI_MAX_SCSI_SUB_CHANNELS)
				return cli_fail(err, errlen, "invalid --vmbus-scsi '%s': sub_channels "
						"must be 0..%d", arg, CLI_MAX_SCSI_SUB_CHANNELS);
		} else if (n == 4 && !strncmp(p, "vtl2", 4)) {
			return cli_fail(err, errlen, "--vmbus-scsi '%s': vtl2 (a controller for "
					"VTL2) is not supported yet", arg);
		} else {
			goto bad;
		}
		p += n + (end ? 1 : 0);
	}
	if (!name[0])
		goto bad;
	for (unsigned i = 0; i < cfg->nscsi; i++)
		if (!strcmp(cfg->scsi[i].name, name))
			return cli_fail(err, errlen, "--vmbus-scsi id=%s given twice", name);
	memcpy(cfg->scsi[cfg->nscsi].name, name, sizeof(name));
	cfg->scsi[cfg->nscsi].sub_channels = (unsigned)k;
	cfg->nscsi++;
	return CLI_OK;
bad:
	return cli_fail(err, errlen, "invalid --vmbus-scsi '%s': expected "
			"id=NAME[,sub_channels=K]", arg);
}

/*
 * Where each --disk goes: on=NAME names a --vmbus-scsi or an --nvme-pci
 * controller (names unique across both), lun= goes with SCSI and nsid=
 * with NVMe; explicit LUNs are unique per SCSI controller.
 */
static enum cli_result check_disk_placement(struct hvmm_config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->nscsi; i++)
		for (unsigned j = 0; j < cfg->nnvme; j++)
			if (!strcmp(cfg->scsi[i].name, cfg->nvme[j]))
				return cli_fail(err, errlen, "controller id %s is both a --vmbus-scsi "
						"and an --nvme-pci", cfg->nvme[j]);
	bool default_scsi = false;
	/* Explicit LUNs per SCSI controller (0: the default one). */
	uint64_t luns[CLI_MAX_SCSI + 1] = { 0 };
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		struct disk_cli_spec ds;
		char derr[256];
		if (disk_cli_spec_parse(cfg->disks[i], &ds, derr, sizeof(derr)) < 0)
			return cli_fail(err, errlen, "invalid --disk '%s': %s", cfg->disks[i], derr);
		int scsi = ds.on[0] ? -1 : 0;
		bool nvme = false;
		for (unsigned j = 0; j < cfg->nscsi && scsi < 0; j++)
			if (!strcmp(ds.on, cfg->scsi[j].name))
				scsi = (int)j + 1;
		for (unsigned j = 0; j < cfg->nnvme && scsi < 0 && !nvme; j++)
			nvme = !strcmp(ds.on, cfg->nvme[j]);
		int64_t lun = ds.lun, nsid = ds.nsid;
		char on[64];
		snprintf(on, sizeof(on), "%s", ds.on);
		disk_cli_spec_free(&ds);
		if (scsi < 0 && !nvme)
			return cli_fail(err, errlen, "--disk '%s': on=%s names no --nvme-pci or "
					"--vmbus-scsi controller", cfg->disks[i], on);
		if (nvme && lun >= 0)
			return cli_fail(err, errlen, "--disk '%s': lun= goes with a SCSI controller; "
					"%s is an --nvme-pci (use nsid=)", cfg->disks[i], on);
		if (scsi >= 0 && nsid >= 0)
			return cli_fail(err, errlen, "--disk '%s': nsid= goes with on=NVME-ID",
					cfg->disks[i]);
		if (scsi < 0)
			continue;
		default_scsi |= scsi == 0;
		if (lun < 0)
			continue;
		if (lun > 63)
			return cli_fail(err, errlen, "--disk '%s': lun=%lld is out of range (0..63)",
					cfg->disks[i], (long long)lun);
		if (luns[scsi] & (1ull << lun))
			return cli_fail(err, errlen, "--disk '%s': LUN %lld is taken on %s",
					cfg->disks[i], (long long)lun,
					scsi ? cfg->scsi[scsi - 1].name : "the default SCSI controller");
		luns[scsi] |= 1ull << lun;
	}
	if (default_scsi && (!cfg->hv || cfg->no_vmbus))
		return cli_fail(err, errlen, "--disk without on= needs --hv and VMBus (it goes "
				"on the VMBus SCSI controller)");
	if (cfg->nscsi && (!cfg->hv || cfg->no_vmbus))
		return cli_fail(err, errlen, "--vmbus-scsi needs --hv and VMBus (storvsp is a "
				"VMBus device)");
	return CLI_OK;
}
enum cli_result cli_parse(int argc, char **argv, struct hvmm_config *cfg,
			  char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->processors = 1;
	cfg->memory = 1ULL << 30;
	cfg->reset_action = (struct guest_action){ GUEST_ACTION_RESET, 0 };
	cfg->shutdown_action = (struct guest_action){ GUEST_ACTION_HALT, 0 };
	cfg->crash_action = (struct guest_action){ GUEST_ACTION_HALT, 0 };

	optind = 0; /* 0, not 1: glibc then resets its state from earlier calls */
	opterr = 0;
	int c, li = -1;
	char label[64];
	while ((c = getopt_long(argc, argv, ":hVp:m:k:r:c:", long_opts, &li)) != -1) {
		switch (c) {
		case 'h':
			cli_usage(stdout);
			return CLI_EXIT_SUCCESS;
		case 'V':
			printf("hvmm %s\n", HVMM_VERSION);
			return CLI_EXIT_SUCCESS;
		case 'p': {
			char *end;
			errno = 0;
			unsigned long n = strtoul(optarg, &end, 10);
			if (!isdigit((unsigned char)*optarg) || *end || errno || n == 0 ||
			    n > CLI_MAX_PROCESSORS)
				return cli_fail(err, errlen,
						"invalid --processors '%s': expected 1 to %u",
						optarg, CLI_MAX_PROCESSORS);
			cfg->processors = (unsigned)n;
			break;
		}
		case 'm': {
			uint64_t sz;
			int ret = parse_size(optarg, &sz);
			if (ret < 0)
				return cli_fail(err, errlen,
						"invalid --memory '%s': expected a size like 512MB or 2GB",
						optarg);
			if (sz < CLI_MIN_MEMORY || sz > CLI_MAX_MEMORY)
				return cli_fail(err, errlen,
						"invalid --memory '%s': must be between 2MB and 1TB",
						optarg);
			if (sz % 4096)
				return cli_fail(err, errlen,
						"invalid --memory '%s': must be a multiple of 4KB",
						optarg);
			cfg->memory = sz;
			break;
		}
		case 'k':
			cfg->kernel = optarg;
			break;
		case 'r':
			cfg->initrd = optarg;
			break;
		case 'c':
			if (append_cmdline(cfg, optarg) < 0)
				return cli_fail(err, errlen, "out of memory");
			break;
		case OPT_VTL2:
			cfg->vtl2 = true;
			break;
		case OPT_IGVM:
			if (!*optarg)
				return cli_fail(err, errlen, "--igvm needs a path");
			cfg->igvm = optarg;
			break;
		case OPT_IGVM_PERSONALITY:
			if (!strcmp(optarg, "uefi"))
				return cli_fail(err, errlen, "--igvm-personality uefi is not supported "
						"yet (only linux-direct)");
			if (strcmp(optarg, "linux-direct"))
				return cli_fail(err, errlen, "invalid --igvm-personality '%s': expected "
						"linux-direct or uefi", optarg);
			break;
		case OPT_IGVM_RELOC: { /* enum igvm_reloc_type: 0 disable, 1 absolute, 2 auto, 3 vtl2 */
			char *end;
			uint64_t v;
			cfg->igvm_reloc = 0;
			if (!strcmp(optarg, "disable"))
				break;
			if (!strncmp(optarg, "absolute=", 9)) {
				errno = 0;
				v = strtoull(optarg + 9, &end, 0);
				if (!isdigit((unsigned char)optarg[9]) || errno || *end || v % 4096)
					return cli_fail(err, errlen, "--igvm-vtl2-relocation-type %s: ADDR "
							"must be a 4 KiB aligned address", optarg);
				cfg->igvm_reloc = 1;
				cfg->igvm_reloc_addr = v;
				break;
			}
			if (!strncmp(optarg, "auto=", 5)) {
				v = 0;
				if (strcmp(optarg + 5, "filesize") && (parse_size(optarg + 5, &v) ||
				    !v || v % (2u << 20)))
					return cli_fail(err, errlen, "--igvm-vtl2-relocation-type %s: expected "
							"auto=filesize or auto=SIZE, a multiple of 2 MiB", optarg);
				cfg->igvm_reloc = 2;
				cfg->igvm_reloc_size = v;
				break;
			}
			if (!strncmp(optarg, "vtl2=", 5)) {
				v = 0;
				if (strcmp(optarg + 5, "filesize") && (parse_size(optarg + 5, &v) ||
				    !v || v % (2u << 20)))
					return cli_fail(err, errlen, "--igvm-vtl2-relocation-type %s: expected "
							"vtl2=filesize or vtl2=SIZE, a multiple of 2 MiB", optarg);
				cfg->igvm_reloc = 3;
				cfg->igvm_reloc_size = v;
				break;
			}
			return cli_fail(err, errlen, "invalid --igvm-vtl2-relocation-type '%s': "
					"expected disable, absolute=ADDR, auto=... or vtl2=...", optarg);
		}
		case OPT_COM1: case OPT_COM2: case OPT_COM3: case OPT_COM4:
			cfg->com[c - OPT_COM1] = optarg;
			break;
		case OPT_RESET_ACTION: case OPT_SHUTDOWN_ACTION: case OPT_CRASH_ACTION: {
			struct guest_action *a = c == OPT_RESET_ACTION ? &cfg->reset_action :
				c == OPT_SHUTDOWN_ACTION ? &cfg->shutdown_action :
				&cfg->crash_action;
			if (parse_guest_action(optarg, a) < 0)
				return cli_fail(err, errlen,
						"invalid %s '%s': expected reset, halt or exit[:CODE]",
						opt_label(c, li, label, sizeof(label)), optarg);
			break;
		}
		case OPT_HV:
			cfg->hv = true;
			break;
		case OPT_NO_VMBUS:
			cfg->no_vmbus = true;
			break;
		case OPT_VMBUS_MAX_VERSION:
			if (parse_vmbus_version(optarg, &cfg->vmbus_max_version) < 0)
				return cli_fail(err, errlen,
						"invalid --vmbus-max-version '%s': expected MAJOR.MINOR "
						"like 5.2 or a number like 0x50002", optarg);
			break;
		case OPT_DISK: {
			struct disk_cli_spec ds;
			char derr[256];
			if (disk_cli_spec_parse(optarg, &ds, derr, sizeof(derr)) < 0)
				return cli_fail(err, errlen, "invalid --disk '%s': %s", optarg, derr);
			bool needs_vtl2 = ds.uh || ds.uh_nvme || ds.vtl2;
			bool port = ds.pcie_port[0];
			bool nsid_alone = ds.nsid >= 0 && !ds.on[0];
			disk_cli_spec_free(&ds);
			if (needs_vtl2)
				return cli_fail(err, errlen, "--disk '%s': uh, uh-nvme and vtl2 (disks "
						"for VTL2) are not supported yet", optarg);
			if (port)
				return cli_fail(err, errlen, "--disk '%s': pcie_port= names a PCIe "
						"port, and hvmm has none (use on=NVME-ID)", optarg);
			if (nsid_alone)
				return cli_fail(err, errlen, "--disk '%s': nsid= goes with on=NVME-ID",
						optarg);
			if (cfg->ndisks >= CLI_MAX_DISKS)
				return cli_fail(err, errlen, "too many --disk (at most %d)",
						CLI_MAX_DISKS);
			cfg->disks[cfg->ndisks++] = optarg;
			break;
		}
		case OPT_VMBUS_SCSI: {
			int r = parse_vmbus_scsi(cfg, optarg, err, errlen);
			if (r != CLI_OK)
				return r;
			break;
		}
		case OPT_SCSI_SUB_CHANNELS: {
			char *end;
			errno = 0;
			unsigned long k = strtoul(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    k > CLI_MAX_SCSI_SUB_CHANNELS)
				return cli_fail(err, errlen, "invalid --scsi-sub-channels '%s': expected "
						"0..%d", optarg, CLI_MAX_SCSI_SUB_CHANNELS);
			cfg->scsi_sub_channels = (unsigned)k;
			break;
		}
		case OPT_NVME_PCI: {
			const char *id = !strncmp(optarg, "id=", 3) ? optarg + 3 : NULL;
			size_t n = id ? strlen(id) : 0;
			if (!id || !n || n >= sizeof(cfg->nvme[0]) || strchr(id, ','))
				return cli_fail(err, errlen, "invalid --nvme-pci '%s': expected id=NAME "
						"(pcie_port= and vpci are not supported)", optarg);
			for (unsigned i = 0; i < cfg->nnvme; i++)
				if (!strcmp(cfg->nvme[i], id))
					return cli_fail(err, errlen, "--nvme-pci id=%s given twice", id);
			if (cfg->nnvme >= CLI_MAX_NVME)
				return cli_fail(err, errlen, "too many --nvme-pci (at most %d)",
						CLI_MAX_NVME);
			memcpy(cfg->nvme[cfg->nnvme++], id, n + 1);
			break;
		}
		case OPT_NIC:
		case OPT_NET: {
			const char *spec = c == OPT_NIC ? "consomme" : optarg;
			struct net_cli_spec ns;
			char nerr[256];
			if (net_cli_spec_parse(spec, &ns, nerr, sizeof(nerr)) < 0)
				return cli_fail(err, errlen, "invalid --net '%s': %s", spec, nerr);
			if (ns.uh || ns.vtl2)
				return cli_fail(err, errlen, "--net '%s': %s (a NIC for VTL2) is not "
						"supported yet", spec, ns.uh ? "uh:" : "vtl2:");
			if (ns.pcie_port)
				return cli_fail(err, errlen, "--net '%s': pcie_port= names a PCIe "
						"port, and hvmm has none (its NIC is on VMBus)", spec);
			if (cfg->nnets >= CLI_MAX_NICS)
				return cli_fail(err, errlen, "too many --net/--nic (at most %d)",
						CLI_MAX_NICS);
			cfg->nets[cfg->nnets++] = spec;
			break;
		}
		case OPT_VSOCK_PATH:
			if (!*optarg)
				return cli_fail(err, errlen, "%s needs a path",
						opt_label(c, li, label, sizeof(label)));
			cfg->vsock_path = optarg;
			break;
		case OPT_VTL2_VSOCK_PATH:
			return cli_fail(err, errlen, "%s (vsock for VTL2) is not supported yet",
					opt_label(c, li, label, sizeof(label)));
		case ':':
			/* optopt holds the short letter or the long option's value */
			if (optopt > 0 && optopt < 0x100)
				return cli_fail(err, errlen, "option -%c needs a value", optopt);
			return cli_fail(err, errlen, "option %s needs a value",
					argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 0x100)
				return cli_fail(err, errlen, "unknown option '-%c'", optopt);
			return cli_fail(err, errlen, "unknown option '%s'",
					argv[optind - 1]);
		}
		li = -1;
	}
	if (optind < argc)
		return cli_fail(err, errlen, "unexpected argument '%s'", argv[optind]);
	if (cfg->igvm && (cfg->kernel || cfg->initrd))
		return cli_fail(err, errlen, "--igvm conflicts with -k/--kernel and -r/--initrd");
	if (!cfg->kernel && !cfg->igvm)
		return cli_fail(err, errlen,
				"no guest to boot: give a kernel with -k/--kernel or an --igvm file");
	if (cfg->vtl2 && (!cfg->hv || !cfg->igvm))
		return cli_fail(err, errlen, "--vtl2 needs --hv and --igvm (a VSM_ISOLATION file "
				"whose VTL2 runs beneath VTL0)");
	if (cfg->igvm_reloc && !cfg->vtl2)
		return cli_fail(err, errlen,
				"--igvm-vtl2-relocation-type absolute=/auto=/vtl2= needs --vtl2");
	if (cfg->no_vmbus && !cfg->hv)
		return cli_fail(err, errlen, "--no-vmbus needs --hv");
	if (cfg->vmbus_max_version && !cfg->hv)
		return cli_fail(err, errlen, "--vmbus-max-version needs --hv");
	if (cfg->vmbus_max_version && cfg->no_vmbus)
		return cli_fail(err, errlen, "--vmbus-max-version conflicts with --no-vmbus");
	int r = check_disk_placement(cfg, err, errlen);
	if (r != CLI_OK)
		return r;
	if (cfg->nnets && (!cfg->hv || cfg->no_vmbus))
		return cli_fail(err, errlen, "--nic and --net need --hv and VMBus (the NIC is "
				"a VMBus device, netvsp)");
	if (cfg->vsock_path && (!cfg->hv || cfg->no_vmbus))
		return cli_fail(err, errlen, "--vmbus-vsock-path needs --hv and VMBus (the relay "
				"speaks hv_sock over VMBus)");
	if (cfg->initrd && !cfg->kernel)
		return cli_fail(err, errlen, "--initrd needs --kernel");
	return CLI_OK;
}

void cli_free(struct hvmm_config *cfg)
{
	free(cfg->cmdline);
	cfg->cmdline = NULL;
}
