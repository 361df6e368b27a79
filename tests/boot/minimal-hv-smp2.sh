#!/bin/bash
# minimal-hv.sh with 2 vCPUs (SynIC and timers per VP).
HVMM_TEST_NAME=minimal-hv-smp2 NCPU=2 exec bash "$(dirname "$0")/minimal-hv.sh"
