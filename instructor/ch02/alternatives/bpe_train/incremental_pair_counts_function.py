"""incremental pair counts in one function, no helpers, str.split on the special tokens"""

from collections import Counter, defaultdict

import regex

_GPT2_SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def _merge_word(word, pair, new):
    out, i = [], 0
    while i < len(word):
        if word[i] == pair[0] and i + 1 < len(word) and word[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_bpe(text, vocab_size, special_tokens):
    """Byte-level BPE that updates pair counts only for the pre-tokens a merge touches."""
    specials = list(special_tokens) if special_tokens else []
    pieces = Counter()
    rest = [text]
    for special in sorted(specials, key=len, reverse=True):
        rest = [part for chunk in rest for part in chunk.split(special)]
    for chunk in rest:
        pieces.update(m.group() for m in _GPT2_SPLIT.finditer(chunk))

    words = [[bytes([b]) for b in piece.encode("utf-8")] for piece in pieces]
    freq = [pieces[piece] for piece in pieces]
    pair_count = defaultdict(int)
    where = defaultdict(set)
    for index, word in enumerate(words):
        for a, b in zip(word, word[1:]):
            pair_count[(a, b)] += freq[index]
            where[(a, b)].add(index)

    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    while len(vocab) < vocab_size - len(specials):
        candidates = [(c, p) for p, c in pair_count.items() if c > 0]
        if not candidates:
            break
        _, best = max(candidates)
        new = best[0] + best[1]
        merges.append(best)
        vocab[len(vocab)] = new
        for index in list(where[best]):
            word = words[index]
            for a, b in zip(word, word[1:]):
                pair_count[(a, b)] -= freq[index]
            merged = _merge_word(word, best, new)
            words[index] = merged
            for a, b in zip(merged, merged[1:]):
                pair_count[(a, b)] += freq[index]
                where[(a, b)].add(index)
        del pair_count[best]
        del where[best]
    for special in specials:
        vocab[len(vocab)] = special.encode("utf-8")
    return vocab, merges
