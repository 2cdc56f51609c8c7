#!/usr/bin/python3
"""tests/data/gen_chains.py — random op chains run in PyTorch, for tests/test_reference.c.

Regenerate with Debian's python3-torch (PyTorch 1.13):
    /usr/bin/python3 tests/data/gen_chains.py > tests/data/chains_reference.txt
The seed is fixed (SEED below; `--seed N` and `--count N` override it and the number of
programs), so the output only changes when this script or PyTorch does. ember itself
never needs Python: the output file is committed.

Each program is a short chain (2 to 6 ops) drawn from ember's vocabulary: elementwise
math and activations, integer ops and dtype casts, scalar promotion, views (transpose,
permute, narrow, select, slice, split, ...), index_select / gather / scatter_add / cat /
stack, reductions (over dims, keepdim, max_dim, argmax, prod, var, logsumexp, ...),
softmax / log_softmax and the losses. Inputs are random, of random shapes, some stored
non-contiguously (transposed, or every other element of a wider tensor), and the float
ones mostly require grad. PyTorch runs each program; the file records its inputs and ops,
the output (dtype, shape, values, requires_grad, grad_fn name) and the gradient of every
input that requires grad for out.backward(w), w a fixed random tensor — or, when PyTorch
raises, the op at which it did (ember must fail at that op too).

Programs whose result is sensitive to rounding are not kept: every program is also run
with all floats in f64 and with all floats in f32, and must give the same integers and
booleans, and floats (values and gradients) within CHECK_TOL of each other, so that the
tolerances of the C test stay meaningful for every kept program. Nor are programs whose
gradients hold a NaN (PyTorch's value there depends on which of its loops ran), nor those
where PyTorch raised for a reason ember does not share (see REJECT in chains_gen.py). NaN
and infinities are drawn only into inputs that need no grad. After the random programs
come a few fixed ones (PINNED below), cases that larger runs (--seed, --count) found.

Format: '#' lines are comments; one program is
    P <id> <number of ops>
    I <dtype> <layout> <requires_grad> <ndim> <shape...> : <values...>    an input
    O <op> <args...>                                                       an op
    ...                                                      (I and O lines in order)
    E <k>                       PyTorch raised at the k-th op (0-based); nothing follows
  or
    R <dtype> <requires_grad> <grad_fn|-|?> <ndim> <shape...> : <values...>  the output
    W <values...>               the backward seed w (only when the output requires grad)
    G <input> none | G <input> : <values...>   .grad of the input-th I line (requires grad)
    X                           (instead of G lines) PyTorch refused the backward pass
  and then
    Z
grad_fn is '-' when the output has none, '?' when PyTorch's name is an artefact of how it
composes the op (then not compared).
Every I and O line defines the next register %0, %1, ... ; the output is the last one.
Layouts: c contiguous; t stored with the last two dims swapped and seen through a
transpose; s stored as every other element of a last dim twice as long (sentinels between).
Op arguments: %N a register, [a,b] an int list, [%1,%2] a list of registers, a dtype name,
mean/sum/none (a reduction), - (no tensor), 'end' (to the end, for slice), numbers.
"""
import random
import sys
import warnings

import torch

from chains_gen import Builder, Op, build_program
from chains_vocab import NONE, OWN_GRAD_FN, Reg, dtname, execute, f32, fmt_num, fmt_vals

SEED = 20240613
COUNT = 500
CHECK_TOL = 2e-6       # f32 run vs f64 run: |lo - hi| <= CHECK_TOL * (scale + |hi|)
SCALE_FLOOR = 1e-2     # scale = max(max|hi|, SCALE_FLOOR), as in tests/test_reference.c

warnings.filterwarnings("ignore")
torch.set_num_threads(1)


def close(lo, hi):
    """lo (an f32 run) agrees with hi (the f64 run) well enough to test at f32 precision."""
    if lo.shape != hi.shape:
        return False
    if not lo.is_floating_point():
        return bool(torch.equal(lo, hi))
    lo = lo.detach().double().reshape(-1)
    hi = hi.detach().double().reshape(-1)
    if not torch.equal(torch.isnan(lo), torch.isnan(hi)):
        return False
    inf = torch.isinf(hi) | torch.isinf(lo)
    if not torch.equal(lo[inf], hi[inf]):
        return False
    fin = ~(torch.isnan(hi) | inf)
    lo, hi = lo[fin], hi[fin]
    if hi.numel() == 0:
        return True
    scale = max(float(hi.abs().max()), SCALE_FLOOR)
    return bool(((lo - hi).abs() <= CHECK_TOL * (scale + hi.abs())).all())


