"""Public checks of chapter 15: pretraining for real.

The token files are checked byte for byte against llm.c's format, written and read by the check's
own code; the loader on shards of tokens that are their own positions in the stream, so that every
batch says where it was read; gradient accumulation, checkpoints, evaluation and DDP on a tiny
language model defined here (an embedding, dropout and a linear head), which the compare steps
rebuild to compute what a correct run gives. DDP runs in two gloo processes forked from the loaded
submission (`autograder.checks.ranks`).

Every check is split (`autograder.split`): its produce step runs the submission's code and
reports what it saw, and its compare step decides.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import random
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks.ranks import RANKS_DEADLINE_S, expect_ranks_finished, run_processes
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_list,
    expect_number,
    expect_tensor,
    fail,
)
from autograder.no_dynamo import compiler_free
from autograder.split import split

shards = pytest.mark.ch15_shards
data_loader = pytest.mark.ch15_data_loader
grad_accum = pytest.mark.ch15_grad_accum
init_and_groups = pytest.mark.ch15_init_and_groups
flops = pytest.mark.ch15_flops
checkpoint = pytest.mark.ch15_checkpoint
evaluation = pytest.mark.ch15_evaluation
ddp = pytest.mark.ch15_ddp

# llm.c's format (dev/data/data_common.py), written out here rather than taken from the notebook.
MAGIC, VERSION, HEADER_INTS = 20240520, 1, 256
EOT = 50256


def llmc_bytes(tokens, magic: int = MAGIC, version: int = VERSION, count: int | None = None) -> bytes:
    """A token file as llm.c writes it: 256 little-endian int32 (magic, version, count, zeros), then uint16 tokens."""
    tokens = np.asarray(tokens, dtype=np.int64)
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (magic, version, len(tokens) if count is None else count)
    return header.tobytes() + tokens.astype("<u2").tobytes()


def write_llmc(path, tokens, **fields) -> Path:
    Path(path).write_bytes(llmc_bytes(tokens, **fields))
    return Path(path)


def raised(call) -> str:
    """The name of the exception `call()` raises, or "returned" when it returns."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - which exception the student's code raises is the output
        return type(error).__name__
    return "returned"


@contextlib.contextmanager
def scratch_dir(prefix: str):
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


# ---------------------------------------------------------------- ch15.shards

ROUND_TRIP_TOKENS = [EOT, 0, 1, 65535, 31373, 995, 256, 50255, EOT, 7, 65534, 40]


def _round_trip(sub):
    with scratch_dir("ch15-shards-") as folder:
        written = folder / "written.bin"
        sub.write_datafile(written, ROUND_TRIP_TOKENS)
        from_numpy = folder / "from_numpy.bin"
        sub.write_datafile(from_numpy, np.array(ROUND_TRIP_TOKENS[:5], dtype=np.int64))
        tokens = sub.read_datafile(write_llmc(folder / "llmc.bin", ROUND_TRIP_TOKENS))
        return {
            "written": written.read_bytes(),
            "from_numpy": from_numpy.read_bytes(),
            "read": torch.from_numpy(np.array(tokens)),
            "read_type": type(tokens).__name__,
            "read_dtype": str(getattr(tokens, "dtype", None)),
            "read_is_memmap": isinstance(tokens, np.memmap) or isinstance(getattr(tokens, "base", None), np.memmap),
            "read_writeable": bool(getattr(getattr(tokens, "flags", None), "writeable", True)),
            "read_own": torch.from_numpy(np.array(sub.read_datafile(written))),
        }


def expect_llmc_file(actual, tokens, what: str) -> None:
    """`actual` (bytes) is llm.c's file for `tokens`; fails naming the first field that differs."""
    expected = llmc_bytes(tokens)
    expect(isinstance(actual, bytes), f"{what}: nothing was written")
    if len(actual) < HEADER_INTS * 4:
        fail(f"{what} is {len(actual)} bytes long: shorter than the header of {HEADER_INTS} int32 (1024 bytes)")
    header = np.frombuffer(actual[: HEADER_INTS * 4], dtype="<i4")
    for index, field, value in ((0, "magic number", MAGIC), (1, "version", VERSION), (2, "token count", len(tokens))):
        expect(
            header[index] == value, f"{what}: header int32 {index} (the {field}) is {header[index]}; expected {value}"
        )
    if header[3:].any():
        fail(f"{what}: header int32 3 to 255 should be zeros; int32 {3 + int(np.flatnonzero(header[3:])[0])} is not")
    body = actual[HEADER_INTS * 4 :]
    if len(body) == 4 * len(tokens):
        fail(f"{what}: the tokens take 4 bytes each; llm.c stores GPT-2 tokens as uint16 (2 bytes)")
    if len(body) == 8 * len(tokens):
        fail(f"{what}: the tokens take 8 bytes each (int64); llm.c stores GPT-2 tokens as uint16 (2 bytes)")
    expect(
        len(body) == 2 * len(tokens),
        f"{what}: the body is {len(body)} bytes; {len(tokens)} uint16 tokens take {2 * len(tokens)}",
    )
    got = np.frombuffer(body, dtype="<u2")
    bad = np.flatnonzero(got != np.asarray(tokens, dtype=np.int64).astype("<u2"))
    if bad.size:
        fail(f"{what}: token {bad[0]} is {got[bad[0]]}; expected {tokens[bad[0]]}")
    expect(actual == expected, f"{what} differs from llm.c's bytes")


@shards
@split(produce=_round_trip)
def test_datafiles_are_llmc_files_and_read_back(outputs):
    """write_datafile writes llm.c's bytes exactly; read_datafile reads llm.c's file as a read-only uint16 memmap"""
    expect_llmc_file(outputs["written"], ROUND_TRIP_TOKENS, "write_datafile's file for 12 tokens")
    expect_llmc_file(outputs["from_numpy"], ROUND_TRIP_TOKENS[:5], "write_datafile's file for an int64 numpy array")
    expect(
        outputs["read_dtype"] == "uint16",
        f"read_datafile returns a {outputs['read_type']} of dtype {outputs['read_dtype']}; return the uint16 tokens "
        "as they are in the file (np.memmap(..., dtype=np.uint16))",
    )
    expect_equal_tensor(
        outputs["read"].long(), torch.tensor(ROUND_TRIP_TOKENS), "read_datafile's tokens of a file llm.c wrote"
    )
    expect(
        outputs["read_is_memmap"],
        f"read_datafile returns a {outputs['read_type']} that does not map the file: read it with "
        "np.memmap(filename, dtype=np.uint16, mode='r', offset=1024, shape=(num_tokens,))",
    )
    expect(not outputs["read_writeable"], "read_datafile's array is writeable: open the memmap with mode='r'")
    expect_equal_tensor(
        outputs["read_own"].long(), torch.tensor(ROUND_TRIP_TOKENS), "read_datafile on write_datafile's own file"
    )


OUT_OF_RANGE = {"-1": [3, -1, 4], "65536": [65536], "70000 and 5": [5, 70000]}


def _refusals(sub):
    with scratch_dir("ch15-refuse-") as folder:
        writes = {
            name: raised(lambda t=tokens: sub.write_datafile(folder / "w.bin", t))
            for name, tokens in OUT_OF_RANGE.items()
        }
        files = {
            "a wrong magic number": llmc_bytes([1, 2, 3], magic=20240521),
            "llm.c's magic number read as big-endian": llmc_bytes([1, 2, 3]).replace(
                np.array([MAGIC], "<i4").tobytes(), np.array([MAGIC], ">i4").tobytes(), 1
            ),
            "version 2 (llm.c's uint32 tokens)": llmc_bytes([1, 2, 3], version=2),
            "a body one token short": llmc_bytes([1, 2, 3])[:-2],
            "a body one byte short": llmc_bytes([1, 2, 3])[:-1],
            "a body one token longer than the count": llmc_bytes([1, 2, 3, 4], count=3),
            "a file shorter than its header": llmc_bytes([1, 2])[:600],
        }
        reads = {}
        for name, blob in files.items():
            path = folder / "r.bin"
            path.write_bytes(blob)
            reads[name] = raised(lambda p=path: np.array(sub.read_datafile(p)))
        return {"writes": writes, "reads": reads}


@shards
@split(produce=_refusals)
def test_bad_tokens_and_bad_files_are_refused(outputs):
    """write_datafile refuses tokens outside [0, 65536); read_datafile refuses wrong magic, version and sizes"""
    for name in OUT_OF_RANGE:
        got = outputs["writes"][name]
        expect(
            got == "ValueError",
            f"write_datafile with a token {name}: {'returned' if got == 'returned' else 'raised ' + got}; raise "
            "ValueError for a token outside [0, 65536) (a uint16 would wrap it around silently)",
        )
    for name, got in outputs["reads"].items():
        expect(
            got == "ValueError",
            f"read_datafile on a file with {name} {'returned tokens' if got == 'returned' else 'raised ' + got}; "
            "raise ValueError (check the magic number, the version, and that the file holds exactly 1024 + "
            "2 * count bytes)",
        )


class ByteEncoder:
    """A stand-in tokenizer: a token per byte plus 1000, <|endoftext|> 999; `encode` marks its ids so a
    call of it instead of `encode_ordinary` shows."""

    eot_token = 999

    def encode_ordinary(self, text: str) -> list[int]:
        return [1000 + b for b in text.encode()]

    def encode(self, text: str, **kwargs) -> list[int]:
        return [2000 + b for b in text.encode()]


TOKENIZE_TEXTS = ["Hello world", "ROMEO: <|endoftext|> is just text here", ""]


def _tokenized(sub, gpt2):
    out = []
    for text in TOKENIZE_TEXTS:
        tokens = sub.tokenize_document(text)
        out.append({"default": torch.from_numpy(np.array(tokens)), "dtype": str(getattr(tokens, "dtype", None))})
    out.append({"bytes": torch.from_numpy(np.array(sub.tokenize_document("abc", ByteEncoder())))})
    return out


