"""Training throughput of the course's GPTModel against Hugging Face's GPT-2 of the same shape.

usage: python benchmarks/bench_train_throughput.py [--steps N] [--warmup N] [--threads N] [--device cpu|cuda]
One training step is what chapter 5's loop does per batch: zero the gradients, forward,
cross-entropy (the reference calc_loss_batch for the course's model), backward, AdamW step
(lr 4e-4, weight decay 0.1). The shape is GPT-2 124M as the book trains it on The Verdict:
context 256, batch 2, dropout 0.1. Hugging Face's model is built untied (its own output
head, as GPTModel has), once with its default attention (scaled_dot_product_attention) and
once with "eager" attention, which computes softmax(QK^T / sqrt(d)) V step by step as the
course's MultiHeadAttention does. Prints, per model, the median seconds of the forward pass
(with the loss), the backward pass and the optimizer step after the warm-up, the tokens per
second of whole steps, and the ratio course / Hugging Face.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch
from torch import nn

CONFIG = {"vocab_size": 50257, "context_length": 256, "emb_dim": 768, "n_heads": 12, "n_layers": 12,
          "drop_rate": 0.1, "qkv_bias": False}
BATCH = 2


def course_model() -> tuple[nn.Module, Callable]:
    from previous_chapters import GPTModel, calc_loss_batch

    model = GPTModel(CONFIG)
    return model, lambda x, y, device: calc_loss_batch(x, y, model, device)


def hugging_face_model(attention: str) -> tuple[nn.Module, Callable]:
    import transformers

    config = transformers.GPT2Config(
        vocab_size=CONFIG["vocab_size"], n_positions=CONFIG["context_length"], n_embd=CONFIG["emb_dim"],
        n_layer=CONFIG["n_layers"], n_head=CONFIG["n_heads"], resid_pdrop=CONFIG["drop_rate"],
        embd_pdrop=CONFIG["drop_rate"], attn_pdrop=CONFIG["drop_rate"], tie_word_embeddings=False,
        attn_implementation=attention,
    )
    model = transformers.GPT2LMHeadModel(config)

    def loss(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> torch.Tensor:
        logits = model(x.to(device)).logits
        return nn.functional.cross_entropy(logits.flatten(0, 1), y.to(device).flatten())

    return model, loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(name: str, build: Callable, steps: int, warmup: int, device: torch.device) -> float:
    """Median tokens per second of `steps` training steps after `warmup` ones; prints the phases."""
    torch.manual_seed(123)
    model, loss_fn = build()
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, CONFIG["vocab_size"], (BATCH, CONFIG["context_length"] + 1), generator=generator)
    x, y = tokens[:, :-1], tokens[:, 1:]
    phases: dict[str, list[float]] = {"forward+loss": [], "backward": [], "optimizer": [], "step": []}
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(x, y, device)
        _sync(device)
        forward = time.perf_counter()
        loss.backward()
        _sync(device)
        backward = time.perf_counter()
        optimizer.step()
        _sync(device)
        end = time.perf_counter()
        if i >= warmup:
            for key, seconds in zip(phases, (forward - start, backward - forward, end - backward, end - start)):
                phases[key].append(seconds)
    medians = {key: statistics.median(values) for key, values in phases.items()}
    tokens_per_s = BATCH * CONFIG["context_length"] / medians["step"]
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{name:<28} {tokens_per_s:8.1f} tokens/s   step {medians['step']:.3f} s = forward+loss "
          f"{medians['forward+loss']:.3f} + backward {medians['backward']:.3f} + AdamW {medians['optimizer']:.3f} "
          f"({parameters / 1e6:.1f}M parameters, final loss {loss.item():.2f})", flush=True)
    return tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (default: 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"GPT-2 124M shape, context {CONFIG['context_length']}, batch {BATCH}, dropout {CONFIG['drop_rate']}; "
          f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"median of {args.steps} steps after {args.warmup} warm-up steps")
    course = bench("course GPTModel", course_model, args.steps, args.warmup, device)
    for attention in ("sdpa", "eager"):
        hf = bench(f"HF GPT2LMHeadModel ({attention})", lambda: hugging_face_model(attention), args.steps,
                   args.warmup, device)
        print(f"ratio course / HF ({attention}): {course / hf:.2f}", flush=True)


if __name__ == "__main__":
    main()
