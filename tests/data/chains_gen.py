"""tests/data/chains_gen.py — drawing random programs for gen_chains.py: a Builder that
runs each op in PyTorch as it is drawn, and one generator per op family, which picks
arguments valid for the current tensor (and, now and then, invalid ones: PyTorch must
raise, and ember must fail at the same op)."""
import torch

from chains_vocab import (END, FLOATS, INTS, NONE, REDUCTIONS, TORCH, Input, Op, Reg, dtname,
                          f32, numel, resolve)


MAX_NUMEL = 64
VIEW_OPS = {"transpose", "t", "permute", "narrow", "select", "slice", "view", "reshape", "expand",
            "unsqueeze", "squeeze", "flatten", "split", "chunk", "detach"}
SPECIALS = 0.2      # how often a float input that needs no grad holds a NaN or infinity
# PyTorch errors that are no semantics ember shares: an in-place op whose operand overlaps
# the written tensor (ember computes it, as ember-conform's in-place cases check), and
# internal limits of PyTorch's kernels
REJECT = ("single memory location", "must be contiguous")

class Builder:
    """Builds one program step by step, running it in PyTorch as it goes."""

    def __init__(self, rng):
        self.r = rng
        self.steps = []
        self.regs = []      # tensors of the act run
        # whether a register's memory layout is the same in ember: inputs and views of such
        # tensors are; a computed result is contiguous in ember, and in PyTorch only when
        # the inputs' layout let it be (PyTorch's results follow their inputs' strides)
        self.faithful = []
        self.error = None   # (op index, message)
        self.reject = False  # PyTorch raised for a reason that is not ember's to share
        self.n_ops = 0

    # -- inputs
    def rand_vals(self, dt, n, lo=-2.0, hi=2.0, positive=False, specials=False):
        r = self.r
        if dt == "bool":
            return [r.random() < 0.5 for _ in range(n)]
        if dt == "u8":
            return [r.randint(0, 10) for _ in range(n)]
        if dt in INTS:
            return [r.randint(-6, 6) for _ in range(n)]
        if positive:
            lo, hi = 0.2, 2.0
            specials = False
        vals = [r.uniform(lo, hi) for _ in range(n)]
        if n and specials and r.random() < SPECIALS:
            vals[r.randrange(n)] = r.choice([float("nan"), float("inf"), float("-inf")])
        return [f32(v) for v in vals] if dt == "f32" else vals

    def add_input(self, dt, shape, rg=None, layout=None, vals=None, **kw):
        r = self.r
        n = numel(shape)
        if rg is None:
            rg = dt in FLOATS and r.random() < 0.85
        if vals is None:
            # NaN and infinities only where no gradient flows: PyTorch's gradients at them
            # depend on its code paths (elu's backward of NaN is NaN in its vectorised loop,
            # the input's gradient in its scalar one)
            kw.setdefault("specials", not rg)
            vals = self.rand_vals(dt, n, **kw)
        if layout is None:
            x = r.random()
            if len(shape) >= 2 and x < 0.25:
                layout = "t"
            elif len(shape) >= 1 and shape[-1] > 0 and x > 0.8:
                layout = "s"
            else:
                layout = "c"
        inp = Input(dt, shape, layout, bool(rg and dt in FLOATS), vals)
        self.steps.append(inp)
        self.regs.append(inp.build())
        self.faithful.append(True)
        return Reg(len(self.regs) - 1)

    # -- ops
    def add_op(self, name, args):
        op = Op(name, args)
        self.steps.append(op)
        k = self.n_ops
        self.n_ops += 1
        try:
            t = TORCH[name](*[resolve(a, self.regs) for a in args])
        except (RuntimeError, IndexError, ValueError) as e:
            msg = str(e).split("\n")[0]
            if any(m in msg for m in REJECT):
                self.reject = True
            self.error = (k, msg)
            return None
        if not isinstance(t, torch.Tensor):
            raise AssertionError("op %s returned %r" % (name, type(t)))
        self.regs.append(t)
        first = args[0][0] if isinstance(args[0], list) else args[0]
        if name in VIEW_OPS or name.endswith("_"):
            self.faithful.append(self.faithful[first.i])
        else:
            self.faithful.append(t.is_contiguous())
        return Reg(len(self.regs) - 1)

    def t(self, reg):
        return self.regs[reg.i]


