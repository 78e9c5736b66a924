"""Public checks of chapter 13: attention at scale and long context.

The online softmax and the tiled attention are compared with recorded outputs (the softmax of
PyTorch and its scaled_dot_product_attention, forward and gradients) on recorded inputs, and
watched while they run: `LiveMemory`, a TorchDispatchMode, sees every operation, so the checks
know the shapes of the exponentials (one block, one tile: the block sizes asked for are used),
the largest tensor an operation made (never one of n x n elements) and the peak of live memory
at several lengths (linear growth). The autograd.Function must save exactly Q, K, V, O and L.
The sliding-window layer is compared with recorded outputs and with itself fed in chunks through
its cache, and a small model of such layers must generate the same tokens with and without
the cache. RoPE's scaled frequencies and ALiBi's slopes are compared with recorded values, which
the course's tests prove equal to Hugging Face transformers' own.
"""

from __future__ import annotations

import functools
import math
import weakref

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from autograder.checks.modules import load_parameters
from autograder.compare import expect, expect_close, expect_list, expect_number, expect_tensor, fail
from autograder.forbidden import SOFTMAX_FAMILY
from autograder.split import split

_FROM_SCRATCH = (*SOFTMAX_FAMILY, "torch.nn.functional.scaled_dot_product_attention")
online_softmax = pytest.mark.ch13_online_softmax(pytest.mark.forbid(*_FROM_SCRATCH))
flash_forward = pytest.mark.ch13_flash_forward(pytest.mark.forbid(*_FROM_SCRATCH))
flash_backward = pytest.mark.ch13_flash_backward(pytest.mark.forbid(*_FROM_SCRATCH))
sliding_window = pytest.mark.ch13_sliding_window
rope_scaling = pytest.mark.ch13_rope_scaling
alibi = pytest.mark.ch13_alibi

# float32 sums in another order (blocks, tiles, a loop over heads) differ by ~1e-6.
ATOL = 2e-5
_EXPONENTIALS = {"exp", "exp_", "exp2", "exp2_"}
_REDUCTIONS = {"amax", "max", "sum", "logsumexp", "amin", "min", "mean", "cumsum", "cummax"}


def _reduced_extent(tensor: torch.Tensor, dim) -> int | None:
    """How many elements of `tensor` a reduction over `dim` combines into one (None: not a reduction,
    as torch.max(a, b) is elementwise)."""
    if isinstance(dim, torch.Tensor):
        return None
    if dim is None or dim == []:
        return tensor.numel()
    dims = [dim] if isinstance(dim, int) else list(dim)
    return math.prod(tensor.shape[d] for d in dims) if tensor.dim() else 1


class LiveMemory(TorchDispatchMode):
    """Bytes of the tensor storages that operations allocate while it is active: now and at the peak.

    Every operation's new output storage counts until the last tensor using it is freed (a weakref
    finalizer per tensor); views and in-place results share their input's storage and add nothing.
    Tensors made before the block (the inputs) do not count. Deterministic on a CPU, unlike the
    process's resident memory. It also notes the largest output of one operation (in elements), the
    exponentials taken and how many elements each reduction combined.
    """

    def __init__(self, storages: bool = True):
        super().__init__()
        self.storages = storages  # False: note shapes only (faster), no memory accounting
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, tensors using it]
        self.current = 0
        self.peak = 0
        self.largest = 0
        self.exponentials: list[list[int]] = []  # the shape of each exponential's output
        self.reduced_widths: list[int] = []  # how many elements each reduction combined into one

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # PyTorch wraps a mode's __torch_dispatch__ to keep its compiler out, which imports torch._dynamo
        # (a second or more) on first use; nothing here is compiled.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in _EXPONENTIALS or (name == "pow" and not isinstance(args[0], torch.Tensor)):
            self.exponentials.append(list(out.shape))
        elif name in _REDUCTIONS and isinstance(args[0], torch.Tensor):
            extent = _reduced_extent(args[0], args[1] if len(args) > 1 else (kwargs or {}).get("dim"))
            if extent is not None:
                self.reduced_widths.append(extent)
        aliases = any(r.alias_info is not None for r in func._schema.returns)
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, aliases)
        return out

    def _track(self, tensor: torch.Tensor, aliases: bool) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key == 0:
            return
        self.largest = max(self.largest, tensor.numel())
        if not self.storages:
            return
        if key in self.live:
            self.live[key][1] += 1
        elif aliases:
            return  # a view of a tensor made before the block
        else:
            self.live[key] = [storage.nbytes(), 1]
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.live[key]
            self.current -= entry[0]

    def largest_exponential(self) -> list[int]:
        """The shape of the exponential with the most elements ([] when none was taken)."""
        return max(self.exponentials, key=lambda shape: (math.prod(shape), len(shape)), default=[])


