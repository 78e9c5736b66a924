"""Chapter 4 fixtures: a small GPT configuration, parameters, inputs and the reference's outputs."""

from __future__ import annotations

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.toy_models import WindowLanguageModel

# Small enough to record, with every size distinct: vocabulary, context, width, heads, layers.
SMALL = {
    "vocab_size": 29,
    "context_length": 8,
    "emb_dim": 12,
    "n_heads": 3,
    "n_layers": 2,
    "drop_rate": 0.5,
    "qkv_bias": False,
}

GPT_TRAIN_DROP_RATE = 0.3

GENERATE = {"vocab_size": 23, "context_size": 4, "max_new_tokens": 7}


def _eval_outputs(module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    module.eval()
    with torch.no_grad():
        return [module(x) for x in inputs]


def _module_case(module, inputs: list[torch.Tensor]) -> dict:
    return {"state": parameter_state(module), "inputs": inputs, "outputs": _eval_outputs(module, inputs)}


def _randomise_norms(module) -> None:
    """Scale and shift start as ones and zeros; random values show when they are mixed up."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith(("scale", "shift")):
                param.normal_()


def record(ref) -> dict:
    torch.manual_seed(123)
    tokens = [torch.randint(0, SMALL["vocab_size"], (2, 8)), torch.randint(0, SMALL["vocab_size"], (3, 5))]
    vectors = [torch.randn(2, 8, SMALL["emb_dim"]), torch.randn(3, 5, SMALL["emb_dim"])]
    block = ref.TransformerBlock(SMALL)
    gpt = ref.GPTModel(SMALL)
    _randomise_norms(block)
    _randomise_norms(gpt)
    torch.manual_seed(7)
    with torch.no_grad():
        block_train_output = block.train()(vectors[0])
    block.eval()
    # The GPT's training step with drop rate 0.3 (not nn.Dropout's default 0.5) from a fixed seed, on a
    # forked generator: the draws below stay as they were.
    with torch.random.fork_rng():
        gpt_train = ref.GPTModel({**SMALL, "drop_rate": GPT_TRAIN_DROP_RATE})
        gpt_train.load_state_dict(gpt.state_dict())
        torch.manual_seed(7)
        with torch.no_grad():
            gpt_train_output = gpt_train.train()(tokens[0])
    model = WindowLanguageModel(GENERATE["vocab_size"], GENERATE["context_size"], seed=5)
    prompts = torch.tensor([[3, 14, 15], [9, 2, 6]])
    return {
        "config": SMALL,
        "feed_forward": _module_case(ref.FeedForward(SMALL), vectors),
        "block": _module_case(block, vectors),
        "block_train": {"seed": 7, "output": block_train_output},
        "block_with_qkv_bias": parameter_state(ref.TransformerBlock({**SMALL, "qkv_bias": True})),
        "gpt": _module_case(gpt, tokens),
        "gpt_state_keys": list(gpt.state_dict()),
        "gpt_train": {"seed": 7, "drop_rate": GPT_TRAIN_DROP_RATE, "output": gpt_train_output},
        "generate": {
            **GENERATE,
            "seed": 5,
            "prompts": prompts,
            "generated": ref.generate_text_simple(model, prompts, GENERATE["max_new_tokens"], GENERATE["context_size"]),
        },
    }
