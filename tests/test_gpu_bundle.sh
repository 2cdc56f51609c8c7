#!/bin/sh
# tests/test_gpu_bundle.sh — the GPU check's bundle (tools/gpu-bundle.sh) from this build,
# checked as TAP where no GPU is needed: it gathers, stays under 64 MiB, and, copied to a
# clean directory, links with nothing missing but what a GPU host provides; its run script
# (tools/gpu-bundle-run.sh), run there with a bare environment and no GPU, ends every step
# cleanly ("no device", SKIP or ok: no FAIL, no TIMEOUT, no crash) and exits 3. SKIP when this
# tree does not build the cuda backend (no nvcc).
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
src=${EMBER_TEST_DATA_DIR:+$EMBER_TEST_DATA_DIR/../..}
[ -n "$src" ] && [ -f "$src/tools/gpu-bundle.sh" ] || src=$(dirname "$0")/..
if ! grep -Eq '^[a-z_0-9]+ = ember-backend-cuda\.la' "$top/Makefile" 2>/dev/null; then
    echo "1..0 # SKIP the cuda backend is not built here (no CUDA toolkit / nvcc)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..6"
n=0
check() {  # check DESCRIPTION COMMAND...
    n=$((n + 1)); d=$1; shift
    if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fi
}

sh "$src/tools/gpu-bundle.sh" --build "$top" --no-make "$tmp/made" > "$tmp/gather.out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/gather.out"
check "gpu-bundle.sh gathers the build" test $rc -eq 0 -a -x "$tmp/made/run.sh"
kib=$(du -sk "$tmp/made" 2>/dev/null | cut -f1)
check "the bundle is under 64 MiB (${kib:-?} KiB)" test "${kib:-65536}" -lt 65536

# a clean directory: the copy must not lean on the build tree
mkdir "$tmp/clean"
cp -R "$tmp/made" "$tmp/clean/bundle"
rm -rf "$tmp/made"
b=$tmp/clean/bundle
for f in "$b"/bin/* "$b"/tools/* "$b"/examples/* "$b"/plugins/*.so; do
    case $f in *.sh|*.py) continue ;; esac
    env -i LD_LIBRARY_PATH="$b/lib" ldd "$f" 2>&1 | grep "not found" | sed "s|^|$(basename "$f"): |"
done > "$tmp/missing"
sed 's/^/# missing: /' "$tmp/missing"
check "nothing the bundle links is missing in a clean directory" test ! -s "$tmp/missing"
lib=$(env -i LD_LIBRARY_PATH="$b/lib" ldd "$b/bin/test_ops_cuda" 2>&1 | awk '$1 ~ /^libember/ { print $3 }')
check "the suites load the bundle's libember (${lib:-none})" test "$lib" = "$b/lib/$(basename "${lib:-x}")"

# no GPU: every step reports it and goes on; the whole run well within its budget
# (the sanitizers' options pass: a sanitizer build's suites need its leak suppressions)
env -i PATH=/usr/bin:/bin HOME="$tmp" BUDGET=240 \
    ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
    sh "$b/run.sh" "$tmp/results" > "$tmp/run.out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/run.out"
check "run.sh without a GPU exits 3 (no usable GPU)" test $rc -eq 3
bad=$(grep -E ' (FAIL|TIMEOUT) ' "$tmp/results/summary.txt" 2>/dev/null)
nogpu=$(grep -c ' no device ' "$tmp/results/summary.txt" 2>/dev/null)
check "every step ends cleanly: ${nogpu:-0} say no device, none failed or timed out" \
    test -z "$bad" -a "${nogpu:-0}" -ge 15 -a -f "$tmp/results/test_cuda.log"
[ -z "$bad" ] || echo "$bad" | sed 's/^/# /'
