"""Public checks of chapter 2: tokenizers, BPE, sliding-window datasets, input embeddings.

Expected values come from fixtures recorded from the reference (`course fixtures ch02`)
or from properties any correct implementation has.
"""

from __future__ import annotations

import pytest
import regex
import torch
from torch.utils.data import DataLoader

from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_mapping_equal,
    expect_sequence_equal,
    expect_tensor,
    expect_text_equal,
    expect_type,
    fail,
)
from autograder.gpt2_for_checks import END_OF_TEXT_ID, GPT2_PATTERN

# The BPE exercises are written from scratch: no tiktoken inside them.
from_scratch = pytest.mark.forbid("tiktoken.get_encoding", "tiktoken.Encoding.__init__")

simple_tokenizer = pytest.mark.ch02_simple_tokenizer


def bpe_train(check):
    return pytest.mark.ch02_bpe_train(from_scratch(check))


def bpe_tokenizer(check):
    return pytest.mark.ch02_bpe_tokenizer(from_scratch(check))


gpt_dataset = pytest.mark.ch02_gpt_dataset
create_dataloader = pytest.mark.ch02_create_dataloader
input_embeddings = pytest.mark.ch02_input_embeddings


# ---------------------------------------------------------------- ch02.simple_tokenizer


@simple_tokenizer
def test_build_vocab_sorts_tokens_then_appends_specials(sub, recorded):
    """build_vocab: sorted unique tokens, then <|endoftext|> and <|unk|>"""
    vocab = sub.build_vocab(recorded["corpus"])
    expect_type(vocab, dict, "build_vocab(text)")
    expected = recorded["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    expect(
        tokens[-2:] == ["<|endoftext|>", "<|unk|>"],
        f"the last two ids should be <|endoftext|> then <|unk|>; got {tokens[-2:]}",
    )
    expect(sorted(vocab.values()) == list(range(len(vocab))), "ids should be 0, 1, ..., len(vocab) - 1 with no gaps")
    blank = [t for t in vocab if not t.strip()]
    expect(not blank, f"the vocabulary holds whitespace tokens like {blank[0]!r}; strip and drop them" if blank else "")
    expect_mapping_equal(vocab, expected, "vocab")


@simple_tokenizer
def test_simple_tokenizer_encodes_known_words(sub, recorded):
    """encode maps each word and punctuation mark to its id"""
    tokenizer = sub.SimpleTokenizerV2(recorded["vocab"])
    for sentence, expected in zip(recorded["tokenizer_sentences"], recorded["simple_ids"]):
        ids = tokenizer.encode(sentence)
        expect_type(ids, list, "encode(text)")
        expect_sequence_equal(ids, expected, f"encode({sentence!r})")


@simple_tokenizer
def test_simple_tokenizer_maps_unknown_words_to_unk(sub, recorded):
    """unknown words become <|unk|>, one id per word"""
    vocab = recorded["vocab"]
    tokenizer = sub.SimpleTokenizerV2(vocab)
    ids = tokenizer.encode("The zeppelin counted ships, quietly.")
    unk, known = vocab["<|unk|>"], [vocab[w] for w in ("The", "counted", "ships", ",", ".")]
    expected = [known[0], unk, known[1], known[2], known[3], unk, known[4]]
    expect(
        len(ids) == len(expected),
        f"encode should give one id per token ({len(expected)}), unknown words included; got {len(ids)} ids",
    )
    expect_sequence_equal(ids, expected, "encode of a sentence with two unknown words")


@simple_tokenizer
def test_simple_tokenizer_decode_removes_space_before_punctuation(sub, recorded):
    """decode joins tokens and removes the space before punctuation"""
    tokenizer = sub.SimpleTokenizerV2(recorded["vocab"])
    for ids, expected in zip(recorded["simple_ids"], recorded["simple_decoded"]):
        expect_text_equal(tokenizer.decode(ids), expected, "decode(ids)")


# ---------------------------------------------------------------- ch02.bpe_train


