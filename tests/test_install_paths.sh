#!/bin/sh
# tests/test_install_paths.sh — the install directories compiled into libember are the ones
# this build is configured with (configure's --prefix, --libdir, --sysconfdir, as make sees
# them now, passed in by the Makefile): the device.ini of sysconfdir and the plugin
# directory ember-info reports, both read from libember. They come from the generated
# core/install_paths.h, which make rewrites after a reconfigure; libdir (EM_LIBDIR) is in
# the same header, used by the same file as the plugin directory.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE EMBER_BACKEND_PATH XDG_CONFIG_HOME
export EMBER_CONFIG=/dev/null

echo "1..3"
if [ -z "${EMBER_TEST_SYSCONFDIR:-}" ] || [ -z "${EMBER_TEST_BACKENDDIR:-}" ]; then
    echo "not ok 1 - the Makefile passes EMBER_TEST_SYSCONFDIR and EMBER_TEST_BACKENDDIR"
    exit 1
fi
echo "ok 1 - the Makefile passes sysconfdir=$EMBER_TEST_SYSCONFDIR backenddir=$EMBER_TEST_BACKENDDIR"
(cd "$tmp" && "$top/tools/ember-info") > "$tmp/info.out" 2>&1
if grep -q "^ *system (sysconfdir) *$EMBER_TEST_SYSCONFDIR/ember/device.ini " "$tmp/info.out"; then
    echo "ok 2 - libember looks for $EMBER_TEST_SYSCONFDIR/ember/device.ini"
else
    echo "not ok 2 - libember looks for $EMBER_TEST_SYSCONFDIR/ember/device.ini"
    grep "sysconfdir" "$tmp/info.out" | sed 's/^/# /'
fi
if grep -q "^ *[0-9]*\. $EMBER_TEST_BACKENDDIR  *install dir " "$tmp/info.out"; then
    echo "ok 3 - libember's install plugin directory is $EMBER_TEST_BACKENDDIR"
else
    echo "not ok 3 - libember's install plugin directory is $EMBER_TEST_BACKENDDIR"
    grep "install dir" "$tmp/info.out" | sed 's/^/# /'
fi
