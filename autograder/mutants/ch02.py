"""Chapter 2 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

MUTANTS: list[Mutant] = [
    # ch02.simple_tokenizer
    Mutant(
        "ch02.simple_tokenizer",
        "split pattern without a capturing group, so punctuation is dropped from vocabulary and encodings",
        ((r"""SPLIT_PATTERN = r'([,.:;?_!"()\']|--|\s)'""", r"""SPLIT_PATTERN = r'[,.:;?_!"()\']|--|\s'"""),),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "special tokens put at the start of the vocabulary (ids 0 and 1) instead of appended",
        (('tokens += ["<|endoftext|>", "<|unk|>"]', 'tokens = ["<|endoftext|>", "<|unk|>"] + tokens'),),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "vocabulary kept in order of first appearance instead of sorted",
        (
            (
                "tokens = sorted({piece for piece in pieces if piece})",
                "tokens = list(dict.fromkeys(piece for piece in pieces if piece))",
            ),
        ),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "vocabulary not deduplicated: a repeated word takes the id of its last copy, leaving gaps",
        (("tokens = sorted({piece for piece in pieces if piece})", "tokens = sorted([piece for piece in pieces if piece])"),),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "build_vocab does not strip the pieces, so whitespace separators become vocabulary entries",
        (
            (
                "pieces = (piece.strip() for piece in re.split(SPLIT_PATTERN, text))\n    tokens = sorted",
                "pieces = re.split(SPLIT_PATTERN, text)\n    tokens = sorted",
            ),
        ),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "encode drops unknown words instead of mapping them to <|unk|>",
        (
            (
                'tokens = [piece if piece in self.str_to_int else "<|unk|>" for piece in pieces if piece]',
                "tokens = [piece for piece in pieces if piece in self.str_to_int]",
            ),
        ),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "encode keeps the empty strings between separators, each becoming an <|unk|>",
        (('else "<|unk|>" for piece in pieces if piece]', 'else "<|unk|>" for piece in pieces]'),),
    ),
    Mutant(
        "ch02.simple_tokenizer",
        "decode keeps the space in front of punctuation",
        ((r"""return re.sub(r'\s+([,.:;?!"()\'])', r"\1", text)""", "return text"),),
    ),
    # ch02.bpe_train
    Mutant(
        "ch02.bpe_train",
        "a tie goes to the lexicographically smaller pair",
        (
            (
                "best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))",
                "best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))",
            ),
        ),
    ),
    Mutant(
        "ch02.bpe_train",
        "a tie goes to whichever pair was counted first (no tie-break)",
        (("key=lambda pair: (pair_counts[pair], pair))", "key=lambda pair: pair_counts[pair])"),),
    ),
    Mutant(
        "ch02.bpe_train",
        "a tie goes to the greater merged token (left + right) instead of the greater pair",
        (("key=lambda pair: (pair_counts[pair], pair))", "key=lambda pair: (pair_counts[pair], pair[0] + pair[1]))"),),
    ),
    Mutant(
        "ch02.bpe_train",
        "pair counts not weighted by pre-token frequency: each distinct pre-token counts once",
        (("freqs = list(counts.values())", "freqs = [1] * len(counts)"),),
    ),
    Mutant(
        "ch02.bpe_train",
        "special tokens not split off before counting: they are pre-tokenized and merged like text",
        (("    for piece in pieces:\n", "    for piece in [text]:\n"),),
    ),
    Mutant(
        "ch02.bpe_train",
        "special tokens used as a regex without re.escape, so '<|endoftext|>' splits at '<', 'endoftext' and '>'",
        (('"|".join(re.escape(token) for token in longest_first)', '"|".join(longest_first)'),),
    ),
    Mutant(
        "ch02.bpe_train",
        "no pre-tokenization: each text chunk is one sequence, so merges cross word boundaries",
        (("for pretoken in regex.findall(GPT2_PRETOKENIZE_PATTERN, piece)", "for pretoken in [piece]"),),
    ),
    Mutant(
        "ch02.bpe_train",
        "merge_pair steps one token after a merge, so overlapping occurrences (a a a) are merged twice",
        (
            (
                "            merged.append(pair[0] + pair[1])\n            i += 2",
                "            merged.append(pair[0] + pair[1])\n            i += 1",
            ),
        ),
    ),
    Mutant(
        "ch02.bpe_train",
        "a merged word's old pairs are not subtracted from the counts, so the merged pair keeps its count and comes up again",
        (
            (
                "                pair_counts[pair] -= freq\n"
                "                if pair_counts[pair] == 0:\n"
                "                    del pair_counts[pair]\n",
                "                pass\n",
            ),
        ),
    ),
    Mutant(
        "ch02.bpe_train",
        "special tokens not counted in vocab_size: len(special_tokens) merges too many",
        (("range(vocab_size - 256 - len(special_tokens))", "range(vocab_size - 256)"),),
    ),
    Mutant(
        "ch02.bpe_train",
        "special tokens get the ids right after the 256 bytes, before the merged tokens",
        (
            (
                "    for left, right in merges:\n        vocab[len(vocab)] = left + right\n"
                "    for token in special_tokens:\n        vocab[len(vocab)] = token.encode(\"utf-8\")\n",
                "    for token in special_tokens:\n        vocab[len(vocab)] = token.encode(\"utf-8\")\n"
                "    for left, right in merges:\n        vocab[len(vocab)] = left + right\n",
            ),
        ),
    ),
    # ch02.bpe_tokenizer
    Mutant(
        "ch02.bpe_tokenizer",
        "encode merges the leftmost mergeable pair instead of the lowest-ranked one",
        (("_, i = min(ranked)", "_, i = min(ranked, key=lambda item: item[1])"),),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "encode applies the highest-ranked (latest) merge first",
        (("_, i = min(ranked)", "_, i = max(ranked)"),),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "encode does not pre-tokenize: merges run over the whole text between special tokens",
        (("for pretoken in regex.findall(GPT2_PRETOKENIZE_PATTERN, piece):", "for pretoken in [piece]:"),),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "special tokens not recognised in encode: they are encoded byte by byte like text",
        (("pieces = self.special_pattern.split(text) if self.special_pattern else [text]", "pieces = [text]"),),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "decode turns each token into text on its own, so a character split across tokens becomes U+FFFD",
        (
            (
                'return b"".join(self.vocab[token_id] for token_id in ids).decode("utf-8", errors="replace")',
                'return "".join(self.vocab[token_id].decode("utf-8", errors="replace") for token_id in ids)',
            ),
        ),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "decode with errors='strict': invalid UTF-8 raises instead of becoming U+FFFD",
        (('errors="replace"', 'errors="strict"'),),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "vocab.bpe merges encoded as UTF-8 instead of mapped back through the byte alphabet (no merge with 'Ġ' ever applies)",
        (
            (
                "merges = [tuple(to_bytes(part) for part in line.split()) for line in lines if line.strip()]",
                'merges = [tuple(part.encode("utf-8") for part in line.split()) for line in lines if line.strip()]',
            ),
        ),
    ),
    Mutant(
        "ch02.bpe_tokenizer",
        "from_gpt2_files ignores special_tokens, so <|endoftext|> is encoded as text",
        (("return cls(vocab, merges, list(special_tokens))", "return cls(vocab, merges)"),),
    ),
    # ch02.gpt_dataset
    Mutant(
        "ch02.gpt_dataset",
        "targets not shifted: the target window equals the input window",
        (("token_ids[start + 1:start + max_length + 1]", "token_ids[start:start + max_length]"),),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "window range one too long: the last target window is one token short",
        (
            (
                "range(0, len(token_ids) - max_length, stride)",
                "range(0, len(token_ids) - max_length + 1, stride)",
            ),
        ),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "input window of max_length + 1 tokens",
        (("token_ids[start:start + max_length])", "token_ids[start:start + max_length + 1])"),),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "stride off by one: window starts are stride + 1 apart",
        (("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length, stride + 1)"),),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "stride ignored: windows never overlap (starts max_length apart)",
        (("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length, max_length)"),),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "constructor takes stride before max_length, so positional calls swap them",
        (
            (
                "def __init__(self, txt: str, tokenizer, max_length: int, stride: int):",
                "def __init__(self, txt: str, tokenizer, stride: int, max_length: int):",
            ),
        ),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "input windows built with torch.Tensor, so they are float32 instead of int64",
        (
            (
                "self.input_ids.append(torch.tensor(token_ids[start:start + max_length]))",
                "self.input_ids.append(torch.Tensor(token_ids[start:start + max_length]))",
            ),
        ),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "encode called without allowed_special, so a text with <|endoftext|> raises",
        (('tokenizer.encode(txt, allowed_special={"<|endoftext|>"})', "tokenizer.encode(txt)"),),
    ),
    Mutant(
        "ch02.gpt_dataset",
        "__len__ one short: the last window is never served",
        (("return len(self.input_ids)", "return len(self.input_ids) - 1"),),
    ),
    # ch02.create_dataloader
    Mutant(
        "ch02.create_dataloader",
        "shuffle not passed on (the DataLoader never shuffles)",
        (("shuffle=shuffle, ", ""),),
    ),
    Mutant(
        "ch02.create_dataloader",
        "drop_last not passed on (a short last batch is kept)",
        (("drop_last=drop_last, ", ""),),
    ),
    Mutant(
        "ch02.create_dataloader",
        "batch_size not passed on (batches of 1)",
        (("batch_size=batch_size, ", ""),),
    ),
    Mutant(
        "ch02.create_dataloader",
        "num_workers not passed on",
        ((", num_workers=num_workers)", ")"),),
    ),
    Mutant(
        "ch02.create_dataloader",
        "max_length and stride swapped when building the dataset",
        (("GPTDatasetV1(txt, tokenizer, max_length, stride)", "GPTDatasetV1(txt, tokenizer, stride, max_length)"),),
    ),
    Mutant(
        "ch02.create_dataloader",
        "stride ignored: the dataset is built with stride = max_length",
        (("GPTDatasetV1(txt, tokenizer, max_length, stride)", "GPTDatasetV1(txt, tokenizer, max_length, max_length)"),),
    ),
    # ch02.input_embeddings
    Mutant(
        "ch02.input_embeddings",
        "position embeddings not added",
        (("return self.tok_emb(token_ids) + self.pos_emb(positions)", "return self.tok_emb(token_ids)"),),
    ),
    Mutant(
        "ch02.input_embeddings",
        "position embeddings looked up with the token ids instead of the positions",
        (("self.pos_emb(positions)", "self.pos_emb(token_ids)"),),
    ),
    Mutant(
        "ch02.input_embeddings",
        "positions start at 1 instead of 0",
        (
            (
                "torch.arange(token_ids.shape[1], device=token_ids.device)",
                "torch.arange(1, token_ids.shape[1] + 1, device=token_ids.device)",
            ),
        ),
    ),
    Mutant(
        "ch02.input_embeddings",
        "positions counted along the batch dimension (shape[0]) instead of the sequence",
        (("torch.arange(token_ids.shape[1]", "torch.arange(token_ids.shape[0]"),),
    ),
    Mutant(
        "ch02.input_embeddings",
        "position table sized vocab_size instead of context_length",
        (("self.pos_emb = nn.Embedding(context_length, emb_dim)", "self.pos_emb = nn.Embedding(vocab_size, emb_dim)"),),
    ),
]

ALTERNATIVES: list[Alternative] = [
    Alternative(
        "ch02.simple_tokenizer",
        "findall with one token pattern; a loop of str.replace for the punctuation clean-up",
        r'''
import re

_PUNCTUATION = ',.:;?!"()\''


def build_vocab(text):
    """Map every distinct word and punctuation token of `text` to an id, then add the two special tokens."""
    words = re.findall(r'[,.:;?_!"()\']|--|(?:(?!--)[^\s,.:;?_!"()\'])+', text)
    unique = sorted(dict.fromkeys(words))
    vocab = {}
    for index, word in enumerate(unique + ["<|endoftext|>", "<|unk|>"]):
        vocab[word] = index
    return vocab


class SimpleTokenizerV2:
    def __init__(self, vocab):
        self.str_to_int = dict(vocab)
        self.int_to_str = {i: s for s, i in vocab.items()}

    def encode(self, text):
        ids = []
        for word in re.findall(r'[,.:;?_!"()\']|--|(?:(?!--)[^\s,.:;?_!"()\'])+', text):
            ids.append(self.str_to_int.get(word, self.str_to_int["<|unk|>"]))
        return ids

    def decode(self, ids):
        text = " ".join(self.int_to_str[i] for i in ids)
        for mark in _PUNCTUATION:
            text = text.replace(" " + mark, mark)
        return text
''',
    ),
    Alternative(
        "ch02.bpe_train",
        "naive trainer that recounts every pair before each merge, with its own helpers",
        r'''
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
''',
    ),
    Alternative(
        "ch02.bpe_train",
        "incremental pair counts in one function, no helpers, str.split on the special tokens",
        r'''
import re
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
''',
    ),
    Alternative(
        'ch02.bpe_tokenizer',
        "OpenAI's GPT-2 encoder.py loop: merge the best bigram everywhere, with its own byte alphabet",
        r'''
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
''',
    ),
    Alternative(
        "ch02.bpe_tokenizer",
        "heap of candidate merges over a linked list of symbols; specials found with finditer",
        r'''
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
        self.pretokenizer = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
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
            ids += self._encode_plain(text[start:m.start()])
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
''',
    ),
    Alternative(
        "ch02.gpt_dataset",
        "windows cut with Tensor.unfold",
        r'''
import torch
from torch.utils.data import Dataset


class GPTDatasetV1(Dataset):
    """Input-target windows cut with `Tensor.unfold`: row k is tokens [k*stride, k*stride + max_length)."""

    def __init__(self, txt, tokenizer, max_length, stride):
        token_ids = torch.tensor(tokenizer.encode(txt, allowed_special={"<|endoftext|>"}), dtype=torch.long)
        if len(token_ids) > max_length:
            self.input_ids = list(token_ids[:-1].unfold(0, max_length, stride))
            self.target_ids = list(token_ids[1:].unfold(0, max_length, stride))
        else:
            self.input_ids, self.target_ids = [], []

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]
''',
    ),
    Alternative(
        "ch02.gpt_dataset",
        "windows sliced lazily in __getitem__; input_ids and target_ids as properties",
        r'''
import torch
from torch.utils.data import Dataset


class GPTDatasetV1(Dataset):
    """Keeps the token ids once and slices a window out of them on each `__getitem__`."""

    def __init__(self, txt, tokenizer, max_length, stride):
        self.token_ids = tokenizer.encode(txt, allowed_special={"<|endoftext|>"})
        self.max_length = max_length
        self.starts = list(range(0, len(self.token_ids) - max_length, stride))

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, idx):
        start = self.starts[idx]
        chunk = torch.tensor(self.token_ids[start:start + self.max_length + 1], dtype=torch.long)
        return chunk[:-1], chunk[1:]

    @property
    def input_ids(self):
        return [self[k][0] for k in range(len(self))]

    @property
    def target_ids(self):
        return [self[k][1] for k in range(len(self))]
''',
    ),
    Alternative(
        'ch02.create_dataloader',
        "encoding_for_model('gpt2') and positional DataLoader arguments",
        r'''
import tiktoken
from torch.utils.data import DataLoader


def create_dataloader_v1(txt, batch_size=4, max_length=256, stride=128, shuffle=True, drop_last=True, num_workers=0):
    """Batches of (inputs, targets), each (batch_size, max_length), over GPT-2 tokens of `txt`."""
    return DataLoader(
        GPTDatasetV1(txt, tiktoken.encoding_for_model("gpt2"), max_length=max_length, stride=stride),
        batch_size,
        shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
    )
''',
    ),
    Alternative(
        "ch02.input_embeddings",
        "F.embedding on tok_emb.weight plus a slice of pos_emb.weight",
        r'''
import torch
import torch.nn.functional as F
from torch import nn


class InputEmbedding(nn.Module):
    """Token plus absolute position embeddings: (batch, n) ids -> (batch, n, emb_dim)."""

    def __init__(self, vocab_size, emb_dim, context_length):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)

    def forward(self, token_ids):
        num_tokens = token_ids.shape[-1]
        tokens = F.embedding(token_ids, self.tok_emb.weight)
        return tokens + self.pos_emb.weight[:num_tokens]
''',
    ),
]
