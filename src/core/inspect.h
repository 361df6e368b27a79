/*
 * hvmm's inspect tree: a read-only view of the running VM (vCPUs, VMBus
 * channels, disks, NICs, vsock connections and their counters) in the shape
 * of OpenVMM's `inspect` (the console's `x [-r] [-l N] [PATH]`, and
 * `hvmm-diag PATH inspect` through the hybrid vsock socket).
 *
 * The tree is not stored: each subsystem provides an inspect_fn that, when
 * called, reports its fields and children to a visitor; children are
 * visited only when the requested path and depth reach them, so asking for
 * one node costs little. Callbacks run on the caller's thread (the event
 * loop) and take whatever locks their subsystem needs; counters are read
 * without stopping the VM, so a view is a snapshot only field by field.
 *
 * Rendering: the node at PATH ('/'-separated child names, "" = root) is
 * printed as `{ name: value, child: {...} }` with four-space indents;
 * children deeper than `depth` levels are shown as `{...}` (depth < 0 =
 * unlimited). Field and child names are [A-Za-z0-9_.-]; values are
 * numbers, quoted strings or booleans.
 */
#ifndef HVMM_CORE_INSPECT_H
#define HVMM_CORE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inspect;
typedef void (*inspect_fn)(struct inspect *in, void *opaque);

#define INSPECT_NAME_MAX 63u   /* longer names are cut */
#define INSPECT_PATH_MAX 255u
#define INSPECT_MAX_DEPTH 32   /* nesting is cut below this */
#define INSPECT_OUT_MAX (1u << 20) /* a rendering stops at 1 MiB */

void inspect_u64(struct inspect *in, const char *name, uint64_t v);
void inspect_i64(struct inspect *in, const char *name, int64_t v);
void inspect_hex(struct inspect *in, const char *name, uint64_t v);
void inspect_bool(struct inspect *in, const char *name, bool v);
void inspect_str(struct inspect *in, const char *name, const char *v);
/* Child whose name is an index ("0", "1", ...). */
void inspect_child(struct inspect *in, const char *name, inspect_fn fn, void *opaque);
void inspect_child_index(struct inspect *in, unsigned index, inspect_fn fn, void *opaque);

/*
 * Renders the subtree of root at path, depth levels deep. On success *out
 * is a malloc'd NUL-terminated text (ending in a newline) and 0 is
 * returned; -ENOENT when path names no child, -EINVAL for a malformed path
 * (too long, empty component), -ENOMEM.
 */
int inspect_render(inspect_fn root, void *opaque, const char *path, int depth, char **out);

#endif
