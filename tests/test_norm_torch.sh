#!/bin/sh
# tests/test_norm_torch.sh — pooling and normalisation modules against PyTorch, through
# checkpoints: a torch state_dict of a net with BatchNorm2d, AvgPool2d, AdaptiveAvgPool2d and
# LayerNorm (and of a BatchNorm1d with momentum None) loads strictly with em_module_load,
# running statistics and num_batches_tracked included; training and eval forwards give
# torch's outputs, and the state ember saves after training steps loads strictly into torch
# and equals torch's. tests/norm_py.py and tests/norm_tool.c are the two sides. SKIP without
# python3-torch.
top=${srcdir:-.}
py=/usr/bin/python3
tool=${EMBER_TEST_BUILD_DIR:-.}/tests/norm_tool
echo "1..1"
if ! $py -c 'import torch' >/dev/null 2>&1; then
    echo "ok 1 # SKIP python3-torch is not installed"
    exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/ember-norm-torch-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
fail=0
if $py "$top/tests/norm_py.py" make "$dir" >"$dir/log" 2>&1 &&
   $tool run "$dir/model.safetensors" "$dir/model1d.safetensors" "$dir/batch.safetensors" \
       "$dir" >>"$dir/log" 2>&1 &&
   $py "$top/tests/norm_py.py" check "$dir" >>"$dir/log" 2>&1; then
    echo "ok 1 - BatchNorm, pooling and LayerNorm state_dicts round-trip with torch; outputs equal"
else
    echo "not ok 1 - BatchNorm, pooling and LayerNorm state_dicts round-trip with torch; outputs equal"
    fail=1
fi
sed 's/^/# /' "$dir/log"
exit $fail
