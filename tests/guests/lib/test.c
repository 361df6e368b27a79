/*
 * Test-guest runtime: the C entry point called by lib/entry.S, the command
 * line (Linux boot_params.hdr.cmd_line_ptr or PVH hvm_start_info
 * .cmdline_paddr), the TEST/expect reporting API and power-off (hvmm's
 * ACPI PM1a control block at 0x604 with SLP_TYP=5|SLP_EN, then QEMU's
 * isa-debug-exit at 0xf4).
 *
 * Output lines, one per event:
 *   hvmm-test-guest <name>: boot=<linux64|pvh> cmdline="<...>"
 *   TEST <name> PASS | TEST <name> FAIL: <reason> (<file>:<line>)
 *   GUEST-RESULT: <N> passed, <M> failed
 */
#include "guest.h"

#define CMDLINE_MAX 4096
#define REASON_MAX 200
#define PM1A_CNT_PORT 0x604
#define PM1A_SLP_S5 0x3400 /* SLP_TYP=5 << 10 | SLP_EN */
#define DEBUG_EXIT_PORT 0xf4

void guest_start(u32 proto, u64 info);
void cpu_init(void);

static char cmdline[CMDLINE_MAX];

static const char *cur_test;
static bool cur_failed;
static char cur_reason[REASON_MAX];
static unsigned n_passed, n_failed;

static void cmdline_copy(u64 paddr)
{
	const char *src = (const char *)paddr;
	size_t i;

	if (!paddr || paddr >= (4ULL << 30) - CMDLINE_MAX)
		return;
	for (i = 0; i < CMDLINE_MAX - 1 && src[i]; i++)
		cmdline[i] = src[i];
	cmdline[i] = '\0';
}

void guest_start(u32 proto, u64 info)
{
	const char *how = "unknown";
	int rc;

	console_init();
	cpu_init();
	if (proto == BOOT_PROTO_LINUX64 && info) {
		const u8 *bp = (const u8 *)info;
		u64 ptr = *(const u32 *)(bp + BP_CMD_LINE_PTR) |
			  (u64)*(const u32 *)(bp + BP_EXT_CMD_LINE_PTR) << 32;

		how = "linux64";
		cmdline_copy(ptr);
	} else if (proto == BOOT_PROTO_PVH && info &&
		   *(const u32 *)info == XEN_HVM_START_MAGIC) {
		how = "pvh";
		cmdline_copy(*(const u64 *)(info + HVM_START_CMDLINE_PADDR));
	}
	printf("hvmm-test-guest %s: boot=%s cmdline=\"%s\"\n", guest_name, how,
	       cmdline);
	rc = guest_main(cmdline);
	if (rc)
		printf("guest_main returned %d\n", rc);
	guest_exit(rc != 0);
}

const char *cmdline_get(void)
{
	return cmdline;
}

bool cmdline_str(const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		const char *tok = p, *end;

		while (*p && *p != ' ')
			p++;
		end = p;
		while (*p == ' ')
			p++;
		if ((size_t)(end - tok) < klen || strncmp(tok, key, klen))
			continue;
		if (tok + klen == end || tok[klen] == '=') {
			const char *v = tok + klen + (tok + klen < end);
			size_t n = (size_t)(end - v);

			if (size) {
				if (n >= size)
					n = size - 1;
				memcpy(buf, v, n);
				buf[n] = '\0';
			}
			return true;
		}
	}
	return false;
}

bool parse_u64(const char *s, u64 *out)
{
	u64 v = 0, exp = 0;
	unsigned base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		v = v * base + d;
	}
	if (base == 10 && (*s == 'e' || *s == 'E')) {
		if (!*++s)
			return false;
		for (; *s >= '0' && *s <= '9'; s++)
			exp = exp * 10 + (u64)(*s - '0');
		while (exp--)
			v *= 10;
	}
	if (*s)
		return false;
	*out = v;
	return true;
}

u64 cmdline_u64(const char *key, u64 def)
{
	char buf[32];
	u64 v;

	if (!cmdline_str(key, buf, sizeof(buf)) || !parse_u64(buf, &v))
		return def;
	return v;
}

static const char *file_base(const char *path)
{
	const char *b = path;

	for (; *path; path++)
		if (*path == '/')
			b = path + 1;
	return b;
}

void test_end(void)
{
	if (!cur_test)
		return;
	if (cur_failed) {
		n_failed++;
		printf("TEST %s FAIL: %s\n", cur_test, cur_reason);
	} else {
		n_passed++;
		printf("TEST %s PASS\n", cur_test);
	}
	cur_test = NULL;
}

void test_begin(const char *name)
{
	test_end();
	cur_test = name;
	cur_failed = false;
	cur_reason[0] = '\0';
}

bool test_expect(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ok)
		return true;
	if (!cur_test)
		test_begin(guest_name);
	if (cur_failed)
		return false;
	cur_failed = true;
	va_start(ap, fmt);
	n = vsnprintf(cur_reason, sizeof(cur_reason), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cur_reason))
		n = (int)strlen(cur_reason);
	snprintf(cur_reason + n, sizeof(cur_reason) - (size_t)n, " (%s:%d)",
		 file_base(file), line);
	return false;
}

unsigned test_passed(void)
{
	return n_passed;
}

unsigned test_failed(void)
{
	return n_failed;
}

static void print_result(void)
{
	printf("GUEST-RESULT: %u passed, %u failed\n", n_passed, n_failed);
}

void guest_exit(unsigned extra_failures)
{
	test_end();
	n_failed += extra_failures;
	print_result();
	poweroff(n_failed ? EXIT_FAIL : EXIT_PASS);
}

void guest_abort(const char *why)
{
	if (cur_test) {
		if (!cur_failed)
			snprintf(cur_reason, sizeof(cur_reason), "%s", why);
		cur_failed = true;
		test_end();
	} else {
		n_failed++;
	}
	print_result();
	poweroff(EXIT_FATAL);
}

void poweroff(u32 status)
{
	console_flush();
	outw(PM1A_CNT_PORT, PM1A_SLP_S5);
	outl(DEBUG_EXIT_PORT, status);
	for (;;) {
		if (cpu_cpl() == 0)
			__asm__ volatile("cli; hlt");
		else
			cpu_relax();
	}
}
