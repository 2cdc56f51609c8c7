#!/usr/bin/env python3
"""bench/seed_torch.py — PyTorch's own run of the seed's f32 training step, the reference
for ember-bench's seed-autograd workload (tools/gpu-check.sh prints the two side by side).

Same loop, same sizes (N, D_in, H, D_out = 64, 1000, 100, 10), same ops: forward
mm-clamp-mm, loss (y_pred - y).pow(2).sum(), backward, the update under no_grad, gradients
zeroed. Full fp32 matmuls (TF32 off, as ember's cuBLAS calls). Warm-up, then `--reps`
timed runs of `--steps` steps, each bracketed by torch.cuda.synchronize(); prints the
median (and minimum) microseconds per step:

    torch seed-autograd <median> us/step  (min ..., reps x steps, torch version, device)
"""
import argparse
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="warm-up runs of 10 steps")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"seed_torch.py: PyTorch is not installed ({e})", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("seed_torch.py: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        sync = torch.cuda.synchronize
        where = torch.cuda.get_device_name(dev)
    else:
        sync = lambda: None  # noqa: E731
        where = f"cpu, {torch.get_num_threads()} threads"

    N, D_in, H, D_out = 64, 1000, 100, 10
    dtype = torch.float32
    torch.manual_seed(0)
    x = torch.randn(N, D_in, device=dev, dtype=dtype)
    y = torch.randn(N, D_out, device=dev, dtype=dtype)
    w1 = torch.randn(D_in, H, device=dev, dtype=dtype, requires_grad=True)
    w2 = torch.randn(H, D_out, device=dev, dtype=dtype, requires_grad=True)
    learning_rate = 1e-6

    def step():
        nonlocal w1, w2   # the seed's in-place `w1 -= ...` would make them local otherwise
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()

    for _ in range(args.warmup):
        for _ in range(10):
            step()
    sync()
    times = []
    for _ in range(args.reps):
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        times.append((time.perf_counter() - t0) / args.steps * 1e6)
    med = statistics.median(times)
    print(f"torch seed-autograd {med:.2f} us/step  (min {min(times):.2f}, {args.reps} reps x "
          f"{args.steps} steps, torch {torch.__version__}, {where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