def _train(sub, text, vocab_size, specials):
    result = sub.train_bpe(text, vocab_size, list(specials))
    expect(isinstance(result, tuple) and len(result) == 2, "train_bpe should return a tuple (vocab, merges)")
    vocab, merges = result
    expect_type(vocab, dict, "the vocab returned by train_bpe")
    expect_type(merges, list, "the merges returned by train_bpe")
    return vocab, merges


@bpe_train
def test_bpe_vocab_layout_bytes_merges_then_specials(sub, recorded):
    """vocab: 256 single bytes, one id per merge in order, special tokens last"""
    size, specials = recorded["bpe_vocab_size"], recorded["bpe_specials"]
    vocab, merges = _train(sub, recorded["bpe_train_text"], size, specials)
    expect(len(vocab) == size, f"the vocabulary has {len(vocab)} entries; expected vocab_size = {size}")
    for i in range(256):
        expect(vocab.get(i) == bytes([i]), f"vocab[{i}] should be the single byte {bytes([i])!r}; got {vocab.get(i)!r}")
    expect(
        len(merges) == size - 256 - len(specials),
        f"{len(merges)} merges; expected vocab_size - 256 - len(special_tokens) = {size - 256 - len(specials)}",
    )
    for k, (left, right) in enumerate(merges):
        got = vocab.get(256 + k)
        expect(got == left + right, f"vocab[{256 + k}] should be merge #{k} joined ({left + right!r}); got {got!r}")
    tail = [vocab.get(size - len(specials) + j) for j in range(len(specials))]
    expect(
        tail == [s.encode("utf-8") for s in specials],
        f"the special tokens should take the last ids as UTF-8 bytes; got {tail}",
    )


@bpe_train
def test_bpe_merges_match_reference(sub, recorded):
    """the learned merges, in order"""
    _, merges = _train(sub, recorded["bpe_train_text"], recorded["bpe_vocab_size"], recorded["bpe_specials"])
    expect_sequence_equal([tuple(m) for m in merges], recorded["bpe_merges"], "merges")


@bpe_train
def test_bpe_ties_go_to_the_lexicographically_greater_pair(sub, recorded):
    """on equal counts the lexicographically greater pair is merged first"""
    _, merges = _train(sub, recorded["tie_text"], 256 + 3, [])
    expect_sequence_equal(
        [tuple(m) for m in merges], recorded["tie_merges"], f"merges on {recorded['tie_text']!r} (all pairs tie)"
    )


@bpe_train
def test_bpe_special_tokens_are_matched_literally(sub, recorded):
    """special tokens are split off as literal strings, not as regex patterns"""
    _, merges = _train(sub, recorded["markup_text"], 256 + 1 + 12, ["<|endoftext|>"])
    expect_sequence_equal(
        [tuple(m) for m in merges],
        recorded["markup_merges"],
        "merges on a text with '<', '>' and 'endoftext' around the special token",
    )


@bpe_train
def test_bpe_merges_stay_inside_pretokens(sub, recorded):
    """no merge crosses a pre-token boundary or a special token"""
    text, specials = recorded["bpe_train_text"], recorded["bpe_specials"]
    _, merges = _train(sub, text, recorded["bpe_vocab_size"], specials)
    pieces = regex.split("|".join(regex.escape(s) for s in specials), text)
    pretokens = {m.encode("utf-8") for piece in pieces for m in regex.findall(GPT2_PATTERN, piece)}
    for k, (left, right) in enumerate(merges):
        token = left + right
        if b"<|" in token or b"|>" in token:
            fail(
                f"merge #{k} builds {token!r} from the bytes of a special token; split the specials off before counting"
            )
        if not any(token in p for p in pretokens):
            fail(f"merge #{k} builds {token!r}, which spans two pre-tokens; count pairs inside each pre-token only")


# ---------------------------------------------------------------- ch02.bpe_tokenizer


def _bpe(sub, recorded, specials=("<|endoftext|>",)):
    return sub.BPETokenizer(
        dict(recorded["bpe_vocab"]), list(recorded["bpe_merges"]), list(specials) if specials else None
    )


