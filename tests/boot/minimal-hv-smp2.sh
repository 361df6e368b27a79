#!/bin/bash
# minimal-hv.sh with 2 vCPUs (SynIC and timers per VP) and
# --vmbus-max-version 4.1: hv_vmbus settles on 4.1.
HVMM_TEST_NAME=minimal-hv-smp2 NCPU=2 VMBUS_MAX=4.1 VMBUS_VERSION=4.1 \
	exec bash "$(dirname "$0")/minimal-hv.sh"