# ------------------------------------------------------------------ op generators
# Each takes (builder, register) and returns (name, args) or None when it does not apply.
# ERR: how often a generator makes a deliberately invalid call (PyTorch must raise).
ERR = 0.035


def bad(b):
    return b.r.random() < ERR


def rdim(b, nd, allow_bad=True):
    if allow_bad and bad(b):
        return b.r.choice([nd, -nd - 1, nd + 2]) if nd > 0 else b.r.choice([1, -2])
    if nd == 0:
        return b.r.choice([0, -1])
    return b.r.randint(-nd, nd - 1)


def is_float(t):
    return t.dtype in (torch.float32, torch.float64)


def is_int(t):
    return t.dtype in (torch.int64, torch.int32, torch.uint8)


def positive(t):
    return t.numel() > 0 and bool((t.detach() > 0.05).all())


def other_shape(b, shape):
    """A shape that broadcasts with shape (or, rarely, one that does not)."""
    r = b.r
    shape = list(shape)
    x = r.random()
    if bad(b) and shape and max(shape) > 0:
        s = list(shape)
        i = r.randrange(len(s))
        s[i] = s[i] + 1 if s[i] != 1 else 3
        return s
    if x < 0.55 or not shape:
        return shape if r.random() < 0.9 else []
    if x < 0.75:
        return shape[r.randint(1, len(shape)):]
    return [1 if r.random() < 0.5 else s for s in shape]


def second(b, x, dt=None, shape=None, **kw):
    """Another operand of x's dtype: an existing register of a broadcastable shape, or a
    new input."""
    t = b.t(x)
    dt = dt or dtname(t)
    if shape is None:
        cands = [Reg(i) for i, u in enumerate(b.regs) if dtname(u) == dt and i != x.i and
                 broadcastable(u.shape, t.shape) and u.numel() <= MAX_NUMEL]
        if cands and b.r.random() < 0.3:
            return b.r.choice(cands)
        shape = other_shape(b, t.shape)
    return b.add_input(dt, shape, **kw)


def broadcastable(a, c):
    for x, y in zip(reversed(list(a)), reversed(list(c))):
        if x != y and x != 1 and y != 1:
            return False
    return True


UNARY_FLOAT = ["neg", "exp", "log", "sqrt", "abs", "relu", "tanh", "sigmoid", "log1p", "expm1",
               "sin", "cos", "erf", "reciprocal", "sign", "floor", "ceil", "round", "silu"]
UNARY_INT = ["neg", "abs", "sign", "floor", "ceil", "round"]


def g_unary(b, x):
    t = b.t(x)
    if is_float(t):
        name = b.r.choice(UNARY_FLOAT)
        if name in ("log", "sqrt", "reciprocal") and not positive(t) and b.r.random() < 0.8:
            return None
        if name == "log1p" and t.numel() and bool((t.detach() <= -0.9).any()) and b.r.random() < 0.8:
            return None
        return name, [x]
    if is_int(t):
        return b.r.choice(UNARY_INT), [x]
    if bad(b):
        return "neg", [x]            # bool negation: PyTorch refuses
    return None


