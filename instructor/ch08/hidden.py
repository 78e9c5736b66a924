"""Hidden checks of chapter 8: the live reference against the submission on configurations,
parameters and inputs drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Iterator

import torch
from torch import nn

from autograder.checks.llama_setups import write_ranks
from autograder.checks.modules import module_check, parameter_shapes, parameter_state, randomised
from autograder.checks.test_ch08 import (
    expect_eos_zero_stops,
    expect_float16_rms_norm,
    expect_generations_in_turn,
    expect_gqa_value_error,
    expect_llama_parameter_names,
    expect_wrong_shape_rejected,
    generations_in_turn,
    gqa_construction_errors,
    grouped_query_attention,
    kv_cache,
    llama3_tokenizer,
    llama_model,
    llama_parameter_names,
    load_llama,
    load_llama_weights,
    loading_errors,
    rms_norm,
    rope,
    swapped_tokens,
    swiglu,
    with_tokens_swapped,
)
from autograder.compare import expect, expect_close, expect_equal_tensor, expect_sequence_equal, expect_type, fail
from autograder.split import split

ATOL = 1e-5


def _config(rng: random.Random) -> dict:
    """A small Llama configuration, without its dtype (not data): `_float32` adds it when building."""
    n_kv_groups = rng.randint(1, 3)
    n_heads = n_kv_groups * rng.randint(1, 3)
    scaling = rng.choice(
        [
            None,
            {
                "factor": rng.choice([8.0, 32.0]),
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_context_length": rng.choice([64, 8192]),
            },
        ]
    )
    return {
        "vocab_size": rng.randint(10, 60),
        "context_length": rng.randint(8, 20),
        "emb_dim": n_heads * 2 * rng.randint(1, 3),
        "n_heads": n_heads,
        "n_layers": rng.randint(1, 3),
        "hidden_dim": rng.randint(4, 30),
        "n_kv_groups": n_kv_groups,
        "rope_base": rng.choice([10_000.0, 500_000.0]),
        "rope_freq": scaling,
    }


def _with_dtype(cfg: dict) -> dict:
    """A configuration of `_config` completed with its dtype, float32."""
    return {**cfg, "dtype": torch.float32}


def _float32(cls):
    """`cls` built from a configuration of `_config`, completed with its dtype."""
    return lambda cfg: cls(_with_dtype(cfg))


class _WithRope(nn.Module):
    """A GroupedQueryAttention called like a one-input module: causal mask and RoPE tables built here."""

    def __init__(self, attention: nn.Module, rope_params):
        super().__init__()
        self.attention = attention
        self.rope_params = rope_params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_tokens = x.shape[1]
        cos, sin = self.rope_params(self.attention.head_dim, context_length=num_tokens + 3)
        mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool), diagonal=1)
        return self.attention(x, mask, cos, sin)


def _named_llama(namespace):
    """namespace's Llama3Model built from a configuration of `_config`, its parameter names checked first."""

    def build(cfg: dict) -> nn.Module:
        model = namespace.Llama3Model(_with_dtype(cfg))
        expect_llama_parameter_names(parameter_shapes(model, "Llama3Model"), llama_parameter_names(cfg["n_layers"]))
        return model

    return build


def _attention_with_rope(namespace):
    def build(d_in, d_out, num_heads, num_kv_groups):
        return _WithRope(
            namespace.GroupedQueryAttention(d_in, d_out, num_heads, num_kv_groups), namespace.compute_rope_params
        )

    return build


def _rms_norm_draw(rng):
    width = rng.randint(2, 40)
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, 5), width) * rng.choice([0.01, 1.0, 10.0]) + rng.random()
    return [({"emb_dim": width, "eps": rng.choice([1e-5, 1e-6, 1e-3])}, inputs)]


def _feed_forward_draw(rng):
    cfg = _config(rng)
    return [({"cfg": cfg}, torch.randn(2, 3, cfg["emb_dim"]))]


def _attention_draw(rng):
    num_kv_groups = rng.randint(1, 3)
    num_heads = num_kv_groups * rng.randint(1, 3)
    config = {
        "d_in": rng.randint(2, 12),
        "d_out": num_heads * 2 * rng.randint(1, 3),
        "num_heads": num_heads,
        "num_kv_groups": num_kv_groups,
    }
    return [(config, torch.randn(rng.randint(1, 3), rng.randint(1, 8), config["d_in"]))]