def single_threaded(produce):
    """`produce` run with one torch thread: the tensors here are tiny, and on a busy machine every
    multi-threaded operation waits for its slowest thread."""

    @functools.wraps(produce)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return produce(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


def expect_pair(result, what: str, names: str) -> tuple:
    expect(isinstance(result, (tuple, list)) and len(result) == 2, f"{what} should return ({names})")
    return tuple(result)


# ---------------------------------------------------------------- ch13.online_softmax


def online_of(sub, case: dict) -> dict:
    """Produce: online_softmax_weighted_sum on the case, and the shapes of what it exponentiated and reduced."""
    with LiveMemory(storages=False) as log:
        result = sub.online_softmax_weighted_sum(case["scores"].clone(), case["values"].clone(), case["block_size"])
    out, lse = expect_pair(result, "online_softmax_weighted_sum", "out, lse")
    return {"out": out, "lse": lse, "exp": log.largest_exponential(), "reduced": max(log.reduced_widths, default=0)}


def expect_online(outputs: dict, case: dict, expected: dict, what: str) -> None:
    scores, block = case["scores"], case["block_size"]
    n = scores.shape[-1]
    rows = scores.numel() // n
    shape = (*scores.shape[:-1], case["values"].shape[-1])
    expect_tensor(outputs["out"], f"the output on {what}", shape=shape)
    expect_tensor(outputs["lse"], f"the log-sum-exp on {what}", shape=tuple(scores.shape[:-1]))
    if bool(torch.isnan(outputs["out"]).any() or torch.isnan(outputs["lse"]).any()):
        fail(
            f"nan in the result on {what}: a row whose first block is all -inf has a running max of -inf, "
            "and -inf - (-inf) is nan; subtract 0 while the max is still -inf"
        )
    expect_close(outputs["out"], expected["out"], f"the softmax-weighted sum on {what}", atol=ATOL)
    expect_close(outputs["lse"], expected["lse"], f"the log-sum-exp on {what}", atol=1e-4, rtol=1e-6)
    width = min(block, n)
    shape = outputs["exp"]
    expect(bool(shape), f"on {what} no exponential was taken (torch.exp of each block's shifted scores)")
    if math.prod(shape) > rows * width:
        fail(
            f"on {what} an exponential of {math.prod(shape) // rows} columns per row was taken at once; "
            f"stream over blocks of block_size={block} columns"
        )
    if shape[-1] != width:
        fail(
            f"on {what} the largest exponential covers {shape[-1]} columns; "
            f"use blocks of exactly block_size={block} columns (the last one may be shorter)"
        )
    if n > block and outputs["reduced"] > block:
        fail(
            f"on {what} a reduction combined {outputs['reduced']} scores at once: one pass over blocks of "
            f"block_size={block} columns, no max or sum over a whole row first"
        )


def _recorded_online(sub, recorded):
    return [online_of(sub, case) for case in recorded["online"]]


@online_softmax
@split(produce=single_threaded(_recorded_online))
def test_online_softmax_matches_softmax(outputs, recorded):
    """online_softmax_weighted_sum: torch.softmax's weighted sums and logsumexp, one block at a time
    (uneven blocks, scores + 1000, rows starting with -inf, block 1, one short block)"""
    expect_list(outputs, len(recorded["online"]), "the online softmax results")
    for case, out in zip(recorded["online"], outputs, strict=True):
        expect_online(out, case, case["expected"], case["what"])


# ---------------------------------------------------------------- ch13.flash_forward


def forward_of(sub, case: dict) -> dict:
    """Produce: flash_attention_forward on the case (the defaults when it gives no block sizes)."""
    args = [case["Q"].clone(), case["K"].clone(), case["V"].clone()]
    if case["is_causal"] or case.get("q_block") is not None:
        args.append(case["is_causal"])
    if case.get("q_block") is not None:
        args += [case["q_block"], case["k_block"]]
    with LiveMemory(storages=False) as log:
        result = sub.flash_attention_forward(*args)
    output, L = expect_pair(result, "flash_attention_forward", "O, L")
    return {"O": output, "L": L, "exp": log.largest_exponential()}


def tile_of(case: dict) -> tuple[int, int]:
    """The (queries, keys) shape of one full tile of the case."""
    q_block, k_block = case.get("q_block") or 16, case.get("k_block") or 16
    return min(q_block, case["Q"].shape[-2]), min(k_block, case["K"].shape[-2])


def expect_tiles(shape: list, case: dict, what: str) -> None:
    """The largest exponential was one full (q_block, k_block) tile of every leading dimension."""
    q_tile, k_tile = tile_of(case)
    lead = math.prod(case["Q"].shape[:-2])
    expect(bool(shape), f"{what}: no exponential was taken (P = exp(S - m) per tile)")
    if math.prod(shape) > lead * q_tile * k_tile:
        fail(
            f"{what}: an exponential of {math.prod(shape) // lead} scores per head was taken at once, more than one "
            f"{q_tile} x {k_tile} tile: work one (q_block_size, k_block_size) tile of scores at a time"
        )
    if tuple(shape[-2:]) != (q_tile, k_tile):
        swapped = tuple(shape[-2:]) == (k_tile, q_tile)
        fail(
            f"{what}: the largest tile of probabilities has shape {tuple(shape[-2:])}, not "
            f"({q_tile}, {k_tile}) = (q_block_size, k_block_size)"
            + (": q_block_size and k_block_size are swapped" if swapped else ": use the block sizes given")
        )


def expect_forward(outputs: dict, case: dict, expected: dict, what: str) -> None:
    Q = case["Q"]
    expect_tensor(outputs["O"], f"O on {what}", shape=tuple(Q.shape))
    expect_tensor(outputs["L"], f"L on {what}", shape=tuple(Q.shape[:-1]))
    expect_close(outputs["O"], expected["O"], f"O on {what}", atol=ATOL)
    if not torch.allclose(outputs["L"].double(), expected["L"].double(), atol=1e-4):
        if torch.allclose(outputs["L"].double(), expected["L"].double() * math.sqrt(Q.shape[-1]), atol=1e-3):
            fail(f"L on {what} is the log-sum-exp of the unscaled scores: take it of Q K^T / sqrt(d)")
    expect_close(outputs["L"], expected["L"], f"L (the log-sum-exp of each query's scaled scores) on {what}", atol=1e-4)
    expect_tiles(outputs["exp"], case, f"flash_attention_forward on {what}")


def _recorded_forward(sub, recorded):
    return [forward_of(sub, case) for case in recorded["forward"]]


@flash_forward
@split(produce=single_threaded(_recorded_forward))
def test_flash_forward_matches_sdpa(outputs, recorded):
    """flash_attention_forward: scaled_dot_product_attention's output and the log-sum-exp, causal and not,
    uneven lengths, either block larger, a sequence shorter than a block, the default block sizes"""
    expect_list(outputs, len(recorded["forward"]), "the flash_attention_forward results")
    for case, out in zip(recorded["forward"], outputs, strict=True):
        expect_forward(out, case, case["expected"], case["what"])


MEMORY_LENGTHS = (64, 256)
MEMORY_DIM, MEMORY_BLOCK = 16, 32


def _memory_inputs(n: int):
    gen = torch.Generator().manual_seed(n)
    return [torch.randn(1, n, MEMORY_DIM, generator=gen) for _ in range(3)]


def forward_memory(sub) -> list:
    """Produce: peak live bytes and the largest tensor of a causal forward pass at each of MEMORY_LENGTHS."""
    results = []
    for n in MEMORY_LENGTHS:
        Q, K, V = _memory_inputs(n)
        with LiveMemory() as log:
            result = sub.flash_attention_forward(Q, K, V, True, MEMORY_BLOCK, MEMORY_BLOCK)
            expect_pair(result, "flash_attention_forward", "O, L")
            del result
        results.append({"peak": log.peak, "largest": log.largest})
    return results


def expect_linear_memory(outputs: list, what: str) -> None:
    expect_list(outputs, len(MEMORY_LENGTHS), f"the memory measurements of {what}")
    for n, out in zip(MEMORY_LENGTHS, outputs, strict=True):
        largest = expect_number(out["largest"], "the largest tensor")
        if largest >= n * n:
            fail(
                f"{what} at {n} tokens created a tensor of {int(largest):,} elements, as many as the {n} x {n} "
                "score matrix or more: keep one tile at a time (and build causal masks per tile, from positions)"
            )
    small, large = (expect_number(out["peak"], "the peak memory") for out in outputs)
    growth = large / max(small, 1.0)
    expect(
        growth < 5.0,
        f"the peak live memory of {what} grows {growth:.1f}x from {MEMORY_LENGTHS[0]} to {MEMORY_LENGTHS[1]} tokens "
        f"({small / 1024:.0f} KiB to {large / 1024:.0f} KiB): linear growth is at most 4x, quadratic 16x. "
        "Does something grow with n x n (stored tiles, a full mask)?",
    )


@flash_forward
@split(produce=single_threaded(forward_memory))
def test_flash_forward_memory_grows_linearly(outputs):
    """flash_attention_forward: no n x n tensor, and peak memory about linear in the length"""
    expect_linear_memory(outputs, "flash_attention_forward (causal)")


# ---------------------------------------------------------------- ch13.flash_backward


def backward_of(sub, case: dict) -> dict:
    """Produce: flash_attention_backward on the case's Q, K, V, O, L and dO."""
    expected = case["expected"]
    with LiveMemory(storages=False) as log:
        result = sub.flash_attention_backward(
            case["Q"].clone(),
            case["K"].clone(),
            case["V"].clone(),
            expected["O"].clone(),
            expected["L"].clone(),
            case["dO"].clone(),
            case["is_causal"],
            case["q_block"],
            case["k_block"],
        )
    expect(
        isinstance(result, (tuple, list)) and len(result) == 3, "flash_attention_backward should return (dQ, dK, dV)"
    )
    return {"grads": list(result), "exp": log.largest_exponential()}


def expect_grads(grads: list, case: dict, expected: list, what: str) -> None:
    for name, got, want in zip(("dQ", "dK", "dV"), grads, expected, strict=True):
        expect_tensor(got, f"{name} on {what}", shape=tuple(want.shape))
        if name == "dQ" and bool(torch.isnan(got).any()):
            fail(f"nan in dQ on {what}: masked probabilities must be exactly 0 (exp(-inf - L) = 0)")
        expect_close(got, want, f"{name} on {what}", atol=1e-4, rtol=1e-4)


def _recorded_backward(sub, recorded):
    return [backward_of(sub, case) for case in recorded["backward"]]


@flash_backward
@split(produce=single_threaded(_recorded_backward))
def test_flash_backward_matches_sdpa_gradients(outputs, recorded):
    """flash_attention_backward: the gradients of scaled_dot_product_attention, from the saved O and L,
    tile by tile (causal and not, uneven lengths, either block larger, fewer queries than keys)"""
    expect_list(outputs, len(recorded["backward"]), "the flash_attention_backward results")
    for case, out in zip(recorded["backward"], outputs, strict=True):
        expect_list(out["grads"], 3, "(dQ, dK, dV)")
        expect_grads(out["grads"], case, case["expected"]["grads"], case["what"])
        expect_tiles(out["exp"], case, f"flash_attention_backward on {case['what']}")


def function_of(sub, case: dict) -> dict:
    """Produce: FlashAttention2.apply on the case; its output, what it saved, tensors kept on ctx, gradients."""
    Q, K, V = (case[name].clone().requires_grad_(True) for name in ("Q", "K", "V"))
    args = [Q, K, V]
    if case["is_causal"] or case.get("q_block") is not None:
        args.append(case["is_causal"])
    if case.get("q_block") is not None:
        args += [case["q_block"], case["k_block"]]
    output = sub.FlashAttention2.apply(*args)
    expect_tensor(output, "FlashAttention2.apply(...)")
    ctx = output.grad_fn
    expect(ctx is not None, "the output of FlashAttention2.apply has no grad_fn: is it a torch.autograd.Function?")
    saved = [t.detach().clone() for t in ctx.saved_tensors]
    on_ctx = sorted(
        name
        for name, value in vars(ctx).items()
        if isinstance(value, torch.Tensor)
        or (isinstance(value, (list, tuple, dict)) and any(isinstance(v, torch.Tensor) for v in tree_flatten(value)[0]))
    )
    with LiveMemory(storages=False) as log:
        # (output * dO).sum() has the gradient dO; backward(dO) would import sympy to check shapes.
        (output * case["dO"]).sum().backward()
    return {
        "O": output.detach(),
        "saved": saved,
        "on_ctx": on_ctx,
        "grads": [Q.grad, K.grad, V.grad],
        "backward_exp": log.largest_exponential(),
    }


def expect_saved(outputs: dict, case: dict, expected: dict, what: str) -> None:
    """ctx.saved_tensors are Q, K, V, O and L (in any order), nothing else."""
    expect(
        not outputs["on_ctx"],
        f"{what}: ctx.{outputs['on_ctx'][0] if outputs['on_ctx'] else ''} holds a tensor; save tensors only "
        "with ctx.save_for_backward (exactly Q, K, V, O and L)",
    )
    saved = outputs["saved"]
    expect(isinstance(saved, list), f"{what}: the saved tensors should be a list")
    wanted = {"Q": case["Q"], "K": case["K"], "V": case["V"], "O": expected["O"], "L": expected["L"]}
    n_q, n_k = case["Q"].shape[-2], case["K"].shape[-2]
    for tensor in saved:
        if isinstance(tensor, torch.Tensor) and tensor.dim() >= 2 and tuple(tensor.shape[-2:]) == (n_q, n_k):
            fail(f"{what}: a ({n_q}, {n_k}) tensor is saved for backward; save only Q, K, V, O and L")
    found = []
    for name, want in wanted.items():
        match = next(
            (
                i
                for i, t in enumerate(saved)
                if i not in found
                and isinstance(t, torch.Tensor)
                and t.shape == want.shape
                and torch.allclose(t.double(), want.double(), atol=1e-4)
            ),
            None,
        )
        if match is None:
            fail(
                f"{what}: {name} is not among the tensors saved for backward (shapes saved: "
                f"{[tuple(t.shape) for t in saved if isinstance(t, torch.Tensor)]}); "
                "save Q, K, V, O and L with ctx.save_for_backward"
            )
        found.append(match)
    expect(
        len(saved) == len(wanted),
        f"{what}: {len(saved)} tensors are saved for backward; save exactly Q, K, V, O and L",
    )


def expect_function(outputs: dict, case: dict, expected: dict, what: str) -> None:
    expect_close(outputs["O"], expected["O"], f"the output of FlashAttention2 on {what}", atol=ATOL)
    expect_saved(outputs, case, expected, f"FlashAttention2 on {what}")
    expect_list(outputs["grads"], 3, "the gradients of Q, K and V")
    for name, got in zip(("Q", "K", "V"), outputs["grads"], strict=True):
        expect(got is not None, f"FlashAttention2 on {what}: no gradient reaches {name}")
    expect_grads(outputs["grads"], case, expected["grads"], f"FlashAttention2 on {what}")
    expect_tiles(outputs["backward_exp"], case, f"the backward pass of FlashAttention2 on {what}")


def _recorded_function(sub, recorded):
    return [function_of(sub, case) for case in recorded["function"]]


@flash_backward
@split(produce=single_threaded(_recorded_function))
def test_flash_attention_function_matches_sdpa(outputs, recorded):
    """FlashAttention2.apply: SDPA's output and gradients; it saves exactly Q, K, V, O and L
    (causal and not, the default block sizes)"""
    expect_list(outputs, len(recorded["function"]), "the FlashAttention2 results")
    for case, out in zip(recorded["function"], outputs, strict=True):
        expect_function(out, case, case["expected"], case["what"])


def function_memory(sub) -> list:
    """Produce: peak live bytes and the largest tensor of a causal forward + backward at each length."""
    results = []
    for n in MEMORY_LENGTHS:
        Q, K, V = (t.requires_grad_(True) for t in _memory_inputs(n))
        with LiveMemory() as log:
            output = sub.FlashAttention2.apply(Q, K, V, True, MEMORY_BLOCK, MEMORY_BLOCK)
            expect_tensor(output, "FlashAttention2.apply(...)")
            output.sum().backward()
            del output
        results.append({"peak": log.peak, "largest": log.largest})
    return results


@flash_backward
@split(produce=single_threaded(function_memory))
def test_flash_attention_memory_grows_linearly(outputs):
    """FlashAttention2 forward + backward: no n x n tensor, and peak memory about linear in the length"""
    expect_linear_memory(outputs, "FlashAttention2 forward + backward (causal)")


# ---------------------------------------------------------------- ch13.sliding_window


def masks_of(sub, cases: list) -> list:
    return [sub.sliding_window_mask(case["num_tokens"], case["window_size"]) for case in cases]


def expect_masks(outputs: list, cases: list, expected: list) -> None:
    expect_list(outputs, len(cases), "the masks")
    for case, got, want in zip(cases, outputs, expected, strict=True):
        what = f"sliding_window_mask({case['num_tokens']}, {case['window_size']})"
        expect_tensor(got, what, shape=tuple(want.shape))
        expect(got.dtype == torch.bool, f"{what} has dtype {got.dtype}; expected bool")
        if not torch.equal(got, want):
            if torch.equal(got, ~want):
                fail(f"{what} is inverted: True where a query may attend (as in SDPA's boolean attn_mask)")
            i, j = (int(v) for v in (got != want).nonzero()[0])
            fail(
                f"{what}: wrong at query {i}, key {j} (got {bool(got[i, j])}): query i attends to keys j with "
                "i - window_size < j <= i"
            )


def _window_layer(sub, case: dict):
    c = case["config"]
    layer = sub.SlidingWindowAttention(
        c["d_in"], c["d_out"], c["context_length"], 0.0, c["num_heads"], c["window_size"], c.get("qkv_bias", False)
    )
    return load_parameters(layer, case["state"], "SlidingWindowAttention").eval()


def _cache_length(layer) -> int:
    cache_k = getattr(layer, "cache_k", "missing")
    if cache_k is None:
        return 0
    expect(isinstance(cache_k, torch.Tensor), "SlidingWindowAttention has no cache_k tensor (None when empty)")
    cache_v = getattr(layer, "cache_v", None)
    expect(
        isinstance(cache_v, torch.Tensor) and cache_v.shape == cache_k.shape,
        "SlidingWindowAttention's cache_v should be a tensor shaped like cache_k",
    )
    return cache_k.shape[2]


def window_outputs(sub, case: dict) -> dict:
    """Produce: the layer on the whole input, then fed chunk by chunk through its cache."""
    layer = _window_layer(sub, case)
    x = case["x"]
    with torch.no_grad():
        full = layer(x.clone())
        untouched = [_cache_length(layer), getattr(layer, "tokens_seen", None)]
        chunks, lengths, seen = [], [], []
        layer.reset_cache()
        for start, end in case["chunks"]:
            chunks.append(layer(x[:, start:end].clone(), use_cache=True))
            lengths.append(_cache_length(layer))
            seen.append(getattr(layer, "tokens_seen", None))
        after_plain = layer(x.clone())
        lengths_after_plain = _cache_length(layer)
        layer.reset_cache()
    return {
        "full": full,
        "untouched": untouched,
        "chunks": chunks,
        "lengths": lengths,
        "seen": seen,
        "after_plain": [after_plain, lengths_after_plain],
        "reset": [_cache_length(layer), getattr(layer, "tokens_seen", None)],
    }


def expect_window(outputs: dict, case: dict, expected, what: str) -> None:
    window = case["config"]["window_size"]
    expect_close(outputs["full"], expected, f"the output on {what}", atol=ATOL)
    expect(
        outputs["untouched"] == [0, 0],
        f"{what}: forward without use_cache changed the cache (cache length, tokens_seen = {outputs['untouched']}); "
        "a new layer starts empty and only use_cache=True reads or fills it",
    )
    expect_list(outputs["chunks"], len(case["chunks"]), "the outputs of the chunks")
    seen = 0
    for (start, end), chunk, length, tokens_seen in zip(
        case["chunks"], outputs["chunks"], outputs["lengths"], outputs["seen"], strict=True
    ):
        seen = end
        expect_close(
            chunk,
            expected[:, start:end],
            f"{what}: the output for positions {start}..{end - 1} fed through the cache "
            f"(it should equal the output without the cache)",
            atol=ATOL,
        )
        expect(
            tokens_seen == seen,
            f"{what}: after positions {start}..{end - 1} tokens_seen is {tokens_seen}, not {seen}",
        )
        expect(
            length == min(window, seen),
            f"{what}: after {seen} tokens the cache holds {length} positions; it should hold the last "
            f"min(window_size, tokens seen) = {min(window, seen)}",
        )
    expect_close(
        outputs["after_plain"][0], expected, f"{what}: the output without the cache after cached calls", atol=ATOL
    )
    expect(
        outputs["after_plain"][1] == min(window, seen),
        f"{what}: forward without use_cache changed the cache from {min(window, seen)} to "
        f"{outputs['after_plain'][1]} positions",
    )
    expect(outputs["reset"] == [0, 0], f"{what}: after reset_cache() the cache is not empty and tokens_seen not 0")


def _recorded_windows(sub, recorded):
    return [window_outputs(sub, case) for case in recorded["window"]]


@sliding_window
@split(produce=lambda sub, recorded: masks_of(sub, recorded["masks"]))
def test_sliding_window_masks(outputs, recorded):
    """sliding_window_mask: True for i - window_size < j <= i (window 1, windows shorter and longer than the sequence)"""
    expect_masks(outputs, recorded["masks"], [case["mask"] for case in recorded["masks"]])


@sliding_window
@split(produce=single_threaded(_recorded_windows))
def test_sliding_window_attention_and_cache(outputs, recorded):
    """SlidingWindowAttention: recorded outputs (one a window longer than the sequence: chapter 3's attention);
    fed in chunks through the rolling cache, the same outputs, with the last window_size positions cached"""
    expect_list(outputs, len(recorded["window"]), "the SlidingWindowAttention results")
    for case, out in zip(recorded["window"], outputs, strict=True):
        expect_window(out, case, case["expected"], case["what"])


def dropout_outputs(sub, case: dict) -> dict:
    """Produce: the case's layer with dropout 0.5, twice in training mode and once in eval mode."""
    c = case["config"]
    layer = sub.SlidingWindowAttention(
        c["d_in"], c["d_out"], c["context_length"], 0.5, c["num_heads"], c["window_size"], c.get("qkv_bias", False)
    )
    load_parameters(layer, case["state"], "SlidingWindowAttention")
    torch.manual_seed(0)
    with torch.no_grad():
        training = [layer.train()(case["x"].clone()) for _ in range(2)]
        evaluation = layer.eval()(case["x"].clone())
    return {"training": training, "eval": evaluation}


@sliding_window
@split(produce=single_threaded(lambda sub, recorded: dropout_outputs(sub, recorded["window"][0])))
def test_sliding_window_dropout(outputs, recorded):
    """SlidingWindowAttention applies its dropout in training mode only, like chapter 3's attention"""
    case = recorded["window"][0]
    expect_close(outputs["eval"], case["expected"], "the output in eval mode with dropout 0.5", atol=ATOL)
    expect_list(outputs["training"], 2, "the outputs in training mode")
    first, second = outputs["training"]
    expect_tensor(first, "the output in training mode", shape=tuple(case["expected"].shape))
    expect(
        not torch.allclose(first, case["expected"], atol=1e-4) and not torch.allclose(first, second, atol=1e-4),
        "with dropout 0.5 in training mode the output is the same as in eval mode: apply self.dropout to the "
        "attention weights, as chapter 3 does",
    )


class WindowLM(nn.Module):
    """A toy language model around the student's layer: token and position embeddings, residual
    sliding-window attention layers, a linear head."""

    def __init__(self, layer_class, config: dict):
        super().__init__()
        d, vocab, context = config["d"], config["vocab_size"], config["context_length"]
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(context, d)
        self.layers = nn.ModuleList(
            layer_class(d, d, context, 0.0, config["num_heads"], config["window_size"])
            for _ in range(config["num_layers"])
        )
        self.head = nn.Linear(d, vocab)

    def forward(self, idx: torch.Tensor, start: int = 0, use_cache: bool = False) -> torch.Tensor:
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(start, start + idx.shape[1]))
        for layer in self.layers:
            x = x + layer(x, use_cache=use_cache)
        return self.head(x)


