"""Byte-level BPE vocabularies (GPT-2's kind) as tiktoken encodings.

Hugging Face's `tokenizer.json` and llama.cpp's GGUF metadata both store such a
vocabulary as GPT-2 "byte-to-unicode" strings (a space is "Ġ") plus a merge list.
tiktoken needs the token bytes and a rank per token, and its ranks are also the
token ids. Its BPE merges the pair whose joined bytes have the lowest rank, which
is the merge list's order exactly when no merge's result has a lower id than the
results of the merges before it: `ByteLevelBPETokenizer` checks that, so that it
encodes as Hugging Face's tokenizer of the same files does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

# How text is split before BPE. GPT-2's split (Hugging Face's ByteLevel pre-tokenizer with use_regex)
# is chapter 2's GPT2_PRETOKENIZE_PATTERN and Llama 3's chapter 8's LLAMA3_PATTERN. SmolLM's
# tokenizer.json runs Digits(individual_digits=True) before GPT-2's split: every digit stands
# alone, and the whitespace before a digit is a piece of its own.
SMOLLM_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+"""
_LLAMA3_PRE_NAMES = ("llama-bpe", "llama3", "llama-v3")


class TokenizerFormatError(ValueError):
    """A tokenizer description that the course cannot turn into a tiktoken encoding."""


def gpt2_pattern() -> str:
    """GPT-2's split: chapter 2's GPT2_PRETOKENIZE_PATTERN."""
    from previous_chapters import GPT2_PRETOKENIZE_PATTERN

    return GPT2_PRETOKENIZE_PATTERN


def pattern_for_pre(pre: str | None) -> str:
    """The split pattern of llama.cpp's pre-tokenizer name `pre` (`tokenizer.ggml.pre`; None: GPT-2's)."""
    if pre in (None, "default", "gpt2", "gpt-2"):
        return gpt2_pattern()
    if pre == "smollm":
        return SMOLLM_PATTERN
    if pre in _LLAMA3_PRE_NAMES:
        from previous_chapters import LLAMA3_PATTERN

        return LLAMA3_PATTERN
    known = ", ".join(("gpt2", "smollm", *_LLAMA3_PRE_NAMES))
    raise TokenizerFormatError(f"pre-tokenizer {pre!r} is not one the course knows ({known})")


