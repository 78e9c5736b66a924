"""nanoGPT's baby GPT on Tiny Shakespeare's characters, trained on this CPU: chapter 15's GPTModel and
train_step against Hugging Face's GPT2LMHeadModel of the same shape, in the same run.

usage: python benchmarks/bench_pretrain.py [--threads 2] [--batch_size 8] [--minutes 4] [--full_steps 3]
                                           [--gpu_steps 200]

The shape is configs/pretrain/shakespeare_char.toml's (6 layers, 6 heads, width 384, context 256,
65 characters, dropout 0.2), with biases everywhere as GPT-2 has them. Hugging Face's model uses
attention through scaled_dot_product_attention ("sdpa") and dropout 0.2 on embeddings, attention
and residuals; its output head is tied as ours is. Both models take the same batches (nanoGPT's
random windows of the training 90%), the same AdamW groups (the chapter's configure_optimizers: lr
1e-3, beta2 0.99, weight decay 0.1), the same warm-up and cosine schedule (get_lr, down to 1e-4),
gradient clipping at 1.0, and the same step function (the chapter's train_step; Hugging Face's
model is wrapped to return its logits). They take their steps in turn, so that a machine slowed
by other work slows both alike.

1. The real configuration (batch 64 x 256 tokens): tokens/s over a few steps per model.
2. A smaller batch (--batch_size) for as many steps as fit in about --minutes per model: tokens/s
   and the validation loss (20 batches) after the same number of steps. nanoGPT's published
   figure for the full run, 5,000 steps of 64 x 256 on a GPU, is a validation loss of about 1.47.

MFU is measured against the FLOP/s of a large float32 matmul on the same threads (timed before
and after each section, the fastest taken). With CUDA, a last section runs the GPT-2 124M config
(configs/pretrain/gpt2_124m_fineweb_edu.toml: bf16 autocast, torch.compile) through
`python -m llmcourse.pretrain` for --gpu_steps steps on Tiny Shakespeare's GPT-2 tokens and reports
its tokens/s and MFU against the card's dense bf16 peak; without a GPU it is skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from autograder import paths
from llmcourse.data import data_path
from llmcourse.pretrain.config import make_config, read_config_file
from llmcourse.pretrain.throughput import gpu_peak_flops, matmul_flops

ROOT = paths.course_root()
BABY_CONFIG = ROOT / "configs" / "pretrain" / "shakespeare_char.toml"
GPT2_CONFIG = ROOT / "configs" / "pretrain" / "gpt2_124m_fineweb_edu.toml"
NANOGPT_VAL_LOSS = 1.4697  # nanoGPT's README: the baby GPT after 5,000 iterations on one A100
EVAL_BATCHES = 20


def chapter() -> dict:
    import previous_chapters

    return previous_chapters.chapter("ch15").namespace


class HuggingFaceLogits(nn.Module):
    """GPT2LMHeadModel returning its logits, so the chapter's train_step and evaluate_loss take it as they take ours."""

    def __init__(self, cfg: dict):
        super().__init__()
        import transformers

        config = transformers.GPT2Config(
            vocab_size=cfg["vocab_size"],
            n_positions=cfg["context_length"],
            n_embd=cfg["emb_dim"],
            n_layer=cfg["n_layers"],
            n_head=cfg["n_heads"],
            resid_pdrop=cfg["drop_rate"],
            embd_pdrop=cfg["drop_rate"],
            attn_pdrop=cfg["drop_rate"],
            attn_implementation="sdpa",
            bos_token_id=0,  # GPT-2's 50256 is outside a 65-character vocabulary
            eos_token_id=0,
        )
        self.gpt2 = transformers.GPT2LMHeadModel(config)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.gpt2(idx).logits  # (batch, tokens, vocab)


class Batches:
    """nanoGPT's get_batch: `batch` windows of context + 1 tokens at random offsets, from a seeded generator."""

    def __init__(self, tokens: torch.Tensor, batch: int, context: int, seed: int):
        self.tokens, self.batch, self.context = tokens, batch, context
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(len(self.tokens) - self.context - 1, (self.batch,), generator=self.generator)
        windows = torch.stack([self.tokens[s : s + self.context + 1] for s in starts.tolist()])
        return windows[:, :-1], windows[:, 1:]  # (batch, context) each


