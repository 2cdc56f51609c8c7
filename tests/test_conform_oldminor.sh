#!/bin/sh
# tests/test_conform_oldminor.sh — the ABI promise for older plugins, end to end: the loader
# suite's test plugin in mode old-minor (tests/plugins/tplugin.c) declares an ops table that
# ends before `add`, as a plugin built against an older minor would. It must load, and
# every op must work: the entries its table lacks read as NULL and run through the cpu
# fallback (ember-conform reports add as "fallback" although the plugin's struct holds a
# pointer there). tests/test_loader.c checks the loading and the registry's view.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
plugins=${EMBER_TEST_PLUGIN_DIR:-$top/tests/plugins/.libs}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/device.ini" <<INI
[backends]
path = ${EMBER_TEST_BACKEND_DIR:-$top/.libs}
[tgood]
mode = old-minor
INI
unset EMBER_DEVICE
EMBER_TEST_REQUIRE="tgood ${EMBER_TEST_REQUIRE:-}" "$top/tools/ember-conform" \
    --config "$tmp/device.ini" --library "$plugins/ember-backend-tgood.so" --tap \
    > "$tmp/conform.tap" 2> "$tmp/conform.err"
# one test of our own first: add's row says fallback (the entry lies past the table's
# struct_size, although the plugin's struct holds a pointer there); then ember-conform's,
# renumbered, and the plan at the end
if grep -q "^ok [0-9]* - add: fallback" "$tmp/conform.tap"; then
    echo "ok 1 - add, past the old table's end, runs through the fallback"
else
    echo "not ok 1 - add, past the old table's end, runs through the fallback"
    sed 's/^/# /' "$tmp/conform.err"
fi
awk '
    /^1\.\./ { if ($0 ~ /SKIP|^1\.\.0/) print "# " $0; next }
    /^ok [0-9]+/ { $2 = $2 + 1; print; next }
    /^not ok [0-9]+/ { $3 = $3 + 1; print; next }
    { print }' "$tmp/conform.tap"
k=$(grep -c '^\(not \)\{0,1\}ok [0-9]' "$tmp/conform.tap")
echo "1..$((k + 1))"
