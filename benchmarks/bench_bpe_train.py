"""Training time of the reference `train_bpe`: a 1,000-token vocabulary on TinyShakespeare (target: under 10 s).

usage: python benchmarks/bench_bpe_train.py [TEXT_FILE] [--notebook NOTEBOOK]
TEXT_FILE defaults to the fetched tinyshakespeare.txt (`course data fetch tinyshakespeare.txt`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from autograder import loader, manifest, paths
from llmcourse import data

VOCAB_SIZE = 1_000
SPECIALS = ["<|endoftext|>"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="?", type=Path, help="training text (default: TinyShakespeare)")
    parser.add_argument("--notebook", type=Path, default=paths.solution_notebook("ch02"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())

    text = (args.text or data.data_path("tinyshakespeare.txt")).read_text(encoding="utf-8")
    submission = loader.load_notebook(args.notebook, manifest.load().chapter("ch02"))
    submission.require(manifest.load().exercise("ch02.bpe_train"))

    start = time.perf_counter()
    vocab, merges = submission.train_bpe(text, VOCAB_SIZE, SPECIALS)
    seconds = time.perf_counter() - start
    print(
        f"train_bpe: {len(text):,} characters, vocab {len(vocab):,} ({len(merges)} merges) in {seconds:.2f} s "
        f"on {os.cpu_count()} cores"
    )
    print("first merges:", merges[:8])


if __name__ == "__main__":
    main()
