/* Unit tests: command-line grammar, sizes, actions and their error messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/cli.h"

static enum cli_result parse(struct hvmm_config *cfg, char *err, size_t n, ...)
{
	char *argv[32] = { "hvmm" };
	int argc = 1;
	va_list ap;
	va_start(ap, n);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[argc++] = (char *)a;
	va_end(ap);
	return cli_parse(argc, argv, cfg, err, n);
}

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse_size("512MB", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(parse_size("2GB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("2g", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("1GiB", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(parse_size("1TB", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("GB", &v), -EINVAL);
	assert_int_equal(parse_size("-1GB", &v), -EINVAL);
	assert_int_equal(parse_size("1.5GB", &v), -EINVAL);
	assert_int_equal(parse_size("12XB", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("99999999999TB", &v), -ERANGE);
}

static void test_actions(void **state)
{
	(void)state;
	struct guest_action a;
	assert_int_equal(parse_guest_action("reset", &a), 0);
	assert_int_equal(a.kind, GUEST_ACTION_RESET);
	assert_int_equal(parse_guest_action("halt", &a), 0);
	assert_int_equal(a.kind, GUEST_ACTION_HALT);
	assert_int_equal(parse_guest_action("exit", &a), 0);
	assert_int_equal(a.kind, GUEST_ACTION_EXIT);
	assert_int_equal(a.code, 0);
	assert_int_equal(parse_guest_action("exit:42", &a), 0);
	assert_int_equal(a.code, 42);
	assert_int_equal(parse_guest_action("exit:", &a), -EINVAL);
	assert_int_equal(parse_guest_action("exit:256", &a), -EINVAL);
	assert_int_equal(parse_guest_action("exit:4x", &a), -EINVAL);
	assert_int_equal(parse_guest_action("reboot", &a), -EINVAL);
}

static void test_defaults_and_flags(void **state)
{
	(void)state;
	struct hvmm_config cfg;
	char err[256];
	assert_int_equal(parse(&cfg, err, sizeof(err), "-k", "vmlinux", NULL), CLI_OK);
	assert_int_equal(cfg.processors, 1);
	assert_int_equal(cfg.memory, 1ULL << 30);
	assert_null(cfg.com[0]);
	assert_int_equal(cfg.reset_action.kind, GUEST_ACTION_RESET);
	assert_int_equal(cfg.shutdown_action.kind, GUEST_ACTION_HALT);
	assert_int_equal(cfg.crash_action.kind, GUEST_ACTION_HALT);
	cli_free(&cfg);

	assert_int_equal(parse(&cfg, err, sizeof(err), "--kernel=bz", "-r", "initrd",
			       "-p", "2", "--memory", "512MB", "-c", "quiet", "--cmdline",
			       "init=/bin/sh", "-c", "x=1", "--com1", "stderr",
			       "--com3=file=/tmp/x", "--guest-crash-action", "exit:3",
			       NULL), CLI_OK);
	assert_string_equal(cfg.kernel, "bz");
	assert_string_equal(cfg.initrd, "initrd");
	assert_int_equal(cfg.processors, 2);
	assert_int_equal(cfg.memory, 512ULL << 20);
	assert_string_equal(cfg.cmdline, "quiet init=/bin/sh x=1");
	assert_string_equal(cfg.com[0], "stderr");
	assert_string_equal(cfg.com[2], "file=/tmp/x");
	assert_int_equal(cfg.crash_action.kind, GUEST_ACTION_EXIT);
	assert_int_equal(cfg.crash_action.code, 3);
	cli_free(&cfg);
}

static void expect_error(const char *needle, ...)
{
	char *argv[32] = { "hvmm" };
	int argc = 1;
	va_list ap;
	va_start(ap, needle);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[argc++] = (char *)a;
	va_end(ap);
	struct hvmm_config cfg;
	char err[256] = "";
	assert_int_equal(cli_parse(argc, argv, &cfg, err, sizeof(err)), CLI_ERROR);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	cli_free(&cfg);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("unknown option '--bogus'", "-k", "k", "--bogus", NULL);
	expect_error("unknown option '-z'", "-k", "k", "-z", NULL);
	expect_error("--processors '0'", "-k", "k", "-p", "0", NULL);
	expect_error("--processors 'two'", "-k", "k", "-p", "two", NULL);
	expect_error("--processors '241'", "-k", "k", "-p", "241", NULL);
	expect_error("--memory '1.5GB'", "-k", "k", "-m", "1.5GB", NULL);
	expect_error("--memory '1KB'", "-k", "k", "-m", "1KB", NULL);
	expect_error("--memory '2TB'", "-k", "k", "-m", "2TB", NULL);
	expect_error("multiple of 4KB", "-k", "k", "-m", "2097153", NULL);
	expect_error("needs a value", "-k", "k", "--memory", NULL);
	expect_error("needs a value", "-k", NULL);
	expect_error("--guest-reset-action", "-k", "k", "--guest-reset-action", "boom", NULL);
	expect_error("unexpected argument 'extra'", "-k", "k", "extra", NULL);
	expect_error("no guest to boot", "-m", "1GB", NULL);
}

static void test_hv_flags(void **state)
{
	(void)state;
	struct hvmm_config cfg;
	char err[256];
	assert_int_equal(parse(&cfg, err, sizeof(err), "-k", "k", NULL), CLI_OK);
	assert_false(cfg.hv);
	assert_false(cfg.no_vmbus);
	assert_int_equal(cfg.vmbus_max_version, 0);
	cli_free(&cfg);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-k", "k", "--hv", NULL), CLI_OK);
	assert_true(cfg.hv);
	assert_false(cfg.no_vmbus);
	cli_free(&cfg);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-k", "k", "--hv", "--no-vmbus", NULL),
			 CLI_OK);
	assert_true(cfg.no_vmbus);
	cli_free(&cfg);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--hv", "-k", "k",
			       "--vmbus-max-version", "5.2", NULL), CLI_OK);
	assert_int_equal(cfg.vmbus_max_version, 0x50002);
	cli_free(&cfg);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--hv", "-k", "k",
			       "--vmbus-max-version=0x40001", NULL), CLI_OK);
	assert_int_equal(cfg.vmbus_max_version, 0x40001);
	cli_free(&cfg);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--hv", "-k", "k",
			       "--vmbus-max-version", "196608", NULL), CLI_OK);
	assert_int_equal(cfg.vmbus_max_version, 0x30000);
	cli_free(&cfg);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--hv", "-k", "k",
			       "--vmbus-max-version", "0.13", NULL), CLI_OK);
	assert_int_equal(cfg.vmbus_max_version, 13);
	cli_free(&cfg);

	uint32_t v;
	assert_int_equal(parse_vmbus_version("3.0", &v), 0);
	assert_int_equal(v, 0x30000);
	static const char *const bad[] = {
		"", "5.", ".2", "5.2.1", "x", "5.x", "-1", "0", "0.0", "65536.0", "1.65536",
		"0x100000000", "5 .2", "+5.2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_vmbus_version(bad[i], &v) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(parse_vmbus_version(NULL, &v), -EINVAL);
}

static void test_hv_errors(void **state)
{
	(void)state;
	expect_error("invalid --vmbus-max-version '5.x'", "--hv", "-k", "k",
		     "--vmbus-max-version", "5.x", NULL);
	expect_error("invalid --vmbus-max-version ''", "--hv", "-k", "k",
		     "--vmbus-max-version=", NULL);
	expect_error("needs a value", "--hv", "-k", "k", "--vmbus-max-version", NULL);
	expect_error("--no-vmbus needs --hv", "-k", "k", "--no-vmbus", NULL);
	expect_error("--vmbus-max-version needs --hv", "-k", "k",
		     "--vmbus-max-version", "5.2", NULL);
	expect_error("conflicts with --no-vmbus", "-k", "k", "--hv", "--no-vmbus",
		     "--vmbus-max-version", "5.2", NULL);
	expect_error("unknown option '--hv=1'", "-k", "k", "--hv=1", NULL);
}

static void test_storage_flags(void **state)
{
	(void)state;
	struct hvmm_config cfg;
	char err[256];
	assert_int_equal(parse(&cfg, err, sizeof(err), "--hv", "-k", "k", "--disk", "a.img",
			       "--disk", "mem:1G,ro,lun=3", "--nvme-pci", "id=nv0",
			       "--disk", "file:b.img;direct,on=nv0,nsid=1", NULL), CLI_OK);
	assert_int_equal(cfg.ndisks, 3);
	assert_string_equal(cfg.disks[1], "mem:1G,ro,lun=3");
	assert_int_equal(cfg.nnvme, 1);
	assert_string_equal(cfg.nvme[0], "nv0");
	cli_free(&cfg);
	/* NVMe disks alone need no --hv. */
	assert_int_equal(parse(&cfg, err, sizeof(err), "-k", "k", "--disk", "x,on=n",
			       "--nvme-pci", "id=n", NULL), CLI_OK);
	cli_free(&cfg);

	expect_error("--disk without on= needs --hv", "-k", "k", "--disk", "a.img", NULL);
	expect_error("--disk without on= needs --hv", "-k", "k", "--hv", "--no-vmbus",
		     "--disk", "a.img", NULL);
	expect_error("invalid --disk 'mem:'", "--hv", "-k", "k", "--disk", "mem:", NULL);
	expect_error("need --vtl2", "--hv", "-k", "k", "--disk", "a.img,uh", NULL);
	expect_error("need --vtl2", "--hv", "-k", "k", "--disk", "mem:1G,uh-nvme", NULL);
	expect_error("hvmm has none", "--hv", "-k", "k", "--disk", "a.img,pcie_port=p", NULL);
	expect_error("nsid= goes with on=", "--hv", "-k", "k", "--disk", "a.img,nsid=1", NULL);
	expect_error("on=zz names no --nvme-pci", "--hv", "-k", "k", "--disk", "a.img,on=zz",
		     NULL);
	expect_error("invalid --nvme-pci 'pcie_port=x'", "-k", "k", "--nvme-pci", "pcie_port=x",
		     NULL);
	expect_error("invalid --nvme-pci 'id='", "-k", "k", "--nvme-pci", "id=", NULL);
	expect_error("given twice", "-k", "k", "--nvme-pci", "id=a", "--nvme-pci", "id=a", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_defaults_and_flags),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hv_flags),
		cmocka_unit_test(test_hv_errors),
		cmocka_unit_test(test_storage_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
