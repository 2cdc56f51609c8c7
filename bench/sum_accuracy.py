#!/usr/bin/python3
"""bench/sum_accuracy.py — the error of an f32 sum on adversarial inputs: ember's cpu sum
(and mean) beside PyTorch's and numpy's, against the correctly rounded sum of the same
floats (math.fsum over their exact double values).

    /usr/bin/python3 bench/sum_accuracy.py [--lib .libs/libember.so] [--n 4194304]
                                           [--threads 1,2] [--seed 0]
                                           [--time ROUNDS] [--baseline-plugin SO]

ember is called through ctypes on the built libember (it finds the cpu plugin beside it);
every thread count given runs the same inputs, and the script fails (exit status 1) if
ember's results differ between them in any bit. Errors are given relative to the sum of
magnitudes (what a summation algorithm's bound is stated in) and in ulps of the f32
nearest the exact sum (what a user sees); 0.5 ulp is the best an f32 result can be.

--time R also times the sum of 16M f32 values (ember-bench's sum-16M) in ember at each
thread count, in PyTorch (torch.set_num_threads to the same count) and numpy, in R
interleaved rounds of 20 calls each, and prints the median and the minimum µs per call;
--baseline-plugin times an older build's ember-backend-cpu.so beside it (`library=`).
"""
import argparse
import ctypes
import math
import os
import sys

import numpy as np

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--lib", default=os.path.join(here, "..", ".libs", "libember.so"))
ap.add_argument("--n", type=int, default=1 << 22)
ap.add_argument("--threads", default="1,2")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--time", type=int, default=0, metavar="ROUNDS")
ap.add_argument("--baseline-plugin", default=None)
args = ap.parse_args()

try:
    import torch
except ImportError:
    torch = None

EM_F32 = 0


class Ember:
    def __init__(self, path, threads, plugin=None):
        lib = ctypes.CDLL(path)
        lib.em_config_create.restype = ctypes.c_void_p
        lib.em_config_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p]
        lib.em_context_create_with.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        lib.em_config_free.argtypes = [ctypes.c_void_p]
        lib.em_last_error.restype = ctypes.c_char_p
        lib.em_context_free.argtypes = [ctypes.c_void_p]
        lib.em_context_error.restype = ctypes.c_char_p
        lib.em_context_error.argtypes = [ctypes.c_void_p]
        lib.em_tensor_from_data.restype = ctypes.c_void_p
        lib.em_tensor_from_data.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                            ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p]
        for f in ("em_sum", "em_mean"):
            getattr(lib, f).restype = ctypes.c_void_p
            getattr(lib, f).argtypes = [ctypes.c_void_p]
        lib.em_item.restype = ctypes.c_double
        lib.em_item.argtypes = [ctypes.c_void_p]
        lib.em_scope_begin.argtypes = [ctypes.c_void_p]
        lib.em_scope_end.argtypes = [ctypes.c_void_p]
        self.lib = lib
        cfg = lib.em_config_create()
        keys = [("device", "backend", "cpu"), ("cpu", "threads", str(threads))]
        if plugin:
            keys.append(("cpu", "library", os.path.abspath(plugin)))
        for sec, key, val in keys:
            if lib.em_config_set(cfg, sec.encode(), key.encode(), val.encode()) != 0:
                sys.exit("ember: " + lib.em_last_error().decode())
        ctx = ctypes.c_void_p()
        st = lib.em_context_create_with(ctypes.byref(ctx), cfg)
        lib.em_config_free(cfg)
        if st != 0:
            sys.exit("ember: " + lib.em_last_error().decode())
        self.ctx = ctx

    def reduce(self, x, op):
        lib = self.lib
        x = np.ascontiguousarray(x, dtype=np.float32)
        shape = (ctypes.c_int64 * 1)(x.size)
        lib.em_scope_begin(self.ctx)
        t = lib.em_tensor_from_data(self.ctx, EM_F32, 1, shape, x.ctypes.data)
        v = lib.em_item(getattr(lib, "em_" + op)(t)) if t else float("nan")
        err = lib.em_context_error(self.ctx)
        lib.em_scope_end(self.ctx)
        if not t or (err and err.decode()):
            sys.exit("ember: %s: %s" % (op, err.decode() if err else "failed"))
        return v

    def timer(self, x):
        """a function summing x (already on the device) once, and the tensor's cleanup"""
        lib = self.lib
        x = np.ascontiguousarray(x, dtype=np.float32)
        shape = (ctypes.c_int64 * 1)(x.size)
        t = lib.em_tensor_from_data(self.ctx, EM_F32, 1, shape, x.ctypes.data)
        lib.em_tensor_free.argtypes = [ctypes.c_void_p]

        def step():
            lib.em_scope_begin(self.ctx)
            lib.em_sum(t)
            lib.em_scope_end(self.ctx)
        return step, lambda: lib.em_tensor_free(t)

    def close(self):
        self.lib.em_context_free(self.ctx)