@functools.lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Chapter 2's bytes_to_unicode (GPT-2's byte -> printable character table), inverted."""
    from previous_chapters import bytes_to_unicode

    return {character: byte for byte, character in bytes_to_unicode().items()}


def token_bytes(token: str) -> bytes:
    """The bytes a byte-level token string such as "Ġthe" stands for (b" the")."""
    table = _unicode_to_byte()
    try:
        return bytes(table[character] for character in token)
    except KeyError as missing:
        raise TokenizerFormatError(f"token {token!r} has {missing}, which is not a byte-level character") from None


def _check_merge_order(ids: dict[str, int], merges: Iterable[str]) -> None:
    previous = -1
    for rank, merge in enumerate(merges):
        left, _, right = merge.partition(" ")
        merged = ids.get(left + right)
        if merged is None or merged < previous:
            raise TokenizerFormatError(
                f"merge {rank} ({merge!r}) makes token id {merged}, after id {previous}: tiktoken ranks tokens by "
                "id, so the ids must follow the merge order"
            )
        previous = merged


class ByteLevelBPETokenizer:
    """A byte-level BPE vocabulary as a tiktoken `Encoding`, with its special tokens.

    tokens: the vocabulary by id, as byte-level strings; special: the ids of the special
    (control) tokens, which are matched whole in the text; merges: the merge list ("Ġ t"),
    checked against the ids; pattern: the pre-tokenizer split (see `pattern_for_pre`).
    Characters whose bytes have no token of their own are left out of the text, as Hugging
    Face's tokenizer leaves them out.
    """

    def __init__(self, name: str, tokens: list[str], special: dict[str, int], merges: list[str], pattern: str):
        import tiktoken

        special_ids = set(special.values())
        ordinary = {token: i for i, token in enumerate(tokens) if token and i not in special_ids}
        _check_merge_order(ordinary, merges)
        byte_ranks = {token_bytes(token): i for token, i in ordinary.items()}
        self._unknown_bytes = frozenset(set(range(256)) - {piece[0] for piece in byte_ranks if len(piece) == 1})
        self.special_tokens = dict(special)
        self.encoding: tiktoken.Encoding = tiktoken.Encoding(
            name=name, pat_str=pattern, mergeable_ranks=byte_ranks, special_tokens=self.special_tokens
        )

    def _known_parts(self, text: str) -> list[str]:
        """`text` cut around the characters that have a byte without a token (tiktoken cannot encode them)."""
        if not self._unknown_bytes.intersection(text.encode("utf-8")):
            return [text]
        parts, current = [], []
        for character in text:
            if self._unknown_bytes.intersection(character.encode("utf-8")):
                parts.append("".join(current))
                current = []
            else:
                current.append(character)
        return [*parts, "".join(current)]

    def encode(self, text: str, allowed_special: str | set[str] = "all") -> list[int]:
        """Token ids of `text`; special tokens written in it become their ids (as Hugging Face's tokenizers do)
        unless `allowed_special` leaves them out, in which case they are encoded as ordinary text."""
        return [
            token
            for part in self._known_parts(text)
            for token in self.encoding.encode(part, allowed_special=allowed_special, disallowed_special=())
        ]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids `ids`; bytes that are not valid UTF-8 become U+FFFD."""
        return self.encoding.decode(list(ids))


def _split_pattern(pre_tokenizer: dict | None, source: Path) -> str:
    """The split pattern of a tokenizer.json `pre_tokenizer`, for the byte-level kinds the course knows."""
    if not pre_tokenizer:
        steps = []
    elif pre_tokenizer.get("type") == "Sequence":
        steps = pre_tokenizer["pretokenizers"]
    else:
        steps = [pre_tokenizer]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return gpt2_pattern()
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return SMOLLM_PATTERN
    if kinds == ["Split", "ByteLevel"] and "Regex" in steps[0].get("pattern", {}) and not steps[1].get("use_regex"):
        return steps[0]["pattern"]["Regex"]
    raise TokenizerFormatError(
        f"{source}: pre-tokenizer {kinds or None} is not a byte-level one the course knows "
        "(ByteLevel; Digits + ByteLevel; Split + ByteLevel)"
    )


def _first_special_of_template(post_processor: dict | None) -> str | None:
    """The special token a tokenizer.json post-processor puts before every text (Llama 3's <|begin_of_text|>)."""
    for step in (post_processor or {}).get("processors", [post_processor or {}]):
        single = step.get("single") if step.get("type") == "TemplateProcessing" else None
        if single and "SpecialToken" in single[0]:
            return single[0]["SpecialToken"]["id"]
    return None


def read_tokenizer_json(path: str | Path) -> tuple[ByteLevelBPETokenizer, int | None]:
    """The byte-level BPE tokenizer of a Hugging Face `tokenizer.json`, and the id its post-processor puts
    first (None when it adds none). Added tokens become special tokens, matched whole as Hugging Face does."""
    path = Path(path)
    described = json.loads(path.read_text(encoding="utf-8"))
    model = described.get("model", {})
    decoder = (described.get("decoder") or {}).get("type")
    if model.get("type") != "BPE" or described.get("normalizer") or decoder != "ByteLevel":
        raise TokenizerFormatError(
            f"{path}: not a byte-level BPE tokenizer (model BPE, no normalizer, "
            "ByteLevel decoder) such as GPT-2's, Llama 3's or SmolLM's"
        )
    ids = {**model["vocab"], **{added["content"]: added["id"] for added in described.get("added_tokens", [])}}
    tokens = [""] * (max(ids.values()) + 1)
    for token, i in ids.items():
        tokens[i] = token
    special = {added["content"]: added["id"] for added in described.get("added_tokens", [])}
    merges = [" ".join(merge) if isinstance(merge, list) else merge for merge in model.get("merges", [])]
    tokenizer = ByteLevelBPETokenizer(
        path.parent.name or path.name, tokens, special, merges, _split_pattern(described.get("pre_tokenizer"), path)
    )
    first = _first_special_of_template(described.get("post_processor"))
    return tokenizer, None if first is None else ids[first]
