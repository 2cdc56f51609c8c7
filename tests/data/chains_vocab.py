"""tests/data/chains_vocab.py — the op vocabulary of gen_chains.py in PyTorch terms, and the
program model: inputs (with their memory layout), ops, and running a program in one of three
modes (as written, all floats f64, all floats f32)."""
import math
import struct

import torch
import torch.nn.functional as F

FLOATS = ("f32", "f64")
INTS = ("i64", "i32", "u8")
TORCH_DT = {"f32": torch.float32, "f64": torch.float64, "bool": torch.bool,
            "i64": torch.int64, "i32": torch.int32, "u8": torch.uint8}
DT_NAME = {v: k for k, v in TORCH_DT.items()}
REDUCTIONS = ("mean", "sum", "none")


class Reg:
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i


class NoTensor:
    pass


NONE = NoTensor()
END = "end"

# ------------------------------------------------------------------ the run mode
# act: the program as written; hi: every float dtype is f64; lo: every float dtype is f32.
MODE = "act"


def D(name):
    dt = TORCH_DT[name]
    if name in FLOATS and MODE == "hi":
        return torch.float64
    if name in FLOATS and MODE == "lo":
        return torch.float32
    return dt


def S(s):
    """A scalar as ember's double maps to Python: whole values are ints (i64 * 2 stays
    i64), others floats (i64 * 0.5 gives the default float dtype)."""
    if isinstance(s, float) and math.isfinite(s) and s == int(s):
        return int(s)
    return s


def t_split(x, size, dim, piece):
    return torch.split(x, size, dim)[piece]


def t_chunk(x, n, dim, piece):
    return torch.chunk(x, n, dim)[piece]


def t_slice(x, d, start, end, step):
    # aten::slice is what Python's x[..., start:end:step] runs, with the dim checked
    return torch.ops.aten.slice(x, d, start, None if end == END else end, step)


def opt(t):
    return None if t is NONE else t


