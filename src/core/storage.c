/*
 * The VM's disks and their controllers (see storage.h). Disks are placed as
 * OpenVMM places a --disk without a controller name: on VMBus SCSI
 * controller 0, at lun=N or the lowest free LUN.
 */
#include "core/storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/disk.h"
#include "core/cli.h"
#include "core/gmem.h"
#include "core/log.h"
#include "dev/storvsp.h"

struct storage {
	struct disk *disks[CLI_MAX_DISKS];
	struct storvsp_lun_config luns[CLI_MAX_DISKS];
	unsigned n;
	struct storvsp *scsi;
};

int storage_open(const struct hvmm_config *cfg, struct storage **out)
{
	struct storage *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	bool used[STORVSP_MAX_LUNS] = { false };
	int ret = 0;
	/* Explicit lun= first, so the others fill the gaps. */
	for (int pass = 0; pass < 2 && ret == 0; pass++) {
		for (unsigned i = 0; i < cfg->ndisks && ret == 0; i++) {
			struct disk_cli_spec ds;
			char err[512];
			ret = disk_cli_spec_parse(cfg->disks[i], &ds, err, sizeof(err));
			if (ret < 0) {
				log_error("invalid --disk '%s': %s", cfg->disks[i], err);
				break;
			}
			if ((pass == 0) != (ds.lun >= 0)) {
				disk_cli_spec_free(&ds);
				continue;
			}
			int64_t lun = ds.lun;
			if (lun >= STORVSP_MAX_LUNS || (lun >= 0 && used[lun])) {
				log_error("--disk '%s': LUN %lld is %s", cfg->disks[i], (long long)lun,
					  lun >= STORVSP_MAX_LUNS ? "out of range" : "taken");
				disk_cli_spec_free(&ds);
				ret = -EINVAL;
				break;
			}
			for (lun = lun < 0 ? 0 : lun; lun < STORVSP_MAX_LUNS && used[lun]; lun++)
				;
			struct disk *d;
			ret = disk_open(&ds.kind, ds.ro, &d, err, sizeof(err));
			if (ret < 0) {
				log_error("--disk '%s': %s", cfg->disks[i], err);
				disk_cli_spec_free(&ds);
				break;
			}
			used[lun] = true;
			st->disks[st->n] = d;
			st->luns[st->n] = (struct storvsp_lun_config){
				.disk = d, .lun = (uint16_t)lun, .dvd = ds.dvd, .read_only = ds.ro,
			};
			st->n++;
			log_debug("disk %s on SCSI LUN %lld", disk_describe(d), (long long)lun);
			disk_cli_spec_free(&ds);
		}
	}
	if (ret < 0) {
		storage_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

void storage_close(struct storage *st)
{
	if (!st)
		return;
	storage_detach_vmbus(st);
	for (unsigned i = 0; i < st->n; i++)
		disk_close(st->disks[i]);
	free(st);
}

static void *map_page(void *opaque, uint64_t gpa, uint64_t len)
{
	return gmem_map(opaque, gpa, len);
}

int storage_attach_vmbus(struct storage *st, struct vmbus_server *srv,
			 const struct gmem *mem)
{
	if (!st || !st->n)
		return 0;
	struct storvsp_config cfg = {
		.instance = 0, .luns = st->luns, .nluns = st->n,
		.map = map_page, .map_opaque = (void *)mem,
	};
	int ret = storvsp_create(srv, &cfg, &st->scsi);
	if (ret < 0)
		log_error("cannot create the VMBus SCSI controller: %s", strerror(-ret));
	return ret;
}

void storage_detach_vmbus(struct storage *st)
{
	if (!st)
		return;
	storvsp_destroy(st->scsi);
	st->scsi = NULL;
}
