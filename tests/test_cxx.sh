#!/bin/sh
# tests/test_cxx.sh — ember from C++: every public header compiles alone as C++17 under
# g++ -pedantic -Wall -Wextra -Werror, and a program using them (EM_SHAPE with int, size_t
# and int64_t sizes, ops, em_item, printing, em_sgd) builds the same way and runs on cpu
# with the expected values. SKIP without g++.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
inc=${EMBER_TEST_INCLUDE_DIR:-include}
cxx=g++
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE EMBER_BACKEND_PATH
flags="-std=c++17 -pedantic -Wall -Wextra -Werror"
# a sanitizer build's libember needs its runtime in the program too
san=$(sed -n 's/^CFLAGS = .*\(-fsanitize=[^ ]*\).*/\1/p' "$top/Makefile" 2>/dev/null)
flags="$flags${san:+ $san}"
if ! command -v $cxx > /dev/null 2>&1; then
    echo "1..0 # SKIP no g++"
    exit 0
fi
echo "1..3"

bad=
for h in "$inc"/ember/*.h; do
    name=$(basename "$h")
    printf '#include <ember/%s>\n' "$name" > "$tmp/one.cpp"
    $cxx $flags -I"$inc" -fsyntax-only "$tmp/one.cpp" > "$tmp/one.log" 2>&1 ||
        { bad="$bad $name"; sed 's/^/# /' "$tmp/one.log" | head -20; }
done
[ -z "$bad" ] && echo "ok 1 - every public header compiles alone as C++ ($flags)" ||
    echo "not ok 1 - headers that do not compile as C++:$bad"

cat > "$tmp/prog.cpp" <<'CPP'
#include <ember/ember.h>
#include <cstdio>
#include <cstddef>
#include <cstdint>

int main()
{
    em_context *ctx;
    if (em_context_create(&ctx, nullptr) != EM_OK) {
        std::fprintf(stderr, "ember: %s\n", em_last_error());
        return 1;
    }
    std::size_t rows = 2;
    int inner = 3;
    std::int64_t cols = 4;
    em_tensor *a = em_full(ctx, EM_F32, EM_SHAPE(rows, inner), 0.5);
    em_tensor *b = em_ones(ctx, EM_F32, EM_SHAPE(inner, cols));
    em_tensor *c = em_mm(a, b);                       /* every element 1.5 */
    std::printf("%d %lld %lld %g\n", em_tensor_ndim(c), (long long)em_tensor_size(c, 0),
                (long long)em_tensor_size(c, 1), em_item(em_sum(c)));
    em_print(em_narrow(c, 1, 0, 2));
    em_tensor *w = em_ones(ctx, EM_F32, EM_SHAPE(1, 1, 1, 1, 1, 1, 1, 2));
    em_tensor_set_requires_grad(w, true);
    em_tensor *params[] = {w};
    em_sgd_options o = {};
    o.lr = 0.25;
    em_sgd *opt = em_sgd_create(params, 1, &o);
    em_backward(em_sum(em_mul(w, w)));                /* grad 2w = 2 */
    em_sgd_step(opt);                                 /* 1 - 0.25 * 2 */
    std::printf("%g\n", em_item(em_sum(w)));
    int rc = em_context_status(ctx) == EM_OK ? 0 : 1;
    if (rc)
        std::fprintf(stderr, "ember: %s\n", em_context_error(ctx));
    em_sgd_free(opt);
    em_context_free(ctx);
    return rc;
}
CPP
if $cxx $flags -I"$inc" -o "$tmp/prog" "$tmp/prog.cpp" -L"$top/.libs" -Wl,-rpath,"$top/.libs" \
        -lember > "$tmp/cxx.log" 2>&1; then
    echo "ok 2 - a C++ program using EM_SHAPE with int, size_t and int64_t sizes builds ($flags)"
else
    echo "not ok 2 - a C++ program using EM_SHAPE with int, size_t and int64_t sizes builds ($flags)"
    sed 's/^/# /' "$tmp/cxx.log" | head -30
    echo "not ok 3 - # SKIP not built"
    exit 1
fi
cat > "$tmp/expected" <<'OUT'
2 2 4 12
tensor([[1.5000, 1.5000],
        [1.5000, 1.5000]])
1
OUT
EMBER_CONFIG=/dev/null "$tmp/prog" > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/expected"; then
    echo "ok 3 - it runs on cpu with the expected shapes, values, printing and em_sgd step"
else
    echo "not ok 3 - it runs on cpu with the expected shapes, values, printing and em_sgd step (exit $rc)"
    sed 's/^/# /' "$tmp/out" "$tmp/err"
fi