def g_param_unary(b, x):
    t = b.t(x)
    r = b.r
    if not is_float(t):
        if is_int(t) and r.random() < 0.5:
            lo = r.randint(-3, 2)
            hi = lo + r.randint(0, 4)
            kind = r.choice(["clamp", "clamp_min", "clamp_max"])
            return kind, [x, float(lo), float(hi)] if kind == "clamp" else [x, float(lo if kind == "clamp_min" else hi)]
        return None
    name = r.choice(["leaky_relu", "gelu", "elu", "softplus", "pow", "clamp", "clamp_min",
                     "clamp_max"])
    if name == "leaky_relu":
        return name, [x, r.choice([0.01, 0.2, 1.5])]
    if name == "gelu":
        return name, [x, r.randint(0, 1)]
    if name == "elu":
        return name, [x, r.choice([1.0, 0.5, 2.0])]
    if name == "softplus":
        return name, [x, r.choice([1.0, 2.0, 0.5]), r.choice([20.0, 1.0, 2.5])]
    if name == "pow":
        e = r.choice([2.0, 3.0, -1.0, 0.5, 1.5, -2.0, 0.0])
        if (e != int(e) or e < 0) and not positive(t):
            e = r.choice([2.0, 3.0])
        return name, [x, e]
    lo = round(r.uniform(-1.5, 0.5), 2)
    hi = round(lo + r.uniform(0.1, 2.0), 2)
    if name == "clamp":
        return name, [x, lo, hi]
    return name, [x, lo if name == "clamp_min" else hi]


SCALAR_OPS = ["add_scalar", "sub_scalar", "rsub_scalar", "mul_scalar", "div_scalar",
              "rdiv_scalar", "floor_divide_scalar", "remainder_scalar"]
CMP_SCALAR = ["lt_scalar", "le_scalar", "gt_scalar", "ge_scalar", "eq_scalar", "ne_scalar"]


def g_scalar(b, x):
    t = b.t(x)
    r = b.r
    name = r.choice(SCALAR_OPS)
    whole = r.random() < (0.7 if not is_float(t) else 0.3)
    s = float(r.choice([-3, -2, 2, 3, 1, 4])) if whole else r.choice([0.5, -1.5, 2.5, 0.25, -0.75])
    if t.dtype == torch.uint8 and whole and r.random() < 0.3:
        s = float(r.choice([200, 300]))   # u8 wraps
    if name in ("floor_divide_scalar", "remainder_scalar") and is_float(t) and t.requires_grad:
        if name == "floor_divide_scalar":
            return None                   # PyTorch has no derivative for floor_divide
    if name == "rdiv_scalar" and is_float(t) and not positive(t) and r.random() < 0.7:
        return None
    if bad(b) and name in ("floor_divide_scalar", "remainder_scalar") and is_int(t):
        s = 0.0                           # integer division by zero
    if t.dtype == torch.bool and name in ("floor_divide_scalar", "remainder_scalar"):
        return None
    return name, [x, s]


def g_cmp_scalar(b, x):
    t = b.t(x)
    s = b.r.choice([0.0, 0.5, -1.0, 1.0, 2.0]) if not is_int(t) else float(b.r.randint(-2, 3))
    return b.r.choice(CMP_SCALAR), [x, s]


def g_binary(b, x):
    t = b.t(x)
    r = b.r
    if t.dtype == torch.bool:
        return r.choice(["lt", "le", "gt", "ge", "eq", "ne"]), [x, second(b, x)]
    names = ["add", "sub", "mul", "maximum", "minimum", "floor_divide", "remainder"]
    if is_float(t):
        names += ["div", "div", "pow_tensor", "add", "mul", "sub"]
    name = r.choice(names)
    if is_float(t) and name == "floor_divide":
        if t.requires_grad:
            return None
        y = second(b, x, rg=False, positive=True)
        return name, [x, y]
    if name == "pow_tensor":
        if not positive(t):
            # x as the exponent of a positive base
            if t.numel() and not bool((t.detach().abs() < 4).all()):
                return None
            return name, [second(b, x, positive=True), x]
        return name, [x, second(b, x, lo=-1.5, hi=1.5)]
    if name in ("div", "remainder") and is_float(t):
        y = second(b, x, positive=True)
        if r.random() < 0.3:
            return name, [y, x] if positive(t) else [x, y]
        return name, [x, y]
    if name in ("floor_divide", "remainder") and is_int(t):
        shape = other_shape(b, t.shape)
        n = numel(shape)
        vals = [r.choice([-3, -2, -1, 1, 2, 3, 4]) if t.dtype != torch.uint8 else r.randint(1, 5)
                for _ in range(n)]
        if bad(b) and n:
            vals[r.randrange(n)] = 0          # integer division by zero
        return name, [x, b.add_input(dtname(t), shape, vals=vals)]
    y = second(b, x)
    return name, ([y, x] if r.random() < 0.3 else [x, y])


