"""Hidden checks of chapter 2: the live reference against the submission on inputs drawn from the seed.

Failure messages say which property differs, never the inputs or the expected values.
"""

from __future__ import annotations

import random

import pytest
import torch

from autograder.checks.modules import load_parameters, parameter_state
from autograder.checks.test_ch02 import NumberTokenizer, _pretokens
from autograder.compare import expect, expect_list, expect_tensor, expect_type, fail
from autograder.split import as_data, split

WORDS = (
    "ship light keeper harbour fog night sea count lamp tide rope gull stone wind "
    "Café naïve Ærø 北京 🙂 don't they'll 1899 4,017 7:30"
).split()
PUNCTUATION = list(',.;:?!"()') + ["--", "_"]
SPECIAL_TOKENS = ["<|endoftext|>"]
# Words the pre-tokenizer keeps whole (letters only), to glue special tokens to.
LETTER_WORDS = [word for word in WORDS if word.isalpha()]
# Special tokens to cut a shorter special token from, or to extend into a longer one.
PREFIX_BASES = ["<|endoftext|>", "<|im_end|>", "</s>", "[EOS]", "<|end_of_turn|>"]


def random_text(rng: random.Random, words: int) -> str:
    parts = []
    for _ in range(words):
        parts.append(rng.choice(WORDS))
        if rng.random() < 0.2:
            parts.append(rng.choice(PUNCTUATION))
        parts.append(rng.choice([" ", " ", " ", "  ", "\n"]))
    return "".join(parts)


def _simple_tokenizer_setup(ref, seed):
    """A hidden text, a probe sentence, and the reference's ids of the probe (what decode gets)."""
    rng = random.Random(seed)
    text = random_text(rng, 300)
    probe = random_text(rng, 40) + " unseenword another"
    return {"text": text, "probe": probe, "ids": ref.SimpleTokenizerV2(ref.build_vocab(text)).encode(probe)}


def _simple_tokenizer_outputs(sub, case):
    vocab = sub.build_vocab(case["text"])
    mine = sub.SimpleTokenizerV2(vocab)
    return {"vocab": vocab, "encoded": mine.encode(case["probe"]), "decoded": mine.decode(case["ids"])}


@pytest.mark.ch02_simple_tokenizer
@split(setup=_simple_tokenizer_setup, produce=_simple_tokenizer_outputs)
def test_simple_tokenizer_agrees_with_reference_on_random_text(outputs, case, ref):
    """hidden: vocabulary, encode and decode on random text"""
    vocab = ref.build_vocab(case["text"])
    expect(outputs["vocab"] == vocab, "build_vocab differs from the reference on a hidden text")
    theirs = ref.SimpleTokenizerV2(vocab)
    expect(outputs["encoded"] == theirs.encode(case["probe"]), "encode differs from the reference on a hidden sentence")
    expect(outputs["decoded"] == theirs.decode(case["ids"]), "decode differs from the reference on hidden ids")


def _bpe_training_case(seed):
    rng = random.Random(seed)
    text = "<|endoftext|>".join(random_text(rng, 150) for _ in range(3))
    return {"text": text, "vocab_size": 256 + 1 + rng.randint(20, 60)}


def _bpe_training_outputs(sub, case):
    return {"result": sub.train_bpe(case["text"], case["vocab_size"], list(SPECIAL_TOKENS))}


@pytest.mark.ch02_bpe_train
@split(setup=_bpe_training_case, produce=_bpe_training_outputs)
def test_bpe_training_agrees_with_reference_on_random_text(outputs, case, ref):
    """hidden: vocab and merges on a random corpus and vocabulary size"""
    result = outputs["result"]
    expect(isinstance(result, (tuple, list)) and len(result) == 2, "train_bpe should return (vocab, merges)")
    vocab, merges = result
    expect_type(merges, (list, tuple), "the merges train_bpe returns")
    ref_vocab, ref_merges = ref.train_bpe(case["text"], case["vocab_size"], list(SPECIAL_TOKENS))
    for k, (got, want) in enumerate(zip(merges, ref_merges)):
        if not isinstance(got, (list, tuple)) or tuple(got) != tuple(want):
            fail(f"merge #{k} differs from the reference on a hidden corpus")
    expect(len(merges) == len(ref_merges), "the number of merges differs from the reference on a hidden corpus")
    expect(vocab == ref_vocab, "the vocabulary differs from the reference on a hidden corpus")