@bpe_tokenizer
def test_bpe_encode_matches_reference_ids(sub, recorded):
    """encode with given merges gives the expected ids"""
    tokenizer = _bpe(sub, recorded)
    vocab = recorded["bpe_vocab"]
    for text, expected in zip(recorded["encode_texts"], recorded["encoded"]):
        ids = tokenizer.encode(text)
        expect_type(ids, list, "encode(text)")
        for i, (got, want) in enumerate(zip(ids, expected)):
            if got != want:
                fail(
                    f"encode({text[:30]!r}...): first difference at index {i}: got id {got} "
                    f"({vocab.get(got)!r}), expected id {want} ({vocab[want]!r})"
                )
        expect_sequence_equal(ids, expected, f"encode({text[:30]!r}...)")


@bpe_tokenizer
def test_bpe_merges_apply_inside_pretokens_only(sub):
    """a merge never joins bytes of two pre-tokens (" '" and "subject" stay apart)"""
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"'s"}
    tokenizer = sub.BPETokenizer(vocab, [(b"'", b"s")])
    expect_sequence_equal(
        tokenizer.encode("it's"), [ord("i"), ord("t"), 256], "encode(\"it's\") with the one merge (', s)"
    )
    expected = list(b"a 'subject")
    expect_sequence_equal(
        tokenizer.encode("a 'subject"),
        expected,
        'encode("a \'subject"): \' and s are in different pre-tokens (" \'" and "subject"), so no merge',
    )


@bpe_tokenizer
def test_bpe_decode_inverts_encode_on_unicode(sub, recorded):
    """decode(encode(text)) == text, emoji and accents included"""
    tokenizer = _bpe(sub, recorded)
    for text in recorded["encode_texts"] + ["Ünïcödé ✓ 🚀🚀 -- done", "  leading and trailing  "]:
        expect_text_equal(tokenizer.decode(tokenizer.encode(text)), text, f"decode(encode({text[:20]!r}...))")


@bpe_tokenizer
def test_bpe_special_token_is_one_id(sub, recorded):
    """a special token in the text becomes its own single id"""
    tokenizer = _bpe(sub, recorded)
    special_id = max(recorded["bpe_vocab"])
    ids = tokenizer.encode("ships<|endoftext|>boats")
    expect(
        ids.count(special_id) == 1, f"'<|endoftext|>' should be encoded as the single id {special_id}; got ids {ids}"
    )
    plain = _bpe(sub, recorded, specials=None).encode("<|endoftext|>")
    expect(
        special_id not in plain,
        "without special_tokens, '<|endoftext|>' is ordinary text and must not become the special id",
    )


@bpe_tokenizer
def test_bpe_decode_replaces_broken_utf8(sub, recorded):
    """decoding a partial UTF-8 character gives U+FFFD instead of an error"""
    tokenizer = _bpe(sub, recorded)
    expect_text_equal(tokenizer.decode([0xE2]), "\ufffd", "decode([0xE2]) (half a character)")


@bpe_tokenizer
def test_bpe_from_gpt2_files_matches_tiktoken(sub, gpt2_files, gpt2, recorded):
    """from_gpt2_files gives the same ids as tiktoken's gpt2 encoding"""
    tokenizer = sub.BPETokenizer.from_gpt2_files(*gpt2_files)
    corpus = [
        recorded["corpus"],
        "Hello, world! It's a beautiful day -- isn't it?",
        "Numbers: 3.14159, 2,718, 1e-9 and 12345678901234.",
        "Emoji 🙂🚀 and accents: naïve café, Ærøskøbing, 北京.",
        "Whitespace   runs\t\ttabs\n\n\nnewlines    ",
        "Some text<|endoftext|>Another document starts here.",
        "   she'll we've they'd I'm you're CAPITALS'S",
        "It was such a 'subject.' -- \"Yes,\" he said;  'twas   so.",
    ]
    for text in corpus:
        expected = gpt2.encode(text, allowed_special={"<|endoftext|>"})
        expect_sequence_equal(tokenizer.encode(text), expected, f"GPT-2 ids of {text[:30]!r}")
        expect_text_equal(tokenizer.decode(expected), text, f"decode of the GPT-2 ids of {text[:20]!r}...")