def build_window_lm(layer_class, config: dict, state: dict | None = None) -> WindowLM:
    model = WindowLM(layer_class, config)
    if state is not None:
        load_parameters(model, state, "the toy model of SlidingWindowAttention layers")
    return model.double().eval()


def generate_both_ways(model: WindowLM, prompt: torch.Tensor, steps: int) -> dict:
    """Greedy tokens recomputing everything at each step, and with the layers' caches; the largest cache seen."""
    with torch.no_grad():
        uncached = prompt
        for _ in range(steps):
            uncached = torch.cat([uncached, model(uncached)[:, -1:].argmax(-1)], dim=1)
        for layer in model.layers:
            layer.reset_cache()
        cached, logits, largest = prompt, model(prompt, use_cache=True), 0
        for _ in range(steps):
            largest = max(largest, *(_cache_length(layer) for layer in model.layers))
            next_token = logits[:, -1:].argmax(-1)
            logits = model(next_token, start=cached.shape[1], use_cache=True)
            cached = torch.cat([cached, next_token], dim=1)
    return {"uncached": uncached, "cached": cached, "largest_cache": largest}


def expect_generation(outputs: dict, case: dict, expected: torch.Tensor, what: str) -> None:
    expect_tensor(outputs["uncached"], f"the tokens generated without the cache on {what}", shape=tuple(expected.shape))
    expect_tensor(outputs["cached"], f"the tokens generated with the cache on {what}", shape=tuple(expected.shape))
    differs = (outputs["cached"] != outputs["uncached"]).nonzero()
    if len(differs):
        position = int(differs[0, 1])
        fail(
            f"{what}: greedy generation with the cache departs from generation without it at position {position} "
            f"(the window is {case['config']['window_size']}, the prompt {case['prompt'].shape[1]} tokens)"
        )
    expect(
        torch.equal(outputs["uncached"], expected),
        f"{what}: the generated tokens differ from the reference's (the layers without the cache are wrong)",
    )
    window = case["config"]["window_size"]
    expect(
        outputs["largest_cache"] <= window,
        f"{what}: a cache held {outputs['largest_cache']} positions while generating; at most window_size = {window}",
    )


