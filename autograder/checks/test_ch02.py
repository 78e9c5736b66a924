"""Public checks of chapter 2: tokenizers, BPE, sliding-window datasets, input embeddings.

Expected values come from fixtures recorded from the reference (`course fixtures ch02`)
or from properties any correct implementation has.

Every check is split (`autograder.split`): its produce step runs the submission and
returns plain data, and its compare step decides on that data alone.
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
    expect_list,
    expect_mapping_equal,
    expect_sequence_equal,
    expect_tensor,
    expect_text_equal,
    expect_type,
    fail,
)
from autograder.gpt2_for_checks import END_OF_TEXT_ID, GPT2_PATTERN
from autograder.split import split

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


def _returned(value, kinds, what: str):
    """Produce: `value`, failing as the check always did when it is not one of `kinds`: a set, a
    generator or bytes would not cross to compare as data, a NumPy array would cross as a tensor.
    Compare checks the type again."""
    expect_type(value, kinds, what)
    return value


def _is_count(value, count: int) -> bool:
    """`value` is the int `count` (a bool is not a length)."""
    return type(value) is int and value == count


# ---------------------------------------------------------------- ch02.simple_tokenizer


def _recorded_vocab(sub, recorded):
    return _returned(sub.build_vocab(recorded["corpus"]), dict, "build_vocab(text)")


@simple_tokenizer
@split(produce=_recorded_vocab)
def test_build_vocab_sorts_tokens_then_appends_specials(outputs, recorded):
    """build_vocab: sorted unique tokens, then <|endoftext|> and <|unk|>"""
    vocab = outputs
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


def _recorded_sentence_ids(sub, recorded):
    tokenizer = sub.SimpleTokenizerV2(recorded["vocab"])
    return [_returned(tokenizer.encode(sentence), list, "encode(text)") for sentence in recorded["tokenizer_sentences"]]


@simple_tokenizer
@split(produce=_recorded_sentence_ids)
def test_simple_tokenizer_encodes_known_words(outputs, recorded):
    """encode maps each word and punctuation mark to its id"""
    sentences = recorded["tokenizer_sentences"]
    expect_list(outputs, len(sentences), "the encode results")
    for sentence, ids, expected in zip(sentences, outputs, recorded["simple_ids"], strict=True):
        expect_type(ids, list, "encode(text)")
        expect_sequence_equal(ids, expected, f"encode({sentence!r})")


UNKNOWN_WORDS_SENTENCE = "The zeppelin counted ships, quietly."


def _unknown_words_ids(sub, recorded):
    return sub.SimpleTokenizerV2(recorded["vocab"]).encode(UNKNOWN_WORDS_SENTENCE)


@simple_tokenizer
@split(produce=_unknown_words_ids)
def test_simple_tokenizer_maps_unknown_words_to_unk(outputs, recorded):
    """unknown words become <|unk|>, one id per word"""
    vocab = recorded["vocab"]
    ids = outputs
    unk, known = vocab["<|unk|>"], [vocab[w] for w in ("The", "counted", "ships", ",", ".")]
    expected = [known[0], unk, known[1], known[2], known[3], unk, known[4]]
    expect(
        len(ids) == len(expected),
        f"encode should give one id per token ({len(expected)}), unknown words included; got {len(ids)} ids",
    )
    expect_sequence_equal(ids, expected, "encode of a sentence with two unknown words")


def _recorded_decodes(sub, recorded):
    tokenizer = sub.SimpleTokenizerV2(recorded["vocab"])
    return [_returned(tokenizer.decode(ids), str, "decode(ids)") for ids in recorded["simple_ids"]]


@simple_tokenizer
@split(produce=_recorded_decodes)
def test_simple_tokenizer_decode_removes_space_before_punctuation(outputs, recorded):
    """decode joins tokens and removes the space before punctuation"""
    expect_list(outputs, len(recorded["simple_ids"]), "the decode results")
    for text, expected in zip(outputs, recorded["simple_decoded"], strict=True):
        expect_text_equal(text, expected, "decode(ids)")


# ---------------------------------------------------------------- ch02.bpe_train


def _trained(sub, text, vocab_size, specials) -> dict:
    """Produce: train_bpe's (vocab, merges) as {"vocab": [[id, token], ...], "merges": [...]};
    the vocab as pairs, so that keys of any type (bytes, say) reach compare as they were."""
    result = sub.train_bpe(text, vocab_size, list(specials))
    expect(isinstance(result, tuple) and len(result) == 2, "train_bpe should return a tuple (vocab, merges)")
    vocab, merges = result
    expect_type(vocab, dict, "the vocab returned by train_bpe")
    expect_type(merges, list, "the merges returned by train_bpe")
    return {"vocab": [[key, token] for key, token in vocab.items()], "merges": merges}


def _training_result(outputs) -> tuple[dict, list]:
    """Compare: the (vocab, merges) of `_trained`'s outputs, with their bytes back."""
    expect(isinstance(outputs, dict), "train_bpe should return a tuple (vocab, merges)")
    pairs, merges = outputs.get("vocab"), outputs.get("merges")
    expect(
        isinstance(pairs, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in pairs),
        "the vocab returned by train_bpe should be a dict",
    )
    expect_type(merges, list, "the merges returned by train_bpe")
    return dict(pairs), merges


