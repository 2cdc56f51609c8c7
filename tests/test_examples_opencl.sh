#!/bin/sh
# tests/test_examples_opencl.sh — the seed examples (tests/test_examples.sh) on the opencl
# backend. make check runs this from the build tree, so the sibling script is found through
# EMBER_TEST_DATA_DIR (AM_TESTS_ENVIRONMENT: $(abs_top_srcdir)/tests/data), not through $0.
EMBER_TEST_EXAMPLES_BACKEND=opencl
export EMBER_TEST_EXAMPLES_BACKEND
data=${EMBER_TEST_DATA_DIR:-$(dirname "$0")/data}
exec "${SHELL:-/bin/sh}" "$data/../test_examples.sh" "$@"