def _llama_draw(rng):
    cfg = _config(rng)
    return [
        ({"cfg": cfg}, torch.randint(0, cfg["vocab_size"], (rng.randint(1, 3), rng.randint(1, cfg["context_length"]))))
    ]


test_rms_norm_agrees_with_reference = rms_norm(
    module_check(
        "RMSNorm",
        lambda namespace: namespace.RMSNorm,
        _rms_norm_draw,
        "hidden: outputs and gradients for a random width, eps and scale",
        random_weights=True,
        atol=ATOL,
    )
)
test_feed_forward_agrees_with_reference = swiglu(
    module_check(
        "FeedForward",
        lambda namespace: _float32(namespace.FeedForward),
        _feed_forward_draw,
        "hidden: outputs and gradients for random widths",
        atol=ATOL,
    )
)
test_gqa_agrees_with_reference = grouped_query_attention(
    module_check(
        "GroupedQueryAttention",
        _attention_with_rope,
        _attention_draw,
        "hidden: outputs and gradients for random sizes, heads and groups",
        random_weights=True,
        atol=ATOL,
    )
)
test_llama_agrees_with_reference = llama_model(
    module_check(
        "Llama3Model",
        _named_llama,
        _llama_draw,
        "hidden: logits and gradients for a random configuration and input length",
        random_weights=True,
        atol=ATOL,
    )
)


