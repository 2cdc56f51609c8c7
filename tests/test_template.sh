#!/bin/sh
# tests/test_template.sh — a hardware vendor's road, walked in make check. plugins/template
# is copied to a scratch directory (the source tree is read-only under distcheck) and built
# there by its own plain Makefile, with pkg-config pointed at an ember-uninstalled.pc that
# describes this build tree (headers from the source tree). Then, as TAP:
#   - the plugin builds, its Makefile's check target runs ember-conform, and
#     `make install DESTDIR=...` puts it in pkg-config's backenddir;
#   - ember-info finds the installed copy through EMBER_BACKEND_PATH and shows its ABI, the
#     ops it implements and the ops that fall back to cpu, and the op_fallback policy;
#   - the -DTEMPLATE_MINIMAL build (memory + gemm only) trains examples/two_layer_autograd
#     for 300 steps through the fallback, with the cpu run's losses, announcing the
#     fallback once (and per op at [device] log = info); op_fallback = error makes it fail
#     with "op ... is not supported by backend tminimal";
#   - the kit's pass-through layer (layer.c, make layer) is found on EMBER_BACKEND_PATH and
#     sees every gemm of the seed without changing a loss;
#   - ember-conform --library <the template> passes: one test per op, the ops the template
#     lacks checked through the cpu fallback.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
data=${EMBER_TEST_DATA_DIR:-tests/data}
src=$(cd "$data/../.." && pwd)
top=$(cd "$top" && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE EMBER_BACKEND_PATH

n=0
check() {  # check DESCRIPTION COMMAND...
    n=$((n + 1)); d=$1; shift
    if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fi
}
show() {  # a file, as TAP comments
    sed 's/^/# /' "$1"
}

# ---- the vendor's tree and pkg-config
mkdir -p "$tmp/kit" "$tmp/pc" "$tmp/dest" "$tmp/prefix"
: > "$tmp/prefix/none.ini"   # an empty device.ini: the tests' EMBER_CONFIG names no file
cp "$src/plugins/template/template.c" "$src/plugins/template/layer.c" \
    "$src/plugins/template/Makefile" "$tmp/kit/"
chmod u+w "$tmp/kit/"*
version=$(sed -n 's/^Version: *//p' "$top/ember.pc")
cat > "$tmp/pc/ember-uninstalled.pc" <<PC
prefix=$tmp/prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
backenddir=\${libdir}/ember/backends
Name: ember
Description: ember, uninstalled build tree (make check)
Version: ${version:-0}
Libs: -L$top/.libs -lember
Cflags: -I$src/include
PC
PKG_CONFIG_PATH=$tmp/pc
PKG_CONFIG_LIBDIR=$tmp/pc
export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR
backenddir=$(pkg-config --variable=backenddir ember)
# the template's own make, not this one's flags or job server; the compiler configure found
cc=$(sed -n 's/^CC = //p' "$top/Makefile" 2>/dev/null)
vmake() {
    MAKEFLAGS= MFLAGS= MAKELEVEL= make -C "$tmp/kit" CC="${cc:-cc}" "$@" >> "$tmp/build.log" 2>&1
}

if ! vmake || ! vmake minimal; then
    echo "1..1"
    echo "not ok 1 - plugins/template builds out of tree with pkg-config"
    show "$tmp/build.log"
    exit 1
fi
check "plugins/template builds out of tree with pkg-config alone (ember-backend-template.so, -tminimal.so)" \
    test -f "$tmp/kit/ember-backend-template.so" -a -f "$tmp/kit/ember-backend-tminimal.so"
vmake install DESTDIR="$tmp/dest"
check "make install DESTDIR= puts it in pkg-config's backenddir" \
    test -f "$tmp/dest$backenddir/ember-backend-template.so"

# the Makefile's own check target runs the conformance tool (a few ops: the full run is below)
vmake check EMBER_CONFORM="$top/tools/ember-conform" \
    CONFORM_FLAGS="--config $tmp/prefix/none.ini --filter relu"
check "the template's make check runs ember-conform on it" \
    grep -q "^relu  *relu  *pass" "$tmp/build.log"

# ---- ember-info finds the installed copy through EMBER_BACKEND_PATH and says what falls back
cat > "$tmp/info.ini" <<INI
[device]
backend = template
INI
EMBER_BACKEND_PATH=$tmp/dest$backenddir "$top/tools/ember-info" --config "$tmp/info.ini" \
    > "$tmp/info.out" 2> "$tmp/info.err"
info_ok() {
    grep -q "found via: *EMBER_BACKEND_PATH" "$tmp/info.out" &&
    grep -q "implements 7 of 60 ops" "$tmp/info.out" &&
    grep -q "rng_uniform" "$tmp/info.out" &&
    grep -q "op_fallback = cpu" "$tmp/info.out" &&
    grep -q "backend: *template" "$tmp/info.out"
}
check "ember-info: the installed template via EMBER_BACKEND_PATH, 7 of 60 ops, the fallback ops and policy" info_ok
info_ok || { show "$tmp/info.out"; show "$tmp/info.err"; }

# ---- memory + gemm only: the seed's network trains through the fallback
ini() {  # ini FILE BACKEND [EXTRA [device] LINES]
    f=$1; b=$2; shift 2
    { echo "[device]"; echo "backend = $b"; for l in "$@"; do echo "$l"; done
      if [ "$b" = tminimal ]; then echo "[tminimal]"; echo "library = $tmp/kit/ember-backend-tminimal.so"; fi
    } > "$f"
}
ini "$tmp/cpu.ini" cpu
ini "$tmp/min.ini" tminimal
ini "$tmp/min-info.ini" tminimal "log = info"
ini "$tmp/min-error.ini" tminimal "op_fallback = error"
EMBER_CONFIG=$tmp/cpu.ini "$top/examples/two_layer_autograd" --steps 300 > "$tmp/cpu.out" 2> "$tmp/cpu.err"
EMBER_CONFIG=$tmp/min.ini "$top/examples/two_layer_autograd" --steps 300 > "$tmp/min.out" 2> "$tmp/min.err"
rc=$?
# The losses agree with cpu's to f32 rounding: every op but gemm runs on the cpu backend's
# own kernels, and gemm here is the template's (double accumulators) rather than cpu's
# packed SIMD kernels, so the last digits may differ.
same_losses() {
    test $rc -eq 0 && awk 'NR == FNR { t[NR] = $1; l[NR] = $2; n = NR; next }
        { m++; if ($1 != t[m]) exit 1
          d = $2 - l[m]; if (d < 0) d = -d; s = l[m] < 0 ? -l[m] : l[m]
          if (d > 1e-4 * s) { print "# step " $1 ": " $2 " vs cpu " l[m]; exit 1 } }
        END { if (m != n || n != 3) exit 1 }' "$tmp/cpu.out" "$tmp/min.out"
}
check "memory + gemm only (tminimal): two_layer_autograd --steps 300 gives cpu's losses (rel. 1e-4)" same_losses
same_losses || { echo "# cpu:"; show "$tmp/cpu.out"; echo "# tminimal:"; show "$tmp/min.out"; show "$tmp/min.err"; }
check "the fallback is announced once, at context creation, listing the 59 ops" \
    test "$(grep -c "backend 'tminimal' does not implement 59 ops" "$tmp/min.err")" -eq 1

EMBER_CONFIG=$tmp/min-info.ini "$top/examples/two_layer_autograd" --steps 3 > /dev/null 2> "$tmp/info-log.err"
check "[device] log = info: one notice per op at its first fallback" \
    test "$(grep -c "op rng_normal is not implemented by backend tminimal: running it on cpu" \
            "$tmp/info-log.err")" -eq 1
EMBER_CONFIG=$tmp/min-error.ini "$top/examples/two_layer_autograd" --steps 3 > /dev/null 2> "$tmp/error.err"
rc=$?
check "[device] op_fallback = error: the run fails, naming the op and the backend" \
    test $rc -ne 0 -a -n "$(grep "is not supported by backend tminimal" "$tmp/error.err")"
[ $rc -ne 0 ] || show "$tmp/error.err"

# ---- the pass-through layer: built by the kit's Makefile, found on EMBER_BACKEND_PATH, it
# sees every gemm of the seed (2 forward + 3 backward a step) and changes no loss
vmake layer LAYER=acmepass
printf '[device]\nbackend = cpu\nlayers = acmepass\n[acmepass]\nreport = on\n' > "$tmp/layer.ini"
EMBER_BACKEND_PATH=$tmp/kit EMBER_CONFIG=$tmp/layer.ini "$top/examples/two_layer_autograd" \
    --steps 300 > "$tmp/layer.out" 2> "$tmp/layer.err"
rc=$?
check "the template's pass-through layer (make layer) counts the seed's 1500 gemm calls, same losses" \
    sh -c "[ $rc -eq 0 ] && cmp -s '$tmp/cpu.out' '$tmp/layer.out' && grep -q 'acmepass: 1500 gemm calls' '$tmp/layer.err'"
[ $rc -eq 0 ] || show "$tmp/layer.err"

# ---- the conformance suite on the template: every op, natively or through the fallback
cat > "$tmp/conform.ini" <<INI
[backends]
path = ${EMBER_TEST_BACKEND_DIR:-$top/.libs}
INI
EMBER_TEST_REQUIRE="template ${EMBER_TEST_REQUIRE:-}" "$top/tools/ember-conform" \
    --config "$tmp/conform.ini" --library "$tmp/kit/ember-backend-template.so" --tap \
    > "$tmp/conform.tap" 2> "$tmp/conform.err"
# its tests follow ours: renumber them, and put the plan at the end
awk -v off=$n '
    /^1\.\./ { next }
    /^ok [0-9]+/ { $2 = $2 + off; print; next }
    /^not ok [0-9]+/ { $3 = $3 + off; print; next }
    { print }' "$tmp/conform.tap"
k=$(grep -c '^\(not \)\{0,1\}ok [0-9]' "$tmp/conform.tap")
[ "$k" -gt 0 ] || { n=$((n + 1)); echo "not ok $n - ember-conform ran on the template"; show "$tmp/conform.err"; }
echo "1..$((n + k))"
