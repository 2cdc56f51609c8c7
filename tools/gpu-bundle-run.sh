#!/bin/sh
# run.sh (tools/gpu-bundle-run.sh, copied into the bundle by tools/gpu-bundle.sh) — the
# cuda backend's one-shot check on a GPU host, from the bundle alone: no build, no
# autotools, no development packages. Finds the host's cuBLAS (CUBLAS_DIR, the CUDA toolkit,
# the Python nvidia-* packages, ld.so.cache) and puts it on LD_LIBRARY_PATH; if the bundled
# plugin cannot run here (a driver older than the CUDA it was built with, no cuBLAS of its
# major version) and the host has nvcc, rebuilds just the plugin from the bundled sources.
# Then runs each step under its own timeout, within a whole budget of 5 minutes:
#   gpu        nvidia-smi, and ember-info on the bundle's plugins
#   suites     test_cuda, test_cuda_gpu, the op, autograd, ... suites on cuda (TAP); two
#              threads on cuda (test_threads)
#   conform    ember-conform --backend cuda (and --filter abi.)
#   examples   the seed examples on cuda; autograd_basics against PyTorch's own printing
#              on cuda:0, byte for byte
#   bench      ember-bench --backend cuda beside bench/seed_torch.py --device cuda, and
#              gemm in ember-bench beside PyTorch's (cuBLAS)
#   sanitizer  compute-sanitizer memcheck on test_cuda_gpu, racecheck and synccheck on the
#              sum reduction (optional: a host that refuses the sanitizer is reported)
#   probes     tensors past 2^31 elements, recovery after an out-of-memory
# (in this order: when the budget runs out, the last steps are the ones left out).
# Every step's output goes to RESULTS/<step>.log; RESULTS/summary.txt has one line per step
# (ok, FAIL, TIMEOUT, SKIP with the reason, "no device": ember has no usable cuda device,
# and run.log says why). Exit status: 0 if no step failed, 1 if one did (a GPU that ember
# cannot use is a failure), 3 on a host without a GPU (every GPU step then says so).
#
# Usage: ./run.sh [RESULTS]       (default: ./results next to run.sh)
#   BUDGET=S     whole-run budget in seconds (300); STEPS=N REPS=R for the benches (200, 5)
#   CUBLAS_DIR=D a directory with libcublas.so.<major> to use first
#   SKIP="a b"   steps to leave out (by name, as in summary.txt)
set -u

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/results}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
budget=${BUDGET:-300}
steps=${STEPS:-200}
reps=${REPS:-5}
start=$(date +%s)
summary=$out/summary.txt
: > "$summary"
failed=0
no_gpu=0
cublas_major='' cuda_version=''
. "$here/bundle.env"   # sets cublas_major, cuda_version

