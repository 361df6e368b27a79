/*
 * The VM's disks and their controllers (see storage.h). Disks are placed as
 * OpenVMM places them: without on=, on the default VMBus SCSI controller
 * (instance 0); with on=NAME, on that --vmbus-scsi controller (instances 1..,
 * in command-line order) or namespace of that --nvme-pci controller; on a
 * SCSI controller at lun=N or the lowest free LUN.
 */
#include "core/storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/disk.h"
#include "core/cli.h"
#include "core/gmem.h"
#include "core/inspect.h"
#include "core/log.h"
#include "dev/storvsp.h"

/* A VMBus SCSI controller: [0] the default one, [1..] --vmbus-scsi. */
struct scsi_ctrl {
	char name[32];
	bool present;                            /* offered (the default: with disks) */
	unsigned sub_channels;
	struct storvsp_lun_config luns[CLI_MAX_DISKS];
	unsigned n;
	bool used[STORVSP_MAX_LUNS];
	struct storvsp *sv;
};

struct storage {
	struct disk *disks[CLI_MAX_DISKS];      /* all, for closing */
	unsigned ndisks;
	struct scsi_ctrl scsi[CLI_MAX_SCSI + 1];
	struct {
		char name[32];
		struct disk *ns[CLI_MAX_DISKS];
		unsigned n;
	} nvme[CLI_MAX_NVME];
	unsigned nnvme;
};

/* An NVMe disk: namespace nsid (or the next) of controller `on`. */
static int add_nvme(struct storage *st, const char *spec, const struct disk_cli_spec *ds,
		    struct disk *d)
{
	for (unsigned i = 0; i < st->nnvme; i++) {
		if (strcmp(st->nvme[i].name, ds->on))
			continue;
		unsigned next = st->nvme[i].n + 1;
		if (ds->nsid >= 0 && ds->nsid != next) {
			log_error("--disk '%s': nsid=%lld, but the next namespace of %s is %u "
				  "(give disks in nsid order)", spec, (long long)ds->nsid, ds->on, next);
			return -EINVAL;
		}
		st->nvme[i].ns[st->nvme[i].n++] = d;
		log_debug("disk %s is namespace %u of NVMe %s", disk_describe(d), next, ds->on);
		return 0;
	}
	return -ENOENT; /* the CLI checked on= */
}

/* The SCSI controller a disk with on=`on` goes to ("": the default), or NULL. */
static struct scsi_ctrl *scsi_for(struct storage *st, const char *on)
{
	if (!on[0])
		return &st->scsi[0];
	for (unsigned i = 1; i <= CLI_MAX_SCSI; i++)
		if (st->scsi[i].present && !strcmp(st->scsi[i].name, on))
			return &st->scsi[i];
	return NULL;
}