def _float16_rms_norm_case(seed):
    """float16 values of a few hundred in random rows and a random width: each row holds at least one whose
    square is above float16's largest number, 65504; a random eps and weight."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    width = rng.randint(2, 40)
    x = torch.randn(rng.randint(1, 3), rng.randint(1, 5), width) * rng.uniform(100.0, 400.0)
    big = torch.empty(x.shape[:-1]).uniform_(300.0, 600.0) * (torch.randint(0, 2, x.shape[:-1]) * 2 - 1)
    x[..., rng.randrange(width)] = big
    return {
        "width": width,
        "eps": rng.choice([1e-5, 1e-6, 1e-3]),
        "weight": torch.rand(width) * 1.5 + 0.25,
        "x": x.half(),
    }


def _rms_norm_on(namespace, case: dict):
    norm = namespace.RMSNorm(case["width"], eps=case["eps"])
    with torch.no_grad():
        norm.weight.copy_(case["weight"])
        return norm(case["x"])


def _float16_rms_norm_outputs(sub, case):
    return _rms_norm_on(sub, case)


@rms_norm
@split(setup=_float16_rms_norm_case, produce=_float16_rms_norm_outputs)
def test_rms_norm_float16_agrees_with_reference(outputs, case, ref):
    """hidden: float16 inputs with values of a few hundred"""
    expect_float16_rms_norm(
        outputs, _rms_norm_on(ref, case), "RMSNorm on a hidden float16 input with values of a few hundred"
    )


# (what is wrong with the configuration, as the messages say it) of `_bad_attention_case`'s configurations.
_BAD_ATTENTION = (
    "num_heads not divisible by num_kv_groups",
    "d_out not divisible by num_heads",
)


def _bad_attention_case(seed):
    """(d_in, d_out, num_heads, num_kv_groups) for each of _BAD_ATTENTION, then a valid one: more heads than
    groups but not a multiple of them, with d_out a multiple of the heads; heads a multiple of the groups, d_out
    not a multiple of the heads, d_in a multiple of both (so that a check of d_in instead lets it through);
    and a valid configuration with d_in a multiple of neither (which must be built)."""
    rng = random.Random(seed)
    groups = rng.randint(2, 4)
    heads = groups * rng.randint(1, 3) + rng.randint(1, groups - 1)
    uneven_groups = (rng.randint(2, 12), heads * rng.randint(1, 4), heads, groups)
    groups = rng.randint(1, 3)
    heads = groups * rng.randint(2 if groups == 1 else 1, 3)
    uneven_heads = (heads * rng.randint(1, 3), heads * rng.randint(1, 4) + rng.randint(1, heads - 1), heads, groups)
    groups = rng.randint(1, 3)
    heads = groups * rng.randint(2 if groups == 1 else 1, 3)
    valid = (heads * rng.randint(0, 2) + rng.randint(1, heads - 1), heads * rng.randint(1, 4), heads, groups)
    return {"configurations": [uneven_groups, uneven_heads], "valid": valid}


def _bad_attention_outputs(sub, case):
    return gqa_construction_errors(sub, [*case["configurations"], case["valid"]])


@grouped_query_attention
@split(setup=_bad_attention_case, produce=_bad_attention_outputs)
def test_gqa_rejects_bad_configurations_hidden(outputs, case, ref):
    """hidden: bad configurations (heads not divisible by the groups, d_out not by the heads) and a valid one"""
    expected = gqa_construction_errors(ref, [*case["configurations"], case["valid"]])
    expect(
        isinstance(outputs, list) and len(outputs) == len(_BAD_ATTENTION) + 1,
        "the GroupedQueryAttention results should hold one result per configuration",
    )
    bad = len(_BAD_ATTENTION)
    for problem, reference, raised in zip(_BAD_ATTENTION, expected[:bad], outputs[:bad], strict=True):
        assert reference is not None and "ValueError" in reference, f"the reference accepts {problem}"
        expect_gqa_value_error(raised, f"GroupedQueryAttention with {problem} (a hidden configuration)")
    assert expected[-1] is None, "the reference rejects a valid configuration"
    raised = outputs[-1]
    if raised is not None:
        got = raised[0] if isinstance(raised, list) and raised else raised
        fail(
            f"GroupedQueryAttention raised {got} on a valid hidden configuration: d_out is divisible by num_heads "
            "and num_heads by num_kv_groups (d_in can be any size), so it should be built"
        )


def _rotate_half_tables(num_rows: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of random angles, the same in both halves of a row: the layout compute_rope_params makes."""
    angles = torch.rand(num_rows, head_dim // 2) * 2 * torch.pi
    angles = torch.cat([angles, angles], dim=1)
    return torch.cos(angles), torch.sin(angles)


def _rope_case(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    head_dim = 2 * rng.randint(1, 40)
    x = torch.randn(rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, cfg["context_length"]), head_dim)
    cos, sin = _rotate_half_tables(cfg["context_length"], head_dim)
    return {
        "args": [head_dim, cfg["rope_base"], cfg["context_length"], cfg["rope_freq"]],
        "x": x,
        "cos": cos,
        "sin": sin,
    }


def _rope_outputs(sub, case):
    return {
        "tables": sub.compute_rope_params(*case["args"]),
        "rotated": sub.apply_rope(case["x"], case["cos"], case["sin"]),
    }


@rope
@split(setup=_rope_case, produce=_rope_outputs)
def test_rope_agrees_with_reference(outputs, case, ref):
    """hidden: tables and rotations for a random head size, base, length and scaling"""
    tables = outputs["tables"]
    expect(
        isinstance(tables, (list, tuple)) and len(tables) == 2,
        "compute_rope_params should return two tables, (cos, sin)",
    )
    expected_cos, expected_sin = ref.compute_rope_params(*case["args"])
    expect_close(tables[0], expected_cos, "cos for a hidden configuration", atol=1e-5)
    expect_close(tables[1], expected_sin, "sin for a hidden configuration", atol=1e-5)
    expect_close(
        outputs["rotated"],
        ref.apply_rope(case["x"], case["cos"], case["sin"]),
        "apply_rope on a hidden input",
        atol=1e-5,
    )


def _chunk_ends(length: int, rng: random.Random) -> list[int]:
    """Where the chunks of `length` tokens end, each 1 to 5 tokens long."""
    ends = [min(length, rng.randint(1, 5))]
    while ends[-1] < length:
        ends.append(min(length, ends[-1] + rng.randint(1, 5)))
    return ends


def _cached_case(ref, seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    reference = randomised(_float32(ref.Llama3Model)(cfg))
    prompt = torch.randint(0, cfg["vocab_size"], (rng.randint(1, 3), rng.randint(1, 4)))
    steps = rng.randint(1, cfg["context_length"] - prompt.shape[1])
    tokens = torch.randint(0, cfg["vocab_size"], (1, cfg["context_length"]))
    return {
        "cfg": cfg,
        "state": parameter_state(reference),
        "prompt": prompt,
        "steps": steps,
        "tokens": tokens,
        "ends": _chunk_ends(cfg["context_length"], rng),
    }


def _llama_with_case_parameters(namespace, case: dict) -> nn.Module:
    return load_llama(_float32(namespace.Llama3Model)(case["cfg"]), case["state"]).eval()


def _cached_outputs(sub, case):
    """The greedy tokens, then the logits of each chunk of the tokens fed through one cache."""
    model = _llama_with_case_parameters(sub, case)
    generated = sub.generate_text_simple_cached(model, case["prompt"], case["steps"])
    cache, start, chunk_logits = sub.KVCache(case["cfg"]["n_layers"]), 0, []
    with torch.no_grad():
        for end in case["ends"]:
            chunk_logits.append(sub.forward_with_cache(model, case["tokens"][:, start:end], cache))
            start = end
    return {"generated": generated, "chunk_logits": chunk_logits}


@kv_cache
@split(setup=_cached_case, produce=_cached_outputs)
def test_cached_generation_agrees_with_reference(outputs, case, ref):
    """hidden: chunked cached logits and cached greedy tokens on a random model and prompt"""
    reference = _llama_with_case_parameters(ref, case)
    expected = ref.generate_text_simple_cached(reference, case["prompt"], case["steps"])
    expect_equal_tensor(outputs["generated"], expected, "cached greedy tokens on a hidden model and prompt")
    chunk_logits = outputs["chunk_logits"]
    expect(
        isinstance(chunk_logits, list) and len(chunk_logits) == len(case["ends"]),
        "forward_with_cache should give logits for every chunk",
    )
    with torch.no_grad():
        full = reference(case["tokens"])
    for start, end, logits in zip([0, *case["ends"]], case["ends"], chunk_logits):
        expect_close(logits, full[:, start:end], "cached logits of a hidden chunk", atol=1e-4)


# How the messages of `test_generations_in_turn_agree_with_reference` name `_in_turn_case`'s prompts.
_IN_TURN_NAMES = ["a hidden prompt", "the same hidden prompt again", "a hidden prompt of another batch size"]


def _in_turn_case(ref, seed):
    """A random model and three generations from it in turn: a prompt, the same prompt again, then a prompt
    of another batch size (which a cache left behind cannot take)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    reference = randomised(_float32(ref.Llama3Model)(cfg))
    batch = rng.randint(1, 3)
    first = torch.randint(0, cfg["vocab_size"], (batch, rng.randint(1, 4)))
    other = torch.randint(0, cfg["vocab_size"], (rng.choice([b for b in (1, 2, 3) if b != batch]), rng.randint(1, 4)))
    runs = [(first, rng.randint(1, cfg["context_length"] - first.shape[1]))]
    runs += [runs[0], (other, rng.randint(1, cfg["context_length"] - other.shape[1]))]
    return {"cfg": cfg, "state": parameter_state(reference), "runs": runs}


def _in_turn_outputs(sub, case):
    return generations_in_turn(sub, lambda: _llama_with_case_parameters(sub, case), case["runs"])


@kv_cache
@split(setup=_in_turn_case, produce=_in_turn_outputs)
def test_generations_in_turn_agree_with_reference(outputs, case, ref):
    """hidden: cached greedy tokens of prompts generated one after the other with one model"""
    expected = [
        ref.generate_text_simple_cached(_llama_with_case_parameters(ref, case), prompt, steps)
        for prompt, steps in case["runs"]
    ]
    expect_generations_in_turn(outputs, [prompt for prompt, _ in case["runs"]], expected, _IN_TURN_NAMES)


def _eos_case(ref, seed):
    """A random model, a prompt of one row and an eos_id it generates, then the same with the model's tokens 0
    and eos_id swapped and eos_id=0 (so that token 0 ends the generation)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    state = parameter_state(randomised(_float32(ref.Llama3Model)(cfg)))
    prompt = torch.randint(0, cfg["vocab_size"], (1, rng.randint(1, 4)))
    steps = cfg["context_length"] - prompt.shape[1]
    reference = load_llama(_float32(ref.Llama3Model)(cfg), state).eval()
    generated = ref.generate_text_simple_cached(reference, prompt, steps)
    eos_id = int(generated[0, rng.randrange(prompt.shape[1], generated.shape[1])])
    return {
        "cfg": cfg,
        "steps": steps,
        "runs": [
            {"state": state, "prompt": prompt, "eos_id": eos_id},
            {
                "state": with_tokens_swapped(state, 0, eos_id),
                "prompt": swapped_tokens(prompt, 0, eos_id),
                "eos_id": 0,
            },
        ],
    }


def _generated_up_to(namespace, case: dict, run: dict) -> torch.Tensor:
    model = load_llama(_float32(namespace.Llama3Model)(case["cfg"]), run["state"]).eval()
    return namespace.generate_text_simple_cached(model, run["prompt"], case["steps"], eos_id=run["eos_id"])


def _eos_outputs(sub, case):
    return [_generated_up_to(sub, case, run) for run in case["runs"]]


@kv_cache
@split(setup=_eos_case, produce=_eos_outputs)
def test_generation_stops_at_eos_agrees_with_reference(outputs, case, ref):
    """hidden: cached greedy tokens up to a generated eos_id, and up to a generated eos_id of 0"""
    expect(
        isinstance(outputs, list) and len(outputs) == len(case["runs"]),
        "generate_text_simple_cached should give tokens for every prompt",
    )
    first, zero = (_generated_up_to(ref, case, run) for run in case["runs"])
    expect_equal_tensor(outputs[0], first, "tokens generated up to a hidden eos_id (stop before appending it)")
    expect_eos_zero_stops(outputs[1], zero, "generate_text_simple_cached")


_HF_LAYER_NAMES = {
    "self_attn.q_proj": "att.W_query",
    "self_attn.k_proj": "att.W_key",
    "self_attn.v_proj": "att.W_value",
    "self_attn.o_proj": "att.out_proj",
    "mlp.gate_proj": "ff.fc1",
    "mlp.up_proj": "ff.fc2",
    "mlp.down_proj": "ff.fc3",
    "input_layernorm": "norm1",
    "post_attention_layernorm": "norm2",
}


_HF_OTHER_NAMES = {
    "model.embed_tokens.weight": "tok_emb.weight",
    "model.norm.weight": "final_norm.weight",
    "lm_head.weight": "out_head.weight",
}


def _chapter_name(theirs: str) -> str:
    """The chapter's name of the parameter Hugging Face's `theirs` goes to."""
    if theirs in _HF_OTHER_NAMES:
        return _HF_OTHER_NAMES[theirs]
    _, _, layer, rest = theirs.split(".", 3)
    return f"trf_blocks.{layer}.{_HF_LAYER_NAMES[rest.removesuffix('.weight')]}.weight"


def _hugging_face_params(ref, cfg: dict, rng: random.Random) -> dict[str, torch.Tensor]:
    """Random weights of a Llama3Model of `cfg` under Hugging Face's names; lm_head.weight half the time."""
    source = randomised(_float32(ref.Llama3Model)(cfg))
    names = [name for name in _HF_OTHER_NAMES if name != "lm_head.weight" or rng.random() < 0.5]
    names += [f"model.layers.{i}.{theirs}.weight" for i in range(cfg["n_layers"]) for theirs in _HF_LAYER_NAMES]
    return {name: source.get_parameter(_chapter_name(name)).detach().clone() for name in names}


def _loading_case(ref, seed):
    """Random weights under Hugging Face's names, with an output head of their own or (half the time) tied."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    return {"cfg": cfg, "params": _hugging_face_params(ref, cfg, rng)}


def _loaded_parameters(namespace, case: dict) -> dict[str, torch.Tensor]:
    """The parameters of a new Llama3Model after namespace's load_weights_into_llama, tied ones under each name."""
    model = _float32(namespace.Llama3Model)(case["cfg"])
    namespace.load_weights_into_llama(model, _with_dtype(case["cfg"]), dict(case["params"]))
    return dict(model.named_parameters(remove_duplicate=False))


def _loading_outputs(sub, case):
    return _loaded_parameters(sub, case)


@load_llama_weights
@split(setup=_loading_case, produce=_loading_outputs)
def test_loading_agrees_with_reference(outputs, case, ref):
    """hidden: the parameters after loading random Hugging Face-named weights, tied or not"""
    theirs = _loaded_parameters(ref, case)
    expect_type(outputs, dict, "the loaded model's parameters")
    for name, param in outputs.items():
        if name not in theirs:
            fail(f"after loading, the model has a parameter '{name}' that the reference's Llama3Model has not")
        expect_close(param, theirs[name], f"{name} after loading hidden weights", atol=0)


# (the wrong tensor, the parameter it is for), as the messages say them, of each of `_wrong_shape_case`'s tensors.
_WRONG_SHAPE_PROBLEMS = (
    ("a hidden tensor of one row (one value, for a norm weight)", "a parameter with more"),
    ("a hidden matrix transposed", "its parameter"),
)


def _wrong_shape_case(ref, seed):
    """Random Hugging Face weights and two of them made wrong: one cut to its first row (a norm weight to its
    first value), which broadcasts back into the parameter's shape, and one matrix that is not square
    transposed. hidden_dim differs from emb_dim, so that the feed-forward's matrices are never square."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    cfg["hidden_dim"] = cfg["emb_dim"] + rng.randint(1, 8)
    params = _hugging_face_params(ref, cfg, rng)
    names = sorted(params)
    cut = rng.choice(names)
    flipped = rng.choice([name for name in names if params[name].dim() == 2 and len(set(params[name].shape)) == 2])
    return {
        "cfg": cfg,
        "params": params,
        "wrong": [(cut, _chapter_name(cut), params[cut][:1]), (flipped, _chapter_name(flipped), params[flipped].T)],
        "shapes": [list(params[cut].shape), list(params[flipped].shape)],
    }


def _wrong_shape_outputs(sub, case):
    new_model = lambda: _float32(sub.Llama3Model)(case["cfg"])  # noqa: E731
    return loading_errors(sub, new_model, _with_dtype(case["cfg"]), case["params"], case["wrong"])


@load_llama_weights
@split(setup=_wrong_shape_case, produce=_wrong_shape_outputs)
def test_loading_rejects_wrong_shapes_hidden(outputs, case, ref):
    """hidden: one tensor that broadcasts into its parameter, one transposed, among random weights"""
    new_model = lambda: _float32(ref.Llama3Model)(case["cfg"])  # noqa: E731
    expected = loading_errors(ref, new_model, _with_dtype(case["cfg"]), case["params"], case["wrong"])
    expect(
        isinstance(outputs, list) and len(outputs) == len(case["wrong"]),
        "the load_weights_into_llama results should hold one result per tensor",
    )
    for (theirs, ours, _), shape, (tensor, parameter), reference, produced in zip(
        case["wrong"], case["shapes"], _WRONG_SHAPE_PROBLEMS, expected, outputs, strict=True
    ):
        assert reference["raised"] is not None and "ValueError" in reference["raised"], f"the reference loads {theirs}"
        expect_wrong_shape_rejected(produced, (theirs, ours), tensor, parameter, shape)


_PIECES = ["the", " them", "Hello", " world", "123", "4567", " ", "  ", "\n", "\n\n", "'s", "'LL", "é", "🙂", ",", "!?"]


@contextlib.contextmanager
def _own_tiktoken_cache() -> Iterator[None]:
    """tiktoken caches every ranks file it reads in TIKTOKEN_CACHE_DIR: here a folder of its own, removed
    afterwards, so that the course's cache never holds the checks' ranks files."""
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["TIKTOKEN_CACHE_DIR"] = folder
        try:
            yield
        finally:
            if saved is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = saved


def _tokenizer_case(seed):
    rng = random.Random(seed)
    texts = []
    for _ in range(5):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        texts.append({"text": text, "bos": rng.random() < 0.5, "eos": rng.random() < 0.5})
    dialog = [
        {
            "role": rng.choice(["system", "user", "assistant"]),
            "content": " " + "".join(rng.choice(_PIECES) for _ in range(5)),
        }
        for _ in range(rng.randint(1, 4))
    ]
    return {"texts": texts, "dialog": dialog}


def _token_ids(namespace, case: dict, tmp_path) -> dict:
    """The ids of the case's texts and dialog, with namespace's Tokenizer on a small ranks file."""
    with _own_tiktoken_cache():
        tokenizer = namespace.Tokenizer(write_ranks(tmp_path / "tokenizer.model"))
        return {
            "texts": [tokenizer.encode(one["text"], bos=one["bos"], eos=one["eos"]) for one in case["texts"]],
            "dialog": namespace.ChatFormat(tokenizer).encode_dialog_prompt(case["dialog"]),
        }


def _tokenizer_outputs(sub, case, tmp_path):
    return _token_ids(sub, case, tmp_path)


def _expect_ids(ids, expected: list[int], what: str) -> None:
    expect_type(ids, (list, tuple, torch.Tensor), what)
    expect_sequence_equal(ids, expected, what)


@llama3_tokenizer
@split(setup=_tokenizer_case, produce=_tokenizer_outputs)
def test_tokenizer_agrees_with_reference(outputs, case, ref, tmp_path):
    """hidden: ids of random texts and a random dialog"""
    expected = _token_ids(ref, case, tmp_path)
    expect(
        isinstance(outputs["texts"], list) and len(outputs["texts"]) == len(case["texts"]),
        "Tokenizer.encode should give the ids of every text",
    )
    for ids, expected_ids in zip(outputs["texts"], expected["texts"]):
        _expect_ids(ids, expected_ids, "the ids of a hidden text")
    _expect_ids(outputs["dialog"], expected["dialog"], "the ids of a hidden dialog")