def stable(steps, w):
    try:
        lo, glo, _ = execute(steps, "lo", w)
        hi, ghi, _ = execute(steps, "hi", w)
    except (RuntimeError, IndexError, ValueError):
        return False
    if lo.is_floating_point() != hi.is_floating_point() or not close(lo, hi):
        return False
    if isinstance(glo, str) or isinstance(ghi, str):
        return isinstance(glo, str) and isinstance(ghi, str)
    if (glo is None) != (ghi is None):
        return False
    for a, c in zip(glo or [], ghi or []):
        if (a is None) != (c is None) or (a is not None and not close(a, c)):
            return False
    return True


def grad_fn_name(out, last, regs):
    # the input itself handed back (to() of the same dtype, contiguous() of a contiguous
    # tensor, flatten() of a 1-D one; regs: the builder's run): which node the result
    # shows is PyTorch's shortcut, not the op's
    if any(regs[-1] is t for t in regs[:-1]):
        return "?"
    if out.grad_fn is None:
        return "-"
    # a name PyTorch's composition of the op gives
    if last.name not in OWN_GRAD_FN:
        return "?"
    return type(out.grad_fn).__name__


def emit(pid, b, r, counts):
    lines = []
    n_ops = sum(1 for s in b.steps if isinstance(s, Op))
    lines.append("P %d %d" % (pid, n_ops))
    lines += [s.line() for s in b.steps]
    if b.error:
        lines.append("E %d" % b.error[0])
        counts["errors"].setdefault(b.error[1][:90], 0)
        counts["errors"][b.error[1][:90]] += 1
        return lines
    out = b.regs[-1]
    w = None
    if out.requires_grad:
        w = [r.uniform(-1, 1) for _ in range(out.numel())]
        if out.dtype == torch.float32:
            w = [f32(v) for v in w]
    out, grads, inputs = execute(b.steps, "act", w)
    if not stable(b.steps, w):
        counts["unstable"] += 1
        return None
    last = [s for s in b.steps if isinstance(s, Op)][-1]
    lines.append("R %s %d %s %d%s : %s" % (dtname(out), int(out.requires_grad),
                                           grad_fn_name(out, last, b.regs), out.dim(),
                                           "".join(" %d" % s for s in out.shape), fmt_vals(out)))
    if w is not None:
        lines.append("W " + " ".join(fmt_num(v, dtname(out)) for v in w))
        if isinstance(grads, str):
            if "modified by an inplace operation" not in grads:
                return None     # an internal limit of PyTorch's backward, not semantics
            lines.append("X")
            counts["errors"].setdefault("backward: " + grads[:80], 0)
            counts["errors"]["backward: " + grads[:80]] += 1
            return lines
        # a NaN gradient: PyTorch's value there depends on its code path (vectorised or
        # not), so such programs are not kept
        if any(g is not None and bool(torch.isnan(g).any()) for g in grads):
            counts["nan_grad"] += 1
            return None
        for i, (x, g) in enumerate(zip(inputs, grads)):
            if x.requires_grad:
                lines.append("G %d none" % i if g is None else "G %d : %s" % (i, fmt_vals(g)))
    return lines


