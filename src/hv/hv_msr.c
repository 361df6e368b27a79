/*
 * Hyper-V synthetic MSRs (TLFS 3 "Hypercall Interface" for the hypercall
 * page, 11 "Inter-Partition Communication" for the SynIC registers, 12
 * "Timers" for TIME_REF_COUNT, the reference TSC page and the frequency
 * MSRs, and the guest crash MSRs), as user-space MSR exits deliver them.
 * Every MSR of the trapped range that is not listed here gives a #GP.
 */
#include "hv/hv_impl.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <string.h>

#include "core/log.h"

/* ENDBR64; out HV_HYPERCALL_PORT, al; ret. */
static const uint8_t hypercall_code[] = {
	0xF3, 0x0F, 0x1E, 0xFA, 0xE6, HV_HYPERCALL_PORT, 0xC3,
};

/* HV_REFERENCE_TSC_PAGE (TLFS 12.7.2); naturally aligned, so not packed
 * (the sequence is accessed atomically). */
struct hv_reference_tsc_page {
	uint32_t tsc_sequence;
	uint32_t reserved1;
	uint64_t tsc_scale;
	int64_t tsc_offset;
};
_Static_assert(sizeof(struct hv_reference_tsc_page) == 24, "reference TSC page");
_Static_assert(offsetof(struct hv_reference_tsc_page, tsc_scale) == 8, "tsc_scale");

bool hv_msr_owned(uint32_t index)
{
	return index >= HV_MSR_FIRST && index <= HV_MSR_LAST;
}

static void write_hypercall_page(struct hv *hv, uint64_t msr)
{
	uint8_t *page = gmem_map(hv->p.mem, HV_PAGE_GPA(msr), HV_PAGE_SIZE);
	if (!page) {
		log_guest("hv: hypercall page at 0x%" PRIx64 " is not RAM", HV_PAGE_GPA(msr));
		return;
	}
	/* The rest of the page is int3, as on Hyper-V. */
	memset(page, 0xCC, HV_PAGE_SIZE);
	memcpy(page, hypercall_code, sizeof(hypercall_code));
}

static void write_reference_tsc_page(struct hv *hv, uint64_t msr)
{
	struct hv_reference_tsc_page *p =
		gmem_map(hv->p.mem, HV_PAGE_GPA(msr), HV_PAGE_SIZE);
	if (!p) {
		log_guest("hv: reference TSC page at 0x%" PRIx64 " is not RAM", HV_PAGE_GPA(msr));
		return;
	}
	/* Invalidate, update, then publish a valid (non-zero) sequence. */
	uint32_t seq = __atomic_load_n(&p->tsc_sequence, __ATOMIC_RELAXED);
	__atomic_store_n(&p->tsc_sequence, 0, __ATOMIC_SEQ_CST);
	p->tsc_scale = hv->tsc_scale;
	p->tsc_offset = hv->tsc_offset;
	seq++;
	if (seq == 0 || seq == 0xFFFFFFFF)
		seq = 1;
	__atomic_store_n(&p->tsc_sequence, seq, __ATOMIC_SEQ_CST);
}

int hv_reference_tsc_page_write(struct hv *hv, uint64_t gpa)
{
	if (!gmem_map(hv->p.mem, HV_PAGE_GPA(gpa), HV_PAGE_SIZE))
		return -EFAULT;
	write_reference_tsc_page(hv, gpa);
	return 0;
}

#define HV_CRASH_LINES 48

static void report_crash(struct hv *hv)
{
	/* Copies under hv->lock (caller); the message is read from guest RAM. */
	log_error("guest crash reported through the Hyper-V crash MSRs: "
		  "P0=0x%" PRIx64 " P1=0x%" PRIx64 " P2=0x%" PRIx64
		  " P3=0x%" PRIx64 " P4=0x%" PRIx64, hv->crash_p[0], hv->crash_p[1],
		  hv->crash_p[2], hv->crash_p[3], hv->crash_p[4]);
	if (hv->crash_ctl & HV_CRASH_CTL_CRASH_NOTIFY_MSG) {
		uint64_t gpa = hv->crash_p[3], len = hv->crash_p[4];
		if (len > HV_CRASH_MSG_MAX)
			len = HV_CRASH_MSG_MAX;
		static char msg[HV_CRASH_MSG_MAX + 1];
		if (len && gmem_read(hv->p.mem, gpa, msg, len) == 0) {
			msg[len] = 0;
			/*
			 * The kmsg tail ends with the panic: print its last
			 * lines, one log line each, printable characters only.
			 */
			static char *lines[HV_CRASH_MSG_MAX + 1];
			unsigned n = 0;
			char *line = msg;
			for (char *c = msg; ; c++) {
				if (*c == '\n' || *c == 0) {
					char end = *c;
					*c = 0;
					if (*line)
						lines[n++] = line;
					if (!end)
						break;
					line = c + 1;
				} else if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
					*c = '?';
				}
			}
			for (unsigned i = n > HV_CRASH_LINES ? n - HV_CRASH_LINES : 0; i < n; i++)
				log_error("guest crash message: %s", lines[i]);
		} else if (len) {
			log_error("guest crash message at 0x%" PRIx64 " (%" PRIu64
				  " bytes) is not in RAM", gpa, len);
		}
	}
}

