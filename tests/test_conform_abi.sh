#!/bin/sh
# tests/test_conform_abi.sh — ember-conform holds every clause of plugin ABI 1.1 to 1.3: a plugin
# that keeps the clause passes, and one that breaks it fails that clause's row (a clause
# without a failing plugin would test nothing). The plugins are the loader suite's test
# plugin in its modes (tests/plugins/tplugin.c) and the same source built from the frozen
# ABI 1.0, 1.1 and 1.2 headers (ember-backend-tabi10.so, -tabi11.so, -tabi12.so), which must
# load and conform unchanged; and the cpu backend wrapped with one clause of the ops table's
# contract broken (tests/plugins/tbroken.c: copy offsets, gemm's beta, offsets, leading
# dimensions, k = 0), which must fail abi.copy_offsets or abi.gemm; and the cpu backend with
# the optional whole-convolution kernels of ABI 1.4 (tests/plugins/tconv.c), whose conv rows
# must pass through them.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
plugins=${EMBER_TEST_PLUGIN_DIR:-$top/tests/plugins/.libs}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE
n=0
fails=0

# conform NAME PLUGIN MODE [ARGS...]: ember-conform on the plugin, output in $tmp/out
conform() {
    lib=$1; mode=$2; shift 2
    {
        printf '[backends]\npath = %s\n' "${EMBER_TEST_BACKEND_DIR:-$top/.libs}"
        [ -n "$mode" ] && printf '[%s]\nmode = %s\n' "$(basename "$lib" .so | sed 's/^ember-backend-//')" "$mode"
    } > "$tmp/device.ini"
    "$top/tools/ember-conform" --config "$tmp/device.ini" --library "$plugins/$lib" "$@" \
        > "$tmp/out" 2>&1
}

# report DESCRIPTION CONDITION-RESULT
report() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        sed 's/^/# /' "$tmp/out" | tail -n 40
        fails=$((fails + 1))
    fi
}

row() { grep -E "^$1 " "$tmp/out" | grep -oE " (pass|fallback|FAIL|skip) " | head -n 1 | tr -d ' '; }

# the 1.0 plugin: loads, conforms, is told nothing it did not declare (its kernels check)
conform ember-backend-tabi10.so ""
rc=$?
r=1; [ $rc -eq 0 ] && grep -q "ABI 1.0" "$tmp/out" && [ "$(row add)" = pass ] && r=0
report "a plugin built from the frozen ABI 1.0 headers loads and conforms" $r

# the 1.1 plugin: loads and conforms; the integer dtypes and kernels of 1.2, which its table
# and masks cannot name, run on cpu (announced), never in the plugin
conform ember-backend-tabi11.so ""
rc=$?
r=1; [ $rc -eq 0 ] && grep -q "ABI 1.1" "$tmp/out" && [ "$(row add)" = pass ] && r=0
report "a plugin built from the frozen ABI 1.1 headers loads and conforms" $r

# the 1.2 plugin: loads and conforms; its table ends before adam (1.3) and sgd (1.7), so the
# Adam, AdamW and SGD steps are composed from elementwise kernels (marked ~), and pass
conform ember-backend-tabi12.so ""
rc=$?
r=1; [ $rc -eq 0 ] && grep -q "ABI 1.2" "$tmp/out" && [ "$(row add)" = pass ] &&
    [ "$(row optim_adam)" = pass ] && [ "$(row optim_adamw)" = pass ] &&
    [ "$(row optim_sgd)" = pass ] && grep -qE "^optim_adam +adam~ " "$tmp/out" &&
    grep -qE "^optim_sgd +sgd~ " "$tmp/out" && r=0
report "a plugin built from the frozen ABI 1.2 headers loads and conforms, Adam and SGD composed" $r

# per-kernel dtypes: f64 of kernels declared f32-only runs on cpu, everything passes
conform ember-backend-tgood.so f32-only
rc=$?
r=1; [ $rc -eq 0 ] && grep -qE "^add +add\+ +fallback" "$tmp/out" && r=0
report "f32-only: f64 runs on cpu (add marked +), all pass" $r

# host buffers: honest passes in full; the liar fails abi.host_buffers
conform ember-backend-tgood.so host
rc=$?
r=1; [ $rc -eq 0 ] && [ "$(row abi.host_buffers)" = pass ] && r=0
report "host buffers: a plugin that has them passes, ops falling back in place" $r
conform ember-backend-tgood.so host-liar --filter abi.
r=1; [ "$(row abi.host_buffers)" = FAIL ] && r=0
report "host buffers: a plugin whose handles are not host addresses fails abi.host_buffers" $r

# asynchrony: emulated streams pass in full; a device ignoring events fails abi.async
conform ember-backend-tgood.so async
rc=$?
r=1; [ $rc -eq 0 ] && [ "$(row abi.async)" = pass ] && r=0
report "async: copies ordered with events through the core pass" $r
conform ember-backend-tgood.so async-broken --filter abi.
r=1; [ "$(row abi.async)" = FAIL ] && r=0
report "async: a device whose queue ignores event_wait fails abi.async" $r

