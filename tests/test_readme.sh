#!/bin/sh
# tests/test_readme.sh — the first program a new user copies: README.md's first C snippet is
# extracted, built against this build tree with -Wall -Wextra -Werror, and run:
#   - on cpu it trains, reads a value back and prints w[0:2] in PyTorch's format, exit 0;
#   - when the configured backend cannot be used (no fallback) it reports why, the message
#     of em_last_error(), on stderr and exits 1: it never prints a NULL context and exits 0.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
data=${EMBER_TEST_DATA_DIR:-tests/data}
src=$(cd "$data/../.." && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE EMBER_BACKEND_PATH

echo "1..4"
# the first ```c block of the README
awk '/^```c$/ && !done { on = 1; next } /^```$/ && on { on = 0; done = 1 } on' \
    "$src/README.md" > "$tmp/first.c"
# a sanitizer build's libember needs its runtime in the program too
san=$(sed -n 's/^CFLAGS = .*\(-fsanitize=[^ ]*\).*/\1/p' "$top/Makefile" 2>/dev/null)
if ! $cc -std=c11 -Wall -Wextra -Werror $san -I"$src/include" -o "$tmp/first" "$tmp/first.c" \
        -L"$top/.libs" -Wl,-rpath,"$top/.libs" -lember > "$tmp/cc.log" 2>&1; then
    echo "not ok 1 - README's first snippet builds with -Wall -Wextra -Werror"
    sed 's/^/# /' "$tmp/cc.log"
    echo "not ok 2 - # SKIP not built"
    echo "not ok 3 - # SKIP not built"
    exit 1
fi
echo "ok 1 - README's first snippet builds with -Wall -Wextra -Werror"

EMBER_CONFIG=/dev/null "$tmp/first" > "$tmp/cpu.out" 2> "$tmp/cpu.err"
rc=$?
r=1
[ $rc -eq 0 ] && grep -q "^0 [0-9]" "$tmp/cpu.out" && grep -q "^75 [0-9]" "$tmp/cpu.out" &&
    grep -q "^tensor(\[\[" "$tmp/cpu.out" && grep -q "grad_fn=<SliceBackward0>)$" "$tmp/cpu.out" &&
    [ ! -s "$tmp/cpu.err" ] && r=0
[ $r -eq 0 ] && echo "ok 2 - on cpu it trains, prints losses and w[0:2], exit 0" ||
    { echo "not ok 2 - on cpu it trains, prints losses and w[0:2], exit 0 (exit $rc)";
      sed 's/^/# /' "$tmp/cpu.out" "$tmp/cpu.err"; }

# a backend that cannot run here and no fallback: the reason, from em_last_error()
printf '[device]\nbackend = tnodev\n[backends]\npath = %s\n' \
    "${EMBER_TEST_PLUGIN_DIR:-$top/tests/plugins/.libs}" > "$tmp/nodev.ini"
EMBER_CONFIG="$tmp/nodev.ini" "$tmp/first" > "$tmp/nodev.out" 2> "$tmp/nodev.err"
rc=$?
r=1
[ $rc -eq 1 ] && [ ! -s "$tmp/nodev.out" ] &&
    grep -q "^ember: backend 'tnodev' has no usable device: no test hardware" "$tmp/nodev.err" && r=0
[ $r -eq 0 ] && echo "ok 3 - an unusable backend: the reason on stderr, exit 1" ||
    { echo "not ok 3 - an unusable backend: the reason on stderr, exit 1 (exit $rc)";
      sed 's/^/# /' "$tmp/nodev.out" "$tmp/nodev.err"; }

# a device fault in the second step's backward (the 15th kernel call on cpu): the loop checks
# each step, so it stops there, updates nothing and reports the fault; a loop checking only
# at the end would go on updating from a failed step
EMBER_CONFIG=/dev/null EMBER_FAIL_KERNEL=15 "$tmp/first" > "$tmp/fault.out" 2> "$tmp/fault.err"
rc=$?
r=1
[ $rc -eq 1 ] && grep -q "^0 [0-9]" "$tmp/fault.out" && ! grep -q "^25 " "$tmp/fault.out" &&
    grep -q "^ember: pow_backward on backend cpu: injected device fault" "$tmp/fault.err" && r=0
[ $r -eq 0 ] && echo "ok 4 - a failed backward stops the loop before any update, exit 1" ||
    { echo "not ok 4 - a failed backward stops the loop before any update, exit 1 (exit $rc)";
      sed 's/^/# /' "$tmp/fault.out" "$tmp/fault.err"; }
