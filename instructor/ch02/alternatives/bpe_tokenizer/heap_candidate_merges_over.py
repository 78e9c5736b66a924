"""heap of candidate merges over a linked list of symbols; specials found with finditer"""

import heapq
import json
import re

import regex


def _byte_alphabet():
    """GPT-2's reversible map from the 256 bytes to printable characters."""
    keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    table = {b: chr(b) for b in keep}
    next_char = 256
    for b in range(256):
        if b not in table:
            table[b] = chr(next_char)
            next_char += 1
    return table


class BPETokenizer:
    """Byte-level BPE whose encoder keeps candidate merges in a heap over a linked list of symbols."""

    def __init__(self, vocab, merges, special_tokens=None):
        self.vocab = dict(vocab)
        self.rank = {}
        for r, pair in enumerate(merges):
            self.rank.setdefault(tuple(pair), r)
        self.token_id = {}
        for i in sorted(self.vocab):
            self.token_id.setdefault(self.vocab[i], i)
        self.specials = {}
        for s in special_tokens or ():
            raw = s.encode("utf-8")
            if raw not in self.token_id:
                i = max(self.vocab, default=-1) + 1
                self.vocab[i] = raw
                self.token_id[raw] = i
            self.specials[s] = self.token_id[raw]
        self.pretokenizer = regex.compile(
            r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
        )
        if self.specials:
            self.special_re = re.compile("|".join(re.escape(s) for s in sorted(self.specials, key=len, reverse=True)))
        else:
            self.special_re = None

    def _merge(self, raw):
        symbols = [bytes([b]) for b in raw]
        n = len(symbols)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if j < n:
                r = self.rank.get((symbols[i], symbols[j]))
                if r is not None:
                    heapq.heappush(heap, (r, i, symbols[i], symbols[j]))

        for i in range(n - 1):
            push(i)
        while heap:
            r, i, left, right = heapq.heappop(heap)
            j = nxt[i] if alive[i] else n
            if j >= n or symbols[i] != left or symbols[j] != right:
                continue
            symbols[i] = left + right
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        return [symbols[i] for i in range(n) if alive[i]]

    def _encode_plain(self, text):
        out = []
        for piece in self.pretokenizer.findall(text):
            out.extend(self.token_id[s] for s in self._merge(piece.encode("utf-8")))
        return out

    def encode(self, text):
        if self.special_re is None:
            return self._encode_plain(text)
        ids, start = [], 0
        for m in self.special_re.finditer(text):
            ids += self._encode_plain(text[start : m.start()])
            ids.append(self.specials[m.group()])
            start = m.end()
        return ids + self._encode_plain(text[start:])

    def decode(self, ids):
        data = bytearray()
        for i in ids:
            data += self.vocab[i]
        return bytes(data).decode("utf-8", errors="replace")

    @classmethod
    def from_gpt2_files(cls, encoder_json_path, vocab_bpe_path, special_tokens=("<|endoftext|>",)):
        to_byte = {c: b for b, c in _byte_alphabet().items()}
        decode = lambda s: bytes(to_byte[c] for c in s)
        with open(encoder_json_path, encoding="utf-8") as f:
            vocab = {i: decode(s) for s, i in json.load(f).items()}
        with open(vocab_bpe_path, encoding="utf-8") as f:
            rows = f.read().splitlines()[1:]
        merges = [tuple(decode(s) for s in row.split()) for row in rows if row.strip()]
        return cls(vocab, merges, special_tokens)