# describe calls: keeping the contract passes; lying about keys or creating an instance fails
conform ember-backend-tgood.so "" --filter abi.
r=1; [ "$(row abi.describe)" = pass ] && r=0
report "describe: keys of the describe call are the instance's" $r
for how in lie instance; do
    export EMBER_TPLUGIN_DESCRIBE=$how
    conform ember-backend-tgood.so "" --filter abi.
    unset EMBER_TPLUGIN_DESCRIBE
    r=1; [ "$(row abi.describe)" = FAIL ] && r=0
    report "describe: a describe call that breaks the contract ($how) fails abi.describe" $r
done

# the clauses ember-conform checks through the ops table (abi.copy_offsets, abi.gemm): the
# cpu backend wrapped (tbroken) passes them, and fails the right row, naming the clause,
# with each one broken
export EMBER_TBROKEN_CPU="${EMBER_TEST_BACKEND_DIR:-$top/.libs}/ember-backend-cpu.so"
EMBER_TBROKEN=none conform ember-backend-tbroken.so "" --filter abi.
rc=$?
r=1; [ $rc -eq 0 ] && [ "$(row abi.copy_offsets)" = pass ] && [ "$(row abi.gemm)" = pass ] && r=0
report "the cpu backend wrapped, nothing broken: abi.copy_offsets and abi.gemm pass" $r
for clause in "h2d_offset:abi.copy_offsets:copy_h2d of 40 bytes at dst_offset 24" \
              "d2h_offset:abi.copy_offsets:copy_d2h of 40 bytes at src_offset 88" \
              "beta:abi.gemm:gemm beta != 0" "beta0_reads:abi.gemm:gemm beta == 0: C write-only" \
              "k0:abi.gemm:gemm k = 0 with beta != 0" "a_offset:abi.gemm:gemm a_offset" \
              "b_offset:abi.gemm:gemm b_offset" "c_offset:abi.gemm:gemm c_offset" \
              "ld:abi.gemm:gemm lda wider than a row"; do
    how=${clause%%:*}; rest=${clause#*:}; want_row=${rest%%:*}; msg=${rest#*:}
    EMBER_TBROKEN=$how conform ember-backend-tbroken.so "" --filter abi.
    rc=$?
    r=1; [ $rc -eq 1 ] && [ "$(row "$want_row")" = FAIL ] &&
        grep -qF "FAIL $want_row (" "$tmp/out" && grep "FAIL $want_row (" "$tmp/out" | grep -qF "$msg" && r=0
    report "a plugin breaking '$how' fails $want_row, naming the clause" $r
done
unset EMBER_TBROKEN_CPU

# the whole convolutions of ABI 1.4 (optional): the cpu backend plus direct-loop conv2d,
# conv2d_grad_input and conv2d_grad_weight (tests/plugins/tconv.c) passes the conv rows with
# its kernels listed as its own; the cpu backend itself has conv2d and conv2d_grad_input (its
# Winograd and direct kernels) but no conv2d_grad_weight (marked ~: lowered)
export EMBER_TCONV_CPU="${EMBER_TEST_BACKEND_DIR:-$top/.libs}/ember-backend-cpu.so"
conform ember-backend-tconv.so "" --filter conv
rc=$?
r=1; [ $rc -eq 0 ] && [ "$(row conv2d)" = pass ] && [ "$(row conv1d)" = pass ] &&
    [ "$(row conv2d.grad)" = pass ] && [ "$(row conv1d.grad)" = pass ] &&
    grep -qE "^conv2d +conv2d im2col gemm " "$tmp/out" &&
    grep -qE "^conv2d.grad +conv2d_grad_input conv2d_grad_weight im2col" "$tmp/out" && r=0
report "whole-convolution kernels (tconv): the conv rows pass through them" $r
unset EMBER_TCONV_CPU
printf '[backends]\npath = %s\n' "${EMBER_TEST_BACKEND_DIR:-$top/.libs}" > "$tmp/device.ini"
"$top/tools/ember-conform" --config "$tmp/device.ini" \
    --library "${EMBER_TEST_BACKEND_DIR:-$top/.libs}/ember-backend-cpu.so" --filter conv2d \
    > "$tmp/out" 2>&1
rc=$?
r=1; [ $rc -eq 0 ] && [ "$(row conv2d)" = pass ] && [ "$(row conv2d.grad)" = pass ] &&
    grep -qE "^conv2d +conv2d im2col gemm " "$tmp/out" &&
    grep -qE "^conv2d.grad +conv2d_grad_input conv2d_grad_weight im2col" "$tmp/out" && r=0
report "the cpu backend's own conv2d, conv2d_grad_input and conv2d_grad_weight pass" $r

echo "1..$n"
[ $fails -eq 0 ]
