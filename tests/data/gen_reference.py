#!/usr/bin/python3
"""tests/data/gen_reference.py — reference values from PyTorch for tests/test_autograd.c.

Regenerate with Debian's python3-torch (PyTorch 1.13) and python3-numpy:
    /usr/bin/python3 tests/data/gen_reference.py > tests/data/autograd_reference.txt

Each case builds a small graph from f64 inputs drawn with a fixed seed, and records the
forward value and the gradient of every input. test_autograd.c builds the same graphs with
ember's C API (the case names tie the two together) and compares. Also records the
parameters after three torch.optim.SGD steps for several option sets, and grad_fn names.
ember itself never needs Python: the output file is committed.

Format (whitespace-separated, one record per line):
    case <name>
    input <name> <ndim> <shape...> <values...>
    output <ndim> <shape...> <values...>
    grad <name> <values...>
    sgd <lr> <momentum> <dampening> <weight_decay> <nesterov> <maximize> <values after 3 steps...>
    gradfn <expression> <name>
"""
import torch

torch.manual_seed(1234)
torch.set_printoptions(precision=17)


def fmt(t):
    return " ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist())


def shape_str(t):
    return " ".join([str(t.dim())] + [str(s) for s in t.shape])


def mk(*shape, lo=-2.0, hi=2.0, avoid_zero=False):
    t = torch.rand(*shape, dtype=torch.float64) * (hi - lo) + lo
    if avoid_zero:
        t = torch.where(t.abs() < 0.1, torch.full_like(t, 0.3), t)
    return t


CASES = []


def case(name, inputs, fn):
    CASES.append((name, inputs, fn))


