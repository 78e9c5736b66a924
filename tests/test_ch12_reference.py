"""The chapter 12 reference against independent implementations: the DPO loss against Hugging Face
TRL's sigmoid loss written out in NumPy (float64, log(1 + e^-x) by logaddexp) and its gradient
against torch.autograd's numerical check; sequence log-probabilities against per-token
cross-entropy and against a Python loop over the product of token probabilities; the masks of
real preference pairs against the decoded response texts; and DPO steps on a tiny GPT: the
reference never moves, the margin grows and the loss falls below ln 2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder import paths


@pytest.fixture(scope="module")
def ch12():
    if not paths.solution_notebook("ch12").exists():
        pytest.skip("needs solutions/ch12")
    import previous_chapters

    return previous_chapters.chapter("ch12").namespace


TINY_GPT = {
    "vocab_size": 20,
    "context_length": 16,
    "emb_dim": 16,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": False,
}


def trl_sigmoid_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta):
    """TRL's DPO "sigmoid" loss (label smoothing 0) and its rewards, in NumPy float64."""
    logits = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
    losses = np.logaddexp(0.0, -beta * logits)  # -log sigmoid(beta * logits) = log(1 + exp(-beta * logits))
    return losses.mean(), beta * (policy_chosen - reference_chosen), beta * (policy_rejected - reference_rejected)


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 2.0, 10.0])
def test_dpo_loss_matches_trl_sigmoid_loss(ch12, beta):
    rng = np.random.default_rng(int(beta * 100))
    inputs = [-rng.uniform(1, 200, size=7) for _ in range(4)]
    loss, chosen, rejected = ch12["compute_dpo_loss"](*(torch.tensor(x) for x in inputs), beta=beta)
    expected_loss, expected_chosen, expected_rejected = trl_sigmoid_loss(*inputs, beta)
    assert loss.dim() == 0
    assert math.isclose(loss.item(), expected_loss, rel_tol=1e-12, abs_tol=1e-12)
    np.testing.assert_allclose(chosen.numpy(), expected_chosen, rtol=1e-12)
    np.testing.assert_allclose(rejected.numpy(), expected_rejected, rtol=1e-12)


def test_dpo_loss_stays_finite_and_exact_far_from_zero(ch12):
    inputs = [np.array([-1e4, -5.0]), np.array([-5.0, -1e4]), np.zeros(2), np.zeros(2)]
    loss, _, _ = ch12["compute_dpo_loss"](*(torch.tensor(x, dtype=torch.float32) for x in inputs), beta=1.0)
    assert torch.isfinite(loss)
    assert math.isclose(loss.item(), trl_sigmoid_loss(*inputs, 1.0)[0], rel_tol=1e-6)


def test_dpo_loss_is_ln2_for_a_policy_equal_to_its_reference(ch12):
    chosen, rejected = -torch.rand(5) * 50, -torch.rand(5) * 50
    loss, chosen_rewards, rejected_rewards = ch12["compute_dpo_loss"](chosen, rejected, chosen, rejected, beta=0.3)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-7)
    assert not chosen_rewards.any() and not rejected_rewards.any()


def test_dpo_loss_gradient_passes_gradcheck_and_rewards_are_detached(ch12):
    inputs = [(-torch.rand(4, dtype=torch.float64) * 30).requires_grad_() for _ in range(4)]
    assert torch.autograd.gradcheck(lambda *x: ch12["compute_dpo_loss"](*x, beta=0.7)[0], inputs)
    _, chosen, rejected = ch12["compute_dpo_loss"](*inputs, beta=0.7)
    assert not chosen.requires_grad and not rejected.requires_grad


def test_dpo_loss_gradient_descent_raises_chosen_and_lowers_rejected(ch12):
    inputs = [(-torch.rand(6) * 30).requires_grad_() for _ in range(4)]
    ch12["compute_dpo_loss"](*inputs, beta=0.2)[0].backward()
    assert (inputs[0].grad < 0).all() and (inputs[1].grad > 0).all()


def test_compute_logprobs_matches_masked_cross_entropy(ch12):
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 9, 13, dtype=torch.float64), torch.randint(0, 13, (3, 9))
    mask = torch.rand(3, 9) < 0.5
    per_token = -F.cross_entropy(logits[:, :-1].reshape(-1, 13), labels[:, 1:].reshape(-1), reduction="none")
    expected = (per_token.view(3, 8) * mask[:, 1:]).sum(-1)
    torch.testing.assert_close(ch12["compute_logprobs"](logits, labels, mask), expected)
    torch.testing.assert_close(ch12["compute_logprobs"](logits, labels), per_token.view(3, 8).sum(-1))


