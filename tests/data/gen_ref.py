#!/usr/bin/python3
"""tests/data/gen_ref.py — PyTorch 1.13 reference values for tests/test_stats.c,
tests/test_activation.c and tests/test_loss.c (the cases of tests/ref_runner.h).

Writes tests/data/ref_stats.h, ref_activation.h and ref_loss.h: for every case its inputs
(f32-representable doubles), PyTorch's result, grad_fn name and the gradients of
sum(out * r), r_j = 0.5 + (j % 7) / 8, computed in float64.

    /usr/bin/python3 tests/data/gen_ref.py      (from the source tree's root)
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(13)
HERE = os.path.dirname(os.path.abspath(__file__))
MEAN, SUM, NONE = 0, 1, 2
RED = {MEAN: 'mean', SUM: 'sum', NONE: 'none'}


def rnd(*shape, lo=-2.0, hi=2.0):
    """f32-representable uniform values, as float64"""
    return (torch.rand(*shape) * (hi - lo) + lo).float().double()


def fmt(v):
    if math.isnan(v):
        return 'NAN'
    if math.isinf(v):
        return 'INFINITY' if v > 0 else '-INFINITY'
    return repr(float(v))


def dims_arg(ia):
    n = ia[0]
    return list(ia[1:1 + n])


def run(op, ia, da, ins, target):
    """The op as the C test calls it (tests/test_*.c: call_op)."""
    x = ins[0] if ins else None
    if op == 'REF_MAX':
        return x.max()
    if op == 'REF_MIN':
        return x.min()
    if op in ('REF_MAX_DIM', 'REF_MAX_DIM_IDX'):
        v, i = x.max(ia[0], keepdim=bool(ia[1]))
        return v if op == 'REF_MAX_DIM' else i
    if op in ('REF_MIN_DIM', 'REF_MIN_DIM_IDX'):
        v, i = x.min(ia[0], keepdim=bool(ia[1]))
        return v if op == 'REF_MIN_DIM' else i
    if op == 'REF_ARGMAX':
        return x.argmax(ia[0], keepdim=bool(ia[1]))
    if op == 'REF_ARGMIN':
        return x.argmin(ia[0], keepdim=bool(ia[1]))
    if op == 'REF_PROD':
        return x.prod()
    if op == 'REF_PROD_DIM':
        return x.prod(ia[0], keepdim=bool(ia[1]))
    if op in ('REF_VAR', 'REF_STD'):
        f = torch.var if op == 'REF_VAR' else torch.std
        dims = dims_arg(ia)
        if not dims and not ia[4]:
            return f(x, unbiased=bool(ia[3]))
        return f(x, dims, unbiased=bool(ia[3]), keepdim=bool(ia[4]))
    if op == 'REF_LOGSUMEXP':
        dims = dims_arg(ia) or list(range(x.dim()))
        return torch.logsumexp(x, dims, keepdim=bool(ia[3]))
    if op == 'REF_ANY':
        return x.any()
    if op == 'REF_ANY_DIM':
        return x.any(ia[0], keepdim=bool(ia[1]))
    if op == 'REF_SOFTMAX':
        return F.softmax(x, ia[0])
    if op == 'REF_LOG_SOFTMAX':
        return F.log_softmax(x, ia[0])
    if op == 'REF_LEAKY_RELU':
        return F.leaky_relu(x, da[0])
    if op == 'REF_GELU':
        return F.gelu(x, approximate='tanh' if ia[0] else 'none')
    if op == 'REF_ELU':
        return F.elu(x, da[0])
    if op == 'REF_SILU':
        return F.silu(x)
    if op == 'REF_SOFTPLUS':
        return F.softplus(x, da[0], da[1])
    if op == 'REF_MSE':
        return F.mse_loss(x, ins[1], reduction=RED[ia[0]])
    if op == 'REF_L1':
        return F.l1_loss(x, ins[1], reduction=RED[ia[0]])
    if op == 'REF_SMOOTH_L1':
        return F.smooth_l1_loss(x, ins[1], reduction=RED[ia[0]], beta=da[0])
    if op == 'REF_BCE':
        w = ins[2] if ia[1] else None
        pw = ins[2 + ia[1]] if ia[2] else None
        return F.binary_cross_entropy_with_logits(x, ins[1], weight=w, pos_weight=pw,
                                                  reduction=RED[ia[0]])
    if op == 'REF_NLL':
        w = ins[1] if ia[2] else None
        return F.nll_loss(x, target, weight=w, ignore_index=ia[1], reduction=RED[ia[0]])
    if op == 'REF_CE':
        w = ins[1] if ia[2] else None
        return F.cross_entropy(x, target, weight=w, ignore_index=ia[1], reduction=RED[ia[0]],
                               label_smoothing=da[0])
    raise ValueError(op)


class Writer:
    def __init__(self, name):
        self.name = name
        self.arrays = []
        self.cases = []
        self.n = 0

    def array(self, t):
        self.n += 1
        name = 'r%d' % self.n
        vals = [fmt(v) for v in t.reshape(-1).tolist()] or ['0']
        lines = []
        for i in range(0, len(vals), 6):
            lines.append('    ' + ', '.join(vals[i:i + 6]) + ',')
        self.arrays.append('static const double %s[] = {\n%s\n};' % (name, '\n'.join(lines)))
        return name

    def tensor(self, t):
        if t is None:
            return '{-1, {0}, NULL}'
        shape = ', '.join(str(s) for s in t.shape) or '0'
        return '{%d, {%s}, %s}' % (t.dim(), shape, self.array(t.double()))

    def case(self, name, op, ins, ia=(), da=(), grads=None, target=None, gc=True, f64_only=False):
        ia = list(ia) + [0] * (6 - len(ia))
        da = list(da) + [0.0] * (3 - len(da))
        grads = grads if grads is not None else [True] + [False] * (len(ins) - 1)
        ts = []
        for t, g in zip(ins, grads):
            t = t.clone().double()
            t.requires_grad_(g)
            ts.append(t)
        out = run(op, ia, da, ts, target)
        gf = type(out.grad_fn).__name__ if out.grad_fn is not None else None
        gnames = ['NULL'] * 4
        if any(grads) and out.requires_grad:
            r = torch.tensor([0.5 + (j % 7) / 8 for j in range(out.numel())],
                             dtype=torch.float64).reshape(out.shape)
            (out * r).sum().backward()
            for i, t in enumerate(ts):
                if grads[i]:
                    gnames[i] = self.array(t.grad)
        outv = out.detach().double()
        tens = [self.tensor(t.detach()) for t in ts] + ['{-1, {0}, NULL}'] * (4 - len(ts))
        self.cases.append(
            '    {"%s", %s, {%s}, {%s},\n     {%s},\n     %s, %s,\n     {%s}, %s, %d, %d},' % (
                name, op, ', '.join(str(int(v)) for v in ia), ', '.join(fmt(v) for v in da),
                ', '.join(tens), self.tensor(target) if target is not None else '{-1, {0}, NULL}',
                self.tensor(outv), ', '.join(gnames), '"%s"' % gf if gf else 'NULL',
                1 if gc else 0, 1 if f64_only else 0))

    def write(self, var):
        path = os.path.join(HERE, 'ref_%s.h' % self.name)
        with open(path, 'w') as f:
            f.write('/* tests/data/ref_%s.h — generated by tests/data/gen_ref.py from PyTorch %s: '
                    'do not edit */\n' % (self.name, torch.__version__.split('a')[0]))
            f.write('\n'.join(self.arrays))
            f.write('\n\nstatic const ref_case %s[] = {\n%s\n};\n' % (var, '\n'.join(self.cases)))


def stats():
    w = Writer('stats')
    x23 = rnd(2, 3)
    x234 = rnd(2, 3, 4)
    ties = torch.tensor([[1., 3., 3.], [2., 0., 3.]])
    w.case('max 2x3x4', 'REF_MAX', [x234])
    w.case('min 2x3x4', 'REF_MIN', [x234])
    w.case('max ties', 'REF_MAX', [ties], gc=False)
    w.case('min ties', 'REF_MIN', [torch.tensor([[0., 3., 0.], [2., 0., 3.]])], gc=False)
    w.case('max nan', 'REF_MAX', [torch.tensor([1., float('nan'), 3., float('nan')])], gc=False)
    w.case('max 0-dim', 'REF_MAX', [torch.tensor(1.5)])
    w.case('max transposed', 'REF_MAX', [x234.transpose(0, 2).contiguous()])
    for d in (0, 1, 2, -1):
        for k in (0, 1):
            w.case('max_dim d=%d keep=%d' % (d, k), 'REF_MAX_DIM', [x234], ia=[d, k])
            w.case('max_dim idx d=%d keep=%d' % (d, k), 'REF_MAX_DIM_IDX', [x234], ia=[d, k],
                   grads=[False])
            w.case('min_dim d=%d keep=%d' % (d, k), 'REF_MIN_DIM', [x234], ia=[d, k])
            w.case('min_dim idx d=%d keep=%d' % (d, k), 'REF_MIN_DIM_IDX', [x234], ia=[d, k],
                   grads=[False])
    w.case('max_dim ties', 'REF_MAX_DIM', [ties], ia=[1, 0], gc=False)
    w.case('max_dim idx ties', 'REF_MAX_DIM_IDX', [ties], ia=[1, 0], grads=[False])
    w.case('max_dim nan', 'REF_MAX_DIM_IDX', [torch.tensor([[1., float('nan'), 5.], [2., 9., float('nan')]])],
           ia=[1, 0], grads=[False])
    w.case('min_dim nan', 'REF_MIN_DIM', [torch.tensor([[1., float('nan'), 5.], [2., -9., 3.]])],
           ia=[1, 0], gc=False)
    w.case('max_dim 0-dim', 'REF_MAX_DIM', [torch.tensor(2.5)], ia=[0, 0])
    w.case('max_dim 1-d keep', 'REF_MAX_DIM', [rnd(5)], ia=[0, 1])
    for d in (0, 1, -1):
        w.case('argmax d=%d' % d, 'REF_ARGMAX', [x234], ia=[d, 0], grads=[False])
        w.case('argmin d=%d keep' % d, 'REF_ARGMIN', [x234], ia=[d, 1], grads=[False])
    w.case('argmax ties', 'REF_ARGMAX', [ties], ia=[1, 0], grads=[False])
    w.case('argmin 0-dim', 'REF_ARGMIN', [torch.tensor(3.)], ia=[0, 0], grads=[False])
    w.case('prod 2x3', 'REF_PROD', [x23])
    w.case('prod 0-dim', 'REF_PROD', [torch.tensor(-1.25)])
    w.case('prod one zero', 'REF_PROD', [torch.tensor([1.5, 0., 3., -2.])])
    w.case('prod two zeros', 'REF_PROD', [torch.tensor([1.5, 0., 3., 0.])])
    zs = torch.tensor([[1.5, 0., 3.], [0., 0., 2.], [1., -2., 0.5], [2., 0.5, 0.]])
    w.case('prod_dim zeros d=1', 'REF_PROD_DIM', [zs], ia=[1, 0])
    w.case('prod_dim zeros d=0 keep', 'REF_PROD_DIM', [zs], ia=[0, 1])
    for d in (0, 1, 2):
        w.case('prod_dim d=%d' % d, 'REF_PROD_DIM', [x234], ia=[d, d == 1])
    w.case('prod empty', 'REF_PROD', [torch.zeros(0, 3)], grads=[False])
    w.case('prod_dim empty', 'REF_PROD_DIM', [torch.zeros(0, 3)], ia=[0, 0], grads=[False])
    for op in ('REF_VAR', 'REF_STD'):
        n = op[4:].lower()
        for u in (0, 1):
            w.case('%s all unbiased=%d' % (n, u), op, [x234], ia=[0, 0, 0, u, 0])
        w.case('%s d=1' % n, op, [x234], ia=[1, 1, 0, 1, 0])
        w.case('%s d=-1 keep' % n, op, [x234], ia=[1, -1, 0, 1, 1])
        w.case('%s d=0,2 biased' % n, op, [x234], ia=[2, 0, 2, 0, 0])
        # dims [] reduce over everything; PyTorch 1.13's backward takes [] as no dims there
        # (N - 1 = 0: infinite gradients): values only (test_stats.c checks the gradient)
        w.case('%s d=[] keep' % n, op, [x234], ia=[0, 0, 0, 1, 1], grads=[False])
        w.case('%s N=1 unbiased' % n, op, [rnd(3, 1)], ia=[1, 1, 0, 1, 0], gc=False)
        w.case('%s N=1 biased' % n, op, [rnd(3, 1)], ia=[1, 1, 0, 0, 0], gc=False)
        w.case('%s constant' % n, op, [torch.full((2, 3), 1.5)], ia=[1, 1, 0, 1, 0], gc=False)
        # the gradient of a 0-dim var is inf in PyTorch 1.13 (of std: NaN); ember's is NaN for
        # both, as for any N - 1 = 0 (the case 'N=1 unbiased'): values only
        w.case('%s 0-dim' % n, op, [torch.tensor(2.)], ia=[0, 0, 0, 1, 0], grads=[False])
        w.case('%s empty' % n, op, [torch.zeros(0)], ia=[0, 0, 0, 1, 0], grads=[False])
    w.case('logsumexp all', 'REF_LOGSUMEXP', [x234], ia=[0, 0, 0, 0])
    w.case('logsumexp d=1', 'REF_LOGSUMEXP', [x234], ia=[1, 1, 0, 0])
    w.case('logsumexp d=0,-1 keep', 'REF_LOGSUMEXP', [x234], ia=[2, 0, -1, 1])
    w.case('logsumexp large', 'REF_LOGSUMEXP', [rnd(3, 4) * 400], ia=[1, 1, 0, 0])
    inf = float('inf')
    w.case('logsumexp -inf rows', 'REF_LOGSUMEXP',
           [torch.tensor([[-inf, -inf, -inf], [1., 2., 3.], [-inf, 0., -inf]])], ia=[1, 1, 0, 0],
           gc=False)
    w.case('logsumexp +inf', 'REF_LOGSUMEXP', [torch.tensor([[inf, 1., 2.], [1., 2., 3.]])],
           ia=[1, 1, 0, 0], grads=[False])
    w.case('logsumexp empty dim', 'REF_LOGSUMEXP', [torch.zeros(2, 0)], ia=[1, 1, 0, 0],
           grads=[False])
    w.case('logsumexp 0-dim', 'REF_LOGSUMEXP', [torch.tensor(0.75)], ia=[1, 0, 0, 0])
    anyx = torch.tensor([[0., 0., 0.], [0., -1., 0.], [float('nan'), 0., 0.]])
    w.case('any', 'REF_ANY', [anyx], grads=[False])
    w.case('any zeros', 'REF_ANY', [torch.zeros(2, 2)], grads=[False])
    w.case('any empty', 'REF_ANY', [torch.zeros(0)], grads=[False])
    w.case('any_dim 1', 'REF_ANY_DIM', [anyx], ia=[1, 0], grads=[False])
    w.case('any_dim 0 keep', 'REF_ANY_DIM', [anyx], ia=[0, 1], grads=[False])
    w.write('stats_cases')


def activation():
    w = Writer('activation')
    x = rnd(2, 3, 4, lo=-3, hi=3)
    inf = float('inf')
    for d in (0, 1, 2, -1):
        w.case('softmax d=%d' % d, 'REF_SOFTMAX', [x], ia=[d])
        w.case('log_softmax d=%d' % d, 'REF_LOG_SOFTMAX', [x], ia=[d])
    big = rnd(3, 5) * 300
    w.case('softmax large', 'REF_SOFTMAX', [big], ia=[1], gc=False)
    w.case('log_softmax large', 'REF_LOG_SOFTMAX', [big], ia=[1], gc=False)
    masked = torch.tensor([[-inf, 1., 2.], [0.5, -inf, -inf]])
    w.case('softmax -inf', 'REF_SOFTMAX', [masked], ia=[1], gc=False)
    w.case('log_softmax -inf', 'REF_LOG_SOFTMAX', [masked], ia=[1], grads=[False])
    w.case('softmax all -inf', 'REF_SOFTMAX', [torch.tensor([[-inf, -inf], [1., 2.]])], ia=[1],
           grads=[False])
    w.case('softmax 0-dim', 'REF_SOFTMAX', [torch.tensor(3.)], ia=[0])
    w.case('log_softmax 1-d', 'REF_LOG_SOFTMAX', [rnd(6)], ia=[0])
    edge = torch.tensor([-30., -5., -1., -1e-3, 0.25, 1., 5., 30.])
    for s in (0.01, 0.2, -0.5):
        w.case('leaky_relu %g' % s, 'REF_LEAKY_RELU', [x], da=[s])
    w.case('leaky_relu 0', 'REF_LEAKY_RELU', [torch.tensor([0., 0., 1.])], da=[0.1], gc=False)
    for a in (0, 1):
        w.case('gelu %s' % ('tanh' if a else 'none'), 'REF_GELU', [x], ia=[a])
        w.case('gelu %s edge' % ('tanh' if a else 'none'), 'REF_GELU', [edge], ia=[a])
    for a in (1.0, 0.5):
        w.case('elu %g' % a, 'REF_ELU', [x], da=[a])
    w.case('elu edge', 'REF_ELU', [edge], da=[1.0])
    w.case('silu', 'REF_SILU', [x])
    w.case('silu edge', 'REF_SILU', [edge])
    w.case('softplus', 'REF_SOFTPLUS', [x], da=[1.0, 20.0])
    w.case('softplus beta 2 threshold 3', 'REF_SOFTPLUS', [x], da=[2.0, 3.0])
    w.case('softplus edge', 'REF_SOFTPLUS', [edge], da=[1.0, 20.0])
    w.case('softplus beta 0.5 threshold 1', 'REF_SOFTPLUS', [edge], da=[0.5, 1.0], gc=False)
    w.write('activation_cases')


def losses():
    w = Writer('loss')
    x = rnd(3, 4)
    t = rnd(3, 4)
    for r in (MEAN, SUM, NONE):
        w.case('mse %s' % RED[r], 'REF_MSE', [x, t], ia=[r], grads=[True, True])
        w.case('l1 %s' % RED[r], 'REF_L1', [x, t], ia=[r], grads=[True, True])
        w.case('smooth_l1 %s' % RED[r], 'REF_SMOOTH_L1', [x, t], ia=[r], da=[1.0],
               grads=[True, True])
    w.case('mse broadcast', 'REF_MSE', [x, rnd(4)], ia=[MEAN], grads=[True, True])
    w.case('mse empty', 'REF_MSE', [torch.zeros(0, 2), torch.zeros(0, 2)], ia=[MEAN],
           grads=[False, False])
    w.case('smooth_l1 beta 0.5', 'REF_SMOOTH_L1', [x, t], ia=[MEAN], da=[0.5], grads=[True, True])
    w.case('smooth_l1 beta 0', 'REF_SMOOTH_L1', [x, t], ia=[SUM], da=[0.0], grads=[True, False])
    w.case('smooth_l1 beta 3 broadcast', 'REF_SMOOTH_L1', [x, rnd(3, 1)], ia=[NONE], da=[3.0],
           grads=[True, True])
    p = torch.rand(3, 4).float().double()
    wt = rnd(3, 4, lo=0.2, hi=2)
    pw = rnd(4, lo=0.5, hi=3)
    for r in (MEAN, SUM, NONE):
        w.case('bce %s' % RED[r], 'REF_BCE', [x, p], ia=[r, 0, 0], grads=[True, True])
    w.case('bce weight', 'REF_BCE', [x, p, wt], ia=[MEAN, 1, 0], grads=[True, True, False])
    w.case('bce pos_weight', 'REF_BCE', [x, p, pw], ia=[SUM, 0, 1], grads=[True, True, False])
    w.case('bce both', 'REF_BCE', [x, p, rnd(3, 1, lo=0.2, hi=2), pw], ia=[NONE, 1, 1],
           grads=[True, True, False, False])
    w.case('bce large logits', 'REF_BCE', [torch.tensor([-200., -30., 0., 30., 200.]),
                                           torch.tensor([0., 1., 0.5, 0., 1.])],
           ia=[NONE, 0, 0], grads=[True, True], gc=False)

    def cls(n, c, *rest, ignore=-100, frac_ignore=0.0):
        shape = (n, c) + rest if n is not None else (c,)
        tshape = (n,) + rest if n is not None else ()
        xs = rnd(*shape, lo=-3, hi=3)
        tg = torch.randint(0, c, tshape)
        if frac_ignore:
            m = torch.rand(tshape) < frac_ignore
            tg[m] = ignore
        return xs, tg

    xs, tg = cls(5, 4)
    cw = rnd(4, lo=0.3, hi=2)
    for op, nm in (('REF_NLL', 'nll'), ('REF_CE', 'ce')):
        for r in (MEAN, SUM, NONE):
            w.case('%s (N,C) %s' % (nm, RED[r]), op, [xs], ia=[r, -100, 0], target=tg)
            w.case('%s (N,C) weight %s' % (nm, RED[r]), op, [xs, cw], ia=[r, -100, 1], target=tg,
                   grads=[True, False])
        xi, ti = cls(6, 3, ignore=1, frac_ignore=0.4)
        ti[0] = 1
        w.case('%s ignore_index 1' % nm, op, [xi], ia=[MEAN, 1, 0], target=ti)
        xi, ti = cls(6, 3, frac_ignore=0.5)
        ti[1] = -100
        w.case('%s ignore -100 weight' % nm, op, [xi, rnd(3, lo=0.3, hi=2)], ia=[MEAN, -100, 1],
               target=ti, grads=[True, False])
        w.case('%s ignore -100 none' % nm, op, [xi], ia=[NONE, -100, 0], target=ti)
        xc, tc = cls(None, 5)
        w.case('%s (C)' % nm, op, [xc], ia=[MEAN, -100, 0], target=tc)
        xd, td = cls(2, 3, 4, 2)
        w.case('%s (N,C,d1,d2)' % nm, op, [xd], ia=[MEAN, -100, 0], target=td)
        w.case('%s (N,C,d1,d2) none weight' % nm, op, [xd, rnd(3, lo=0.3, hi=2)],
               ia=[NONE, -100, 1], target=td, grads=[True, False])
        xe, te = cls(2, 3, 4)
        w.case('%s (N,C,d) sum' % nm, op, [xe], ia=[SUM, -100, 0], target=te)
        w.case('%s (N,C,d) none' % nm, op, [xe], ia=[NONE, -100, 0], target=te)
        xf, tf = cls(2, 3, 2, 2, 3)
        w.case('%s (N,C,d1,d2,d3) none' % nm, op, [xf], ia=[NONE, -100, 0], target=tf)
        w.case('%s all ignored' % nm, op, [xs], ia=[MEAN, -100, 0],
               target=torch.full((5,), -100, dtype=torch.long), gc=False)
    for ls in (0.1, 0.35):
        for r in (MEAN, SUM, NONE):
            w.case('ce smoothing %g %s' % (ls, RED[r]), 'REF_CE', [xs], ia=[r, -100, 0],
                   da=[ls], target=tg)
        w.case('ce smoothing %g weight' % ls, 'REF_CE', [xs, cw], ia=[MEAN, -100, 1], da=[ls],
               target=tg, grads=[True, False])
    xd, td = cls(2, 3, 4, ignore=-100, frac_ignore=0.3)
    td[0, 0] = -100
    w.case('ce smoothing (N,C,d) weight ignore', 'REF_CE', [xd, rnd(3, lo=0.3, hi=2)],
           ia=[MEAN, -100, 1], da=[0.2], target=td, grads=[True, False])
    w.case('ce smoothing (N,C,d) weight ignore none', 'REF_CE', [xd, rnd(3, lo=0.3, hi=2)],
           ia=[NONE, -100, 1], da=[0.2], target=td, grads=[True, False])
    xc, tc = cls(None, 5)
    w.case('ce smoothing (C) weight', 'REF_CE', [xc, rnd(5, lo=0.3, hi=2)], ia=[SUM, -100, 1],
           da=[1.0], target=tc, grads=[True, False])
    w.case('ce large logits', 'REF_CE', [rnd(4, 6) * 500], ia=[MEAN, -100, 0],
           target=torch.tensor([0, 5, 2, 3]), gc=False)
    w.case('ce empty batch sum', 'REF_CE', [torch.zeros(0, 4)], ia=[SUM, -100, 0],
           target=torch.zeros(0, dtype=torch.long), grads=[False])
    w.write('loss_cases')


if __name__ == '__main__':
    stats()
    activation()
    losses()
    sys.exit(0)