@shards
@split(produce=_tokenized)
def test_documents_start_with_end_of_text(outputs, gpt2):
    """tokenize_document: uint16 [<|endoftext|>] + encode_ordinary(text), GPT-2 by default, the encoder given"""
    expect_list(outputs, len(TOKENIZE_TEXTS) + 1, "the tokenize_document results")
    for text, out in zip(TOKENIZE_TEXTS, outputs, strict=False):
        what = f"tokenize_document({text!r})"
        expect(out["dtype"] == "uint16", f"{what} has dtype {out['dtype']}; return a uint16 numpy array")
        expected = torch.tensor([EOT, *gpt2.encode_ordinary(text)])
        got = out["default"].long()
        if got.shape == expected[1:].shape and torch.equal(got, expected[1:]):
            fail(f"{what} has no <|endoftext|> ({EOT}) in front: every document starts with it")
        if len(expected) > 1 and got.shape == expected.shape and torch.equal(got[:-1], expected[1:]) and got[-1] == EOT:
            fail(f"{what} puts <|endoftext|> after the document; llm.c and build-nanogpt put it before")
        expect_equal_tensor(got, expected, f"{what} (GPT-2's encoding)")
    bytes_tokens = outputs[-1]["bytes"].long()
    expected = torch.tensor([999, 1097, 1098, 1099])
    if bytes_tokens.shape == expected.shape and torch.equal(bytes_tokens[1:], expected[1:] + 1000):
        fail(
            "tokenize_document calls encoder.encode; call encoder.encode_ordinary (a document's text is ordinary text)"
        )
    expect_equal_tensor(bytes_tokens, expected, "tokenize_document('abc', encoder) with another encoder")


SHARD_DOCUMENTS = [
    "First Citizen: Before we proceed any further, hear me speak.",
    "All: Speak, speak.",
    "First Citizen: You are all resolved rather to die than to famish?",
    "All: Resolved. resolved.",
    "First Citizen: First, you know Caius Marcius is chief enemy to the people.",
    "x",
]
SHARD_SIZE = 16


def shards_written_of(sub, documents, shard_size: int, num_workers: int, prefix: str) -> dict:
    """write_shards into a fresh folder: the names it returned and the bytes of every file it wrote."""
    sub.get_encoder("gpt2")  # the workers fork with the encoding already built
    with scratch_dir("ch15-write-shards-") as folder:
        out = folder / "out"
        paths = sub.write_shards(iter(documents), out, shard_size=shard_size, num_workers=num_workers, prefix=prefix)
        listing = sorted(p.name for p in out.iterdir()) if out.exists() else []
        returned = isinstance(paths, (list, tuple))
        return {
            "returned": [Path(p).name for p in paths] if returned else type(paths).__name__,
            "in_out_dir": [str(Path(p).parent) == str(out) for p in paths] if returned else [],
            "files": {name: (out / name).read_bytes() for name in listing},
        }


def _shards_written(sub):
    return shards_written_of(sub, SHARD_DOCUMENTS, SHARD_SIZE, 2, "tiny")


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}_{'val' if index == 0 else 'train'}_{index:06d}.bin"


@shards
@split(produce=_shards_written)
def test_write_shards_fills_llmc_shards_in_order(outputs, gpt2):
    """write_shards: full shards of shard_size (the last shorter), documents split across them, llm.c's names"""
    expect_shards_written(outputs, SHARD_DOCUMENTS, SHARD_SIZE, "tiny", gpt2)


def expect_shards_written(outputs, documents, shard_size: int, prefix: str, gpt2) -> None:
    stream = [t for text in documents for t in (EOT, *gpt2.encode_ordinary(text))]
    count = math.ceil(len(stream) / shard_size)
    names = [shard_name(prefix, i) for i in range(count)]
    files = outputs["files"]
    expect(
        sorted(files) == sorted(names),
        f"write_shards wrote {sorted(files)[:4]}; expected {count} shards named {names[0]}, "
        f"{names[1] if count > 1 else ''}, ... (the first one val, then train, numbered from 000000 across both)",
    )
    expect(
        outputs["returned"] == names,
        f"write_shards returned {outputs['returned']}; return the paths of the shards, in order",
    )
    expect(all(outputs["in_out_dir"]), "write_shards returned paths outside out_dir")
    for index, name in enumerate(names):
        part = stream[index * shard_size : (index + 1) * shard_size]
        blob = files[name]
        got_count = int(np.frombuffer(blob[8:12], dtype="<i4")[0]) if len(blob) >= 12 else -1
        if index < count - 1 and got_count != shard_size:
            fail(
                f"{name} holds {got_count} tokens; every shard but the last holds exactly shard_size = {shard_size} "
                "(split a document across two shards where it does not fit)"
            )
        expect_llmc_file(blob, part, f"{name}, shard {index} of the stream of {len(documents)} documents")


# ---------------------------------------------------------------- ch15.data_loader

# Token i of the stream is i (mod 2**16), so every batch shows the positions it was read from.
# 133 tokens: with B*T = 6 the last window of an epoch (7 tokens from 126) ends exactly at the stream's end.
LOADER_SHARDS = [37, 5, 50, 29, 12]


def stream_shards(folder: Path, lengths=LOADER_SHARDS, offset: int = 0) -> list[str]:
    paths, start = [], offset
    for index, length in enumerate(lengths):
        paths.append(str(write_llmc(folder / f"s_{index:06d}.bin", np.arange(start, start + length) % 2**16)))
        start += length
    return paths


def expected_windows(total: int, B: int, T: int, rank: int, world: int, steps: int) -> list[tuple[int, int]]:
    """(start position of rank's B*T + 1 tokens, epoch) for each of `steps` calls of next_batch."""
    out, position, epoch = [], 0, 0
    for _ in range(steps):
        if position + B * T * world + 1 > total:
            position, epoch = 0, epoch + 1
        out.append((position + rank * B * T, epoch))
        position += B * T * world
    return out


def loader_batches(sub, lengths, B, T, world, steps):
    """Each rank's first `steps` batches from shards of `lengths` tokens, token i of the stream being i."""
    with scratch_dir("ch15-loader-") as folder:
        paths = stream_shards(folder, lengths)
        loaders = [sub.DistributedDataLoader(paths, B, T, process_rank=r, num_processes=world) for r in range(world)]
        return [[[*loader.next_batch(), observed_epoch(loader)] for _ in range(steps)] for loader in loaders]


def observed_epoch(loader):
    """The loader's `epoch` attribute, as data."""
    epoch = getattr(loader, "epoch", None)
    return epoch if isinstance(epoch, int) else repr(epoch)


def _batches(sub, layout):
    return loader_batches(sub, LOADER_SHARDS, *LOADER_LAYOUTS[layout])


LOADER_LAYOUTS = {
    "one process, B=2, T=3": (2, 3, 1, 30),
    "two ranks, B=3, T=4": (3, 4, 2, 9),
    "three ranks, B=1, T=8": (1, 8, 3, 12),
}


def expect_batches(outputs, B, T, world, steps, lengths, what) -> None:
    total = sum(lengths)
    expect_list(outputs, world, f"{what}: the ranks' batches")
    for rank, batches in enumerate(outputs):
        expect_list(batches, steps, f"{what}: rank {rank}'s batches")
        windows = expected_windows(total, B, T, rank, world, steps)
        for step, (batch, (start, epoch)) in enumerate(zip(batches, windows, strict=True)):
            where = f"{what}, rank {rank}, batch {step}"
            expect(isinstance(batch, list) and len(batch) == 3, f"{where}: next_batch should return (x, y)")
            x, y, got_epoch = batch
            expect_tensor(x, f"{where}: x", shape=(B, T))
            expect_tensor(y, f"{where}: y", shape=(B, T))
            expect(
                x.dtype == torch.int64 and y.dtype == torch.int64,
                f"{where}: x and y have dtypes {x.dtype}, {y.dtype}; return int64 tensors (what nn.Embedding takes)",
            )
            expected_x = torch.arange(start, start + B * T).view(B, T)
            if torch.equal(y, expected_x):
                fail(f"{where}: y equals x; y is x shifted by one token (the next token of each position)")
            if int(x[0, 0]) != start:
                explain_start(int(x[0, 0]), start, B, T, world, rank, step, lengths, where)
            expect_equal_tensor(x, expected_x, f"{where}: x (token i of the test stream is i)")
            expect_equal_tensor(y, expected_x + 1, f"{where}: y (x shifted by one)")
            expect(
                got_epoch == epoch,
                f"{where}: loader.epoch is {got_epoch}; expected {epoch} (it starts at 0 and grows by one each time "
                "the position returns to the start of the stream)",
            )


def explain_start(got, start, B, T, world, rank, step, lengths, where: str) -> None:
    """Fails naming why a batch starts at stream position `got` instead of `start`, where it can tell."""
    shard_starts = np.cumsum(lengths)[:-1].tolist()
    if got > start and got in shard_starts:
        fail(
            f"{where} starts at token {got}, the start of a shard, not at {start}: the window that reaches the end "
            "of a shard skips to the next one; carry it over (the rest of this shard, then the next)"
        )
    if rank > 0 and got == start - rank * B * T:
        fail(f"{where} starts at token {got}: every rank reads the same tokens; rank r starts r*B*T tokens in")
    if world > 1 and step > 0 and got == start - (world - 1) * B * T * step:
        fail(
            f"{where} starts at token {got}: the position advances by B*T each step; all ranks together "
            "consume B*T*num_processes tokens per step"
        )
    fail(f"{where} starts at stream position {got}; expected {start}")


@data_loader
@split(produce=_batches)
@pytest.mark.parametrize("layout", list(LOADER_LAYOUTS))
def test_batches_tile_the_stream_across_shards(outputs, layout):
    """next_batch: rank r reads its slice of each step's window, across shard boundaries, back to the start at an epoch's end"""
    B, T, world, steps = LOADER_LAYOUTS[layout]
    expect_batches(outputs, B, T, world, steps, LOADER_SHARDS, layout)


def _epoch_coverage(sub):
    with scratch_dir("ch15-cover-") as folder:
        paths = stream_shards(folder, [23, 40, 17, 41])
        loaders = [sub.DistributedDataLoader(paths, 2, 5, process_rank=r, num_processes=3) for r in range(3)]
        return [[loader.next_batch()[0] for _ in range(3)] for loader in loaders]


@data_loader
@split(produce=_epoch_coverage)
def test_no_token_read_twice_nor_skipped_in_an_epoch(outputs):
    """three ranks over one epoch: every token of the epoch's windows read once, by one rank"""
    expect_list(outputs, 3, "the three ranks' inputs")
    seen = []
    for rank, xs in enumerate(outputs):
        expect_list(xs, 3, f"rank {rank}'s inputs")
        for x in xs:
            expect_tensor(x, f"rank {rank}'s x", shape=(2, 5))
            seen.extend(int(t) for t in x.flatten())
    repeated = sorted({t for t in seen if seen.count(t) > 1})
    expect(not repeated, f"over one epoch, tokens {repeated[:5]} were read by more than one rank or step")
    missing = sorted(set(range(90)) - set(seen))
    expect(not missing, f"over one epoch, tokens {missing[:5]} (of the first 90) were read by no rank")