@sliding_window
@split(
    produce=single_threaded(
        lambda sub, recorded: generate_both_ways(
            build_window_lm(
                sub.SlidingWindowAttention, recorded["generation"]["config"], recorded["generation"]["state"]
            ),
            recorded["generation"]["prompt"],
            recorded["generation"]["steps"],
        )
    )
)
def test_cached_generation_equals_uncached(outputs, recorded):
    """a 2-layer toy model of SlidingWindowAttention generates the same tokens with and without the cache"""
    case = recorded["generation"]
    expect_generation(outputs, case, case["expected"], "the toy model")


# ---------------------------------------------------------------- ch13.rope_scaling

ROPE_FUNCTIONS = {"linear": "linear_scaled_inv_freq", "ntk": "ntk_scaled_inv_freq", "yarn": "yarn_inv_freq"}


def rope_of(sub, cases: list) -> list:
    """Produce: each case's function on its arguments, as {"inv_freq", "attention_factor"}."""
    results = []
    for case in cases:
        result = getattr(sub, ROPE_FUNCTIONS[case["method"]])(*case["args"], **case["kwargs"])
        if case["method"] == "yarn":
            inv_freq, factor = expect_pair(result, "yarn_inv_freq", "inv_freq, attention_factor")
            results.append({"inv_freq": inv_freq, "attention_factor": factor})
        else:
            results.append({"inv_freq": result, "attention_factor": None})
    return results