def _glued_corpus(rng: random.Random, chains: list[str], reps: int) -> str:
    """`reps` chunks of random text, each followed by one of the `chains` (words glued by special tokens)."""
    return "".join(
        random_text(rng, rng.randint(2, 8)) + rng.choice(chains) + rng.choice([" ", "\n"]) for _ in range(reps)
    )


def _glued_training_case(ref, seed):
    """A corpus where special tokens sit between two words with no whitespace ("lamp<|endoftext|>tide"), often
    enough that deleting them, or replacing them by a space, changes the reference's merges: on every seed."""
    rng = random.Random(seed)
    special = SPECIAL_TOKENS[0]
    vocab_size = 256 + len(SPECIAL_TOKENS) + rng.randint(20, 40)
    chains = [special.join(rng.sample(LETTER_WORDS, rng.randint(2, 3))) for _ in range(2)]
    reps = rng.randint(10, 16)
    for _ in range(20):
        text = _glued_corpus(rng, chains, reps)
        merges = ref.train_bpe(text, vocab_size, list(SPECIAL_TOKENS))[1]
        joined = [
            ref.train_bpe(text.replace(special, joiner), vocab_size, list(SPECIAL_TOKENS))[1] for joiner in ("", " ")
        ]
        if all(other != merges for other in joined):
            return {"text": text, "vocab_size": vocab_size}
        reps += 8
    raise RuntimeError(f"no corpus with glued special tokens that drive merges for seed {seed}")


@pytest.mark.ch02_bpe_train
@split(setup=_glued_training_case, produce=_bpe_training_outputs)
def test_bpe_training_splits_the_text_at_glued_special_tokens(outputs, case, ref):
    """hidden: special tokens glued to words on both sides split the text, on a random corpus"""
    result = outputs["result"]
    expect(isinstance(result, (tuple, list)) and len(result) == 2, "train_bpe should return (vocab, merges)")
    vocab, merges = result
    expect_type(merges, (list, tuple), "the merges train_bpe returns")
    text = case["text"]
    pretokens = _pretokens(text, SPECIAL_TOKENS)
    joined = set().union(*(_pretokens(text.replace(SPECIAL_TOKENS[0], joiner), []) for joiner in ("", " ")))
    for k, merge in enumerate(merges):
        expect(
            isinstance(merge, (tuple, list)) and len(merge) == 2 and all(isinstance(part, bytes) for part in merge),
            f"merge #{k} should be a pair (left, right) of bytes",
        )
        token = merge[0] + merge[1]
        if not any(token in p for p in pretokens) and any(token in p for p in joined):
            fail(
                f"merge #{k} joins the words on both sides of a special token glued to them (hidden corpus): "
                "split the text at each special token instead of deleting it or replacing it by a space"
            )
    ref_vocab, ref_merges = ref.train_bpe(text, case["vocab_size"], list(SPECIAL_TOKENS))
    mine = [tuple(merge) for merge in merges]
    if mine != ref_merges:
        for joiner, done in (("", "deleted"), (" ", "replaced by a space")):
            joined_text = text.replace(SPECIAL_TOKENS[0], joiner)
            if mine == ref.train_bpe(joined_text, case["vocab_size"], list(SPECIAL_TOKENS))[1]:
                fail(
                    f"the merges are those of the hidden corpus with its special tokens {done}: split the text "
                    "at each special token, so the words glued to it on both sides stay apart"
                )
    for k, (got, want) in enumerate(zip(mine, ref_merges)):
        if got != want:
            fail(f"merge #{k} differs from the reference on a hidden corpus with special tokens glued to words")
    expect(
        len(merges) == len(ref_merges),
        "the number of merges differs from the reference on a hidden corpus with special tokens glued to words",
    )
    expect(
        vocab == ref_vocab,
        "the vocabulary differs from the reference on a hidden corpus with special tokens glued to words",
    )


