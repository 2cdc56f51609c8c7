#!/bin/sh
# tests/test_valgrind.sh — valgrind memcheck on every example (fewer steps to keep it short):
# no errors, nothing definitely or indirectly lost. TAP; SKIP where valgrind is absent or
# the build is instrumented by a sanitizer (the two do not mix).
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
if ! command -v valgrind >/dev/null 2>&1; then
    echo "1..0 # SKIP valgrind is not installed"
    exit 0
fi
if grep -q "^CFLAGS = .*-fsanitize" "$top/Makefile" 2>/dev/null; then
    echo "1..0 # SKIP sanitizer build (valgrind runs on the plain build)"
    exit 0
fi
backend=${EMBER_TEST_EXAMPLES_BACKEND:-cpu}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/device.ini" <<INI
[device]
backend = $backend
[backends]
path = ${EMBER_TEST_BACKEND_DIR:-$top/.libs}
INI
export EMBER_CONFIG="$tmp/device.ini"
unset EMBER_DEVICE
# a small Fashion-MNIST look-alike (IDX, gzip: 256 training and 64 test images of noise) for
# the training example, so valgrind does not spend minutes inflating the real files
idx() {  # idx FILE COUNT DIMS COUNT-AS-2-OCTAL-ESCAPES: an IDX header, then the bytes
    # shellcheck disable=SC2059
    if [ "$3" = 3 ]; then
        printf "\\000\\000\\010\\003\\000\\000$4\\000\\000\\000\\034\\000\\000\\000\\034"
        head -c $(($2 * 784)) /dev/urandom
    else
        printf "\\000\\000\\010\\001\\000\\000$4"
        head -c "$2" /dev/zero
    fi | gzip -c > "$1"
}
mkdir "$tmp/fm"
idx "$tmp/fm/train-images-idx3-ubyte.gz" 256 3 '\001\000'
idx "$tmp/fm/train-labels-idx1-ubyte.gz" 256 1 '\001\000'
idx "$tmp/fm/t10k-images-idx3-ubyte.gz" 64 3 '\000\100'
idx "$tmp/fm/t10k-labels-idx1-ubyte.gz" 64 1 '\000\100'
fm="fashion_mnist --data $tmp/fm --checkpoint $tmp/fm/ck --quiet --epochs"
set -- "clamp" "autograd_basics" "two_layer_numpy --steps 20" "two_layer_autograd --steps 20" \
       "two_layer_autograd --steps 20 --sgd" "classifier --steps 20" "$fm 2" "$fm 3 --resume" \
       "layers: two_layer_autograd --steps 20 --sgd"
echo "1..$#"
n=0
for ex in "$@"; do
    n=$((n + 1))
    # "layers: PROGRAM": under EMBER_LAYERS=profile,validate (both layers' paths, their tables)
    layers=none
    case $ex in "layers: "*) layers=profile,validate; ex=${ex#layers: } ;; esac
    # shellcheck disable=SC2086
    EMBER_LAYERS=$layers "$top/libtool" --mode=execute valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        "$top/examples/"$ex > /dev/null 2> "$tmp/vg.log"
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok $n - valgrind clean: $ex ($backend, layers $layers)"
    else
        echo "not ok $n - valgrind: $ex ($backend) exit $rc"
        sed 's/^/# /' "$tmp/vg.log" | head -60
    fi
done