def _call(case: dict) -> str:
    args = ", ".join(repr(a) for a in case["args"])
    kwargs = "".join(f", {k}={v!r}" for k, v in case["kwargs"].items())
    return f"{ROPE_FUNCTIONS[case['method']]}({args}{kwargs})"


def expect_rope(outputs: list, cases: list, expected: list) -> None:
    expect_list(outputs, len(cases), "the RoPE results")
    for case, got, want in zip(cases, outputs, expected, strict=True):
        what = _call(case)
        expect_tensor(got["inv_freq"], what, shape=tuple(want["inv_freq"].shape))
        expect(got["inv_freq"].dtype == torch.float32, f"{what} has dtype {got['inv_freq'].dtype}; expected float32")
        expect_close(got["inv_freq"], want["inv_freq"], f"the inverse frequencies of {what}", atol=0.0, rtol=1e-5)
        if case["method"] == "yarn":
            factor = expect_number(got["attention_factor"], f"the attention factor of {what}")
            expect(
                math.isclose(factor, want["attention_factor"], rel_tol=1e-6),
                f"the attention factor of {what} is {factor:.6g}: 0.1 * ln(factor) + 1, or 1.0 when factor <= 1",
            )


@rope_scaling
@split(produce=lambda sub, recorded: rope_of(sub, recorded["rope"]))
def test_rope_scaling_matches_recorded(outputs, recorded):
    """linear, NTK-aware and YaRN inverse frequencies (and YaRN's attention factor): Llama 3's and small head
    sizes, a fractional factor, factor 1, other betas, ramp bounds clamped at both ends"""
    expect_rope(outputs, recorded["rope"], [case["expected"] for case in recorded["rope"]])