def _trained_on_recorded_text(sub, recorded):
    return _trained(sub, recorded["bpe_train_text"], recorded["bpe_vocab_size"], recorded["bpe_specials"])


@bpe_train
@split(produce=_trained_on_recorded_text)
def test_bpe_vocab_layout_bytes_merges_then_specials(outputs, recorded):
    """vocab: 256 single bytes, one id per merge in order, special tokens last"""
    size, specials = recorded["bpe_vocab_size"], recorded["bpe_specials"]
    vocab, merges = _training_result(outputs)
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
@split(produce=_trained_on_recorded_text)
def test_bpe_merges_match_reference(outputs, recorded):
    """the learned merges, in order"""
    _, merges = _training_result(outputs)
    expect_sequence_equal([tuple(m) for m in merges], recorded["bpe_merges"], "merges")


def _trained_on_tie_text(sub, recorded):
    return _trained(sub, recorded["tie_text"], 256 + 3, [])


@bpe_train
@split(produce=_trained_on_tie_text)
def test_bpe_ties_go_to_the_lexicographically_greater_pair(outputs, recorded):
    """on equal counts the lexicographically greater pair is merged first"""
    _, merges = _training_result(outputs)
    expect_sequence_equal(
        [tuple(m) for m in merges], recorded["tie_merges"], f"merges on {recorded['tie_text']!r} (all pairs tie)"
    )


def _trained_on_markup_text(sub, recorded):
    return _trained(sub, recorded["markup_text"], 256 + 1 + 12, ["<|endoftext|>"])


@bpe_train
@split(produce=_trained_on_markup_text)
def test_bpe_special_tokens_are_matched_literally(outputs, recorded):
    """special tokens are split off as literal strings, not as regex patterns"""
    _, merges = _training_result(outputs)
    expect_sequence_equal(
        [tuple(m) for m in merges],
        recorded["markup_merges"],
        "merges on a text with '<', '>' and 'endoftext' around the special token",
    )


def _pretokens(text: str, specials: list[str]) -> set[bytes]:
    """The pre-tokens (UTF-8) of `text` split at its special tokens: no merge may reach beyond one."""
    pieces = regex.split("|".join(regex.escape(s) for s in specials), text) if specials else [text]
    return {m.encode("utf-8") for piece in pieces for m in regex.findall(GPT2_PATTERN, piece)}


def _merged_token(merge, k: int) -> bytes:
    """Compare: the token merge #k builds, failing when it is not a pair of bytes."""
    expect(
        isinstance(merge, (tuple, list)) and len(merge) == 2 and all(isinstance(part, bytes) for part in merge),
        f"merge #{k} should be a pair (left, right) of bytes; got {merge!r}",
    )
    return merge[0] + merge[1]


@bpe_train
@split(produce=_trained_on_recorded_text)
def test_bpe_merges_stay_inside_pretokens(outputs, recorded):
    """no merge crosses a pre-token boundary or a special token"""
    text, specials = recorded["bpe_train_text"], recorded["bpe_specials"]
    _, merges = _training_result(outputs)
    pretokens = _pretokens(text, specials)
    for k, (left, right) in enumerate(merges):
        token = left + right
        if b"<|" in token or b"|>" in token:
            fail(
                f"merge #{k} builds {token!r} from the bytes of a special token; split the specials off before counting"
            )
        if not any(token in p for p in pretokens):
            fail(f"merge #{k} builds {token!r}, which spans two pre-tokens; count pairs inside each pre-token only")


def _trained_until_no_pair_is_left(sub, recorded):
    """`_trained` on a text that runs out of pairs, or {"raised": the error} where train_bpe raised
    the kind of error that picking a pair from none (or from pairs left at count 0) gives."""
    try:
        return _trained(sub, recorded["exhausted_text"], recorded["exhausted_vocab_size"], [])
    except (KeyError, ValueError, IndexError) as exc:
        return {"raised": f"{type(exc).__name__}: {exc}"[:120]}


@bpe_train
@split(produce=_trained_until_no_pair_is_left)
def test_bpe_training_stops_when_no_pair_is_left(outputs, recorded):
    """when every pre-token is a single token, training stops early with fewer merges"""
    text, expected = recorded["exhausted_text"], recorded["exhausted_merges"]
    call = f"train_bpe({text!r}, {recorded['exhausted_vocab_size']}, [])"
    if isinstance(outputs, dict) and "raised" in outputs:
        fail(
            f"{call} raised {outputs['raised']}; the text has no pair left to merge after {len(expected)} merges: "
            "stop early then (a pair whose count fell to 0 is no longer a candidate)"
        )
    _, merges = _training_result(outputs)
    if len(merges) > len(expected):
        fail(
            f"{call} made {len(merges)} merges, but after "
            f"{len(expected)} no pair is left in any pre-token: stop when no pair is left to merge "
            f"(merge #{len(expected)}, {merges[len(expected)]!r}, occurs nowhere)"
        )
    expect_sequence_equal([tuple(m) for m in merges], expected, f"merges on {text!r} until no pair is left")


