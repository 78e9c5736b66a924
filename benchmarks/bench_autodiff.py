"""Time per training step of chapter 10's from-scratch engine against PyTorch on the same MLP.

usage: python benchmarks/bench_autodiff.py [--steps N] [--warmup N] [--threads N]
One step is what chapter 10's train_step does: logits = tanh(x @ W1 + b1) @ W2 + b2, the mean
cross-entropy, backward, a plain gradient-descent update and the gradients reset. The engine is
the reference notebook's (solutions/ch10); PyTorch runs the same arithmetic in float64 with
autograd and an in-place update. Both use the same number of threads (NumPy's BLAS through
the environment variables set here before NumPy loads, PyTorch through torch.set_num_threads),
and the two take their steps in turn, so a machine slowed by other work slows them alike.
Prints, per MLP size, the median milliseconds per step of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

SIZES = [  # (batch, d_in, hidden, classes): a toy MLP, where Python's per-node cost shows, up to a wide one
    (32, 16, 32, 4),
    (256, 64, 256, 10),
    (1024, 256, 1024, 64),
]


def engine_step(ch10, params: dict, x, targets, lr: float) -> float:
    return ch10.train_step(params, x, targets, lr)


def torch_step(params: dict, x, targets, lr: float) -> float:
    import torch
    import torch.nn.functional as F

    logits = torch.tanh(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    with torch.no_grad():
        for param in params.values():
            param -= lr * param.grad
            param.grad = None
    return loss.item()


def bench_size(ch10, size: tuple, steps: int, warmup: int) -> tuple[float, float, float]:
    """Median seconds per step (engine, PyTorch) and the largest loss difference over the run."""
    import numpy as np
    import torch

    batch, d_in, hidden, classes = size
    rng = np.random.default_rng(0)
    start = {
        "W1": rng.normal(size=(d_in, hidden)) / np.sqrt(d_in),
        "b1": np.zeros(hidden),
        "W2": rng.normal(size=(hidden, classes)) / np.sqrt(hidden),
        "b2": np.zeros(classes),
    }
    x, targets = rng.normal(size=(batch, d_in)), rng.integers(0, classes, size=batch)
    ours = {name: ch10.Tensor(value, requires_grad=True) for name, value in start.items()}
    theirs = {name: torch.tensor(value, requires_grad=True) for name, value in start.items()}
    tx, ttargets = torch.from_numpy(x), torch.from_numpy(targets)
    ours_times, theirs_times, gap = [], [], 0.0
    for step in range(warmup + steps):
        begin = time.perf_counter()
        our_loss = engine_step(ch10, ours, x, targets, 0.1)
        middle = time.perf_counter()
        their_loss = torch_step(theirs, tx, ttargets, 0.1)
        end = time.perf_counter()
        gap = max(gap, abs(our_loss - their_loss))
        if step >= warmup:
            ours_times.append(middle - begin)
            theirs_times.append(end - middle)
    return statistics.median(ours_times), statistics.median(theirs_times), gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)

    import torch

    import previous_chapters

    torch.set_num_threads(args.threads)
    ch10 = previous_chapters.chapter("ch10")
    print(f"MLP training step, float64, {args.threads} threads, median of {args.steps} steps after {args.warmup}")
    print(
        f"{'batch x d_in x hidden x classes':>32}  {'engine ms':>10}  {'PyTorch ms':>10}  {'engine/PyTorch':>14}  loss gap"
    )
    for size in SIZES:
        ours, theirs, gap = bench_size(ch10, size, args.steps, args.warmup)
        label = " x ".join(str(n) for n in size)
        print(f"{label:>32}  {1e3 * ours:10.3f}  {1e3 * theirs:10.3f}  {ours / theirs:14.2f}  {gap:.1e}")


if __name__ == "__main__":
    main()