say() { printf '%s\n' "$*" | tee -a "$out/run.log"; }
result() {   # NAME STATUS [DETAIL]
    printf '%-28s %-9s %s\n' "$1" "$2" "${3:-}" | tee -a "$summary"
    case $2 in FAIL|TIMEOUT) failed=1 ;; esac
}
left() { echo $((budget - ($(date +%s) - start))); }
skipped() { case " ${SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }

# step NAME TIMEOUT CMD...: runs CMD with its output in NAME.log, under the smaller of
# TIMEOUT and what is left of the budget; records ok / FAIL / TIMEOUT ("no device" when
# there is none and CMD said so; SKIP when it failed with a line matching $optional, if set).
optional=
step() {
    name=$1 t=$2
    shift 2
    if skipped "$name"; then result "$name" SKIP "SKIP= names it"; return 0; fi
    l=$(left)
    if [ "$l" -le 5 ]; then result "$name" SKIP "out of the ${budget}s budget"; return 0; fi
    [ "$t" -le "$l" ] || t=$l
    s0=$(date +%s)
    printf '$ %s\n' "$*" > "$out/$name.log"
    timeout -k 5 "$t" "$@" >> "$out/$name.log" 2>&1
    rc=$?
    dt=$(($(date +%s) - s0))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        result "$name" TIMEOUT "after ${t}s"
    elif [ "$no_gpu" = 1 ] && grep -q "^1\.\.0 # SKIP backend cuda\|^no device:" "$out/$name.log"; then
        result "$name" "no device"
    elif [ "$no_gpu" = 1 ] && [ $rc -ne 0 ] && grep -q "no usable CUDA device" "$out/$name.log"; then
        result "$name" "no device"
    elif [ $rc -ne 0 ] && [ -n "$optional" ] && grep -qi "$optional" "$out/$name.log"; then
        result "$name" SKIP "refused here (optional): $(grep -i "$optional" "$out/$name.log" | head -1 | cut -c1-80)"
    elif [ $rc -eq 0 ] && grep -q '^not ok ' "$out/$name.log"; then
        result "$name" FAIL "${dt}s$(tap_counts "$out/$name.log"), see $name.log"
        rc=1
    elif [ $rc -eq 0 ]; then
        result "$name" ok "${dt}s$(tap_counts "$out/$name.log")"
    else
        result "$name" FAIL "exit $rc, ${dt}s$(tap_counts "$out/$name.log"), see $name.log"
    fi
    return $rc
}
tap_counts() {   # ", 12 ok, 1 not ok" from TAP / cmocka lines
    awk '/^ok /{o++} /^not ok /{n++} /^\[  PASSED  \] [0-9]+ test/{p+=$4} /^\[  FAILED  \] [0-9]+ test/{f+=$4}
         END { if (o + n) printf ", %d ok, %d not ok", o, n; else if (p + f) printf ", %d passed, %d failed", p, f }' "$1"
}

say "ember GPU check — $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname 2>/dev/null || echo ?)"
say "bundle: $(head -1 "$here/BUILD-INFO"), CUDA $cuda_version, cuBLAS $cublas_major"

# ------------------------------------------------------------------ environment
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# the host's libstdc++ / libgcc_s unless they are too old for the plugins
if LD_LIBRARY_PATH=$LD_LIBRARY_PATH ldd "$here/plugins/ember-backend-cuda.so" "$here/tools/ember-info" 2>&1 |
        grep -q "GLIBCXX\|GCC_[0-9].*not found\|libstdc++.*not found"; then
    export LD_LIBRARY_PATH="$here/lib/compat:$LD_LIBRARY_PATH"
    say "using the bundled libstdc++ (the host's is older)"
fi

# cuBLAS: the first directory with libcublas.so.<major> and libcublasLt.so.<major>
find_cublas() {
    want=libcublas.so.$cublas_major
    for d in ${CUBLAS_DIR:-} /usr/local/cuda/lib64 /usr/local/cuda-*/lib64 \
             /usr/local/cuda/targets/*/lib /usr/local/cuda-*/targets/*/lib /usr/lib/x86_64-linux-gnu \
             /opt/cuda/lib64; do
        [ -f "$d/$want" ] && { echo "$d"; return 0; }
    done
    for py in python3 /usr/bin/python3; do
        command -v "$py" >/dev/null 2>&1 || continue
        for d in $("$py" -c '
import os, sys
try:
    import nvidia
except Exception:
    sys.exit(0)
for root in list(nvidia.__path__):
    for dp, dn, fn in os.walk(root):
        if any(f.startswith("libcublas.so.") for f in fn):
            print(dp)' 2>/dev/null); do
            [ -f "$d/$want" ] && { echo "$d"; return 0; }
        done
    done
    p=$(ldconfig -p 2>/dev/null | awk -v w="$want" '$1 == w { print $NF; exit }')
    [ -n "$p" ] && { dirname "$p"; return 0; }
    return 1
}
if cublas_dir=$(find_cublas); then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$cublas_dir"
    say "cuBLAS $cublas_major: $cublas_dir"
else
    say "no libcublas.so.$cublas_major on this host (CUDA toolkit, Python nvidia-cublas, ld.so.cache)"
fi

# every library the bundle links resolves here (cuBLAS and the driver are loaded later)
step libraries 30 sh -c 'for f in "$1"/bin/* "$1"/tools/* "$1"/examples/* "$1"/plugins/*.so; do
    case $f in *.sh|*.py) continue ;; esac
    ldd "$f" 2>&1 | grep "not found" | sed "s|^|$(basename "$f"): |"
done | grep . && { grep "^needs=" "$1/BUILD-INFO"; exit 1; }; exit 0' libraries "$here"

ini=$out/device.ini
plugins=$here/plugins
write_ini() { printf '[device]\nbackend = cuda\n[backends]\npath = %s\n' "$plugins" > "$ini"; }
write_ini
export EMBER_CONFIG="$ini" EMBER_TEST_BACKEND_DIR="$plugins" EMBER_TEST_DATA_DIR="$here/data" \
    EMBER_TEST_BUILD_DIR="$here" CMOCKA_MESSAGE_OUTPUT=TAP
unset EMBER_DEVICE

# ------------------------------------------------------------------ the GPU
if command -v nvidia-smi >/dev/null 2>&1; then
    step nvidia-smi 20 nvidia-smi
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader >> "$out/run.log" 2>&1
else
    result nvidia-smi "no device" "nvidia-smi not found"
fi
# exit 77: the plugin cannot open a device (any other failure is the suites' to report)
"$here/bin/cuda_probe" sum 1000 > "$out/open.log" 2>&1
if [ $? -eq 77 ]; then
    reason=$(sed -n 's/^no device: //p' "$out/open.log" | head -1)
    say "the bundled cuda plugin cannot open a device: ${reason:-see open.log}"
    # a driver older than the plugin's CUDA, or no cuBLAS of its major: rebuild the plugin
    # with the host's toolkit if there is one
    nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
    if [ -n "$nvcc" ] && command -v nvidia-smi >/dev/null 2>&1 && ! skipped rebuild-plugin; then
        step rebuild-plugin 150 sh -c '
            set -e
            nvcc=$1 srcd=$2 dst=$3
            cu=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
            lib=$cu/lib64; [ -d "$lib" ] || lib=$cu/lib
            rm -rf "$dst" "$dst.obj"
            mkdir -p "$dst" "$dst.obj"
            dnn=""; [ -f "$cu/include/cudnn.h" ] && dnn=-DHAVE_CUDNN   # convolutions on cuDNN
            ls "$srcd"/backends/cuda/*.cu | xargs -P "$(nproc)" -I{} sh -c "
                \"$nvcc\" -Xcompiler -fPIC -gencode arch=compute_90,code=[sm_90,compute_90] -O3 \
                    -std=c++17 --fmad=false -I\"$srcd/include\" -D_GNU_SOURCE $dnn \
                    -DCU_CUDA_LIBDIR=\\\"$lib\\\" -DCU_NVCC_TARGETS=\\\"sm_90,compute_90\\\" \
                    -Xcompiler=-fvisibility=hidden -c {} -o \"$dst.obj/\$(basename {} .cu).o\""
            "$nvcc" -shared -o "$dst/ember-backend-cuda.so" "$dst".obj/*.o -L"$lib" -lcudart_static \
                -lrt -lpthread -ldl -Xlinker -z,nodelete -Xlinker --exclude-libs,libcudart_static.a
            cp "$4" "$dst/"
            echo "rebuilt with $("$nvcc" --version | tail -1) against $lib"' \
            rebuild "$nvcc" "$here/src" "$out/plugins" "$here/plugins/ember-backend-cpu.so"
        if [ -f "$out/plugins/ember-backend-cuda.so" ]; then
            plugins=$out/plugins
            write_ini
            export EMBER_TEST_BACKEND_DIR="$plugins"
            # the rebuilt plugin dlopens the host toolkit's cuBLAS
            cu=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
            export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$cu/lib64"
        fi
    fi
    "$here/bin/cuda_probe" sum 1000 > "$out/open.log" 2>&1
    if [ $? -eq 77 ]; then
        no_gpu=1
        reason=$(sed -n 's/^no device: //p' "$out/open.log" | head -1)
        if nvidia-smi -L >/dev/null 2>&1; then
            # there is a GPU: ember not using it is a failure, not a host without one
            result cuda-device FAIL "${reason:-see open.log}"
        else
            say "no usable GPU: ${reason:-see open.log}"
        fi
    fi
fi
step ember-info 30 "$here/tools/ember-info" --config "$ini"

# ------------------------------------------------------------------ suites
[ "$no_gpu" = 1 ] || export EMBER_TEST_REQUIRE=cuda
cd "$out" || exit 2   # suites that write files write them here
for t in test_cuda test_cuda_gpu test_ops_cuda test_autograd_cuda test_optim_cuda \
         test_dtypes_cuda test_math_cuda test_views_cuda test_index_cuda test_inplace_views_cuda \
         test_stats_cuda test_activation_cuda test_loss_cuda test_nn_cuda test_checkpoint_cuda \
         test_data_cuda test_conv_cuda; do
    step "$t" 60 "$here/bin/$t"
done
step test_threads_cuda 60 env EMBER_TEST_BACKEND_OVERRIDE=cuda "$here/bin/test_threads"

# ------------------------------------------------------------------ conformance
step conform-cuda 90 "$here/tools/ember-conform" --config "$ini" --backend cuda
step conform-cuda-abi 30 "$here/tools/ember-conform" --config "$ini" --backend cuda --filter abi.

# ------------------------------------------------------------------ examples
step examples-cuda 90 env EMBER_TEST_EXAMPLES_BACKEND=cuda EMBER_TEST_BUILD_DIR="$here" \
    sh "$here/bin/test_examples.sh"
torch_py=
for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch' >/dev/null 2>&1; then
        torch_py=$py
        break
    fi
done
if [ "$no_gpu" = 1 ]; then
    result autograd_basics-vs-torch "no device"
elif [ -z "$torch_py" ]; then
    result autograd_basics-vs-torch SKIP "PyTorch is not installed"
else
    step autograd_basics-vs-torch 60 sh -c '
        "$1" -c "
import torch
d = \"cuda:0\"
x = torch.ones(1, device=d, requires_grad=True); print(x)
y = x + 2; print(y)
print(\"===== Run backward =====\")
y.backward(); print(y)
x = torch.ones(2, 2, device=d, requires_grad=True); print(\"x=\", x)
y = x + 2; print(\"y=\", y)
z = y * y * 3; out = z.mean(); print(\"z=\", z); print(\"out=\", out)
print(\"===== out.backward ===\")
out.backward(); print(x.grad)" > "$2/basics.torch" &&
        "$3" > "$2/basics.ember" && diff "$2/basics.torch" "$2/basics.ember" && cat "$2/basics.ember"' \
        check "$torch_py" "$out" "$here/examples/autograd_basics"
fi

# ------------------------------------------------------------------ benchmarks
step bench-ember-cuda 60 "$here/tools/ember-bench" --config "$ini" --backend cuda \
    --workload seed-autograd --steps "$steps" --reps "$reps"
step bench-ember-gemm 60 "$here/tools/ember-bench" --config "$ini" --backend cuda \
    --workload sgemm-2048 --workload dgemm-2048
if [ "$no_gpu" = 1 ]; then
    result bench-torch-cuda "no device"
elif [ -z "$torch_py" ]; then
    result bench-torch-cuda SKIP "PyTorch is not installed"
else
    step bench-torch-cuda 60 "$torch_py" "$here/bin/seed_torch.py" --device cuda --steps "$steps" --reps "$reps"
fi
if [ "$no_gpu" = 1 ]; then
    result bench-torch-gemm "no device"
elif [ -z "$torch_py" ]; then
    result bench-torch-gemm SKIP "PyTorch is not installed"
else
    # cuBLAS as PyTorch calls it (TF32 off), beside bench-ember-gemm's sizes and at 4096
    step bench-torch-gemm 60 "$torch_py" -c '
import time, torch
torch.backends.cuda.matmul.allow_tf32 = False
for dt, name in ((torch.float32, "sgemm"), (torch.float64, "dgemm")):
    for n in (2048, 4096):
        a = torch.randn(n, n, device="cuda", dtype=dt); b = torch.randn(n, n, device="cuda", dtype=dt)
        for _ in range(3): a @ b
        torch.cuda.synchronize(); reps = 20; t = time.perf_counter()
        for _ in range(reps): a @ b
        torch.cuda.synchronize(); dt_s = (time.perf_counter() - t) / reps
        print(f"torch {name}-{n} {dt_s * 1e6:.1f} us/step  {2 * n ** 3 / dt_s / 1e9:.1f} GFLOP/s")'
fi
# ------------------------------------------------------------------ compute-sanitizer
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1 || true)
if [ "$no_gpu" = 1 ]; then
    result sanitizer "no device"
elif [ -z "$san" ]; then
    result sanitizer SKIP "compute-sanitizer not found (optional)"
else
    # some virtualised hosts refuse the sanitizer: that is reported, not a failure
    optional="not supported\|unable to \(open\|initialize\|attach\)\|insufficient\|permission"
    step sanitizer-memcheck 60 "$san" --tool memcheck --error-exitcode 9 "$here/bin/test_cuda_gpu"
    for tool in racecheck synccheck; do
        step "sanitizer-$tool" 45 "$san" --tool $tool --error-exitcode 9 "$here/bin/cuda_probe" sum 1000003
    done
    optional=
fi

# ------------------------------------------------------------------ probes
step probe-2^31-elements 120 "$here/bin/cuda_probe" big
step probe-oom-recovery 60 "$here/bin/cuda_probe" oom

e=$(sed -n 's/^seed-autograd *\([0-9.][0-9.]*\) us\/step.*/\1/p' "$out/bench-ember-cuda.log" 2>/dev/null | head -1)
t=$(sed -n 's/^torch seed-autograd *\([0-9.][0-9.]*\) us\/step.*/\1/p' "$out/bench-torch-cuda.log" 2>/dev/null | head -1)
if [ -n "$e" ] && [ -n "$t" ]; then
    say "$(awk -v e="$e" -v t="$t" 'BEGIN { printf "seed step on cuda: ember %s us, PyTorch %s us, ember/PyTorch %.2f (%s)", e, t, e / t, e <= t ? "goal met" : "goal not met" }')"
fi

say ""
say "summary ($(($(date +%s) - start))s of ${budget}s; logs in $out):"
cat "$summary" | tee -a "$out/run.log" > /dev/null
cat "$summary"
[ "$no_gpu" = 1 ] && [ "$failed" = 0 ] && { say "no usable GPU here: nothing on cuda could run"; exit 3; }
exit $failed
