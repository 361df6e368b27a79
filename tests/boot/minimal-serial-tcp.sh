#!/bin/bash
# COM1 on listen=tcp:IP:PORT (see minimal-serial-listen.sh).
HVMM_TEST_NAME=minimal-serial-tcp TRANSPORT=tcp exec bash "$(dirname "$0")/minimal-serial-listen.sh"
