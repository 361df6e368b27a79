/*
 * igvmparam: checks, from inside the guest, the IGVM parameters a loader
 * filled (IGVM directive semantics: ../shared/docs/igvm-and-vsm.md part A,
 * "Parameter areas"). Built into a NATIVE IGVM file by
 *   hvmm-igvm build --elf igvmparam.elf --param cmdline@0x10000
 *     --param vp_count@0x11000 --param memory_map@0x12000
 *     --param mmio_ranges@0x13000 --param madt@0x14000:2
 *     --param environment_info@0x16000 --param device_tree@0x18000:4
 * and booted with `hvmm --igvm FILE -p N -m SIZE -c "vps=N mem=MIB igvm=ok"`:
 * the command line must carry igvm=ok, VP_COUNT must equal vps, the memory
 * map (24-byte entries, zero-terminated) must be sorted RAM ending at mem
 * MiB with the legacy hole, MMIO_RANGES must name the 32-bit hole, the MADT
 * must list vps local APICs, the DEVICE_TREE must have vps cpu nodes, one
 * memory node per memory map entry and the command line as bootargs, and
 * ENVIRONMENT_INFO must be 0. Every area is
 * treated as untrusted (bounded walks). The loader's own command line does
 * not reach guest_start (RSI is 0), so this guest reads only the areas.
 */
#include "guest.h"

const char guest_name[] = "igvmparam";

#define P_CMDLINE 0x10000ULL
#define P_VP_COUNT 0x11000ULL
#define P_MEMORY_MAP 0x12000ULL
#define P_MMIO 0x13000ULL
#define P_MADT 0x14000ULL
#define P_ENV 0x16000ULL
#define P_DT 0x18000ULL
#define P_DT_SIZE 0x4000u
#define MAP_MAX (4096 / 24)

static u32 be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

/* Value of "key=" in the space-separated line s (copied, bounded). */
static bool kv(const char *s, const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key);
	while (*s) {
		while (*s == ' ')
			s++;
		const char *tok = s;
		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - tok) > kl && !strncmp(tok, key, kl) && tok[kl] == '=') {
			size_t n = (size_t)(s - tok) - kl - 1;
			if (n >= size)
				n = size - 1;
			memcpy(buf, tok + kl + 1, n);
			buf[n] = 0;
			return true;
		}
	}
	return false;
}

static u64 rd64(u64 gpa)
{
	return *(volatile const u64 *)gpa;
}

