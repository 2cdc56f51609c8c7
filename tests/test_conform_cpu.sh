#!/bin/sh
# tests/test_conform_cpu.sh — ember-conform on the cpu backend (see tests/test_conform.sh).
# make check runs this from the build tree: the sibling script is found through
# EMBER_TEST_DATA_DIR ($(abs_top_srcdir)/tests/data), else next to this one.
EMBER_TEST_CONFORM_BACKEND=cpu
export EMBER_TEST_CONFORM_BACKEND
script=${EMBER_TEST_DATA_DIR:+$EMBER_TEST_DATA_DIR/../test_conform.sh}
[ -n "$script" ] && [ -f "$script" ] || script=$(dirname "$0")/test_conform.sh
exec "${SHELL:-/bin/sh}" "$script"