# name -> torch implementation; arguments in the order of the O line
TORCH = {
    # unary
    "neg": lambda x: torch.neg(x), "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "abs": torch.abs, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "log1p": torch.log1p, "expm1": torch.expm1, "sin": torch.sin, "cos": torch.cos,
    "erf": torch.erf, "reciprocal": torch.reciprocal, "sign": torch.sign, "floor": torch.floor,
    "ceil": torch.ceil, "round": torch.round, "silu": F.silu,
    "leaky_relu": lambda x, s: F.leaky_relu(x, s),
    "gelu": lambda x, a: F.gelu(x, approximate="tanh" if a else "none"),
    "elu": lambda x, a: F.elu(x, a),
    "softplus": lambda x, b, t: F.softplus(x, b, t),
    "pow": lambda x, e: torch.pow(x, S(e)),
    "clamp": lambda x, lo, hi: torch.clamp(x, S(lo), S(hi)),
    "clamp_min": lambda x, lo: torch.clamp(x, min=S(lo)),
    "clamp_max": lambda x, hi: torch.clamp(x, max=S(hi)),
    # with a scalar
    "add_scalar": lambda x, s: x + S(s), "sub_scalar": lambda x, s: x - S(s),
    "rsub_scalar": lambda x, s: S(s) - x, "mul_scalar": lambda x, s: x * S(s),
    "div_scalar": lambda x, s: x / S(s), "rdiv_scalar": lambda x, s: S(s) / x,
    "floor_divide_scalar": lambda x, s: torch.floor_divide(x, S(s)),
    "remainder_scalar": lambda x, s: torch.remainder(x, S(s)),
    "lt_scalar": lambda x, s: x < S(s), "le_scalar": lambda x, s: x <= S(s),
    "gt_scalar": lambda x, s: x > S(s), "ge_scalar": lambda x, s: x >= S(s),
    "eq_scalar": lambda x, s: x == S(s), "ne_scalar": lambda x, s: x != S(s),
    # binary
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "maximum": torch.maximum, "minimum": torch.minimum, "pow_tensor": torch.pow,
    "floor_divide": torch.floor_divide, "remainder": torch.remainder,
    "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge, "eq": torch.eq, "ne": torch.ne,
    "where": torch.where,
    "masked_fill": lambda x, m, v: x.masked_fill(m, S(v)),
    "clamp_tensor": lambda x, lo, hi: torch.clamp(x, opt(lo), opt(hi)),
    "matmul": torch.matmul, "mm": torch.mm,
    # dtypes and copies
    "to_dtype": lambda x, dt: x.to(D(dt)),
    "contiguous": lambda x: x.contiguous(), "clone": torch.clone, "detach": lambda x: x.detach(),
    # views
    "transpose": torch.transpose, "t": torch.t,
    "permute": lambda x, dims: x.permute(dims),
    "narrow": torch.narrow, "select": torch.select, "slice": t_slice,
    "view": lambda x, shape: x.view(shape), "reshape": lambda x, shape: x.reshape(shape),
    "expand": lambda x, shape: x.expand(shape), "unsqueeze": torch.unsqueeze,
    "squeeze": torch.squeeze, "flatten": torch.flatten,
    "split": t_split, "chunk": t_chunk,
    # indexing
    "index_select": torch.index_select, "gather": torch.gather,
    "scatter_add": torch.scatter_add,
    "cat": lambda ts, d: torch.cat(ts, d), "stack": lambda ts, d: torch.stack(ts, d),
    # reductions
    "sum": torch.sum, "mean": torch.mean,
    "sum_dims": lambda x, dims, k: torch.sum(x, dims, bool(k)),
    "mean_dims": lambda x, dims, k: torch.mean(x, dims, bool(k)),
    "max": torch.max, "min": torch.min,
    "max_dim_values": lambda x, d, k: torch.max(x, d, bool(k))[0],
    "max_dim_indices": lambda x, d, k: torch.max(x, d, bool(k))[1],
    "min_dim_values": lambda x, d, k: torch.min(x, d, bool(k))[0],
    "min_dim_indices": lambda x, d, k: torch.min(x, d, bool(k))[1],
    "argmax": lambda x, d, k: torch.argmax(x, d, bool(k)),
    "argmin": lambda x, d, k: torch.argmin(x, d, bool(k)),
    "prod": torch.prod, "prod_dim": lambda x, d, k: torch.prod(x, d, bool(k)),
    "var": lambda x, u: torch.var(x, unbiased=bool(u)),
    "std": lambda x, u: torch.std(x, unbiased=bool(u)),
    "var_dims": lambda x, dims, u, k: torch.var(x, dims, unbiased=bool(u), keepdim=bool(k)),
    "std_dims": lambda x, dims, u, k: torch.std(x, dims, unbiased=bool(u), keepdim=bool(k)),
    "logsumexp": lambda x, dims, k: torch.logsumexp(x, dims, bool(k)),
    "any": torch.any, "any_dim": lambda x, d, k: torch.any(x, d, bool(k)),
    "softmax": lambda x, d: torch.softmax(x, d),
    "log_softmax": lambda x, d: torch.log_softmax(x, d),
    # losses
    "mse_loss": lambda a, b, r: F.mse_loss(a, b, reduction=r),
    "l1_loss": lambda a, b, r: F.l1_loss(a, b, reduction=r),
    "smooth_l1_loss": lambda a, b, r, beta: F.smooth_l1_loss(a, b, reduction=r, beta=beta),
    "cross_entropy": lambda x, t, w, ii, r, ls: F.cross_entropy(
        x, t, weight=opt(w), ignore_index=ii, reduction=r, label_smoothing=ls),
    "nll_loss": lambda x, t, w, ii, r: F.nll_loss(x, t, weight=opt(w), ignore_index=ii, reduction=r),
    "bce_with_logits": lambda x, t, w, pw, r: F.binary_cross_entropy_with_logits(
        x, t, weight=opt(w), pos_weight=opt(pw), reduction=r),
}

# in-place ops: the register they define is the tensor they modified
TORCH.update({
    "add_": lambda x, y: x.add_(y), "sub_": lambda x, y: x.sub_(y),
    "mul_": lambda x, y: x.mul_(y), "div_": lambda x, y: x.div_(y),
    "add_scalar_": lambda x, s: x.add_(S(s)), "sub_scalar_": lambda x, s: x.sub_(S(s)),
    "mul_scalar_": lambda x, s: x.mul_(S(s)), "div_scalar_": lambda x, s: x.div_(S(s)),
    "clamp_": lambda x, lo, hi: x.clamp_(S(lo), S(hi)), "pow_": lambda x, e: x.pow_(S(e)),
    "neg_": lambda x: x.neg_(), "exp_": lambda x: x.exp_(), "log_": lambda x: x.log_(),
    "sqrt_": lambda x: x.sqrt_(), "abs_": lambda x: x.abs_(), "relu_": lambda x: x.relu_(),
    "tanh_": lambda x: x.tanh_(), "sigmoid_": lambda x: x.sigmoid_(),
    "reciprocal_": lambda x: x.reciprocal_(), "floor_": lambda x: x.floor_(),
    "ceil_": lambda x: x.ceil_(), "round_": lambda x: x.round_(), "zero_": lambda x: x.zero_(),
    "fill_": lambda x, v: x.fill_(S(v)),
    "masked_fill_": lambda x, m, v: x.masked_fill_(m, S(v)),
    "copy_": lambda x, src: x.copy_(src),
    "scatter_add_": lambda x, d, i, src: x.scatter_add_(d, i, src),
})