int hv_msr_read(struct hv *hv, uint32_t vp, uint32_t index, uint64_t *val)
{
	if (!hv_vp_valid(hv, vp))
		return -EINVAL;
	struct hv_vp *v = &hv->vps[vp];
	int ret = 0;
	*val = 0;
	switch (index) {
	case HV_X64_MSR_GUEST_OS_ID:
		pthread_mutex_lock(&hv->lock);
		*val = hv->guest_os_id;
		pthread_mutex_unlock(&hv->lock);
		return 0;
	case HV_X64_MSR_HYPERCALL:
		pthread_mutex_lock(&hv->lock);
		*val = hv->hypercall;
		pthread_mutex_unlock(&hv->lock);
		return 0;
	case HV_X64_MSR_VP_INDEX:
		*val = vp;
		return 0;
	case HV_X64_MSR_TIME_REF_COUNT:
		*val = hv_time_ref_count(hv);
		return 0;
	case HV_X64_MSR_REFERENCE_TSC:
		pthread_mutex_lock(&hv->lock);
		*val = hv->reference_tsc;
		pthread_mutex_unlock(&hv->lock);
		return 0;
	case HV_X64_MSR_TSC_FREQUENCY:
		*val = hv->tsc_hz;
		return 0;
	case HV_X64_MSR_APIC_FREQUENCY:
		*val = HV_APIC_FREQUENCY_HZ;
		return 0;
	case HV_X64_MSR_TSC_INVARIANT_CONTROL:
		pthread_mutex_lock(&hv->lock);
		*val = hv->tsc_invariant;
		pthread_mutex_unlock(&hv->lock);
		return 0;
	case HV_X64_MSR_CRASH_CTL:
		*val = HV_CRASH_CTL_CRASH_NOTIFY | HV_CRASH_CTL_CRASH_NOTIFY_MSG;
		return 0;
	case HV_X64_MSR_SVERSION:
		*val = 1;
		return 0;
	default:
		break;
	}
	if (index >= HV_X64_MSR_CRASH_P0 && index <= HV_X64_MSR_CRASH_P4) {
		pthread_mutex_lock(&hv->lock);
		*val = hv->crash_p[index - HV_X64_MSR_CRASH_P0];
		pthread_mutex_unlock(&hv->lock);
		return 0;
	}
	pthread_mutex_lock(&v->lock);
	switch (index) {
	case HV_X64_MSR_VP_ASSIST_PAGE: *val = v->vp_assist; break;
	case HV_X64_MSR_SCONTROL: *val = v->scontrol; break;
	case HV_X64_MSR_SIEFP: *val = v->siefp; break;
	case HV_X64_MSR_SIMP: *val = v->simp; break;
	case HV_X64_MSR_EOM: *val = 0; break;
	default:
		if (index >= HV_X64_MSR_SINT0 && index <= HV_X64_MSR_SINT15)
			*val = v->sint[index - HV_X64_MSR_SINT0];
		else if (!hv_stimer_msr_read(hv, vp, index, val))
			ret = -EINVAL;
		break;
	}
	pthread_mutex_unlock(&v->lock);
	if (ret < 0)
		log_guest_debug("hv: vCPU %u read of unimplemented MSR 0x%x: #GP", vp, index);
	return ret;
}

