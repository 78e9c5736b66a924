"""Chapter 2 fixtures: the inputs the public checks use and the reference's outputs on them."""

from __future__ import annotations

import torch

# Original text written for the checks: punctuation, double dashes, quotes,
# numbers, contractions, unicode and runs of whitespace.
CORPUS = """\
The lighthouse keeper counted the ships -- seven, then eight -- before the fog came in.
"Don't worry," she said, "they'll find the harbour; they always do."
By 1899 the lamp burned paraffin, and the keeper's logbook (still kept today) lists 4,017 ships.
Café owners on the quay served tea at 7:30 and again at 19:45?   Yes!  Every single day.
Naïve visitors asked whether the light ever failed; the keeper laughed: never, not once.
Ships came, ships went, and the sea kept its own count of them all.
"""

TOKENIZER_SENTENCES = [
    "The keeper counted the ships, then the fog came in.",
    '"Don\'t worry," she said -- they always do.',
    "Café owners served tea at 7:30?  Yes!",
]

BPE_TRAIN_TEXT = CORPUS * 3 + "<|endoftext|>" + CORPUS.replace("ships", "boats") + "<|endoftext|>"
BPE_VOCAB_SIZE = 256 + 60 + 1
BPE_SPECIALS = ["<|endoftext|>"]

# Markup around a special token: "<", ">" and "endoftext" must not split the text, only "<|endoftext|>".
MARKUP_TEXT = "<b>bold</b> a<=b c->d <|endoftext|> <i>endoftext</i> x >= y <|endoftext|>\n" * 4

# Equal pair counts everywhere: only the tie rule decides the first merges.
TIE_TEXT = "ab cd ef ab cd ef"

# Special tokens glued to words on both sides, often enough to drive merges: deleting them
# ("lowlower") or replacing them by a space (" lower") adds pairs that get merged.
GLUED_TEXT = "low<|endoftext|>lower<|endoftext|>lowest<|endoftext|>newest<|endoftext|>widest\n" * 6
GLUED_VOCAB_SIZE = 256 + 1 + 12

# Pre-tokens that are fully merged after a few merges; the budget allows one merge more than there can be.
EXHAUSTED_TEXT = "lower newer lowest newest"

# Special tokens where one is a prefix of the other: the longer must match first, whichever
# order they are given in. Each text holds both, the shorter also on its own.
PREFIX_SPECIALS = [["<|end", "<|endoftext|>"], ["<|endoftext|>", "<|endoftext|><|endoftext|>"]]

ENCODE_TEXTS = [
    "The keeper counted the ships -- seven, then eight.",
    "Ships came<|endoftext|>boats went, and the sea kept its count.",
    "Naïve café 🙂 visitors   at 19:45 \n\n never failed",
    "The keeper's count was such a 'subject.'  They'll say it's 4,017 -- or more.",
]

EMBED = {"vocab_size": 50, "emb_dim": 8, "context_length": 12}


def _prefix_case(ref, vocab: dict, merges: list, short: str, long: str) -> dict:
    """The vocabulary with both specials in it, a text holding both, and the reference's ids of it."""
    vocab = dict(vocab)
    for special in (short, long):
        if special.encode("utf-8") not in vocab.values():
            vocab[max(vocab) + 1] = special.encode("utf-8")
    ids = {special: token_id for token_id, special in vocab.items()}
    text = f"The keeper{long}counted{short} ships -- {short}{long} seven{long}"
    return {
        "specials": [short, long],
        "vocab": vocab,
        "short_id": ids[short.encode("utf-8")],
        "long_id": ids[long.encode("utf-8")],
        "text": text,
        "ids": ref.BPETokenizer(vocab, merges, [short, long]).encode(text),
    }


def record(ref) -> dict:
    """Run the reference on the inputs above; `ref` exposes the notebook's names."""
    vocab = ref.build_vocab(CORPUS)
    simple = ref.SimpleTokenizerV2(vocab)
    simple_ids = [simple.encode(s) for s in TOKENIZER_SENTENCES]

    bpe_vocab, merges = ref.train_bpe(BPE_TRAIN_TEXT, BPE_VOCAB_SIZE, BPE_SPECIALS)
    _, tie_merges = ref.train_bpe(TIE_TEXT, 256 + 3, [])
    _, markup_merges = ref.train_bpe(MARKUP_TEXT, 256 + 1 + 12, ["<|endoftext|>"])
    _, glued_merges = ref.train_bpe(GLUED_TEXT, GLUED_VOCAB_SIZE, ["<|endoftext|>"])
    every_merge = ref.train_bpe(EXHAUSTED_TEXT, 256 + 1000, [])[1]
    exhausted_vocab_size = 256 + len(every_merge) + 1
    bpe = ref.BPETokenizer(bpe_vocab, merges, BPE_SPECIALS)
    prefix_cases = [_prefix_case(ref, bpe_vocab, merges, short, long) for short, long in PREFIX_SPECIALS]

    torch.manual_seed(123)
    embedding = ref.InputEmbedding(**EMBED)
    token_ids = torch.randint(0, EMBED["vocab_size"], (2, 7))
    with torch.no_grad():
        embedded = embedding(token_ids)

    return {
        "corpus": CORPUS,
        "vocab": vocab,
        "tokenizer_sentences": TOKENIZER_SENTENCES,
        "simple_ids": simple_ids,
        "simple_decoded": [simple.decode(ids) for ids in simple_ids],
        "bpe_train_text": BPE_TRAIN_TEXT,
        "bpe_vocab_size": BPE_VOCAB_SIZE,
        "bpe_specials": BPE_SPECIALS,
        "bpe_vocab": bpe_vocab,
        "bpe_merges": merges,
        "tie_text": TIE_TEXT,
        "tie_merges": tie_merges,
        "markup_text": MARKUP_TEXT,
        "markup_merges": markup_merges,
        "exhausted_text": EXHAUSTED_TEXT,
        "exhausted_vocab_size": exhausted_vocab_size,
        "exhausted_merges": ref.train_bpe(EXHAUSTED_TEXT, exhausted_vocab_size, [])[1],
        "glued_text": GLUED_TEXT,
        "glued_vocab_size": GLUED_VOCAB_SIZE,
        "glued_merges": glued_merges,
        "prefix_cases": prefix_cases,
        "encode_texts": ENCODE_TEXTS,
        "encoded": [bpe.encode(t) for t in ENCODE_TEXTS],
        "embed_config": EMBED,
        "embed_state": {k: v.clone() for k, v in embedding.state_dict().items()},
        "embed_input": token_ids,
        "embed_output": embedded,
    }