# ---------------------------------------------------------------- ch13.alibi


def alibi_of(sub, slopes_for: list, biases_for: list) -> dict:
    return {
        "slopes": [sub.alibi_slopes(n) for n in slopes_for],
        "biases": [sub.alibi_bias(heads, tokens) for heads, tokens in biases_for],
    }


def expect_alibi(outputs: dict, slopes_for: list, biases_for: list, slopes: list, biases: list) -> None:
    expect_list(outputs["slopes"], len(slopes_for), "the slopes")
    for n, got, want in zip(slopes_for, outputs["slopes"], slopes, strict=True):
        what = f"alibi_slopes({n})"
        expect_tensor(got, what, shape=(n,))
        expect(got.dtype == torch.float32, f"{what} has dtype {got.dtype}; expected float32")
        if not torch.allclose(got.double(), want.double(), rtol=1e-6, atol=0.0):
            power = 2 ** math.floor(math.log2(n))
            first = int((~torch.isclose(got.double(), want.double(), rtol=1e-6, atol=0.0)).nonzero()[0])
            where = "" if first < power else f" (one of the {n - power} slopes beyond the power of two {power})"
            expect_close(got, want, f"{what}, first wrong at head {first}{where}", atol=0.0, rtol=1e-6)
    expect_list(outputs["biases"], len(biases_for), "the biases")
    for (heads, tokens), got, want in zip(biases_for, outputs["biases"], biases, strict=True):
        what = f"alibi_bias({heads}, {tokens})"
        expect_tensor(got, what, shape=(heads, tokens, tokens))
        expect(got.dtype == torch.float32, f"{what} has dtype {got.dtype}; expected float32")
        causal = torch.tril(torch.ones(tokens, tokens, dtype=torch.bool))
        expect_close(
            got[:, causal], want[:, causal], f"{what} on and below the diagonal (slope_h * (j - i))", atol=1e-6
        )


@alibi
@split(produce=lambda sub, recorded: alibi_of(sub, recorded["slopes_for"], recorded["biases_for"]))
def test_alibi_matches_recorded(outputs, recorded):
    """alibi_slopes for 1 to 24 heads (12, 6 and 24 not powers of two) and alibi_bias below the diagonal"""
    expect_alibi(outputs, recorded["slopes_for"], recorded["biases_for"], recorded["slopes"], recorded["biases"])
