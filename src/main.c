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
#include <time.h>

#include "backend/chardev.h"
#include "core/cli.h"
#include "core/console.h"
#include "core/evloop.h"
#include "core/inspect.h"
#include "core/log.h"
#include "core/vm.h"
#include "core/vmbus_glue.h"
#include "core/vsock_term.h"

/* Seconds a guest gets to shut down after SIGTERM before hvmm stops it. */
#define SHUTDOWN_TIMEOUT_DEFAULT 30

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
	unsigned shutdown_timeout; /* seconds */
};

static unsigned shutdown_timeout(void)
{
	const char *s = getenv("HVMM_SHUTDOWN_TIMEOUT");
	if (!s || !*s)
		return SHUTDOWN_TIMEOUT_DEFAULT;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v > 86400) {
		log_warn("HVMM_SHUTDOWN_TIMEOUT='%s' is not a number of seconds; using %u",
			 s, SHUTDOWN_TIMEOUT_DEFAULT);
		return SHUTDOWN_TIMEOUT_DEFAULT;
	}
	return (unsigned)v;
}

/*
 * Host signals become an orderly stop of the VM on the main thread. SIGTERM
 * first asks the guest to power off through the shutdown integration
 * service (--hv) and stops the VM only if the guest has not done so within
 * the timeout; a second SIGTERM, SIGINT or SIGHUP stops it at once.
 */
static void *signal_thread(void *arg)
{
	struct signal_ctx *ctx = arg;
	bool shutting_down = false;
	struct timespec deadline = { 0 };
	pthread_setname_np(pthread_self(), "signals");
	for (;;) {
		int sig;
		if (shutting_down) {
			struct timespec now, left;
			clock_gettime(CLOCK_MONOTONIC, &now);
			left.tv_sec = deadline.tv_sec - now.tv_sec;
			left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) {
				left.tv_nsec += 1000000000L;
				left.tv_sec--;
			}
			if (left.tv_sec < 0)
				left.tv_sec = left.tv_nsec = 0;
			sig = sigtimedwait(&ctx->set, NULL, &left);
			if (sig < 0 && errno == EAGAIN) {
				log_warn("the guest did not shut down within %u s; stopping it",
					 ctx->shutdown_timeout);
				vm_quit(ctx->vm, 128 + SIGTERM);
				shutting_down = false;
				continue;
			}
		} else if (sigwait(&ctx->set, &sig) != 0) {
			sig = -1;
		}
		if (sig < 0)
			continue;
		if (sig == SIGQUIT) {
			vm_dump_vcpus(ctx->vm);
			continue;
		}
		if (sig == SIGTERM && !shutting_down) {
			int ret = vmbus_glue_request_shutdown(ctx->vm, false, false);
			if (ret == 0) {
				log_info("SIGTERM: asked the guest to shut down (stopping it in %u s "
					 "if it does not)", ctx->shutdown_timeout);
				clock_gettime(CLOCK_MONOTONIC, &deadline);
				deadline.tv_sec += ctx->shutdown_timeout;
				shutting_down = true;
				continue;
			}
		}
		log_info("stopping on signal %d (%s)", sig, strsignal(sig));
		vm_quit(ctx->vm, 128 + sig);
	}
	return NULL;
}

/* The interactive console's view of the VM. */
static void con_quit(void *opaque)
{
	vm_quit(opaque, 0);
}

static void con_reset(void *opaque)
{
	vm_reset(opaque);
}

static int con_pause(void *opaque)
{
	return vm_pause(opaque);
}

static int con_resume(void *opaque)
{
	return vm_resume(opaque);
}

static int con_nmi(void *opaque)
{
	return vm_nmi(opaque, 0);
}

static int con_shutdown(void *opaque, bool reboot, bool force)
{
	return vmbus_glue_request_shutdown(opaque, reboot, force);
}

static void con_kvp(void *opaque, struct console *con)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	vmbus_glue_kvp_print(opaque, f);
	fclose(f);
	if (len)
		console_printf(con, "%s", buf);
	else
		console_printf(con, "no key/value pairs reported by the guest\n");
	free(buf);
}

static int con_inspect(void *opaque, const char *path, int depth, char **out)
{
	return inspect_render(vm_inspect, opaque, path, depth, out);
}

static int con_vsock_term(void *opaque, unsigned port, const char *program)
{
	return vsock_term_open(opaque, port, program);
}

static const struct console_vm_ops console_ops = {
	.quit = con_quit, .reset = con_reset, .pause = con_pause,
	.resume = con_resume, .nmi = con_nmi, .shutdown = con_shutdown,
	.kvp = con_kvp, .inspect = con_inspect, .vsock_term = con_vsock_term,
};

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
	struct console *con = NULL;
	for (unsigned i = 0; i < CLI_NUM_COM; i++) {
		if (com[i] && specs[i].backend == CHARDEV_CONSOLE &&
		    console_create(com[i], &console_ops, &vm, &con) < 0) {
			log_error("cannot create the interactive console");
			status = 1;
			goto out_vm;
		}
	}
	sctx.vm = &vm;
	sctx.shutdown_timeout = shutdown_timeout();
	pthread_t sig_thread;
	if (pthread_create(&sig_thread, NULL, signal_thread, &sctx) == 0)
		pthread_detach(sig_thread);

	status = vm_run(&vm);
	console_destroy(con);
out_vm:
	vm_release(&vm);
out:
	for (unsigned i = 0; i < CLI_NUM_COM; i++)
		chardev_destroy(com[i]);
	evloop_destroy(loop);
	cli_free(&cfg);
	return status;
}