# (ranks, rank, batches before the restore): in shard 0, in shard 2, and in shard 2 of the second epoch.
RESTORES = ((1, 0, 4), (2, 1, 4), (1, 0, 30))


def restored_of(sub, lengths, B, T, restores):
    """For each (ranks, rank, batches before): the 6 batches after state_dict() from the loader itself and
    from a fresh loader given the state, and the first batch after reset()."""
    with scratch_dir("ch15-restore-") as folder:
        paths = stream_shards(folder, lengths)
        out = []
        for world, rank, before in restores:
            loader = sub.DistributedDataLoader(paths, B, T, process_rank=rank, num_processes=world)
            for _ in range(before):
                loader.next_batch()
            state = loader.state_dict()
            plain = json.loads(json.dumps(state)) if isinstance(state, dict) else None
            continued = [loader.next_batch()[0] for _ in range(6)]
            fresh = sub.DistributedDataLoader(paths, B, T, process_rank=rank, num_processes=world)
            fresh.next_batch()
            if plain is not None:
                fresh.load_state_dict(plain)
            restored_state = fresh.state_dict()
            restored = [fresh.next_batch()[0] for _ in range(6)]
            loader.reset()
            epoch_after_reset = observed_epoch(loader)
            after_reset = loader.next_batch()[0]
            out.append(
                {
                    "state_type": type(state).__name__,
                    "plain": plain is not None and all(isinstance(v, int) for v in plain.values()),
                    "state": plain,
                    "restored_state": json.loads(json.dumps(restored_state))
                    if isinstance(restored_state, dict)
                    else None,
                    "continued": continued,
                    "restored": restored,
                    "reset": after_reset,
                    "epoch_after_reset": epoch_after_reset,
                }
            )
        return out


def _restored(sub):
    return restored_of(sub, LOADER_SHARDS, 2, 3, RESTORES)


def expect_restored(outputs, B, T, restores) -> None:
    expect_list(outputs, len(restores), "the restore cases")
    for out, (world, rank, before) in zip(outputs, restores, strict=True):
        what = f"a loader ({world} rank(s)) restored after {before} batches"
        expect(out["state_type"] == "dict", f"state_dict() returned a {out['state_type']}; return a dict")
        expect(
            out["plain"],
            "state_dict() should hold plain ints (shard index, position, epoch), which json and "
            "torch.save keep as they are",
        )
        expect(
            out["restored_state"] == out["state"],
            f"{what}: the restored loader's state_dict() is {out['restored_state']}, not the {out['state']} it was "
            "given; load_state_dict restores every entry (the epoch too)",
        )
        expect_list(out["restored"], 6, what)
        for i, (got, want) in enumerate(zip(out["restored"], out["continued"], strict=True)):
            expect_equal_tensor(got, want, f"{what}: batch {i} after the restore, against the original loader's")
        expect_equal_tensor(
            out["reset"], torch.arange(B * T).view(B, T) + rank * B * T, f"rank {rank}'s first batch after reset()"
        )
        expect(
            out["epoch_after_reset"] == 0,
            f"after reset() loader.epoch is {out['epoch_after_reset']}; reset() goes back to the start of epoch 0",
        )


@data_loader
@split(produce=_restored)
def test_restored_loader_continues_exactly(outputs):
    """state_dict() (plain ints) into a fresh loader's load_state_dict(): the same next batches; reset() starts over"""
    expect_restored(outputs, 2, 3, RESTORES)


# ---------------------------------------------------------------- the checks' tiny language model

VOCAB, EMB = 48, 12


class TinyLM(nn.Module):
    """The checks' language model: (batch, T) int64 -> logits (batch, T, VOCAB), through an embedding,
    dropout and a linear head (each position on its own: enough for losses, gradients and steps).
    Its weights depend on `seed` alone."""

    def __init__(self, seed: int, dropout: float = 0.0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.tok_emb = nn.Embedding(VOCAB, EMB)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(EMB, VOCAB)

    def forward(self, idx):
        return self.head(self.drop(self.tok_emb(idx)))


def token_batch(seed: int, shape) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, shape, generator=gen), torch.randint(0, VOCAB, shape, generator=gen)


def parameters_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# ---------------------------------------------------------------- ch15.grad_accum


class Recording(nn.Module):
    """TinyLM behind a wrapper that records, at each forward, whether autocast is on (and its dtype)
    and whether it runs inside `no_sync()`."""

    def __init__(self, seed: int):
        nn.Module.__init__(self)  # also the __init__ of RecordingDDP, which is no Recording
        self.module = TinyLM(seed)
        self.require_backward_grad_sync = True
        self.forwards: list[dict] = []

    def forward(self, idx):
        self.forwards.append(
            {
                "autocast": torch.is_autocast_enabled("cpu"),
                "dtype": str(torch.get_autocast_dtype("cpu")) if torch.is_autocast_enabled("cpu") else None,
                "no_sync": not self.require_backward_grad_sync,
            }
        )
        return self.module(idx)


def recording_model(seed: int, with_no_sync: bool) -> nn.Module:
    """A Recording wrapper; with `with_no_sync`, also a DistributedDataParallel (isinstance says so) whose
    own `no_sync()` clears require_backward_grad_sync, read at forward time as DDP reads it, and which
    needs no process group."""
    if not with_no_sync:
        return Recording(seed)
    from torch.nn.parallel import DistributedDataParallel

    class RecordingDDP(DistributedDataParallel):
        __init__ = Recording.__init__
        forward = Recording.forward

    return RecordingDDP(seed)


# (micro-batches, rows each, T, grad_clip, autocast, DDP-like wrapper)
ACCUM_CASES = {
    "4 micro-batches of 2": (4, 2, 5, None, False, False),
    "3 micro-batches of 3, grad_clip=0.05": (3, 3, 4, 0.05, False, False),
    "3 micro-batches under a model with no_sync": (3, 2, 4, None, False, True),
    "1 micro-batch of 6": (1, 6, 3, None, False, True),
    "2 micro-batches, autocast bfloat16": (2, 2, 4, None, True, False),
}
ACCUM_LR = 0.5


def accum_batches(name: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    k, rows, T = ACCUM_CASES[name][:3]
    return [token_batch(100 * len(name) + i, (rows, T)) for i in range(k)]


def accumulated_of(sub, batches, clip, autocast: bool, wrapped: bool) -> dict:
    """One train_step of Recording(7) (with DDP's no_sync when `wrapped`) with SGD on `batches`, stale
    gradients left in .grad beforehand; its loss, parameters, optimizer steps and what each forward saw."""
    model = recording_model(7, with_no_sync=wrapped)
    optimizer = compiler_free(torch.optim.SGD)(model.parameters(), lr=ACCUM_LR)
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)  # left over from an earlier step: must not count
    calls = {"step": 0}
    step = optimizer.step

    def counting_step(*args, **kwargs):
        calls["step"] += 1
        return step(*args, **kwargs)

    optimizer.step = counting_step
    loss = sub.train_step(
        model, optimizer, batches, grad_clip=clip, autocast_dtype=torch.bfloat16 if autocast else None
    )
    return {
        "loss": loss,
        "loss_type": type(loss).__name__,
        "params": parameters_of(model.module),
        "steps": calls["step"],
        "forwards": model.forwards,
    }


def _accumulated(sub, name):
    _, _, _, clip, autocast, wrapped = ACCUM_CASES[name]
    return accumulated_of(sub, accum_batches(name), clip, autocast, wrapped)


def one_batch_step(batches, clip=None, scale=1.0, only_last=False, stale=None):
    """What one SGD step from TinyLM(7) gives with the gradient of the mean loss over all `batches`
    (times `scale`; of the last batch only, divided by k, when `only_last`; plus `stale` gradients),
    clipped to `clip`. Returns (parameters, mean of the micro-batch losses)."""
    model = TinyLM(7)
    k = len(batches)
    losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()) for x, y in batches]
    total = (losses[-1] / k) if only_last else sum(losses) / k
    grads = torch.autograd.grad(total * scale, list(model.parameters()))
    if stale is not None:
        grads = [g + stale for g in grads]
    if clip is not None:
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
        grads = [g * min(1.0, clip / (norm.item() + 1e-6)) for g in grads]
    with torch.no_grad():
        params = {name: p - ACCUM_LR * g for (name, p), g in zip(model.named_parameters(), grads, strict=True)}
    return params, sum(loss.item() for loss in losses) / k


def expect_params(actual, expected, what, atol=1e-5) -> None:
    expect(isinstance(actual, dict) and sorted(actual) == sorted(expected), f"{what}: the parameters are missing")
    for name in expected:
        expect_close(actual[name], expected[name], f"{what}: parameter {name}", atol=atol)


def params_match(actual, expected, atol=1e-5) -> bool:
    return all(
        isinstance(actual.get(n), torch.Tensor)
        and actual[n].shape == e.shape
        and torch.allclose(actual[n], e, atol=atol)
        for n, e in expected.items()
    )


@grad_accum
@split(produce=_accumulated)
@pytest.mark.parametrize("name", list(ACCUM_CASES))
def test_accumulated_step_equals_one_big_batch(outputs, name):
    """train_step with k micro-batches: the same SGD update and mean loss as one step on all of them"""
    _, _, _, clip, autocast, wrapped = ACCUM_CASES[name]
    expect_accumulated(outputs, accum_batches(name), clip, autocast, wrapped, f"train_step with {name}")


