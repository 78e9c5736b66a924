"""llm.c's fineweb.py loop: a progress bar over tokens, the header through np.memmap, a shard finished in two slices"""


def write_datafile(filename, tokens):
    toks = np.array(tokens, dtype=np.int64)
    if ((toks < 0) | (toks > 65535)).any():
        raise ValueError("token out of range for uint16")
    header = np.zeros(256, dtype=np.int32)
    header[0] = 20240520
    header[1] = 1
    header[2] = len(toks)
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks.astype(np.uint16).tobytes())


def read_datafile(filename):
    if os.path.getsize(filename) < 1024:
        raise ValueError("truncated header")
    header = np.memmap(filename, dtype=np.int32, mode="r", shape=(256,))
    if header[0] != 20240520:
        raise ValueError("magic number mismatch")
    if header[1] != 1:
        raise ValueError("unsupported version")
    ntok = int(header[2])
    if os.path.getsize(filename) - 1024 != ntok * 2:
        raise ValueError("token count mismatch")
    if ntok == 0:
        return np.zeros(0, np.uint16)
    return np.memmap(filename, dtype=np.uint16, mode="r", offset=1024, shape=(ntok,))


def tokenize_document(text, encoder=None):
    enc = get_encoder("gpt2") if encoder is None else encoder
    tokens = [enc.eot_token]
    tokens.extend(enc.encode_ordinary(text))
    tokens_np = np.array(tokens)
    assert (0 <= tokens_np).all() and (tokens_np < 2**16).all(), "token dictionary too large for uint16"
    return tokens_np.astype(np.uint16)


def _tokenize_gpt2_like(name, doc):
    return tokenize_document(doc, get_encoder(name))


def write_shards(documents, out_dir, shard_size, num_workers=2, prefix="shard", encoder_name="gpt2"):
    os.makedirs(out_dir, exist_ok=True)
    written = []
    all_tokens_np = np.empty((shard_size,), dtype=np.uint16)
    token_count = 0
    progress_bar = None
    with multiprocessing.Pool(num_workers) as pool:
        for tokens in pool.imap(functools.partial(_tokenize_gpt2_like, encoder_name), documents, chunksize=16):
            while len(tokens) > 0:
                if token_count + len(tokens) < shard_size:
                    all_tokens_np[token_count : token_count + len(tokens)] = tokens
                    token_count += len(tokens)
                    if progress_bar is None:
                        progress_bar = tqdm(total=shard_size, unit="tokens", desc=f"shard {len(written)}")
                    progress_bar.update(len(tokens))
                    tokens = tokens[len(tokens) :]
                else:
                    remainder = shard_size - token_count
                    all_tokens_np[token_count:shard_size] = tokens[:remainder]
                    split = "val" if len(written) == 0 else "train"
                    filename = os.path.join(out_dir, f"{prefix}_{split}_{len(written):06d}.bin")
                    write_datafile(filename, all_tokens_np)
                    written.append(Path(filename))
                    if progress_bar is not None:
                        progress_bar.close()
                    progress_bar = None
                    token_count = 0
                    tokens = tokens[remainder:]
    if token_count != 0:
        split = "val" if len(written) == 0 else "train"
        filename = os.path.join(out_dir, f"{prefix}_{split}_{len(written):06d}.bin")
        write_datafile(filename, all_tokens_np[:token_count])
        written.append(Path(filename))
    if progress_bar is not None:
        progress_bar.close()
    return written