def test_compute_logprobs_is_the_log_of_the_product_of_token_probabilities(ch12):
    torch.manual_seed(1)
    logits, labels = torch.randn(2, 6, 5, dtype=torch.float64), torch.randint(0, 5, (2, 6))
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    for row in range(2):
        product = 1.0
        for t in range(1, 6):
            if mask[row, t]:
                product *= torch.softmax(logits[row, t - 1], dim=0)[labels[row, t]].item()
        got = ch12["compute_logprobs"](logits, labels, mask)[row].item()
        assert got == pytest.approx(math.log(product), rel=1e-9)


def test_collated_masks_select_exactly_the_responses_of_real_pairs(ch12):
    from llmcourse.data import data_path, gpt2_encoding

    with open(data_path("instruction-data-with-preference.json"), encoding="utf-8") as f:
        data = json.load(f)[:16]
    tokenizer = gpt2_encoding()
    dataset = ch12["PreferenceDataset"](data, tokenizer)
    batch = ch12["custom_collate_fn"]([dataset[i] for i in range(len(dataset))])
    assert batch["chosen"].shape == batch["rejected"].shape
    for row, entry in enumerate(data):
        for key in ("chosen", "rejected"):
            selected = batch[key][row][batch[f"{key}_mask"][row]].tolist()
            assert tokenizer.decode(selected) == entry[key]


def test_reference_copy_never_moves_while_the_policy_learns_the_preference(ch12):
    from previous_chapters import GPTModel

    torch.manual_seed(0)
    policy = GPTModel(TINY_GPT)
    reference = ch12["create_reference_model"](policy)
    before = {name: p.clone() for name, p in reference.named_parameters()}
    generator = torch.Generator().manual_seed(3)
    items = []
    for _ in range(24):
        prompt = torch.randint(3, 20, (4,), generator=generator).tolist()
        items.append({"prompt": prompt, "chosen": prompt + [1, 1, 1], "rejected": prompt + [2, 2]})
    train = [ch12["custom_collate_fn"](items[i : i + 4], pad_token_id=0) for i in range(0, 16, 4)]
    val = [ch12["custom_collate_fn"](items[16:], pad_token_id=0)]
    optimizer = torch.optim.AdamW(policy.parameters(), lr=0.01)
    tracking = ch12["train_model_dpo_simple"](policy, reference, train, val, optimizer, 2, 0.5, 2, 1)
    assert tracking["val_reward_margins"][-1] > tracking["val_reward_margins"][0] > 0
    assert tracking["val_losses"][-1] < math.log(2)
    assert tracking["val_reward_accuracies"][-1] == 1.0
    for name, param in reference.named_parameters():
        assert torch.equal(param, before[name]) and param.grad is None and not param.requires_grad
    assert not reference.training


def test_dpo_loss_batch_matches_a_hand_written_step(ch12):
    from previous_chapters import GPTModel

    torch.manual_seed(5)
    policy, reference = GPTModel(TINY_GPT), GPTModel(TINY_GPT).eval()
    items = [
        {"prompt": [3, 4], "chosen": [3, 4, 5, 6, 7], "rejected": [3, 4, 8]},
        {"prompt": [9, 10, 11], "chosen": [9, 10, 11, 12], "rejected": [9, 10, 11, 13, 14, 15]},
    ]
    batch = ch12["custom_collate_fn"](items, pad_token_id=0)
    loss, chosen_rewards, rejected_rewards = ch12["compute_dpo_loss_batch"](batch, policy, reference, 0.4)

    def logprob(model, item, key):
        ids = torch.tensor([item[key]])
        log_probs = torch.log_softmax(model(ids)[0], dim=-1)
        return sum(log_probs[t - 1, item[key][t]] for t in range(len(item["prompt"]), len(item[key])))

    margins, expected_chosen, expected_rejected = [], [], []
    for item in items:
        with torch.no_grad():
            ref_c, ref_r = logprob(reference, item, "chosen"), logprob(reference, item, "rejected")
        pol_c, pol_r = logprob(policy, item, "chosen"), logprob(policy, item, "rejected")
        margins.append((pol_c - pol_r) - (ref_c - ref_r))
        expected_chosen.append(0.4 * (pol_c - ref_c).item())
        expected_rejected.append(0.4 * (pol_r - ref_r).item())
    expected_loss = torch.stack([-F.logsigmoid(0.4 * m) for m in margins]).mean()
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chosen_rewards, torch.tensor(expected_chosen), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rejected_rewards, torch.tensor(expected_rejected), rtol=1e-5, atol=1e-6)