# ---------------------------------------------------------------- ch02.gpt_dataset


END_OF_TEXT = "<|endoftext|>"


class NumberTokenizer:
    """Encodes "0 1 2 ..." as the ids [0, 1, 2, ...], so windows are easy to read.

    Like tiktoken, it refuses "<|endoftext|>" unless `allowed_special` allows it.
    """

    def encode(self, text, allowed_special=frozenset(), **kwargs):
        if END_OF_TEXT in text and allowed_special != "all" and END_OF_TEXT not in allowed_special:
            raise ValueError(
                "the text contains the special token '<|endoftext|>' but encode was not called with "
                "allowed_special={'<|endoftext|>'}"
            )
        return [END_OF_TEXT_ID if word == END_OF_TEXT else int(word) for word in text.split()]


def _numbers(n: int) -> str:
    return " ".join(str(i) for i in range(n))


def _expected_windows(n: int, max_length: int, stride: int) -> list[int]:
    """Window starts: every stride tokens, as long as the target window fits."""
    return list(range(0, n - max_length, stride))


def _expect_window(inputs, targets, start: int, max_length: int, label: str) -> None:
    expect_tensor(inputs, f"{label} input", shape=(max_length,))
    expect_tensor(targets, f"{label} target", shape=(max_length,))
    expect(inputs.dtype == torch.long, f"{label} input has dtype {inputs.dtype}; token ids should be torch.long")
    if int(inputs[0]) != start:
        fail(f"{label} input starts at token {int(inputs[0])}; expected {start}")
    expect_equal_tensor(inputs, torch.arange(start, start + max_length), f"{label} input")
    if torch.equal(targets, inputs):
        fail(f"{label}: the target equals the input; it should be the input shifted one token to the right")
    expect_equal_tensor(targets, torch.arange(start + 1, start + max_length + 1), f"{label} target")


@gpt_dataset
@pytest.mark.parametrize("n, max_length, stride", [(40, 4, 4), (41, 6, 3), (30, 5, 7)])
def test_dataset_windows_step_by_stride(sub, n, max_length, stride):
    """windows start every stride tokens and targets are shifted by one"""
    dataset = sub.GPTDatasetV1(_numbers(n), NumberTokenizer(), max_length, stride)
    starts = _expected_windows(n, max_length, stride)
    expect(
        len(dataset) == len(starts),
        f"{n} tokens, max_length={max_length}, stride={stride}: len(dataset) is {len(dataset)}; expected {len(starts)}",
    )
    for k, start in enumerate(starts):
        item = dataset[k]
        expect(isinstance(item, tuple) and len(item) == 2, "dataset[i] should be a tuple (input_ids, target_ids)")
        _expect_window(*item, start, max_length, f"window {k} (max_length={max_length}, stride={stride})")


@gpt_dataset
def test_dataset_keeps_end_of_text_tokens(sub):
    """<|endoftext|> between documents is encoded as its token, not refused"""
    text = _numbers(10) + f" {END_OF_TEXT} " + " ".join(str(i) for i in range(11, 20))
    dataset = sub.GPTDatasetV1(text, NumberTokenizer(), 4, 2)
    inputs = [dataset[k][0] for k in range(len(dataset))]
    expect(
        any(END_OF_TEXT_ID in row.tolist() for row in inputs),
        "no window holds the <|endoftext|> token; encode the text with allowed_special={'<|endoftext|>'}",
    )


@gpt_dataset
def test_dataset_short_text_gives_no_windows(sub):
    """a text not longer than max_length has no complete window"""
    dataset = sub.GPTDatasetV1(_numbers(5), NumberTokenizer(), 5, 1)
    expect(len(dataset) == 0, f"5 tokens with max_length=5 leave no room for a target; len(dataset) is {len(dataset)}")


