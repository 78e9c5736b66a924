"""The training run's settings: one TOML file of flat `key = value` lines, and `--key value` overrides.

Every setting is a field of `TrainConfig` with its type, default and a line of help; a file or
an override that names no field, or gives a value of the wrong type, is refused with a message
that names the key (and the nearest known one), as nanoGPT's configurator does with argparse.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


class ConfigError(ValueError):
    """A config file or override cannot be used; the message names the key and what is expected."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    # data
    data_dir: str = _setting(
        "", "folder of llm.c .bin shards: *_val_*.bin and *_train_*.bin (pretrain_data writes them)"
    )
    tokenizer: str = _setting("gpt2", "'gpt2' (tiktoken's GPT-2 BPE) or 'char' (the vocabulary in data_dir/meta.json)")
    # model: GPTModel's cfg
    vocab_size: int = _setting(50304, "embedding rows; 50304 pads GPT-2's 50257 to a multiple of 128 for speed")
    context_length: int = _setting(1024, "tokens per sequence (T)")
    emb_dim: int = _setting(768, "model width")
    n_heads: int = _setting(12, "attention heads")
    n_layers: int = _setting(12, "transformer blocks")
    drop_rate: float = _setting(0.0, "dropout probability")
    qkv_bias: bool = _setting(True, "bias in the query, key and value projections")
    # optimisation
    batch_size: int = _setting(64, "sequences per micro-batch and process (B)")
    total_batch_size: int = _setting(
        524288, "tokens per optimizer step; a multiple of batch_size * context_length * processes"
    )
    max_steps: int = _setting(19073, "optimizer steps to run")
    lr_decay_steps: int = _setting(0, "step at which the cosine reaches min_lr; 0: max_steps")
    warmup_steps: int = _setting(715, "steps of linear warm-up")
    max_lr: float = _setting(6e-4, "peak learning rate")
    min_lr: float = _setting(6e-5, "final learning rate")
    weight_decay: float = _setting(0.1, "AdamW weight decay of the matrices (biases and norms get none)")
    beta1: float = _setting(0.9, "AdamW beta1")
    beta2: float = _setting(0.95, "AdamW beta2")
    eps: float = _setting(1e-8, "AdamW epsilon")
    grad_clip: float = _setting(1.0, "clip the global gradient norm to this; 0: no clipping")
    # system
    device: str = _setting("auto", "'auto' (cuda:LOCAL_RANK when there is a GPU, else cpu), 'cpu' or 'cuda'")
    dtype: str = _setting(
        "auto", "autocast dtype: 'auto' (bfloat16 where the GPU supports it, else float32), 'bfloat16' or 'float32'"
    )
    compile: bool = _setting(False, "torch.compile the model")
    zero1: bool = _setting(
        False,
        "under torchrun, shard AdamW's state across the processes (ZeRO stage 1, torch's ZeroRedundancyOptimizer)",
    )
    seed: int = _setting(1337, "random seed (each process adds its rank for dropout)")
    peak_flops: float = _setting(
        0.0, "the hardware's peak FLOP/s for MFU; 0: look the GPU up, or time a matmul on the CPU"
    )
    # evaluation, checkpoints and logs
    out_dir: str = _setting("runs/pretrain", "checkpoints, metrics.jsonl and config.json go here")
    log_interval: int = _setting(1, "print a line every this many steps (a progress bar in between)")
    eval_interval: int = _setting(250, "validation loss every this many steps and at the end; 0: never")
    eval_steps: int = _setting(20, "validation batches per evaluation")
    hellaswag_interval: int = _setting(0, "HellaSwag accuracy every this many steps and at the end; 0: never")
    hellaswag_file: str = _setting("", "HellaSwag jsonl; empty: the data folder's hellaswag_val.jsonl when present")
    hellaswag_examples: int = _setting(0, "HellaSwag examples to score; 0: all")
    checkpoint_interval: int = _setting(0, "save a checkpoint every this many steps; 0: only at the end")
    keep_checkpoints: int = _setting(2, "how many of the newest checkpoints to keep; 0: all")
    sample_tokens: int = _setting(64, "tokens sampled at the end (0: none)")
    sample_prompt: str = _setting("", "what the sample continues (after an end-of-text token for GPT-2)")

    @property
    def model_cfg(self) -> dict[str, Any]:
        """The cfg dict GPTModel takes."""
        keys = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias")
        return {key: getattr(self, key) for key in keys}


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_CHOICES = {"tokenizer": ("gpt2", "char"), "dtype": ("auto", "bfloat16", "float32")}
_POSITIVE = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "batch_size", "total_batch_size")
_NOT_NEGATIVE = (
    "max_steps",
    "lr_decay_steps",
    "warmup_steps",
    "eval_interval",
    "eval_steps",
    "hellaswag_interval",
    "hellaswag_examples",
    "checkpoint_interval",
    "keep_checkpoints",
    "sample_tokens",
    "log_interval",
    "grad_clip",
    "peak_flops",
)


