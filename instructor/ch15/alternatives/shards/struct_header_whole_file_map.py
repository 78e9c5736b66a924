"""struct-packed header, a memmap of the whole file sliced past the header, and write_shards that tokenizes everything first and cuts the stream into shards at the end"""

import functools
import multiprocessing
import os
import struct
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm


def write_datafile(filename, tokens) -> None:
    arr = np.asarray(tokens).reshape(-1).astype(np.int64)
    if arr.size and not (bool((arr >= 0).all()) and bool((arr < 65536).all())):
        raise ValueError("every token must lie in [0, 65536) to be stored as uint16")
    header = struct.pack(f"<{HEADER_INTS}i", MAGIC, VERSION, arr.size, *([0] * (HEADER_INTS - 3)))
    with open(filename, "wb") as f:
        f.write(header)
        f.write(arr.astype("<u2").tobytes())


def read_datafile(filename) -> np.ndarray:
    size = os.path.getsize(filename)
    if size < 4 * HEADER_INTS:
        raise ValueError(f"{filename} is shorter than a header")
    with open(filename, "rb") as f:
        magic, version, num_tokens = struct.unpack("<3i", f.read(12))
    if magic != MAGIC:
        raise ValueError(f"{filename}: bad magic number {magic}")
    if version != VERSION:
        raise ValueError(f"{filename}: unsupported version {version}")
    if size != 4 * HEADER_INTS + 2 * num_tokens:
        raise ValueError(f"{filename}: {size} bytes, expected {4 * HEADER_INTS + 2 * num_tokens}")
    whole = np.memmap(filename, dtype="<u2", mode="r")  # the header's 512 uint16, then the tokens
    return whole[2 * HEADER_INTS :]


def tokenize_document(text: str, encoder=None) -> np.ndarray:
    if encoder is None:
        encoder = get_encoder("gpt2")
    ids = encoder.encode_ordinary(text)
    if ids and max(ids) >= 2**16:
        raise ValueError("a token id does not fit in uint16")
    out = np.empty(len(ids) + 1, dtype=np.uint16)
    out[0] = encoder.eot_token
    out[1:] = ids
    return out


def _tokenize_with(encoder_name: str, text: str) -> np.ndarray:
    return tokenize_document(text, get_encoder(encoder_name))


def write_shards(
    documents, out_dir, shard_size: int, num_workers: int = 2, prefix: str = "shard", encoder_name: str = "gpt2"
) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else multiprocessing
    with ctx.Pool(max(1, num_workers)) as pool:
        arrays = list(
            tqdm(pool.imap(functools.partial(_tokenize_with, encoder_name), documents, chunksize=4), desc="tokenizing")
        )
    stream = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)
    paths = []
    for index, start in enumerate(range(0, len(stream), shard_size)):
        split = "val" if index == 0 else "train"
        path = out_dir / f"{prefix}_{split}_{index:06d}.bin"
        write_datafile(path, stream[start : start + shard_size])
        paths.append(path)
    return paths
