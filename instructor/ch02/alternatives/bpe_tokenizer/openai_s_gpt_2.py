"""OpenAI's GPT-2 encoder.py loop: merge the best bigram everywhere, with its own byte alphabet"""

import json
import re

import regex


class BPETokenizer:
    """Byte-level BPE written after OpenAI's original GPT-2 `encoder.py`: merge the best-ranked bigram everywhere, repeat."""

    SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

    def __init__(self, vocab, merges, special_tokens=None):
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.encoder = {token: i for i, token in self.vocab.items()}
        self.special_tokens = list(special_tokens or [])
        for special in self.special_tokens:
            raw = special.encode("utf-8")
            if raw not in self.encoder:
                new_id = max(self.vocab) + 1 if self.vocab else 0
                self.vocab[new_id] = raw
                self.encoder[raw] = new_id
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(bytes([b]) for b in token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        self.cache[token] = word
        return word

    def encode(self, text):
        if self.special_tokens:
            alternation = "|".join(re.escape(s) for s in sorted(self.special_tokens, key=len, reverse=True))
            parts = re.split(f"({alternation})", text)
        else:
            parts = [text]
        ids = []
        for n, part in enumerate(parts):
            if n % 2 == 1:
                ids.append(self.encoder[part.encode("utf-8")])
                continue
            for piece in self.SPLIT.findall(part):
                ids.extend(self.encoder[token] for token in self.bpe(piece.encode("utf-8")))
        return ids

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    @classmethod
    def from_gpt2_files(cls, encoder_json_path, vocab_bpe_path, special_tokens=("<|endoftext|>",)):
        printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
        printable += range(ord("®"), ord("ÿ") + 1)
        shifted = printable[:]
        extra = 0
        for b in range(256):
            if b not in printable:
                printable.append(b)
                shifted.append(256 + extra)
                extra += 1
        byte_decoder = {chr(c): b for b, c in zip(printable, shifted)}

        def to_bytes(symbol):
            return bytes(byte_decoder[ch] for ch in symbol)

        with open(encoder_json_path, encoding="utf-8") as f:
            encoder = json.load(f)
        vocab = {i: to_bytes(symbol) for symbol, i in encoder.items()}
        with open(vocab_bpe_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = []
        for line in lines:
            if not line.strip() or line.startswith("#version"):
                continue
            first, second = line.split(" ")
            merges.append((to_bytes(first), to_bytes(second)))
        return cls(vocab, merges, special_tokens)