def _bpe_tokenizer_setup(ref, seed):
    """Reference-trained merges, hidden texts, and the reference's ids of each text (what decode gets)."""
    rng = random.Random(seed)
    vocab, merges = ref.train_bpe(random_text(rng, 400), 256 + 1 + 80, list(SPECIAL_TOKENS))
    theirs = ref.BPETokenizer(dict(vocab), list(merges), list(SPECIAL_TOKENS))
    texts = [random_text(rng, 30) + rng.choice(["", "<|endoftext|>"]) + random_text(rng, 10) for _ in range(5)]
    return {
        "vocab": dict(vocab),
        "merges": list(merges),
        "texts": texts,
        "ids": [theirs.encode(text) for text in texts],
    }


def _bpe_tokenizer_outputs(sub, case):
    mine = sub.BPETokenizer(case["vocab"], case["merges"], list(SPECIAL_TOKENS))
    encoded, decoded = [], []
    for text, ids in zip(case["texts"], case["ids"]):
        encoded.append(mine.encode(text))
        decoded.append(mine.decode(ids))
    return {"encoded": encoded, "decoded": decoded}


@pytest.mark.ch02_bpe_tokenizer
@split(setup=_bpe_tokenizer_setup, produce=_bpe_tokenizer_outputs)
def test_bpe_tokenizer_agrees_with_reference_on_random_text(outputs, case, ref):
    """hidden: encode and decode with reference-trained merges"""
    encoded, decoded = outputs["encoded"], outputs["decoded"]
    for k, (text, ids) in enumerate(zip(case["texts"], case["ids"])):
        expect(encoded[k] == ids, "encode differs from the reference on a hidden text")
        expect(decoded[k] == text, "decode(encode(text)) does not give a hidden text back")


def _prefix_orders(specials: list[str]) -> list[list[str]]:
    """The two orders the special tokens are given in: the shorter first, then the longer first."""
    return [list(specials), list(reversed(specials))]


def _prefix_special_setup(ref, seed):
    """Reference-trained merges and, on every seed, two pairs of special tokens where one is a prefix of the
    other (a special token cut short, and one extended), each with texts that hold both, the shorter on its own."""
    rng = random.Random(seed)
    vocab, merges = ref.train_bpe(random_text(rng, 300), 256 + 60, [])
    cases = []
    for extend in (False, True):
        base = rng.choice(PREFIX_BASES)
        short, long = (
            (base, base + rng.choice(PREFIX_BASES)) if extend else (base[: rng.randint(2, len(base) - 1)], base)
        )
        with_specials = dict(vocab)
        for special in (short, long):
            if special.encode("utf-8") not in with_specials.values():
                with_specials[max(with_specials) + 1] = special.encode("utf-8")
        ids = {token: token_id for token_id, token in with_specials.items()}
        long_id, short_id = ids[long.encode("utf-8")], ids[short.encode("utf-8")]
        texts = []
        for _ in range(3):
            specials = [long, long, short, short]
            rng.shuffle(specials)
            texts.append("".join(random_text(rng, rng.randint(0, 6)) + s for s in specials) + random_text(rng, 3))
        cases.append(
            {
                "specials": [short, long],
                "vocab": with_specials,
                "long_id": long_id,
                "short_id": short_id,
                "texts": texts,
            }
        )
    return {"merges": list(merges), "cases": cases}


def _prefix_special_outputs(sub, case):
    """For each pair of special tokens, each order they are given in: the ids of each text."""
    results = []
    for prefix_case in case["cases"]:
        results.append(
            [
                [
                    sub.BPETokenizer(dict(prefix_case["vocab"]), list(case["merges"]), order).encode(text)
                    for text in prefix_case["texts"]
                ]
                for order in _prefix_orders(prefix_case["specials"])
            ]
        )
    return results