def _trained_on_glued_text(sub, recorded):
    return _trained(sub, recorded["glued_text"], recorded["glued_vocab_size"], ["<|endoftext|>"])


@bpe_train
@split(produce=_trained_on_glued_text)
def test_bpe_special_tokens_glued_to_words_split_the_text(outputs, recorded):
    """a special token with no whitespace around it ("low<|endoftext|>lower") splits the words apart"""
    text = recorded["glued_text"]
    line = text.splitlines()[0]
    _, merges = _training_result(outputs)
    pretokens = _pretokens(text, ["<|endoftext|>"])
    for k, merge in enumerate(merges):
        token = _merged_token(merge, k)
        if not any(token in p for p in pretokens):
            fail(
                f"merge #{k} builds {token!r}, which is in no pre-token of {line!r} (x6): the text must be split "
                "at each special token, so the words glued to it stay apart; do not delete the special tokens "
                "or replace them by a space"
            )
    expect_sequence_equal(
        [tuple(m) for m in merges], recorded["glued_merges"], f"merges on {line!r} (x6), special tokens glued to words"
    )


# ---------------------------------------------------------------- ch02.bpe_tokenizer


def _bpe(sub, recorded, specials=("<|endoftext|>",)):
    return sub.BPETokenizer(
        dict(recorded["bpe_vocab"]), list(recorded["bpe_merges"]), list(specials) if specials else None
    )


def _recorded_text_ids(sub, recorded):
    tokenizer = _bpe(sub, recorded)
    return [_returned(tokenizer.encode(text), list, "encode(text)") for text in recorded["encode_texts"]]


@bpe_tokenizer
@split(produce=_recorded_text_ids)
def test_bpe_encode_matches_reference_ids(outputs, recorded):
    """encode with given merges gives the expected ids"""
    vocab = recorded["bpe_vocab"]
    expect_list(outputs, len(recorded["encode_texts"]), "the encode results")
    for text, ids, expected in zip(recorded["encode_texts"], outputs, recorded["encoded"], strict=True):
        expect_type(ids, list, "encode(text)")
        for i in range(min(len(ids), len(expected))):
            got, want = ids[i], expected[i]
            if got != want:
                fail(
                    f"encode({text[:30]!r}...): first difference at index {i}: got id {got} "
                    f"({vocab.get(got)!r}), expected id {want} ({vocab[want]!r})"
                )
        expect_sequence_equal(ids, expected, f"encode({text[:30]!r}...)")


CACHE_TEXT = "qzqz qzqz"


def _two_tokenizers_ids(sub):
    """encode of CACHE_TEXT with the one merge (q, z), then with a second tokenizer that has no merges."""
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"qz"}
    merged = sub.BPETokenizer(vocab, [(b"q", b"z")]).encode(CACHE_TEXT)
    plain = sub.BPETokenizer(dict(vocab), []).encode(CACHE_TEXT)
    return {"merged": merged, "plain": plain}


@bpe_tokenizer
@split(produce=_two_tokenizers_ids)
def test_bpe_tokenizers_do_not_share_ids(outputs):
    """two tokenizers with different merges each encode with their own merges"""
    merged, plain = outputs["merged"], outputs["plain"]
    expect_sequence_equal(merged, [256, 256, 32, 256, 256], f"encode({CACHE_TEXT!r}) with the one merge (q, z)")
    expect(
        plain != merged,
        f"a second BPETokenizer without merges encodes {CACHE_TEXT!r} with the first one's merged ids: keep the "
        "pre-token cache on each tokenizer (self.cache in __init__), not shared by the class",
    )
    expect_sequence_equal(plain, list(CACHE_TEXT.encode("utf-8")), f"encode({CACHE_TEXT!r}) with no merges")


# Two texts for the one merge (', s): it applies inside the pre-token "'s" only.
APOSTROPHE_S = "it's"
APOSTROPHE_SUBJECT = "a 'subject"


def _apostrophe_ids(sub):
    """encode of APOSTROPHE_S and APOSTROPHE_SUBJECT with the 256 bytes and the one merge (', s)."""
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"'s"}
    tokenizer = sub.BPETokenizer(vocab, [(b"'", b"s")])
    return {text: list(tokenizer.encode(text)) for text in (APOSTROPHE_S, APOSTROPHE_SUBJECT)}


@bpe_tokenizer
@split(produce=_apostrophe_ids)
def test_bpe_merges_apply_inside_pretokens_only(outputs):
    """a merge never joins bytes of two pre-tokens (" '" and "subject" stay apart)"""
    expect_sequence_equal(
        outputs[APOSTROPHE_S], [ord("i"), ord("t"), 256], "encode(\"it's\") with the one merge (', s)"
    )
    expected = list(APOSTROPHE_SUBJECT.encode("utf-8"))
    expect_sequence_equal(
        outputs[APOSTROPHE_SUBJECT],
        expected,
        'encode("a \'subject"): \' and s are in different pre-tokens (" \'" and "subject"), so no merge',
    )


