#!/bin/sh
# tests/test_safetensors_torch.sh — safetensors interop with PyTorch: a file written by ember
# (tests/safetensors_tool write) is read by a Python reader of the spec (tests/safetensors_py.py)
# with the same values, and a torch state_dict (F32, F16, BF16, I64) written by the Python
# writer loads in ember with the same values (F16/BF16 widened to f32). SKIP without
# python3-torch.
top=${srcdir:-.}
py=/usr/bin/python3
tool=${EMBER_TEST_BUILD_DIR:-.}/tests/safetensors_tool
echo "1..2"
if ! $py -c 'import torch' >/dev/null 2>&1; then
    echo "ok 1 # SKIP python3-torch is not installed"
    echo "ok 2 # SKIP python3-torch is not installed"
    exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/ember-st-torch-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
fail=0
if $tool write "$dir/ember.safetensors" >"$dir/ember.txt" &&
   $py "$top/tests/safetensors_py.py" read "$dir/ember.safetensors" >"$dir/ember_py.txt" &&
   diff "$dir/ember.txt" "$dir/ember_py.txt" >"$dir/diff1"; then
    echo "ok 1 - a file written by ember reads in PyTorch with the same values"
else
    echo "not ok 1 - a file written by ember reads in PyTorch with the same values"
    sed 's/^/# /' "$dir/diff1" 2>/dev/null
    fail=1
fi
if $py "$top/tests/safetensors_py.py" write-test "$dir/torch.safetensors" >"$dir/torch.txt" &&
   $tool dump "$dir/torch.safetensors" >"$dir/torch_em.txt" &&
   diff "$dir/torch.txt" "$dir/torch_em.txt" >"$dir/diff2"; then
    echo "ok 2 - a torch state_dict written as safetensors loads in ember with the same values"
else
    echo "not ok 2 - a torch state_dict written as safetensors loads in ember with the same values"
    sed 's/^/# /' "$dir/diff2" 2>/dev/null
    fail=1
fi
exit $fail
