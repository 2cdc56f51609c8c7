#!/bin/sh
# tests/test_layers_run.sh — the layers on unmodified programs, on one backend
# (EMBER_TEST_EXAMPLES_BACKEND, default cpu), chosen only in device.ini, as TAP:
#   the seed example (examples/two_layer_autograd) with layers = profile prints the same
#   losses as without, and the sorted table with its phases, and writes the trace file;
#   examples/fashion_mnist (a short run; SKIP without the dataset) with layers = profile
#   trains as usual and prints the table; layers = validate passes the seed (no divergence,
#   no precondition broken) and ember-conform; ember-info shows the effective stack.
set -u
backend=${EMBER_TEST_EXAMPLES_BACKEND:-cpu}
top=${EMBER_TEST_BUILD_DIR:-.}
fm=${EMBER_TEST_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE EMBER_LAYERS
ini() {  # ini LAYERS [EXTRA LINES]
    printf '[device]\nbackend = %s\nlayers = %s\nlog = info\n[backends]\npath = %s\n%s\n' \
        "$backend" "$1" "${EMBER_TEST_BACKEND_DIR:-$top/.libs}" "${2:-}" > "$tmp/device.ini"
}
ini none
export EMBER_CONFIG="$tmp/device.ini"
if ! "$top/examples/clamp" > /dev/null 2> "$tmp/clamp.err"; then
    if ! echo "${EMBER_TEST_REQUIRE:-}" | grep -q "$backend"; then
        echo "1..0 # SKIP backend $backend not usable: $(head -1 "$tmp/clamp.err")"
        exit 0
    fi
fi
echo "1..8"
n=0
check() {  # check DESCRIPTION COMMAND...
    n=$((n + 1)); d=$1; shift
    if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fi
}
show() { sed 's/^/# /' "$1" | head -40; }
seed="$top/examples/two_layer_autograd"

"$seed" --steps 300 --sgd > "$tmp/plain.out" 2> /dev/null
ini profile "[profile]
trace = $tmp/seed.json"
"$seed" --steps 300 --sgd > "$tmp/prof.out" 2> "$tmp/prof.err"
rc=$?
check "seed with layers = profile: exit 0, the same losses as without ($backend)" \
    sh -c "[ $rc -eq 0 ] && cmp -s '$tmp/plain.out' '$tmp/prof.out'"
table_ok() {  # the table's header, the seed's ops and kernels, the phases
    grep -q "^Name  *Kind  *# Calls  *Total" "$1" && grep -q "^mm  *op  *1500 " "$1" &&
        grep -q "^gemm  *kernel  *1500 " "$1" && grep -q "^sum  *op  *300 " "$1" &&
        grep -q "^Phases: forward .* (300 spans), backward .* (300), optimizer .* (300)" "$1"
}
check "seed with layers = profile prints the sorted table with 300 steps of each phase ($backend)" \
    table_ok "$tmp/prof.err"
table_ok "$tmp/prof.err" || show "$tmp/prof.err"
check "the trace file holds trace events of the three phases ($backend)" \
    sh -c "grep -q '\"traceEvents\"' '$tmp/seed.json' && grep -q '\"cat\": \"phase\", \"name\": \"optimizer\"' '$tmp/seed.json' &&
           grep -q '\"cat\": \"phase\", \"name\": \"backward\"' '$tmp/seed.json' && tail -1 '$tmp/seed.json' | grep -qx ']}'"

if [ -f "$fm/train-images-idx3-ubyte.gz" ]; then
    ini profile
    "$top/examples/fashion_mnist" --data "$fm" --train-limit 2000 --test-limit 1000 --epochs 1 \
        --checkpoint "$tmp/fm" \
        --quiet > "$tmp/fm.out" 2> "$tmp/fm.err"
    rc=$?
    check "fashion_mnist with layers = profile trains and prints the table ($backend)" \
        sh -c "[ $rc -eq 0 ] && grep -q '^epoch  1 ' '$tmp/fm.out' && grep -q '^mm  *op  ' '$tmp/fm.err' &&
               grep -q '^Phases: forward .* backward .* optimizer [^(]* (16)' '$tmp/fm.err'"
    [ $rc -eq 0 ] || show "$tmp/fm.err"
else
    n=$((n + 1)); echo "ok $n - fashion_mnist with layers = profile # SKIP no dataset in $fm"
fi

ini validate
"$seed" --steps 100 --sgd > "$tmp/val.out" 2> "$tmp/val.err"
rc=$?
head -1 "$tmp/plain.out" > "$tmp/plain2.out"
check "seed with layers = validate: exit 0, the same losses ($backend)" \
    sh -c "[ $rc -eq 0 ] && cmp -s '$tmp/plain2.out' '$tmp/val.out'"
check "validate compared every kernel call of the seed with cpu: none diverged ($backend)" \
    grep -q "validate: [0-9]* kernel calls checked, [0-9]* compared with the cpu reference: 0 diverged, 0 wrote NaN/Inf from finite inputs, 0 broke a precondition" "$tmp/val.err"
grep -q "0 diverged" "$tmp/val.err" || show "$tmp/val.err"

ini validate
"$top/tools/ember-conform" --backend "$backend" --config "$tmp/device.ini" > "$tmp/conform.out" 2>&1
rc=$?
check "ember-conform with layers = validate passes ($backend)" \
    sh -c "[ $rc -eq 0 ] && grep -q ' 0 FAIL' '$tmp/conform.out' && grep -q ' 0 diverged' '$tmp/conform.out'"
[ $rc -eq 0 ] || grep "FAIL\|diverge" "$tmp/conform.out" | head -20 | sed 's/^/# /'

ini "profile, validate"
"$top/tools/ember-info" --config "$tmp/device.ini" > "$tmp/info.out" 2>&1
check "ember-info lists the layers and the stack profile -> validate -> $backend" \
    sh -c "grep -q '^  stack: *profile -> validate -> $backend\$' '$tmp/info.out' &&
           grep -q '^  validate\$' '$tmp/info.out' && grep -q 'keys: *nan, divergence, ulps' '$tmp/info.out'"
