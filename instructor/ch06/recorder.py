"""Chapter 6 fixtures: the book's sampling and split on a small frame of messages, and a classifier's training run."""

from __future__ import annotations

import contextlib
import io

import torch

from autograder.checks.classifier_setups import classifier_run, messages_frame
from autograder.checks.modules import parameter_state
from autograder.checks.training_setups import StepLog

# 5 batches per epoch: steps 0, 4 and 8 are evaluated; a step number restarting every epoch evaluates 4 times.
TRAIN = {"num_epochs": 2, "eval_freq": 4, "eval_iter": 2}
# 27 rows: 0.7 and 0.1 of them (18.9 and 2.7) tell int() from round(), and int(27 * 0.8) = 21 from 18 + 2.
NUM_HAM, NUM_SPAM = 19, 8


def messages(seed: int = 4) -> dict:
    """A frame's columns and index as lists: ham and spam interleaved at random, a non-default index."""
    generator = torch.Generator().manual_seed(seed)
    labels = ["ham"] * NUM_HAM + ["spam"] * NUM_SPAM
    order = torch.randperm(len(labels), generator=generator).tolist()
    labels = [labels[i] for i in order]
    texts = [f"{label} message {i}" for i, label in enumerate(labels)]
    index = (torch.randperm(len(labels), generator=generator) * 3 + 100).tolist()
    return {"Label": labels, "Text": texts, "index": index}


def _train(ref) -> dict:
    run = classifier_run(seed=1)
    log = StepLog(run)
    with contextlib.redirect_stdout(io.StringIO()):
        results = ref.train_classifier_simple(
            run.model, run.train_loader, run.val_loader, run.optimizer, "cpu", **TRAIN
        )
    *curves, examples_seen = results
    return {
        **TRAIN,
        "seed": 1,
        "curves": [list(map(float, values)) for values in curves],
        "examples_seen": int(examples_seen),
        "grad_norms": log.grad_norms,
        "state": parameter_state(run.model),
    }


def record(ref) -> dict:
    columns = messages()
    balanced = ref.create_balanced_dataset(messages_frame(columns))
    split = ref.random_split(messages_frame(columns), 0.7, 0.1)
    return {
        "messages": columns,
        "balanced_texts": balanced["Text"].tolist(),
        "split_texts": [part["Text"].tolist() for part in split],
        "train": _train(ref),
    }
