"""The pretrained model that chapters 6, 7 and 9 fine-tune: GPT-2 124M when it is here, else SmolLM2-135M.

GPT-2's weights come from Hugging Face, which not every lab can reach; SmolLM2-135M
ships in a package on the Python package index. Both load into the course's own
models (chapter 4's `GPTModel`, chapter 8's `Llama3Model`), which share the names
fine-tuning touches: `tok_emb`, `trf_blocks`, `final_norm` and `out_head`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .data import gpt2_encoding, is_available

if TYPE_CHECKING:
    from torch import nn

GPT2 = "gpt2-124m"
SMOLLM2 = "smollm2-135m"
END_OF_TEXT = "<|endoftext|>"


@dataclass
class BaseModel:
    """A pretrained model in eval mode, float32, with the tokenizer and the ids fine-tuning needs.

    `model` maps token ids (batch, num_tokens) to logits (batch, num_tokens, vocab_size);
    `tokenizer` has tiktoken's `encode(text, allowed_special=...)` and `decode(ids)`;
    `pad_token_id` and `eos_id` are both the end-of-text token, which pads batches and
    ends generated responses; `context_length` is the longest input the model takes.
    """

    name: str
    model: nn.Module
    tokenizer: Any
    pad_token_id: int
    eos_id: int
    context_length: int
    emb_dim: int


def base_model_name() -> str:
    """GPT-2 124M when its weights and tokenizer were fetched, else SmolLM2-135M."""
    return GPT2 if is_available(GPT2) else SMOLLM2


def load_base_model(name: str | None = None, progress: bool = True) -> BaseModel:
    """The pretrained model to fine-tune: `name` (gpt2-124m or smollm2-135m), by default `base_model_name()`.

    SmolLM2's files are fetched on first use (DataFetchError when that fails).
    """
    name = name or base_model_name()
    if name == GPT2:
        from .pretrained import load_gpt2

        model, cfg = load_gpt2(GPT2, progress=progress)
        tokenizer = gpt2_encoding()
    elif name == SMOLLM2:
        from .pretrained_llama import load_llama

        loaded = load_llama(SMOLLM2, progress=progress)
        model, cfg, tokenizer = loaded.model, loaded.cfg, loaded.tokenizer
    else:
        raise ValueError(f"no base model named {name!r}: choose {GPT2} or {SMOLLM2}")
    (end_of_text,) = tokenizer.encode(END_OF_TEXT, allowed_special={END_OF_TEXT})
    return BaseModel(name, model.eval(), tokenizer, end_of_text, end_of_text, cfg["context_length"], cfg["emb_dim"])
