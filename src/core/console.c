/*
 * The interactive console (see console.h): a Ctrl-Q escape on the console
 * serial backend, a small line editor for command mode, and a command table
 * with OpenVMM's built-in commands.
 */
#include "core/console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/chardev.h"

#define CONSOLE_MAX_COMMANDS 48

struct console_cmd {
	char name[24];
	char alias[8];
	char usage[96];
	console_cmd_fn fn;
	void *opaque;
};

enum esc_state { ESC_NONE, ESC_SEEN, ESC_CSI };

struct console {
	struct chardev *cd;
	const struct console_vm_ops *ops;
	void *opaque;
	bool command_mode;
	bool last_cr;          /* swallow the \n of a \r\n pair */
	enum esc_state esc;    /* skipping a terminal escape sequence */
	char line[CONSOLE_LINE_MAX];
	size_t len;
	struct console_cmd cmds[CONSOLE_MAX_COMMANDS];
	unsigned ncmds;
};

static const char prompt[] = "hvmm> ";

void console_printf(struct console *con, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	chardev_write(con->cd, buf, len);
}

static void echo(struct console *con, const void *buf, size_t len)
{
	chardev_write(con->cd, buf, len);
}

bool console_in_command_mode(struct console *con)
{
	return con->command_mode;
}

static size_t command_input(void *opaque, const uint8_t *buf, size_t len);
static const struct chardev_ops command_ops = { .input = command_input };

static void enter_command_mode(struct console *con)
{
	con->command_mode = true;
	con->len = 0;
	con->last_cr = false;
	con->esc = ESC_NONE;
	chardev_divert_input(con->cd, &command_ops, con);
	console_printf(con, "\n%s", prompt);
}

static void enter_input_mode(struct console *con)
{
	con->command_mode = false;
	con->len = 0;
	console_printf(con, "\n[input goes to the guest; Ctrl-Q for commands]\n");
	chardev_divert_input(con->cd, NULL, NULL);
}

/* The chardev's escape callback: Ctrl-Q in input mode. */
static void escape_pressed(void *opaque)
{
	enter_command_mode(opaque);
}

