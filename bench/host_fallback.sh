#!/bin/sh
# bench/host_fallback.sh — what EM_DEVICE_HOST_BUFFERS (plugin ABI 1.1) buys a partial
# backend: bench/blas_backend.c (host memory + a cblas gemm, every other kernel NULL) built
# against the frozen ABI 1.0 headers, where the ops it lacks fall back to cpu with a host
# round trip each, and against the current headers, where it declares host buffers and they
# run in place. Both are timed on the seed's training step in interleaved rounds, beside the
# cpu backend itself. Needs cblas (Debian: libopenblas-dev, or libblas-dev).
#
#   bench/host_fallback.sh [BUILD_DIR] [ROUNDS]     (BUILD_DIR: an ember build tree, default .)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-.}" && pwd)
rounds=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
for v in 1.0 1.1; do
    mkdir -p "$tmp/$v"
    inc="-I$src/include"
    [ "$v" = 1.0 ] && inc="-I$src/tests/abi/1.0 $inc"
    # shellcheck disable=SC2086
    $cc -O2 -std=c11 -fPIC -shared -fvisibility=hidden $inc -o "$tmp/$v/ember-backend-blasbench.so" \
        "$src/bench/blas_backend.c" -lblas
    printf '[device]\nbackend = blasbench\n[backends]\npath = %s\n' "$tmp/$v" > "$tmp/$v.ini"
done
printf '[device]\nbackend = cpu\n' > "$tmp/cpu.ini"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for r in $(seq "$rounds"); do
    for v in cpu 1.0 1.1; do
        us=$(OPENBLAS_NUM_THREADS=1 "$build/tools/ember-bench" --config "$tmp/$v.ini" \
             --workload seed-autograd 2>/dev/null | awk '/seed-autograd/ {print $2}')
        echo "round $r  $v  $us us/step"
    done
done | awk '{print} $3 == "1.0" {b[$2] = $4} $3 == "1.1" {a[$2] = $4} $3 == "cpu" {c[$2] = $4}
    END {for (r = 1; r in a; r++)
             printf "round %d: 1.1 / 1.0 = %.2f, 1.1 / cpu = %.2f\n", r, a[r] / b[r], a[r] / c[r]}'