def expect_accumulated(outputs, batches, clip, autocast: bool, wrapped: bool, what: str) -> None:
    k = len(batches)
    expect(outputs["steps"] == 1, f"{what} called optimizer.step() {outputs['steps']} times; once per train_step")
    forwards = outputs["forwards"]
    expect(
        isinstance(forwards, list) and len(forwards) == k,
        f"{what} ran the model {len(forwards)} times; once per micro-batch",
    )
    if autocast:
        expect(
            all(f["autocast"] and f["dtype"] == "torch.bfloat16" for f in forwards),
            f"{what}: the forward did not run under torch.autocast('cpu', dtype=torch.bfloat16); wrap it in "
            "torch.autocast(x.device.type, dtype=autocast_dtype)",
        )
    else:
        expect(not any(f["autocast"] for f in forwards), f"{what}: autocast is on although autocast_dtype is None")
    if wrapped:
        got = [f["no_sync"] for f in forwards]
        want = [True] * (k - 1) + [False]
        if got == [True] * k:
            fail(
                f"{what}: every micro-batch ran inside model.no_sync(); the last must not, or DDP never averages "
                "the gradients"
            )
        expect(
            got == want,
            f"{what}: inside model.no_sync() per micro-batch: {got}; expected {want} (all but the last, whose "
            "backward all-reduces the accumulated gradients)",
        )
    loss = expect_number(outputs["loss"], f"{what}: the returned loss")
    expect(outputs["loss_type"] == "float", f"{what} returned a {outputs['loss_type']}; return a Python float")
    expected, mean_loss = one_batch_step(batches, clip=clip)
    if autocast:
        expect(
            abs(loss - mean_loss) < 0.05,
            f"{what} returned loss {loss:.4f}; the mean micro-batch loss is about {mean_loss:.4f}",
        )
        return
    for mistake, wrong in (
        (
            "the gradients of earlier steps are kept: zero them (optimizer.zero_grad(set_to_none=True)) before the "
            "first micro-batch",
            one_batch_step(batches, clip=clip, stale=3.0)[0],
        ),
        (
            "each micro-batch's loss is not divided by k: the gradients are k times those of the big batch",
            one_batch_step(batches, clip=clip, scale=k)[0],
        ),
        (
            "the gradients are zeroed inside the loop: only the last micro-batch counts",
            one_batch_step(batches, clip=clip, only_last=True)[0],
        ),
        ("the gradients are divided by k twice", one_batch_step(batches, clip=clip, scale=1 / k)[0]),
        ("the gradient norm is not clipped to grad_clip", one_batch_step(batches)[0]),
    ):
        if not params_match(outputs["params"], expected) and params_match(outputs["params"], wrong):
            fail(f"{what}: {mistake}")
    expect_params(outputs["params"], expected, f"{what}, after the step")
    if k > 1 and math.isclose(loss, mean_loss / k, rel_tol=1e-5):
        fail(
            f"{what} returned {loss:.5f}, the mean of the losses divided by k; return the plain mean of the "
            "micro-batch losses"
        )
    if k > 1 and math.isclose(loss, mean_loss * k, rel_tol=1e-5):
        fail(f"{what} returned {loss:.5f}, the sum of the micro-batch losses; return their mean")
    expect(
        math.isclose(loss, mean_loss, rel_tol=1e-5, abs_tol=1e-6),
        f"{what} returned loss {loss:.6f}; the mean of the micro-batch losses is {mean_loss:.6f}",
    )


# ---------------------------------------------------------------- ch15.init_and_groups

INIT_CFG = {
    "vocab_size": 300,
    "context_length": 64,
    "emb_dim": 64,
    "n_heads": 4,
    "n_layers": 3,
    "drop_rate": 0.0,
    "qkv_bias": True,
}
RESIDUAL = ("att.out_proj.weight", "ff.layers.2.weight")


def initialised_of(sub, cfg: dict) -> dict:
    """Statistics of every parameter of GPTModel(cfg) after init_gpt2_weights (everything set to 0.7 before)."""
    torch.manual_seed(0)
    model = sub.GPTModel(dict(cfg))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.7)  # whatever init_gpt2_weights leaves alone keeps this
    sub.init_gpt2_weights(model)
    stats = {
        name: {
            "std": p.detach().double().std().item(),
            "mean": p.detach().double().mean().item(),
            "min": p.min().item(),
            "max": p.max().item(),
            "numel": p.numel(),
        }
        for name, p in model.named_parameters()
    }
    return {"stats": stats, "tied": model.out_head.weight is model.tok_emb.weight}


def init_kind(name: str) -> str:
    if name.endswith(RESIDUAL):
        return "residual"
    if name.endswith(".bias") or name.endswith(".shift"):
        return "zeros"
    if name.endswith(".scale"):
        return "ones"
    return "weight"


def _initialised(sub):
    return initialised_of(sub, INIT_CFG)


@init_and_groups
@split(produce=_initialised)
def test_gpt2_initialisation_statistics(outputs):
    """init_gpt2_weights: N(0, 0.02) weights, residual projections 0.02 / sqrt(2 n_layers), zero biases, norms 1 and 0"""
    expect_initialised(outputs, INIT_CFG)


def expect_initialised(outputs, cfg: dict) -> None:
    expect(
        outputs["tied"] is True,
        "after init_gpt2_weights, out_head.weight is no longer tok_emb.weight: initialise "
        "the shared Parameter in place (nn.init.normal_), never assign a new one",
    )
    stats = outputs["stats"]
    n_layers = cfg["n_layers"]
    residual_std = 0.02 / math.sqrt(2 * n_layers)
    for name, s in stats.items():
        kind = init_kind(name)
        untouched = s["min"] == s["max"] == 0.7
        if kind == "zeros":
            expect(not untouched, f"init_gpt2_weights leaves {name} as it was; biases and LayerNorm shifts start at 0")
            expect(
                s["min"] == s["max"] == 0,
                f"{name} ranges over [{s['min']:.3g}, {s['max']:.3g}]; it should be all zeros",
            )
        elif kind == "ones":
            expect(not untouched, f"init_gpt2_weights leaves {name} as it was; LayerNorm scales start at 1")
            expect(
                s["min"] == s["max"] == 1, f"{name} ranges over [{s['min']:.3g}, {s['max']:.3g}]; it should be all ones"
            )
        else:
            expect(not untouched, f"init_gpt2_weights leaves {name} as it was; draw it from a normal distribution")
            want = residual_std if kind == "residual" else 0.02
            # std of n >= 2,400 normal draws: within 5% (more than 3 standard errors); the mistakes differ by 15%+.
            if not abs(s["std"] / want - 1) < 0.05:
                ratio = s["std"] / 0.02
                named = {
                    "residual": {
                        1.0: "is not scaled: the residual projections get std 0.02 / sqrt(2 * n_layers)",
                        1 / math.sqrt(n_layers): "is scaled by 1/sqrt(n_layers); GPT-2 scales by 1/sqrt(2 * n_layers) "
                        "(two residual additions per block)",
                        1 / (2 * n_layers): "is scaled by 1/(2 * n_layers); GPT-2 scales by 1/sqrt(2 * n_layers)",
                        1 / math.sqrt(2 * (n_layers + 1)): "reads n_layers wrong: n_layers = len(model.trf_blocks)",
                    },
                    "weight": {
                        1 / math.sqrt(2 * n_layers): "is scaled like a residual projection; only att.out_proj and "
                        "ff.layers[2] of each block are",
                    },
                }[kind]
                for value, mistake in named.items():
                    if abs(ratio / value - 1) < 0.05:
                        fail(f"the std of {name} {mistake}")
                fail(
                    f"{name} has std {s['std']:.4g}; expected {want:.4g} (0.02{'' if kind == 'weight' else ' / sqrt(2 * n_layers)'})"
                )
            expect(
                abs(s["mean"]) < 4 * want / math.sqrt(s["numel"]),
                f"{name} has mean {s['mean']:.3g}; GPT-2 draws from a normal distribution centred at 0",
            )
    for block in range(n_layers):
        for part in RESIDUAL:
            expect(f"trf_blocks.{block}.{part}" in stats, f"no trf_blocks.{block}.{part} in the model")


GROUP_CFG = {
    "vocab_size": 30,
    "context_length": 8,
    "emb_dim": 8,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": True,
}
GROUP_CALLS = [
    {"weight_decay": 0.1, "learning_rate": 6e-4},
    {"weight_decay": 0.05, "learning_rate": 1e-3, "betas": (0.8, 0.99), "eps": 1e-6},
    {"weight_decay": 0.1, "learning_rate": 6e-4, "device_type": "cuda"},
]


def groups_of(sub, cfg: dict, calls: list[dict]) -> list[dict]:
    """The optimizer configure_optimizers(GPTModel(cfg), **kwargs) returns, for each kwargs of `calls`, as data."""
    from autograder.no_dynamo import skip_dynamo_import

    skip_dynamo_import()
    out = []
    for kwargs in calls:
        model = sub.GPTModel(dict(cfg))
        names = {id(p): name for name, p in model.named_parameters()}
        optimizer = sub.configure_optimizers(model, **kwargs)
        groups = [
            {
                "names": [names.get(id(p), "a tensor that is not a parameter of the model") for p in group["params"]],
                **{key: group.get(key) for key in ("weight_decay", "lr", "betas", "eps")},
            }
            for group in getattr(optimizer, "param_groups", [])
        ]
        out.append(
            {
                "type": type(optimizer).__name__,
                "is_adamw": isinstance(optimizer, torch.optim.AdamW),
                "groups": groups,
                "fused": bool(getattr(optimizer, "defaults", {}).get("fused")),
                "shapes": {name: list(p.shape) for name, p in model.named_parameters()},
            }
        )
    return out


def _groups(sub):
    return groups_of(sub, GROUP_CFG, GROUP_CALLS)


@init_and_groups
@split(produce=_groups)
def test_adamw_groups_decay_matrices_only(outputs):
    """configure_optimizers: AdamW, weight decay on parameters of 2+ dimensions only, each once; fused on cuda"""
    expect_groups(outputs, GROUP_CALLS)


