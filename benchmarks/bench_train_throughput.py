"""Training throughput of the course's GPTModel against Hugging Face's GPT-2 of the same shape.

usage: python benchmarks/bench_train_throughput.py [--steps N] [--warmup N] [--threads N] [--device cpu|cuda]
One training step is what chapter 5's loop does per batch: zero the gradients, forward,
cross-entropy (the reference calc_loss_batch for the course's model), backward, AdamW step
(lr 4e-4, weight decay 0.1). The shape is GPT-2 124M as the book trains it on The Verdict:
context 256, batch 2, dropout 0.1. Hugging Face's model is built untied (its own output
head, as GPTModel has), once with its default attention (scaled_dot_product_attention) and
once with "eager" attention, which computes softmax(QK^T / sqrt(d)) V step by step as the
course's MultiHeadAttention does. The models take their steps in turn, so that a machine
slowed by other work slows them alike. Prints, per model, the median seconds of the forward
pass (with the loss), the backward pass and the optimizer step after the warm-up; the tokens
per second of the median step and of the fastest one (the steadier figure on a shared
machine); and the ratios course / Hugging Face.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

CONFIG = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
}
BATCH = 2


def course_model() -> tuple[nn.Module, Callable]:
    from previous_chapters import GPTModel, calc_loss_batch

    model = GPTModel(CONFIG)
    return model, lambda x, y, device: calc_loss_batch(x, y, model, device)


def hugging_face_model(attention: str) -> tuple[nn.Module, Callable]:
    import transformers

    config = transformers.GPT2Config(
        vocab_size=CONFIG["vocab_size"],
        n_positions=CONFIG["context_length"],
        n_embd=CONFIG["emb_dim"],
        n_layer=CONFIG["n_layers"],
        n_head=CONFIG["n_heads"],
        resid_pdrop=CONFIG["drop_rate"],
        embd_pdrop=CONFIG["drop_rate"],
        attn_pdrop=CONFIG["drop_rate"],
        tie_word_embeddings=False,
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


class Trainer:
    """One model, its AdamW and a fixed batch; `step()` times one training step by phase."""

    PHASES = ("forward+loss", "backward", "AdamW", "step")

    def __init__(self, name: str, build: Callable, device: torch.device):
        torch.manual_seed(123)
        self.name, self.device = name, device
        self.model, self.loss_fn = build()
        self.model.to(device).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=4e-4, weight_decay=0.1)
        tokens = torch.randint(
            0, CONFIG["vocab_size"], (BATCH, CONFIG["context_length"] + 1), generator=torch.Generator().manual_seed(0)
        )
        self.x, self.y = tokens[:, :-1], tokens[:, 1:]  # (BATCH, context_length) each
        self.times: dict[str, list[float]] = {phase: [] for phase in self.PHASES}

    def step(self, record: bool) -> None:
        start = time.perf_counter()
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.x, self.y, self.device)
        _sync(self.device)
        forward = time.perf_counter()
        loss.backward()
        _sync(self.device)
        backward = time.perf_counter()
        self.optimizer.step()
        _sync(self.device)
        end = time.perf_counter()
        if record:
            for phase, seconds in zip(self.PHASES, (forward - start, backward - forward, end - backward, end - start)):
                self.times[phase].append(seconds)

    def report(self) -> tuple[float, float]:
        """Prints the median phases; returns tokens per second of the median and of the fastest step."""
        medians = {phase: statistics.median(values) for phase, values in self.times.items()}
        tokens = BATCH * CONFIG["context_length"]
        median, fastest = tokens / medians["step"], tokens / min(self.times["step"])
        parameters = sum(p.numel() for p in self.model.parameters())
        print(
            f"{self.name:<28} {median:6.1f} tokens/s (fastest step {fastest:6.1f})  median step "
            f"{medians['step']:.2f} s = forward+loss {medians['forward+loss']:.2f} + backward "
            f"{medians['backward']:.2f} + AdamW {medians['AdamW']:.2f}  ({parameters / 1e6:.1f}M parameters)"
        )
        return median, fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per model (default: 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"GPT-2 124M shape, context {CONFIG['context_length']}, batch {BATCH}, dropout {CONFIG['drop_rate']}; "
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"median of {args.steps} steps after {args.warmup} warm-up steps"
    )
    trainers = [Trainer("course GPTModel", course_model, device)] + [
        Trainer(f"HF GPT2LMHeadModel ({attention})", functools.partial(hugging_face_model, attention), device)
        for attention in ("sdpa", "eager")
    ]
    for round_number in range(args.warmup + args.steps):
        for trainer in trainers:
            trainer.step(record=round_number >= args.warmup)
    (course, course_fastest), *others = [trainer.report() for trainer in trainers]
    for trainer, (median, fastest) in zip(trainers[1:], others):
        print(f"ratio course / {trainer.name}: {course / median:.2f} (fastest steps: {course_fastest / fastest:.2f})")


if __name__ == "__main__":
    main()
