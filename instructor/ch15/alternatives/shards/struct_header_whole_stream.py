"""struct-packed header and np.frombuffer checks; write_shards tokenizes with pool.map, then slices one stream"""

import struct


def write_datafile(filename, tokens):
    tokens = np.asarray(tokens)
    if tokens.size and not (0 <= int(tokens.min()) and int(tokens.max()) < 65536):
        raise ValueError("every token must fit in a uint16")
    header = struct.pack("<3i", MAGIC, VERSION, tokens.size) + bytes(4 * (HEADER_INTS - 3))
    Path(filename).write_bytes(header + tokens.astype("<u2").tobytes())


def read_datafile(filename):
    with open(filename, "rb") as f:
        head = f.read(4 * HEADER_INTS)
    if len(head) < 4 * HEADER_INTS:
        raise ValueError("the file is shorter than its header")
    magic, version, count = struct.unpack("<3i", head[:12])
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"not a version {VERSION} token file (magic {magic}, version {version})")
    if os.path.getsize(filename) != 4 * HEADER_INTS + 2 * count:
        raise ValueError("the file does not hold the number of tokens its header gives")
    if count == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(filename, dtype=np.uint16, mode="r", offset=4 * HEADER_INTS, shape=(count,))


def tokenize_document(text, encoder=None):
    encoder = encoder or get_encoder()
    ids = np.concatenate([[encoder.eot_token], np.asarray(encoder.encode_ordinary(text), dtype=np.int64)])
    if (ids >= 65536).any():
        raise ValueError("a token does not fit in uint16")
    return ids.astype(np.uint16)


def _tokenize_named(args):
    name, text = args
    return tokenize_document(text, get_encoder(name))


def write_shards(documents, out_dir, shard_size, num_workers=2, prefix="shard", encoder_name="gpt2"):
    out_dir = Path(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    tasks = [(encoder_name, text) for text in documents]
    with multiprocessing.get_context("fork").Pool(num_workers) as pool:
        pieces = list(tqdm(pool.map(_tokenize_named, tasks, chunksize=4), desc="tokenizing"))
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint16)
    paths = []
    for index, start in enumerate(range(0, len(stream), shard_size)):
        split = "train" if index else "val"
        path = out_dir / f"{prefix}_{split}_{index:06d}.bin"
        write_datafile(path, stream[start : start + shard_size])
        paths.append(path)
    return paths
