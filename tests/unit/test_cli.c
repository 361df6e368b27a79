/* Unit tests: command-line grammar, sizes, actions and their error messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "backend/net.h"
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
	expect_error("disks for VTL2) are not supported yet", "--hv", "-k", "k", "--disk", "a.img,uh", NULL);
	expect_error("disks for VTL2) are not supported yet", "--hv", "-k", "k", "--disk", "mem:1G,uh-nvme", NULL);
	expect_error("hvmm has none", "--hv", "-k", "k", "--disk", "a.img,pcie_port=p", NULL);
	expect_error("nsid= goes with on=", "--hv", "-k", "k", "--disk", "a.img,nsid=1", NULL);
	expect_error("on=zz names no --nvme-pci", "--hv", "-k", "k", "--disk", "a.img,on=zz",
		     NULL);
	expect_error("invalid --nvme-pci 'pcie_port=x'", "-k", "k", "--nvme-pci", "pcie_port=x",
		     NULL);
	expect_error("invalid --nvme-pci 'id='", "-k", "k", "--nvme-pci", "id=", NULL);
	expect_error("given twice", "-k", "k", "--nvme-pci", "id=a", "--nvme-pci", "id=a", NULL);
}

static void test_net_flags(void **state)
{
	(void)state;
	struct hvmm_config cfg;
	char err[256];
	assert_int_equal(parse(&cfg, err, sizeof(err), "--hv", "-k", "k", "--nic", "--net",
			       "tap:tap0", "--net", "queues=2:consomme:192.168.7.0/24,"
			       "hostfwd=tcp::8080-:80", "--net", "none", NULL), CLI_OK);
	assert_int_equal(cfg.nnets, 4);
	assert_string_equal(cfg.nets[0], "consomme");
	assert_string_equal(cfg.nets[1], "tap:tap0");
	assert_string_equal(cfg.nets[3], "none");
	cli_free(&cfg);

	expect_error("--nic and --net need --hv", "-k", "k", "--nic", NULL);
	expect_error("--nic and --net need --hv", "-k", "k", "--net", "consomme", NULL);
	expect_error("--nic and --net need --hv", "-k", "k", "--hv", "--no-vmbus", "--nic", NULL);
	expect_error("uh: (a NIC for VTL2) is not supported yet", "--hv", "-k", "k",
		     "--net", "uh:consomme", NULL);
	expect_error("vtl2: (a NIC for VTL2) is not supported yet", "--hv", "-k", "k", "--net", "vtl2:tap:t0", NULL);
	expect_error("hvmm has none", "--hv", "-k", "k", "--net", "pcie_port=p0:consomme", NULL);
	expect_error("too many --net/--nic (at most 4)", "--hv", "-k", "k", "--nic", "--nic",
		     "--nic", "--nic", "--nic", NULL);
	expect_error("invalid --net 'bogus': unknown backend 'bogus'", "--hv", "-k", "k",
		     "--net", "bogus", NULL);
	expect_error("invalid --net 'consomme:10.0.0.0'", "--hv", "-k", "k", "--net",
		     "consomme:10.0.0.0", NULL);
	expect_error("invalid --net 'dio': dio is a Windows backend", "--hv", "-k", "k",
		     "--net", "dio", NULL);
	expect_error("option --net needs a value", "--hv", "-k", "k", "--net", NULL);
	expect_error("unknown option '--nic=1'", "--hv", "-k", "k", "--nic=1", NULL);
}

static int net_parse(const char *s, struct net_cli_spec *ns, char *err)
{
	memset(err, 0, 256);
	int ret = net_cli_spec_parse(s, ns, err, 256);
	if (ret < 0)
		assert_null(strchr(err, '\n'));
	return ret;
}

static void expect_net_error(const char *spec, const char *needle)
{
	struct net_cli_spec ns;
	char err[256];
	assert_int_equal(net_parse(spec, &ns, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' does not mention '%s'", spec, err, needle);
}

static void test_net_spec(void **state)
{
	(void)state;
	struct net_cli_spec ns;
	char err[256];

	assert_int_equal(net_parse("consomme", &ns, err), 0);
	assert_int_equal(ns.backend.kind, NET_BACKEND_CONSOMME);
	assert_int_equal(ns.backend.network, 0x0a000000);
	assert_int_equal(ns.backend.prefix, 24);
	assert_int_equal(net_consomme_gateway(&ns.backend), 0x0a000001);
	assert_int_equal(net_consomme_guest(&ns.backend), 0x0a000002);
	assert_int_equal(net_consomme_dns(&ns.backend), 0x0a0000fe);
	assert_int_equal(ns.backend.nfwd, 0);
	assert_int_equal(ns.queues, 1);
	assert_false(ns.uh || ns.vtl2 || ns.pcie_port);

	/* Host bits are dropped, as a network address is meant. */
	assert_int_equal(net_parse("consomme:172.16.5.9/16", &ns, err), 0);
	assert_int_equal(ns.backend.network, 0xac100000);
	assert_int_equal(ns.backend.prefix, 16);
	assert_int_equal(net_consomme_dns(&ns.backend), 0xac10fffe);

	assert_int_equal(net_parse("uh:vtl2:queues=4:pcie_port=rp0:consomme:10.1.2.0/24,"
				   "hostfwd=tcp:127.0.0.1:2222-:22,"
				   "hostfwd=udp::5353-10.1.2.9:53", &ns, err), 0);
	assert_true(ns.uh && ns.vtl2 && ns.pcie_port);
	assert_int_equal(ns.queues, 4);
	assert_int_equal(ns.backend.nfwd, 2);
	assert_false(ns.backend.fwd[0].udp);
	assert_int_equal(ns.backend.fwd[0].host_addr, htonl(0x7f000001));
	assert_int_equal(ns.backend.fwd[0].host_port, 2222);
	assert_int_equal(ns.backend.fwd[0].guest_addr, 0);
	assert_int_equal(ns.backend.fwd[0].guest_port, 22);
	assert_true(ns.backend.fwd[1].udp);
	assert_int_equal(ns.backend.fwd[1].host_addr, 0);
	assert_int_equal(ns.backend.fwd[1].guest_addr, htonl(0x0a010209));
	assert_int_equal(ns.backend.fwd[1].guest_port, 53);

	/* hostfwd without a CIDR: the default network. */
	assert_int_equal(net_parse("consomme,hostfwd=tcp::65535-:1", &ns, err), 0);
	assert_int_equal(ns.backend.fwd[0].host_port, 65535);
	assert_int_equal(ns.backend.prefix, 24);

	assert_int_equal(net_parse("tap:tap0", &ns, err), 0);
	assert_int_equal(ns.backend.kind, NET_BACKEND_TAP);
	assert_string_equal(ns.backend.tap, "tap0");
	assert_int_equal(net_parse("queues=16:tap:a-very-long-nm", &ns, err), 0);
	assert_int_equal(ns.queues, 16);
	assert_int_equal(net_parse("none", &ns, err), 0);
	assert_int_equal(ns.backend.kind, NET_BACKEND_NONE);

	expect_net_error("", "no backend");
	expect_net_error("uh:", "no backend");
	expect_net_error("nonex", "unknown backend 'nonex'");
	expect_net_error("none,x", "unknown backend");
	expect_net_error("consommex", "unknown backend 'consommex'");
	expect_net_error("dio:xyz", "Windows");
	expect_net_error("tap:", "not an interface name");
	expect_net_error("tap:0123456789abcdef", "not an interface name");
	expect_net_error("tap:a/b", "not an interface name");
	expect_net_error("tap:a:b", "not an interface name");
	expect_net_error("tap:..", "not an interface name");
	expect_net_error("queues=0:consomme", "queues= needs a number from 1 to 16");
	expect_net_error("queues=17:consomme", "queues=");
	expect_net_error("queues=x:consomme", "queues=");
	expect_net_error("queues=2", "queues=");
	expect_net_error("queues=2:queues=2:consomme", "given twice");
	expect_net_error("pcie_port=:consomme", "pcie_port=");
	expect_net_error("consomme:", "is not a CIDR");
	expect_net_error("consomme:10.0.0.0", "is not a CIDR");
	expect_net_error("consomme:10.0.0/24", "is not a CIDR");
	expect_net_error("consomme:10.0.0.0/33", "is not a CIDR");
	expect_net_error("consomme:10.0.0.0/-1", "is not a CIDR");
	expect_net_error("consomme:10.0.0.0/24x", "is not a CIDR");
	expect_net_error("consomme:10.0.0.0/28", "prefix /28 out of range");
	expect_net_error("consomme:0.0.0.0/0", "prefix /0 out of range");
	expect_net_error("consomme,foo=1", "unknown option 'foo=1'");
	expect_net_error("consomme,", "unknown option ''");
	expect_net_error("consomme,hostfwd=", "expected tcp: or udp:");
	expect_net_error("consomme,hostfwd=sctp::1-:2", "expected tcp: or udp:");
	expect_net_error("consomme,hostfwd=tcp:8080:80", "expected PROTO:");
	expect_net_error("consomme,hostfwd=tcp::8080-80", "expected PROTO:");
	expect_net_error("consomme,hostfwd=tcp::0-:80", "bad host port '0'");
	expect_net_error("consomme,hostfwd=tcp::65536-:80", "bad host port");
	expect_net_error("consomme,hostfwd=tcp::-:80", "bad host port ''");
	expect_net_error("consomme,hostfwd=tcp::80-:", "bad guest port ''");
	expect_net_error("consomme,hostfwd=tcp::80-:99999999999", "bad guest port");
	expect_net_error("consomme,hostfwd=tcp:localhost:80-:80", "bad host address 'localhost'");
	expect_net_error("consomme,hostfwd=tcp:1.2.3.4.5:80-:80", "bad host address");
	expect_net_error("consomme,hostfwd=tcp::80-10.0.0:80", "bad guest address");
	expect_net_error("consomme,hostfwd=tcp::80-192.168.1.2:80", "not a guest address");
	expect_net_error("consomme,hostfwd=tcp::80-10.0.0.1:80", "not a guest address");
	expect_net_error("consomme,hostfwd=tcp::80-10.0.0.255:80", "not a guest address");
	expect_net_error("consomme,hostfwd=tcp::80-10.0.0.254:80", "not a guest address");
	expect_net_error("consomme,hostfwd=tcp::80-10.0.0.0:80", "not a guest address");
	expect_net_error("consomme,hostfwd=tcp::80-:80,hostfwd=tcp::80-:81", "forwarded twice");
	/* The same port for TCP and UDP, or on two host addresses, is fine. */
	assert_int_equal(net_parse("consomme,hostfwd=tcp::80-:80,hostfwd=udp::80-:80,"
				   "hostfwd=tcp:127.0.0.1:80-:81", &ns, err), 0);
	char many[1024] = "consomme";
	for (int i = 0; i < NET_MAX_HOSTFWD + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 ",hostfwd=tcp::%d-:80", 1000 + i);
	expect_net_error(many, "too many hostfwd=");
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
		cmocka_unit_test(test_net_flags),
		cmocka_unit_test(test_net_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
