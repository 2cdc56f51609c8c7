#!/usr/bin/python3
"""bench/compare.py — ember-bench's workloads side by side with PyTorch and numpy, in one run.

    /usr/bin/python3 bench/compare.py [--ember tools/ember-bench] [--backend cpu]
                                      [--threads N] [--rounds R] [--workload NAME ...]
                                      [--baseline OTHER-ember-bench]

Debian's python3-torch (1.13) and python3-numpy are the references (run under /usr/bin/python3).
Machines here are shared and noisy, so the three are interleaved: each round runs one
workload in ember, then PyTorch, then numpy, and the table reports the median over rounds of
each one's median µs/step, with the ratios ember/PyTorch and ember/numpy: each the median
over rounds of that round's ratio, so a round slowed by other load on the machine slows
both sides of its ratio. --threads is given to all three (ember-bench --threads). With
--baseline, a second ember-bench (an older build) runs in each round too and the table adds
its time and the ratio ember/baseline. ember is not needed to build this script, and ember
never needs Python.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--ember", default=os.path.join(os.path.dirname(__file__), "..", "tools", "ember-bench"))
ap.add_argument("--backend", default=None, help="ember backend (default: device.ini's)")
ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for all three")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--workload", action="append")
ap.add_argument("--baseline", default=None, help="another ember-bench to time beside --ember")
args = ap.parse_args()

# thread counts must be set before numpy/torch load their BLAS
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(args.threads)
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)


def loaded_blas():
    """The BLAS/LAPACK shared objects this process really mapped (Debian's libblas.so.3
    is an alternatives link: OpenBLAS, BLIS or the reference BLAS)."""
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if "/" in line else ""
                base = os.path.basename(path)
                if any(k in base for k in ("blas", "blis", "mkl", "lapack")):
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return ", ".join(sorted(found)) or "unknown"


N, D_IN, H, D_OUT = 64, 1000, 100, 10
SEED_FLOPS = 2.0 * N * D_IN * H * 2 + 2.0 * N * H * D_OUT * 3


def openblas_handle():
    """ctypes handle of the OpenBLAS this process mapped, or None (another BLAS)."""
    import ctypes
    for path in loaded_blas().split(", "):
        if "openblas" in os.path.basename(path):
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_set_num_threads
                return lib
            except (OSError, AttributeError):
                pass
    return None


OPENBLAS = None  # set after the first step has made numpy/torch load their BLAS


def set_blas_threads(n):
    if OPENBLAS is not None:
        OPENBLAS.openblas_set_num_threads(n)


def timeit_best(make_step, steps):
    """PyTorch's and numpy's time at their better BLAS threading: OpenBLAS's own thread
    pool beside PyTorch's OpenMP one oversubscribes the cores (both busy-wait) and makes
    a small training step several times slower, while big products want BLAS threads.
    So each reference is timed with OpenBLAS at --threads and at 1 thread, and keeps the
    faster; the table says which (b=N)."""
    best = None
    for bt in sorted({args.threads, 1}, reverse=True):
        set_blas_threads(bt)
        us = timeit(make_step(), steps)
        if best is None or us < best[0]:
            best = (us, bt)
        if OPENBLAS is None:
            break
    set_blas_threads(args.threads)
    return best


def timeit(step, steps, reps=7, warmup=2):
    for _ in range(warmup):
        for _ in range(min(steps, 10)):
            step()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        ts.append((time.perf_counter() - t0) / steps * 1e6)
    return statistics.median(ts)


# ---------------------------------------------------------------- PyTorch side
def torch_seed_autograd():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D_IN, generator=g)
    y = torch.randn(N, D_OUT, generator=g)
    w1 = torch.randn(D_IN, H, generator=g, requires_grad=True)
    w2 = torch.randn(H, D_OUT, generator=g, requires_grad=True)

    def step():
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            w1.sub_(1e-6 * w1.grad)
            w2.sub_(1e-6 * w2.grad)
            w1.grad.zero_()
            w2.grad.zero_()
    return step


def numpy_seed_manual():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D_IN))
    y = rng.standard_normal((N, D_OUT))
    w = [rng.standard_normal((D_IN, H)), rng.standard_normal((H, D_OUT))]

    def step():
        w1, w2 = w
        h = x.dot(w1)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(w2)
        loss = np.square(y_pred - y).sum()  # noqa: F841
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h_relu = grad_y_pred.dot(w2.T)
        grad_h = grad_h_relu.copy()
        grad_h[h < 0] = 0
        grad_w1 = x.T.dot(grad_h)
        w1 -= 1e-6 * grad_w1
        w2 -= 1e-6 * grad_w2
    return step


def torch_seed_manual():
    x = torch.randn(N, D_IN, dtype=torch.float64)
    y = torch.randn(N, D_OUT, dtype=torch.float64)
    w1 = torch.randn(D_IN, H, dtype=torch.float64)
    w2 = torch.randn(H, D_OUT, dtype=torch.float64)

    def step():
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        loss = (y_pred - y).pow(2).sum()  # noqa: F841
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(w2.t()).clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)
        w1.sub_(1e-6 * grad_w1)
        w2.sub_(1e-6 * grad_w2)
    return step


def seed_gemms(lib, dt):
    """The five matrix products of the seed's step alone (shapes and layouts of the step):
    the floor under a step built on this BLAS."""
    if lib == "torch":
        r = lambda *s: torch.randn(*s, dtype=dt)  # noqa: E731
    else:
        rng = np.random.default_rng(0)
        r = lambda *s: rng.standard_normal(s).astype(dt)  # noqa: E731
    x, w1, w2, h, g = r(N, D_IN), r(D_IN, H), r(H, D_OUT), r(N, H), r(N, D_OUT)

    def step():
        x @ w1
        h @ w2
        h.T @ g
        g @ w2.T
        x.T @ h
    return step


def gemm(lib, n, dt):
    if lib == "torch":
        a = torch.randn(n, n, dtype=dt)
        b = torch.randn(n, n, dtype=dt)
        return lambda: torch.mm(a, b)
    a = np.random.standard_normal((n, n)).astype(dt)
    b = np.random.standard_normal((n, n)).astype(dt)
    return lambda: a.dot(b)


def vec(lib, n, op):
    if lib == "torch":
        a = torch.randn(n)
        b = torch.randn(n)
        return {"add": lambda: a + b, "relu": lambda: torch.relu(a), "sum": lambda: a.sum()}[op]
    a = np.random.standard_normal(n).astype(np.float32)
    b = np.random.standard_normal(n).astype(np.float32)
    return {"add": lambda: a + b, "relu": lambda: np.maximum(a, 0), "sum": lambda: a.sum()}[op]


def overhead(lib):
    if lib == "torch":
        a = torch.ones(1)
        b = torch.ones(1)
        return lambda: a + b
    a = np.ones(1, dtype=np.float32)
    b = np.ones(1, dtype=np.float32)
    return lambda: a + b


def log_softmax():
    a = torch.randn(1024, 1024)
    return lambda: torch.log_softmax(a, 1)


def xent():
    x = torch.randn(256, 1000, requires_grad=True)
    y = torch.tensor([(i * 7919) % 1000 for i in range(256)])

    def step():
        torch.nn.functional.cross_entropy(x, y).backward()
        x.grad = None
    return step


M = 1 << 20
WORKLOADS = {  # name: (steps, flops per step, torch step factory, numpy step factory)
    "seed-autograd": (200, SEED_FLOPS, torch_seed_autograd, None),
    "seed-manual": (200, SEED_FLOPS, torch_seed_manual, numpy_seed_manual),
    "seed-gemms": (200, SEED_FLOPS, lambda: seed_gemms("torch", torch.float32), lambda: seed_gemms("np", np.float32)),
    "seed-gemms-f64": (200, SEED_FLOPS, lambda: seed_gemms("torch", torch.float64), lambda: seed_gemms("np", np.float64)),
    "sgemm-256": (200, 2 * 256 ** 3, lambda: gemm("torch", 256, torch.float32), lambda: gemm("np", 256, np.float32)),
    "sgemm-1024": (10, 2 * 1024 ** 3, lambda: gemm("torch", 1024, torch.float32), lambda: gemm("np", 1024, np.float32)),
    "sgemm-2048": (3, 2 * 2048 ** 3, lambda: gemm("torch", 2048, torch.float32), lambda: gemm("np", 2048, np.float32)),
    "dgemm-256": (200, 2 * 256 ** 3, lambda: gemm("torch", 256, torch.float64), lambda: gemm("np", 256, np.float64)),
    "dgemm-1024": (10, 2 * 1024 ** 3, lambda: gemm("torch", 1024, torch.float64), lambda: gemm("np", 1024, np.float64)),
    "dgemm-2048": (3, 2 * 2048 ** 3, lambda: gemm("torch", 2048, torch.float64), lambda: gemm("np", 2048, np.float64)),
    "add-1M": (200, 0, lambda: vec("torch", M, "add"), lambda: vec("np", M, "add")),
    "add-16M": (20, 0, lambda: vec("torch", 16 * M, "add"), lambda: vec("np", 16 * M, "add")),
    "relu-1M": (200, 0, lambda: vec("torch", M, "relu"), lambda: vec("np", M, "relu")),
    "relu-16M": (20, 0, lambda: vec("torch", 16 * M, "relu"), lambda: vec("np", 16 * M, "relu")),
    "sum-16M": (20, 0, lambda: vec("torch", 16 * M, "sum"), lambda: vec("np", 16 * M, "sum")),
    "log-softmax-1M": (50, 0, log_softmax, None),
    "xent-fwbw": (200, 0, xent, None),
    "overhead": (20000, 0, lambda: overhead("torch"), lambda: overhead("np")),
}


_takes_threads = {}


def takes_threads(exe):
    """Whether this ember-bench has --threads (older builds do not; they use device.ini's
    [cpu] threads, one per core by default)."""
    if exe not in _takes_threads:
        out = subprocess.run([exe, "--help"], capture_output=True, text=True)
        _takes_threads[exe] = "--threads" in out.stdout + out.stderr
    return _takes_threads[exe]


def ember(name, steps, exe=None):
    exe = exe or args.ember
    cmd = [exe, "--workload", name, "--steps", str(steps), "--reps", "7"]
    if takes_threads(exe):
        cmd += ["--threads", str(args.threads)]
    if args.backend:
        cmd += ["--backend", args.backend]
    env = dict(os.environ)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = re.search(r"^%s\s+([0-9.]+) us/step" % re.escape(name), out.stdout, re.M)
    if not m:
        sys.exit("ember-bench failed for %s:\n%s%s" % (name, out.stdout, out.stderr))
    return float(m.group(1)), out.stdout


names = args.workload or list(WORKLOADS)
results = {n: {"ember": [], "torch": [], "numpy": [], "base": []} for n in names}
blas_threads = {n: {"torch": [], "numpy": []} for n in names}
header = None
np.ones((2, 2)).dot(np.ones((2, 2)))
torch.ones(2, 2).mm(torch.ones(2, 2))
OPENBLAS = openblas_handle()
for r in range(args.rounds):
    for n in names:
        steps, flops, tf, nf = WORKLOADS[n]
        us, out = ember(n, steps)
        header = header or out.splitlines()[0]
        results[n]["ember"].append(us)
        if args.baseline:
            results[n]["base"].append(ember(n, steps, args.baseline)[0])
        for key, make in (("torch", tf), ("numpy", nf)):
            if make:
                us, bt = timeit_best(make, steps)
                results[n][key].append(us)
                blas_threads[n][key].append(bt)
        print("# round %d %-14s %s" % (r + 1, n, "  ".join(
            "%s %.2f" % (k, v[-1]) for k, v in results[n].items() if v)),
            file=sys.stderr, flush=True)

print(header)
print("# PyTorch %s, numpy %s, %d threads each, %d interleaved rounds (median)" %
      (torch.__version__, np.__version__, args.threads, args.rounds))
print("# BLAS mapped by numpy/PyTorch: %s" % loaded_blas())
print("# PyTorch and numpy: the better of OpenBLAS at %d threads and at 1 thread%s; b=N in the"
      " table: OpenBLAS threads of their faster runs" %
      (args.threads, "" if OPENBLAS else " (not OpenBLAS: its own default only)"))
if args.baseline:
    print("# baseline: %s" % args.baseline)
print("%-14s %12s %12s %12s %10s %10s %9s%s" % (
    "workload", "ember us", "torch us", "numpy us", "ember/tch", "ember/np", "ember GF/s",
    " %12s %10s" % ("baseline us", "ember/base") if args.baseline else ""))
for n in names:
    res = results[n]
    med = {k: (statistics.median(v) if v else None) for k, v in res.items()}
    flops = WORKLOADS[n][1]

    def f(v):
        return "%12.2f" % v if v is not None else "%12s" % "-"

    def ratio(k):
        if not res[k]:
            return "%10s" % "-"
        return "%10.2f" % statistics.median(e / o for e, o in zip(res["ember"], res[k]))
    gf = "%9.1f" % (flops / med["ember"] * 1e-3) if flops else "%9s" % "-"
    extra = " %s %s" % (f(med["base"]), ratio("base")) if args.baseline else ""

    def bt(k):  # the OpenBLAS thread count most of the rounds' faster runs had
        v = blas_threads[n][k]
        return "b=%d" % max(set(v), key=v.count) if v else "-"
    print("%-14s %s %s %s %s %s %s%s  tch %s np %s" % (
        n, f(med["ember"]), f(med["torch"]), f(med["numpy"]), ratio("torch"), ratio("numpy"),
        gf, extra, bt("torch"), bt("numpy")))