def expect_groups(outputs, calls: list[dict]) -> None:
    expect_list(outputs, len(calls), "the configure_optimizers results")
    for kwargs, out in zip(calls, outputs, strict=True):
        what = f"configure_optimizers(model, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        expect(out["is_adamw"], f"{what} returned a {out['type']}; return a torch.optim.AdamW")
        shapes = out["shapes"]
        decay = {n for n, s in shapes.items() if len(s) >= 2}
        seen = [n for g in out["groups"] for n in g["names"]]
        twice = sorted({n for n in seen if seen.count(n) > 1})
        expect(not twice, f"{what}: {twice[:3]} appear in more than one place (a tied parameter belongs to one group)")
        missing = sorted(set(shapes) - set(seen))
        expect(not missing, f"{what}: {missing[:3]} are in no parameter group, so AdamW never trains them")
        for group in out["groups"]:
            members = set(group["names"])
            if not members:
                continue
            if members <= decay:
                expect(
                    group["weight_decay"] == kwargs["weight_decay"],
                    f"{what}: the group of {sorted(members)[0]}, ... has weight_decay {group['weight_decay']}; "
                    f"the matrices and embeddings get {kwargs['weight_decay']}",
                )
            elif not members & decay:
                expect(
                    group["weight_decay"] == 0.0,
                    f"{what}: the group of {sorted(members)[0]}, ... (biases, LayerNorm scales and shifts) has "
                    f"weight_decay {group['weight_decay']}; they get 0.0",
                )
            else:
                mixed = sorted(members - decay)[0]
                fail(
                    f"{what}: a group mixes parameters of 2+ dimensions with {mixed} ({len(shapes[mixed])}-d); "
                    "split them by p.dim() >= 2"
                )
            expect(
                math.isclose(group["lr"], kwargs["learning_rate"]),
                f"{what}: a group has lr {group['lr']}; expected {kwargs['learning_rate']}",
            )
            betas = tuple(kwargs.get("betas", (0.9, 0.95)))
            expect(tuple(group["betas"]) == betas, f"{what}: betas {group['betas']}; expected {betas}")
            eps = kwargs.get("eps", 1e-8)
            expect(group["eps"] == eps, f"{what}: eps {group['eps']}; expected {eps}")
        on_cuda = kwargs.get("device_type") == "cuda"
        expect(
            out["fused"] == on_cuda,
            f"{what}: fused={out['fused']}; use fused=True when device_type is 'cuda' (and the default otherwise)",
        )


# ---------------------------------------------------------------- ch15.flops


def params_by_hand(vocab: int, emb: int, layers: int, qkv_bias: bool) -> int:
    """GPTModel's parameters but the position embedding, the tied head once, listed tensor by tensor."""
    block = [
        (emb, emb),
        (emb, emb),
        (emb, emb),  # W_query, W_key, W_value
        (emb, emb),
        (emb,),  # out_proj
        (4 * emb, emb),
        (4 * emb,),
        (emb, 4 * emb),
        (emb,),  # ff.layers[0], ff.layers[2]
        (emb,),
        (emb,),
        (emb,),
        (emb,),  # norm1, norm2: scale and shift
    ] + ([(emb,)] * 3 if qkv_bias else [])
    per_block = sum(math.prod(shape) for shape in block)
    return vocab * emb + layers * per_block + 2 * emb


GPT2_124M = {
    "vocab_size": 50257,
    "context_length": 1024,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.0,
    "qkv_bias": True,
}
GPT2_1558M = {**GPT2_124M, "emb_dim": 1600, "n_heads": 25, "n_layers": 48}
FLOPS_CFGS = {
    "GPT-2 124M": GPT2_124M,
    "GPT-2 1558M": GPT2_1558M,
    "GPT-2 124M without qkv bias, context 256": {**GPT2_124M, "qkv_bias": False, "context_length": 256},
    "a small config": {
        "vocab_size": 97,
        "context_length": 24,
        "emb_dim": 20,
        "n_heads": 5,
        "n_layers": 3,
        "drop_rate": 0.1,
        "qkv_bias": False,
    },
}
# Worked by hand: 124M has 124,439,808 parameters with the position embedding (1024 x 768), tied head once.
GPT2_124M_N = 124_439_808 - 1024 * 768
MFU_CASES = [(6e8, 1.5e5, 312e12), (1.0e9, 2.0e4, 1.0e14)]


def flop_counts_of(sub, cfgs: dict, mfu_cases) -> dict:
    out = {}
    for name, cfg in cfgs.items():
        n = sub.num_params_for_flops(dict(cfg))
        out[name] = {
            "n": n,
            "flops": sub.flops_per_token(dict(cfg), n),
            "flops_at_n": sub.flops_per_token(dict(cfg), 1000),
        }
    out["mfu"] = [sub.estimate_mfu(*case) for case in mfu_cases]
    return out


def _flop_counts(sub):
    return flop_counts_of(sub, FLOPS_CFGS, MFU_CASES)


