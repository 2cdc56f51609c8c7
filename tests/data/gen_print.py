#!/usr/bin/python3
"""tests/data/gen_print.py — how PyTorch 1.13 prints a set of tensors, for tests/test_print.c.

Regenerate with Debian's python3-torch:
    /usr/bin/python3 tests/data/gen_print.py > tests/data/print_reference.txt

Record format: a header line
    case <dtype f32|f64|bool|i64|i32|u8> <requires_grad 0|1> <ndim> <shape...> <values...>
then `lines <n>` and the n lines of str(tensor) exactly. Values of integer dtypes are written
as integers (exact), the others as Python float reprs.
"""
import torch

torch.manual_seed(0)
nan, inf = float("nan"), float("inf")
T = torch.tensor
cases = [
    T([1.]).requires_grad_(), torch.ones(2, 2), torch.ones(2, 2, 2), T([1e-5, 1.]),
    T([nan, 1., -inf]), T([nan, 1.5, -inf]), torch.arange(2000.).reshape(20, 100),
    T(3.5, dtype=torch.float64).requires_grad_(), T([[1e10, 1.]]), T([-0.0, 0.0]), T([1e8, 1.]),
    T([123456789., 1.]), T([True, False]), torch.zeros(0, 3), torch.zeros(0, dtype=torch.float64),
    torch.zeros(0), torch.randn(5), torch.randn(3, 4, dtype=torch.float64), torch.arange(1001.),
    torch.arange(30.) * 0.1, T([0.1, 0.25]), torch.arange(40.) / 3, torch.randn(4, 5, 6),
    T([100000., 1.]), T([1e-4, 1.]), T([9.99e-5, 1.]), T(27.), T([-1.5, 2., -3.25]),
    torch.randn(2, 3) * 1000, torch.randn(7, 3, 2) * 1e-3, T([[True, False, True], [False, False, False]]),
    torch.randn(12, 90), torch.arange(3000.).reshape(10, 3, 100), T(float("nan")), T([-inf, inf]),
    torch.zeros(3), T([0.5]).double(), torch.arange(100.).reshape(10, 10).requires_grad_(),
    # integer dtypes
    T([1, 2, 3]), T([1, 2, 3], dtype=torch.int32), T([1, 2, 3], dtype=torch.uint8),
    T([-5, 120, 3, 0]), T(7), T(-12, dtype=torch.int32), T(255, dtype=torch.uint8),
    torch.zeros(0, dtype=torch.long), torch.zeros(0, 3, dtype=torch.int32),
    torch.zeros(0, dtype=torch.uint8), torch.zeros(2, 0, dtype=torch.bool),
    T([[1, -22], [333, 4]]), T([2**62 + 1, -2**63]), T([-2**31, 2**31 - 1], dtype=torch.int32),
    torch.arange(2000).reshape(20, 100), torch.arange(1001, dtype=torch.int32),
    torch.arange(200, dtype=torch.uint8).reshape(2, 10, 10), torch.arange(-40, 40) * 1000003,
    torch.arange(60, dtype=torch.int32).reshape(3, 4, 5) - 30, T([[0, 255], [17, 3]], dtype=torch.uint8),
    torch.arange(0, 10**12, 10**10),
]
for t in cases:
    dt = {torch.float32: "f32", torch.float64: "f64", torch.bool: "bool", torch.int64: "i64",
          torch.int32: "i32", torch.uint8: "u8"}[t.dtype]
    if dt in ("i64", "i32", "u8"):
        vals = " ".join(str(int(v)) for v in t.reshape(-1).tolist())
    else:
        vals = " ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist())
    print("case", dt, int(t.requires_grad), t.dim(), *t.shape, vals)
    s = str(t).split("\n")
    print("lines", len(s))
    for line in s:
        print(line)
