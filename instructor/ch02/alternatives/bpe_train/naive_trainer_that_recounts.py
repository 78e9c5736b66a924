"""naive trainer that recounts every pair before each merge, with its own helpers"""

import re
from collections import Counter

import regex


def count_pretokens(text, special_tokens):
    """How often each pre-token (as UTF-8 bytes) occurs, with the special tokens cut out first."""
    pattern = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    if special_tokens:
        by_length = sorted(special_tokens, key=len, reverse=True)
        chunks = re.split("|".join(re.escape(s) for s in by_length), text)
    else:
        chunks = [text]
    counts = Counter()
    for chunk in chunks:
        for piece in pattern.findall(chunk):
            counts[piece.encode("utf-8")] += 1
    return counts


def merge_pair(word, pair):
    """`word` with every occurrence of `pair`, left to right, joined into one token."""
    out = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(text, vocab_size, special_tokens):
    """Byte-level BPE, recounting every pair from scratch before each merge."""
    special_tokens = list(special_tokens or [])
    words = Counter()
    for piece, count in count_pretokens(text, special_tokens).items():
        words[tuple(bytes([b]) for b in piece)] += count

    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for _ in range(vocab_size - 256 - len(special_tokens)):
        pairs = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=lambda pair: (pairs[pair], pair))
        merges.append(best)
        vocab[len(vocab)] = best[0] + best[1]
        merged = Counter()
        for word, count in words.items():
            merged[merge_pair(word, best)] += count
        words = merged
    for token in special_tokens:
        vocab[len(vocab)] = token.encode("utf-8")
    return vocab, merges
