#!/bin/sh
# tests/test_layers_run_opencl.sh — tests/test_layers_run.sh on the opencl backend (found
# through EMBER_TEST_DATA_DIR, as tests/test_examples_opencl.sh finds its sibling).
EMBER_TEST_EXAMPLES_BACKEND=opencl
export EMBER_TEST_EXAMPLES_BACKEND
data=${EMBER_TEST_DATA_DIR:-$(dirname "$0")/data}
exec "${SHELL:-/bin/sh}" "$data/../test_layers_run.sh" "$@"