# Fixed programs after the random ones: cases larger random runs found ember and PyTorch
# to disagree on, kept here so that they stay checked whatever the seed draws. Each is
# (description, [("I", dtype, shape, values, requires_grad) | ("O", name, args)]); the
# output is the last register, as for the random programs.
NAN, INF = float("nan"), float("inf")
PINNED = [
    ("sign of NaN is 0 in PyTorch (and of -0. is 0.)",
     [("I", "f32", [5], [NAN, -0.0, 1.5, -2.0, INF], False), ("O", "sign", [Reg(0)])]),
    ("nll_loss: a target equal to ignore_index contributes nothing, whatever its row holds",
     [("I", "f32", [2, 3], [NAN, -INF, 0.0, -0.5, -1.0, -2.0], False),
      ("I", "i64", [2], [-100, 1], False),
      ("O", "nll_loss", [Reg(0), Reg(1), NONE, -100, "sum"])]),
    ("cross_entropy: an ignored row of -inf logits, with label smoothing, no reduction",
     [("I", "f32", [3, 3], [-INF, -INF, -INF, 0.5, 1.0, 2.0, 0.0, -1.0, 1.0], False),
      ("I", "i64", [3], [-100, 1, 2], False),
      ("O", "cross_entropy", [Reg(0), Reg(1), NONE, -100, "none", 0.25])]),
    ("cross_entropy: mean over the targets not ignored (ignore_index 0), a NaN in an ignored row",
     [("I", "f64", [2, 2], [-0.5, -0.6, -0.7, NAN], False),
      ("I", "i64", [2], [1, 0], False),
      ("O", "cross_entropy", [Reg(0), Reg(1), NONE, 0, "mean", 0.0])]),
    ("argmax of a bool tensor is an error in PyTorch",
     [("I", "bool", [2, 3], [1, 0, 1, 0, 0, 1], False), ("O", "argmax", [Reg(0), 1, 0])]),
    ("an empty integer tensor // 0 is no error in PyTorch (no element is divided)",
     [("I", "i64", [0, 3], [], False), ("O", "floor_divide_scalar", [Reg(0), 0.0])]),
    ("copy_: the source must broadcast to self's shape ([2, 3] into [2, 1] is an error)",
     [("I", "f32", [2, 1], [0.0, 0.0], False), ("I", "f32", [2, 3], [0, 1, 2, 3, 4, 5], False),
      ("O", "copy_", [Reg(0), Reg(1)])]),
    ("fill_ of an expanded tensor writes its base (PyTorch allows it, and zero_)",
     [("I", "i64", [3], [3, -6, 3], False), ("O", "expand", [Reg(0), [3, 3]]),
      ("O", "fill_", [Reg(1), 2.0]), ("O", "add_scalar", [Reg(0), 1.0])]),
    ("backward through a saved result modified in place is refused for an empty tensor too",
     [("I", "f32", [0], [], True), ("O", "sigmoid", [Reg(0)]), ("O", "add_scalar_", [Reg(1), 0.5])]),
    ("pow with a tensor exponent saves its result (PowBackward1), also when only the base "
     "needs grad: modifying the result in place makes backward fail",
     [("I", "f32", [3], [0.5, 1.5, 2.0], True), ("I", "f32", [3], [1.0, 2.0, 3.0], False),
      ("O", "pow_tensor", [Reg(0), Reg(1)]), ("O", "mul_scalar_", [Reg(2), 2.0])]),
]


def pinned_program(r, spec):
    b = Builder(r)
    for step in spec:
        if step[0] == "I":
            _, dt, shape, vals, rg = step
            b.add_input(dt, shape, rg=rg, layout="c", vals=vals)
        else:
            b.add_op(step[1], step[2])
    return b


def main():
    seed, count = SEED, COUNT
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--seed":
            seed = int(args.pop(0))
        elif a == "--count":
            count = int(args.pop(0))
        else:
            sys.exit("usage: gen_chains.py [--seed N] [--count N]")
    r = random.Random(seed)
    counts = {"unstable": 0, "nan_grad": 0, "errors": {}, "ops": {}}
    print("# Random op chains run in PyTorch %s: made by tests/data/gen_chains.py (seed %d);"
          % (torch.__version__, seed))
    print("# read by tests/test_reference.c. Regenerate: /usr/bin/python3 tests/data/gen_chains.py"
          " > tests/data/chains_reference.txt")
    pid = 0
    n_err = 0
    while pid < count:
        b = build_program(r)
        if b is None:
            continue
        if b.error and n_err >= count * 0.15:
            continue
        lines = emit(pid, b, r, counts)
        if lines is None:
            continue
        if b.error:
            n_err += 1
        for s in b.steps:
            if isinstance(s, Op):
                counts["ops"][s.name] = counts["ops"].get(s.name, 0) + 1
        print("\n".join(lines))
        print("Z")
        pid += 1
    for what, spec in PINNED:
        lines = emit(pid, pinned_program(r, spec), r, counts)
        if lines is None:
            sys.exit("pinned program '%s' is not stable" % what)
        print("# %s" % what)
        print("\n".join(lines))
        print("Z")
        pid += 1
    sys.stderr.write("%d programs, %d PyTorch errors; dropped: %d unstable, %d with NaN gradients\n"
                     % (count, n_err, counts["unstable"], counts["nan_grad"]))
    for msg, n in sorted(counts["errors"].items(), key=lambda kv: -kv[1]):
        sys.stderr.write("  error x%d: %s\n" % (n, msg))
    sys.stderr.write("ops: %s\n" % " ".join("%s:%d" % kv for kv in sorted(counts["ops"].items())))


if __name__ == "__main__":
    main()
