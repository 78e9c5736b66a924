"""DPO fine-tuning of the course's base model on this CPU: validation reward accuracy and margin, time, examples/s.

usage: python benchmarks/bench_dpo.py [--minutes M] [--max-examples N] [--trained-blocks K] [--lr LR]
                                      [--beta B] [--batch-size N] [--max-length N] [--threads N] [--model NAME]
The model is `load_base_model()`'s (GPT-2 124M when its weights were fetched, else
SmolLM2-135M-Instruct), the code chapter 12's reference (solutions/ch12), with the notebook's
settings by default: chapter 7's 85/10/5 split of instruction-data-with-preference.json, the last 4
transformer blocks and the final norm trainable, AdamW (lr 2e-4, weight decay 0.01), beta 0.1,
batches of 4 pairs cut to 72 tokens, one shuffled epoch over the training pairs, stopped early when
--minutes of training have passed (the check comes after each optimizer step). The reference model is
a frozen copy of the base model (create_reference_model); every step is compute_dpo_loss_batch.

Printed: the validation reward accuracy and mean reward margin (compute_dpo_loss_loader over the
whole validation set, 55 pairs) after training, the training time and the training pairs per second.
Before training the policy is its reference: every margin is 0 and the accuracy 0 (a tie is no
correct preference); the first validation batch is measured to confirm it. The goal is a validation reward accuracy of at least 90 % and a mean
margin above 1.0 within 10 minutes of training. The printed load averages say whether other work
shared the machine (above about 2 during a run of 2 threads, it did, and the times are longer than
the code needs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from functools import partial

import torch
from torch.utils.data import DataLoader

from llmcourse.data import data_path
from llmcourse.finetune_base import base_model_name, load_base_model

ACCURACY_GOAL, MARGIN_GOAL, MINUTES_GOAL = 0.90, 1.0, 10.0


def reference():
    """Chapter 12's reference functions (and chapter 7's format_input), as one namespace."""
    import previous_chapters

    return previous_chapters.chapter("ch12").namespace


def splits(data: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """Chapter 7's split: the first 85 % train, the next 10 % test, the last 5 % validate."""
    train_portion, test_portion = int(len(data) * 0.85), int(len(data) * 0.1)
    return (
        data[:train_portion],
        data[train_portion : train_portion + test_portion],
        data[train_portion + test_portion :],
    )


def train_only_last_blocks(model: torch.nn.Module, num_blocks: int) -> int:
    """Freezes every parameter except those of the last num_blocks blocks and the final norm; returns how many train."""
    for param in model.parameters():
        param.requires_grad = False
    for module in (*model.trf_blocks[-num_blocks:], model.final_norm):
        for param in module.parameters():
            param.requires_grad = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def validation_report(ch12, loader, policy, reference_model, beta: float) -> dict:
    policy.eval()
    with torch.no_grad():
        result = ch12["compute_dpo_loss_loader"](loader, policy, reference_model, beta)
    policy.train()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=MINUTES_GOAL, help="training time budget (default: 10)")
    parser.add_argument("--max-examples", type=int, default=None, help="train on the first N pairs (default: 935)")
    parser.add_argument("--trained-blocks", type=int, default=4, help="last transformer blocks that train (default 4)")
    parser.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default: 2e-4)")
    parser.add_argument("--beta", type=float, default=0.1, help="DPO beta (default: 0.1)")
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per batch (default: 4)")
    parser.add_argument("--max-length", type=int, default=72, help="allowed_max_length (default: 72)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--model", default=None, help=f"base model (default: {base_model_name()})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    ch12 = reference()
    base = load_base_model(args.model, progress=False)
    with open(data_path("instruction-data-with-preference.json"), encoding="utf-8") as f:
        train_data, _, val_data = splits(json.load(f))
    if args.max_examples is not None:
        train_data = train_data[: args.max_examples]
    collate = partial(ch12["custom_collate_fn"], pad_token_id=base.pad_token_id, allowed_max_length=args.max_length)
    torch.manual_seed(123)
    train_set = ch12["PreferenceDataset"](train_data, base.tokenizer)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, collate_fn=collate, shuffle=True, drop_last=True)
    val_loader = DataLoader(
        ch12["PreferenceDataset"](val_data, base.tokenizer), batch_size=args.batch_size, collate_fn=collate
    )

    policy = base.model
    reference_model = ch12["create_reference_model"](policy)
    trained = train_only_last_blocks(policy, args.trained_blocks)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    print(
        f"{base.name}: {len(train_set)} training pairs, {len(val_loader.dataset)} validation pairs; "
        f"{trained:,} parameters train (the last {args.trained_blocks} blocks and the final norm); lr {args.lr:g}, "
        f"beta {args.beta:g}, batch {args.batch_size}, allowed_max_length {args.max_length}; "
        f"{args.threads} torch thread(s), torch {torch.__version__}, load average before the start {load_before:.1f} "
        f"on {os.cpu_count()} cores",
        flush=True,
    )

    # Before training the policy is its reference: every reward is 0, so the margin is 0 and the accuracy 0 on any
    # data; one validation batch confirms it (a full pass would cost as much as the one after training).
    before = validation_report(ch12, [next(iter(val_loader))], policy, reference_model, args.beta)
    print(
        f"before: validation reward accuracy {before['reward_accuracy']:.2%}, margin {before['reward_margin']:.3f}, "
        f"loss {before['loss']:.4f} (the first validation batch; the same on every pair by construction)",
        flush=True,
    )

    budget_s, seen, steps = args.minutes * 60, 0, 0
    policy.train()
    start = time.perf_counter()
    for batch in train_loader:
        optimizer.zero_grad()
        loss, chosen, rejected = ch12["compute_dpo_loss_batch"](batch, policy, reference_model, args.beta)
        loss.backward()
        optimizer.step()
        seen, steps = seen + batch["chosen"].shape[0], steps + 1
        if steps % 10 == 0:
            print(
                f"step {steps}: {seen} pairs, {time.perf_counter() - start:.0f} s, batch loss {loss.item():.3f}, "
                f"batch margin {(chosen - rejected).mean().item():.3f}",
                flush=True,
            )
        if time.perf_counter() - start >= budget_s:
            break
    training_s = time.perf_counter() - start

    start = time.perf_counter()
    after = validation_report(ch12, val_loader, policy, reference_model, args.beta)
    evaluation_s = time.perf_counter() - start
    reached = after["reward_accuracy"] >= ACCURACY_GOAL and after["reward_margin"] > MARGIN_GOAL
    print(
        f"\ntraining: {seen} pairs ({steps} steps) in {training_s:.0f} s ({seen / training_s:.2f} pairs/s)\n"
        f"after: validation reward accuracy {after['reward_accuracy']:.2%}, margin {after['reward_margin']:.3f} "
        f"(chosen {after['chosen_reward']:.3f}, rejected {after['rejected_reward']:.3f}), loss {after['loss']:.4f}, "
        f"measured in {evaluation_s:.0f} s\n"
        f"goal: accuracy >= {ACCURACY_GOAL:.0%} and margin > {MARGIN_GOAL} within {MINUTES_GOAL:g} minutes: "
        f"{'reached' if reached and training_s <= MINUTES_GOAL * 60 + 60 else 'NOT reached'}; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