def _round_trip_texts(recorded) -> list[str]:
    return recorded["encode_texts"] + ["Ünïcödé ✓ 🚀🚀 -- done", "  leading and trailing  "]


def _round_trips(sub, recorded):
    tokenizer = _bpe(sub, recorded)
    return [
        _returned(tokenizer.decode(tokenizer.encode(text)), str, f"decode(encode({text[:20]!r}...))")
        for text in _round_trip_texts(recorded)
    ]


@bpe_tokenizer
@split(produce=_round_trips)
def test_bpe_decode_inverts_encode_on_unicode(outputs, recorded):
    """decode(encode(text)) == text, emoji and accents included"""
    texts = _round_trip_texts(recorded)
    expect_list(outputs, len(texts), "the decode(encode(text)) results")
    for text, decoded in zip(texts, outputs, strict=True):
        expect_text_equal(decoded, text, f"decode(encode({text[:20]!r}...))")


SPECIAL_TOKEN_TEXT = "ships<|endoftext|>boats"


def _special_token_ids(sub, recorded):
    """encode of SPECIAL_TOKEN_TEXT with <|endoftext|> a special token, and of '<|endoftext|>' without specials."""
    with_specials = _bpe(sub, recorded).encode(SPECIAL_TOKEN_TEXT)
    return {
        "with_specials": with_specials,
        "without_specials": _bpe(sub, recorded, specials=None).encode("<|endoftext|>"),
    }


@bpe_tokenizer
@split(produce=_special_token_ids)
def test_bpe_special_token_is_one_id(outputs, recorded):
    """a special token in the text becomes its own single id"""
    special_id = max(recorded["bpe_vocab"])
    ids = outputs["with_specials"]
    expect(
        ids.count(special_id) == 1, f"'<|endoftext|>' should be encoded as the single id {special_id}; got ids {ids}"
    )
    plain = outputs["without_specials"]
    expect(
        special_id not in plain,
        "without special_tokens, '<|endoftext|>' is ordinary text and must not become the special id",
    )


def _prefix_orders(prefix_case) -> list[list[str]]:
    """The two orders the special tokens are given in: the shorter first, then the longer first."""
    short, long = prefix_case["specials"]
    return [[short, long], [long, short]]


def _prefix_special_ids(sub, recorded, pair):
    """encode of the recorded prefix case's text, with its two special tokens given in each order."""
    prefix_case = recorded["prefix_cases"][pair]
    results = []
    for order in _prefix_orders(prefix_case):
        tokenizer = sub.BPETokenizer(dict(prefix_case["vocab"]), list(recorded["bpe_merges"]), list(order))
        results.append(_returned(tokenizer.encode(prefix_case["text"]), list, "encode(text)"))
    return results


@bpe_tokenizer
@split(produce=_prefix_special_ids)
@pytest.mark.parametrize("pair", [0, 1])
def test_bpe_longest_special_token_matches_first(outputs, recorded, pair):
    """when one special token is a prefix of another, the longer one wins, whatever order they are given in"""
    prefix_case = recorded["prefix_cases"][pair]
    short, long = prefix_case["specials"]
    expected = prefix_case["ids"]
    orders = _prefix_orders(prefix_case)
    expect_list(outputs, len(orders), "the encode results")
    for order, ids in zip(orders, outputs, strict=True):
        expect_type(ids, list, "encode(text)")
        what = f"encode({prefix_case['text']!r}) with special_tokens={order}"
        long_id, short_id = prefix_case["long_id"], prefix_case["short_id"]
        found, wanted = ids.count(long_id), expected.count(long_id)
        if found < wanted and ids.count(short_id) > expected.count(short_id):
            fail(
                f"{what}: {long!r} became its own id {long_id} only {found} times of {wanted}; "
                f"{short!r} is a prefix of it and matched first: try the longest special token first"
            )
        expect_sequence_equal(ids, expected, what)


def _broken_utf8_decode(sub, recorded):
    return _returned(_bpe(sub, recorded).decode([0xE2]), str, "decode([0xE2]) (half a character)")


@bpe_tokenizer
@split(produce=_broken_utf8_decode)
def test_bpe_decode_replaces_broken_utf8(outputs):
    """decoding a partial UTF-8 character gives U+FFFD instead of an error"""
    expect_text_equal(outputs, "\ufffd", "decode([0xE2]) (half a character)")


def _gpt2_texts(recorded) -> list[str]:
    return [
        recorded["corpus"],
        "Hello, world! It's a beautiful day -- isn't it?",
        "Numbers: 3.14159, 2,718, 1e-9 and 12345678901234.",
        "Emoji 🙂🚀 and accents: naïve café, Ærøskøbing, 北京.",
        "Whitespace   runs\t\ttabs\n\n\nnewlines    ",
        "Some text<|endoftext|>Another document starts here.",
        "   she'll we've they'd I'm you're CAPITALS'S",
        "It was such a 'subject.' -- \"Yes,\" he said;  'twas   so.",
    ]


