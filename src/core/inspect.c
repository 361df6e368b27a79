/*
 * The inspect tree's visitor and renderer (see inspect.h): walks the
 * subsystems' callbacks down the requested path, then prints the node's
 * fields and children to the requested depth.
 */
#include "core/inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMPONENTS 32

struct inspect {
	char comp[MAX_COMPONENTS][INSPECT_NAME_MAX + 1];
	unsigned ncomp;
	int depth;          /* levels below the target to expand; < 0 = all */
	unsigned level;     /* nesting of the callback now running (root = 0) */
	bool found;         /* the target node was entered */
	char *buf;
	size_t len, cap;
	bool full;          /* INSPECT_OUT_MAX reached or out of memory */
	bool nomem;
};

static void out(struct inspect *in, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out(struct inspect *in, const char *fmt, ...)
{
	if (in->full)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(in->buf + in->len, in->cap - in->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < in->cap - in->len) {
			in->len += (size_t)n;
			return;
		}
		size_t want = in->cap * 2;
		while (want - in->len <= (size_t)n)
			want *= 2;
		if (want > INSPECT_OUT_MAX) {
			in->full = true;
			return;
		}
		char *nb = realloc(in->buf, want);
		if (!nb) {
			in->full = in->nomem = true;
			return;
		}
		in->buf = nb;
		in->cap = want;
	}
}

static void indent(struct inspect *in, unsigned n)
{
	out(in, "%*s", (int)(4 * n), "");
}

/* Printing happens at and below the target node. */
static bool printing(const struct inspect *in)
{
	return in->found && in->level >= in->ncomp;
}

/* Names are printed as given, minus characters that would break the format. */
static void put_name(struct inspect *in, const char *name)
{
	char clean[INSPECT_NAME_MAX + 1];
	size_t i = 0;
	for (; name[i] && i < INSPECT_NAME_MAX; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
		clean[i] = ok ? c : '_';
	}
	clean[i] = 0;
	indent(in, in->level - in->ncomp + 1);
	out(in, "%s: ", clean);
}

void inspect_u64(struct inspect *in, const char *name, uint64_t v)
{
	if (!printing(in))
		return;
	put_name(in, name);
	out(in, "%" PRIu64 ",\n", v);
}

void inspect_i64(struct inspect *in, const char *name, int64_t v)
{
	if (!printing(in))
		return;
	put_name(in, name);
	out(in, "%" PRId64 ",\n", v);
}

void inspect_hex(struct inspect *in, const char *name, uint64_t v)
{
	if (!printing(in))
		return;
	put_name(in, name);
	out(in, "0x%" PRIx64 ",\n", v);
}

void inspect_bool(struct inspect *in, const char *name, bool v)
{
	if (!printing(in))
		return;
	put_name(in, name);
	out(in, "%s,\n", v ? "true" : "false");
}

void inspect_str(struct inspect *in, const char *name, const char *v)
{
	if (!printing(in))
		return;
	put_name(in, name);
	out(in, "\"");
	for (const char *p = v ? v : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			out(in, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			out(in, "\\x%02x", c);
		else
			out(in, "%c", c);
	}
	out(in, "\",\n");
}

static void descend(struct inspect *in, inspect_fn fn, void *opaque)
{
	in->level++;
	fn(in, opaque);
	in->level--;
}

void inspect_child(struct inspect *in, const char *name, inspect_fn fn, void *opaque)
{
	if (in->level >= INSPECT_MAX_DEPTH)
		return;
	if (!in->found || in->level < in->ncomp) {
		/* Still looking: only the next path component is entered. */
		if (in->found || in->level >= in->ncomp ||
		    strncmp(name, in->comp[in->level], INSPECT_NAME_MAX) != 0)
			return;
		if (in->level + 1 == in->ncomp) {
			in->found = true;
			out(in, "{\n");
			descend(in, fn, opaque);
			out(in, "}\n");
			return; /* found: later siblings of the same name are ignored */
		}
		descend(in, fn, opaque);
		return;
	}
	unsigned rel = in->level - in->ncomp; /* 0 = a child of the target */
	put_name(in, name);
	if (in->depth >= 0 && rel >= (unsigned)in->depth) {
		out(in, "{...},\n");
		return;
	}
	out(in, "{\n");
	descend(in, fn, opaque);
	indent(in, rel + 1);
	out(in, "},\n");
}

void inspect_child_index(struct inspect *in, unsigned index, inspect_fn fn, void *opaque)
{
	char name[16];
	snprintf(name, sizeof(name), "%u", index);
	inspect_child(in, name, fn, opaque);
}

static int split_path(struct inspect *in, const char *path)
{
	if (strlen(path) > INSPECT_PATH_MAX)
		return -EINVAL;
	while (*path == '/')
		path++;
	while (*path) {
		const char *e = strchr(path, '/');
		size_t n = e ? (size_t)(e - path) : strlen(path);
		if (n == 0 || n > INSPECT_NAME_MAX || in->ncomp >= MAX_COMPONENTS)
			return -EINVAL;
		memcpy(in->comp[in->ncomp], path, n);
		in->comp[in->ncomp][n] = 0;
		in->ncomp++;
		path += n;
		if (*path == '/') {
			path++;
			if (!*path) /* one trailing slash is fine */
				break;
		}
	}
	return 0;
}

int inspect_render(inspect_fn root, void *opaque, const char *path, int depth, char **outp)
{
	struct inspect *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->depth = depth;
	int ret = split_path(in, path ? path : "");
	if (ret < 0) {
		free(in);
		return ret;
	}
	in->cap = 4096;
	in->buf = malloc(in->cap);
	if (!in->buf) {
		free(in);
		return -ENOMEM;
	}
	in->buf[0] = 0;
	if (in->ncomp == 0) {
		in->found = true;
		out(in, "{\n");
		root(in, opaque);
		out(in, "}\n");
	} else {
		root(in, opaque);
	}
	if (in->nomem) {
		ret = -ENOMEM;
	} else if (!in->found) {
		ret = -ENOENT;
	} else {
		if (in->full) {
			/* Cut at the limit: say so on a line of its own. */
			static const char cut[] = "\n... (output cut at 1 MiB)\n";
			if (in->cap - in->len < sizeof(cut)) {
				in->len = in->cap - sizeof(cut);
			}
			memcpy(in->buf + in->len, cut, sizeof(cut));
		}
		*outp = in->buf;
		in->buf = NULL;
	}
	free(in->buf);
	free(in);
	return ret;
}