static int partition_msr_write(struct hv *hv, uint32_t index, uint64_t val, bool *done)
{
	*done = true;
	switch (index) {
	case HV_X64_MSR_GUEST_OS_ID:
		hv->guest_os_id = val;
		if (!val) /* TLFS: clearing the OS id disables the hypercall page */
			hv->hypercall &= ~HV_PAGE_ENABLE;
		return 0;
	case HV_X64_MSR_HYPERCALL:
		/* Enabling needs a guest OS id first; bit 1 (locked) is kept. */
		val &= ~0xffcull;
		if (!hv->guest_os_id)
			val &= ~HV_PAGE_ENABLE;
		hv->hypercall = val;
		if (val & HV_PAGE_ENABLE)
			write_hypercall_page(hv, val);
		return 0;
	case HV_X64_MSR_REFERENCE_TSC:
		hv->reference_tsc = val & ~0xffeull;
		if (val & HV_PAGE_ENABLE)
			write_reference_tsc_page(hv, val);
		return 0;
	case HV_X64_MSR_TSC_INVARIANT_CONTROL:
		hv->tsc_invariant = val & 1;
		return 0;
	case HV_X64_MSR_CRASH_CTL:
		hv->crash_ctl = val & (HV_CRASH_CTL_CRASH_NOTIFY | HV_CRASH_CTL_CRASH_NOTIFY_MSG);
		return 0;
	default:
		if (index >= HV_X64_MSR_CRASH_P0 && index <= HV_X64_MSR_CRASH_P4) {
			hv->crash_p[index - HV_X64_MSR_CRASH_P0] = val;
			return 0;
		}
		*done = false;
		return 0;
	}
}

static bool sint_deliverable_changed(uint64_t before, uint64_t after)
{
	return (before & HV_SINT_MASKED) && !(after & HV_SINT_MASKED);
}

int hv_msr_write(struct hv *hv, uint32_t vp, uint32_t index, uint64_t val)
{
	if (!hv_vp_valid(hv, vp))
		return -EINVAL;
	switch (index) {
	case HV_X64_MSR_VP_INDEX:
	case HV_X64_MSR_TIME_REF_COUNT:
	case HV_X64_MSR_TSC_FREQUENCY:
	case HV_X64_MSR_APIC_FREQUENCY:
	case HV_X64_MSR_SVERSION:
		log_guest_debug("hv: vCPU %u write of read-only MSR 0x%x: #GP", vp, index);
		return -EINVAL;
	default:
		break;
	}
	bool done, crash = false;
	pthread_mutex_lock(&hv->lock);
	int ret = partition_msr_write(hv, index, val, &done);
	if (done && index == HV_X64_MSR_CRASH_CTL && (val & HV_CRASH_CTL_CRASH_NOTIFY)) {
		crash = !hv->crash_reported;
		hv->crash_reported = true;
		if (crash)
			report_crash(hv);
	}
	pthread_mutex_unlock(&hv->lock);
	if (crash)
		vm_event_raise(hv->p.events, VM_EVENT_CRASH);
	if (done)
		return ret;

	struct hv_vp *v = &hv->vps[vp];
	bool kick = false, drain = false;
	ret = 0;
	pthread_mutex_lock(&v->lock);
	switch (index) {
	case HV_X64_MSR_VP_ASSIST_PAGE:
		v->vp_assist = val & ~0xffeull;
		break;
	case HV_X64_MSR_SCONTROL:
		drain = !(v->scontrol & 1) && (val & 1);
		v->scontrol = val & 1;
		break;
	case HV_X64_MSR_SIEFP:
		v->siefp = val & ~0xffeull;
		break;
	case HV_X64_MSR_SIMP:
		drain = !(v->simp & HV_PAGE_ENABLE) && (val & HV_PAGE_ENABLE);
		v->simp = val & ~0xffeull;
		break;
	case HV_X64_MSR_EOM:
		drain = true;
		break;
	default:
		if (index >= HV_X64_MSR_SINT0 && index <= HV_X64_MSR_SINT15) {
			unsigned s = index - HV_X64_MSR_SINT0;
			/* Vectors 0-15 are invalid unless the SINT stays masked. */
			if (!(val & HV_SINT_MASKED) && (val & HV_SINT_VECTOR_MASK) < 16) {
				log_guest("hv: vCPU %u SINT%u vector %u: #GP", vp, s,
					  (unsigned)(val & HV_SINT_VECTOR_MASK));
				ret = -EINVAL;
				break;
			}
			drain = sint_deliverable_changed(v->sint[s], val);
			v->sint[s] = val & HV_SINT_WRITABLE;
		} else {
			ret = hv_stimer_msr_write(hv, vp, index, val, &kick);
			if (ret < 0)
				log_guest_debug("hv: vCPU %u write 0x%" PRIx64
						" to MSR 0x%x: #GP", vp, val, index);
		}
		break;
	}
	if (drain)
		hv_synic_drain_locked(hv, vp);
	pthread_mutex_unlock(&v->lock);
	if (kick)
		hv_stimer_kick(hv);
	return ret;
}