case("seed_step", {"x": mk(4, 5), "y": mk(4, 2), "w1": mk(5, 3), "w2": mk(3, 2)},
     lambda x, y, w1, w2: (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum())
case("broadcast_arith", {"a": mk(3, 4), "b": mk(4), "c": mk(3, 1, lo=0.5, hi=2)},
     lambda a, b, c: ((a + b) * c - a / c).sum())
case("unary_chain", {"x": mk(2, 5, avoid_zero=True)},
     lambda x: (x.abs().log() + x.abs().sqrt() + x.tanh() + x.sigmoid() + x.relu() + x.exp() - x.neg()).mean())
case("maxmin", {"a": torch.tensor([[1., 2., 3.], [0.5, -1., 4.]], dtype=torch.float64),
                "b": torch.tensor([1., 3., -2.], dtype=torch.float64)},
     lambda a, b: (torch.maximum(a, b) * 2 + torch.minimum(a, b) * 3).sum())
case("clamp_variants", {"x": mk(3, 4)},
     lambda x: (x.clamp(-0.5, 0.5) * 1.5 + x.clamp(min=0.2) * 2 + x.clamp(max=-0.2) * 3).sum())
case("pow_variants", {"x": mk(2, 3, avoid_zero=True)},
     lambda x: (x.pow(2) + x.pow(3) + x.abs().pow(0.5) + (x.abs() + 1).pow(-1.5)).sum())
case("scalar_ops", {"x": mk(2, 3)},
     lambda x: ((x + 2) * 3 - 1 + (2 - x) / 4 + 2 / (x.abs() + 1)).sum())
case("where_mask", {"x": mk(3, 3), "y": mk(3, 3)},
     lambda x, y: torch.where(x > 0, x * y, y).sum() + x.masked_fill(y > 0, 0.).pow(2).sum())
case("reductions", {"x": mk(2, 3, 4)},
     lambda x: x.sum(0).pow(2).sum() + x.mean(1, keepdim=True).mul(x).sum() + x.sum((0, 2)).pow(2).sum()
     + x.mean((0, 1)).sum())
case("views", {"x": mk(3, 4), "y": mk(4, 3)},
     lambda x, y: (x.t().reshape(-1) * y.view(-1)).sum() + x.unsqueeze(0).expand(2, -1, -1).pow(2).sum()
     + x.transpose(0, 1).contiguous().mul(y).sum() + y.flatten().pow(3).sum())
case("matmul", {"a": mk(2, 3, 4), "b": mk(4, 5), "c": mk(2, 5, 2)},
     lambda a, b, c: torch.matmul(a, b).pow(2).sum() + torch.bmm(torch.matmul(a, b), c).sum())
case("reuse", {"x": mk(2, 2)},
     lambda x: ((x + 2) * (x + 2) * 3).mean())
case("div_neg", {"x": mk(3), "y": mk(3, avoid_zero=True)},
     lambda x, y: (-x / y).sum() + (x / y.pow(2)).sum())
case("mm_t", {"a": mk(3, 4), "b": mk(3, 2)},
     lambda a, b: a.t().mm(b).sum() + b.t().mm(a).pow(2).sum())

for name, inputs, fn in CASES:
    print("case", name)
    leaves = {}
    for k, v in inputs.items():
        print("input", k, shape_str(v), fmt(v))
        leaves[k] = v.clone().requires_grad_(True)
    out = fn(*leaves.values())
    print("output", shape_str(out), fmt(out))
    out.backward()
    for k, v in leaves.items():
        print("grad", k, fmt(v.grad))

# torch.optim.SGD: three steps on loss = sum(w^2 * c), grads change every step
w0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
c = torch.tensor([0.5, 1.5, -1.0, 2.0], dtype=torch.float64)
print("sgd_init", fmt(w0), fmt(c))
for opts in [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
             dict(lr=0.1, momentum=0.8, nesterov=True), dict(lr=0.1, weight_decay=0.01),
             dict(lr=0.1, momentum=0.5, weight_decay=0.1, maximize=True)]:
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.SGD([w], **opts)
    for _ in range(3):
        opt.zero_grad()
        (w * w * c).sum().backward()
        opt.step()
    print("sgd", opts.get("lr"), opts.get("momentum", 0), opts.get("dampening", 0),
          opts.get("weight_decay", 0), int(opts.get("nesterov", False)), int(opts.get("maximize", False)),
          fmt(w))

# grad_fn names as PyTorch prints them
x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
y = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
names = {
    "add": x + y, "add_scalar": x + 2, "sub": x - y, "sub_scalar": x - 2, "rsub_scalar": 2 - x,
    "mul": x * y, "mul_scalar": x * 2, "div": x / y, "div_scalar": x / 2, "rdiv_scalar": 2 / x,
    "neg": -x, "pow": x.pow(2), "exp": x.exp(), "log": x.log(), "sqrt": x.sqrt(), "abs": x.abs(),
    "relu": x.relu(), "tanh": x.tanh(), "sigmoid": x.sigmoid(), "clamp": x.clamp(0, 1),
    "clamp_minonly": x.clamp(min=0), "clamp_min": torch.clamp_min(x, 0), "clamp_max": torch.clamp_max(x, 0),
    "maximum": torch.maximum(x, y), "minimum": torch.minimum(x, y), "mm": x.mm(y.t()),
    "bmm": torch.bmm(x.unsqueeze(0), y.t().unsqueeze(0)), "sum": x.sum(), "sum_dims": x.sum(0),
    "mean": x.mean(), "mean_dims": x.mean(1), "t": x.t(), "transpose": x.transpose(0, 1),
    "view": x.view(12), "reshape": x.reshape(12), "reshape_copy": x.t().reshape(12),
    "expand": x.expand(2, 3, 4), "unsqueeze": x.unsqueeze(0), "squeeze": x.unsqueeze(0).squeeze(0),
    "where": torch.where(x > 0, x, y), "masked_fill": x.masked_fill(x > 0, 0.), "clone": x.clone(),
    "to_f32": x.float(),
}
for k, v in names.items():
    name = type(v.grad_fn).__name__
    print("gradfn", k, name)
