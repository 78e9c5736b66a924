"""special tokens found by scanning the text with str.startswith, longest first; merges applied to every occurrence of the best-ranked pair"""

import json

import regex

PRETOKENIZE = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def _unicode_of_bytes():
    visible = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in visible:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


class BPETokenizer:
    """Byte-level BPE; the text is scanned once for special tokens, trying the longest at each position."""

    def __init__(self, vocab, merges, special_tokens=None):
        self.vocab = dict(vocab)
        self.rank = {tuple(pair): r for r, pair in reversed(list(enumerate(merges)))}
        self.token_to_id = {token: i for i, token in sorted(self.vocab.items(), reverse=True)}
        self.specials = {}
        for special in special_tokens or []:
            raw = special.encode("utf-8")
            if raw not in self.token_to_id:
                self.vocab[max(self.vocab, default=-1) + 1] = raw
                self.token_to_id[raw] = max(self.vocab)
            self.specials[special] = self.token_to_id[raw]
        self.by_length = sorted(self.specials, key=len, reverse=True)

    def _bpe(self, pretoken):
        word = [bytes([b]) for b in pretoken.encode("utf-8")]
        while len(word) > 1:
            pairs = [(self.rank[p], p) for p in zip(word, word[1:]) if p in self.rank]
            if not pairs:
                break
            _, (left, right) = min(pairs)
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return [self.token_to_id[token] for token in word]

    def _plain(self, text):
        return [i for pretoken in PRETOKENIZE.findall(text) for i in self._bpe(pretoken)]

    def encode(self, text):
        ids, start, i = [], 0, 0
        while i < len(text):
            found = next((s for s in self.by_length if text.startswith(s, i)), None)
            if found is None:
                i += 1
                continue
            ids += self._plain(text[start:i])
            ids.append(self.specials[found])
            i = start = i + len(found)
        return ids + self._plain(text[start:])

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    @classmethod
    def from_gpt2_files(cls, encoder_json_path, vocab_bpe_path, special_tokens=("<|endoftext|>",)):
        byte_of = {char: byte for byte, char in _unicode_of_bytes().items()}

        def raw(symbol):
            return bytes(byte_of[c] for c in symbol)

        with open(encoder_json_path, encoding="utf-8") as f:
            vocab = {i: raw(symbol) for symbol, i in json.load(f).items()}
        with open(vocab_bpe_path, encoding="utf-8") as f:
            merges = [tuple(raw(s) for s in line.split()) for line in f.read().splitlines()[1:] if line.strip()]
        return cls(vocab, merges, list(special_tokens))