class FixedBatches:
    """The same validation batches for every model, in the same order."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        self.batches, self.index = batches, 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.batches[self.index % len(self.batches)]
        self.index += 1
        return batch


class Trainer:
    """One model with its optimizer; `step` trains on one batch and records the step's seconds."""

    def __init__(self, name: str, model: nn.Module, code: dict, settings):
        self.name, self.model, self.code = name, model.train(), code
        self.optimizer = code["configure_optimizers"](
            model, settings.weight_decay, settings.max_lr, (settings.beta1, settings.beta2), settings.eps, "cpu"
        )
        self.seconds: list[float] = []

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, grad_clip: float) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        loss = self.code["train_step"](self.model, self.optimizer, [(x, y)], grad_clip)
        self.seconds.append(time.perf_counter() - start)
        return loss

    def tokens_per_second(self, tokens_per_step: int) -> float:
        return tokens_per_step / statistics.median(self.seconds)


def build_pair(code: dict, cfg: dict, settings) -> list[Trainer]:
    torch.manual_seed(1337)
    course = code["GPTModel"](cfg)
    code["init_gpt2_weights"](course)
    torch.manual_seed(1337)
    hugging_face = HuggingFaceLogits(cfg)  # GPT-2's own initialisation, residual projections scaled too
    return [
        Trainer("course GPTModel", course, code, settings),
        Trainer("HF GPT2LMHeadModel (sdpa)", hugging_face, code, settings),
    ]


def report_speed(trainers: list[Trainer], tokens_per_step: int) -> list[float]:
    """Prints each model's tokens/s and the ratio course / Hugging Face; returns the tokens/s."""
    rates = [trainer.tokens_per_second(tokens_per_step) for trainer in trainers]
    for trainer, rate in zip(trainers, rates):
        print(f"  {trainer.name:<27} {rate:8.0f} tokens/s  median step {statistics.median(trainer.seconds):6.2f} s")
    print(f"  ratio course / Hugging Face: {rates[0] / rates[1]:.2f}x")
    return rates