def attention_term(cfg) -> int:
    return 12 * cfg["n_layers"] * cfg["n_heads"] * (cfg["emb_dim"] // cfg["n_heads"]) * cfg["context_length"]


@flops
@split(produce=_flop_counts)
def test_flops_per_token_match_hand_counts(outputs, recorded):
    """num_params_for_flops and flops_per_token against hand counts for GPT-2 124M and 1558M; estimate_mfu"""
    built = recorded["gpt2_124m_parameters"] - recorded["gpt2_124m_position_embedding"]
    expect(params_by_hand(50257, 768, 12, True) == GPT2_124M_N == built, "the check's own count is off")
    expect_flops(outputs, FLOPS_CFGS, MFU_CASES)


def expect_flops(outputs, cfgs: dict, mfu_cases) -> None:
    for name, cfg in cfgs.items():
        out = outputs[name]
        n = expect_number(out["n"], f"num_params_for_flops({name})")
        want = params_by_hand(cfg["vocab_size"], cfg["emb_dim"], cfg["n_layers"], cfg["qkv_bias"])
        if n != want:
            emb = cfg["emb_dim"]
            for mistake, wrong in (
                ("counts the position embedding (a lookup, no FLOPs)", want + cfg["context_length"] * emb),
                ("counts the tied output head a second time", want + cfg["vocab_size"] * emb),
                (
                    "leaves out the token embedding (tied to the head, whose product costs FLOPs)",
                    want - cfg["vocab_size"] * emb,
                ),
                (
                    "counts the position embedding and the head a second time",
                    want + (cfg["context_length"] + cfg["vocab_size"]) * emb,
                ),
                ("leaves out the LayerNorm parameters", want - (4 * cfg["n_layers"] + 2) * emb),
                ("leaves out the biases", want - cfg["n_layers"] * (6 * emb + (3 * emb if cfg["qkv_bias"] else 0))),
                (
                    "ignores qkv_bias (the query, key and value biases)",
                    params_by_hand(cfg["vocab_size"], emb, cfg["n_layers"], not cfg["qkv_bias"]),
                ),
            ):
                if n == wrong:
                    fail(f"num_params_for_flops({name}) {mistake}")
            fail(
                f"num_params_for_flops({name}) is {n:,.0f}; expected {want:,} (all parameters but pos_emb, the tied "
                "head once)"
            )
        for key, count in (("flops", want), ("flops_at_n", 1000)):
            got = expect_number(out[key], f"flops_per_token({name}, {count})")
            expected = 6 * count + attention_term(cfg)
            if not math.isclose(got, expected, rel_tol=1e-9):
                for mistake, wrong in (
                    ("leaves out the attention term 12 * n_layers * n_heads * head_dim * T", 6 * count),
                    (
                        "counts the forward pass only (2N + attention / 3): training costs forward and backward",
                        2 * count + attention_term(cfg) / 3,
                    ),
                    (
                        "uses 6 * n_layers * ... for the attention term (forward and backward of QK^T and AV is 12)",
                        6 * count + attention_term(cfg) / 2,
                    ),
                    ("uses 2N for the weights; forward and backward cost 6N", 2 * count + attention_term(cfg)),
                    ("takes T squared in the attention term", 6 * count + attention_term(cfg) * cfg["context_length"]),
                ):
                    if math.isclose(got, wrong, rel_tol=1e-9):
                        fail(f"flops_per_token({name}) {mistake}")
                fail(f"flops_per_token({name}, num_params={count:,}) is {got:,.0f}; expected {expected:,}")
    expect_list(outputs["mfu"], len(mfu_cases), "the estimate_mfu results")
    for (per_token, tokens_per_s, peak), got in zip(mfu_cases, outputs["mfu"], strict=True):
        value = expect_number(got, "estimate_mfu's result")
        expected = per_token * tokens_per_s / peak
        expect(
            math.isclose(value, expected, rel_tol=1e-9),
            f"estimate_mfu({per_token:g}, {tokens_per_s:g}, {peak:g}) is {value:.4g}; expected {expected:.4g} "
            "(a fraction: flops_per_token * tokens_per_second / peak_flops)",
        )


# ---------------------------------------------------------------- ch15.checkpoint


class CheckLoader:
    """A loader with a position: batch i is token_batch(1000 * seed + i), (B, T) = (3, 4)."""

    def __init__(self, seed: int):
        self.seed, self.position = seed, 0

    def next_batch(self):
        self.position += 1
        return token_batch(1000 * self.seed + self.position - 1, (3, 4))

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


def ddp_stand_in(module: nn.Module) -> nn.Module:
    """`module` in a DistributedDataParallel that needs no process group: a DDP (isinstance says so)
    that keeps the model as `.module` (state dict keys `module.*`) and runs it on one process."""
    from torch.nn.parallel import DistributedDataParallel

    class DDPStandIn(DistributedDataParallel):
        def __init__(self, module):
            nn.Module.__init__(self)
            self.module = module

        def forward(self, idx):
            return self.module(idx)

    return DDPStandIn(module)


class CompiledStandIn(nn.Module):
    """Keeps the model as `._orig_mod`, as torch.compile's module does (state dict keys `_orig_mod.*`)."""

    def __init__(self, module):
        super().__init__()
        self._orig_mod = module

    def forward(self, idx):
        return self._orig_mod(idx)


WRAPPERS = {"a plain model": None, "a DDP-wrapped model": ddp_stand_in, "a compiled model": CompiledStandIn}
SAVE_AT, TOTAL_STEPS = 3, 6
PLAIN_NAMES = ["tok_emb.weight", "head.weight", "head.bias"]


def check_steps(model, optimizer, loader, start: int, stop: int) -> list[float]:
    """Steps start..stop-1 of a run whose every step draws on torch's (dropout), numpy's and Python's generators."""
    losses = []
    for step in range(start, stop):
        inputs, targets = loader.next_batch()
        lr = 0.01 * (1 + random.random()) * (1 + float(np.random.rand())) / (1 + step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def generator_states() -> dict:
    return {
        "torch": torch.random.get_rng_state(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "python": list(random.getstate()[1]),
    }


def new_run(wrapper, seed: int, dropout: float):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    model = TinyLM(seed, dropout=dropout)
    model = wrapper(model) if wrapper else model
    optimizer = compiler_free(torch.optim.AdamW)(model.parameters(), lr=0.01, weight_decay=0.1)
    return model, optimizer, CheckLoader(5)


def plain_parameters(model) -> dict:
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = model._orig_mod if hasattr(model, "_orig_mod") else model.module
    return parameters_of(model)


def state_dict_keys(saved) -> list[list[str]]:
    """The key lists of the dicts in a checkpoint that look like the model's state dict."""
    found = []
    if isinstance(saved, dict):
        if any(str(key).endswith("head.bias") for key in saved):
            found.append([str(key) for key in saved])
        for value in saved.values():
            found.extend(state_dict_keys(value))
    return found


def resumed_of(sub, wrapper_name: str, save_at: int, total_steps: int, dropout: float) -> dict:
    """A run of `total_steps` steps that saves at `save_at`, and a fresh run resumed from that checkpoint:
    losses, weights, generator states and what was written where."""
    from autograder.no_dynamo import skip_dynamo_import

    skip_dynamo_import()
    wrapper = WRAPPERS[wrapper_name]
    with scratch_dir("ch15-checkpoint-") as folder:
        path = folder / "run" / "ckpt.pt"
        saves = []
        original_save = torch.save

        def recording_save(obj, f, *args, **kwargs):
            saves.append(str(f))
            return original_save(obj, f, *args, **kwargs)

        model, optimizer, loader = new_run(wrapper, 1, dropout)
        first = check_steps(model, optimizer, loader, 0, save_at)
        saved_states = generator_states()
        saved_parameters = plain_parameters(model)
        (folder / "run").mkdir()
        with mock.patch.object(torch, "save", recording_save):
            sub.save_checkpoint(str(path), model, optimizer, save_at, loader, rank=0)
        written = sorted(p.name for p in (folder / "run").iterdir())
        keys = state_dict_keys(torch.load(path, weights_only=False)) if path.exists() else []
        rest = check_steps(model, optimizer, loader, save_at, total_steps)
        final = plain_parameters(model)

        other = folder / "rank1" / "ckpt.pt"
        (folder / "rank1").mkdir()
        sub.save_checkpoint(str(other), model, optimizer, save_at, loader, rank=1)
        rank1_files = sorted(p.name for p in (folder / "rank1").iterdir())

        model_b, optimizer_b, loader_b = new_run(wrapper, 2, dropout)
        check_steps(model_b, optimizer_b, loader_b, 0, 1)  # the fresh run is somewhere else entirely
        start = sub.load_checkpoint(str(path), model_b, optimizer_b, loader_b)
        loaded_states = generator_states()
        loaded_parameters = plain_parameters(model_b)
        loaded_position = loader_b.position
        optimizer_steps = [int(s.get("step", 0)) for s in optimizer_b.state_dict()["state"].values()]
        resumed = check_steps(model_b, optimizer_b, loader_b, save_at, total_steps)
        return {
            "losses": first + rest,
            "final": final,
            "saves": [str(Path(f).relative_to(folder)) if Path(f).is_relative_to(folder) else f for f in saves],
            "path": str(path.relative_to(folder)),
            "written": written,
            "keys": keys,
            "rank1_files": rank1_files,
            "start": start,
            "saved_states": saved_states,
            "loaded_states": loaded_states,
            "saved_parameters": saved_parameters,
            "loaded_parameters": loaded_parameters,
            "loaded_position": loaded_position,
            "optimizer_steps": optimizer_steps,
            "resumed": resumed,
            "resumed_final": plain_parameters(model_b),
        }


def _resumed(sub, wrapper_name):
    return resumed_of(sub, wrapper_name, SAVE_AT, TOTAL_STEPS, 0.3)


@checkpoint
@split(produce=_resumed)
@pytest.mark.parametrize("wrapper_name", list(WRAPPERS))
def test_resumed_run_retraces_the_uninterrupted_one(outputs, wrapper_name):
    """save at step 3, load into a fresh run: the same losses and weights as the run that never stopped"""
    expect_resumed(outputs, wrapper_name, SAVE_AT, TOTAL_STEPS)


def expect_resumed(outputs, wrapper_name: str, save_at: int, total_steps: int) -> None:
    what = f"a checkpoint of {wrapper_name} at step {save_at}"
    expect(
        outputs["rank1_files"] == [],
        f"save_checkpoint with rank=1 wrote {outputs['rank1_files']}; only rank 0 "
        "writes (all ranks hold the same weights)",
    )
    name = Path(outputs["path"]).name
    expect(name in outputs["written"], f"save_checkpoint wrote no file at the path it was given ({what})")
    expect(
        outputs["written"] == [name],
        f"save_checkpoint left {outputs['written']} in the folder; only the checkpoint "
        "itself should remain (rename the temporary file onto the path)",
    )
    expect(
        outputs["saves"] and outputs["path"] not in outputs["saves"][-1:],
        "save_checkpoint torch.saves straight onto the path: a run killed while it writes leaves a broken checkpoint; "
        "save to a temporary file in the same folder, then os.replace it onto the path",
    )
    keys = outputs["keys"]
    expect(keys, f"{what}: the file holds no model state dict (the model's state_dict())")
    for found in keys:
        if found and all(k.startswith(("module.", "_orig_mod.")) for k in found):
            fail(
                f"{what}: the model's state dict has keys like {found[0]!r}; save the unwrapped model's state dict "
                "(model.module for DDP, model._orig_mod for torch.compile) so that it loads into any model"
            )
    expect(
        any(sorted(found) == sorted(PLAIN_NAMES) for found in keys),
        f"{what}: the saved state dict has keys {keys[0][:4]}; expected {PLAIN_NAMES}",
    )
    start = outputs["start"]
    expect(
        start == save_at,
        f"load_checkpoint returned {start!r}; return the saved step ({save_at}: the number of steps "
        "done, the index of the next step)",
    )
    for name_, got in outputs["loaded_parameters"].items():
        expect_close(
            got, outputs["saved_parameters"][name_], f"{what}: parameter {name_} after load_checkpoint", atol=0
        )
    expect(
        outputs["loaded_position"] == save_at,
        f"{what}: after load_checkpoint the loader is at batch "
        f"{outputs['loaded_position']}, not {save_at}: restore it with loader.load_state_dict",
    )
    expect(
        all(s == save_at for s in outputs["optimizer_steps"]) and outputs["optimizer_steps"],
        f"{what}: the optimizer's state was not restored (Adam's moments and step count): optimizer.load_state_dict",
    )
    for generator, label in (
        ("torch", "torch's (torch.set_rng_state: dropout)"),
        ("numpy", "numpy's"),
        ("python", "Python's random"),
    ):
        saved, loaded = outputs["saved_states"][generator], outputs["loaded_states"][generator]
        same = torch.equal(saved, loaded) if isinstance(saved, torch.Tensor) else saved == loaded
        expect(
            same,
            f"{what}: after load_checkpoint, {label} random generator is not where it was when the "
            "checkpoint was saved; save and restore its state",
        )
    resumed = outputs["resumed"]
    expect_list(resumed, total_steps - save_at, f"{what}: the resumed losses")
    expect_close(
        torch.tensor(resumed),
        torch.tensor(outputs["losses"][save_at:]),
        f"{what}: the losses of steps {save_at}..{total_steps - 1} after resuming",
        atol=0,
        rtol=0,
    )
    for name_, got in outputs["resumed_final"].items():
        expect_close(got, outputs["final"][name_], f"{what}: parameter {name_} at the end", atol=0, rtol=0)


# ---------------------------------------------------------------- ch15.evaluation


class Watched(TinyLM):
    """TinyLM that records, at each forward, whether it is in training mode and whether autograd is on."""

    def __init__(self, seed: int, dropout: float):
        super().__init__(seed, dropout)
        self.seen: list[dict] = []

    def forward(self, idx):
        self.seen.append({"training": self.training, "grad": torch.is_grad_enabled()})
        return super().forward(idx)


EVAL_STEPS = 4


EVAL_CASES = ((3, True, EVAL_STEPS), (4, False, EVAL_STEPS))  # (seed, training mode, steps)


def evaluated_of(sub, cases) -> list[dict]:
    out = []
    for seed, training, steps in cases:
        torch.manual_seed(seed)
        model = Watched(seed, dropout=0.5)
        model.train(training)
        loader = CheckLoader(seed)
        value = sub.evaluate_loss(model, loader, steps)
        out.append(
            {
                "value": value,
                "type": type(value).__name__,
                "seen": model.seen,
                "after": model.training,
                "position": loader.position,
            }
        )
    return out


def expected_eval_loss(seed: int, loader_seeds, steps: int = EVAL_STEPS):
    """The mean over ranks (one loader seed each) of the mean cross-entropy of TinyLM(seed) in eval mode."""
    model = TinyLM(seed, dropout=0.5).eval()
    means = []
    with torch.no_grad():
        for loader_seed in loader_seeds:
            loader = CheckLoader(loader_seed)
            losses = []
            for _ in range(steps):
                inputs, targets = loader.next_batch()
                losses.append(F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()).item())
            means.append(sum(losses) / steps)
    return sum(means) / len(means), means


def _evaluated(sub):
    return evaluated_of(sub, EVAL_CASES)


@evaluation
@split(produce=_evaluated)
def test_validation_loss_in_eval_mode_without_gradients(outputs):
    """evaluate_loss: the mean loss of `steps` batches, in eval mode, under no_grad, the mode restored"""
    expect_evaluated(outputs, EVAL_CASES)


def expect_evaluated(outputs, cases) -> None:
    expect_list(outputs, len(cases), "the evaluate_loss results")
    for (seed, training, steps), out in zip(cases, outputs, strict=True):
        what = f"evaluate_loss on a model in {'training' if training else 'eval'} mode"
        seen = out["seen"]
        expect(
            len(seen) == steps and out["position"] == steps,
            f"{what} ran the model {len(seen)} times and took {out['position']} batches; steps={steps}",
        )
        expect(
            not any(s["training"] for s in seen),
            f"{what}: the model ran in training mode (dropout on); call model.eval() first",
        )
        expect(
            not any(s["grad"] for s in seen), f"{what}: the forward ran with autograd on; wrap it in torch.no_grad()"
        )
        expect(
            out["after"] == training,
            f"{what}: afterwards the model is in {'training' if out['after'] else 'eval'} "
            "mode; put it back in the mode it was in (remember model.training first)",
        )
        value = expect_number(out["value"], f"{what}: the result")
        expect(out["type"] == "float", f"{what} returned a {out['type']}; return a Python float (.item())")
        expected, _ = expected_eval_loss(seed, [seed], steps)
        if steps > 1 and math.isclose(value, expected * steps, rel_tol=1e-5):
            fail(f"{what} returned the sum of the batch losses; return their mean")
        expect(
            math.isclose(value, expected, rel_tol=1e-5),
            f"{what} is {value:.6f}; the mean cross-entropy over the {steps} batches is {expected:.6f}",
        )


def evaluated_in_ranks_of(sub, seed: int, loader_seeds, steps: int):
    """evaluate_loss of TinyLM(seed) in two gloo processes, rank r on CheckLoader(loader_seeds[r])."""

    def work(rank: int, progress: dict) -> dict:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
        try:
            progress["stage"] = f"evaluate_loss on rank {rank}"
            value = sub.evaluate_loss(TinyLM(seed, dropout=0.5), CheckLoader(loader_seeds[rank]), steps)
        finally:
            torch.distributed.destroy_process_group()
        return {"value": value}

    return run_processes(work, 2, RANKS_DEADLINE_S)


def _evaluated_in_ranks(sub):
    return evaluated_in_ranks_of(sub, 6, [10, 11], EVAL_STEPS)


@evaluation
@split(produce=_evaluated_in_ranks)
def test_validation_loss_is_averaged_over_ranks(outputs):
    """evaluate_loss in two gloo processes: both ranks return the mean of the two ranks' losses"""
    expect_averaged_over_ranks(outputs, 6, [10, 11], EVAL_STEPS)


def expect_averaged_over_ranks(outputs, seed: int, loader_seeds, steps: int) -> None:
    data = expect_ranks_finished(outputs, 2, "evaluate_loss in two processes")
    expected, means = expected_eval_loss(seed, loader_seeds, steps)
    for rank, report in enumerate(data):
        value = expect_number(report.get("value") if isinstance(report, dict) else None, f"rank {rank}'s loss")
        if math.isclose(value, means[rank], rel_tol=1e-5):
            fail(
                f"under torch.distributed, evaluate_loss on rank {rank} returns its own loss; all-reduce the mean "
                "(sum, then divide by the world size) so that every rank reports the same"
            )
        if math.isclose(value, sum(means), rel_tol=1e-5):
            fail(
                "under torch.distributed, evaluate_loss returns the sum of the ranks' losses; divide by the world size"
            )
        expect(
            math.isclose(value, expected, rel_tol=1e-5),
            f"rank {rank}'s evaluate_loss is {value:.6f}; the mean of both ranks' losses is {expected:.6f}",
        )


# A HellaSwag-format file: one JSON object per line, the fields of the validation set's.
HELLASWAG_JSONL = "\n".join(
    json.dumps(example)
    for example in (
        {
            "ind": 24,
            "activity_label": "Roof shingle removal",
            "ctx_a": "A man is sitting on a roof.",
            "ctx_b": "he",
            "ctx": "A man is sitting on a roof. he",
            "split": "val",
            "split_type": "indomain",
            "label": 3,
            "endings": [
                "is using wrap to wrap a pair of skis.",
                "is ripping level tiles off.",
                "is holding a rubik's cube.",
                "starts pulling up roofing on a roof.",
            ],
            "source_id": "x",
        },
        {
            "ind": 92,
            "activity_label": "Baking",
            "ctx_a": "The baker sets the dough down.",
            "ctx_b": "she",
            "ctx": "The baker sets the dough down. she",
            "split": "val",
            "split_type": "indomain",
            "label": 0,
            "endings": [
                "kneads it with both hands.",
                "flies.",
                "puts on a helmet and rides off down the hill quickly.",
                "sings",
            ],
            "source_id": "y",
        },
        {
            "ind": 7,
            "activity_label": "Sailing",
            "ctx_a": "Two friends push a boat into the water.",
            "ctx_b": "they",
            "ctx": "Two friends push a boat into the water. they",
            "split": "val",
            "split_type": "zeroshot",
            "label": 2,
            "endings": [
                "eat.",
                "paint the fence, then the garage, then the house.",
                "climb in and raise the sail.",
                "laugh",
            ],
            "source_id": "z",
        },
    )
)


def render_by_hand(example: dict, encoder) -> tuple[torch.Tensor, torch.Tensor]:
    ctx = encoder.encode(example["ctx"])
    rows = [(ctx, encoder.encode(" " + ending)) for ending in example["endings"]]
    width = max(len(c) + len(e) for c, e in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (c, e) in enumerate(rows):
        tokens[i, : len(c) + len(e)] = torch.tensor(c + e)
        mask[i, len(c) : len(c) + len(e)] = 1
    return tokens, mask


def rendered_of(sub, jsonl: str, encoder) -> list:
    """render_example of every example of a HellaSwag-format file holding `jsonl`."""
    with scratch_dir("ch15-hellaswag-") as folder:
        path = folder / "hellaswag_val.jsonl"
        path.write_text(jsonl + "\n", encoding="utf-8")
        examples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [list(sub.render_example(example, encoder)) for example in examples]


def _rendered(sub, gpt2):
    return rendered_of(sub, HELLASWAG_JSONL, gpt2)


@evaluation
@split(produce=_rendered)
def test_hellaswag_examples_render_as_four_masked_rows(outputs, gpt2, recorded):
    """render_example: rows of context + ' ' + ending tokens, zero-padded; the mask on the ending only"""
    expect_rendered(outputs, HELLASWAG_JSONL, gpt2)
    for i, (out, reference) in enumerate(zip(outputs, recorded["hellaswag"], strict=True)):
        expect_equal_tensor(out[0], reference[0], f"render_example of example {i}: tokens, against the recorded ones")
        expect_equal_tensor(
            out[1].long(), reference[1], f"render_example of example {i}: mask, against the recorded one"
        )


def expect_rendered(outputs, jsonl: str, gpt2) -> None:
    examples = [json.loads(line) for line in jsonl.splitlines()]
    expect_list(outputs, len(examples), "the render_example results")
    for i, (example, out) in enumerate(zip(examples, outputs, strict=True)):
        what = f"render_example of example {i} of the HellaSwag-format file"
        expect(isinstance(out, list) and len(out) == 3, f"{what} should return (tokens, mask, label)")
        tokens, mask, label = out
        expected_tokens, expected_mask = render_by_hand(example, gpt2)
        expect_tensor(tokens, f"{what}: tokens", dtype=torch.int64)
        without_space = render_by_hand(
            {**example, "endings": [e.lstrip() for e in example["endings"]]}, _NoSpace(gpt2)
        )[0]
        if (
            tokens.shape == without_space.shape
            and torch.equal(tokens, without_space)
            and not torch.equal(tokens, expected_tokens)
        ):
            fail(f"{what}: the endings are tokenized without the space in front (encode(' ' + ending))")
        expect_equal_tensor(tokens, expected_tokens, f"{what}: tokens (context, then ' ' + ending, zero-padded)")
        expect_tensor(mask, f"{what}: mask", shape=tuple(expected_mask.shape))
        row_ends = torch.tensor(
            [len(gpt2.encode(example["ctx"])) + len(gpt2.encode(" " + e)) for e in example["endings"]]
        )
        whole_rows = (torch.arange(mask.shape[1]) < row_ends[:, None]).long()  # context and ending
        if torch.equal(mask.long(), whole_rows):
            fail(f"{what}: the mask covers the context too; it is 1 on the ending's tokens only")
        expect_equal_tensor(mask.long(), expected_mask, f"{what}: mask (1 on the ending's tokens)")
        expect(
            label == example["label"] and isinstance(label, int),
            f"{what}: label {label!r}; expected the int {example['label']}",
        )


class _NoSpace:
    """An encoder whose encode drops a leading space: what `encode(ending)` gives instead of `encode(' ' + ending)`."""

    def __init__(self, encoder):
        self.encoder = encoder

    def encode(self, text):
        return self.encoder.encode(text[1:] if text.startswith(" ") else text)


def scoring_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four rows: a shared context of 3 tokens, endings of 1 to 6 tokens, zero padding; large random logits."""
    gen = torch.Generator().manual_seed(seed)
    lengths = [1, 6, 2, 4] if seed % 2 else [5, 1, 3, 2]
    width = 3 + max(lengths)
    tokens = torch.zeros(4, width, dtype=torch.long)
    mask = torch.zeros(4, width, dtype=torch.long)
    context = torch.randint(1, VOCAB, (3,), generator=gen)
    for i, length in enumerate(lengths):
        tokens[i, :3] = context
        tokens[i, 3 : 3 + length] = torch.randint(1, VOCAB, (length,), generator=gen)
        mask[i, 3 : 3 + length] = 1
    logits = torch.randn(4, width, VOCAB, generator=gen) * 3
    return tokens, mask, logits


SCORING_SEEDS = list(range(12))


def score_rows(tokens, mask, logits, shift: bool = True, mean: bool = True, use_mask: bool = True):
    """Per row: the cross-entropy of the masked tokens, averaged (or summed), with logits[t] predicting token t+1."""
    if shift:
        logits, tokens, mask = logits[:, :-1], tokens[:, 1:], mask[:, 1:]
    losses = F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), reduction="none").view(tokens.shape)
    weights = mask.float() if use_mask else torch.ones_like(losses)
    total = (losses * weights).sum(dim=1)
    return total / weights.sum(dim=1) if mean else total


def picked_of(sub, seeds) -> list:
    return [sub.most_likely_ending(*scoring_case(seed)) for seed in seeds]


def _picked(sub):
    return picked_of(sub, SCORING_SEEDS)


@evaluation
@split(produce=_picked)
def test_ending_with_lowest_mean_loss_is_picked(outputs):
    """most_likely_ending: the row with the lowest mean cross-entropy over its masked (shifted) tokens"""
    expect_picked(outputs, SCORING_SEEDS)


def expect_picked(outputs, seeds) -> None:
    expect_list(outputs, len(seeds), "the most_likely_ending results")
    for got in outputs:
        expect(isinstance(got, int), f"most_likely_ending returned a {type(got).__name__}; return an int")
    picks = list(outputs)
    expected = [int(score_rows(*scoring_case(seed)).argmin()) for seed in seeds]
    if picks != expected:
        for mistake, kwargs, pick in (
            (
                "sums the losses of the ending's tokens instead of averaging them (long endings lose)",
                {"mean": False},
                "argmin",
            ),
            (
                "compares logits[t] with token t; the logits at position t predict token t + 1",
                {"shift": False},
                "argmin",
            ),
            ("averages over every position, not only the ending's (use the mask)", {"use_mask": False}, "argmin"),
            ("picks the highest loss (argmax); the answer is the lowest loss", {}, "argmax"),
        ):
            wrong = [int(getattr(score_rows(*scoring_case(seed), **kwargs), pick)()) for seed in seeds]
            if picks == wrong:
                fail(f"most_likely_ending {mistake}")
        bad = next(i for i, (a, b) in enumerate(zip(picks, expected, strict=True)) if a != b)
        fail(
            f"most_likely_ending picks ending {picks[bad]} in case {bad}; the lowest mean loss over the ending's "
            f"tokens is ending {expected[bad]}"
        )


# ---------------------------------------------------------------- ch15.ddp

DDP_STEPS, DDP_ACCUM, DDP_LR = 2, 2, 0.5
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK")


def ddp_batch(step: int, rank: int, micro: int):
    return token_batch(500 + 100 * step + 10 * rank + micro, (2, 3))


def trained_in_ranks_of(sub, steps: int, accum: int, lr: float):
    """setup_distributed, wrap_model, `steps` SGD steps of `accum` micro-batches (no_sync for all but the
    last) and cleanup_distributed, in two gloo processes; each rank reports what it saw."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    def work(rank: int, progress: dict) -> dict:
        # Two machines with one process each: LOCAL_RANK is 0 on both.
        os.environ.update({"RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1"})
        progress["stage"] = f"setup_distributed() on rank {rank}"
        returned = sub.setup_distributed()
        joined = torch.distributed.is_initialized()
        backend = torch.distributed.get_backend() if joined else None
        progress["stage"] = f"wrap_model on rank {rank}"
        model = TinyLM(8 + rank)  # DDP starts every rank from rank 0's weights
        wrapped = sub.wrap_model(model, returned[3] if isinstance(returned, tuple) and len(returned) == 4 else "cpu", 2)
        is_ddp = isinstance(wrapped, DistributedDataParallel)
        reductions = []
        if is_ddp:
            wrapped.register_comm_hook(None, lambda state, bucket: reductions.append(1) or allreduce_hook(None, bucket))
        progress["stage"] = f"training the wrapped model on rank {rank}"
        optimizer = compiler_free(torch.optim.SGD)(wrapped.parameters(), lr=lr)
        for step in range(steps):
            optimizer.zero_grad()
            for micro in range(accum):
                x, y = ddp_batch(step, rank, micro)
                last = micro == accum - 1
                with contextlib.nullcontext() if last or not is_ddp else wrapped.no_sync():
                    (F.cross_entropy(wrapped(x).flatten(0, 1), y.flatten()) / accum).backward()
            optimizer.step()
        wrapped_type = type(wrapped).__name__
        del wrapped, optimizer  # DDP's reducer goes before its process group (else its destructor can hang)
        gc.collect()
        progress["stage"] = f"cleanup_distributed() on rank {rank}"
        sub.cleanup_distributed()
        return {
            "returned": [str(v) for v in returned] if isinstance(returned, tuple) else type(returned).__name__,
            "joined": joined,
            "backend": str(backend),
            "is_ddp": is_ddp,
            "wrapped_type": wrapped_type,
            "reductions": len(reductions),
            "final": parameters_of(model),
            "after_cleanup": torch.distributed.is_initialized(),
        }

    return run_processes(work, 2, RANKS_DEADLINE_S)


def _trained_in_ranks(sub):
    return trained_in_ranks_of(sub, DDP_STEPS, DDP_ACCUM, DDP_LR)


def one_process_accumulation(steps: int, accum: int, lr: float) -> dict:
    """TinyLM(8) after steps SGD steps, each over both ranks' micro-batches: accumulation 2 * accum."""
    model = TinyLM(8)
    for step in range(steps):
        batches = [ddp_batch(step, rank, micro) for rank in range(2) for micro in range(accum)]
        loss = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten()) for x, y in batches) / len(batches)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= lr * g
    return parameters_of(model)


@ddp
@split(produce=_trained_in_ranks)
def test_two_ranks_match_one_process_accumulating_twice_as_much(outputs):
    """two gloo ranks, accumulation 2 each: the weights of one process accumulating 4; gloo, DDP, cleanup"""
    expect_trained_in_ranks(outputs, DDP_STEPS, DDP_ACCUM, DDP_LR)


def expect_trained_in_ranks(outputs, steps: int, accum: int, lr: float) -> None:
    data = expect_ranks_finished(outputs, 2, "setup_distributed, wrap_model and training in two processes")
    for rank, report in enumerate(data):
        returned = report["returned"]
        expect(
            isinstance(returned, list) and len(returned) == 4,
            f"setup_distributed on rank {rank} returned {returned}; return (rank, local_rank, world_size, device)",
        )
        expect(
            returned[:3] == [str(rank), "0", "2"],
            f"under torchrun (RANK={rank}, LOCAL_RANK=0, WORLD_SIZE=2) setup_distributed returned "
            f"{tuple(returned[:3])} for (rank, local_rank, world_size); read them from the environment",
        )
        expect(
            returned[3] == "cpu",
            f"setup_distributed on a machine without CUDA returned device {returned[3]!r} under torchrun; use 'cpu'",
        )
        expect(
            report["joined"],
            f"setup_distributed on rank {rank} did not join the process group (dist.init_process_group)",
        )
        expect(
            report["backend"] == "gloo",
            f"setup_distributed chose the {report['backend']} backend without CUDA; use gloo (nccl needs GPUs)",
        )
        expect(
            report["is_ddp"],
            f"wrap_model(model, 'cpu', 2) returned a {report['wrapped_type']}; wrap the model in "
            "DistributedDataParallel when world_size > 1",
        )
        expect(
            report["reductions"] == steps,
            f"rank {rank} ran {report['reductions']} gradient all-reduces over {steps} steps; expected one per step",
        )
        expect(
            not report["after_cleanup"],
            f"after cleanup_distributed() rank {rank} is still in the process group; call dist.destroy_process_group()",
        )
    expected = one_process_accumulation(steps, accum, lr)
    for rank, report in enumerate(data):
        for name, want in expected.items():
            expect_close(
                report["final"].get(name),
                want,
                f"rank {rank}'s {name} after {steps} steps, against one process accumulating {2 * accum} micro-batches",
                atol=1e-5,
            )


def _on_cuda(sub):
    """setup_distributed under torchrun as rank 3 on a machine's GPU 1, with CUDA and the process group
    stood in for: what it asks of them."""
    calls = {"set_device": [], "init": []}
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}

    def init_process_group(*args, **kwargs):
        calls["init"].append(str(kwargs.get("backend", args[0] if args else None)))

    with (
        mock.patch.dict(os.environ, env),
        mock.patch.object(torch.cuda, "is_available", lambda: True),
        mock.patch.object(torch.cuda, "device_count", lambda: 2),
        mock.patch.object(torch.cuda, "set_device", lambda device: calls["set_device"].append(str(device))),
        mock.patch.object(torch.distributed, "init_process_group", init_process_group),
    ):
        returned = sub.setup_distributed()
    return {
        "returned": [str(v) for v in returned] if isinstance(returned, tuple) else type(returned).__name__,
        **calls,
    }


