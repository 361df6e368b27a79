/*
 * The interactive console, as OpenVMM's (openvmm_entry repl; Guide:
 * reference/openvmm/management/interactive_console.md): host input goes to
 * the guest's `console` serial port until Ctrl-Q (0x11), which switches to
 * command mode and prints an `hvmm> ` prompt. Commands are lines; `I`
 * (input-mode) or Ctrl-Q switches back to the guest. It works the same
 * when stdin is a pipe (tests drive it that way).
 *
 * Commands come from a table that later features extend with
 * console_add_command(). The built-in ones (q, R/reset, p/r, n, shutdown,
 * i, I, kvp, x, v, help) act through struct console_vm_ops, so this file does not
 * depend on the VM's internals.
 *
 * Threads: input is parsed and commands run on the event loop thread; a
 * command must not block for long (a shutdown request is sent, not awaited).
 */
#ifndef HVMM_CORE_CONSOLE_H
#define HVMM_CORE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

struct chardev;
struct console;

#define CONSOLE_ESCAPE 0x11 /* Ctrl-Q */
#define CONSOLE_MAX_ARGS 16
#define CONSOLE_LINE_MAX 1024

/* What the built-in commands do to the VM. Each returns 0 or -errno. */
struct console_vm_ops {
	void (*quit)(void *opaque);
	void (*reset)(void *opaque);
	int (*pause)(void *opaque);
	int (*resume)(void *opaque);
	int (*nmi)(void *opaque);
	/* reboot: -r; force: -f (the guest is not asked to shut down cleanly). */
	int (*shutdown)(void *opaque, bool reboot, bool force);
	/* Writes "pool key=value" lines with console_printf(). */
	void (*kvp)(void *opaque, struct console *con);
	/*
	 * Renders the inspect tree at path, depth levels deep (< 0: all) into
	 * a malloc'd text: 0, -ENOENT (no such node), -EINVAL, -ENOMEM.
	 */
	int (*inspect)(void *opaque, const char *path, int depth, char **out);
	/* Opens a terminal window on guest vsock port (program NULL = default). */
	int (*vsock_term)(void *opaque, unsigned port, const char *program);
};

/*
 * A command handler: argv[0] is the command name; 0 or -errno (the console
 * prints the error). Runs on the event loop thread.
 */
typedef int (*console_cmd_fn)(struct console *con, int argc, char **argv,
			      void *opaque);

/*
 * Attaches to the console chardev (Ctrl-Q escape) and registers the
 * built-in commands. The chardev must outlive the console. 0 or -ENOMEM.
 */
int console_create(struct chardev *cd, const struct console_vm_ops *ops,
		   void *opaque, struct console **out);
/* Detaches from the chardev; no callback runs after it returns. */
void console_destroy(struct console *con);

/*
 * Adds a command: name, an optional short alias (NULL), a one-line usage
 * for `help`. 0, -EEXIST, -ENOSPC.
 */
int console_add_command(struct console *con, const char *name,
			const char *alias, const char *usage,
			console_cmd_fn fn, void *opaque);

/* Prints to the console's terminal (through the serial output queue). */
void console_printf(struct console *con, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True while in command mode. */
bool console_in_command_mode(struct console *con);

/*
 * Feeds host input as if typed, for unit tests (normally input arrives
 * through the chardev). Returns len.
 */
size_t console_input(struct console *con, const char *buf, size_t len);

/*
 * Splits a command line into words (spaces and tabs; no quoting), in
 * place. Returns the number of words (at most max).
 */
int console_split(char *line, char **argv, int max);

#endif
