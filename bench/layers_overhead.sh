#!/bin/sh
# bench/layers_overhead.sh — what the profile layer costs, and how its table's total compares
# with the wall time a program measures itself.
#  1. ember-bench's seed-autograd (the seed's training step) and overhead (one add of two
#     1-element tensors, end to end: the per-op cost) with no layers, with layers = profile
#     and, on devices without host buffers (where profile synchronises after every kernel and
#     copy by default), with profile's sync = off: interleaved rounds, then per variant the
#     median over rounds of that round's ratio to the unlayered run.
#  2. examples/fashion_mnist (SKIP without the dataset) prints each epoch's wall time (the
#     training loop and the test evaluation). Run with 1 and with 2 epochs under profile, the
#     difference of the tables' self time totals (ops, and kernels and copies outside any op:
#     the optimizer's fused step) is what the second epoch spent in them; beside the second
#     epoch's wall time, the rest is the gap (the program's own code, scopes and handles
#     outside ops, and the layer's bookkeeping). Three rounds.
#
#   bench/layers_overhead.sh [BUILD_DIR] [BACKEND] [ROUNDS]     (defaults: . cpu 9; ROUNDS 0:
#                                                                only part 2)
set -eu
build=$(cd "${1:-.}" && pwd)
backend=${2:-cpu}
rounds=${3:-9}
fm=${EMBER_TEST_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() {  # mk NAME LAYERS [SECTION LINES]
    printf '[device]\nbackend = %s\nlayers = %s\n[backends]\npath = %s/.libs\n[profile]\ntable = %s\n%s\n' \
        "$backend" "$2" "$build" "$tmp/$1.table" "${3:-}" > "$tmp/$1.ini"
}
mk plain none
mk profile profile
mk nosync profile "sync = off"
unset EMBER_LAYERS EMBER_DEVICE
variants="plain profile nosync"
[ "$backend" = cpu ] && variants="plain profile"   # cpu: host buffers, never synchronised
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
[ "$rounds" -gt 0 ] || variants=   # ROUNDS 0: only the Fashion-MNIST comparison
for w in seed-autograd overhead; do
    [ -n "$variants" ] || break
    for r in $(seq "$rounds"); do
        line="$w round $r:"
        for v in $variants; do
            us=$("$build/tools/ember-bench" --config "$tmp/$v.ini" --workload "$w" --reps 10 \
                 2>/dev/null | awk -v w="$w" '$1 == w { print $2 }')
            echo "$us" >> "$tmp/$w.$v.us"
            line="$line $v $us us"
        done
        echo "$line"
    done
    for v in $variants; do
        [ "$v" = plain ] && continue
        r=$(paste "$tmp/$w.$v.us" "$tmp/$w.plain.us" | awk '{ print $1 / $2 }' | median)
        echo "$w on $backend, $v / no layers: median ratio $r over $rounds rounds" \
             "(median $(median < "$tmp/$w.$v.us") us against $(median < "$tmp/$w.plain.us") us)"
    done
done
[ -z "$variants" ] || grep -E '^Device-synchronised|^Not synchronised' "$tmp/profile.table" | head -1
[ -f "$fm/train-images-idx3-ubyte.gz" ] || exit 0
us() { awk '
    function us(t) { if (t ~ /us$/) return t + 0; if (t ~ /ms$/) return t * 1e3; return t * 1e6 }
    /^Self time total: / { print us($4) }' "$1"; }
for r in 1 2 3; do
    for e in 1 2; do
        mk "fm$e" profile
        EMBER_CONFIG="$tmp/fm$e.ini" "$build/examples/fashion_mnist" --data "$fm" \
            --train-limit 12000 --test-limit 2000 --epochs "$e" --seed 1 --quiet > "$tmp/fm$e.out"
    done
    wall=$(awk '/^epoch  2/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "s") print $i * 1e6 }' "$tmp/fm2.out")
    t1=$(us "$tmp/fm1.table")
    t2=$(us "$tmp/fm2.table")
    awk -v w="$wall" -v a="$t1" -v b="$t2" -v r="$r" -v be="$backend" 'BEGIN {
        inside = b - a
        printf "fashion_mnist on %s, round %d: epoch 2 took %.3f s by the program'"'"'s clock; " \
               "the tables: %.3f s in ops and kernels (self time total %.3f s with 2 epochs, %.3f s with 1); " \
               "the gap: %.3f s (%.1f%% of the epoch)\n", be, r, w / 1e6, inside / 1e6, b / 1e6,
               a / 1e6, (w - inside) / 1e6, 100 * (w - inside) / w }'
done