@gpt_dataset
def test_dataset_works_with_a_dataloader(sub):
    """batches from a DataLoader have shape (batch, max_length)"""
    dataset = sub.GPTDatasetV1(_numbers(50), NumberTokenizer(), 8, 8)
    inputs, targets = next(iter(DataLoader(dataset, batch_size=3, shuffle=False)))
    expect_tensor(inputs, "a batch of inputs", shape=(3, 8), dtype=torch.long)
    expect_equal_tensor(targets, inputs + 1, "a batch of targets")


# ---------------------------------------------------------------- ch02.create_dataloader


def _gpt2_windows(gpt2, text, max_length, stride):
    ids = gpt2.encode(text, allowed_special={"<|endoftext|>"})
    return [ids[s : s + max_length + 1] for s in _expected_windows(len(ids), max_length, stride)]


def _batches(loader):
    batches = list(loader)
    for inputs, targets in batches:
        expect_tensor(inputs, "a batch of inputs", dtype=torch.long)
        expect_tensor(targets, "a batch of targets", shape=tuple(inputs.shape))
    return batches


@create_dataloader
def test_dataloader_batches_gpt2_windows_in_order(sub, gpt2, recorded):
    """without shuffling, batches hold the GPT-2 token windows in order"""
    text = recorded["corpus"]
    windows = _gpt2_windows(gpt2, text, 8, 5)
    batches = _batches(
        sub.create_dataloader_v1(text, batch_size=3, max_length=8, stride=5, shuffle=False, drop_last=False)
    )
    rows = [row for inputs, targets in batches for row in zip(inputs, targets)]
    expect(
        batches and tuple(batches[0][0].shape) == (3, 8),
        f"the first batch should have shape (3, 8); got {tuple(batches[0][0].shape) if batches else 'no batches'}",
    )
    expect(len(rows) == len(windows), f"{len(rows)} windows in total; expected {len(windows)} (max_length=8, stride=5)")
    for k, ((inputs, targets), window) in enumerate(zip(rows, windows)):
        expect_equal_tensor(inputs, torch.tensor(window[:-1]), f"window {k} input (GPT-2 ids)")
        expect_equal_tensor(targets, torch.tensor(window[1:]), f"window {k} target (GPT-2 ids)")


