"""GPT-2's pre-tokenizer, and a byte-level stand-in for its encoding when its files are not fetched."""
from __future__ import annotations

# GPT-2's original pre-tokenizer pattern (for the `regex` module).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
END_OF_TEXT_ID = 50256


def byte_level_stand_in():
    """A tiktoken Encoding with GPT-2's pre-tokenizer and <|endoftext|>, but only single-byte tokens."""
    import tiktoken

    return tiktoken.Encoding(
        name="gpt2-bytes",
        pat_str=GPT2_PATTERN,
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|endoftext|>": END_OF_TEXT_ID},
    )