@pytest.mark.ch02_bpe_tokenizer
@split(setup=_prefix_special_setup, produce=_prefix_special_outputs)
def test_bpe_tokenizer_matches_the_longest_special_token_first(outputs, case, ref):
    """hidden: special tokens where one is a prefix of another, given in either order"""
    expect_list(outputs, len(case["cases"]), "the encode results for each pair of special tokens")
    for prefix_case, by_order in zip(case["cases"], outputs, strict=True):
        short, long = prefix_case["specials"]
        long_id, short_id = prefix_case["long_id"], prefix_case["short_id"]
        theirs = ref.BPETokenizer(dict(prefix_case["vocab"]), list(case["merges"]), [short, long])
        orders = _prefix_orders(prefix_case["specials"])
        expect_list(by_order, len(orders), "the encode results for each order of the special tokens")
        for order, encoded in zip(orders, by_order, strict=True):
            given = "the shorter" if order[0] == short else "the longer"
            expect_list(encoded, len(prefix_case["texts"]), "the encode results")
            for text, ids in zip(prefix_case["texts"], encoded, strict=True):
                ref_ids = theirs.encode(text)
                expect_type(ids, list, "encode(text)")
                if ids.count(long_id) < ref_ids.count(long_id) and ids.count(short_id) > ref_ids.count(short_id):
                    fail(
                        "a special token that is a prefix of another matched where the longer one starts "
                        f"(hidden texts, {given} given first): try the longest special token first"
                    )
                expect(
                    ids == ref_ids,
                    "encode differs from the reference on a hidden text with two special tokens, one a prefix of "
                    f"the other ({given} given first)",
                )


def _dataset_case(seed):
    """Two random settings on every seed: one where tokens are left over after the last window's target, and
    one where the last window's target ends exactly at the last token ((n - max_length - 1) % stride == 0)."""
    rng = random.Random(seed)
    settings = []
    for ends_at_last_token in (False, True):
        max_length, stride = rng.randint(2, 9), rng.randint(1 if ends_at_last_token else 2, 9)
        n = max_length + 1 + (rng.randint(3, 10) - 1) * stride
        if not ends_at_last_token:
            n += rng.randint(1, stride - 1)
        text = " ".join(str(rng.randint(0, 1000)) for _ in range(n))
        settings.append(
            {"text": text, "max_length": max_length, "stride": stride, "ends_at_last_token": ends_at_last_token}
        )
    return {"settings": settings}


def _dataset_of(module, setting: dict):
    return module.GPTDatasetV1(setting["text"], NumberTokenizer(), setting["max_length"], setting["stride"])


def _dataset_outputs(sub, case):
    """For each setting: len(dataset), every window, and what dataset[len(dataset)] serves (None if it raises)."""
    outputs = []
    for setting in case["settings"]:
        mine = _dataset_of(sub, setting)
        try:
            beyond = as_data(mine[len(mine)])
        except Exception:  # IndexError, or whatever else the submission raises past its end
            beyond = None
        outputs.append({"length": len(mine), "windows": [mine[k] for k in range(len(mine))], "beyond_length": beyond})
    return outputs


def _is_pair(item) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, torch.Tensor) for t in item)


def _expect_tensor_pair(item, what: str) -> None:
    expect(_is_pair(item), f"{what} should be a pair of tensors")


@pytest.mark.ch02_gpt_dataset
@split(setup=_dataset_case, produce=_dataset_outputs)
def test_dataset_agrees_with_reference_on_random_windows(outputs, case, ref):
    """hidden: every window for random lengths, max_length and stride, the last window ending at the last token"""
    expect_list(outputs, len(case["settings"]), "the datasets' results")
    for setting, mine in zip(case["settings"], outputs, strict=True):
        theirs = _dataset_of(ref, setting)
        windows = mine["windows"]
        if mine["length"] == len(theirs) - 1 and len(theirs) > 0:
            beyond, last = mine["beyond_length"], theirs[len(theirs) - 1]
            if _is_pair(beyond) and torch.equal(beyond[0], last[0]) and torch.equal(beyond[1], last[1]):
                fail("len(dataset) is one short of the windows the dataset serves (hidden settings)")
            if setting["ends_at_last_token"]:
                fail(
                    "the last window is missing when its target ends exactly at the last token (hidden settings): "
                    "that window still fits"
                )
        expect(
            mine["length"] == len(theirs) and len(windows) == len(theirs),
            "the number of windows differs from the reference for hidden settings",
        )
        for k in range(len(theirs)):
            a, b = windows[k], theirs[k]
            _expect_tensor_pair(a, f"window {k} (input_ids, target_ids)")
            expect(
                torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]),
                f"window {k} differs from the reference for hidden settings",
            )


