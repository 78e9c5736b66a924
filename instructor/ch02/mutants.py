"""Chapter 2's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch02.simple_tokenizer": [
        Mutant(
            "split pattern without a capturing group, so punctuation is dropped from vocabulary and encodings",
            ((r"""SPLIT_PATTERN = r'([,.:;?_!"()\']|--|\s)'""", r"""SPLIT_PATTERN = r'[,.:;?_!"()\']|--|\s'"""),),
        ),
        Mutant(
            "special tokens put at the start of the vocabulary (ids 0 and 1) instead of appended",
            (('tokens += ["<|endoftext|>", "<|unk|>"]', 'tokens = ["<|endoftext|>", "<|unk|>"] + tokens'),),
        ),
        Mutant(
            "special tokens appended in the wrong order: <|unk|> before <|endoftext|>",
            (('tokens += ["<|endoftext|>", "<|unk|>"]', 'tokens += ["<|unk|>", "<|endoftext|>"]'),),
        ),
        Mutant(
            "vocabulary kept in order of first appearance instead of sorted",
            (
                (
                    "tokens = sorted({piece for piece in pieces if piece})",
                    "tokens = list(dict.fromkeys(piece for piece in pieces if piece))",
                ),
            ),
        ),
        Mutant(
            "vocabulary not deduplicated: a repeated word takes the id of its last copy, leaving gaps",
            (
                (
                    "tokens = sorted({piece for piece in pieces if piece})",
                    "tokens = sorted([piece for piece in pieces if piece])",
                ),
            ),
        ),
        Mutant(
            "build_vocab does not strip the pieces, so whitespace separators become vocabulary entries",
            (
                (
                    "pieces = (piece.strip() for piece in re.split(SPLIT_PATTERN, text))\n    tokens = sorted",
                    "pieces = re.split(SPLIT_PATTERN, text)\n    tokens = sorted",
                ),
            ),
        ),
        Mutant(
            "encode drops unknown words instead of mapping them to <|unk|>",
            (
                (
                    'tokens = [piece if piece in self.str_to_int else "<|unk|>" for piece in pieces if piece]',
                    "tokens = [piece for piece in pieces if piece in self.str_to_int]",
                ),
            ),
        ),
        Mutant(
            "encode keeps the empty strings between separators, each becoming an <|unk|>",
            (('else "<|unk|>" for piece in pieces if piece]', 'else "<|unk|>" for piece in pieces]'),),
        ),
        Mutant(
            "decode keeps the space in front of punctuation",
            ((r"""return re.sub(r'\s+([,.:;?!"()\'])', r"\1", text)""", "return text"),),
        ),
    ],
    "ch02.bpe_train": [
        Mutant(
            "a tie goes to the lexicographically smaller pair",
            (
                (
                    "best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))",
                    "best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))",
                ),
            ),
        ),
        Mutant(
            "a tie goes to whichever pair was counted first (no tie-break)",
            (("key=lambda pair: (pair_counts[pair], pair))", "key=lambda pair: pair_counts[pair])"),),
        ),
        Mutant(
            "a tie goes to the greater merged token (left + right) instead of the greater pair",
            (
                (
                    "key=lambda pair: (pair_counts[pair], pair))",
                    "key=lambda pair: (pair_counts[pair], pair[0] + pair[1]))",
                ),
            ),
        ),
        Mutant(
            "pair counts not weighted by pre-token frequency: each distinct pre-token counts once",
            (("freqs = list(counts.values())", "freqs = [1] * len(counts)"),),
        ),
        Mutant(
            "special tokens not split off before counting: they are pre-tokenized and merged like text",
            (("    for piece in pieces:\n", "    for piece in [text]:\n"),),
        ),
        Mutant(
            "special tokens used as a regex without re.escape, so '<|endoftext|>' splits at '<', 'endoftext' and '>'",
            (('"|".join(re.escape(token) for token in longest_first)', '"|".join(longest_first)'),),
        ),
        Mutant(
            "no pre-tokenization: each text chunk is one sequence, so merges cross word boundaries",
            (("for pretoken in regex.findall(GPT2_PRETOKENIZE_PATTERN, piece)", "for pretoken in [piece]"),),
        ),
        Mutant(
            "merge_pair steps one token after a merge, so overlapping occurrences (a a a) are merged twice",
            (
                (
                    "            merged.append(pair[0] + pair[1])\n            i += 2",
                    "            merged.append(pair[0] + pair[1])\n            i += 1",
                ),
            ),
        ),
        Mutant(
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
            "special tokens not counted in vocab_size: len(special_tokens) merges too many",
            (("range(vocab_size - 256 - len(special_tokens))", "range(vocab_size - 256)"),),
        ),
        Mutant(
            "special tokens deleted from the text (re.sub with '') instead of splitting on them, so the text "
            "on both sides of a glued special token becomes one pre-token and gets merged across it",
            (
                (
                    'pieces = re.split("|".join(re.escape(token) for token in longest_first), text)',
                    'pieces = [re.sub("|".join(re.escape(token) for token in longest_first), "", text)]',
                ),
            ),
        ),
        Mutant(
            "special tokens removed with text.replace(token, ''), which glues their neighbours together "
            '("low<|endoftext|>lower" becomes the pre-token "lowlower")',
            (
                (
                    'pieces = re.split("|".join(re.escape(token) for token in longest_first), text)',
                    'for token in longest_first:\n            text = text.replace(token, "")\n        pieces = [text]',
                ),
            ),
        ),
        Mutant(
            "the text is split at the special tokens but the pieces are joined back together before "
            "pre-tokenizing, so words on both sides of a special token run into each other",
            (
                (
                    "    for piece in pieces:\n"
                    '        counts.update(pretoken.encode("utf-8") for pretoken in regex.findall(GPT2_PRETOKENIZE_PATTERN, piece))\n',
                    '    text = "".join(pieces)\n'
                    '    counts.update(pretoken.encode("utf-8") for pretoken in regex.findall(GPT2_PRETOKENIZE_PATTERN, text))\n',
                ),
            ),
        ),
        Mutant(
            "special tokens replaced by a space instead of splitting the text there, so the word after one gains a "
            "leading space ('low<|endoftext|>lower' counted as 'low lower')",
            (
                (
                    'pieces = re.split("|".join(re.escape(token) for token in longest_first), text)',
                    'pieces = [re.sub("|".join(re.escape(token) for token in longest_first), " ", text)]',
                ),
            ),
        ),
        Mutant(
            "special tokens get the ids right after the 256 bytes, before the merged tokens",
            (
                (
                    "    for left, right in merges:\n        vocab[len(vocab)] = left + right\n"
                    '    for token in special_tokens:\n        vocab[len(vocab)] = token.encode("utf-8")\n',
                    '    for token in special_tokens:\n        vocab[len(vocab)] = token.encode("utf-8")\n'
                    "    for left, right in merges:\n        vocab[len(vocab)] = left + right\n",
                ),
            ),
        ),
        Mutant(
            "pairs whose count drops to zero are left in pair_counts, so when no pair is left to merge "
            "training does not stop early (it picks a pair that no longer occurs and crashes)",
            (
                (
                    "                pair_counts[pair] -= freq\n"
                    "                if pair_counts[pair] == 0:\n"
                    "                    del pair_counts[pair]\n",
                    "                pair_counts[pair] -= freq\n",
                ),
            ),
        ),
    ],
    "ch02.bpe_tokenizer": [
        Mutant(
            "encode merges the leftmost mergeable pair instead of the lowest-ranked one",
            (("_, i = min(ranked)", "_, i = min(ranked, key=lambda item: item[1])"),),
        ),
        Mutant(
            "encode applies the highest-ranked (latest) merge first",
            (("_, i = min(ranked)", "_, i = max(ranked)"),),
        ),
        Mutant(
            "encode does not pre-tokenize: merges run over the whole text between special tokens",
            (("for pretoken in regex.findall(GPT2_PRETOKENIZE_PATTERN, piece):", "for pretoken in [piece]:"),),
        ),
        Mutant(
            "special tokens not recognised in encode: they are encoded byte by byte like text",
            (("pieces = self.special_pattern.split(text) if self.special_pattern else [text]", "pieces = [text]"),),
        ),
        Mutant(
            "special-token pattern built in the order the special tokens were given, not longest first, "
            "so a special token that is a prefix of another one wins and cuts the longer one apart",
            (
                (
                    '"|".join(re.escape(token) for token in longest_first) + ")"',
                    '"|".join(re.escape(token) for token in self.special_tokens) + ")"',
                ),
            ),
        ),
        Mutant(
            "special tokens sorted by length without reverse=True, so the shortest is tried first",
            (
                (
                    "longest_first = sorted(self.special_tokens, key=len, reverse=True)",
                    "longest_first = sorted(self.special_tokens, key=len)",
                ),
            ),
        ),
        Mutant(
            "special tokens sorted alphabetically instead of by length: a prefix sorts before the longer "
            "token, so it is tried first",
            (
                (
                    "longest_first = sorted(self.special_tokens, key=len, reverse=True)",
                    "longest_first = sorted(self.special_tokens)",
                ),
            ),
        ),
        Mutant(
            "the text split at one special token after another, in the order they are given, so a shorter special "
            "token that starts a longer one cuts it apart before the longer one is looked for",
            (
                (
                    "pieces = self.special_pattern.split(text) if self.special_pattern else [text]",
                    "pieces = [text]\n"
                    "        for special in self.special_tokens:\n"
                    "            pieces = [\n"
                    "                part\n"
                    "                for piece in pieces\n"
                    '                for part in ([piece] if piece in self.special_tokens else re.split(f"({re.escape(special)})", piece))\n'
                    "            ]",
                ),
            ),
        ),
        Mutant(
            "special tokens always appended to the vocabulary, even when it already has them, so they get "
            "a new id (GPT-2's <|endoftext|> becomes 50257 instead of 50256)",
            (
                (
                    '            if special.encode("utf-8") not in self.ids:\n'
                    "                new_id = max(self.vocab, default=-1) + 1\n"
                    '                self.vocab[new_id] = special.encode("utf-8")\n'
                    '                self.ids[special.encode("utf-8")] = new_id\n',
                    "            new_id = max(self.vocab, default=-1) + 1\n"
                    '            self.vocab[new_id] = special.encode("utf-8")\n'
                    '            self.ids[special.encode("utf-8")] = new_id\n',
                ),
            ),
        ),
        Mutant(
            "the pre-token cache is a class attribute, shared by every tokenizer, so a second tokenizer "
            "with other merges returns the first one's ids for pre-tokens it has already seen",
            (
                (
                    '    """Byte-level BPE: GPT-2\'s pre-tokenizer, then the merges in rank order inside each pre-token."""\n',
                    '    """Byte-level BPE: GPT-2\'s pre-tokenizer, then the merges in rank order inside each pre-token."""\n\n'
                    "    cache: dict[str, list[int]] = {}\n",
                ),
                ("        self.cache: dict[str, list[int]] = {}\n", ""),
            ),
        ),
        Mutant(
            "decode turns each token into text on its own, so a character split across tokens becomes U+FFFD",
            (
                (
                    'return b"".join(self.vocab[token_id] for token_id in ids).decode("utf-8", errors="replace")',
                    'return "".join(self.vocab[token_id].decode("utf-8", errors="replace") for token_id in ids)',
                ),
            ),
        ),
        Mutant(
            "decode with errors='strict': invalid UTF-8 raises instead of becoming U+FFFD",
            (('errors="replace"', 'errors="strict"'),),
        ),
        Mutant(
            "vocab.bpe merges encoded as UTF-8 instead of mapped back through the byte alphabet (no merge with 'Ġ' ever applies)",
            (
                (
                    "merges = [tuple(to_bytes(part) for part in line.split()) for line in lines if line.strip()]",
                    'merges = [tuple(part.encode("utf-8") for part in line.split()) for line in lines if line.strip()]',
                ),
            ),
        ),
        Mutant(
            "from_gpt2_files ignores special_tokens, so <|endoftext|> is encoded as text",
            (("return cls(vocab, merges, list(special_tokens))", "return cls(vocab, merges)"),),
        ),
    ],
    "ch02.gpt_dataset": [
        Mutant(
            "targets not shifted: the target window equals the input window",
            (("token_ids[start + 1:start + max_length + 1]", "token_ids[start:start + max_length]"),),
        ),
        Mutant(
            "window range one too long: the last target window is one token short",
            (
                (
                    "range(0, len(token_ids) - max_length, stride)",
                    "range(0, len(token_ids) - max_length + 1, stride)",
                ),
            ),
        ),
        Mutant(
            "range end one too small (len - max_length - 1): the window whose target ends exactly at the last "
            "token is left out",
            (("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - (max_length + 1), stride)"),),
        ),
        Mutant(
            "stops with `>=` instead of `>` when checking whether the target window fits, so a window whose "
            "target ends exactly at the last token is dropped",
            (
                (
                    "        for start in range(0, len(token_ids) - max_length, stride):\n",
                    "        for start in range(0, len(token_ids), stride):\n"
                    "            if start + max_length + 1 >= len(token_ids):\n"
                    "                break\n",
                ),
            ),
        ),
        Mutant(
            "while loop with a strict `<` on the end of the target window, so the last window (target ending "
            "exactly at the last token) is never added",
            (
                (
                    "        for start in range(0, len(token_ids) - max_length, stride):\n"
                    "            self.input_ids.append(torch.tensor(token_ids[start:start + max_length]))\n"
                    "            self.target_ids.append(torch.tensor(token_ids[start + 1:start + max_length + 1]))\n",
                    "        start = 0\n"
                    "        while start + max_length + 1 < len(token_ids):\n"
                    "            self.input_ids.append(torch.tensor(token_ids[start:start + max_length]))\n"
                    "            self.target_ids.append(torch.tensor(token_ids[start + 1:start + max_length + 1]))\n"
                    "            start += stride\n",
                ),
            ),
        ),
        Mutant(
            "input window of max_length + 1 tokens",
            (("token_ids[start:start + max_length])", "token_ids[start:start + max_length + 1])"),),
        ),
        Mutant(
            "stride off by one: window starts are stride + 1 apart",
            (("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length, stride + 1)"),),
        ),
        Mutant(
            "stride ignored: windows never overlap (starts max_length apart)",
            (("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length, max_length)"),),
        ),
        Mutant(
            "constructor takes stride before max_length, so positional calls swap them",
            (
                (
                    "def __init__(self, txt: str, tokenizer, max_length: int, stride: int):",
                    "def __init__(self, txt: str, tokenizer, stride: int, max_length: int):",
                ),
            ),
        ),
        Mutant(
            "input windows built with torch.Tensor, so they are float32 instead of int64",
            (
                (
                    "self.input_ids.append(torch.tensor(token_ids[start:start + max_length]))",
                    "self.input_ids.append(torch.Tensor(token_ids[start:start + max_length]))",
                ),
            ),
        ),
        Mutant(
            "encode called without allowed_special, so a text with <|endoftext|> raises",
            (('tokenizer.encode(txt, allowed_special={"<|endoftext|>"})', "tokenizer.encode(txt)"),),
        ),
        Mutant(
            "__len__ one short: the last window is never served",
            (("return len(self.input_ids)", "return len(self.input_ids) - 1"),),
        ),
    ],
    "ch02.create_dataloader": [
        Mutant(
            "shuffle not passed on (the DataLoader never shuffles)",
            (("shuffle=shuffle, ", ""),),
        ),
        Mutant(
            "drop_last not passed on (a short last batch is kept)",
            (("drop_last=drop_last, ", ""),),
        ),
        Mutant(
            "batch_size not passed on (batches of 1)",
            (("batch_size=batch_size, ", ""),),
        ),
        Mutant(
            "num_workers not passed on",
            ((", num_workers=num_workers)", ")"),),
        ),
        Mutant(
            "max_length and stride swapped when building the dataset",
            (("GPTDatasetV1(txt, tokenizer, max_length, stride)", "GPTDatasetV1(txt, tokenizer, stride, max_length)"),),
        ),
        Mutant(
            "stride ignored: the dataset is built with stride = max_length",
            (
                (
                    "GPTDatasetV1(txt, tokenizer, max_length, stride)",
                    "GPTDatasetV1(txt, tokenizer, max_length, max_length)",
                ),
            ),
        ),
    ],
    "ch02.input_embeddings": [
        Mutant(
            "position embeddings not added",
            (("return self.tok_emb(token_ids) + self.pos_emb(positions)", "return self.tok_emb(token_ids)"),),
        ),
        Mutant(
            "position embeddings looked up with the token ids instead of the positions",
            (("self.pos_emb(positions)", "self.pos_emb(token_ids)"),),
        ),
        Mutant(
            "positions start at 1 instead of 0",
            (
                (
                    "torch.arange(token_ids.shape[1], device=token_ids.device)",
                    "torch.arange(1, token_ids.shape[1] + 1, device=token_ids.device)",
                ),
            ),
        ),
        Mutant(
            "positions counted along the batch dimension (shape[0]) instead of the sequence",
            (("torch.arange(token_ids.shape[1]", "torch.arange(token_ids.shape[0]"),),
        ),
        Mutant(
            "position table sized vocab_size instead of context_length",
            (
                (
                    "self.pos_emb = nn.Embedding(context_length, emb_dim)",
                    "self.pos_emb = nn.Embedding(vocab_size, emb_dim)",
                ),
            ),
        ),
    ],
}