def _gpt2_ids(gpt2, text: str) -> list[int]:
    return gpt2.encode(text, allowed_special={"<|endoftext|>"})


def _gpt2_file_tokenizer_results(sub, gpt2_files, gpt2, recorded):
    """For each text: {"encoded": its ids, "decoded": decode of tiktoken's ids}, with the tokenizer from_gpt2_files."""
    tokenizer = sub.BPETokenizer.from_gpt2_files(*gpt2_files)
    results = []
    for text in _gpt2_texts(recorded):
        encoded = list(tokenizer.encode(text))
        decoded = _returned(
            tokenizer.decode(_gpt2_ids(gpt2, text)), str, f"decode of the GPT-2 ids of {text[:20]!r}..."
        )
        results.append({"encoded": encoded, "decoded": decoded})
    return results


@bpe_tokenizer
@split(produce=_gpt2_file_tokenizer_results)
def test_bpe_from_gpt2_files_matches_tiktoken(outputs, gpt2, recorded):
    """from_gpt2_files gives the same ids as tiktoken's gpt2 encoding"""
    texts = _gpt2_texts(recorded)
    expect_list(outputs, len(texts), "the from_gpt2_files results")
    for text, result in zip(texts, outputs, strict=True):
        expected = _gpt2_ids(gpt2, text)
        expect_sequence_equal(result["encoded"], expected, f"GPT-2 ids of {text[:30]!r}")
        expect_text_equal(result["decoded"], text, f"decode of the GPT-2 ids of {text[:20]!r}...")


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


def _window_label(k: int, max_length: int, stride: int) -> str:
    return f"window {k} (max_length={max_length}, stride={stride})"


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


def _dataset_item(dataset, k: int, max_length: int, stride: int):
    item = dataset[k]
    if isinstance(item, tuple) and len(item) == 2:
        label = _window_label(k, max_length, stride)
        _returned(item[0], torch.Tensor, f"{label} input")
        _returned(item[1], torch.Tensor, f"{label} target")
    return item


def _dataset_windows(sub, n, max_length, stride):
    """len(dataset), dataset[k] for each expected window k it has (a short dataset fails on its length), and,
    when it has fewer, what dataset[k] serves for the last expected window k (None where it raises)."""
    dataset = sub.GPTDatasetV1(_numbers(n), NumberTokenizer(), max_length, stride)
    expected = len(_expected_windows(n, max_length, stride))
    items = [_dataset_item(dataset, k, max_length, stride) for k in range(min(len(dataset), expected))]
    beyond = None
    if len(dataset) < expected:
        try:
            beyond = _dataset_item(dataset, expected - 1, max_length, stride)
        except Exception:  # IndexError, or whatever else the submission raises past its end
            beyond = None
    return {"length": len(dataset), "items": items, "beyond_length": beyond}


def _is_window(item, start: int, max_length: int) -> bool:
    """`item` is the pair (input, target) of the window starting at token `start` of `_numbers(n)`."""
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and all(isinstance(t, torch.Tensor) and t.dtype == torch.long for t in item)
        and torch.equal(item[0], torch.arange(start, start + max_length))
        and torch.equal(item[1], torch.arange(start + 1, start + max_length + 1))
    )


def _ends_at_last_token(n: int, max_length: int, stride: int) -> bool:
    """The last window's target ends exactly at the last of `n` tokens."""
    return n > max_length and (n - max_length - 1) % stride == 0


@gpt_dataset
@split(produce=_dataset_windows)
@pytest.mark.parametrize("n, max_length, stride", [(40, 4, 4), (41, 6, 3), (30, 5, 7), (41, 4, 4), (20, 4, 5)])
def test_dataset_windows_step_by_stride(outputs, n, max_length, stride):
    """windows start every stride tokens and targets are shifted by one, the last one ending at the last token"""
    starts = _expected_windows(n, max_length, stride)
    length = outputs["length"]
    if _is_count(length, len(starts) - 1) and starts:
        settings = f"{n} tokens, max_length={max_length}, stride={stride}: len(dataset) is {length}"
        if _is_window(outputs.get("beyond_length"), starts[-1], max_length):
            fail(f"{settings}, but dataset[{length}] serves the last window: __len__ should count it")
        if _ends_at_last_token(n, max_length, stride):
            fail(
                f"{settings}; expected {len(starts)}: the window starting at token {starts[-1]} is missing; its "
                f"target ends exactly at the last token ({n - 1}), so it still fits"
            )
    expect(
        _is_count(length, len(starts)),
        f"{n} tokens, max_length={max_length}, stride={stride}: len(dataset) is {length}; expected {len(starts)}",
    )
    expect_list(outputs["items"], len(starts), "the dataset[i] results")
    for k, (start, item) in enumerate(zip(starts, outputs["items"], strict=True)):
        expect(isinstance(item, tuple) and len(item) == 2, "dataset[i] should be a tuple (input_ids, target_ids)")
        _expect_window(*item, start, max_length, _window_label(k, max_length, stride))