def _dataloader_case(seed):
    rng = random.Random(seed)
    text = random_text(rng, 200)
    settings = dict(
        batch_size=rng.randint(1, 5),
        max_length=rng.randint(3, 12),
        stride=rng.randint(1, 12),
        shuffle=False,
        drop_last=rng.random() < 0.5,
    )
    return {"text": text, "settings": settings}


def _dataloader_outputs(sub, case, gpt2):
    """The batches; `gpt2` serves tiktoken's "gpt2" encoding to the submission while it runs."""
    return {"batches": list(sub.create_dataloader_v1(case["text"], **case["settings"]))}


@pytest.mark.ch02_create_dataloader
@split(setup=_dataloader_case, produce=_dataloader_outputs)
def test_dataloader_agrees_with_reference_on_random_settings(outputs, case, ref, gpt2):
    """hidden: the batches for a random text and settings"""
    mine = outputs["batches"]
    theirs = list(ref.create_dataloader_v1(case["text"], **case["settings"]))
    expect(len(mine) == len(theirs), "the number of batches differs from the reference for hidden settings")
    for k, (batch, (rx, ry)) in enumerate(zip(mine, theirs)):
        _expect_tensor_pair(batch, f"batch {k} (inputs, targets)")
        x, y = batch
        expect(torch.equal(x, rx) and torch.equal(y, ry), f"batch {k} differs from the reference for hidden settings")


def _embedding_setup(ref, seed):
    """Random sizes, the reference's initial weights for them, and token ids that fit."""
    rng = random.Random(seed)
    vocab, dim, context = rng.randint(5, 80), rng.randint(1, 16), rng.randint(2, 20)
    torch.manual_seed(seed)
    config = {"vocab_size": vocab, "emb_dim": dim, "context_length": context}
    state = parameter_state(ref.InputEmbedding(**config))
    ids = torch.randint(0, vocab, (rng.randint(1, 4), rng.randint(1, context)))
    return {"config": config, "state": state, "ids": ids}


def _embedding_with_state(module, case: dict):
    return load_parameters(module.InputEmbedding(**case["config"]), case["state"], "InputEmbedding")


def _embedding_outputs(sub, case):
    """The output and the gradients of the squared sum of the output."""
    mine = _embedding_with_state(sub, case)
    out = mine(case["ids"])
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.square().sum().backward()
    return {"out": out, "grads": {name: param.grad for name, param in mine.named_parameters()}}


@pytest.mark.ch02_input_embeddings
@split(setup=_embedding_setup, produce=_embedding_outputs)
def test_embedding_agrees_with_reference_on_random_sizes(outputs, case, ref):
    """hidden: output and gradients for random sizes and weights"""
    theirs = _embedding_with_state(ref, case)
    ref_out = theirs(case["ids"])
    out = outputs["out"]
    expect_tensor(out, "the InputEmbedding output")
    expect(
        out.shape == ref_out.shape and torch.allclose(out.double(), ref_out.double(), atol=1e-6),
        "the output differs from the reference for hidden sizes",
    )
    ref_out.square().sum().backward()
    for name in ("tok_emb", "pos_emb"):
        grad, ref_grad = outputs["grads"].get(f"{name}.weight"), getattr(theirs, name).weight.grad
        expect(
            isinstance(grad, torch.Tensor)
            and grad.shape == ref_grad.shape
            and torch.allclose(grad.double(), ref_grad.double(), atol=1e-6),
            f"the gradient of {name} differs from the reference",
        )