int guest_main(const char *unused)
{
	(void)unused;
	char line[512], v[32];
	const char *cl = (const char *)P_CMDLINE;
	size_t n = strnlen(cl, sizeof(line) - 1);
	memcpy(line, cl, n);
	line[n] = 0;
	printf("IGVM COMMAND_LINE: \"%s\"\n", line);

	TEST_BEGIN("cmdline");
	expect(kv(line, "igvm", v, sizeof(v)) && !strcmp(v, "ok"), "no igvm=ok in \"%s\"", line);
	u64 vps = 0, mib = 0;
	expect(kv(line, "vps", v, sizeof(v)) && parse_u64(v, &vps) && vps, "no vps=N");
	expect(kv(line, "mem", v, sizeof(v)) && parse_u64(v, &mib) && mib, "no mem=MIB");

	TEST_BEGIN("vp_count");
	u32 count = *(volatile const u32 *)P_VP_COUNT;
	printf("IGVM VP_COUNT: %u\n", count);
	expect(count == vps, "VP_COUNT %u, expected %lu", count, (unsigned long)vps);

	TEST_BEGIN("memory_map");
	u64 total = 0, prev_end = 0, last_end = 0;
	unsigned i;
	for (i = 0; i < MAP_MAX; i++) {
		u64 e = P_MEMORY_MAP + 24ULL * i;
		u64 start = rd64(e), pages = rd64(e + 8);
		u16 type = *(volatile const u16 *)(e + 16);
		if (!pages)
			break;
		printf("IGVM MEMORY_MAP[%u]: page 0x%lx, %lu pages, type %u\n", i,
		       (unsigned long)start, (unsigned long)pages, type);
		expect(type == 0, "entry %u has type %u, not MEMORY", i, type);
		expect(i == 0 || start >= prev_end, "entry %u not sorted", i);
		prev_end = last_end = start + pages;
		total += pages;
	}
	expect(i > 0 && i < MAP_MAX, "%u entries (no terminator?)", i);
	u64 want_pages = mib * 256;
	if (mib < 3072) {
		expect(last_end == want_pages, "RAM ends at page 0x%lx, expected 0x%lx",
		       (unsigned long)last_end, (unsigned long)want_pages);
		/* Everything but the 0x9f000-0x100000 legacy hole. */
		expect(total == want_pages - (0x100 - 0x9f), "%lu RAM pages, expected %lu",
		       (unsigned long)total, (unsigned long)(want_pages - (0x100 - 0x9f)));
	}

	TEST_BEGIN("mmio_ranges");
	expect(rd64(P_MMIO) == 0xc0000 && rd64(P_MMIO + 8) == 0x40000,
	       "first MMIO range page 0x%lx + %lu pages", (unsigned long)rd64(P_MMIO),
	       (unsigned long)rd64(P_MMIO + 8));

	TEST_BEGIN("madt");
	const u8 *madt = (const u8 *)P_MADT;
	u32 len = *(const u32 *)(madt + 4);
	unsigned lapics = 0;
	if (expect(!memcmp(madt, "APIC", 4), "no MADT signature") &&
	    expect(len >= 44 && len <= 8192, "MADT length %u", len)) {
		u8 sum = 0;
		for (u32 k = 0; k < len; k++)
			sum = (u8)(sum + madt[k]);
		expect(sum == 0, "MADT checksum off by %u", sum);
		for (u32 off = 44; off + 2 <= len && madt[off + 1] >= 2; off += madt[off + 1])
			lapics += madt[off] == 0; /* Processor Local APIC */
		expect(lapics == vps, "%u local APICs, expected %lu", lapics, (unsigned long)vps);
	}

	TEST_BEGIN("device_tree");
	const u8 *dt = (const u8 *)P_DT;
	u32 st = be32(dt + 8), tsize = be32(dt + 36), strs = be32(dt + 12), ssize = be32(dt + 32);
	unsigned cpus = 0, mems = 0, depth = 0;
	bool bootargs_ok = false, end = false;
	if (expect(be32(dt) == 0xd00dfeed, "no FDT magic") &&
	    expect(st + tsize <= P_DT_SIZE && strs + ssize <= P_DT_SIZE, "FDT blocks too large")) {
		for (u32 off = st; off + 4 <= st + tsize && !end;) {
			u32 t = be32(dt + off);
			off += 4;
			if (t == 1) { /* FDT_BEGIN_NODE */
				const char *name = (const char *)dt + off;
				size_t nl = strnlen(name, 64);
				cpus += depth == 2 && !strncmp(name, "cpu@", 4);
				mems += depth == 1 && !strncmp(name, "memory@", 7);
				off += ((u32)nl + 4) & ~3u;
				depth++;
			} else if (t == 3) { /* FDT_PROP */
				u32 len = be32(dt + off), no = be32(dt + off + 4);
				if (no < ssize && !strcmp((const char *)dt + strs + no, "bootargs") &&
				    len < sizeof(line)) {
					char ba[512];
					memcpy(ba, dt + off + 8, len);
					ba[len ? len - 1 : 0] = 0;
					bootargs_ok = !strcmp(ba, line);
				}
				off += 8 + ((len + 3) & ~3u);
			} else if (t == 2) { /* FDT_END_NODE */
				depth--;
			} else {
				end = t == 9;
				break;
			}
		}
		printf("IGVM DEVICE_TREE: %u cpu nodes, %u memory nodes\n", cpus, mems);
		expect(end, "no FDT_END token");
		expect(cpus == vps, "%u cpu nodes, expected %lu", cpus, (unsigned long)vps);
		expect(mems == i, "%u memory nodes, the memory map has %u", mems, i);
		expect(bootargs_ok, "/chosen/bootargs is not the command line");
	}

	TEST_BEGIN("environment_info");
	expect(*(volatile const u32 *)P_ENV == 0, "ENVIRONMENT_INFO 0x%x",
	       *(volatile const u32 *)P_ENV);
	return 0;
}