def g_compare(b, x):
    name = b.r.choice(["lt", "le", "gt", "ge", "eq", "ne"])
    t = b.t(x)
    if is_int(t):
        return name, [x, second(b, x)]
    # ties: compare with a copy that has some equal elements
    y = second(b, x)
    return name, [x, y]


def g_where(b, x):
    t = b.t(x)
    r = b.r
    cond = b.add_input("bool", other_shape(b, t.shape))
    y = second(b, x)
    return "where", ([cond, x, y] if r.random() < 0.6 else [cond, y, x])


def g_masked_fill(b, x):
    t = b.t(x)
    mask = b.add_input("bool", other_shape(b, t.shape))
    v = float(b.r.randint(-3, 3)) if not is_float(t) else b.r.choice([0.0, -1.5, 2.25, float("-inf")])
    if t.dtype == torch.bool:
        v = float(b.r.randint(0, 1))
    return "masked_fill", [x, mask, v]


def g_clamp_tensor(b, x):
    t = b.t(x)
    if not is_float(t):
        return None
    r = b.r
    k = r.randint(0, 2)
    lo = b.add_input(dtname(t), other_shape(b, t.shape), lo=-1.5, hi=0.0) if k != 1 else NONE
    hi = b.add_input(dtname(t), other_shape(b, t.shape), lo=0.1, hi=1.5) if k != 0 else NONE
    return "clamp_tensor", [x, lo, hi]


def g_matmul(b, x):
    t = b.t(x)
    if not is_float(t) or t.dim() not in (1, 2, 3):
        return None
    r = b.r
    k = t.shape[-1]
    if bad(b):
        k += 1
    m = r.randint(1, 4)
    if t.dim() == 2 and r.random() < 0.5:
        return "mm", [x, b.add_input(dtname(t), [k, m])]
    shape = [k] if r.random() < 0.3 else [k, m]
    return "matmul", [x, b.add_input(dtname(t), shape)]


def g_cast(b, x):
    t = b.t(x)
    r = b.r
    dts = ["f32", "f64", "i64", "i32", "u8", "bool"]
    dt = r.choice(dts)
    if is_float(t) and dt in INTS:
        # float -> integer of NaN, infinities and values out of range is unspecified
        if t.numel() and not bool((t.detach().abs() <= 100).all()):
            return None
        if dt == "u8" and t.numel() and bool((t.detach() < 0).any()):
            return None
    return "to_dtype", [x, dt]


def g_copyish(b, x):
    return b.r.choice(["contiguous", "clone", "detach", "clone"]), [x]


