"""The chapter 6 reference classifier agrees with transformers' GPT2ForSequenceClassification on the
same weights, and its data pipeline gives the book's sizes on the real SMS Spam Collection."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from autograder import paths
from llmcourse import data

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

# A GPT-2 with every size distinct; its pad token is an id the inputs never hold, so that
# GPT2ForSequenceClassification reads the last position of every (unpadded) sequence.
HF_GPT2 = {
    "vocab_size": 61,
    "n_positions": 12,
    "n_embd": 12,
    "n_layer": 2,
    "n_head": 3,
    "pad_token_id": 60,
    "num_labels": 2,
}


@pytest.fixture(scope="module")
def ch06():
    if not paths.solution_notebook("ch06").exists():
        pytest.skip("needs solutions/ch06")
    import previous_chapters

    return previous_chapters.chapter("ch06")


@pytest.fixture(scope="module")
def hf_classifier():
    """A random GPT2ForSequenceClassification with norms and biases away from their ones and zeros."""
    torch.manual_seed(3)
    model = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(**HF_GPT2)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight", ".bias")):
                param.normal_(0, 0.5)
    return model


def course_classifier(ch06, hf_model) -> torch.nn.Module:
    """The course's GPTModel with the checkpoint's weights, made a classifier by add_classification_head,
    its head holding GPT2ForSequenceClassification's score weights and a zero bias (score has none)."""
    from previous_chapters import GPTModel, load_weights_into_gpt

    cfg = {
        "vocab_size": HF_GPT2["vocab_size"],
        "context_length": HF_GPT2["n_positions"],
        "emb_dim": HF_GPT2["n_embd"],
        "n_heads": HF_GPT2["n_head"],
        "n_layers": HF_GPT2["n_layer"],
        "drop_rate": 0.0,
        "qkv_bias": True,
    }
    params = {
        name.removeprefix("transformer."): tensor.clone()
        for name, tensor in hf_model.state_dict().items()
        if name.startswith("transformer.") and not name.endswith((".attn.bias", ".attn.masked_bias"))
    }
    model = GPTModel(cfg)
    load_weights_into_gpt(model, params)
    ch06.add_classification_head(model, num_classes=HF_GPT2["num_labels"])
    with torch.no_grad():
        model.out_head.weight.copy_(hf_model.score.weight)
        model.out_head.bias.zero_()
    return model.eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, HF_GPT2["pad_token_id"], (4, HF_GPT2["n_positions"]), generator=generator)
    return ids, torch.tensor([0, 1, 1, 0])


def test_last_token_logits_equal_gpt2_for_sequence_classification(ch06, hf_classifier):
    ours = course_classifier(ch06, hf_classifier)
    ids, _ = _inputs()
    with torch.no_grad():
        for length in (1, 5, HF_GPT2["n_positions"]):
            torch.testing.assert_close(
                ours(ids[:, :length])[:, -1, :], hf_classifier(ids[:, :length]).logits, atol=1e-5, rtol=1e-5
            )


def test_loss_and_its_gradients_equal_transformers(ch06, hf_classifier):
    """calc_loss_batch is transformers' classification loss; the gradients reaching the head and final norm agree."""
    ours = course_classifier(ch06, hf_classifier)
    ids, labels = _inputs()
    hf_classifier.zero_grad()
    theirs = hf_classifier(ids, labels=labels).loss
    theirs.backward()
    loss = ch06.calc_loss_batch(ids, labels, ours, "cpu")
    loss.backward()
    torch.testing.assert_close(loss, theirs, atol=1e-5, rtol=1e-5)
    pairs = [
        (ours.out_head.weight, hf_classifier.score.weight),
        (ours.final_norm.scale, hf_classifier.transformer.ln_f.weight),
        (ours.final_norm.shift, hf_classifier.transformer.ln_f.bias),
    ]
    for mine, hf_param in pairs:
        torch.testing.assert_close(mine.grad, hf_param.grad, atol=1e-5, rtol=1e-4)
    assert ours.tok_emb.weight.grad is None and ours.trf_blocks[0].att.W_query.weight.grad is None


def test_accuracy_equals_transformers_predictions(ch06, hf_classifier):
    ours = course_classifier(ch06, hf_classifier)
    ids, _ = _inputs()
    with torch.no_grad():
        predicted = hf_classifier(ids).logits.argmax(-1)
    labels = predicted.clone()
    labels[0] = 1 - labels[0]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids, labels), batch_size=3)
    assert ch06.calc_accuracy_loader(loader, ours, "cpu") == pytest.approx(3 / 4)


@pytest.fixture(scope="module")
def spam_frame() -> pd.DataFrame:
    if not data.is_available("SMSSpamCollection.tsv"):
        pytest.skip("needs SMSSpamCollection.tsv (course data fetch SMSSpamCollection.tsv, or ../shared/data)")
    return pd.read_csv(data.data_path("SMSSpamCollection.tsv"), sep="\t", header=None, names=["Label", "Text"])


def test_spam_pipeline_gives_the_books_sizes(ch06, spam_frame, tmp_path, needs_gpt2_files):
    """747 spam messages, 1,494 balanced, split 1,045 / 149 / 300; the longest training message has 120 GPT-2 tokens."""
    assert spam_frame["Label"].value_counts().to_dict() == {"ham": 4825, "spam": 747}
    balanced = ch06.create_balanced_dataset(spam_frame)
    assert balanced["Label"].value_counts().to_dict() == {"ham": 747, "spam": 747}
    balanced["Label"] = balanced["Label"].map({"ham": 0, "spam": 1})
    parts = ch06.random_split(balanced, 0.7, 0.1)
    assert [len(part) for part in parts] == [1045, 149, 300]
    parts[0].to_csv(tmp_path / "train.csv", index=None)
    train = ch06.SpamDataset(tmp_path / "train.csv", data.gpt2_encoding())
    assert train.max_length == 120 and len(train) == 1045
    ids, label = train[0]
    assert ids.shape == (120,) and ids[-1] == 50256 and label.dtype == torch.int64
