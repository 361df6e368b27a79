/*
 * hvmm's command line: OpenVMM's flags (shared/docs/openvmm-cli-flags.md)
 * for the parts hvmm implements. Parsing only checks grammar and ranges;
 * files are opened later. Every error is one line naming the problem.
 */
#ifndef HVMM_CORE_CLI_H
#define HVMM_CORE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_PROCESSORS 240
#define CLI_MIN_MEMORY (2ULL << 20)
#define CLI_MAX_MEMORY (1ULL << 40)
#define CLI_NUM_COM 4
#define CLI_MAX_DISKS 16
#define CLI_MAX_NVME 4
#define CLI_MAX_SCSI 4          /* --vmbus-scsi controllers besides the default */
#define CLI_MAX_SCSI_SUB_CHANNELS 63
#define CLI_MAX_NICS 4

enum guest_action_kind { GUEST_ACTION_RESET, GUEST_ACTION_HALT, GUEST_ACTION_EXIT };

struct guest_action {
	enum guest_action_kind kind;
	int code; /* exit status for GUEST_ACTION_EXIT */
};

struct hvmm_config {
	unsigned processors;
	uint64_t memory;
	const char *kernel;
	const char *initrd;
	const char *igvm;       /* --igvm FILE (then kernel and initrd are NULL) */
	char *cmdline;          /* the -c strings joined with spaces (malloc'd) */
	const char *com[CLI_NUM_COM]; /* serial specs; NULL = default */
	struct guest_action reset_action, shutdown_action, crash_action;
	bool hv;                    /* --hv: Hyper-V enlightenments (src/hv) */
	bool vtl2;                  /* --vtl2: the IGVM file's VTL2 under VTL0 (core/vtl.c) */
	int igvm_reloc;             /* --igvm-vtl2-relocation-type: enum igvm_reloc_type (0 disable, 1 absolute, 2 auto, 3 vtl2) */
	uint64_t igvm_reloc_addr;   /* its absolute=ADDR */
	uint64_t igvm_reloc_size;   /* its auto=SIZE / vtl2=SIZE (0: filesize) */
	bool no_vmbus;              /* --no-vmbus: Hyper-V without VMBus */
	uint32_t vmbus_max_version; /* --vmbus-max-version: major<<16|minor; 0 = newest */
	const char *disks[CLI_MAX_DISKS]; /* --disk specs (syntax checked) */
	unsigned ndisks;
	char nvme[CLI_MAX_NVME][32];      /* --nvme-pci id=NAME controllers */
	unsigned nnvme;
	struct {                          /* --vmbus-scsi id=NAME[,sub_channels=K] */
		char name[32];
		unsigned sub_channels;
	} scsi[CLI_MAX_SCSI];
	unsigned nscsi;
	unsigned scsi_sub_channels;       /* --scsi-sub-channels: the default controller's */
	const char *nets[CLI_MAX_NICS];   /* --net specs (syntax checked); --nic = "consomme" */
	unsigned nnets;
	const char *vsock_path;       /* --vmbus-vsock-path: hybrid vsock relay socket */
};

enum cli_result { CLI_OK = 0, CLI_EXIT_SUCCESS = 1, CLI_ERROR = -1 };

/*
 * Parses argv into cfg (defaults first). CLI_EXIT_SUCCESS after --help or
 * --version was printed to stdout; CLI_ERROR with a message in err.
 */
enum cli_result cli_parse(int argc, char **argv, struct hvmm_config *cfg,
			  char *err, size_t errlen);
void cli_free(struct hvmm_config *cfg);

/*
 * Sizes as OpenVMM writes them: a number with an optional binary suffix
 * K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (any case); no suffix = bytes.
 * 0 or -EINVAL / -ERANGE.
 */
int parse_size(const char *s, uint64_t *out);

/* reset | halt | exit[:CODE]. 0 or -EINVAL. */
int parse_guest_action(const char *s, struct guest_action *out);

/* VMBus version as `5.2` or a number (0x50002 / 327682). 0 or -EINVAL. */
int parse_vmbus_version(const char *s, uint32_t *out);

void cli_usage(FILE *f);

#endif
