/*
 * Unit tests for the interactive console (src/core/console.c) on a real
 * chardev over pipes: Ctrl-Q from host input opens the prompt and the rest
 * of the input stops reaching the device; line editing (backspace, Ctrl-U,
 * Ctrl-C, terminal escape sequences, \r\n as one Enter); the command table
 * (built-ins call the VM ops with the right arguments, unknown commands and
 * bad options are reported, added commands and duplicates); `i TEXT` reaches
 * the device with its spacing; `I` and Ctrl-Q give input back to the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/chardev.h"
#include "core/console.h"
#include "core/evloop.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- fakes: the device behind the chardev, and the VM ------------------ */

struct fake {
	pthread_mutex_t lock;
	char dev_in[4096]; /* what the device received */
	size_t dev_len;
	int quit, reset, pause, resume, nmi, shutdown, kvp;
	bool last_reboot, last_force;
	int shutdown_ret;
};

static struct fake F;

static size_t dev_input(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	pthread_mutex_lock(&F.lock);
	size_t n = len < sizeof(F.dev_in) - F.dev_len ? len : sizeof(F.dev_in) - F.dev_len;
	memcpy(F.dev_in + F.dev_len, buf, n);
	F.dev_len += n;
	pthread_mutex_unlock(&F.lock);
	return len;
}
static const struct chardev_ops dev_ops = { .input = dev_input };

static void vm_quit_(void *o) { (void)o; F.quit++; }
static void vm_reset_(void *o) { (void)o; F.reset++; }
static int vm_pause_(void *o) { (void)o; F.pause++; return 0; }
static int vm_resume_(void *o) { (void)o; F.resume++; return -EALREADY; }
static int vm_nmi_(void *o) { (void)o; F.nmi++; return 0; }
static int vm_shutdown_(void *o, bool reboot, bool force)
{
	(void)o;
	F.shutdown++;
	F.last_reboot = reboot;
	F.last_force = force;
	return F.shutdown_ret;
}
static void vm_kvp_(void *o, struct console *con)
{
	(void)o;
	F.kvp++;
	console_printf(con, "pool0 key=value\n");
}
static const struct console_vm_ops vm_ops = {
	.quit = vm_quit_, .reset = vm_reset_, .pause = vm_pause_,
	.resume = vm_resume_, .nmi = vm_nmi_, .shutdown = vm_shutdown_,
	.kvp = vm_kvp_,
};

struct env {
	struct evloop *loop;
	struct chardev *cd;
	struct console *con;
	int host_in;  /* we write host input here */
	int host_out; /* we read what the console printed here */
	char out[65536];
	size_t out_len;
};

static int setup(void **state)
{
	static struct env e;
	memset(&e, 0, sizeof(e));
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.lock, NULL);
	int in[2], out[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	e.loop = evloop_create();
	assert_non_null(e.loop);
	assert_int_equal(evloop_start(e.loop), 0);
	assert_int_equal(chardev_create_fds(in[0], out[1], e.loop, &e.cd), 0);
	e.host_in = in[1];
	e.host_out = out[0];
	fcntl(e.host_out, F_SETFL, O_NONBLOCK);
	chardev_set_ops(e.cd, &dev_ops, NULL);
	assert_int_equal(console_create(e.cd, &vm_ops, NULL, &e.con), 0);
	*state = &e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	console_destroy(e->con);
	chardev_destroy(e->cd);
	evloop_destroy(e->loop);
	close(e->host_in);
	close(e->host_out);
	return 0;
}

static void type(struct env *e, const char *s)
{
	size_t len = strlen(s);
	assert_int_equal(write(e->host_in, s, len), (ssize_t)len);
}

/* Waits until the console output contains s. */
static bool out_has(struct env *e, const char *s)
{
	for (int i = 0; i < 3000; i++) {
		ssize_t n = read(e->host_out, e->out + e->out_len,
				 sizeof(e->out) - 1 - e->out_len);
		if (n > 0)
			e->out_len += (size_t)n;
		e->out[e->out_len] = '\0';
		if (strstr(e->out, s))
			return true;
		sleep_ms(1);
	}
	return false;
}

static bool dev_has(const char *s)
{
	for (int i = 0; i < 3000; i++) {
		pthread_mutex_lock(&F.lock);
		F.dev_in[F.dev_len < sizeof(F.dev_in) ? F.dev_len : sizeof(F.dev_in) - 1] = '\0';
		bool ok = strstr(F.dev_in, s) != NULL;
		pthread_mutex_unlock(&F.lock);
		if (ok)
			return true;
		sleep_ms(1);
	}
	return false;
}

