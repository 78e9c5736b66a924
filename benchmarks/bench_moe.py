"""Time per forward+backward of chapter 14's MoE layer: grouped dispatch, a per-token loop, and a dense
SwiGLU feed-forward with the same active parameters.

usage: python benchmarks/bench_moe.py [--repeats N] [--threads N]
The MoE layer is the reference notebook's MoEFeedForward (solutions/ch14): each expert runs once on
the tokens that chose it (index_select, index_add_). The per-token loop runs the same layer's
weights one token and one chosen expert at a time. The dense layer is chapter 8's FeedForward with
hidden size top_k * expert hidden size, so a token goes through as many feed-forward weights as in
the MoE layer. The three take their turns in each repeat, so a machine slowed by other work slows
them alike. Prints, per size, the median milliseconds per forward+backward of each (the loop only at
the smallest sizes: it is hundreds of times slower).
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

SIZES = [  # (tokens, emb_dim, expert hidden, experts, top_k)
    (64, 64, 128, 8, 2),
    (512, 128, 256, 8, 2),
    (2048, 256, 512, 8, 2),
]
LOOP_MAX_TOKENS = 64


def naive_forward(ch14, layer, x):
    tokens = x.reshape(-1, x.shape[-1])
    weights, indices = ch14.route(layer.gate(tokens), layer.top_k)
    rows = []
    for t in range(tokens.shape[0]):
        row = 0
        for j in range(layer.top_k):
            row = row + weights[t, j] * layer.experts[int(indices[t, j])](tokens[t : t + 1])[0]
        rows.append(row)
    return __import__("torch").stack(rows).reshape(x.shape)


def step_functions(ch14, moe, dense, x) -> dict:
    """One forward+backward of each contender on x, by name (the per-token loop only for small x)."""
    runs = {
        "grouped": lambda: moe(x)[0].sum().backward(),
        "dense": lambda: dense(x).sum().backward(),
    }
    if x.shape[1] <= LOOP_MAX_TOKENS:
        runs["per-token"] = lambda: naive_forward(ch14, moe, x).sum().backward()
    return runs


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    import previous_chapters

    torch.set_num_threads(args.threads)
    ch14 = SimpleNamespace(**previous_chapters.chapter("ch14").namespace)
    print(f"threads {args.threads}, median of {args.repeats} forward+backward passes, milliseconds")
    print(f"{'tokens':>7} {'emb':>5} {'hidden':>6} {'E':>3} {'k':>2} {'grouped':>9} {'dense':>9} {'per-token':>10}")
    for tokens, emb, hidden, experts, top_k in SIZES:
        torch.manual_seed(0)
        cfg = {
            "emb_dim": emb,
            "hidden_dim": hidden,
            "dtype": None,
            "num_experts": experts,
            "num_experts_per_tok": top_k,
        }
        moe = ch14.MoEFeedForward(cfg)
        dense = ch14.FeedForward({**cfg, "hidden_dim": top_k * hidden})
        x = torch.randn(1, tokens, emb)
        runs = step_functions(ch14, moe, dense, x)
        times = {name: [] for name in runs}
        for step in runs.values():
            step()  # warm-up
        for _ in range(args.repeats):
            for name, step in runs.items():
                times[name].append(timed(step))
        med = {name: statistics.median(values) for name, values in times.items()}
        loop = f"{med['per-token']:10.1f}" if "per-token" in med else f"{'-':>10}"
        print(
            f"{tokens:7d} {emb:5d} {hidden:6d} {experts:3d} {top_k:2d} {med['grouped']:9.2f} {med['dense']:9.2f} {loop}"
        )


if __name__ == "__main__":
    main()
