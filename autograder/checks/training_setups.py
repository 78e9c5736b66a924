"""The small training runs of chapter 5's checks, built identically by the checks and the recorder.

A run trains a `TinyLanguageModel` on a handful of fixed batches, so the whole
run takes milliseconds and its losses, learning rates and final weights can be
recorded from the reference and compared with a submission's. Its AdamW has two
parameter groups, the embeddings without weight decay as in nanoGPT, so a
schedule that sets only the first group's learning rate shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.toy_models import CharTokenizer, TinyLanguageModel
from autograder.no_dynamo import compiler_free

ALPHABET = "abcdefghijklmnopqrstuvwxyz ,."
CONTEXT = 6
START_CONTEXT = "every effort"


@dataclass
class TrainingRun:
    """Everything a training function takes, freshly built."""

    model: TinyLanguageModel
    train_loader: DataLoader
    val_loader: DataLoader
    optimizer: torch.optim.Optimizer
    tokenizer: CharTokenizer
    start_context: str = START_CONTEXT


def _loader(num_batches: int, batch_size: int, generator: torch.Generator) -> DataLoader:
    """num_batches batches of (batch_size, CONTEXT) inputs with their targets one token ahead."""
    tokens = torch.randint(0, len(ALPHABET), (num_batches * batch_size, CONTEXT + 1), generator=generator)
    return DataLoader(TensorDataset(tokens[:, :-1], tokens[:, 1:]), batch_size=batch_size, shuffle=False)


def training_run(
    seed: int = 0,
    optimizer: str = "adamw",
    lr: float = 0.01,
    drop_rate: float = 0.0,
    weight_scale: float = 1.0,
    train_batches: int = 5,
) -> TrainingRun:
    """A fresh run: model, 2-sequence batches (train_batches for training, 2 for validation) and optimizer."""
    generator = torch.Generator().manual_seed(seed)
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, drop_rate=drop_rate, seed=seed, weight_scale=weight_scale)
    train_loader, val_loader = _loader(train_batches, 2, generator), _loader(2, 2, generator)
    if optimizer == "adamw":
        embeddings = [model.tok_emb.weight, model.pos_emb.weight]
        groups = [{"params": [model.out_head.weight]}, {"params": embeddings, "weight_decay": 0.0}]
        opt = compiler_free(torch.optim.AdamW)(groups, lr=lr, weight_decay=0.1)
    else:
        opt = compiler_free(torch.optim.SGD)(model.parameters(), lr=lr)
    return TrainingRun(model, train_loader, val_loader, opt, CharTokenizer(ALPHABET))


class StepLog:
    """Records, at every optimizer step, the learning rates and the gradient's total norm just before the update.

    `lrs` holds the first parameter group's rate per step, `group_lrs` every group's.
    """

    def __init__(self, run: TrainingRun):
        self.lrs: list[float] = []
        self.group_lrs: list[tuple[float, ...]] = []
        self.grad_norms: list[float] = []
        self.model = run.model
        run.optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer, args, kwargs) -> None:
        self.group_lrs.append(tuple(group["lr"] for group in optimizer.param_groups))
        self.lrs.append(self.group_lrs[-1][0])
        grads = [p.grad.detach().flatten() for p in self.model.parameters() if p.grad is not None]
        self.grad_norms.append(float(torch.cat(grads).norm()) if grads else 0.0)
