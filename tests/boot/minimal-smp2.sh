#!/bin/bash
# The minimal kernel with 2 vCPUs and 1 GB (see minimal-smp1.sh).
HVMM_TEST_NAME=minimal-smp2 NCPU=2 MEM_MB=1024 exec bash "$(dirname "$0")/minimal-smp1.sh"
