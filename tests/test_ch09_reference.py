"""The chapter 9 reference LoRA agrees with Hugging Face PEFT's: given the same factors
(PEFT's lora_A and lora_B weights are our A and B transposed) and our alpha set to PEFT's
scaling, lora_alpha / r (or lora_alpha / sqrt(r) with rsLoRA), the outputs and gradients match;
merge_lora matches merge_and_unload, and the trainable counts match on chapter 4's GPTModel.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from autograder import paths


@pytest.fixture(scope="module")
def ch09():
    if not paths.solution_notebook("ch09").exists():
        pytest.skip("needs solutions/ch09")
    import previous_chapters

    return previous_chapters.chapter("ch09")


class TwoLayers(nn.Module):
    """A non-square layer with a bias, then a square one without."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 20), nn.Linear(20, 20, bias=False)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def peft_and_ours(ch09, r: int, lora_alpha: float, use_rslora: bool = False):
    """The same TwoLayers adapted by PEFT and by the reference, with PEFT's (randomised) factors copied over."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = TwoLayers()
    config = LoraConfig(
        r=r, lora_alpha=lora_alpha, target_modules=["fc1", "fc2"], lora_dropout=0.0, use_rslora=use_rslora
    )
    peft_model = get_peft_model(copy.deepcopy(base), config)
    alpha = lora_alpha / (math.sqrt(r) if use_rslora else r)
    ours = copy.deepcopy(base)
    ch09.replace_linear_with_lora(ours, r, alpha)
    with torch.no_grad():
        for name in ("fc1", "fc2"):
            peft_layer, our_layer = getattr(peft_model.base_model.model, name), getattr(ours, name)
            peft_layer.lora_B["default"].weight.normal_(0, 0.1)  # as if trained: PEFT starts B at zeros too
            our_layer.lora.A.copy_(peft_layer.lora_A["default"].weight.T)
            our_layer.lora.B.copy_(peft_layer.lora_B["default"].weight.T)
    return peft_model, ours


@pytest.mark.parametrize("r, lora_alpha, use_rslora", [(8, 16, False), (4, 4, False), (2, 32, False), (8, 16, True)])
def test_linear_with_lora_equals_peft_lora_linear(ch09, r, lora_alpha, use_rslora):
    peft_model, ours = peft_and_ours(ch09, r, lora_alpha, use_rslora)
    expected_scaling = lora_alpha / (math.sqrt(r) if use_rslora else r)
    assert peft_model.base_model.model.fc1.scaling["default"] == pytest.approx(expected_scaling)
    x = torch.randn(3, 5, 12)
    # The same products in another order (PEFT scales after lora_B, we before): float rounding only.
    torch.testing.assert_close(ours(x), peft_model(x), atol=1e-5, rtol=1e-4)


def test_gradients_equal_peft_gradients_transposed(ch09):
    peft_model, ours = peft_and_ours(ch09, 4, 8)
    x = torch.randn(6, 12)
    ours(x).square().sum().backward()
    peft_model(x).square().sum().backward()
    for name in ("fc1", "fc2"):
        peft_layer, our_layer = getattr(peft_model.base_model.model, name), getattr(ours, name)
        torch.testing.assert_close(
            our_layer.lora.A.grad, peft_layer.lora_A["default"].weight.grad.T, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            our_layer.lora.B.grad, peft_layer.lora_B["default"].weight.grad.T, rtol=1e-4, atol=1e-5
        )
        assert our_layer.linear.weight.grad is None and peft_layer.base_layer.weight.grad is None


def test_merge_lora_equals_peft_merge_and_unload(ch09):
    peft_model, ours = peft_and_ours(ch09, 8, 16)
    merged_peft = peft_model.merge_and_unload()
    merged_ours = ch09.merge_lora(ours)
    assert set(merged_ours.state_dict()) == set(merged_peft.state_dict())
    for name, tensor in merged_peft.state_dict().items():
        torch.testing.assert_close(merged_ours.state_dict()[name], tensor)


def test_trainable_count_equals_peft_on_gpt_model(ch09):
    from peft import LoraConfig, get_peft_model

    from previous_chapters import GPTModel

    model = GPTModel(
        {
            "vocab_size": 29,
            "context_length": 10,
            "emb_dim": 12,
            "n_heads": 3,
            "n_layers": 2,
            "drop_rate": 0.0,
            "qkv_bias": False,
        }
    )
    targets = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    peft_trainable, _ = peft_model.get_nb_trainable_parameters()
    for param in model.parameters():
        param.requires_grad = False
    ch09.replace_linear_with_lora(model, 4, 2.0)
    assert ch09.count_trainable_parameters(model) == peft_trainable
    assert sum(isinstance(m, ch09.LinearWithLoRA) for m in model.modules()) == len(targets)