def inputs(n, rng):
    """(name, f32 array) pairs, each built to hurt some summation order."""
    out = []
    # many values of both signs that cancel to a small total: pairs +a, -a (a over 16
    # binades) shuffled together with n/8 small positive values
    m = n // 2 - n // 16
    a = (rng.uniform(1, 2, m) * 2.0 ** rng.integers(0, 16, m)).astype(np.float32)
    small = rng.uniform(0, 1e-3, n - 2 * m).astype(np.float32)
    out.append(("cancellation (+a, -a pairs, small rest)",
                rng.permutation(np.concatenate([a, -a, small]))))
    # magnitudes spread over 2^-30 .. 2^30 with random signs
    e = rng.integers(-30, 31, n)
    out.append(("wide dynamic range, mixed signs",
                (rng.uniform(1, 2, n) * 2.0 ** e * rng.choice([-1, 1], n)).astype(np.float32)))
    # one large value, then many equal small ones that f32 partials swallow
    x = np.full(n, 0.1, dtype=np.float32)
    x[0] = 1e8
    out.append(("1e8 then n-1 times 0.1", x))
    # all equal: a sequential f32 sum stalls once the total is 2^24 times the element
    out.append(("all 0.1", np.full(n, 0.1, dtype=np.float32)))
    # a large value and its negative at the two ends of many small ones
    x = rng.uniform(0, 1, n).astype(np.float32)
    x[0], x[-1] = 2.0 ** 30, -(2.0 ** 30)
    out.append(("2^30, n-2 uniform [0, 1), -2^30", x))
    out.append(("uniform [0, 1)", rng.uniform(0, 1, n).astype(np.float32)))
    return out


def ulps(v, exact):
    ref = np.float32(exact)
    step = float(np.spacing(np.abs(ref))) if ref != 0 else float(np.finfo(np.float32).tiny)
    return abs(v - exact) / step


def main():
    rng = np.random.default_rng(args.seed)
    threads = [int(t) for t in args.threads.split(",")]
    embers = [Ember(args.lib, t) for t in threads]
    if torch is not None:
        torch.set_num_threads(max(threads))
    print("# n = %d f32 values; error against math.fsum of the exact values" % args.n)
    print("# rel: |result - exact| / sum(|x|);  ulp: in f32 ulps of the exact sum "
          "(0.5 is the best an f32 result can be)")
    print("# ember threads %s (results compared bit for bit)%s" %
          (args.threads, "" if torch else "; PyTorch not importable: its column is '-'"))
    hdr = "%-42s %-5s %16s %16s %16s" % ("input", "op", "ember", "torch", "numpy")
    print(hdr)
    bad = 0
    for name, x in inputs(args.n, rng):
        d = x.astype(np.float64)
        exact = math.fsum(d.tolist())
        mag = math.fsum(np.abs(d).tolist())
        for op in ("sum", "mean"):
            ref = exact if op == "sum" else exact / x.size
            scale = mag if op == "sum" else mag / x.size
            ev = [e.reduce(x, op) for e in embers]
            if any(np.float32(v).tobytes() != np.float32(ev[0]).tobytes() for v in ev):
                print("ember's %s of '%s' differs between thread counts %s: %r" %
                      (op, name, args.threads, ev))
                bad = 1
            tv = float(getattr(torch.from_numpy(x), op)()) if torch is not None else None
            nv = float(getattr(np, op)(x))
            cells = []
            for v in (ev[0], tv, nv):
                if v is None:
                    cells.append("-")
                else:
                    cells.append("%7.1e/%-8.3g" % (abs(v - ref) / scale if scale else 0.0,
                                                    ulps(v, ref)))
            print("%-42s %-5s %s" % (name, op, " ".join("%16s" % c for c in cells)))
    print("# each cell: rel/ulp")
    for e in embers:
        e.close()
    return bad


def timing(rounds):
    import statistics
    import time
    threads = [int(t) for t in args.threads.split(",")]
    x = np.random.default_rng(args.seed).standard_normal(1 << 24).astype(np.float32)
    sides = []  # (label, set-up, step)
    for t in threads:
        for label, plugin in (("ember", None), ("baseline", args.baseline_plugin)):
            if label == "baseline" and not plugin:
                continue
            e = Ember(args.lib, t, plugin)
            step, free = e.timer(x)
            sides.append(("%s t=%d" % (label, t), lambda: None, step, (e, free)))
        if torch is not None:
            tx = torch.from_numpy(x)
            sides.append(("torch t=%d" % t, lambda t=t: torch.set_num_threads(t),
                          lambda tx=tx: tx.sum(), None))
    sides.append(("numpy", lambda: None, lambda: x.sum(), None))
    res = {s[0]: [] for s in sides}
    for _ in range(rounds):
        for label, prep, step, _k in sides:
            prep()
            step()
            t0 = time.perf_counter()
            for _ in range(20):
                step()
            res[label].append((time.perf_counter() - t0) / 20 * 1e6)
    print("# sum of 16M f32: %d interleaved rounds of 20 calls; us per call" % rounds)
    print("%-16s %10s %10s" % ("side", "median", "min"))
    for label, v in res.items():
        print("%-16s %10.1f %10.1f" % (label, statistics.median(v), min(v)))
    for _l, _p, _s, keep in sides:
        if keep:
            keep[1]()
            keep[0].close()


if __name__ == "__main__":
    rc = main()
    if args.time:
        timing(args.time)
    sys.exit(rc)
