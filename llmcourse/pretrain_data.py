"""Write a corpus as llm.c shards for `python -m llmcourse.pretrain`.

    python -m llmcourse.pretrain_data --corpus tinyshakespeare --out data/tinyshakespeare
    python -m llmcourse.pretrain_data --corpus shakespeare_char --out data/shakespeare_char
    python -m llmcourse.pretrain_data --corpus fineweb_edu --out data/edu_fineweb10B

tinyshakespeare: the data manifest's Tiny Shakespeare (downloaded and verified on first
use), each blank-line-separated section a document as in llm.c's tinyshakespeare.py,
GPT-2 BPE tokens written by chapter 15's `write_shards`: the first shard
(`tinyshakespeare_val_000000.bin`, 32,768 tokens as llm.c's) is the validation split.
shakespeare_char: nanoGPT's prepare.py: the text's own characters as the vocabulary (65),
the first 90% for training and the rest for validation, written with `write_datafile`, and
the vocabulary in meta.json. fineweb_edu: FineWeb-Edu's sample-10BT streamed from Hugging
Face (`pip install datasets`), 100M-token shards as build-nanogpt's fineweb.py writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

CORPORA = ("tinyshakespeare", "shakespeare_char", "fineweb_edu")
DEFAULT_SHARD_SIZE = {"tinyshakespeare": 32768, "fineweb_edu": 10**8}
FINEWEB_EDU = ("HuggingFaceFW/fineweb-edu", "sample-10BT")


class CorpusError(RuntimeError):
    """A corpus cannot be prepared; the message says what to do."""


def _chapter(*names: str) -> list:
    import previous_chapters

    namespace = previous_chapters.chapter("ch15").namespace
    missing = [name for name in names if name not in namespace]
    if missing:
        raise CorpusError(f"chapter 15's notebook defines no {', '.join(missing)}; finish ch15.shards first")
    return [namespace[name] for name in names]


def tinyshakespeare_documents(text: str) -> list[str]:
    """The text's blank-line-separated sections, each but the last keeping its "\\n\\n" (llm.c's split)."""
    sections = text.split("\n\n")
    return [section + "\n\n" for section in sections[:-1]] + sections[-1:]


def prepare_tinyshakespeare(out: Path, shard_size: int, num_workers: int) -> list[Path]:
    from llmcourse.data import data_path, gpt2_encoding

    text = data_path("tinyshakespeare.txt").read_text(encoding="utf-8")
    gpt2_encoding()  # the tokenizer files, and tiktoken pointed at them, before the workers start
    (write_shards,) = _chapter("write_shards")
    return write_shards(tinyshakespeare_documents(text), out, shard_size, num_workers, prefix="tinyshakespeare")


def prepare_shakespeare_char(out: Path) -> list[Path]:
    from llmcourse.data import data_path

    text = data_path("tinyshakespeare.txt").read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {char: i for i, char in enumerate(chars)}
    split = int(len(text) * 0.9)
    (write_datafile,) = _chapter("write_datafile")
    out.mkdir(parents=True, exist_ok=True)
    val, train = out / "shakespeare_char_val_000000.bin", out / "shakespeare_char_train_000001.bin"
    write_datafile(str(val), [index[char] for char in text[split:]])
    write_datafile(str(train), [index[char] for char in text[:split]])
    (out / "meta.json").write_text(json.dumps({"vocab_size": len(chars), "chars": chars}) + "\n", encoding="utf-8")
    return [val, train]


def fineweb_edu_documents(max_documents: int = 0) -> Iterator[str]:
    """FineWeb-Edu sample-10BT's texts, streamed (nothing is stored but the shards written from them)."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise CorpusError(
            "FineWeb-Edu is streamed with Hugging Face's `datasets` library, which is not installed: "
            "pip install datasets"
        ) from None
    rows = load_dataset(FINEWEB_EDU[0], name=FINEWEB_EDU[1], split="train", streaming=True)
    texts: Iterable[str] = (row["text"] for row in rows)
    return islice(texts, max_documents) if max_documents else iter(texts)


def prepare_fineweb_edu(out: Path, shard_size: int, num_workers: int, max_documents: int) -> list[Path]:
    from llmcourse.data import gpt2_encoding

    documents = fineweb_edu_documents(max_documents)
    gpt2_encoding()
    (write_shards,) = _chapter("write_shards")
    return write_shards(documents, out, shard_size, num_workers, prefix="edufineweb")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmcourse.pretrain_data",
        description="Write a corpus as llm.c .bin shards (a validation shard first, then training shards) "
        "with chapter 15's write_shards / write_datafile.",
    )
    parser.add_argument("--corpus", required=True, choices=CORPORA)
    parser.add_argument("--out", required=True, type=Path, help="folder for the shards (the config's data_dir)")
    parser.add_argument(
        "--shard_size",
        type=int,
        help="tokens per shard (default: 32,768 for tinyshakespeare, 100,000,000 for fineweb_edu)",
    )
    parser.add_argument("--num_workers", type=int, default=2, help="tokenizing processes (default: 2)")
    parser.add_argument(
        "--max_documents", type=int, default=0, help="fineweb_edu: stop after this many documents (default: all)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shard_size = args.shard_size or DEFAULT_SHARD_SIZE.get(args.corpus, 0)
    from llmcourse.data import DataError

    try:
        if args.corpus == "tinyshakespeare":
            paths = prepare_tinyshakespeare(args.out, shard_size, args.num_workers)
        elif args.corpus == "shakespeare_char":
            paths = prepare_shakespeare_char(args.out)
        else:
            paths = prepare_fineweb_edu(args.out, shard_size, args.num_workers, args.max_documents)
    except (CorpusError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sizes = [(Path(path).stat().st_size - 1024) // 2 for path in paths]
    print(f"{len(paths)} shard(s), {sum(sizes):,} tokens ({sizes[0]:,} for validation) in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
