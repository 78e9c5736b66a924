"""GPT-2's encoding for the checks, and a byte-level stand-in for it when its files are not fetched."""

from __future__ import annotations

import contextlib

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


@contextlib.contextmanager
def gpt2_for_checks():
    """tiktoken's GPT-2 encoding, built offline from the fetched files.

    Before the files are fetched, a byte-level stand-in (GPT-2's pre-tokenizer and
    <|endoftext|>, no merges) is served, and tiktoken returns it for "gpt2" while
    the checks run, so code built on the encoding (windows, batches, shuffling) is
    still checked; the checks that need GPT-2's real ids ask for `gpt2_files` too.
    """
    from llmcourse.data import gpt2_encoding, is_available

    if is_available("gpt2-bpe"):
        yield gpt2_encoding()
        return
    # tiktoken's registry serves cached encodings first, for get_encoding and encoding_for_model alike.
    from tiktoken import registry

    stand_in = byte_level_stand_in()
    registry.ENCODINGS["gpt2"] = stand_in
    try:
        yield stand_in
    finally:
        if registry.ENCODINGS.get("gpt2") is stand_in:
            del registry.ENCODINGS["gpt2"]