int console_split(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;
	while (*p && n < max) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		argv[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static const struct console_cmd *find_command(const struct console *con,
					      const char *name)
{
	for (unsigned i = 0; i < con->ncmds; i++) {
		const struct console_cmd *c = &con->cmds[i];
		if (!strcmp(c->name, name) || (c->alias[0] && !strcmp(c->alias, name)))
			return c;
	}
	return NULL;
}

/* Runs one command line. Returns false when input mode was selected. */
static void run_line(struct console *con, char *line)
{
	/* `i TEXT` keeps TEXT's spacing, so it is handled before splitting. */
	char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if ((p[0] == 'i' && (p[1] == ' ' || p[1] == '\t')) ||
	    (!strncmp(p, "input", 5) && (p[5] == ' ' || p[5] == '\t'))) {
		char *text = p + (p[1] == ' ' || p[1] == '\t' ? 2 : 6);
		size_t n = strlen(text);
		char buf[CONSOLE_LINE_MAX + 1];
		memcpy(buf, text, n);
		buf[n++] = '\n';
		if (chardev_inject_input(con->cd, buf, n) < n)
			console_printf(con, "input queue full: text truncated\n");
		return;
	}
	char *argv[CONSOLE_MAX_ARGS];
	int argc = console_split(line, argv, CONSOLE_MAX_ARGS);
	if (argc == 0)
		return;
	const struct console_cmd *c = find_command(con, argv[0]);
	if (!c) {
		console_printf(con, "unknown command '%s' (type help)\n", argv[0]);
		return;
	}
	int ret = c->fn(con, argc, argv, c->opaque);
	if (ret < 0)
		console_printf(con, "%s: %s\n", argv[0], strerror(-ret));
}

static void line_done(struct console *con)
{
	con->line[con->len] = '\0';
	con->len = 0;
	echo(con, "\n", 1);
	run_line(con, con->line);
	if (con->command_mode)
		console_printf(con, "%s", prompt);
}

static size_t command_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *con = opaque;
	for (size_t i = 0; i < len && con->command_mode; i++) {
		uint8_t c = buf[i];
		bool was_cr = con->last_cr;
		con->last_cr = false;
		if (con->esc == ESC_SEEN) {
			con->esc = c == '[' ? ESC_CSI : ESC_NONE;
			continue;
		}
		if (con->esc == ESC_CSI) {
			if (c >= 0x40 && c <= 0x7e)
				con->esc = ESC_NONE;
			continue;
		}
		switch (c) {
		case CONSOLE_ESCAPE:
			enter_input_mode(con);
			/* The rest of this chunk belongs to the guest. */
			if (i + 1 < len)
				chardev_inject_input(con->cd, buf + i + 1, len - i - 1);
			return len;
		case '\r':
			con->last_cr = true;
			line_done(con);
			break;
		case '\n':
			if (!was_cr)
				line_done(con);
			break;
		case 0x7f:
		case '\b':
			if (con->len) {
				con->len--;
				echo(con, "\b \b", 3);
			}
			break;
		case 0x15: /* Ctrl-U */
			while (con->len) {
				con->len--;
				echo(con, "\b \b", 3);
			}
			break;
		case 0x03: /* Ctrl-C: drop the line */
			con->len = 0;
			console_printf(con, "^C\n%s", prompt);
			break;
		case 0x1b:
			con->esc = ESC_SEEN;
			break;
		default:
			if (c < 0x20 && c != '\t')
				break;
			if (con->len + 1 < sizeof(con->line)) {
				con->line[con->len++] = (char)c;
				echo(con, &c, 1);
			}
			break;
		}
	}
	return len;
}

size_t console_input(struct console *con, const char *buf, size_t len)
{
	if (!con->command_mode) {
		const char *e = memchr(buf, CONSOLE_ESCAPE, len);
		if (!e) {
			chardev_inject_input(con->cd, buf, len);
			return len;
		}
		if (e > buf)
			chardev_inject_input(con->cd, buf, (size_t)(e - buf));
		enter_command_mode(con);
		size_t used = (size_t)(e - buf) + 1;
		return used + (used < len ? console_input(con, e + 1, len - used) : 0);
	}
	return command_input(con, (const uint8_t *)buf, len);
}

/* ---- built-in commands ------------------------------------------------ */

static int cmd_help(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	console_printf(con, "commands (Ctrl-Q or I returns to the guest console):\n");
	for (unsigned i = 0; i < con->ncmds; i++) {
		const struct console_cmd *c = &con->cmds[i];
		char names[40];
		if (c->alias[0])
			snprintf(names, sizeof(names), "%s, %s", c->alias, c->name);
		else
			snprintf(names, sizeof(names), "%s", c->name);
		console_printf(con, "  %-22s %s\n", names, c->usage);
	}
	return 0;
}

static int cmd_quit(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	console_printf(con, "quitting\n");
	con->ops->quit(con->opaque);
	return 0;
}

static int cmd_input_mode(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	enter_input_mode(con);
	return 0;
}

static int cmd_input(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	/* Only reached with no text (run_line handles `i TEXT`). */
	chardev_inject_input(con->cd, "\n", 1);
	return 0;
}

static int cmd_reset(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	console_printf(con, "resetting the VM\n");
	con->ops->reset(con->opaque);
	return 0;
}

static int cmd_pause(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	int ret = con->ops->pause(con->opaque);
	if (ret == 0)
		console_printf(con, "paused\n");
	return ret;
}

static int cmd_resume(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	int ret = con->ops->resume(con->opaque);
	if (ret == 0)
		console_printf(con, "resumed\n");
	return ret;
}

static int cmd_nmi(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	int ret = con->ops->nmi(con->opaque);
	if (ret == 0)
		console_printf(con, "NMI sent to vCPU 0\n");
	return ret;
}

static int cmd_shutdown(struct console *con, int argc, char **argv, void *opaque)
{
	(void)opaque;
	bool reboot = false, force = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-r")) {
			reboot = true;
		} else if (!strcmp(argv[i], "-f")) {
			force = true;
		} else if (!strcmp(argv[i], "-h")) {
			console_printf(con, "shutdown: hibernation is not supported\n");
			return 0;
		} else {
			console_printf(con, "shutdown: unknown option '%s' (usage: shutdown [-r] [-f])\n",
				       argv[i]);
			return 0;
		}
	}
	int ret = con->ops->shutdown(con->opaque, reboot, force);
	if (ret == -ENODEV) {
		console_printf(con, "shutdown: the guest has no shutdown integration "
				    "service connected (start with --hv; guest needs hv_utils)\n");
		return 0;
	}
	if (ret == -EBUSY) {
		console_printf(con, "shutdown: a request is already in flight\n");
		return 0;
	}
	if (ret == 0)
		console_printf(con, "%s%s request sent to the guest\n", force ? "forced " : "",
			       reboot ? "reboot" : "shutdown");
	return ret;
}

static int cmd_kvp(struct console *con, int argc, char **argv, void *opaque)
{
	(void)argc;
	(void)argv;
	(void)opaque;
	con->ops->kvp(con->opaque, con);
	return 0;
}

