"""Chapter 15's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

_HEADER = "header[0], header[1], header[2] = MAGIC, VERSION, tokens.size"
_BODY = "f.write(tokens.astype(np.uint16).tobytes())"
_RANGE = "if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**16):"
_SIZE_CHECK = "if body_bytes != 2 * num_tokens:"
_VERSION_CHECK = "if header[1] != VERSION:"
_MEMMAP = 'return np.memmap(filename, dtype=np.uint16, mode="r", offset=HEADER_INTS * 4, shape=(num_tokens,))'
_DOC = "tokens = np.array([encoder.eot_token, *encoder.encode_ordinary(text)], dtype=np.int64)"
_SPLIT = 'split = "val" if not paths else "train"'
_NAME = 'path = out_dir / f"{prefix}_{split}_{len(paths):06d}.bin"'
_LAST = "    if filled:\n        flush(filled)\n"
_FILL = """            while len(tokens):
                take = min(shard_size - filled, len(tokens))"""

_RANK_START = "start = self.offset + self.process_rank * self.B * self.T"
_ADVANCE = "self.offset += step_tokens"
_Y = "y = buf[1:].view(self.B, self.T)  # (B, T)"
_WRAP = "if self.offset + step_tokens + 1 > self.total:"
_PIECE = "piece = np.asarray(self.shards[shard][local : local + count], dtype=np.int64)"
_FIRST_SHARD = "shard = bisect.bisect_right(self.starts, start) - 1\n        while count > 0:"
_LOAD_EPOCH = '        self.epoch = state["epoch"]\n'

_ZERO = "optimizer.zero_grad(set_to_none=True)  # the first backward writes .grad, the others add to it\n"
_BACKWARD = "(loss / k).backward()"
_SYNC = 'sync = model.no_sync() if hasattr(model, "no_sync") and not last else nullcontext()'
_CAST = "cast = torch.autocast(x.device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()"
_CLIP_STEP = """    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()"""

_RESIDUAL = "residual.update({block.att.out_proj, block.ff.layers[2]})"
_STD = "std = 0.02 / math.sqrt(2 * n_layers) if module in residual else 0.02"
_BIAS = "            if module.bias is not None:\n                nn.init.zeros_(module.bias)\n"
_NORM = "        elif isinstance(module, LayerNorm):\n            nn.init.ones_(module.scale)\n            nn.init.zeros_(module.shift)\n"
_EMB = (
    "        elif isinstance(module, nn.Embedding):\n            nn.init.normal_(module.weight, mean=0.0, std=0.02)\n"
)
_PARAMS = "params = [p for p in model.parameters() if p.requires_grad]"
_DECAY = '{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},'
_NO_DECAY = '{"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},'
_FUSED = 'fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters'
_ADAMW = "return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, **extra)"

_QKV = 'qkv = 3 * (emb * emb + (emb if cfg["qkv_bias"] else 0))'
_NORMS = "norms = 2 * 2 * emb"
_TOTAL = 'return vocab * emb + cfg["n_layers"] * per_layer + 2 * emb  # + final_norm; the head is tok_emb'
_FLOPS = 'return float(6 * num_params + 12 * cfg["n_layers"] * cfg["n_heads"] * head_dim * cfg["context_length"])'
_MFU = "return flops_per_token * tokens_per_second / peak_flops"
_FEED = "feed_forward = emb * 4 * emb + 4 * emb + 4 * emb * emb + emb"

_RANK0 = "    if rank != 0:\n        return\n"
_UNWRAP_SAVE = """    if rank != 0:
        return
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):  # DDP's and torch.compile's wrappers
        model = getattr(model, "_orig_mod", None) or model.module