static void test_escape_opens_prompt(void **state)
{
	struct env *e = *state;
	type(e, "before\021help\r");
	assert_true(dev_has("before"));
	assert_true(out_has(e, "hvmm> "));
	assert_true(out_has(e, "shutdown [-r] [-f]"));
	assert_true(console_in_command_mode(e->con));
	/* Nothing typed after Ctrl-Q reached the device. */
	sleep_ms(50);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.dev_len, strlen("before"));
	pthread_mutex_unlock(&F.lock);
}

static void test_commands_call_vm(void **state)
{
	struct env *e = *state;
	type(e, "\021q\r");
	assert_true(out_has(e, "quitting"));
	assert_int_equal(F.quit, 1);
	type(e, "R\rp\rn\rkvp\r");
	assert_true(out_has(e, "pool0 key=value"));
	assert_int_equal(F.reset, 1);
	assert_int_equal(F.pause, 1);
	assert_int_equal(F.nmi, 1);
	assert_int_equal(F.kvp, 1);
	/* An error from the VM op is printed. */
	type(e, "resume\r");
	assert_true(out_has(e, "resume: Operation already in progress"));
	type(e, "shutdown -r -f\r");
	assert_true(out_has(e, "reboot request sent"));
	assert_int_equal(F.shutdown, 1);
	assert_true(F.last_reboot);
	assert_true(F.last_force);
	F.shutdown_ret = -ENODEV;
	type(e, "shutdown\r");
	assert_true(out_has(e, "no shutdown integration service"));
	assert_false(F.last_reboot);
	type(e, "shutdown -x\r");
	assert_true(out_has(e, "unknown option '-x'"));
	assert_int_equal(F.shutdown, 2);
	type(e, "shutdown -h\r");
	assert_true(out_has(e, "hibernation is not supported"));
	assert_int_equal(F.shutdown, 2);
	type(e, "bogus arg\r");
	assert_true(out_has(e, "unknown command 'bogus'"));
}

static void test_line_editing(void **state)
{
	struct env *e = *state;
	/* "qx" + backspace = "q"; an arrow key's escape sequence is ignored. */
	type(e, "\021zz\025\033[Aqx\177\r\n");
	assert_true(out_has(e, "quitting"));
	assert_int_equal(F.quit, 1);
	/* Ctrl-C drops the line; \r\n counts as one Enter (one prompt each). */
	type(e, "q\003\r\n");
	assert_true(out_has(e, "^C"));
	sleep_ms(50);
	assert_int_equal(F.quit, 1);
}

static void test_input_text_and_back(void **state)
{
	struct env *e = *state;
	type(e, "\021i  two  spaces\r");
	assert_true(dev_has(" two  spaces\n"));
	type(e, "I\r");
	assert_true(out_has(e, "input goes to the guest"));
	assert_false(console_in_command_mode(e->con));
	type(e, "to-guest");
	assert_true(dev_has("to-guest"));
	/* Ctrl-Q in command mode returns too; what follows goes to the guest. */
	type(e, "\021\021after");
	assert_true(dev_has("after"));
	assert_false(console_in_command_mode(e->con));
}

static int my_cmd_calls;
static int my_cmd(struct console *con, int argc, char **argv, void *opaque)
{
	my_cmd_calls++;
	assert_int_equal(argc, 2);
	assert_string_equal(argv[1], "9980");
	assert_ptr_equal(opaque, &my_cmd_calls);
	console_printf(con, "v ran\n");
	return -ENOENT;
}

static void test_added_command(void **state)
{
	struct env *e = *state;
	assert_int_equal(console_add_command(e->con, "hvsock", "hs", "hs PORT", my_cmd,
					     &my_cmd_calls), 0);
	assert_int_equal(console_add_command(e->con, "hvsock", NULL, "", my_cmd, NULL), -EEXIST);
	assert_int_equal(console_add_command(e->con, "other", "q", "", my_cmd, NULL), -EEXIST);
	assert_int_equal(console_add_command(e->con, "mine", "x", "", my_cmd, NULL), -EEXIST);
	type(e, "\021hs 9980\r");
	assert_true(out_has(e, "v ran"));
	assert_true(out_has(e, "hs: No such file or directory"));
	assert_int_equal(my_cmd_calls, 1);
}

static void test_split(void **state)
{
	(void)state;
	char line[] = "  a\tbb   ccc ";
	char *argv[4];
	assert_int_equal(console_split(line, argv, 4), 3);
	assert_string_equal(argv[0], "a");
	assert_string_equal(argv[1], "bb");
	assert_string_equal(argv[2], "ccc");
	char many[] = "1 2 3 4 5";
	assert_int_equal(console_split(many, argv, 4), 4);
	char empty[] = "   ";
	assert_int_equal(console_split(empty, argv, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_escape_opens_prompt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commands_call_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_editing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_text_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_added_command, setup, teardown),
		cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
