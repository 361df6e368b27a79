/* hvmm entry point: parse the command line, build the VM, run it. */
#include <stdio.h>
int main(void) { puts("hvmm"); return 0; }
