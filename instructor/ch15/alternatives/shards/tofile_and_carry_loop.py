"""ndarray.tofile for writing, np.fromfile header plus os.stat checks for reading (np.frombuffer for an empty body), and fineweb.py's fill-write-carry loop over the documents"""

import functools
import multiprocessing
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm


def write_datafile(filename, tokens) -> None:
    toks = np.array(tokens, dtype=np.int64, ndmin=1).ravel()
    if len(toks) > 0 and (toks.min() < 0 or toks.max() > 65535):
        raise ValueError(f"token out of the uint16 range: {toks.min()}..{toks.max()}")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = [MAGIC, VERSION, len(toks)]
    with open(filename, "wb") as f:
        header.tofile(f)
        toks.astype("<u2").tofile(f)


def read_datafile(filename) -> np.ndarray:
    header = np.fromfile(filename, dtype="<i4", count=HEADER_INTS)
    if len(header) != HEADER_INTS:
        raise ValueError("truncated header")
    magic, version, n = (int(v) for v in header[:3])
    if magic != MAGIC:
        raise ValueError(f"magic {magic} != {MAGIC}")
    if version != VERSION:
        raise ValueError(f"version {version} != {VERSION}")
    if os.stat(filename).st_size != HEADER_INTS * 4 + n * 2:
        raise ValueError("the body does not hold the number of tokens the header gives")
    if n == 0:
        return np.frombuffer(b"", dtype=np.uint16)  # read-only, nothing to map
    return np.memmap(filename, mode="r", dtype=np.uint16, offset=HEADER_INTS * 4, shape=(n,))


def tokenize_document(text: str, encoder=None) -> np.ndarray:
    enc = get_encoder("gpt2") if encoder is None else encoder
    toks = np.asarray([enc.eot_token] + list(enc.encode_ordinary(text)))
    assert (0 <= toks).all() and (toks < 2**16).all(), "token dictionary too large for uint16"
    return toks.astype(np.uint16)


def _tokenize_with(encoder_name: str, text: str) -> np.ndarray:
    return tokenize_document(text, get_encoder(encoder_name))


def write_shards(
    documents, out_dir, shard_size: int, num_workers: int = 2, prefix: str = "shard", encoder_name: str = "gpt2"
) -> list[Path]:
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def write(buf):
        index = len(written)
        name = os.path.join(out_dir, f"{prefix}_{'val' if index == 0 else 'train'}_{index:06d}.bin")
        write_datafile(name, buf)
        written.append(Path(name))

    shard = np.empty((shard_size,), dtype=np.uint16)
    count = 0
    progress = tqdm(unit="docs", desc="shards")
    methods = multiprocessing.get_all_start_methods()
    with multiprocessing.get_context("fork" if "fork" in methods else None).Pool(num_workers or 1) as pool:
        for tokens in pool.imap(functools.partial(_tokenize_with, encoder_name), documents, chunksize=16):
            progress.update(1)
            pos = 0
            while len(tokens) - pos >= shard_size - count:  # the document fills the shard
                take = shard_size - count
                shard[count:] = tokens[pos : pos + take]
                write(shard)
                pos, count = pos + take, 0
            rest = len(tokens) - pos
            shard[count : count + rest] = tokens[pos:]
            count += rest
    progress.close()
    if count:
        write(shard[:count])
    return written
