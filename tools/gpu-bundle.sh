#!/bin/sh
# tools/gpu-bundle.sh — gathers a built ember into one self-contained folder for a GPU host
# that cannot (or should not) build it: libember, the cpu and cuda plugins, the cuda test
# suites, the tools, the seed examples, the probes, the small shared libraries they link
# (libinih, libcmocka, libjansson, ...), the test data, the PyTorch bench script, the cuda
# plugin's sources (rebuilt there with the host's nvcc only if the bundled one cannot run)
# and run.sh, the one-shot check (tools/gpu-bundle-run.sh). cuBLAS is not included (its
# libraries are over 500 MB): run.sh finds the host's own.
#
# Usage: tools/gpu-bundle.sh [--build DIR] [--no-make] [--jobs N] OUTDIR
#   --build DIR   gather from this configured tree (make gpu-bundle passes its own), after
#                 building what is missing there; without it, configure and build a fresh
#                 tree in OUTDIR.build with NVCC_GENCODE for sm_90 (H100, H200) only
#   --no-make     gather what is built, build nothing (make check's test does this)
# OUTDIR is replaced. Exits 0 with the bundle's size on stdout; fails if the tree has no cuda
# plugin, if the plugin has no sm_90 code or PTX to JIT from, or if the bundle is 64 MiB or
# more.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=
no_make=0
jobs=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
    case $1 in
        --build) build=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --no-make) no_make=1; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//;/^set -eu/d'; exit 0 ;;
        -*) echo "gpu-bundle.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: tools/gpu-bundle.sh [--build DIR] [--no-make] [--jobs N] OUTDIR" >&2; exit 2; }
out=$1

# the programs the check runs (paths in the build tree)
tests="tests/test_cuda tests/test_cuda_gpu tests/test_threads tests/cuda_probe
tests/test_ops_cuda tests/test_autograd_cuda tests/test_dtypes_cuda tests/test_math_cuda
tests/test_views_cuda tests/test_index_cuda tests/test_inplace_views_cuda tests/test_stats_cuda
tests/test_activation_cuda tests/test_loss_cuda tests/test_optim_cuda tests/test_nn_cuda
tests/test_checkpoint_cuda tests/test_data_cuda tests/test_conv_cuda"
tools="tools/ember-info tools/ember-conform tools/ember-bench"
examples="examples/clamp examples/autograd_basics examples/two_layer_numpy
examples/two_layer_autograd examples/classifier"

if [ -z "$build" ]; then
    build=$out.build
    mkdir -p "$build"
    build=$(cd "$build" && pwd)
    [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
    if [ ! -f "$build/Makefile" ]; then
        (cd "$build" && "$src/configure" -q --disable-opencl \
            NVCC_GENCODE='-gencode arch=compute_90,code=[sm_90,compute_90]')
    fi
fi
build=$(cd "$build" && pwd)
grep -Eq '^[a-z_0-9]+ = ember-backend-cuda\.la' "$build/Makefile" ||
    { echo "gpu-bundle.sh: $build was configured without the cuda backend" >&2; exit 1; }
# shellcheck disable=SC2086
# under make (make gpu-bundle), its jobserver is inherited: no -j of our own
jflag=-j$jobs
[ -z "${MAKEFLAGS:-}" ] || jflag=
[ "$no_make" = 1 ] || ${MAKE:-make} -C "$build" $jflag all $tests >/dev/null

plugin=$build/.libs/ember-backend-cuda.so
[ -f "$plugin" ] || { echo "gpu-bundle.sh: no $plugin" >&2; exit 1; }
nvcc=$(sed -n 's/^NVCC = *//p' "$build/Makefile")
cudadir=$(sed -n 's/^CUDA_DIR = *//p' "$build/Makefile")
cudalib=$(sed -n 's/^CUDA_LIBDIR = *//p' "$build/Makefile")
targets=$(sed -n 's/^NVCC_TARGETS = *//p' "$build/Makefile")
case ",$targets," in
    *,sm_90,*|*,compute_90,*|*,compute_8[0-9],*|*,compute_7[0-9],*) ;;
    *) echo "gpu-bundle.sh: the cuda plugin is built for $targets: neither sm_90 nor PTX an" \
            "H100/H200 can compile; configure with NVCC_GENCODE='-gencode arch=compute_90,code=[sm_90,compute_90]'" >&2
       exit 1 ;;