def cpu_section(args: argparse.Namespace) -> None:
    code = chapter()
    settings = make_config(read_config_file(BABY_CONFIG), str(BABY_CONFIG))
    cfg = {**settings.model_cfg, "qkv_bias": True}  # GPT-2 (and Hugging Face's model) has every bias
    text = data_path("tinyshakespeare.txt").read_text(encoding="utf-8")
    chars = sorted(set(text))
    assert len(chars) == cfg["vocab_size"], len(chars)
    index = {char: i for i, char in enumerate(chars)}
    tokens = torch.tensor([index[char] for char in text], dtype=torch.long)
    split = int(len(tokens) * 0.9)
    train_tokens, val_tokens = tokens[:split], tokens[split:]
    context = cfg["context_length"]
    flops_per_token = code["flops_per_token"](cfg, code["num_params_for_flops"](cfg))
    peaks = [matmul_flops()]  # timed again after each section: a busy machine gives a low figure
    speeds: dict[str, list[float]] = {}
    print(
        f"nanoGPT's baby GPT ({cfg['n_layers']} layers, {cfg['n_heads']} heads, width {cfg['emb_dim']}, context "
        f"{context}, vocabulary {cfg['vocab_size']}, dropout {cfg['drop_rate']}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {flops_per_token / 1e6:.1f} MFLOPs per token"
    )

    if args.full_steps:
        full = build_pair(code, cfg, settings)
        print(
            f"\n1. the real configuration, batch {settings.batch_size} x {context} = {settings.batch_size * context:,} "
            f"tokens per step: {args.full_steps} timed steps per model after one warm-up"
        )
        batches = Batches(train_tokens, settings.batch_size, context, seed=0)
        for step in range(args.full_steps + 1):
            x, y = batches.next_batch()
            for trainer in full:
                trainer.step(x, y, settings.max_lr, settings.grad_clip)
                if step == 0:
                    trainer.seconds.clear()
        speeds[f"batch {settings.batch_size}"] = report_speed(full, settings.batch_size * context)
        peaks.append(matmul_flops())
        del full

    pair = build_pair(code, cfg, settings)
    batches = Batches(train_tokens, args.batch_size, context, seed=1)
    for _ in range(2):  # warm-up steps, the second timed to size the run (the first pays for allocations)
        x, y = batches.next_batch()
        for trainer in pair:
            trainer.step(x, y, settings.max_lr * 1e-3, settings.grad_clip)
    per_step = max(trainer.seconds[-1] for trainer in pair)
    steps = args.steps or max(10, int(args.minutes * 60 / per_step))
    warmup = min(settings.warmup_steps, steps // 10)
    tokens_per_step = args.batch_size * context
    print(
        f"\n2. batch {args.batch_size} x {context} = {tokens_per_step:,} tokens per step, {steps} steps per model "
        f"(warm-up {warmup}, cosine to {settings.min_lr:g} at step {steps})"
    )
    for trainer in pair:
        trainer.seconds.clear()
    started = time.perf_counter()
    for step in range(steps):
        x, y = batches.next_batch()
        lr = code["get_lr"](step, settings.max_lr, settings.min_lr, warmup, steps)
        for trainer in pair:
            trainer.step(x, y, lr, settings.grad_clip)
        if step % max(1, steps // 10) == 0:
            print(f"  step {step:5d}  {time.perf_counter() - started:7.1f} s", flush=True)
    speeds[f"batch {args.batch_size}"] = report_speed(pair, tokens_per_step)
    peaks.append(matmul_flops())
    val_generator = Batches(val_tokens, args.batch_size, context, seed=2)
    val_batches = [val_generator.next_batch() for _ in range(EVAL_BATCHES)]
    for trainer in pair:
        loss = code["evaluate_loss"](trainer.model, FixedBatches(val_batches), EVAL_BATCHES)
        print(f"  {trainer.name:<27} validation loss {loss:.4f} after {steps} steps")
    print(
        f"  (nanoGPT: about {NANOGPT_VAL_LOSS} after 5,000 steps of {settings.batch_size} x {context} on a GPU; "
        f"this run saw {steps * tokens_per_step / (5000 * settings.batch_size * context):.2%} of its tokens)"
    )
    peak = max(peaks)
    print(
        f"\nMFU against the fastest float32 matmul on {torch.get_num_threads()} threads, {peak / 1e9:.0f} GFLOP/s "
        f"(timings: {', '.join(f'{p / 1e9:.0f}' for p in peaks)}):"
    )
    for label, (course, hugging_face) in speeds.items():
        print(
            f"  {label}: course {100 * flops_per_token * course / peak:.1f}%, Hugging Face "
            f"{100 * flops_per_token * hugging_face / peak:.1f}%; tokens/s ratio {course / hugging_face:.2f}x"
        )


def gpu_section(args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        print("\n3. GPU: skipped (no CUDA device)")
        return
    name = torch.cuda.get_device_name()
    peak = gpu_peak_flops(name)
    with tempfile.TemporaryDirectory() as tmp:
        shards, out = Path(tmp) / "tinyshakespeare", Path(tmp) / "run"
        python = sys.executable
        subprocess.run(
            [python, "-m", "llmcourse.pretrain_data", "--corpus", "tinyshakespeare", "--out", str(shards)],
            cwd=ROOT,
            check=True,
        )
        overrides = {
            "data_dir": shards,
            "out_dir": out,
            "max_steps": args.gpu_steps,
            "eval_interval": 0,
            "hellaswag_interval": 0,
            "sample_tokens": 0,
            "log_interval": 10,
            "checkpoint_interval": 0,
            "keep_checkpoints": 1,
        }
        command = [python, "-m", "llmcourse.pretrain", "--config", str(GPT2_CONFIG)]
        command += [part for key, value in overrides.items() for part in (f"--{key}", str(value))]
        subprocess.run(command, cwd=ROOT, check=True)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    steady = [row for row in rows if "tokens_per_s" in row][min(10, len(rows) // 2) :]  # after compilation
    rate = statistics.median(row["tokens_per_s"] for row in steady)
    mfu = statistics.median(row["mfu"] for row in steady) if peak else math.nan
    print(
        f"\n3. GPU: GPT-2 124M, bf16 autocast, torch.compile, 524,288 tokens per step, {args.gpu_steps} steps on {name}: "
        f"{rate:,.0f} tokens/s, MFU {100 * mfu:.1f}% of {peak / 1e12 if peak else math.nan:.0f} TFLOP/s (dense bf16)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--batch_size", type=int, default=8, help="batch of the timed training run (default: 8)")
    parser.add_argument("--minutes", type=float, default=4.0, help="about this long per model (default: 4)")
    parser.add_argument("--steps", type=int, default=0, help="steps of the training run (default: what fits)")
    parser.add_argument(
        "--full_steps", type=int, default=3, help="timed steps at the real batch; 0 skips them (default: 3)"
    )
    parser.add_argument("--gpu_steps", type=int, default=200, help="steps of the GPU run (default: 200)")
    parser.add_argument("--skip_cpu", action="store_true", help="only the GPU section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_cpu:
        cpu_section(args)
    gpu_section(args)


if __name__ == "__main__":
    main()
