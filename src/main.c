/*
 * hvmm entry point: parse the command line, open the serial backends, run
 * the VM. Exit status: the guest action's (0 after a power-off by default),
 * 2 for bad command-line input or guest images, 1 for host failures, 128+N
 * when stopped by signal N.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/chardev.h"
#include "core/cli.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/vm.h"

static void set_log_level(void)
{
	const char *s = getenv("HVMM_LOG");
	if (!s)
		return;
	if (!strcasecmp(s, "error"))
		log_level = LOG_ERROR;
	else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
		log_level = LOG_WARN;
	else if (!strcasecmp(s, "info"))
		log_level = LOG_INFO;
	else if (!strcasecmp(s, "debug"))
		log_level = LOG_DEBUG;
}

struct signal_ctx {
	sigset_t set;
	struct vm *vm;
};

/* Host signals become an orderly stop of the VM on the main thread. */
static void *signal_thread(void *arg)
{
	struct signal_ctx *ctx = arg;
	int sig;
	pthread_setname_np(pthread_self(), "signals");
	while (sigwait(&ctx->set, &sig) == 0) {
		if (sig == SIGQUIT) {
			vm_dump_vcpus(ctx->vm);
			continue;
		}
		log_info("stopping on signal %d (%s)", sig, strsignal(sig));
		vm_quit(ctx->vm, 128 + sig);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct hvmm_config cfg;
	char err[512];
	int status = 1;

	set_log_level();
	enum cli_result cr = cli_parse(argc, argv, &cfg, err, sizeof(err));
	if (cr == CLI_EXIT_SUCCESS)
		return 0;
	if (cr == CLI_ERROR) {
		fprintf(stderr, "hvmm: error: %s (see hvmm --help)\n", err);
		cli_free(&cfg);
		return 2;
	}

	/* Serial specs: OpenVMM's defaults are COM1 = console, others none. */
	struct chardev_spec specs[CLI_NUM_COM];
	bool present[CLI_NUM_COM] = { false };
	unsigned consoles = 0;
	for (unsigned i = 0; i < CLI_NUM_COM; i++) {
		const char *s = cfg.com[i] ? cfg.com[i] : (i == 0 ? "console" : "none");
		if (chardev_spec_parse(s, &specs[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "hvmm: error: invalid --com%u: %s\n", i + 1, err);
			cli_free(&cfg);
			return 2;
		}
		present[i] = specs[i].backend != CHARDEV_NONE;
		consoles += specs[i].backend == CHARDEV_CONSOLE;
	}
	if (consoles > 1) {
		fprintf(stderr, "hvmm: error: only one serial port can use 'console'\n");
		cli_free(&cfg);
		return 2;
	}

	/* Block the signals we handle before any thread exists. */
	static struct signal_ctx sctx;
	sigemptyset(&sctx.set);
	sigaddset(&sctx.set, SIGINT);
	sigaddset(&sctx.set, SIGTERM);
	sigaddset(&sctx.set, SIGHUP);
	sigaddset(&sctx.set, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sctx.set, NULL);

	struct evloop *loop = evloop_create();
	if (!loop || evloop_start(loop) < 0) {
		log_error("cannot start the event loop: %s", strerror(errno));
		cli_free(&cfg);
		return 1;
	}

	struct chardev *com[CLI_NUM_COM] = { NULL };
	struct vm vm;
	for (unsigned i = 0; i < CLI_NUM_COM; i++) {
		if (!present[i])
			continue;
		if (chardev_create(&specs[i], loop, &com[i]) < 0) {
			status = 2;
			goto out;
		}
	}

	if (vm_prepare(&vm, &cfg, loop, com) < 0) {
		status = 2;
		goto out_vm;
	}
	sctx.vm = &vm;
	pthread_t sig_thread;
	if (pthread_create(&sig_thread, NULL, signal_thread, &sctx) == 0)
		pthread_detach(sig_thread);

	status = vm_run(&vm);
out_vm:
	vm_release(&vm);
out:
	for (unsigned i = 0; i < CLI_NUM_COM; i++)
		chardev_destroy(com[i]);
	evloop_destroy(loop);
	cli_free(&cfg);
	return status;
}
