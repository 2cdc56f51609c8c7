#!/bin/sh
# bench/layers_overhead.sh — what the profile layer costs, and how its table's total compares
# with the wall time a program measures itself.
#  1. ember-bench's seed-autograd (the seed's training step) and overhead (one add of two
#     1-element tensors, end to end: the per-op cost) with no layers, with layers = profile
#     and, on devices without host buffers (where profile synchronises after every kernel and
#     copy by default), with profile's sync = off: interleaved rounds, then per variant the
#     median over rounds of that round's ratio to the unlayered run.
#  2. examples/fashion_mnist (SKIP without the dataset) prints each epoch's wall time (the
#     training loop and the test evaluation), and the epochs end with the program's last ops.
#     Under profile with a trace, the union of the op, kernel and copy intervals in that last
#     stretch of the trace (the epochs' summed time) is what the table accounts for; the rest
#     is the gap (the program's own code, scopes and handles between ops, and the layer's
#     bookkeeping). Three runs; needs python3 (json).
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
mk fm profile "trace = $tmp/fm.json"
for r in 1 2 3; do
    EMBER_CONFIG="$tmp/fm.ini" "$build/examples/fashion_mnist" --data "$fm" --train-limit 12000 \
        --test-limit 2000 --epochs 2 --seed 1 --quiet > "$tmp/fm.out"
    python3 - "$tmp/fm.out" "$tmp/fm.json" "$backend" "$r" <<'PY'
import json, sys
wall = sum(float(l.split()[l.split().index("s") - 1]) for l in open(sys.argv[1]) if l.startswith("epoch"))
ev = [e for e in json.load(open(sys.argv[2]))["traceEvents"] if e.get("ph") == "X" and e["cat"] != "phase"]
end = max(e["ts"] + e["dur"] for e in ev)
start = end - wall * 1e6   # the epochs end with the last evaluation, the program's last ops
iv = sorted((max(e["ts"], start), e["ts"] + e["dur"]) for e in ev if e["ts"] + e["dur"] > start)
covered, cur_a, cur_b = 0.0, None, None
for a, b in iv:   # the union of op, kernel and copy intervals in the epochs' window
    if cur_b is None or a > cur_b:
        covered += (cur_b - cur_a) if cur_b is not None else 0
        cur_a, cur_b = a, b
    else:
        cur_b = max(cur_b, b)
covered += (cur_b - cur_a) if cur_b is not None else 0
print("fashion_mnist on %s, round %s: 2 epochs took %.3f s by the program's clock; the profile's "
      "ops, kernels and copies cover %.3f s of them; the gap, %.3f s (%.1f%%), is time outside "
      "them" % (sys.argv[3], sys.argv[4], wall, covered / 1e6, wall - covered / 1e6,
                100 * (wall - covered / 1e6) / wall))
PY
done
