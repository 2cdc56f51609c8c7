#!/bin/sh
# tests/test_examples_cuda.sh — the seed examples (tests/test_examples.sh) on the cuda
# backend. Without a usable GPU that script reports SKIP with the plugin's reason ("no
# usable CUDA device: ..."); EMBER_TEST_REQUIRE=cuda turns that into a failure.
EMBER_TEST_EXAMPLES_BACKEND=cuda
export EMBER_TEST_EXAMPLES_BACKEND
here=$(dirname "$0")
script=${EMBER_TEST_DATA_DIR:+$EMBER_TEST_DATA_DIR/../test_examples.sh}
[ -n "$script" ] && [ -f "$script" ] || script=$here/test_examples.sh
exec "${SHELL:-/bin/sh}" "$script"
