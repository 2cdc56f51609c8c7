#!/bin/sh
# tests/test_checkpoint_torch.sh — whole checkpoints between ember and PyTorch, on a
# 784-256-128-10 MLP: (1) a torch state_dict loads with em_module_load and the model's outputs
# equal torch's; (2) the model and Adam state ember saves after 3 steps load into torch
# (model.load_state_dict, and optimizer.load_state_dict from the documented layout), one more
# Adam step on ember's grads gives ember's parameters, and torch's optimizer state written in
# that layout loads back with em_optim_load equal to ember's. tests/checkpoint_py.py and
# tests/checkpoint_tool.c are the two sides. SKIP without python3-torch.
top=${srcdir:-.}
py=/usr/bin/python3
tool=${EMBER_TEST_BUILD_DIR:-.}/tests/checkpoint_tool
echo "1..2"
if ! $py -c 'import torch' >/dev/null 2>&1; then
    echo "ok 1 # SKIP python3-torch is not installed"
    echo "ok 2 # SKIP python3-torch is not installed"
    exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/ember-ckpt-torch-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
fail=0
if $py "$top/tests/checkpoint_py.py" make "$dir" >"$dir/log1" 2>&1 &&
   $tool forward "$dir/model.safetensors" "$dir/batch.safetensors" \
       "$dir/ember_y.safetensors" >>"$dir/log1" 2>&1 &&
   $py "$top/tests/checkpoint_py.py" check-forward "$dir" >>"$dir/log1" 2>&1; then
    echo "ok 1 - a torch state_dict loads with em_module_load; outputs equal torch's"
else
    echo "not ok 1 - a torch state_dict loads with em_module_load; outputs equal torch's"
    fail=1
fi
sed 's/^/# /' "$dir/log1"
if [ $fail = 0 ] &&
   $tool train "$dir/model.safetensors" "$dir/batch.safetensors" "$dir" >"$dir/log2" 2>&1 &&
   $py "$top/tests/checkpoint_py.py" check-step "$dir" >>"$dir/log2" 2>&1 &&
   $tool compare-optim "$dir/optim_final.safetensors" "$dir/optim_torch.safetensors" \
       >>"$dir/log2" 2>&1; then
    echo "ok 2 - ember's model and Adam state resume in torch, and torch's state in ember"
else
    echo "not ok 2 - ember's model and Adam state resume in torch, and torch's state in ember"
    fail=1
fi
[ -f "$dir/log2" ] && sed 's/^/# /' "$dir/log2"
exit $fail