esac

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/lib/compat" "$out/plugins" "$out/data" "$out/src"

# the ELF file of a libtool-built program: .libs/NAME (or .libs/lt-NAME), else the file itself
elf_of() {
    d=$(dirname "$1") n=$(basename "$1")
    for f in "$d/.libs/$n" "$d/.libs/lt-$n" "$1"; do
        if [ -f "$f" ] && head -c 4 "$f" | grep -q ELF; then
            echo "$f"
            return 0
        fi
    done
    return 1
}
mkdir -p "$out/examples" "$out/tools"
for p in $tests $tools $examples; do
    f=$(elf_of "$build/$p") || { echo "gpu-bundle.sh: $build/$p was not built" >&2; exit 1; }
    case $p in
        examples/*) cp "$f" "$out/examples/$(basename "$p")" ;;   # where the tests look
        tools/*) cp "$f" "$out/tools/$(basename "$p")" ;;
        *) cp "$f" "$out/bin/$(basename "$p")" ;;
    esac
done
cp -P "$build"/.libs/libember.so* "$out/lib/"
cp "$build/.libs/ember-backend-cpu.so" "$plugin" "$out/plugins/"

# shared libraries from outside the C runtime, found with ldd on what we ship; libstdc++
# and libgcc_s go to lib/compat, which run.sh uses only if the host's are too old
for f in "$out"/bin/* "$out"/tools/* "$out"/examples/* "$out"/plugins/*.so "$out"/lib/libember.so.*; do
    LD_LIBRARY_PATH=$out/lib ldd "$f" 2>/dev/null
done | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u | while read -r name path; do
    case $name in
        libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libresolv.so.*) ;;
        libember.so.*) ;;
        libcuda.so.*|libcublas*|libcudart*|libnvidia*) ;;   # the host's
        libstdc++.so.*|libgcc_s.so.*) cp -L "$path" "$out/lib/compat/$name" ;;
        *) cp -L "$path" "$out/lib/$name" ;;
    esac
done

# test data, scripts, the PyTorch bench, the plugin's sources
cp "$src"/tests/data/*.txt "$src"/tests/data/*.expected "$out/data/"
cp "$src/tests/test_examples.sh" "$src/bench/seed_torch.py" "$out/bin/"
mkdir -p "$out/src/include/ember" "$out/src/backends/cuda"
cp "$src"/include/ember/*.h "$out/src/include/ember/"
cp "$src"/backends/cuda/*.cu "$src"/backends/cuda/*.cuh "$src"/backends/cuda/*.h "$out/src/backends/cuda/"
cp "$src/tools/gpu-bundle-run.sh" "$out/run.sh"
chmod +x "$out/run.sh" "$out/bin/test_examples.sh"

cublas_major=$(sed -n 's/^#define CUBLAS_VER_MAJOR *\([0-9]*\).*/\1/p' "$cudadir/include/cublas_api.h" | head -1)
cuda_version=$("$nvcc" --version | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p' | head -1)
{
    echo "ember $(sed -n 's/^PACKAGE_VERSION = *//p' "$build/Makefile") ($(cd "$src" && git describe --always --dirty 2>/dev/null || echo unknown))"
    echo "built $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm)"
    echo "cuda_version=$cuda_version"
    echo "cublas_major=$cublas_major"
    echo "nvcc_targets=$targets"
    echo "build_cuda_libdir=$cudalib"
    echo "glibc=$(ldd --version 2>/dev/null | head -1 | sed 's/.* //')"
    printf 'needs=glibc %s or newer\n' "$(for f in "$out"/bin/* "$out"/tools/* "$out"/examples/* "$out"/plugins/*.so "$out"/lib/*.so*; do
        objdump -T "$f" 2>/dev/null; done | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -1)"
} > "$out/BUILD-INFO"
printf 'cublas_major=%s\ncuda_version=%s\n' "$cublas_major" "$cuda_version" > "$out/bundle.env"

kib=$(du -sk "$out" | cut -f1)
if [ "$kib" -ge 65536 ]; then
    echo "gpu-bundle.sh: $out is $kib KiB, over the 64 MiB limit" >&2
    exit 1
fi
echo "$out: $kib KiB (cuda $cuda_version, cuBLAS $cublas_major, $targets)"
