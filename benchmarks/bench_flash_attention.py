"""Time and peak memory of attention at 1k, 4k and 16k tokens: chapter 3's plain causal attention,
chapter 13's tiled FlashAttention2 (PyTorch loops) and PyTorch's scaled_dot_product_attention.

usage: python benchmarks/bench_flash_attention.py [--lengths 1024 4096 16384] [--block 256] [--threads 1] [--timeout 150]

One head of width 64, batch 1, causal, float32, on the CPU, with --threads threads (one by default: the
tiled version runs many small operations, and on a busy machine every multi-threaded operation waits for
its slowest thread). Every (variant, length, pass) runs in a
fresh process, so that its peak resident memory (ru_maxrss) is its own; the table shows that peak
minus the process's resident memory just before the run (imports, inputs), the memory the attention
itself needed. A run that does not finish within --timeout seconds is shown as such.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

VARIANTS = ("chapter 3", "FlashAttention2", "SDPA")
HEAD_DIM = 64


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def plain_causal_attention(Q, K, V):
    """Chapter 3's attention: the full (n, n) scores, masked above the diagonal, softmax, times V."""
    import torch

    n = Q.shape[-2]
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1), -torch.inf)
    return torch.softmax(scores, dim=-1) @ V


def run_one(variant: str, n: int, backward: bool, block: int, threads: int) -> dict:
    """One measurement in this process: seconds and the peak resident bytes added by the run."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    if variant == "FlashAttention2":
        from previous_chapters import FlashAttention2

        def attention(Q, K, V):
            return FlashAttention2.apply(Q, K, V, True, block, block)
    elif variant == "SDPA":

        def attention(Q, K, V):
            return F.scaled_dot_product_attention(Q, K, V, is_causal=True)
    else:
        attention = plain_causal_attention
    gen = torch.Generator().manual_seed(0)
    # A small run first: a fresh process spends its first calls starting threads and allocators.
    warm = [torch.randn(1, 256, HEAD_DIM, generator=gen, requires_grad=True) for _ in range(3)]
    attention(*warm).sum().backward()
    del warm
    Q, K, V = (torch.randn(1, n, HEAD_DIM, generator=gen).requires_grad_(backward) for _ in range(3))
    before = _resident_bytes()
    start = time.perf_counter()
    if backward:
        attention(Q, K, V).sum().backward()
    else:
        with torch.no_grad():
            attention(Q, K, V)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "extra_bytes": max(peak - before, 0)}


def measure(variant: str, n: int, backward: bool, args: argparse.Namespace) -> dict | None:
    command = [sys.executable, __file__, "--one", variant, str(n), str(int(backward))]
    command += ["--block", str(args.block), "--threads", str(args.threads)]
    timeout = args.timeout
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        print(done.stderr[-1000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cell(result: dict | None) -> tuple[str, str]:
    if result is None:
        return "timeout", "-"
    return f"{result['seconds']:.2f} s", f"{result['extra_bytes'] / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--block", type=int, default=256, help="FlashAttention2's query and key block size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each run")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds one run may take")
    parser.add_argument("--one", nargs=3, metavar=("VARIANT", "N", "BACKWARD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        variant, n, backward = args.one
        print(json.dumps(run_one(variant, int(n), bool(int(backward)), args.block, args.threads)))
        return
    print(
        f"causal attention, one head of {HEAD_DIM}, float32, CPU with {args.threads} thread(s); "
        f"FlashAttention2 tiles {args.block} x {args.block}"
    )
    print(f"{'attention':16} {'tokens':>7} {'forward':>10} {'fwd memory':>12} {'fwd + bwd':>10} {'fwd+bwd memory':>15}")
    for n in args.lengths:
        for variant in VARIANTS:
            forward = _cell(measure(variant, n, False, args))
            both = _cell(measure(variant, n, True, args))
            print(f"{variant:16} {n:>7,} {forward[0]:>10} {forward[1]:>12} {both[0]:>10} {both[1]:>15}", flush=True)


if __name__ == "__main__":
    main()
