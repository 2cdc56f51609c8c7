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
tolerances of the C test stay meaningful for every kept program.

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

from chains_gen import Op, build_program
from chains_vocab import OWN_GRAD_FN, dtname, execute, f32, fmt_num, fmt_vals

SEED = 20240613
COUNT = 500
CHECK_TOL = 2e-6       # f32 run vs f64 run: |lo - hi| <= CHECK_TOL * (max|hi| + |hi|)

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
    scale = float(hi.abs().max())
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


def grad_fn_name(out, last):
    if out.grad_fn is None:
        return "-"
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
                                           grad_fn_name(out, last), out.dim(),
                                           "".join(" %d" % s for s in out.shape), fmt_vals(out)))
    if w is not None:
        lines.append("W " + " ".join(fmt_num(v, dtname(out)) for v in w))
        if isinstance(grads, str):
            lines.append("X")
            counts["errors"].setdefault("backward: " + grads[:80], 0)
            counts["errors"]["backward: " + grads[:80]] += 1
            return lines
        for i, (x, g) in enumerate(zip(inputs, grads)):
            if x.requires_grad:
                lines.append("G %d none" % i if g is None else "G %d : %s" % (i, fmt_vals(g)))
    return lines


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
    counts = {"unstable": 0, "errors": {}, "ops": {}}
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
    sys.stderr.write("%d programs, %d PyTorch errors, %d unstable ones dropped\n"
                     % (count, n_err, counts["unstable"]))
    for msg, n in sorted(counts["errors"].items(), key=lambda kv: -kv[1]):
        sys.stderr.write("  error x%d: %s\n" % (n, msg))
    sys.stderr.write("ops: %s\n" % " ".join("%s:%d" % kv for kv in sorted(counts["ops"].items())))


if __name__ == "__main__":
    main()
