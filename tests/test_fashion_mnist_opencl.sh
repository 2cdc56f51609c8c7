#!/bin/sh
# tests/test_fashion_mnist_opencl.sh — the Fashion-MNIST training checks
# (tests/test_fashion_mnist.sh) on the opencl backend; the sibling script is found through
# EMBER_TEST_DATA_DIR as in tests/test_examples_opencl.sh.
EMBER_TEST_EXAMPLES_BACKEND=opencl
export EMBER_TEST_EXAMPLES_BACKEND
data=${EMBER_TEST_DATA_DIR:-$(dirname "$0")/data}
exec "${SHELL:-/bin/sh}" "$data/../test_fashion_mnist.sh" "$@"