def _end_of_text_windows(sub):
    """The input window of every item of a dataset over a text with <|endoftext|> in it."""
    text = _numbers(10) + f" {END_OF_TEXT} " + " ".join(str(i) for i in range(11, 20))
    dataset = sub.GPTDatasetV1(text, NumberTokenizer(), 4, 2)
    return [dataset[k][0] for k in range(len(dataset))]


@gpt_dataset
@split(produce=_end_of_text_windows)
def test_dataset_keeps_end_of_text_tokens(outputs):
    """<|endoftext|> between documents is encoded as its token, not refused"""
    expect_type(outputs, list, "the input windows")
    expect(
        any(END_OF_TEXT_ID in row.tolist() for row in outputs),
        "no window holds the <|endoftext|> token; encode the text with allowed_special={'<|endoftext|>'}",
    )


def _short_text_length(sub):
    return len(sub.GPTDatasetV1(_numbers(5), NumberTokenizer(), 5, 1))


@gpt_dataset
@split(produce=_short_text_length)
def test_dataset_short_text_gives_no_windows(outputs):
    """a text not longer than max_length has no complete window"""
    expect(_is_count(outputs, 0), f"5 tokens with max_length=5 leave no room for a target; len(dataset) is {outputs}")


def _first_loader_batch(sub):
    """The first batch of a DataLoader (batch_size 3) over a dataset of 50 tokens, max_length and stride 8."""
    dataset = sub.GPTDatasetV1(_numbers(50), NumberTokenizer(), 8, 8)
    inputs, targets = next(iter(DataLoader(dataset, batch_size=3, shuffle=False)))
    return {"inputs": inputs, "targets": targets}


@gpt_dataset
@split(produce=_first_loader_batch)
def test_dataset_works_with_a_dataloader(outputs):
    """batches from a DataLoader have shape (batch, max_length)"""
    inputs, targets = outputs["inputs"], outputs["targets"]
    expect_tensor(inputs, "a batch of inputs", shape=(3, 8), dtype=torch.long)
    expect_equal_tensor(targets, inputs + 1, "a batch of targets")


# ---------------------------------------------------------------- ch02.create_dataloader
#
# The produce steps take `gpt2`: while they run it serves tiktoken's "gpt2" encoding to the submission.


def _gpt2_windows(gpt2, text, max_length, stride):
    ids = _gpt2_ids(gpt2, text)
    return [ids[s : s + max_length + 1] for s in _expected_windows(len(ids), max_length, stride)]


def _expect_batches(batches) -> list:
    """Compare: `batches` (a loader's batches, listed by produce) are pairs of token id tensors
    (inputs, targets) of one shape; returns them."""
    for inputs, targets in batches:
        expect_tensor(inputs, "a batch of inputs", dtype=torch.long)
        expect_tensor(targets, "a batch of targets", shape=tuple(inputs.shape))
    return batches


def _ordered_batches(sub, gpt2, recorded):
    return list(
        sub.create_dataloader_v1(
            recorded["corpus"], batch_size=3, max_length=8, stride=5, shuffle=False, drop_last=False
        )
    )


@create_dataloader
@split(produce=_ordered_batches)
def test_dataloader_batches_gpt2_windows_in_order(outputs, gpt2, recorded):
    """without shuffling, batches hold the GPT-2 token windows in order"""
    windows = _gpt2_windows(gpt2, recorded["corpus"], 8, 5)
    batches = _expect_batches(outputs)
    rows = [row for inputs, targets in batches for row in zip(inputs, targets, strict=True)]
    expect(
        batches and tuple(batches[0][0].shape) == (3, 8),
        f"the first batch should have shape (3, 8); got {tuple(batches[0][0].shape) if batches else 'no batches'}",
    )
    expect(len(rows) == len(windows), f"{len(rows)} windows in total; expected {len(windows)} (max_length=8, stride=5)")
    for k, ((inputs, targets), window) in enumerate(zip(rows, windows, strict=True)):
        expect_equal_tensor(inputs, torch.tensor(window[:-1]), f"window {k} input (GPT-2 ids)")
        expect_equal_tensor(targets, torch.tensor(window[1:]), f"window {k} target (GPT-2 ids)")


def _short_last_batch(recorded, gpt2):
    """The number of windows (max_length and stride 6) and a batch size that leaves a short last batch."""
    n = len(_gpt2_windows(gpt2, recorded["corpus"], 6, 6))
    return {"windows": n, "batch_size": next(b for b in (4, 3, 5, 7) if n % b)}


def _batches_kept_and_dropped(sub, case, gpt2, recorded):
    """The batches with drop_last=False and with drop_last=True, at the case's batch size."""

    def batches(drop_last):
        return list(
            sub.create_dataloader_v1(
                recorded["corpus"],
                batch_size=case["batch_size"],
                max_length=6,
                stride=6,
                shuffle=False,
                drop_last=drop_last,
            )
        )

    return {"kept": batches(False), "dropped": batches(True)}


