#!/usr/bin/python3
"""tests/checkpoint_py.py — the PyTorch side of tests/test_checkpoint_torch.sh, and the
conversion between torch.optim's state_dict() and ember's optimizer files (the layout of
docs/pytorch-interop.md, "Optimizer state in safetensors"):

  optimizer_to_safetensors(opt, path, metadata=None)   write opt.state_dict() in that layout
  optimizer_from_safetensors(opt, path)                opt.load_state_dict() from such a file

Commands, on the MLP Sequential(Linear(784, 256), ReLU, Linear(256, 128), ReLU,
Linear(128, 10)) with seed 0 (tests/checkpoint_tool.c is the ember side):

  checkpoint_py.py make DIR           DIR/model.safetensors (its state_dict),
                                      DIR/batch.safetensors (x [32, 784], label [32]) and
                                      DIR/torch_y.safetensors (model(x))
  checkpoint_py.py check-forward DIR  DIR/ember_y.safetensors equals torch_y (max abs diff
                                      < 1e-5)
  checkpoint_py.py check-step DIR     the model and Adam state ember saved after 3 steps
                                      (model_k, optim_k) load into torch; torch's grads equal
                                      ember's (DIR/grads, < 1e-5); one Adam step on ember's
                                      grads gives ember's parameters (model_final, < 1e-6);
                                      torch's state after it goes to DIR/optim_torch
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_py import load_file, save_file  # noqa: E402

FORMAT = "ember.optimizer"
VERSION = "1"
OPTIONS = {
    "Adam": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"),
    "AdamW": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"),
    "RMSprop": ("lr", "momentum", "alpha", "eps", "centered", "weight_decay", "maximize"),
    "SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
}


def _text(v):
    """An option as the file holds it: JSON text, doubles with 17 significant digits."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return "%.17g" % v


def optimizer_to_safetensors(opt, path, metadata=None):
    kind = type(opt).__name__
    sd = opt.state_dict()
    if len(sd["param_groups"]) != 1:
        raise ValueError("one parameter group only")
    group = sd["param_groups"][0]
    meta = dict(metadata or {})
    meta.update({"format": FORMAT, "version": VERSION, "optimizer": kind,
                 "param_groups.0.params": json.dumps(group["params"])})
    for k in OPTIONS[kind]:
        meta["param_groups.0." + k] = _text(group[k])
    tensors = {}
    for i, st in sd["state"].items():
        for name, t in st.items():
            if name == "step":
                meta["state.%d.step" % i] = "%d" % int(t)
            elif t is not None:
                tensors["state.%d.%s" % (i, name)] = t
    save_file(tensors, path, meta)


def optimizer_from_safetensors(opt, path):
    kind = type(opt).__name__
    tensors, meta = load_file(path)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError("%s is not an optimizer state file of version %s" % (path, VERSION))
    if meta.get("optimizer") != kind:
        raise ValueError("%s holds %s state, not %s" % (path, meta.get("optimizer"), kind))
    group = dict(opt.state_dict()["param_groups"][0])   # keeps foreach, capturable, ...
    if json.loads(meta["param_groups.0.params"]) != group["params"]:
        raise ValueError("loaded state dict contains a parameter group that doesn't match "
                         "the size of optimizer's group")
    for k in OPTIONS[kind]:
        v = json.loads(meta["param_groups.0." + k])
        group[k] = tuple(v) if k == "betas" else v
    state = {}
    for name, t in tensors.items():
        _, i, key = name.split(".", 2)
        state.setdefault(int(i), {})[key] = t
    for key, v in meta.items():
        if key.startswith("state.") and key.endswith(".step"):
            state.setdefault(int(key.split(".")[1]), {})["step"] = torch.tensor(float(v))
    opt.load_state_dict({"state": state, "param_groups": [group]})


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def max_diff(a, b):
    return (a.double() - b.double()).abs().max().item()


def make(d):
    torch.manual_seed(0)
    model = mlp()
    x = torch.randn(32, 784)
    label = torch.randint(0, 10, (32,))
    save_file(model.state_dict(), os.path.join(d, "model.safetensors"), {"format": "pt"})
    save_file({"x": x, "label": label}, os.path.join(d, "batch.safetensors"))
    with torch.no_grad():
        save_file({"y": model(x)}, os.path.join(d, "torch_y.safetensors"))
    return 0


def check_forward(d):
    want = load_file(os.path.join(d, "torch_y.safetensors"))[0]["y"]
    got = load_file(os.path.join(d, "ember_y.safetensors"))[0]["y"]
    diff = max_diff(got, want) if got.shape == want.shape else math.inf
    print("forward of the loaded model: max abs diff %.3g" % diff)
    return 0 if diff < 1e-5 else 1


def check_step(d):
    def f(name):
        return os.path.join(d, name + ".safetensors")
    model = mlp()
    model.load_state_dict(load_file(f("model_k"))[0])
    opt = torch.optim.Adam(model.parameters())   # the file's options replace the defaults
    optimizer_from_safetensors(opt, f("optim_k"))
    g = opt.param_groups[0]
    if (g["lr"], g["betas"], g["weight_decay"], g["amsgrad"]) != (0.01, (0.9, 0.99), 0.01, True):
        print("options not restored: %r" % {k: g[k] for k in OPTIONS["Adam"]})
        return 1
    batch = load_file(f("batch"))[0]
    torch.nn.functional.cross_entropy(model(batch["x"]), batch["label"]).backward()
    grads = load_file(f("grads"))[0]
    gdiff = max(max_diff(p.grad, grads[n]) for n, p in model.named_parameters())
    for n, p in model.named_parameters():
        p.grad = grads[n].clone()
    opt.step()
    final = load_file(f("model_final"))[0]
    pdiff = max(max_diff(p.detach(), final[n]) for n, p in model.named_parameters())
    optimizer_to_safetensors(opt, f("optim_torch"))
    print("grads: max abs diff %.3g; parameters after one more Adam step: max abs diff %.3g"
          % (gdiff, pdiff))
    return 0 if gdiff < 1e-5 and pdiff < 1e-6 else 1


def main():
    cmds = {"make": make, "check-forward": check_forward, "check-step": check_step}
    if len(sys.argv) != 3 or sys.argv[1] not in cmds:
        sys.exit("usage: checkpoint_py.py make|check-forward|check-step DIR")
    sys.exit(cmds[sys.argv[1]](sys.argv[2]))


if __name__ == "__main__":
    main()
