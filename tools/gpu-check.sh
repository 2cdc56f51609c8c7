#!/bin/sh
# tools/gpu-check.sh — the cuda backend's check on a machine with an NVIDIA GPU (PyTorch
# with CUDA installed there gives the reference timing). In one run it
#   1. shows the GPU (nvidia-smi) and what ember-info sees;
#   2. builds ember for this GPU's architecture only (unless EMBER_BUILD_DIR names a built
#      tree), then runs the whole test suite with EMBER_TEST_REQUIRE=cuda, so that no cuda
#      suite (built for cuda: tests/test_*_cuda, test_cuda_gpu) can skip silently; the
#      other suites keep the backend they are built for (EMBER_DEVICE is not set for them:
#      it would move every context, and e.g. test_print's byte-exact text, to cuda);
#   3. runs the seed examples on cuda and prints their output (the loss lines);
#   4. times the seed's f32 training step — tools/ember-bench --workload seed-autograd on
#      cuda beside bench/seed_torch.py, PyTorch's own run of the same loop — in the same
#      run on the same GPU, and prints one table (also cpu rows, for scale).
# Everything goes to OUTDIR/gpu-check.log, the table to OUTDIR/table.txt, the test logs to
# OUTDIR/tests/. Exits 0 only if the build, every test and every example passed.
#
# Usage: tools/gpu-check.sh [OUTDIR]            (default OUTDIR: ./gpu-check-out)
#   EMBER_BUILD_DIR=DIR   use this configured, built tree instead of building one
#   STEPS=N REPS=R        benchmark steps per repetition and repetitions (200, 5)
#   JOBS=N                parallel make jobs (default: nproc)
# About 3-5 minutes on an H100 (build ~1 min, tests ~2 min, benchmarks < 1 min).
set -u

out=${1:-./gpu-check-out}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
log=$out/gpu-check.log
table=$out/table.txt
steps=${STEPS:-200}
reps=${REPS:-5}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
: > "$log"
failed=0
notes=""

say() {   # a line on stdout and in the log
    printf '%s\n' "$*" | tee -a "$log"
}
section() {
    say ""
    say "== $*"
}
note() {   # a line for the table's summary
    notes="$notes$*
"
}
# run CMD...: output to the log only; returns CMD's status
run() {
    printf '$ %s\n' "$*" >> "$log"
    "$@" >> "$log" 2>&1
}

section "GPU"
gpu_name=unknown
cc=
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader \
        2>&1 | tee -a "$log"
    gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
else
    say "nvidia-smi not found"
fi
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
          "device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' \
        2>&1 | tee -a "$log"
    if [ "$gpu_name" = unknown ]; then
        gpu_name=$(python3 -c 'import torch; print(torch.cuda.get_device_name(0))' 2>/dev/null || echo unknown)
    fi
fi

# ------------------------------------------------------------------ build
section "build"
if [ -n "${EMBER_BUILD_DIR:-}" ]; then
    build=$(cd "$EMBER_BUILD_DIR" && pwd) || exit 2
    say "using the built tree $build"
else
    build=$out/build
    gencode=
    case $cc in
        [0-9][0-9]|[0-9][0-9][0-9]) gencode="-gencode arch=compute_$cc,code=sm_$cc" ;;
    esac
    say "building in $build${gencode:+ for sm_$cc only} (log: $log)"
    if [ ! -x "$src/configure" ]; then
        (cd "$src" && run autoreconf -fi) || { say "autoreconf failed"; exit 1; }
    fi
    mkdir -p "$build"
    if ! (cd "$build" && run "$src/configure" --disable-opencl ${gencode:+NVCC_GENCODE="$gencode"}); then
        say "configure failed: see $log"
        exit 1
    fi
    if ! grep -q "cuda     yes" "$log"; then
        say "configure did not enable the cuda backend: see $log"
        exit 1
    fi
fi
if ! run make -C "$build" -j"$jobs"; then
    say "build failed: see $log"
    exit 1
fi
say "built: $(ls "$build"/.libs/ember-backend-cuda.so 2>/dev/null || echo 'NO ember-backend-cuda.so')"

ini=$out/device.ini
printf '[device]\nbackend = cuda\n[backends]\npath = %s/.libs\n' "$build" > "$ini"

section "ember-info"
"$build/tools/ember-info" --config "$ini" 2>&1 | tee -a "$log" | sed -n '/ember-backend-cuda/,/^  [a-z]/p'

