#!/usr/bin/python3
"""bench/fashion_mnist.py — a Fashion-MNIST example beside the same recipe in PyTorch (CPU), in one run.

    /usr/bin/python3 bench/fashion_mnist.py [--model mlp|cnn] [--ember examples/fashion_mnist]
                                            [--backend cpu] [--epochs 10] [--seed 1 --seed 2 ...]
                                            [--threads N] [--data DIR] [--train-limit N]
                                            [--test-limit N]
    /usr/bin/python3 bench/fashion_mnist.py --model cnn --conv [--conv-step bench/conv_step]
                                            [--threads N]

--model mlp (examples/fashion_mnist: 784-256-128-10, ReLU) or cnn (examples/fashion_cnn: conv
1->32 3x3 pad 1, ReLU, maxpool 2, conv 32->64 3x3 pad 1, ReLU, maxpool 2, flatten, linear
3136->128, ReLU, linear 128->10; bench/fashion_cnn.py is this script with --model cnn). The same
model on both sides, the same data order (ember's em_batches permutation, re-implemented below),
Adam lr 1e-3, batch 128, x/255 (torchvision's ToTensor), a test pass after every epoch; each
epoch is timed the same way on both sides (training plus the test pass). The two differ only
in their initial weights (each library's own generator for the seed). For each seed, ember
runs, then PyTorch, each in its own process, so the two see the same machine load within a
seed; the table gives per seed the median seconds per epoch of each, their ratio, the final
test accuracies, and each process's peak RSS with its RSS after the first and the last epoch
(constant memory over epochs shows as equal numbers). Then the means over seeds. Debian's
python3-torch 1.13 runs under /usr/bin/python3; ember never needs Python.

--conv (cnn) times conv2d forward + backward alone at the example's shapes (batch 128), and
max_pool2d, with bench/conv_step beside torch.nn.functional, in milliseconds (medians).
"""
import argparse
import gzip
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
ap.add_argument("--ember", default=None, help="the example (default: examples/fashion_mnist or fashion_cnn)")
ap.add_argument("--conv", action="store_true", help="cnn: conv2d and max_pool2d alone")
ap.add_argument("--conv-step", default=os.path.join(HERE, "conv_step"))
ap.add_argument("--test-limit", type=int, default=0)
ap.add_argument("--backend", default="cpu", help="ember backend")
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--seed", type=int, action="append")
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--torch-blas-threads", type=int, default=1,
                help="OpenBLAS threads under PyTorch (default 1: see below)")
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--train-limit", type=int, default=0)
ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
ap.add_argument("--checkpoint", default=None, help="ember's --checkpoint PREFIX (default: a temp dir)")
args = ap.parse_args()
if args.ember is None:
    args.ember = os.path.join(HERE, "..", "examples", "fashion_cnn" if args.model == "cnn" else "fashion_mnist")