/* x [-r] [-l N] [PATH]: OpenVMM's inspect (-r: everything below PATH). */
static int cmd_inspect(struct console *con, int argc, char **argv, void *opaque)
{
	(void)opaque;
	int depth = 0;
	const char *path = "";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-r")) {
			depth = -1;
		} else if (!strcmp(argv[i], "-l") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 0 || v > 64) {
				console_printf(con, "x: -l wants a depth from 0 to 64, not '%s'\n",
					       argv[i]);
				return 0;
			}
			depth = (int)v;
		} else if (argv[i][0] == '-' || *path) {
			console_printf(con, "usage: x [-r] [-l DEPTH] [PATH]\n");
			return 0;
		} else {
			path = argv[i];
		}
	}
	if (!con->ops->inspect) {
		console_printf(con, "x: nothing to inspect\n");
		return 0;
	}
	char *text = NULL;
	int ret = con->ops->inspect(con->opaque, path, depth, &text);
	if (ret == -ENOENT || ret == -EINVAL) {
		console_printf(con, "x: no node '%s'%s\n", path,
			       ret == -EINVAL ? " (malformed path)" : "");
		return 0;
	}
	if (ret < 0)
		return ret;
	/* Line by line: the console's output queue takes bounded writes. */
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl) {
			console_printf(con, "%s\n", line);
			break;
		}
		*nl = 0;
		console_printf(con, "%s\n", line);
	}
	free(text);
	return 0;
}

/* v PORT [PROGRAM]: a terminal window on guest vsock PORT. */
static int cmd_vsock(struct console *con, int argc, char **argv, void *opaque)
{
	(void)opaque;
	char *end = NULL;
	unsigned long port = argc >= 2 ? strtoul(argv[1], &end, 10) : 0;
	if (argc < 2 || argc > 3 || *end || argv[1][0] == '-' || port > 0x7fffffffUL) {
		console_printf(con, "usage: v PORT [TERMINAL-PROGRAM] (PORT 0 to 2147483647)\n");
		return 0;
	}
	if (!con->ops->vsock_term) {
		console_printf(con, "v: no vsock\n");
		return 0;
	}
	int ret = con->ops->vsock_term(con->opaque, (unsigned)port, argc == 3 ? argv[2] : NULL);
	if (ret == 0)
		console_printf(con, "opening a terminal on guest vsock port %lu\n", port);
	else
		console_printf(con, "v: cannot open a terminal on guest vsock port %lu (see the "
				    "log line above)\n", port);
	return 0;
}

int console_add_command(struct console *con, const char *name,
			const char *alias, const char *usage,
			console_cmd_fn fn, void *opaque)
{
	if (find_command(con, name) || (alias && find_command(con, alias)))
		return -EEXIST;
	if (con->ncmds >= CONSOLE_MAX_COMMANDS)
		return -ENOSPC;
	struct console_cmd *c = &con->cmds[con->ncmds++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (alias)
		snprintf(c->alias, sizeof(c->alias), "%s", alias);
	snprintf(c->usage, sizeof(c->usage), "%s", usage ? usage : "");
	c->fn = fn;
	c->opaque = opaque;
	return 0;
}

int console_create(struct chardev *cd, const struct console_vm_ops *ops,
		   void *opaque, struct console **out)
{
	struct console *con = calloc(1, sizeof(*con));
	if (!con)
		return -ENOMEM;
	con->cd = cd;
	con->ops = ops;
	con->opaque = opaque;
	static const struct {
		const char *name, *alias, *usage;
		console_cmd_fn fn;
	} builtin[] = {
		{ "help", "h", "list commands", cmd_help },
		{ "quit", "q", "stop the VM and exit", cmd_quit },
		{ "input-mode", "I", "send input to the guest console", cmd_input_mode },
		{ "input", "i", "i TEXT: type TEXT and Enter into the guest console", cmd_input },
		{ "reset", "R", "reset the VM", cmd_reset },
		{ "pause", "p", "pause the vCPUs", cmd_pause },
		{ "resume", "r", "resume the vCPUs", cmd_resume },
		{ "nmi", "n", "inject an NMI into vCPU 0", cmd_nmi },
		{ "shutdown", NULL, "shutdown [-r] [-f]: ask the guest to power off (-r reboot, -f forced)",
		  cmd_shutdown },
		{ "kvp", NULL, "show the key/value pairs the guest reported", cmd_kvp },
		{ "inspect", "x", "x [-r] [-l DEPTH] [PATH]: show the VM's state (devices, "
		  "channels, counters)", cmd_inspect },
		{ "vsock", "v", "v PORT [PROGRAM]: open a terminal on guest vsock PORT", cmd_vsock },
	};
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		console_add_command(con, builtin[i].name, builtin[i].alias,
				    builtin[i].usage, builtin[i].fn, NULL);
	console_add_command(con, "restart", NULL, "same as reset", cmd_reset, NULL);
	chardev_set_escape(cd, CONSOLE_ESCAPE, escape_pressed, con);
	*out = con;
	return 0;
}

void console_destroy(struct console *con)
{
	if (!con)
		return;
	chardev_set_escape(con->cd, -1, NULL, NULL);
	chardev_divert_input(con->cd, NULL, NULL);
	free(con);
}
