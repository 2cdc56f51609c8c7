#!/bin/sh
# tests/test_conform.sh — ember-conform --tap on one backend (EMBER_TEST_CONFORM_BACKEND,
# default cpu): the op-level conformance suite, the very one third-party plugins run, with
# one TAP test per op. Plugins come from the build tree, named in a device.ini of our own.
# A backend with no usable device is a SKIP, unless EMBER_TEST_REQUIRE names it.
set -u
backend=${EMBER_TEST_CONFORM_BACKEND:-cpu}
top=${EMBER_TEST_BUILD_DIR:-.}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/device.ini" <<INI
[backends]
path = ${EMBER_TEST_BACKEND_DIR:-$top/.libs}
INI
unset EMBER_DEVICE
"$top/tools/ember-conform" --config "$tmp/device.ini" --backend "$backend" --tap