@create_dataloader
def test_dataloader_drop_last_drops_the_short_batch(sub, gpt2, recorded):
    """drop_last=True drops an incomplete last batch, False keeps it"""
    text = recorded["corpus"]
    n = len(_gpt2_windows(gpt2, text, 6, 6))
    size = next(b for b in (4, 3, 5, 7) if n % b)  # a batch size that leaves a short last batch
    kept = _batches(
        sub.create_dataloader_v1(text, batch_size=size, max_length=6, stride=6, shuffle=False, drop_last=False)
    )
    dropped = _batches(
        sub.create_dataloader_v1(text, batch_size=size, max_length=6, stride=6, shuffle=False, drop_last=True)
    )
    expect(
        len(kept) == -(-n // size),
        f"drop_last=False: {len(kept)} batches; expected {-(-n // size)} for {n} windows of batch_size {size}",
    )
    expect(
        len(dropped) == n // size,
        f"drop_last=True: {len(dropped)} batches; expected {n // size} for {n} windows of batch_size {size}",
    )


@create_dataloader
def test_dataloader_shuffle_permutes_windows(sub, gpt2, recorded):
    """shuffle=True yields every window once, in another order"""
    text = recorded["corpus"]
    windows = _gpt2_windows(gpt2, text, 4, 3)
    torch.manual_seed(0)
    batches = _batches(
        sub.create_dataloader_v1(text, batch_size=2, max_length=4, stride=3, shuffle=True, drop_last=False)
    )
    rows = [tuple(row.tolist()) for inputs, _ in batches for row in inputs]
    expected = [tuple(w[:-1]) for w in windows]
    expect(
        sorted(rows) == sorted(expected), "with shuffle=True the batches should still hold every window exactly once"
    )
    expect(rows != expected, "with shuffle=True the windows came out in text order; pass shuffle on to the DataLoader")


@create_dataloader
def test_dataloader_passes_num_workers_on(sub, gpt2, recorded):
    """num_workers reaches the DataLoader"""
    loader = sub.create_dataloader_v1(recorded["corpus"], batch_size=2, max_length=4, stride=4, num_workers=2)
    expect_type(loader, DataLoader, "create_dataloader_v1(...)")
    expect(
        loader.num_workers == 2,
        f"create_dataloader_v1(..., num_workers=2) gave a DataLoader with num_workers={loader.num_workers}",
    )


@create_dataloader
def test_dataloader_defaults_follow_the_book(sub, gpt2, recorded):
    """defaults: batch_size=4, max_length=256, stride=128"""
    text = recorded["corpus"] * 8
    loader = sub.create_dataloader_v1(text, shuffle=False)
    inputs, _ = _batches(loader)[0]
    expect_type(loader, DataLoader, "create_dataloader_v1(...)")
    expect(loader.drop_last is True, "drop_last should default to True")
    expect(
        tuple(inputs.shape) == (4, 256),
        f"with the default arguments a batch has shape {tuple(inputs.shape)}; expected (4, 256)",
    )
    windows = _gpt2_windows(gpt2, text, 256, 128)
    expect_equal_tensor(inputs[1], torch.tensor(windows[1][:-1]), "the second window with default stride 128")


# ---------------------------------------------------------------- ch02.input_embeddings


def _embedding(sub, recorded):
    config = recorded["embed_config"]
    module = sub.InputEmbedding(config["vocab_size"], config["emb_dim"], config["context_length"])
    expect_type(module, torch.nn.Module, "InputEmbedding(...)")
    for name, rows in (("tok_emb", config["vocab_size"]), ("pos_emb", config["context_length"])):
        layer = getattr(module, name, None)
        expect_type(layer, torch.nn.Embedding, f"InputEmbedding.{name}")
        expect(
            tuple(layer.weight.shape) == (rows, config["emb_dim"]),
            f"{name}.weight has shape {tuple(layer.weight.shape)}; expected ({rows}, {config['emb_dim']})",
        )
    try:
        module.load_state_dict(recorded["embed_state"])
    except RuntimeError as exc:
        fail(f"the reference weights do not load (names should be tok_emb.weight and pos_emb.weight): {str(exc)[:200]}")
    return module


@input_embeddings
def test_embedding_has_book_layers(sub, recorded):
    """tok_emb and pos_emb are nn.Embedding layers of the right sizes"""
    _embedding(sub, recorded)


@input_embeddings
def test_embedding_output_matches_reference(sub, recorded):
    """token plus position embeddings, shape (batch, num_tokens, emb_dim)"""
    module = _embedding(sub, recorded)
    out = module(recorded["embed_input"])
    expect_close(out, recorded["embed_output"], "InputEmbedding output", atol=1e-6)


@input_embeddings
@pytest.mark.parametrize("num_tokens", [1, 5, 12])
def test_embedding_adds_position_rows(sub, recorded, num_tokens):
    """position t adds row t of pos_emb, for any length up to context_length"""
    module = _embedding(sub, recorded)
    ids = torch.randint(
        0, recorded["embed_config"]["vocab_size"], (3, num_tokens), generator=torch.Generator().manual_seed(num_tokens)
    )
    out = module(ids)
    expect_tensor(out, f"output for {num_tokens} tokens", shape=(3, num_tokens, recorded["embed_config"]["emb_dim"]))
    positions = (out - module.tok_emb(ids)).detach()
    expected = module.pos_emb.weight[:num_tokens].detach().expand(3, -1, -1)
    expect_close(
        positions, expected, f"output minus token embeddings ({num_tokens} tokens): the position part", atol=1e-6
    )


@input_embeddings
def test_embedding_gradients_reach_both_tables(sub, recorded):
    """the loss gradient reaches tok_emb and pos_emb"""
    module = _embedding(sub, recorded)
    module(recorded["embed_input"]).sum().backward()
    for name in ("tok_emb", "pos_emb"):
        grad = getattr(module, name).weight.grad
        expect(grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name}.weight; is it used in forward?")