@ddp
@split(produce=_on_cuda)
def test_under_torchrun_with_cuda_each_rank_takes_its_own_gpu(outputs):
    """setup_distributed with CUDA (stood in for): nccl, device cuda:LOCAL_RANK, made current with set_device"""
    returned = outputs["returned"]
    what = "setup_distributed under torchrun with CUDA (RANK=3, LOCAL_RANK=1, WORLD_SIZE=4)"
    expect(isinstance(returned, list) and len(returned) == 4, f"{what} returned {returned}")
    expect(returned[:3] == ["3", "1", "4"], f"{what} returned {tuple(returned[:3])} for (rank, local_rank, world_size)")
    expect(outputs["init"] and outputs["init"][0] == "nccl", f"{what} joined with backend {outputs['init']}; use nccl")
    expect(
        returned[3] == "cuda:1",
        f"{what} returned device {returned[3]!r}; each process takes the GPU of its local rank, 'cuda:1' here",
    )
    expect(
        outputs["set_device"] and outputs["set_device"][-1] in ("1", "cuda:1"),
        f"{what} called torch.cuda.set_device with {outputs['set_device']}; make cuda:1 the current device, or "
        "every process also allocates on GPU 0",
    )


def _alone(sub):
    saved = {name: os.environ.pop(name) for name in TORCHRUN_VARIABLES if name in os.environ}
    try:
        returned = sub.setup_distributed()
        joined = torch.distributed.is_initialized()
        model = TinyLM(1)
        wrapped = sub.wrap_model(model, "cpu", 1)
        cleanup = raised(sub.cleanup_distributed)
    finally:
        os.environ.update(saved)
    return {
        "returned": [str(v) for v in returned] if isinstance(returned, tuple) else type(returned).__name__,
        "joined": joined,
        "same_model": wrapped is model,
        "wrapped_type": type(wrapped).__name__,
        "cleanup": cleanup,
    }


@ddp
@split(produce=_alone)
def test_without_torchrun_one_plain_process(outputs):
    """setup_distributed without torchrun: (0, 0, 1, device), no process group; wrap_model(world_size=1) is the model"""
    returned = outputs["returned"]
    expect(
        isinstance(returned, list) and len(returned) == 4,
        f"setup_distributed without torchrun returned {returned}; return (rank, local_rank, world_size, device)",
    )
    expect(
        returned[:3] == ["0", "0", "1"],
        f"setup_distributed without torchrun returned {tuple(returned[:3])}; expected (0, 0, 1)",
    )
    expect(returned[3] in ("cpu", "cuda", "mps"), f"setup_distributed without torchrun returned device {returned[3]!r}")
    expect(
        not outputs["joined"],
        "setup_distributed without torchrun (no RANK in the environment) joined a process "
        "group; a single process needs none",
    )
    expect(
        outputs["same_model"],
        f"wrap_model(model, 'cpu', 1) returned a {outputs['wrapped_type']}; with one process return the model itself",
    )
    expect(
        outputs["cleanup"] == "returned",
        f"cleanup_distributed() without a process group raised "
        f"{outputs['cleanup']}; only destroy a group that is initialised",
    )
