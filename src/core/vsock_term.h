/*
 * The console's `v PORT`: a terminal window connected to guest vsock port
 * PORT (see vsock_term.c).
 */
#ifndef HVMM_CORE_VSOCK_TERM_H
#define HVMM_CORE_VSOCK_TERM_H

#include <stdint.h>

struct vm;

/*
 * Opens a window running PROGRAM (NULL = x-terminal-emulator, as the term
 * serial backend) connected to guest vsock port `port`; the session runs on
 * its own thread. 0, or -errno with one line logged (no display, no VMBus,
 * program missing). Any thread.
 */
int vsock_term_open(struct vm *vm, uint32_t port, const char *program);

#endif