"""
_ATOMIC = "    torch.save(checkpoint, tmp)\n    os.replace(tmp, target)\n"
_SET_TORCH = '    torch.set_rng_state(rng["torch"])\n'
_SET_NUMPY = '    np.random.set_state(rng["numpy"])\n'
_SET_PYTHON = '    random.setstate(rng["python"])\n'
_LOAD_LOADER = '    loader.load_state_dict(checkpoint["loader"])\n'
_LOAD_OPT = '    optimizer.load_state_dict(checkpoint["optimizer"])\n'
_RETURN_STEP = 'return checkpoint["step"]'

_EVAL = "    model.eval()\n"
_RESTORE_MODE = "model.train(was_training)"
_NO_GRAD = "    with torch.no_grad():\n        for _ in range(steps):"
_DIVIDE = "        mean /= dist.get_world_size()\n"
_ALL_REDUCE = "        dist.all_reduce(mean, op=dist.ReduceOp.SUM)\n"
_ENDING = 'end_tokens = encoder.encode(" " + ending)'
_MASK_ROW = "row_masks.append([0] * len(ctx_tokens) + [1] * len(end_tokens))"
_SHIFT = """    shift_logits = logits[:, :-1].float()  # (endings, L - 1, vocab): position t predicts token t + 1
    shift_tokens = tokens[:, 1:]
    shift_mask = mask[:, 1:].float()"""
_MEAN = "mean_loss = (losses * shift_mask).sum(dim=1) / shift_mask.sum(dim=1)"
_ARGMIN = "return int(mean_loss.argmin())"

_LOCAL = 'local_rank = int(os.environ.get("LOCAL_RANK", rank))'
_BACKEND = '        device, backend = "cpu", "gloo"'
_WORLD_ONE = "    if world_size <= 1:\n        return model\n"
_CPU_DDP = "    return DDP(model)\n    ### END SOLUTION"
_DESTROY = "    if dist.is_available() and dist.is_initialized():\n        dist.destroy_process_group()"
_ALONE = '    if "RANK" not in os.environ:'

MUTANTS: dict[str, list[Mutant]] = {
    "ch15.shards": [
        Mutant("the header counts bytes, not tokens", ((_HEADER, _HEADER.replace("tokens.size", "2 * tokens.size")),)),
        Mutant("the tokens are written as int32", ((_BODY, "f.write(tokens.astype(np.int32).tobytes())"),)),
        Mutant(
            "write_datafile accepts 65536 (checks > 2**16 instead of >=), which wraps round to 0",
            ((_RANGE, "if tokens.size and (tokens.min() < 0 or tokens.max() > 2**16):"),),
        ),
        Mutant(
            "write_datafile lets negative tokens wrap around", ((_RANGE, "if tokens.size and tokens.max() >= 2**16:"),)
        ),
        Mutant("read_datafile never compares the file size with the header's count", ((_SIZE_CHECK, "if False:"),)),
        Mutant("read_datafile does not check the version", ((_VERSION_CHECK, "if False:"),)),
        Mutant(
            "read_datafile's memmap starts 256 bytes in (the number of header ints, not its bytes)",
            ((_MEMMAP, _MEMMAP.replace("offset=HEADER_INTS * 4", "offset=HEADER_INTS")),),
        ),
        Mutant(
            "read_datafile reads the tokens into a writeable copy with np.fromfile, not a memmap",
            ((_MEMMAP, "return np.fromfile(filename, dtype=np.uint16, offset=HEADER_INTS * 4)"),),
        ),
        Mutant(
            "every document ends with <|endoftext|> instead of starting with it",
            ((_DOC, "tokens = np.array([*encoder.encode_ordinary(text), encoder.eot_token], dtype=np.int64)"),),
        ),
        Mutant(
            "documents are tokenized with encode(allowed_special='all'), so '<|endoftext|>' in the text becomes a separator",
            ((_DOC, _DOC.replace("encoder.encode_ordinary(text)", 'encoder.encode(text, allowed_special="all")')),),
        ),
        Mutant("no <|endoftext|> between documents", ((_DOC, _DOC.replace("encoder.eot_token, ", "")),)),
        Mutant("the first shard is named train, not val", ((_SPLIT, 'split = "train"'),)),
        Mutant(
            "the train shards are numbered from 000000 again",
            ((_NAME, 'path = out_dir / f"{prefix}_{split}_{max(len(paths) - 1, 0) if paths else 0:06d}.bin"'),),
        ),
        Mutant("the last, shorter shard is never written", ((_LAST, "\n"),)),
        Mutant(
            "a document that does not fit starts a new shard instead of being split across two",
            (
                (
                    _FILL,
                    """            if filled and filled + len(tokens) > shard_size:
                flush(filled)
                filled = 0
            while len(tokens):
                take = min(shard_size - filled, len(tokens))""",
                ),
            ),
        ),
    ],
    "ch15.data_loader": [
        Mutant("every rank reads the same tokens (no rank offset)", ((_RANK_START, "start = self.offset"),)),
        Mutant(
            "the position advances by B*T, not B*T*num_processes",
            ((_ADVANCE, "self.offset += self.B * self.T"),),
        ),
        Mutant("y is not shifted by one", ((_Y, "y = buf[:-1].view(self.B, self.T)"),)),
        Mutant(
            "the epoch ends one window early (>= instead of >)",
            ((_WRAP, "if self.offset + step_tokens + 1 >= self.total:"),),
        ),
        Mutant("the batches stay uint16 (no conversion to int64)", ((_PIECE, _PIECE.replace(", dtype=np.int64", "")),)),
        Mutant(
            "a window that does not fit in the current shard skips to the next shard (nanoGPT's loader)",
            (
                (
                    _FIRST_SHARD,
                    """shard = bisect.bisect_right(self.starts, start) - 1
        if start - self.starts[shard] + count > len(self.shards[shard]) and shard + 1 < len(self.shards):
            self.offset += self.starts[shard + 1] - start
            start, shard = self.starts[shard + 1], shard + 1
        while count > 0:""",
                ),
            ),
        ),
        Mutant("load_state_dict does not restore the epoch", ((_LOAD_EPOCH, "\n"),)),
    ],
    "ch15.grad_accum": [
        Mutant("the micro-batch losses are not divided by k", ((_BACKWARD, "loss.backward()"),)),
        Mutant(
            "the gradients are zeroed before every micro-batch",
            (("        with sync:\n", "        optimizer.zero_grad(set_to_none=True)\n        with sync:\n"),),
        ),
        Mutant("the gradients are never zeroed", ((_ZERO, "\n"),)),
        Mutant(
            "every micro-batch runs inside no_sync, the last too",
            ((_SYNC, 'sync = model.no_sync() if hasattr(model, "no_sync") else nullcontext()'),),
        ),
        Mutant(
            "the returned loss is the mean of the scaled losses",
            (("total += loss.detach()", "total += (loss / k).detach()"),),
        ),
        Mutant(
            "the gradients are clipped after optimizer.step()",
            (
                (
                    _CLIP_STEP,
                    """    optimizer.step()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)""",
                ),
            ),
        ),
        Mutant("autocast_dtype is ignored", ((_CAST, "cast = nullcontext()"),)),
        Mutant(
            "optimizer.step() runs after every micro-batch",
            (
                (
                    "            (loss / k).backward()\n",
                    "            (loss / k).backward()\n            optimizer.step()\n",
                ),
            ),
        ),
    ],
    "ch15.init_and_groups": [
        Mutant(
            "the residual projections are scaled by 1/sqrt(n_layers)",
            ((_STD, _STD.replace("2 * n_layers", "n_layers")),),
        ),
        Mutant("only att.out_proj is scaled, not ff.layers[2]", ((_RESIDUAL, "residual.add(block.att.out_proj)"),)),
        Mutant("the residual projections are not scaled", ((_STD, "std = 0.02"),)),
        Mutant("the biases keep PyTorch's initialisation", ((_BIAS, ""),)),
        Mutant("the LayerNorms are not reset", ((_NORM, ""),)),
        Mutant("the embeddings keep PyTorch's N(0, 1)", ((_EMB, ""),)),
        Mutant(
            "no decay only for biases (names ending in 'bias'): the LayerNorm scales decay",
            (
                (_PARAMS, "named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]"),
                (_DECAY, '{"params": [p for n, p in named if not n.endswith("bias")], "weight_decay": weight_decay},'),
                (_NO_DECAY, '{"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},'),
            ),
        ),
        Mutant(
            "the tied weight is listed twice (named_parameters(remove_duplicate=False))",
            ((_PARAMS, "params = [p for _, p in model.named_parameters(remove_duplicate=False)]"),),
        ),
        Mutant(
            "both groups decay",
            ((_NO_DECAY, '{"params": [p for p in params if p.dim() < 2], "weight_decay": weight_decay},'),),
        ),
        Mutant(
            "fused is chosen by torch.cuda.is_available() instead of device_type",
            (
                (
                    _FUSED,
                    'fused = torch.cuda.is_available() and "fused" in inspect.signature(torch.optim.AdamW).parameters',
                ),
            ),
        ),
        Mutant(
            "betas and eps are ignored (AdamW's defaults)",
            ((_ADAMW, "return torch.optim.AdamW(groups, lr=learning_rate, **extra)"),),
        ),
    ],
    "ch15.flops": [
        Mutant(
            "the position embedding is counted",
            ((_TOTAL, 'return vocab * emb + cfg["context_length"] * emb + cfg["n_layers"] * per_layer + 2 * emb'),),
        ),
        Mutant(
            "the tied head is counted a second time",
            ((_TOTAL, 'return 2 * vocab * emb + cfg["n_layers"] * per_layer + 2 * emb'),),
        ),
        Mutant("the query, key and value biases are ignored", ((_QKV, "qkv = 3 * emb * emb"),)),
        Mutant(
            "the LayerNorm parameters are left out",
            ((_NORMS, "norms = 0"), (_TOTAL, _TOTAL.replace(" + 2 * emb  #", "  #"))),
        ),
        Mutant("the feed-forward biases are left out", ((_FEED, "feed_forward = emb * 4 * emb + 4 * emb * emb"),)),
        Mutant("the attention term is left out", ((_FLOPS, "return float(6 * num_params)"),)),
        Mutant("the attention term uses 6 instead of 12", ((_FLOPS, _FLOPS.replace("12 *", "6 *")),)),
        Mutant("the forward pass only (2N)", ((_FLOPS, _FLOPS.replace("6 * num_params", "2 * num_params")),)),
        Mutant("MFU as a percentage", ((_MFU, "return 100 * flops_per_token * tokens_per_second / peak_flops"),)),
        Mutant("MFU inverted", ((_MFU, "return peak_flops / (flops_per_token * tokens_per_second)"),)),
    ],
    "ch15.checkpoint": [
        Mutant("torch's random generator is not restored", ((_SET_TORCH, ""),)),
        Mutant("numpy's random generator is not restored", ((_SET_NUMPY, ""),)),
        Mutant("Python's random generator is not restored", ((_SET_PYTHON, ""),)),
        Mutant("the loader's position is not restored", ((_LOAD_LOADER, ""),)),
        Mutant("the optimizer's state is not restored", ((_LOAD_OPT, ""),)),
        Mutant("the wrapped model's state dict is saved (module. / _orig_mod. prefixes)", ((_UNWRAP_SAVE, _RANK0),)),
        Mutant("every rank saves", ((_RANK0, ""),)),
        Mutant("torch.save writes straight onto the path", ((_ATOMIC, "    torch.save(checkpoint, path)\n"),)),
        Mutant("load_checkpoint returns the saved step + 1", ((_RETURN_STEP, 'return checkpoint["step"] + 1'),)),
    ],
    "ch15.evaluation": [
        Mutant("evaluate_loss leaves the model in training mode (dropout on)", ((_EVAL, ""),)),
        Mutant("evaluate_loss always returns the model to training mode", ((_RESTORE_MODE, "model.train()"),)),
        Mutant(
            "evaluate_loss runs with autograd on",
            ((_NO_GRAD, "    with nullcontext():\n        for _ in range(steps):"),),
        ),
        Mutant("the all-reduced loss is not divided by the world size", ((_DIVIDE, ""),)),
        Mutant("the loss is not all-reduced across ranks", ((_ALL_REDUCE, ""), (_DIVIDE, ""))),
        Mutant(
            "the endings are tokenized without their leading space", ((_ENDING, "end_tokens = encoder.encode(ending)"),)
        ),
        Mutant(
            "the mask covers the context too",
            ((_MASK_ROW, "row_masks.append([1] * (len(ctx_tokens) + len(end_tokens)))"),),
        ),
        Mutant(
            "the logits are not shifted: logits[t] scored against token t",
            ((_SHIFT, "    shift_logits = logits.float()\n    shift_tokens = tokens\n    shift_mask = mask.float()"),),
        ),
        Mutant(
            "the ending's losses are summed, not averaged", ((_MEAN, "mean_loss = (losses * shift_mask).sum(dim=1)"),)
        ),
        Mutant("the highest loss is picked", ((_ARGMIN, "return int(mean_loss.argmax())"),)),
    ],
    "ch15.ddp": [
        Mutant("local_rank is read from RANK", ((_LOCAL, 'local_rank = int(os.environ["RANK"])'),)),
        Mutant("the nccl backend on CPU too", ((_BACKEND, '        device, backend = "cpu", "nccl"'),)),
        Mutant("wrap_model never wraps", ((_WORLD_ONE, "    return model\n"),)),
        Mutant(
            "wrap_model gives DDP device_ids=[0] on CPU",
            ((_CPU_DDP, "    return DDP(model, device_ids=[0])\n    ### END SOLUTION"),),
        ),
        Mutant("cleanup_distributed leaves the process group", ((_DESTROY, "    pass"),)),
        Mutant(
            "cleanup_distributed destroys the group without checking that one exists",
            ((_DESTROY, "    dist.destroy_process_group()"),),
        ),
        Mutant(
            "setup_distributed joins a process group even without torchrun",
            ((_ALONE, '    if "RANK" not in os.environ and False:'),),
        ),
        Mutant(
            "world_size is read from LOCAL_WORLD_SIZE",
            (('int(os.environ["WORLD_SIZE"])', 'int(os.environ.get("LOCAL_WORLD_SIZE", 1))'),),
        ),
    ],
}

# ---------------------------------------------------------------- written blind, from the chapter's text and
# reference cells only, without its checks


# ---------------------------------------------------------------- ch15.shards
_BLIND_RANGE = "if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**16):"
_BLIND_HEADER = "header[0], header[1], header[2] = MAGIC, VERSION, tokens.size"
_BLIND_BODY_WRITE = "f.write(tokens.astype(np.uint16).tobytes())"
_BLIND_MEMMAP = 'return np.memmap(filename, dtype=np.uint16, mode="r", offset=HEADER_INTS * 4, shape=(num_tokens,))'
_BLIND_VERSION_CHECK = (
    "    if header[1] != VERSION:\n"
    '        raise ValueError(f"{filename}: version {header[1]}, only version {VERSION} (uint16 tokens) is supported")\n'
)
_BLIND_EOT = "tokens = np.array([encoder.eot_token, *encoder.encode_ordinary(text)], dtype=np.int64)"
_BLIND_SPLIT = 'split = "val" if not paths else "train"'
_BLIND_NAME = 'path = out_dir / f"{prefix}_{split}_{len(paths):06d}.bin"'
_BLIND_LAST = "    if filled:\n        flush(filled)\n"

# ---------------------------------------------------------------- ch15.data_loader
_BLIND_RANK_START = "start = self.offset + self.process_rank * self.B * self.T"
_BLIND_ADVANCE = "self.offset += step_tokens"
_BLIND_EPOCH_TEST = "if self.offset + step_tokens + 1 > self.total:"
_BLIND_EPOCH_RESET = "self.offset, self.epoch = 0, self.epoch + 1"
_BLIND_XY = "x = buf[:-1].view(self.B, self.T)  # (B, T)\n        y = buf[1:].view(self.B, self.T)  # (B, T)"
_BLIND_POSITION = '"current_position": self.offset - self.starts[shard]'

# ---------------------------------------------------------------- ch15.grad_accum
_BLIND_BACKWARD = "(loss / k).backward()"
_BLIND_ZERO = (
    "optimizer.zero_grad(set_to_none=True)  # the first backward writes .grad, the others add to it\n    total = 0.0"
)
_BLIND_SYNC = 'sync = model.no_sync() if hasattr(model, "no_sync") and not last else nullcontext()'
_BLIND_CAST = (
    "cast = torch.autocast(x.device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()"
)
_BLIND_CLIP_STEP = (
    "    if grad_clip is not None:\n"
    "        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)\n"
    "    optimizer.step()\n"
)

# ---------------------------------------------------------------- ch15.init_and_groups
_BLIND_STD = "std = 0.02 / math.sqrt(2 * n_layers) if module in residual else 0.02"
_BLIND_RESIDUAL = "residual.update({block.att.out_proj, block.ff.layers[2]})"
_BLIND_BIAS = "            if module.bias is not None:\n                nn.init.zeros_(module.bias)\n"
_BLIND_EMBEDDING = (
    "        elif isinstance(module, nn.Embedding):\n            nn.init.normal_(module.weight, mean=0.0, std=0.02)\n"
)
_BLIND_NORM = "        elif isinstance(module, LayerNorm):\n            nn.init.ones_(module.scale)\n            nn.init.zeros_(module.shift)\n"
_BLIND_DECAY = '{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},'
_BLIND_NO_DECAY = '{"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},'
_BLIND_PARAMS = "params = [p for p in model.parameters() if p.requires_grad]"
_BLIND_FUSED = 'fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters'
_BLIND_ADAMW = "return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, **extra)"

# ---------------------------------------------------------------- ch15.flops
_BLIND_QKV = 'qkv = 3 * (emb * emb + (emb if cfg["qkv_bias"] else 0))'
_BLIND_ATTENTION = "attention = qkv + emb * emb + emb  # W_query, W_key, W_value, out_proj"
_BLIND_FF = "feed_forward = emb * 4 * emb + 4 * emb + 4 * emb * emb + emb"
_BLIND_TOTAL = 'return vocab * emb + cfg["n_layers"] * per_layer + 2 * emb  # + final_norm; the head is tok_emb'
_BLIND_HEAD_DIM = 'head_dim = cfg["emb_dim"] // cfg["n_heads"]'
_BLIND_FLOPS = 'return float(6 * num_params + 12 * cfg["n_layers"] * cfg["n_heads"] * head_dim * cfg["context_length"])'
_BLIND_MFU = "return flops_per_token * tokens_per_second / peak_flops"

# ---------------------------------------------------------------- ch15.checkpoint
_BLIND_UNWRAP_SAVE = (
    '    while hasattr(model, "module") or hasattr(model, "_orig_mod"):  # DDP\'s and torch.compile\'s wrappers\n'
    '        model = getattr(model, "_orig_mod", None) or model.module\n'
    "    rng = {\n"
)
_BLIND_RANK0 = "    if rank != 0:\n        return\n"
_BLIND_ATOMIC = "    torch.save(checkpoint, tmp)\n    os.replace(tmp, target)\n"
_BLIND_SAVE_TORCH_RNG = '"torch": torch.get_rng_state(),'

# ---------------------------------------------------------------- ch15.evaluation
_BLIND_EVAL = "    model.eval()\n"
_BLIND_RESTORE = "model.train(was_training)"
_BLIND_NO_GRAD = "with torch.no_grad():\n        for _ in range(steps):"
_BLIND_WORLD = "        mean /= dist.get_world_size()\n"
_BLIND_MEAN = "mean = total / steps"
_BLIND_ENDING = 'end_tokens = encoder.encode(" " + ending)'
_BLIND_CTX_MASK = "row_masks.append([0] * len(ctx_tokens) + [1] * len(end_tokens))"
_BLIND_PAD = "tokens = torch.zeros((len(rows), max_len), dtype=torch.long)"
_BLIND_SHIFT_TOKENS = "shift_tokens = tokens[:, 1:]"
_BLIND_SHIFT_MASK = "shift_mask = mask[:, 1:].float()"
_BLIND_MEAN_LOSS = "mean_loss = (losses * shift_mask).sum(dim=1) / shift_mask.sum(dim=1)"
_BLIND_ARGMIN = "return int(mean_loss.argmin())"

# ---------------------------------------------------------------- ch15.ddp
_BLIND_CPU_BACKEND = 'device, backend = "cpu", "gloo"'
_BLIND_CUDA_DEVICE = 'device, backend = f"cuda:{local_rank}", "nccl"'
_BLIND_LOCAL_RANK = 'local_rank = int(os.environ.get("LOCAL_RANK", rank))'
_BLIND_INIT = (
    "    if not dist.is_initialized():\n"
    "        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)\n"
)
_BLIND_SINGLE = "    if world_size <= 1:\n        return model\n"
_BLIND_CPU_DDP = "    return DDP(model)\n"
_BLIND_DESTROY = "    if dist.is_available() and dist.is_initialized():\n        dist.destroy_process_group()\n"

_BLIND: dict[str, list[Mutant]] = {
    "ch15.shards": [
        Mutant(
            "write_datafile accepts 65536 (checks > 2**16 instead of >= 2**16), which wraps to token 0 in uint16",
            ((_BLIND_RANGE, "if tokens.size and (tokens.min() < 0 or tokens.max() > 2**16):"),),
        ),
        Mutant(
            "write_datafile only checks the upper bound: a negative token wraps around to 65535",
            ((_BLIND_RANGE, "if tokens.size and tokens.max() >= 2**16:"),),
        ),
        Mutant(
            "the header's third int is the number of bytes of the body (2 per token), not the number of tokens",
            (
                (_BLIND_HEADER, "header[0], header[1], header[2] = MAGIC, VERSION, 2 * tokens.size"),
                ("if body_bytes != 2 * num_tokens:", "if body_bytes != num_tokens:"),
                ("shape=(num_tokens,))", "shape=(num_tokens // 2,))"),
            ),
        ),
        Mutant(
            "the tokens are written in their own dtype (int64 for a list), not as uint16",
            ((_BLIND_BODY_WRITE, "f.write(tokens.tobytes())"),),
        ),
        Mutant(
            "read_datafile's memmap starts HEADER_INTS bytes in (ints counted as bytes), not HEADER_INTS * 4",
            ((_BLIND_MEMMAP, _BLIND_MEMMAP.replace("offset=HEADER_INTS * 4", "offset=HEADER_INTS")),),
        ),
        Mutant(
            'read_datafile maps the file writable (mode="r+") instead of read-only',
            ((_BLIND_MEMMAP, _BLIND_MEMMAP.replace('mode="r"', 'mode="r+"')),),
        ),
        Mutant(
            "read_datafile only refuses a body shorter than the header says, not a longer one",
            (("if body_bytes != 2 * num_tokens:", "if body_bytes < 2 * num_tokens:"),),
        ),
        Mutant(
            "read_datafile does not check the version",
            ((_BLIND_VERSION_CHECK, ""),),
        ),
        Mutant(
            "<|endoftext|> goes after the document instead of before it",
            ((_BLIND_EOT, "tokens = np.array([*encoder.encode_ordinary(text), encoder.eot_token], dtype=np.int64)"),),
        ),
        Mutant(
            "tokenize_document uses encode(allowed_special=\"all\"), so a literal '<|endoftext|>' in the text becomes "
            "the separator token",
            (
                (
                    _BLIND_EOT,
                    'tokens = np.array([encoder.eot_token, *encoder.encode(text, allowed_special="all")], '
                    "dtype=np.int64)",
                ),
            ),
        ),
        Mutant(
            "tokenize_document returns int64 tokens instead of uint16",
            (("    return tokens.astype(np.uint16)\n", "    return tokens\n"),),
        ),
        Mutant(
            "every shard is named train (no val shard first)",
            ((_BLIND_SPLIT, 'split = "train"'),),
        ),
        Mutant(
            "the shards are numbered from 1 instead of 0",
            ((_BLIND_NAME, 'path = out_dir / f"{prefix}_{split}_{len(paths) + 1:06d}.bin"'),),
        ),
        Mutant(
            "a document that does not fit in the current shard loses its tail instead of continuing in the next shard",
            (("tokens = tokens[take:]", "tokens = tokens[len(tokens):]"),),
        ),
        Mutant(
            "the last, shorter shard is never written",
            ((_BLIND_LAST, ""),),
        ),
        Mutant(
            "every shard is written with the whole buffer: the last one is padded to shard_size with stale tokens",
            (("write_datafile(path, buffer[:count])", "write_datafile(path, buffer)"),),
        ),
    ],
    "ch15.data_loader": [
        Mutant(
            "every rank takes the same slice (the rank's offset r*B*T is left out)",
            ((_BLIND_RANK_START, "start = self.offset"),),
        ),
        Mutant(
            "the ranks' slices are B*T + 1 apart instead of B*T (each rank skips a token)",
            ((_BLIND_RANK_START, "start = self.offset + self.process_rank * (self.B * self.T + 1)"),),
        ),
        Mutant(
            "the position advances by B*T instead of B*T*num_processes",
            ((_BLIND_ADVANCE, "self.offset += self.B * self.T"),),
        ),
        Mutant(
            "the position advances by B*T*num_processes + 1 (the extra target token is skipped)",
            ((_BLIND_ADVANCE, "self.offset += step_tokens + 1"),),
        ),
        Mutant(
            "the epoch ends one token early (>= instead of >): a stream with exactly B*T*N + 1 tokens left restarts",
            ((_BLIND_EPOCH_TEST, "if self.offset + step_tokens + 1 >= self.total:"),),
        ),
        Mutant(
            "the epoch counter is not incremented at the end of an epoch",
            ((_BLIND_EPOCH_RESET, "self.offset = 0"),),
        ),
        Mutant(
            "x and y are swapped (y is the input, x the target)",
            (
                (
                    _BLIND_XY,
                    "y = buf[:-1].view(self.B, self.T)  # (B, T)\n        x = buf[1:].view(self.B, self.T)  # (B, T)",
                ),
            ),
        ),
        Mutant(
            "the batches are int32 instead of int64",
            (
                (
                    "piece = np.asarray(self.shards[shard][local : local + count], dtype=np.int64)",
                    "piece = np.asarray(self.shards[shard][local : local + count], dtype=np.int32)",
                ),
            ),
        ),
        Mutant(
            "nanoGPT's loader: a window that does not fit in the current shard skips the shard's tail and starts "
            "at the next shard",
            (
                (
                    _BLIND_RANK_START,
                    "cur = bisect.bisect_right(self.starts, self.offset) - 1\n"
                    "        if self.offset + step_tokens + 1 > self.starts[cur] + len(self.shards[cur]):\n"
                    "            if cur + 1 < len(self.shards) and self.starts[cur + 1] + step_tokens + 1 <= self.total:\n"
                    "                self.offset = self.starts[cur + 1]\n"
                    "            else:\n"
                    "                self.offset, self.epoch = 0, self.epoch + 1\n"
                    "        " + _BLIND_RANK_START,
                ),
            ),
        ),
        Mutant(
            "state_dict's position is the position in the whole stream, not within the shard "
            "(load_state_dict adds the shard's start again)",
            ((_BLIND_POSITION, '"current_position": self.offset'),),
        ),
        Mutant(
            "load_state_dict does not restore the epoch",
            (('        self.epoch = state["epoch"]\n', ""),),
        ),
        Mutant(
            "reset() rewinds the position but leaves the epoch counter as it was",
            (
                ("        self.reset()\n", "        self.epoch = 0\n        self.reset()\n"),
                (
                    "        self.offset = 0  # the position in the whole stream\n        self.epoch = 0\n",
                    "        self.offset = 0  # the position in the whole stream\n",
                ),
            ),
        ),
    ],
    "ch15.grad_accum": [
        Mutant(
            "each micro-batch's loss is not divided by k (k times the gradient)",
            ((_BLIND_BACKWARD, "loss.backward()"),),
        ),
        Mutant(
            "the gradients are zeroed before every micro-batch: only the last micro-batch's gradient is used",
            (
                (_BLIND_ZERO, "total = 0.0"),
                (
                    "        last = i == k - 1\n",
                    "        last = i == k - 1\n        optimizer.zero_grad(set_to_none=True)\n",
                ),
            ),
        ),
        Mutant(
            "the gradients are never zeroed: they accumulate across steps",
            ((_BLIND_ZERO, "total = 0.0"),),
        ),
        Mutant(
            "returns the last micro-batch's loss instead of the mean",
            (("return float(total) / k", "return float(loss)"),),
        ),
        Mutant(
            "returns the mean loss divided by k once more (sums loss / k, then divides by k)",
            (("total += loss.detach()", "total += loss.detach() / k"),),
        ),
        Mutant(
            "no_sync around the last micro-batch instead of all the others",
            ((_BLIND_SYNC, 'sync = model.no_sync() if hasattr(model, "no_sync") and last else nullcontext()'),),
        ),
        Mutant(
            "never uses no_sync under DDP (an all-reduce per micro-batch)",
            ((_BLIND_SYNC, "sync = nullcontext()"),),
        ),
        Mutant(
            "the autocast dtype is ignored: the forward always runs in float32",
            ((_BLIND_CAST, "cast = nullcontext()"),),
        ),
        Mutant(
            "the gradient is clipped after optimizer.step() (the step uses unclipped gradients)",
            (
                (
                    _BLIND_CLIP_STEP,
                    "    optimizer.step()\n"
                    "    if grad_clip is not None:\n"
                    "        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)\n",
                ),
            ),
        ),
        Mutant(
            "clips each gradient element (clip_grad_value_) instead of the global norm",
            (
                (
                    "torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)",
                    "torch.nn.utils.clip_grad_value_(model.parameters(), grad_clip)",
                ),
            ),
        ),
    ],
    "ch15.init_and_groups": [
        Mutant(
            "the residual projections are not scaled down (all weights N(0, 0.02))",
            ((_BLIND_STD, "std = 0.02"),),
        ),
        Mutant(
            "the residual projections are scaled by 1/sqrt(n_layers) instead of 1/sqrt(2 * n_layers)",
            ((_BLIND_STD, "std = 0.02 / math.sqrt(n_layers) if module in residual else 0.02"),),
        ),
        Mutant(
            "the residual projections are scaled by 1/(2 * n_layers), without the square root",
            ((_BLIND_STD, "std = 0.02 / (2 * n_layers) if module in residual else 0.02"),),
        ),
        Mutant(
            "only att.out_proj is scaled, not the feed-forward's output projection",
            ((_BLIND_RESIDUAL, "residual.add(block.att.out_proj)"),),
        ),
        Mutant(
            "the feed-forward's first layer (ff.layers[0]) is scaled instead of its output projection ff.layers[2]",
            ((_BLIND_RESIDUAL, "residual.update({block.att.out_proj, block.ff.layers[0]})"),),
        ),
        Mutant(
            "the biases are not zeroed (they keep PyTorch's uniform initialisation)",
            ((_BLIND_BIAS, ""),),
        ),
        Mutant(
            "nn.Embedding is skipped: the position embedding keeps PyTorch's N(0, 1)",
            ((_BLIND_EMBEDDING, ""),),
        ),
        Mutant(
            "the LayerNorm parameters are left as they were (not reset to scale 1, shift 0)",
            ((_BLIND_NORM, ""),),
        ),
        Mutant(
            "each Linear gets a new Parameter instead of an in-place init: the tied head is untied from tok_emb",
            (
                (
                    "nn.init.normal_(module.weight, mean=0.0, std=std)",
                    "module.weight = nn.Parameter(torch.randn_like(module.weight) * std)",
                ),
            ),
        ),
        Mutant(
            "decay only on parameters with more than 2 dimensions (dim() > 2): nothing decays",
            (
                (_BLIND_DECAY, _BLIND_DECAY.replace("p.dim() >= 2", "p.dim() > 2")),
                (_BLIND_NO_DECAY, _BLIND_NO_DECAY.replace("p.dim() < 2", "p.dim() <= 2")),
            ),
        ),
        Mutant(
            "the weight decays are swapped: biases and norms decay, matrices do not",
            (
                (_BLIND_DECAY, '{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.0},'),
                (_BLIND_NO_DECAY, '{"params": [p for p in params if p.dim() < 2], "weight_decay": weight_decay},'),
            ),
        ),
        Mutant(
            "the parameters come from named_parameters(remove_duplicate=False): the tied matrix is in the decay "
            "group twice",
            (
                (
                    _BLIND_PARAMS,
                    "params = [p for _, p in model.named_parameters(remove_duplicate=False) if p.requires_grad]",
                ),
            ),
        ),
        Mutant(
            'fused is never used, even for device_type "cuda"',
            ((_BLIND_FUSED, "fused = False"),),
        ),
        Mutant(
            "betas and eps are not passed to AdamW (PyTorch's defaults 0.9, 0.999 and 1e-8)",
            ((_BLIND_ADAMW, "return torch.optim.AdamW(groups, lr=learning_rate, **extra)"),),
        ),
    ],
    "ch15.flops": [
        Mutant(
            "the query/key/value biases are never counted (wrong for qkv_bias=True)",
            ((_BLIND_QKV, "qkv = 3 * emb * emb"),),
        ),
        Mutant(
            "the query/key/value biases are always counted (wrong for qkv_bias=False)",
            ((_BLIND_QKV, "qkv = 3 * (emb * emb + emb)"),),
        ),
        Mutant(
            "the position embedding is counted",
            (
                (
                    _BLIND_TOTAL,
                    'return vocab * emb + cfg["context_length"] * emb + cfg["n_layers"] * per_layer + 2 * emb',
                ),
            ),
        ),
        Mutant(
            "the tied output head is counted a second time",
            ((_BLIND_TOTAL, 'return 2 * vocab * emb + cfg["n_layers"] * per_layer + 2 * emb'),),
        ),
        Mutant(
            "the final LayerNorm is left out",
            ((_BLIND_TOTAL, 'return vocab * emb + cfg["n_layers"] * per_layer'),),
        ),
        Mutant(
            "the out_proj bias is left out",
            ((_BLIND_ATTENTION, "attention = qkv + emb * emb"),),
        ),
        Mutant(
            "the feed-forward biases are left out",
            ((_BLIND_FF, "feed_forward = 2 * 4 * emb * emb"),),
        ),
        Mutant(
            "the attention term uses 6 instead of 12 (forward-only factor for attention)",
            ((_BLIND_FLOPS, _BLIND_FLOPS.replace("12 * cfg", "6 * cfg")),),
        ),
        Mutant(
            "2N per token (the forward pass only) instead of 6N",
            ((_BLIND_FLOPS, _BLIND_FLOPS.replace("6 * num_params", "2 * num_params")),),
        ),
        Mutant(
            "head_dim taken as emb_dim (the attention term n_heads times too large)",
            ((_BLIND_HEAD_DIM, 'head_dim = cfg["emb_dim"]'),),
        ),
        Mutant(
            "the attention term is halved for the causal mask (T / 2), which PaLM's count does not do",
            ((_BLIND_FLOPS, _BLIND_FLOPS.replace('cfg["context_length"])', 'cfg["context_length"] / 2)')),),
        ),
        Mutant(
            "MFU returned as a percentage (x100) instead of a fraction",
            ((_BLIND_MFU, "return 100 * flops_per_token * tokens_per_second / peak_flops"),),
        ),
    ],
    "ch15.checkpoint": [
        Mutant(
            "the wrapped model is saved as it is: DDP's `module.` / compile's `_orig_mod.` prefixes stay in the keys",
            ((_BLIND_UNWRAP_SAVE, "    rng = {\n"),),
        ),
        Mutant(
            "only DDP's wrapper is removed when saving, torch.compile's `_orig_mod.` prefix stays",
            (
                (
                    _BLIND_UNWRAP_SAVE,
                    '    while hasattr(model, "module"):  # DDP\'s wrapper\n'
                    "        model = model.module\n"
                    "    rng = {\n",
                ),
            ),
        ),
        Mutant(
            "every rank writes the checkpoint (no rank-0 test)",
            ((_BLIND_RANK0, ""),),
        ),
        Mutant(
            "not atomic: torch.save writes straight to `path`",
            ((_BLIND_ATOMIC, "    torch.save(checkpoint, path)\n"),),
        ),
        Mutant(
            "load_checkpoint returns step + 1 (the saved step already counts the steps done)",
            (('return checkpoint["step"]', 'return checkpoint["step"] + 1'),),
        ),
        Mutant(
            "the loader's position is not restored",
            (('    loader.load_state_dict(checkpoint["loader"])\n', ""),),
        ),
        Mutant(
            "the optimizer's state is not restored",
            (('    optimizer.load_state_dict(checkpoint["optimizer"])\n', ""),),
        ),
        Mutant(
            "torch's CPU generator is not restored (dropout masks differ after resuming)",
            (('    torch.set_rng_state(rng["torch"])\n', ""),),
        ),
        Mutant(
            "numpy's generator is not restored",
            (('    np.random.set_state(rng["numpy"])\n', ""),),
        ),
        Mutant(
            "Python's random generator is not restored",
            (('    random.setstate(rng["python"])\n', ""),),
        ),
        Mutant(
            "saves torch's seed (torch.initial_seed()) and re-seeds on load instead of saving the generator's state",
            (
                (_BLIND_SAVE_TORCH_RNG, '"torch": torch.initial_seed(),'),
                ('torch.set_rng_state(rng["torch"])', 'torch.manual_seed(rng["torch"])'),
            ),
        ),
    ],
    "ch15.evaluation": [
        Mutant(
            "evaluate_loss does not switch to eval mode (dropout stays on)",
            ((_BLIND_EVAL, ""),),
        ),
        Mutant(
            "evaluate_loss leaves the model in eval mode",
            (("    " + _BLIND_RESTORE + "\n", ""),),
        ),
        Mutant(
            "evaluate_loss always returns the model to training mode, even when it was in eval mode",
            ((_BLIND_RESTORE, "model.train()"),),
        ),
        Mutant(
            "evaluate_loss runs without torch.no_grad (builds the autograd graph)",
            ((_BLIND_NO_GRAD, "with nullcontext():\n        for _ in range(steps):"),),
        ),
        Mutant(
            "under torch.distributed the losses are summed over the ranks, not averaged",
            ((_BLIND_WORLD, ""),),
        ),
        Mutant(
            "evaluate_loss returns the sum of the batch losses, not their mean",
            ((_BLIND_MEAN, "mean = total"),),
        ),
        Mutant(
            "the ending is encoded without the leading space",
            ((_BLIND_ENDING, "end_tokens = encoder.encode(ending)"),),
        ),
        Mutant(
            "the mask is 1 on the context tokens too",
            ((_BLIND_CTX_MASK, "row_masks.append([1] * len(ctx_tokens) + [1] * len(end_tokens))"),),
        ),
        Mutant(
            "the rows are padded with <|endoftext|> (50256) instead of 0",
            ((_BLIND_PAD, "tokens = torch.full((len(rows), max_len), 50256, dtype=torch.long)"),),
        ),
        Mutant(
            "no shift: the logits at position t are scored against token t (and the mask is not shifted either)",
            (
                (_BLIND_SHIFT_TOKENS, "shift_tokens = tokens[:, :-1]"),
                (_BLIND_SHIFT_MASK, "shift_mask = mask[:, :-1].float()"),
            ),
        ),
        Mutant(
            "the mask is not shifted with the tokens (it scores the last context token and drops the last ending token)",
            ((_BLIND_SHIFT_MASK, "shift_mask = mask[:, :-1].float()"),),
        ),
        Mutant(
            "sums the ending's token losses instead of averaging them (long endings lose)",
            ((_BLIND_MEAN_LOSS, "mean_loss = (losses * shift_mask).sum(dim=1)"),),
        ),
        Mutant(
            "averages the loss over every position of the row, not only the ending's",
            ((_BLIND_MEAN_LOSS, "mean_loss = losses.mean(dim=1)"),),
        ),
        Mutant(
            "picks the ending with the highest loss (argmax)",
            ((_BLIND_ARGMIN, "return int(mean_loss.argmax())"),),
        ),
    ],
    "ch15.ddp": [
        Mutant(
            'backend "nccl" even without CUDA',
            ((_BLIND_CPU_BACKEND, 'device, backend = "cpu", "nccl"'),),
        ),
        Mutant(
            "the process group is never initialised under torchrun",
            ((_BLIND_INIT, ""),),
        ),
        Mutant(
            "the global RANK is used as the local rank (wrong GPU on a second machine)",
            ((_BLIND_LOCAL_RANK, "local_rank = rank"),),
        ),
        Mutant(
            'the device is "cuda" without the local rank\'s index (every rank on GPU 0)',
            ((_BLIND_CUDA_DEVICE, 'device, backend = "cuda", "nccl"'),),
        ),
        Mutant(
            "the GPU is not made current (no torch.cuda.set_device)",
            (("        torch.cuda.set_device(device)\n", ""),),
        ),
        Mutant(
            "returns (local_rank, rank, ...) in the wrong order",
            (("return rank, local_rank, world_size, device\n", "return local_rank, rank, world_size, device\n"),),
        ),
        Mutant(
            "wrap_model wraps in DDP even for world_size 1",
            ((_BLIND_SINGLE, ""),),
        ),
        Mutant(
            "wrap_model passes device_ids=[0] for a CPU model",
            ((_BLIND_CPU_DDP, "    return DDP(model, device_ids=[0])\n"),),
        ),
        Mutant(
            "cleanup_distributed destroys the process group without checking one is initialised",
            ((_BLIND_DESTROY, "    dist.destroy_process_group()\n"),),
        ),
        Mutant(
            "cleanup_distributed does nothing (the process group is left initialised)",
            ((_BLIND_DESTROY, "    pass\n"),),
        ),
    ],
}

MUTANTS = {exercise: mutants + _BLIND.get(exercise, []) for exercise, mutants in MUTANTS.items()}