def _unknown_key(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; the keys are: {', '.join(FIELDS)}"
    return ConfigError(f"{where}: unknown config key '{key}'{hint}")


def _converted(key: str, value: Any, where: str) -> Any:
    kind = _TYPES[FIELDS[key].type]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: '{key}' should be {FIELDS[key].type}; found {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{where}: '{key}' should be one of {', '.join(_CHOICES[key])}; found {value!r}")
    if (key in _POSITIVE and value <= 0) or (key in _NOT_NEGATIVE and value < 0):
        raise ConfigError(
            f"{where}: '{key}' should be {'positive' if key in _POSITIVE else '0 or more'}; found {value!r}"
        )
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML file, checked key by key (unknown keys and wrong types are refused)."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (see configs/pretrain/)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values = {}
    for key, value in raw.items():
        if key not in FIELDS:
            raise _unknown_key(key, str(path))
        values[key] = _converted(key, value, str(path))
    return values


def make_config(values: dict[str, Any], where: str = "the settings") -> TrainConfig:
    """A TrainConfig from checked values, with the checks that involve several keys."""
    for key, value in values.items():
        if key not in FIELDS:
            raise _unknown_key(key, where)
        values[key] = _converted(key, value, where)
    config = TrainConfig(**values)
    if not config.data_dir:
        raise ConfigError(
            f"{where}: 'data_dir' is not set; point it at the shards `python -m llmcourse.pretrain_data` wrote"
        )
    if config.emb_dim % config.n_heads:
        raise ConfigError(f"{where}: 'emb_dim' ({config.emb_dim}) should be a multiple of 'n_heads' ({config.n_heads})")
    if config.min_lr > config.max_lr:
        raise ConfigError(f"{where}: 'min_lr' ({config.min_lr}) should not exceed 'max_lr' ({config.max_lr})")
    return config


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, found {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmcourse.pretrain",
        usage="%(prog)s --config FILE [--resume PATH|auto] [--SETTING VALUE ...]",
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Pretrain chapter 15's GPT on llm.c token shards with the chapter's own code: its GPTModel,\n"
            "data loader, train_step, schedule, checkpoints, evaluation and DDP set-up.\n\n"
            "  one process:  python -m llmcourse.pretrain --config FILE\n"
            "  one node:     torchrun --standalone --nproc_per_node=8 -m llmcourse.pretrain --config FILE\n"
            "  many nodes:   torchrun --nnodes=N --nproc_per_node=8 --rdzv_backend=c10d \\\n"
            "                    --rdzv_endpoint=HOST:PORT --rdzv_id=RUN -m llmcourse.pretrain --config FILE\n"
            "                (the same command on every node)"
        ),
        epilog="Every setting of the config file can be overridden: --max_steps 20 --compile false.",
    )
    parser.add_argument("--config", required=True, type=Path, help="TOML file of settings (configs/pretrain/*.toml)")
    parser.add_argument(
        "--resume",
        metavar="PATH|auto",
        help="continue from a checkpoint; 'auto': the newest in out_dir (a fresh start when there is none)",
    )
    settings = parser.add_argument_group("settings (override the config file)")
    for name, spec in FIELDS.items():
        kind = _TYPES[spec.type]
        settings.add_argument(
            f"--{name}",
            type=_parse_bool if kind is bool else kind,
            default=None,
            metavar=spec.type.upper(),
            help=f"{spec.metadata['help']} (default: {spec.default!r})",
        )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, str | None]:
    """The run's settings (file, then command-line overrides) and the --resume argument."""
    args = build_parser().parse_args(argv)
    values = read_config_file(args.config)
    overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    values.update(overrides)
    return make_config(values, str(args.config)), args.resume
