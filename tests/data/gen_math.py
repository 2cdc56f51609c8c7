#!/usr/bin/python3
"""tests/data/gen_math.py — PyTorch 1.13's values, gradients and grad_fn names for
tests/test_math.c (the unary and in-place tables are pasted there; the other lines are the
constants of its pow, clamp, remainder and defect tests).

Regenerate with Debian's python3-torch:
    /usr/bin/python3 tests/data/gen_math.py
"""
import math

import torch
torch.set_default_dtype(torch.float64)
def arr(v): 
    out=[]
    for x in v:
        x=float(x)
        if math.isnan(x): out.append("NAN")
        elif math.isinf(x): out.append("INFINITY" if x>0 else "-INFINITY")
        else: out.append(repr(x))
    return "{" + ", ".join(out) + "}"
X = {
 "log1p": [-0.9, -0.5, -0.0, 0.3, 1.0, 2.5, 10.0, 1e-8],
 "expm1": [-3.0, -0.5, -0.0, 1e-8, 0.3, 1.0, 2.5, 5.0],
 "sin":   [-3.0, -1.5, -0.0, 0.3, 1.0, 2.5, 4.0, 7.0],
 "cos":   [-3.0, -1.5, -0.0, 0.3, 1.0, 2.5, 4.0, 7.0],
 "erf":   [-3.0, -1.5, -0.0, 0.3, 1.0, 2.5, 4.0, 0.01],
 "reciprocal": [-3.0, -1.5, -0.25, 0.3, 1.0, 2.5, 4.0, 7.0],
 "sign":  [-3.0, -1.5, -0.0, 0.0, 0.3, 1.0, 2.5, 1e-30],
 "floor": [-2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 3.7],
 "ceil":  [-2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 3.7],
 "round": [-2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 3.7],
}
G = [1.0, -2.0, 0.5, 3.0, -1.5, 0.25, 2.0, -0.75]
for name, xs in X.items():
    x = torch.tensor(xs, requires_grad=True)
    y = getattr(torch, name)(x)
    y.backward(torch.tensor(G))
    x32 = torch.tensor(xs, dtype=torch.float32)
    y32 = getattr(torch, name)(x32)
    print(f'    {{"{name}", "{y.grad_fn.name() if y.grad_fn else ""}", {arr(xs)},\n     {arr(y.tolist())},\n     {arr(y32.tolist())},\n     {arr(x.grad.tolist())}}},')

print("/* in-place: x = a * 1; x.op_(); x.backward(G) */")
A = [0.5, 1.5, 2.25, 3.0]
G4 = [1.0, -2.0, 0.5, 3.0]
B = [2.0, -0.5, 4.0, 1.5]
ops = [("div_", lambda x, b: x.div_(b)), ("sub_scalar_", lambda x, b: x.sub_(2.5)), ("div_scalar_", lambda x, b: x.div_(4.0)),
       ("pow_", lambda x, b: x.pow_(3.0)), ("neg_", lambda x, b: x.neg_()), ("exp_", lambda x, b: x.exp_()), ("log_", lambda x, b: x.log_()),
       ("sqrt_", lambda x, b: x.sqrt_()), ("abs_", lambda x, b: x.sub_(2).abs_()), ("relu_", lambda x, b: x.sub_(2).relu_()), ("tanh_", lambda x, b: x.tanh_()),
       ("sigmoid_", lambda x, b: x.sigmoid_()), ("reciprocal_", lambda x, b: x.reciprocal_()), ("floor_", lambda x, b: x.floor_()),
       ("ceil_", lambda x, b: x.ceil_()), ("round_", lambda x, b: x.round_())]
for name, f in ops:
    a = torch.tensor(A, requires_grad=True); b = torch.tensor(B, requires_grad=True)
    x = a * 1
    f(x, b)
    gf = x.grad_fn.name()
    x.backward(torch.tensor(G4))
    bg = b.grad.tolist() if b.grad is not None else [0.0]*4
    print(f'    {{"{name}", "{gf}", {arr(x.tolist())}, {arr(a.grad.tolist())}, {arr(bg)}}},')

