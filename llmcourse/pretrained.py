"""OpenAI's pretrained GPT-2 in the course's own `GPTModel`, from Hugging Face safetensors files.

`load_gpt2("gpt2-124m")` reads the data folder's copy of the weights (fetching it on
first use) and loads it with chapter 5's `load_weights_into_gpt`, so the loading is the
course's code: the reference when `solutions/` is here, else the student's notebook.
Reading a safetensors file runs no code from it, and nothing here needs TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from llmcourse.data import data_path

if TYPE_CHECKING:  # importing torch takes seconds; `course --help` imports this module
    import torch
    from torch import nn

# The sizes OpenAI released, by their names in the data manifest (file NAME.safetensors, group NAME).
GPT2_SIZES: dict[str, dict[str, int]] = {
    "gpt2-124m": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-355m": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-774m": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-1558m": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}
_GPT2_COMMON = {"vocab_size": 50257, "context_length": 1024, "drop_rate": 0.0, "qkv_bias": True}
_PREFIX = "transformer."  # what GPT2LMHeadModel.save_pretrained puts before the names of OpenAI's files
# Tensors of Hugging Face's files that are not parameters of ours: the causal-mask buffers older
# checkpoints store, and the output head that GPT-2 ties to `wte.weight`.
_SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
_SKIPPED = {"lm_head.weight"}


class UnknownModelError(ValueError):
    """A model is neither a GPT-2 size the course knows nor a folder holding a GPT-2."""


def _known_sizes() -> str:
    return ", ".join(GPT2_SIZES)


def gpt2_config(name: str) -> dict:
    """The `GPTModel` configuration of GPT-2 size `name` ("gpt2-124m", ... "gpt2-1558m").

    GPT-2 as OpenAI trained it: the full 1,024-token context, biases in the query, key and
    value projections, and no dropout (the weights are for inference).
    """
    if name not in GPT2_SIZES:
        raise UnknownModelError(f"unknown GPT-2 size {name!r}; the known sizes are {_known_sizes()}")
    return {**_GPT2_COMMON, **GPT2_SIZES[name]}


def read_gpt2_safetensors(path: str | Path, progress: bool = True) -> dict[str, torch.Tensor]:
    """The parameters in a GPT-2 safetensors file, named as in OpenAI's GPT-2 on Hugging Face.

    Names: `wte.weight` (vocab_size, emb_dim), `wpe.weight` (context_length, emb_dim),
    `ln_f.weight`/`.bias` (emb_dim,) and, per block i, `h.{i}.ln_1`, `h.{i}.ln_2` (emb_dim,),
    `h.{i}.attn.c_attn.weight` (emb_dim, 3 * emb_dim), `h.{i}.attn.c_proj.weight` (emb_dim, emb_dim),
    `h.{i}.mlp.c_fc.weight` (emb_dim, 4 * emb_dim), `h.{i}.mlp.c_proj.weight` (4 * emb_dim, emb_dim),
    each with its `.bias` (out_features,): Conv1D weights are (in_features, out_features).
    The "transformer." prefix that `GPT2LMHeadModel.save_pretrained` writes is removed;
    `lm_head.weight` (a copy of `wte.weight`) and the attention-mask buffers are left out.
    """
    from safetensors import safe_open
    from tqdm import tqdm

    path = Path(path)
    params = {}
    with safe_open(str(path), framework="pt") as stored:
        for key in tqdm(list(stored.keys()), desc=f"loading {path.name}", unit="tensor", disable=not progress):
            name = key.removeprefix(_PREFIX)
            if name in _SKIPPED or name.endswith(_SKIPPED_SUFFIXES):
                continue
            params[name] = stored.get_tensor(key)
    return params


def _folder_config(folder: Path) -> dict:
    """The `GPTModel` configuration of the GPT-2 that `save_pretrained` wrote into `folder`."""
    config_file = folder / "config.json"
    try:
        hf = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnknownModelError(
            f"{folder} has no config.json; a GPT-2 folder holds config.json and "
            "model.safetensors, as GPT2LMHeadModel.save_pretrained writes them"
        ) from None
    try:
        cfg = {
            "vocab_size": hf["vocab_size"],
            "context_length": hf["n_positions"],
            "emb_dim": hf["n_embd"],
            "n_heads": hf["n_head"],
            "n_layers": hf["n_layer"],
            "drop_rate": 0.0,
            "qkv_bias": True,
        }
    except KeyError as missing:
        raise UnknownModelError(f"{config_file} has no {missing}; is it a GPT-2 configuration?") from None
    if hf.get("n_inner") not in (None, 4 * cfg["emb_dim"]) or hf.get("activation_function", "gelu_new") != "gelu_new":
        raise UnknownModelError(
            f"{config_file}: GPTModel has GPT-2's feed-forward (4 * n_embd wide, GELU with "
            "the tanh approximation); this model's n_inner or activation_function differs"
        )
    return cfg


def load_gpt2(model: str | Path, progress: bool = True) -> tuple[nn.Module, dict]:
    """A pretrained GPT-2 in the course's `GPTModel`, in eval mode, with its configuration.

    `model` is a size from `GPT2_SIZES` (its weights come from the data folder, fetched with a
    progress bar when missing; DataFetchError when that fails) or a folder with the `config.json`
    and `model.safetensors` that `GPT2LMHeadModel.save_pretrained` writes. The model maps token
    ids (batch, num_tokens) to logits (batch, num_tokens, vocab_size).
    """
    if str(model) in GPT2_SIZES:
        cfg = gpt2_config(str(model))
        weights = data_path(f"{model}.safetensors")
    else:
        folder = Path(model)
        if not folder.is_dir():
            raise UnknownModelError(
                f"{model!r} is neither a GPT-2 size ({_known_sizes()}) nor a folder "
                "holding config.json and model.safetensors"
            )
        cfg = _folder_config(folder)
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise UnknownModelError(f"{folder} has config.json but no model.safetensors")

    from previous_chapters import GPTModel, load_weights_into_gpt

    from .fast_init import skipped_init

    params = read_gpt2_safetensors(weights, progress=progress)
    with skipped_init():  # every parameter is overwritten by the weights: skip the random initialisation
        gpt = GPTModel(cfg)
    load_weights_into_gpt(gpt, params)
    return gpt.eval(), cfg