int storage_open(const struct hvmm_config *cfg, struct storage **out)
{
	struct storage *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nnvme; i++)
		snprintf(st->nvme[i].name, sizeof(st->nvme[i].name), "%s", cfg->nvme[i]);
	st->nnvme = cfg->nnvme;
	snprintf(st->scsi[0].name, sizeof(st->scsi[0].name), "the default SCSI controller");
	st->scsi[0].sub_channels = cfg->scsi_sub_channels;
	for (unsigned i = 0; i < cfg->nscsi && i < CLI_MAX_SCSI; i++) {
		snprintf(st->scsi[i + 1].name, sizeof(st->scsi[i + 1].name), "%s",
			 cfg->scsi[i].name);
		st->scsi[i + 1].sub_channels = cfg->scsi[i].sub_channels;
		st->scsi[i + 1].present = true;
	}
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
			struct scsi_ctrl *sc = scsi_for(st, ds.on);
			if (!sc) {
				/* NVMe namespaces, in command-line order, in the first pass. */
				if (pass == 1) {
					disk_cli_spec_free(&ds);
					continue;
				}
				struct disk *d;
				ret = disk_open(&ds.kind, ds.ro, &d, err, sizeof(err));
				if (ret < 0) {
					log_error("--disk '%s': %s", cfg->disks[i], err);
				} else {
					st->disks[st->ndisks++] = d;
					ret = add_nvme(st, cfg->disks[i], &ds, d);
				}
				disk_cli_spec_free(&ds);
				continue;
			}
			if ((pass == 0) != (ds.lun >= 0)) {
				disk_cli_spec_free(&ds);
				continue;
			}
			int64_t lun = ds.lun;
			if (lun >= STORVSP_MAX_LUNS || (lun >= 0 && sc->used[lun])) {
				log_error("--disk '%s': LUN %lld is %s", cfg->disks[i], (long long)lun,
					  lun >= STORVSP_MAX_LUNS ? "out of range" : "taken");
				disk_cli_spec_free(&ds);
				ret = -EINVAL;
				break;
			}
			for (lun = lun < 0 ? 0 : lun; lun < STORVSP_MAX_LUNS && sc->used[lun]; lun++)
				;
			if (lun >= STORVSP_MAX_LUNS) {
				log_error("--disk '%s': no free LUN left on %s", cfg->disks[i], sc->name);
				disk_cli_spec_free(&ds);
				ret = -EINVAL;
				break;
			}
			struct disk *d;
			ret = disk_open(&ds.kind, ds.ro, &d, err, sizeof(err));
			if (ret < 0) {
				log_error("--disk '%s': %s", cfg->disks[i], err);
				disk_cli_spec_free(&ds);
				break;
			}
			sc->used[lun] = true;
			sc->present = true;
			st->disks[st->ndisks++] = d;
			sc->luns[sc->n] = (struct storvsp_lun_config){
				.disk = d, .lun = (uint16_t)lun, .dvd = ds.dvd, .read_only = ds.ro,
			};
			sc->n++;
			log_debug("disk %s on SCSI LUN %lld of %s", disk_describe(d), (long long)lun,
				  sc->name);
			disk_cli_spec_free(&ds);
		}
	}
	for (unsigned i = 0; ret == 0 && i < st->nnvme; i++) {
		if (!st->nvme[i].n) {
			log_error("--nvme-pci id=%s has no disks (give --disk ...,on=%s)",
				  st->nvme[i].name, st->nvme[i].name);
			ret = -EINVAL;
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
	for (unsigned i = 0; i < st->ndisks; i++)
		disk_close(st->disks[i]);
	free(st);
}

/* ---- inspect (static configuration and atomic counters: no lock) ---- */

static void inspect_disk(struct inspect *in, void *opaque)
{
	struct disk *d = opaque;
	struct disk_stats ds;
	disk_get_stats(d, &ds);
	inspect_str(in, "backend", disk_describe(d));
	inspect_u64(in, "size_bytes", disk_size(d));
	inspect_bool(in, "read_only", disk_is_read_only(d));
	inspect_bool(in, "discard", disk_can_discard(d));
	inspect_u64(in, "reads", ds.reads);
	inspect_u64(in, "writes", ds.writes);
	inspect_u64(in, "flushes", ds.flushes);
	inspect_u64(in, "discards", ds.discards);
	inspect_u64(in, "write_zeroes", ds.write_zeroes);
	inspect_u64(in, "bytes_read", ds.bytes_read);
	inspect_u64(in, "bytes_written", ds.bytes_written);
}

static void inspect_lun(struct inspect *in, void *opaque)
{
	const struct storvsp_lun_config *l = opaque;
	inspect_bool(in, "dvd", l->dvd);
	inspect_disk(in, l->disk); /* read_only: the disk's (a LUN is ro when its disk is) */
}

static void inspect_scsi(struct inspect *in, void *opaque)
{
	struct scsi_ctrl *sc = opaque;
	inspect_u64(in, "sub_channels", sc->sub_channels);
	for (unsigned i = 0; i < sc->n; i++)
		inspect_child_index(in, sc->luns[i].lun, inspect_lun, &sc->luns[i]);
}

struct nvme_ctrl_view {
	struct storage *st;
	unsigned i;
};

static void inspect_nvme(struct inspect *in, void *opaque)
{
	const struct nvme_ctrl_view *v = opaque;
	for (unsigned n = 0; n < v->st->nvme[v->i].n; n++)
		inspect_child_index(in, n + 1, inspect_disk, v->st->nvme[v->i].ns[n]);
}

static void inspect_scsi_all(struct inspect *in, void *opaque)
{
	struct storage *st = opaque;
	for (unsigned i = 0; i <= CLI_MAX_SCSI; i++)
		if (st->scsi[i].present)
			inspect_child(in, i == 0 ? "default" : st->scsi[i].name, inspect_scsi,
				      &st->scsi[i]);
}

static void inspect_nvme_all(struct inspect *in, void *opaque)
{
	struct storage *st = opaque;
	for (unsigned i = 0; i < st->nnvme; i++) {
		struct nvme_ctrl_view v = { st, i };
		inspect_child(in, st->nvme[i].name, inspect_nvme, &v);
	}
}

void storage_inspect(struct storage *st, struct inspect *in)
{
	inspect_u64(in, "disks", st->ndisks);
	inspect_child(in, "scsi", inspect_scsi_all, st);
	inspect_child(in, "nvme", inspect_nvme_all, st);
}

static void *map_page(void *opaque, uint64_t gpa, uint64_t len)
{
	return gmem_map(opaque, gpa, len);
}

int storage_attach_vmbus(struct storage *st, struct vmbus_server *srv,
			 const struct gmem *mem)
{
	for (unsigned i = 0; st && i <= CLI_MAX_SCSI; i++) {
		struct scsi_ctrl *sc = &st->scsi[i];
		if (!sc->present)
			continue;
		/* The instance number makes each controller's instance GUID distinct. */
		struct storvsp_config cfg = {
			.instance = i, .luns = sc->luns, .nluns = sc->n,
			.sub_channels = sc->sub_channels,
			.map = map_page, .map_opaque = (void *)mem,
			.host = &storvsp_thread_host,
		};
		int ret = storvsp_create(srv, &cfg, &sc->sv);
		if (ret < 0) {
			log_error("cannot create VMBus SCSI controller %s: %s",
				  i ? sc->name : "0", strerror(-ret));
			return ret; /* the caller destroys the server, then detaches */
		}
	}
	return 0;
}

void storage_detach_vmbus(struct storage *st)
{
	if (!st)
		return;
	for (unsigned i = 0; i <= CLI_MAX_SCSI; i++) {
		storvsp_destroy(st->scsi[i].sv);
		st->scsi[i].sv = NULL;
	}
}

unsigned storage_nvme_count(const struct storage *st)
{
	return st ? st->nnvme : 0;
}

const char *storage_nvme_name(const struct storage *st, unsigned i)
{
	return st->nvme[i].name;
}

unsigned storage_nvme_disks(const struct storage *st, unsigned i, struct disk ***disks)
{
	*disks = (struct disk **)st->nvme[i].ns;
	return st->nvme[i].n;
}