seeds = args.seed or [1, 2, 3]

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def epoch_order(n, seed, epoch):
    """em_batches_epoch's Fisher-Yates order for (seed, epoch) (core/data/batches.c)."""
    _, mix = splitmix64((epoch * 0x2545F4914F6CDD1D) & M64)
    s = seed ^ mix
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = M64 - (M64 % bound)
        while True:
            s, r = splitmix64(s)
            if r < limit:
                break
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def torch_child():
    """The PyTorch side: prints the same lines as the example."""
    # PyTorch runs its ops on args.threads OpenMP threads; Debian's build calls OpenBLAS (a
    # pthread build with a pool of its own) from them for the matrix products. With both pools
    # at 2 threads on 2 cores they fight, and an epoch takes twice as long as with OpenBLAS
    # single-threaded under PyTorch's threads, so PyTorch is timed in its faster setting.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.torch_blas_threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)

    def idx(name):
        with gzip.open(os.path.join(args.data, name)) as f:
            raw = f.read()
        ndim = raw[3]
        shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)

    shape = (-1, 1, 28, 28) if args.model == "cnn" else (-1, 784)
    xtr = torch.from_numpy(idx("train-images-idx3-ubyte.gz").reshape(shape).astype(np.float32) / 255.0)
    ytr = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").reshape(shape).astype(np.float32) / 255.0)
    yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if args.train_limit:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    if args.test_limit:
        xte, yte = xte[:args.test_limit], yte[:args.test_limit]
    seed = seeds[0]
    torch.manual_seed(seed)
    nn = torch.nn
    if args.model == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n = xtr.shape[0]
    print(f"device torch {torch.__version__} cpu, {n} training and {xte.shape[0]} test samples, seed {seed}",
          flush=True)
    for epoch in range(args.epochs):
        order = torch.tensor(epoch_order(n, seed, epoch))   # drawn outside the timed part
        t0 = time.perf_counter()
        loss_sum = torch.zeros(())
        nb = 0
        for s in range(0, n, 128):
            b = order[s:s + 128]
            loss = torch.nn.functional.cross_entropy(net(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            nb += 1
        net.eval()
        right = 0
        with torch.no_grad():
            for s in range(0, xte.shape[0], 1000):
                right += int((net(xte[s:s + 1000]).argmax(1) == yte[s:s + 1000]).sum())
        net.train()
        secs = time.perf_counter() - t0
        print(f"epoch {epoch + 1:2d}  loss {float(loss_sum) / nb:.4f}  test accuracy "
              f"{right / xte.shape[0]:.4f}  {secs:.2f} s  {n / secs:.0f} samples/s", flush=True)


LINE = re.compile(r"epoch\s+(\d+)\s+loss ([\d.]+)\s+test accuracy ([\d.]+)\s+([\d.]+) s")


def run(cmd, env):
    """Runs one side; returns (per-epoch seconds, accuracies, RSS after epoch 1, after the last,
    peak RSS), all RSS in MiB."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    secs, accs, rss = [], [], []
    for line in p.stdout:
        m = LINE.search(line)
        if m:
            secs.append(float(m.group(4)))
            accs.append(float(m.group(3)))
            rss.append(rss_kib(p.pid) / 1024)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0 or len(secs) != args.epochs:
        sys.exit(f"{cmd[0]} failed (status {status}, {len(secs)} of {args.epochs} epochs)")
    return secs, accs, rss[0], rss[-1], usage.ru_maxrss / 1024


def conv_bench():
    """conv2d / max_pool2d forward + backward at the example's shapes, ember beside torch."""
    import tempfile
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.torch_blas_threads)
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ini = os.path.join(tmp, "device.ini")
        with open(ini, "w") as f:
            f.write(f"[device]\nbackend = {args.backend}\n[cpu]\nthreads = {args.threads}\n")
        out = subprocess.run([args.conv_step, "20"], env=dict(os.environ, EMBER_CONFIG=ini),
                             check=True, capture_output=True, text=True).stdout
    ember = [float(line.split()[-1]) for line in out.splitlines()]

    def run(c, oc, hw, pool, reps=20):
        x = torch.randn(128, c, hw, hw, requires_grad=True)
        w = torch.randn(oc, c, 3, 3, requires_grad=True)
        b = torch.randn(oc, requires_grad=True)
        ts = []
        for r in range(reps + 2):
            t0 = time.perf_counter()
            y = F.max_pool2d(x, 2) if pool else F.conv2d(x, w, b, padding=1)
            y.sum().backward()
            if r >= 2:
                ts.append((time.perf_counter() - t0) * 1e3)
            x.grad = w.grad = b.grad = None
        return statistics.median(ts)
    names = ["conv 1->32 28x28", "conv 32->64 14x14", "max_pool2d 32x28x28", "max_pool2d 64x14x14"]
    shapes = [(1, 32, 28, 0), (32, 64, 14, 0), (32, 32, 28, 1), (64, 64, 14, 1)]
    print(f"# batch 128, forward + backward, median ms; threads {args.threads}, ember backend {args.backend}")
    print(f"{'':22} {'ember':>8} {'torch':>8} {'ratio':>6}")
    for name, sh, e in zip(names, shapes, ember):
        t = run(*sh)
        print(f"{name:22} {e:8.2f} {t:8.2f} {e / t:6.2f}", flush=True)


def main():
    if args.torch_child:
        return torch_child()
    if args.conv:
        if args.model != "cnn":
            sys.exit("--conv times the CNN's layers: give --model cnn (or run bench/fashion_cnn.py)")
        return conv_bench()
    import tempfile
    env = dict(os.environ)
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    flags = open("/proc/cpuinfo").read()
    isa = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "SSE"
    print(f"# {args.model}: {cpu} ({isa}), {os.cpu_count()} cpus, threads {args.threads} (PyTorch's OpenBLAS "
          f"{args.torch_blas_threads}), {args.epochs} epochs, ember backend {args.backend}")
    print(f"{'seed':>4} {'ember s/ep':>10} {'torch s/ep':>10} {'ratio':>6} {'ember acc':>9} {'torch acc':>9} "
          f"{'ember MiB ep1/last/peak':>24} {'torch MiB ep1/last/peak':>24}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # ember's thread count comes from its configuration: device.ini's [cpu] threads
        ini = os.path.join(tmp, "device.ini")
        with open(ini, "w") as f:
            f.write(f"[device]\nbackend = {args.backend}\n[cpu]\nthreads = {args.threads}\n")
        env["EMBER_CONFIG"] = ini
        for seed in seeds:
            prefix = args.checkpoint or os.path.join(tmp, f"fm{seed}")
            ecmd = [args.ember, "--data", args.data, "--epochs", str(args.epochs), "--seed", str(seed),
                    "--checkpoint", prefix, "--quiet"]
            if args.train_limit:
                ecmd += ["--train-limit", str(args.train_limit)]
            if args.test_limit:
                ecmd += ["--test-limit", str(args.test_limit)]
            tcmd = [sys.executable, os.path.abspath(__file__), "--torch-child", "--model", args.model, "--seed", str(seed),
                    "--epochs", str(args.epochs), "--threads", str(args.threads), "--data", args.data,
                    "--torch-blas-threads", str(args.torch_blas_threads),
                    "--train-limit", str(args.train_limit), "--test-limit", str(args.test_limit)]
            e = run(ecmd, env)
            t = run(tcmd, env)
            es, ts = statistics.median(e[0]), statistics.median(t[0])
            rows.append((es, ts, e[1][-1], t[1][-1]))
            print(f"{seed:>4} {es:>10.2f} {ts:>10.2f} {es / ts:>6.2f} {e[1][-1]:>9.4f} {t[1][-1]:>9.4f} "
                  f"{e[2]:>8.0f}{e[3]:>8.0f}{e[4]:>8.0f} {t[2]:>8.0f}{t[3]:>8.0f}{t[4]:>8.0f}", flush=True)
    ea = statistics.mean(r[2] for r in rows)
    ta = statistics.mean(r[3] for r in rows)
    ratio = statistics.median(r[0] / r[1] for r in rows)
    print(f"mean test accuracy after {args.epochs} epochs: ember {ea:.4f}, torch {ta:.4f} "
          f"(difference {ea - ta:+.4f}); median time ratio ember/torch {ratio:.2f}")


if __name__ == "__main__":
    main()