@create_dataloader
@split(setup=_short_last_batch, produce=_batches_kept_and_dropped)
def test_dataloader_drop_last_drops_the_short_batch(outputs, case):
    """drop_last=True drops an incomplete last batch, False keeps it"""
    n, size = case["windows"], case["batch_size"]
    kept, dropped = _expect_batches(outputs["kept"]), _expect_batches(outputs["dropped"])
    expect(
        len(kept) == -(-n // size),
        f"drop_last=False: {len(kept)} batches; expected {-(-n // size)} for {n} windows of batch_size {size}",
    )
    expect(
        len(dropped) == n // size,
        f"drop_last=True: {len(dropped)} batches; expected {n // size} for {n} windows of batch_size {size}",
    )


def _shuffled_batches(sub, gpt2, recorded):
    torch.manual_seed(0)
    return list(
        sub.create_dataloader_v1(
            recorded["corpus"], batch_size=2, max_length=4, stride=3, shuffle=True, drop_last=False
        )
    )


@create_dataloader
@split(produce=_shuffled_batches)
def test_dataloader_shuffle_permutes_windows(outputs, gpt2, recorded):
    """shuffle=True yields every window once, in another order"""
    windows = _gpt2_windows(gpt2, recorded["corpus"], 4, 3)
    batches = _expect_batches(outputs)
    rows = [tuple(row.tolist()) for inputs, _ in batches for row in inputs]
    expected = [tuple(w[:-1]) for w in windows]
    expect(
        sorted(rows) == sorted(expected), "with shuffle=True the batches should still hold every window exactly once"
    )
    expect(rows != expected, "with shuffle=True the windows came out in text order; pass shuffle on to the DataLoader")


def _loader_facts(loader) -> dict:
    """Produce: what the checks read of a loader: its type, and its settings when it is a DataLoader."""
    is_loader = isinstance(loader, DataLoader)
    return {
        "is_data_loader": is_loader,
        "type": type(loader).__name__,
        "num_workers": loader.num_workers if is_loader else None,
        "drop_last": loader.drop_last if is_loader else None,
    }


def _expect_data_loader(facts: dict) -> None:
    """Compare: the `_loader_facts` are a DataLoader's (the message of `expect_type`)."""
    expect(facts["is_data_loader"] is True, f"create_dataloader_v1(...) should be a DataLoader; got {facts['type']}")


def _two_worker_loader(sub, gpt2, recorded):
    return _loader_facts(
        sub.create_dataloader_v1(recorded["corpus"], batch_size=2, max_length=4, stride=4, num_workers=2)
    )


@create_dataloader
@split(produce=_two_worker_loader)
def test_dataloader_passes_num_workers_on(outputs):
    """num_workers reaches the DataLoader"""
    _expect_data_loader(outputs)
    expect(
        outputs["num_workers"] == 2,
        f"create_dataloader_v1(..., num_workers=2) gave a DataLoader with num_workers={outputs['num_workers']}",
    )


def _default_loader(sub, gpt2, recorded):
    """The batches of a loader with the default arguments (shuffle off), and what the checks read of it."""
    loader = sub.create_dataloader_v1(recorded["corpus"] * 8, shuffle=False)
    return {"batches": list(loader), **_loader_facts(loader)}


@create_dataloader
@split(produce=_default_loader)
def test_dataloader_defaults_follow_the_book(outputs, gpt2, recorded):
    """defaults: batch_size=4, max_length=256, stride=128"""
    inputs, _ = _expect_batches(outputs["batches"])[0]
    _expect_data_loader(outputs)
    expect(outputs["drop_last"] is True, "drop_last should default to True")
    expect(
        tuple(inputs.shape) == (4, 256),
        f"with the default arguments a batch has shape {tuple(inputs.shape)}; expected (4, 256)",
    )
    windows = _gpt2_windows(gpt2, recorded["corpus"] * 8, 256, 128)
    expect_equal_tensor(inputs[1], torch.tensor(windows[1][:-1]), "the second window with default stride 128")


# ---------------------------------------------------------------- ch02.input_embeddings


def _embedding_tables(recorded) -> list[tuple[str, int]]:
    """(name, number of rows) of each table of InputEmbedding for the recorded config."""
    config = recorded["embed_config"]
    return [("tok_emb", config["vocab_size"]), ("pos_emb", config["context_length"])]


def _embedding_layout(module, recorded) -> dict:
    """Produce: what the checks read of an InputEmbedding, up to the first thing that is wrong: its type,
    each table's type and weight shape, then "load_error" (None once the recorded weights loaded)."""
    layout = {"is_module": isinstance(module, torch.nn.Module), "type": type(module).__name__}
    if not layout["is_module"]:
        return layout
    for name, rows in _embedding_tables(recorded):
        layer = getattr(module, name, None)
        is_embedding = isinstance(layer, torch.nn.Embedding)
        layout[name] = {
            "is_embedding": is_embedding,
            "type": type(layer).__name__,
            "shape": list(layer.weight.shape) if is_embedding else None,
        }
        if layout[name]["shape"] != [rows, recorded["embed_config"]["emb_dim"]]:
            return layout
    try:
        module.load_state_dict(recorded["embed_state"])
    except RuntimeError as exc:
        layout["load_error"] = str(exc)[:200]
        return layout
    layout["load_error"] = None
    return layout


def _expect_embedding_layout(layout: dict, recorded) -> None:
    """An `_embedding_layout` of a module with the book's two tables, holding the recorded weights."""
    emb_dim = recorded["embed_config"]["emb_dim"]
    expect(layout["is_module"] is True, f"InputEmbedding(...) should be a Module; got {layout['type']}")
    for name, rows in _embedding_tables(recorded):
        table = layout[name]
        expect(table["is_embedding"] is True, f"InputEmbedding.{name} should be a Embedding; got {table['type']}")
        expect(
            table["shape"] == [rows, emb_dim],
            f"{name}.weight has shape {tuple(table['shape'])}; expected ({rows}, {emb_dim})",
        )
    if layout["load_error"] is not None:
        fail(
            "the reference weights do not load (names should be tok_emb.weight and pos_emb.weight): "
            f"{layout['load_error']}"
        )


def _embedding(sub, recorded):
    """Produce: InputEmbedding for the recorded config with the recorded weights, and its layout. A wrong
    layout fails here already, with compare's message, so forward never runs on a module that lacks them."""
    config = recorded["embed_config"]
    module = sub.InputEmbedding(config["vocab_size"], config["emb_dim"], config["context_length"])
    layout = _embedding_layout(module, recorded)
    _expect_embedding_layout(layout, recorded)
    return module, layout


def _embedding_layout_only(sub, recorded):
    return _embedding(sub, recorded)[1]


@input_embeddings
@split(produce=_embedding_layout_only)
def test_embedding_has_book_layers(outputs, recorded):
    """tok_emb and pos_emb are nn.Embedding layers of the right sizes"""
    _expect_embedding_layout(outputs, recorded)


def _recorded_embedding_output(sub, recorded):
    module, layout = _embedding(sub, recorded)
    return {"layout": layout, "out": _returned(module(recorded["embed_input"]), torch.Tensor, "InputEmbedding output")}


@input_embeddings
@split(produce=_recorded_embedding_output)
def test_embedding_output_matches_reference(outputs, recorded):
    """token plus position embeddings, shape (batch, num_tokens, emb_dim)"""
    _expect_embedding_layout(outputs["layout"], recorded)
    expect_close(outputs["out"], recorded["embed_output"], "InputEmbedding output", atol=1e-6)


def _position_parts(sub, recorded, num_tokens):
    """For 3 rows of `num_tokens` random ids: the output (3, num_tokens, emb_dim), the token embeddings
    alone (the same shape) and the position table (context_length, emb_dim), all from the submission."""
    module, layout = _embedding(sub, recorded)
    ids = torch.randint(
        0, recorded["embed_config"]["vocab_size"], (3, num_tokens), generator=torch.Generator().manual_seed(num_tokens)
    )
    out = _returned(module(ids), torch.Tensor, f"output for {num_tokens} tokens")
    return {"layout": layout, "out": out, "tokens": module.tok_emb(ids), "positions": module.pos_emb.weight}


@input_embeddings
@split(produce=_position_parts)
@pytest.mark.parametrize("num_tokens", [1, 5, 12])
def test_embedding_adds_position_rows(outputs, recorded, num_tokens):
    """position t adds row t of pos_emb, for any length up to context_length"""
    _expect_embedding_layout(outputs["layout"], recorded)
    config = recorded["embed_config"]
    out = outputs["out"]
    expect_tensor(out, f"output for {num_tokens} tokens", shape=(3, num_tokens, config["emb_dim"]))
    expect_tensor(outputs["tokens"], f"tok_emb of the {num_tokens} token ids", shape=tuple(out.shape))
    expect_tensor(outputs["positions"], "pos_emb.weight", shape=(config["context_length"], config["emb_dim"]))
    positions = out - outputs["tokens"]
    expected = outputs["positions"][:num_tokens].expand(3, -1, -1)
    expect_close(
        positions, expected, f"output minus token embeddings ({num_tokens} tokens): the position part", atol=1e-6
    )


def _embedding_gradients(sub, recorded):
    """The gradient of each table's weight (None where none reached it) after backward of the output's sum."""
    module, layout = _embedding(sub, recorded)
    module(recorded["embed_input"]).sum().backward()
    return {
        "layout": layout,
        "grads": {name: getattr(module, name).weight.grad for name, _ in _embedding_tables(recorded)},
    }


@input_embeddings
@split(produce=_embedding_gradients)
def test_embedding_gradients_reach_both_tables(outputs, recorded):
    """the loss gradient reaches tok_emb and pos_emb"""
    _expect_embedding_layout(outputs["layout"], recorded)
    for name, _ in _embedding_tables(recorded):
        grad = outputs["grads"][name]
        expect(
            isinstance(grad, torch.Tensor) and bool(grad.abs().sum() > 0),
            f"no gradient reaches {name}.weight; is it used in forward?",
        )