print("/* pow_tensor: a ** b, backward with G3 */")
a = torch.tensor([0.0, 2.0, -1.0, 1.5, 0.0], requires_grad=True); b = torch.tensor([0.0, 0.5, 2.0, -1.25, 2.0], requires_grad=True)
y = a ** b; y.backward(torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0]))
print(y.grad_fn.name(), arr(y.tolist()), arr(a.grad.tolist()), arr(b.grad.tolist()))
print("/* clamp_tensor */")
x = torch.tensor([1.0, 2.0, 3.0, 0.5, float('nan'), 2.0], requires_grad=True)
lo = torch.tensor([2.0, 2.0, 2.0, 1.0, 0.0, float('nan')], requires_grad=True)
hi = torch.tensor([2.5, 1.0, 4.0, 3.0, 1.0, 5.0], requires_grad=True)
G6 = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
y = torch.clamp(x, lo, hi); y.backward(G6)
print("both", y.grad_fn.name(), arr(y.tolist()), arr(x.grad.tolist()), arr(lo.grad.tolist()), arr(hi.grad.tolist()))
for nm, kw in [("min", dict(min=lo)), ("max", dict(max=hi))]:
    x.grad = None; lo.grad = None; hi.grad = None
    y = torch.clamp(x, **kw); y.backward(G6)
    other = lo if nm == "min" else hi
    print(nm, y.grad_fn.name(), arr(y.tolist()), arr(x.grad.tolist()), arr(other.grad.tolist()))
# broadcast: x (2,3), lo (3,), hi scalar-like (1,1)
x = torch.tensor([[1.0, 5.0, -2.0], [0.5, 2.5, 9.0]], requires_grad=True)
lo = torch.tensor([0.0, 1.0, -1.0], requires_grad=True); hi = torch.tensor([[3.0]], requires_grad=True)
y = torch.clamp(x, lo, hi); y.sum().backward()
print("bcast", arr(y.reshape(-1).tolist()), arr(x.grad.reshape(-1).tolist()), arr(lo.grad.tolist()), arr(hi.grad.reshape(-1).tolist()))
print("/* remainder / floor_divide, floats */")
a = torch.tensor([7.0, -7.0, 7.5, -7.5, 3.0], requires_grad=True); b = torch.tensor([2.0, 2.0, -2.0, 2.5, 4.0], requires_grad=True)
y = torch.remainder(a, b); y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
print(y.grad_fn.name(), arr(y.tolist()), arr(a.grad.tolist()), arr(b.grad.tolist()))
print("fd", arr(torch.floor_divide(a.detach(), b.detach()).tolist()))
a.grad=None; y = torch.remainder(a, -2.5); y.backward(torch.ones(5)); print(y.grad_fn.name(), arr(y.tolist()), arr(a.grad.tolist()))
print("fd s", arr(torch.floor_divide(a.detach(), -2.5).tolist()))
print("/* defects */")
a = torch.tensor([1.0, 2.0, 4.0], requires_grad=True); h = a * 1; y = 1 / h; h.mul_(3); y.backward(torch.tensor([1.0, 2.0, 3.0])); print("rdiv", y.grad_fn.name(), arr(y.tolist()), arr(a.grad.tolist()))
a = torch.tensor([1.0, 2.0, 4.0], requires_grad=True); y = 3 / a; y.backward(torch.ones(3)); print("rdiv3", arr(y.tolist()), arr(a.grad.tolist()))
x = torch.tensor([0.0, 1.0, -2.0, float('nan')], requires_grad=True); x.abs().backward(torch.tensor([float('inf'), 1.0, float('inf'), 1.0])); print("abs", arr(x.grad.tolist()))
x = torch.tensor([1.5, -0.5, 2.0], requires_grad=True); m = x.to(torch.bool); print("tobool", m.requires_grad, m.grad_fn)
y = x.masked_fill(m, 0.0) + x * 2; y.sum().backward(); print("mask bw", arr(x.grad.tolist()))