# ops whose PyTorch grad_fn name is the op's own (not an artefact of how PyTorch composes
# it): the test compares em_tensor_grad_fn_name of the output with it
OWN_GRAD_FN = {
    "neg", "exp", "log", "sqrt", "abs", "relu", "tanh", "sigmoid", "log1p", "expm1", "sin",
    "cos", "erf", "reciprocal", "sign", "floor", "ceil", "round", "silu", "leaky_relu", "gelu",
    "elu", "softplus", "add", "sub", "mul", "div", "maximum", "minimum", "where",
    "masked_fill", "transpose", "t", "permute", "select", "expand", "cat", "stack",
    "index_select", "gather", "scatter_add", "softmax", "log_softmax", "mse_loss",
    "smooth_l1_loss", "nll_loss", "bce_with_logits", "sum", "mean", "prod", "prod_dim",
    "max_dim_values", "min_dim_values", "logsumexp", "to_dtype", "clone", "mm",
}


# ------------------------------------------------------------------ values and formatting

def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def fmt_num(v, dt):
    if dt in ("bool",) or dt in INTS:
        return str(int(v))
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if dt == "f32":
        return "%.9g" % v
    return repr(float(v))


def fmt_vals(t):
    dt = DT_NAME[t.dtype]
    vals = t.detach().reshape(-1).tolist()
    return " ".join(fmt_num(v, dt) for v in vals)


def fmt_arg(a):
    if isinstance(a, Reg):
        return "%%%d" % a.i
    if a is NONE:
        return "-"
    if isinstance(a, bool):
        return str(int(a))
    if isinstance(a, list):
        return "[" + ",".join(fmt_arg(x) for x in a) + "]"
    if isinstance(a, float):
        return fmt_num(a, "f64")
    return str(a)


# ------------------------------------------------------------------ a program

class Input:
    def __init__(self, dt, shape, layout, rg, vals):
        self.dt, self.shape, self.layout, self.rg, self.vals = dt, list(shape), layout, rg, vals

    def build(self):
        dt = D(self.dt)
        shape = self.shape
        logical = torch.tensor(self.vals, dtype=dt).reshape(shape)
        if self.layout == "t":
            base = logical.transpose(-2, -1).contiguous()
            v = base.transpose(-2, -1)
        elif self.layout == "s":
            sentinel = True if dt == torch.bool else 99
            wide = shape[:-1] + [2 * shape[-1]]
            base = torch.full(wide, sentinel, dtype=dt)
            base[..., ::2] = logical
            v = base[..., ::2]
        else:
            v = logical.clone()
        v = v.detach()
        if self.rg:
            v.requires_grad_(True)
        return v

    def line(self):
        dt = self.dt
        return "I %s %s %d %d%s : %s" % (dt, self.layout, int(self.rg), len(self.shape),
                                         "".join(" %d" % s for s in self.shape),
                                         " ".join(fmt_num(v, dt) for v in self.vals))


class Op:
    def __init__(self, name, args):
        self.name, self.args = name, args

    def line(self):
        return "O %s%s" % (self.name, "".join(" " + fmt_arg(a) for a in self.args))


def resolve(a, regs):
    if isinstance(a, Reg):
        return regs[a.i]
    if isinstance(a, list) and a and isinstance(a[0], Reg):
        return [regs[r.i] for r in a]
    return a


def execute(steps, mode, w=None):
    """Runs steps in mode; returns (output, [grad of each input or None], inputs), or
    grads = the message when PyTorch refused the backward pass."""
    global MODE
    MODE = mode
    torch.set_default_dtype(torch.float64 if mode == "hi" else torch.float32)
    try:
        regs, inputs = [], []
        for s in steps:
            if isinstance(s, Input):
                t = s.build()
                inputs.append(t)
            else:
                t = TORCH[s.name](*[resolve(a, regs) for a in s.args])
            regs.append(t)
        out = regs[-1]
        grads = None
        if w is not None and out.requires_grad:
            try:
                out.backward(torch.tensor(w, dtype=out.dtype).reshape(out.shape))
            except RuntimeError as e:
                return out, str(e).split("\n")[0], inputs
            grads = [x.grad if x.requires_grad else None for x in inputs]
        return out, grads, inputs
    finally:
        MODE = "act"
        torch.set_default_dtype(torch.float32)



def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def dtname(t):
    return DT_NAME[t.dtype]