def g_view(b, x):
    t = b.t(x)
    r = b.r
    nd = t.dim()
    shape = list(t.shape)
    kinds = ["transpose", "permute", "narrow", "select", "slice", "view", "reshape", "expand",
             "unsqueeze", "squeeze", "flatten", "t", "split", "chunk"]
    k = r.choice(kinds)
    if k == "transpose":
        if nd == 0:
            return None
        return k, [x, rdim(b, nd), rdim(b, nd, False)]
    if k == "t":
        if nd > 2 and not bad(b):
            return None
        return k, [x]
    if k == "permute":
        if nd == 0:
            return None
        p = list(range(nd))
        r.shuffle(p)
        p = [d - nd if r.random() < 0.3 else d for d in p]
        if bad(b):
            p[0] = p[-1] if nd > 1 else 3
        return k, [x, p]
    if k in ("narrow", "select", "slice", "split", "chunk"):
        if nd == 0:
            return None
        d = rdim(b, nd)
        size = shape[d % nd] if -nd <= d < nd else 1
        if k == "narrow":
            start = r.randint(-size, max(size - 1, -size)) if size else 0
            s0 = start + size if start < 0 else start
            length = r.randint(0, size - s0) if size else 0
            if bad(b):
                length = size - s0 + 1
            return k, [x, d, start, length]
        if k == "select":
            if size == 0:
                return None
            i = r.randint(-size, size - 1)
            if bad(b):
                i = size
            return k, [x, d, i]
        if k == "slice":
            start = r.randint(-size - 1, size + 1)
            end = END if r.random() < 0.3 else r.randint(-size - 1, size + 2)
            step = r.choice([1, 1, 2, 3])
            if bad(b):
                step = 0
            return k, [x, d, start, end, step]
        if size == 0:
            return None
        if k == "split":
            sz = r.randint(1, size)
            n = -(-size // sz)
            return k, [x, sz, d, r.randrange(n)]
        n = r.randint(1, size + 1)
        pieces = torch.chunk(t.detach(), n, d % nd)
        return k, [x, n, d, r.randrange(len(pieces))]
    if k == "view" and not b.faithful[x.i]:
        return None     # whether a view is possible depends on a layout ember need not share
    if k in ("view", "reshape"):
        n = t.numel()
        ns = factor_shape(r, n)
        if ns and r.random() < 0.3:
            ns[r.randrange(len(ns))] = -1
        if bad(b):
            ns = ns + [2]
        return k, [x, ns]
    if k == "expand":
        ns = [r.randint(2, 3) if s == 1 and r.random() < 0.7 else (-1 if r.random() < 0.3 else s)
              for s in shape]
        if r.random() < 0.4:
            ns = [r.randint(1, 3)] + ns
        if bad(b) and shape and max(shape) > 1:
            i = max(range(nd), key=lambda j: shape[j])
            ns[len(ns) - nd + i] = shape[i] + 1
        if numel([abs(s) for s in ns]) * max(1, t.numel()) > MAX_NUMEL * 4:
            return None
        return k, [x, ns]
    if k == "unsqueeze":
        d = r.randint(-nd - 1, nd)
        if bad(b):
            d = nd + 1
        return k, [x, d]
    if k == "squeeze":
        ones = [i for i, s in enumerate(shape) if s == 1]
        if ones and r.random() < 0.7:
            d = r.choice(ones)
            return k, [x, d - nd if r.random() < 0.3 else d]
        return k, [x, rdim(b, nd)]
    if k == "flatten":
        return k, [x]
    return None


def factor_shape(r, n):
    if n == 0:
        return [0, r.randint(1, 3)] if r.random() < 0.5 else [0]
    out = []
    m = n
    for p in (2, 3, 2, 5, 2, 3):
        if m % p == 0 and r.random() < 0.6:
            out.append(p)
            m //= p
    out.append(m)
    r.shuffle(out)
    if r.random() < 0.2:
        out.insert(r.randint(0, len(out)), 1)
    return out


def g_index(b, x):
    t = b.t(x)
    r = b.r
    nd = t.dim()
    shape = list(t.shape)
    k = r.choice(["index_select", "gather", "scatter_add", "cat", "stack", "cat"])
    if k in ("index_select", "gather", "scatter_add"):
        if nd == 0:
            return None
        d = rdim(b, nd)
        dd = d % nd if nd and -nd <= d < nd else 0
        size = shape[dd] if nd else 1
        if size == 0:
            return None
        if k == "index_select":
            m = r.randint(0, 5)
            vals = [r.randrange(size) for _ in range(m)]
            if bad(b) and m:
                vals[r.randrange(m)] = r.choice([size, -1])
            idx = b.add_input("i64", [m], vals=vals)
            return k, [x, d, idx]
        ishape = [r.randint(1, s) if s > 0 else 0 for s in shape]
        ishape[dd] = r.randint(1, 4)
        if k == "scatter_add":
            ishape[dd] = r.randint(1, max(1, size))
        n = numel(ishape)
        vals = [r.randrange(size) for _ in range(n)]
        if bad(b) and n:
            vals[r.randrange(n)] = r.choice([size, -1])
        idx = b.add_input("i64", ishape, vals=vals)
        if k == "gather":
            return k, [x, d, idx]
        if not is_float(t):
            return None
        src = b.add_input(dtname(t), ishape)
        return k, [x, d, idx, src]
    # cat / stack
    if nd == 0 and k == "cat":
        if not bad(b):
            return None
        return k, [[x, x], 0]
    n = r.randint(1, 3)
    if k == "cat":
        d = rdim(b, nd)
        dd = d % nd if -nd <= d < nd else 0
        parts = [x]
        for _ in range(n):
            s = list(shape)
            s[dd] = r.randint(0, 3)
            if bad(b) and nd > 1:
                s[(dd + 1) % nd] += 1
            parts.append(b.add_input(dtname(t), s) if r.random() < 0.8 else x)
        r.shuffle(parts)
        return k, [parts, d]
    d = r.randint(-nd - 1, nd)
    if bad(b):
        d = nd + 1
    parts = [x] + [b.add_input(dtname(t), shape) if r.random() < 0.8 else x for _ in range(n)]
    r.shuffle(parts)
    return k, [parts, d]


def g_reduce(b, x):
    t = b.t(x)
    r = b.r
    nd = t.dim()
    shape = list(t.shape)
    names = ["sum", "sum_dims", "max", "min", "max_dim_values", "max_dim_indices",
             "min_dim_values", "min_dim_indices", "argmax", "argmin", "prod", "prod_dim",
             "any", "any_dim", "sum_dims"]
    if is_float(t) or bad(b):
        names += ["mean", "mean_dims", "var", "std", "var_dims", "std_dims", "logsumexp",
                  "mean_dims", "logsumexp"]
    name = r.choice(names)
    if t.dtype == torch.bool and name not in ("sum", "sum_dims", "any", "any_dim") and not bad(b):
        return None
    if t.dtype == torch.uint8 and name in ("any", "any_dim"):
        return None      # PyTorch's any of u8 gives u8; ember's gives bool
    if name in ("sum", "mean", "max", "min", "prod", "any"):
        return name, [x]
    # var / std of fewer than 2 elements: PyTorch's gradient special-cases the degenerate
    # 0 / 0 (inf or NaN by a rule of its own), not worth matching
    if name in ("var", "std"):
        if t.numel() < 2 and not bad(b):
            return None
        return name, [x, r.randint(0, 1)]
    if name in ("sum_dims", "mean_dims", "var_dims", "std_dims", "logsumexp"):
        if name in ("logsumexp", "var_dims", "std_dims") and nd == 0:
            return None
        dims = list(range(nd))
        r.shuffle(dims)
        # (PyTorch 1.13's var / std backward is wrong for dim=[]: they get at least one dim)
        dims = dims[:r.randint(1 if name in ("logsumexp", "var_dims", "std_dims") else 0, nd)]
        if not dims and name != "sum_dims" and name != "mean_dims":
            return None
        dims = [d - nd if r.random() < 0.3 else d for d in dims]
        if bad(b):
            dims = dims + [dims[0] if dims else nd]
        keep = r.randint(0, 1)
        if name in ("var_dims", "std_dims"):
            if numel([shape[d] for d in dims if -nd <= d < nd]) < 2:
                return None
            return name, [x, dims, r.randint(0, 1), keep]
        return name, [x, dims, keep]
    return name, [x, rdim(b, nd), r.randint(0, 1)]


def g_softmax(b, x):
    t = b.t(x)
    # (on an empty tensor PyTorch never reaches the kernel that refuses integers)
    if not is_float(t) and (t.numel() == 0 or not bad(b)):
        return None
    nd = t.dim()
    return b.r.choice(["softmax", "log_softmax"]), [x, rdim(b, nd)]


def g_loss(b, x):
    t = b.t(x)
    r = b.r
    if not is_float(t):
        return None
    nd = t.dim()
    shape = list(t.shape)
    dt = dtname(t)
    k = r.choice(["mse_loss", "l1_loss", "smooth_l1_loss", "cross_entropy", "cross_entropy",
                  "nll_loss", "bce_with_logits"])
    red_ = r.choice(REDUCTIONS)
    if k in ("mse_loss", "l1_loss", "smooth_l1_loss"):
        y = b.add_input(dt, shape if r.random() < 0.85 else other_shape(b, shape))
        args = [x, y] if r.random() < 0.7 else [y, x]
        if k == "smooth_l1_loss":
            return k, args + [red_, r.choice([1.0, 0.5, 0.25])]
        return k, args + [red_]
    if k == "bce_with_logits":
        y = b.add_input(dt, shape, lo=0.0, hi=1.0)
        w = b.add_input(dt, other_shape(b, shape), rg=False, positive=True) if r.random() < 0.3 else NONE
        pw = NONE
        if nd >= 1 and r.random() < 0.3:
            pw = b.add_input(dt, [shape[-1]], rg=False, positive=True)
        return k, [x, y, w, pw, red_]
    # class losses: x is (C), (N, C) or (N, C, d1, ...)
    if nd == 0 or nd > 4 or 0 in shape:
        return None
    C = shape[1] if nd >= 2 else shape[0]
    tshape = [] if nd == 1 else [shape[0]] + shape[2:]
    n = numel(tshape)
    ii = -100 if r.random() < 0.6 else r.randrange(C)
    vals = [r.randrange(C) for _ in range(n)]
    for i in range(n):
        if r.random() < 0.15:
            vals[i] = ii
    if bad(b) and n:
        vals[r.randrange(n)] = C
    tgt = b.add_input("i64", tshape, vals=vals)
    w = b.add_input(dt, [C], rg=False, positive=True) if r.random() < 0.3 else NONE
    if k == "nll_loss":
        return k, [x, tgt, w, ii, red_]
    ls = r.choice([0.0, 0.0, 0.1, 0.25])
    return k, [x, tgt, w, ii, red_, ls]


INPLACE_UNARY = ["neg_", "exp_", "log_", "sqrt_", "abs_", "relu_", "tanh_", "sigmoid_",
                 "reciprocal_", "floor_", "ceil_", "round_", "zero_"]


def g_inplace(b, x):
    """In-place ops, mostly on non-leaves and their views (PyTorch rebases the view's
    history); on a leaf that requires grad, or a view of one, PyTorch refuses."""
    t = b.t(x)
    r = b.r
    base = t._base if t._base is not None else t
    if t.requires_grad and base.is_leaf and not bad(b):
        return None
    kind = r.choice(["unary", "scalar", "scalar", "binary", "binary", "fill_", "masked_fill_",
                     "copy_", "copy_", "scatter_add_", "clamp_", "pow_"])
    fl = is_float(t)
    if t.dtype == torch.bool and kind not in ("fill_", "masked_fill_", "copy_"):
        return None
    if kind == "unary":
        if not fl:
            return r.choice(["neg_", "abs_", "zero_"]), [x]
        name = r.choice(INPLACE_UNARY)
        if name in ("log_", "sqrt_", "reciprocal_") and not positive(t):
            return None
        return name, [x]
    if kind == "scalar":
        name = r.choice(["add_scalar_", "sub_scalar_", "mul_scalar_", "div_scalar_"])
        if not fl and (name == "div_scalar_") != bad(b):
            return None
        s = r.choice([0.5, -1.5, 2.0, 3.0]) if fl else float(r.choice([-2, 2, 3]))
        return name, [x, s]
    if kind == "binary":
        name = r.choice(["add_", "sub_", "mul_", "div_"] if fl else ["add_", "sub_", "mul_"])
        y = second(b, x, positive=(name == "div_"))
        return name, [x, y]
    if kind == "fill_":
        return kind, [x, r.choice([1.5, -2.0, 0.0]) if fl else float(r.randint(0, 1))]
    if kind == "masked_fill_":
        if any(st == 0 and sz > 1 for st, sz in zip(t.stride(), t.shape)):
            return None     # deprecated in PyTorch on a tensor with overlapping elements
        mask = b.add_input("bool", other_shape(b, t.shape))
        return kind, [x, mask, r.choice([0.0, -1.25, 3.0]) if fl else float(r.randint(0, 1))]
    if kind == "copy_":
        dt = r.choice(["f32", "f64", "i64", "bool", dtname(t), dtname(t)])
        if dt in FLOATS and not fl:
            # float -> integer is unspecified for NaN, infinities and values out of range
            return kind, [x, b.add_input(dt, other_shape(b, t.shape), lo=0.0, hi=5.0, specials=False)]
        return kind, [x, b.add_input(dt, other_shape(b, t.shape))]
    if kind == "clamp_":
        if fl:
            return kind, [x, -0.5, 0.75]
        return kind, [x, -1.0, 2.0]
    if kind == "pow_":
        if not fl:
            return None
        return kind, [x, r.choice([2.0, 3.0]) if not positive(t) else r.choice([0.5, 2.0, -1.0])]
    # scatter_add_
    nd = t.dim()
    if not fl or nd == 0 or 0 in t.shape:
        return None
    d = rdim(b, nd, False)
    dd = d % nd
    ishape = [r.randint(1, s) for s in t.shape]
    n = numel(ishape)
    idx = b.add_input("i64", ishape, vals=[r.randrange(t.shape[dd]) for _ in range(n)])
    return kind, [x, d, idx, b.add_input(dtname(t), ishape)]


GENERATORS = [
    (g_unary, 14), (g_param_unary, 7), (g_scalar, 8), (g_cmp_scalar, 2), (g_binary, 12),
    (g_compare, 2), (g_where, 3), (g_masked_fill, 2), (g_clamp_tensor, 2), (g_matmul, 2),
    (g_cast, 5), (g_copyish, 2), (g_view, 14), (g_index, 9), (g_reduce, 12), (g_softmax, 5),
    (g_loss, 6), (g_inplace, 7),
]


def pick_generator(r):
    total = sum(w for _, w in GENERATORS)
    x = r.uniform(0, total)
    for g, w in GENERATORS:
        x -= w
        if x <= 0:
            return g
    return GENERATORS[-1][0]


def rand_shape(r):
    nd = r.choices([0, 1, 2, 3, 4], [1, 3, 5, 3, 1])[0]
    while True:
        shape = [r.choices([1, 2, 3, 4, 5], [2, 4, 4, 3, 1])[0] for _ in range(nd)]
        if nd and r.random() < 0.03:
            shape[r.randrange(nd)] = 0
        if numel(shape) <= 40:
            return shape


def build_program(r):
    b = Builder(r)
    dt = r.choices(["f32", "f64", "i64", "i32", "u8", "bool"], [45, 30, 10, 5, 5, 5])[0]
    b.add_input(dt, rand_shape(r), rg=dt in FLOATS and r.random() < 0.9)
    n_ops = r.randint(2, 6)
    x = Reg(0)
    tries = 0
    while b.n_ops < n_ops and tries < 200:
        tries += 1
        if r.random() > 0.8 and len(b.regs) > 1:
            x = Reg(r.randrange(len(b.regs)))
        if b.t(x).numel() > MAX_NUMEL:
            x = Reg(len(b.regs) - 1)
        mark = len(b.steps), len(b.regs)
        g = pick_generator(r)
        res = g(b, x)
        if res is None:
            del b.steps[mark[0]:]
            del b.regs[mark[1]:]
            del b.faithful[mark[1]:]
            continue
        out = b.add_op(*res)
        if b.error:
            return None if b.reject else b
        if b.t(out).numel() > MAX_NUMEL * 2:
            return None
        x = out
        base = b.t(out)._base
        if res[0].endswith("_") and base is not None and r.random() < 0.5:
            # go on from the base of the view that was modified in place
            for i, u in enumerate(b.regs):
                if u is base:
                    x = Reg(i)
    if b.n_ops < 2:
        return None
    return b


# ------------------------------------------------------------------ checking and output
