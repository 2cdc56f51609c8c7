#!/bin/sh
# bench/layers_overhead.sh — what the layers cost on the seed's training step (ember-bench's
# seed-autograd workload): no layers, layers = profile, and (on devices without host buffers,
# where profile synchronises after every call by default) profile with sync = off, timed in
# interleaved rounds; then the median of each round's ratio to the unlayered step. And the
# profile table's total against the wall time a program measures itself: examples/fashion_mnist
# (2 epochs; SKIP without the dataset) prints each epoch's time (its training loop and test
# evaluation); the table's op self time less the dataset's upload (the "to" op, before the
# loop) is the time spent inside ops during those epochs, and the rest is the gap.
#
#   bench/layers_overhead.sh [BUILD_DIR] [BACKEND] [ROUNDS]     (defaults: . cpu 9)
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
for r in $(seq "$rounds"); do
    line="round $r:"
    for v in $variants; do
        us=$("$build/tools/ember-bench" --config "$tmp/$v.ini" --workload seed-autograd --reps 10 \
             2>/dev/null | awk '/^seed-autograd/ { print $2 }')
        echo "$us" >> "$tmp/$v.us"
        line="$line $v $us us"
    done
    echo "$line"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for v in $variants; do
    [ "$v" = plain ] && continue
    r=$(paste "$tmp/$v.us" "$tmp/plain.us" | awk '{ print $1 / $2 }' | median)
    echo "seed-autograd on $backend, $v / no layers: median ratio $r over $rounds rounds" \
         "(median $(median < "$tmp/$v.us") us against $(median < "$tmp/plain.us") us)"
done
grep -E '^Device-synchronised|^Not synchronised' "$tmp/profile.table" | head -1
if [ -f "$fm/train-images-idx3-ubyte.gz" ]; then
    mk fm profile
    EMBER_CONFIG="$tmp/fm.ini" "$build/examples/fashion_mnist" --data "$fm" --train-limit 12000 \
        --test-limit 2000 --epochs 2 --seed 1 --quiet > "$tmp/fm.out"
    cat "$tmp/fm.out"
    awk '
        function us(t) { if (t ~ /us$/) return t + 0; if (t ~ /ms$/) return t * 1e3; return t * 1e6 }
        FILENAME ~ /out$/ && /^epoch/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "s") wall += $i * 1e6 }
        FILENAME ~ /table$/ && $1 == "to" && $2 == "op" { load = us($6) }
        FILENAME ~ /table$/ && /^Self time total \(ops\)/ { sub(/;.*/, "", $5); ops = us($5) }
        END {
            inside = ops - load
            printf "fashion_mnist on %s: the epochs took %.3f s by the program'"'"'s clock; the " \
                   "table: %.3f s inside ops (%.3f s of op self time less %.3f s uploading the " \
                   "dataset); the gap, %.3f s (%.1f%%), is time outside ops\n", backend,
                   wall / 1e6, inside / 1e6, ops / 1e6, load / 1e6, (wall - inside) / 1e6,
                   100 * (wall - inside) / wall
        }' backend="$backend" "$tmp/fm.out" "$tmp/fm.table"
fi
