"""Wall time of one epoch of the book's pretraining run on The Verdict, full GPT-2 124M configuration.

usage: python benchmarks/bench_verdict_epoch.py [--threads N] [--device cpu|cuda]
The run of chapter 5 with BOOK_RUN = True, cut to one epoch: GPTModel with context 256 and
dropout 0.1, the first 90% of the story for training (batch 2, stride 256), AdamW lr 4e-4 and
weight decay 0.1, the reference train_model_simple with eval_freq 5 and eval_iter 5, so the
epoch includes its evaluations and the 50-token sample printed at its end.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from llmcourse.data import data_path, gpt2_encoding

GPT_CONFIG_124M = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from previous_chapters import GPTModel, create_dataloader_v1, train_model_simple

    tokenizer = gpt2_encoding()
    text = data_path("the-verdict.txt").read_text(encoding="utf-8")
    split = int(0.90 * len(text))
    context = GPT_CONFIG_124M["context_length"]
    torch.manual_seed(123)
    train_loader = create_dataloader_v1(
        text[:split], batch_size=2, max_length=context, stride=context, drop_last=True, shuffle=True, num_workers=0
    )
    val_loader = create_dataloader_v1(
        text[split:], batch_size=2, max_length=context, stride=context, drop_last=False, shuffle=False, num_workers=0
    )
    model = GPTModel(GPT_CONFIG_124M).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)

    start = time.perf_counter()
    train_losses, val_losses, _ = train_model_simple(
        model,
        train_loader,
        val_loader,
        optimizer,
        device,
        num_epochs=1,
        eval_freq=5,
        eval_iter=5,
        start_context="Every effort moves you",
        tokenizer=tokenizer,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(
        f"one epoch: {seconds:.1f} s for {len(train_loader)} training steps of {2 * context} tokens, "
        f"{len(train_losses)} evaluations; last train loss {train_losses[-1]:.3f}, val loss {val_losses[-1]:.3f} "
        f"(device {device}, {torch.get_num_threads()} threads, torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