# ------------------------------------------------------------------ tests
section "make check with EMBER_TEST_REQUIRE=cuda"
unset EMBER_DEVICE
EMBER_TEST_REQUIRE=cuda make -C "$build" -j"$jobs" check > "$out/check.out" 2>&1
check_rc=$?
cat "$out/check.out" >> "$log"
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):|^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$out/check.out"
mkdir -p "$out/tests"
cp "$build"/test-suite.log "$out/tests/" 2>/dev/null
cp "$build"/tests/*.log "$out/tests/" 2>/dev/null
totals=$(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$out/check.out" | sed 's/^# //' | tr -s ' ' | paste -sd' ' -)
if [ $check_rc -ne 0 ]; then
    failed=1
    note "make check: FAILED ($totals); see $out/tests/test-suite.log"
    grep -A40 '^FAIL:\|^ERROR:' "$build/test-suite.log" 2>/dev/null | head -80
else
    note "make check: ok ($totals)"
fi

# ------------------------------------------------------------------ examples
section "seed examples on cuda"
ex_ok=0
ex_n=0
for ex in clamp autograd_basics two_layer_numpy two_layer_autograd "two_layer_autograd --sgd"; do
    ex_n=$((ex_n + 1))
    say "--- $ex"
    # shellcheck disable=SC2086
    EMBER_CONFIG=$ini EMBER_DEVICE=cuda "$build/examples/"$ex > "$out/ex.out" 2> "$out/ex.err"
    rc=$?
    cat "$out/ex.out" "$out/ex.err" >> "$log"
    cat "$out/ex.out"
    sed 's/^/  stderr: /' "$out/ex.err"
    if [ $rc -eq 0 ]; then
        ex_ok=$((ex_ok + 1))
    else
        failed=1
        say "FAILED: $ex (exit $rc)"
    fi
done
rm -f "$out/ex.out" "$out/ex.err"
note "examples on cuda: $ex_ok of $ex_n ran"

# ------------------------------------------------------------------ benchmark
section "benchmark: seed f32 training step, $reps x $steps steps"
bench=$build/tools/ember-bench
ember_cuda=- ember_cpu=- torch_cuda=- torch_cpu=-
us_of() {   # the median from a "<name> <us> us/step" line
    sed -n "s/^$1 *\([0-9.][0-9.]*\) us\/step.*/\1/p" | head -1
}
if [ -x "$bench" ] || [ -f "$bench" ]; then
    for b in cuda cpu; do
        "$bench" --config "$ini" --backend "$b" --workload seed-autograd --steps "$steps" --reps "$reps" \
            > "$out/bench.out" 2>&1
        tee -a "$log" < "$out/bench.out"
        v=$(us_of seed-autograd < "$out/bench.out")
        [ -n "$v" ] || { v=-; [ "$b" = cuda ] && failed=1; }
        eval "ember_$b=\$v"
    done
else
    say "tools/ember-bench is missing from $build: ember's side cannot be timed"
    note "ember-bench MISSING in $build/tools: no ember timing"
    failed=1
fi
if python3 -c 'import torch' >/dev/null 2>&1; then
    for d in cuda cpu; do
        python3 "$src/bench/seed_torch.py" --device "$d" --steps "$steps" --reps "$reps" \
            > "$out/bench.out" 2>&1
        tee -a "$log" < "$out/bench.out"
        v=$(us_of "torch seed-autograd" < "$out/bench.out")
        eval "torch_$d=\${v:--}"
    done
else
    say "PyTorch is not installed: no reference timing"
    note "PyTorch MISSING: no reference timing"
fi
rm -f "$out/bench.out"

ratio() {
    if [ "$1" = - ] || [ "$2" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}
r_cuda=$(ratio "$ember_cuda" "$torch_cuda")
r_cpu=$(ratio "$ember_cpu" "$torch_cpu")
verdict="-"
if [ "$r_cuda" != - ]; then
    verdict=$(awk -v r="$r_cuda" 'BEGIN { print (r <= 1.0 ? "goal met: ember at least as fast as PyTorch" : "goal NOT met: ember slower than PyTorch") }')
fi

{
    echo "ember gpu-check — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "GPU: $gpu_name"
    echo ""
    echo "seed f32 training step (N, D_in, H, D_out = 64, 1000, 100, 10), median of $reps x $steps steps"
    printf '%-8s %14s %14s %14s\n' device "ember us/step" "torch us/step" "ember/torch"
    printf '%-8s %14s %14s %14s\n' cuda "$ember_cuda" "$torch_cuda" "$r_cuda"
    printf '%-8s %14s %14s %14s\n' cpu "$ember_cpu" "$torch_cpu" "$r_cpu"
    echo "$verdict"
    echo ""
    printf '%s' "$notes"
} > "$table"
section "summary"
tee -a "$log" < "$table"
exit $failed
