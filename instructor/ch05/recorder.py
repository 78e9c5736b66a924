"""Chapter 5 fixtures: losses, training runs, generated tokens and a small GPT-2 in Hugging Face's layout."""

from __future__ import annotations

import contextlib
import io

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.toy_models import WindowLanguageModel
from autograder.checks.training_setups import StepLog, training_run

TRAIN = {"num_epochs": 2, "eval_freq": 3, "eval_iter": 2}
EXTRAS = {"n_epochs": 2, "eval_freq": 4, "eval_iter": 1, "warmup_steps": 3, "initial_lr": 1e-3, "min_lr": 1e-4}
# A GPT-2 with every size distinct; the logits depend on every tensor of the checkpoint.
HF_GPT2 = {
    "vocab_size": 61,
    "n_positions": 12,
    "n_embd": 12,
    "n_layer": 2,
    "n_head": 3,
    "bos_token_id": 60,
    "eos_token_id": 60,
}


def _train(ref, function, run, **kwargs) -> dict:
    log = StepLog(run)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = function(
            run.model,
            run.train_loader,
            run.val_loader,
            run.optimizer,
            "cpu",
            start_context=run.start_context,
            tokenizer=run.tokenizer,
            **kwargs,
        )
    samples = [line for line in printed.getvalue().splitlines() if line.startswith(run.start_context)]
    return {
        "results": [list(map(float, values)) for values in results],
        "grad_norms": log.grad_norms,
        "lrs": log.lrs,
        "state": parameter_state(run.model),
        "samples": samples,
    }


def _hf_gpt2() -> dict:
    """A random GPT-2 made by Hugging Face transformers: its checkpoint tensors, an input and its logits."""
    import transformers

    torch.manual_seed(5)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**HF_GPT2)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight", ".bias")):
                param.normal_(0, 0.5)  # norms and biases start as ones and zeros, which hide mix-ups
    params = {
        name.removeprefix("transformer."): tensor.clone()
        for name, tensor in model.state_dict().items()
        if name != "lm_head.weight" and not name.endswith((".attn.bias", ".attn.masked_bias"))
    }
    ids = torch.randint(0, HF_GPT2["vocab_size"], (2, HF_GPT2["n_positions"]))
    with torch.no_grad():
        logits = model(ids).logits
    return {"config": HF_GPT2, "params": params, "ids": ids, "logits": logits}


def record(ref) -> dict:
    torch.manual_seed(123)
    model = WindowLanguageModel(31, 4, seed=3)
    prompts = [torch.tensor([[3, 14, 15]]), torch.tensor([[9, 2, 6, 5, 3, 5]])]
    extras_run = training_run(seed=2, lr=0.02)
    gpt_state = {}
    hf = _hf_gpt2()
    gpt = ref.GPTModel(
        {
            "vocab_size": HF_GPT2["vocab_size"],
            "context_length": HF_GPT2["n_positions"],
            "emb_dim": HF_GPT2["n_embd"],
            "n_heads": HF_GPT2["n_head"],
            "n_layers": HF_GPT2["n_layer"],
            "drop_rate": 0.0,
            "qkv_bias": True,
        }
    )
    ref.load_weights_into_gpt(gpt, hf["params"])
    gpt_state = parameter_state(gpt)
    return {
        "train": {**TRAIN, "seed": 1, **_train(ref, ref.train_model_simple, training_run(seed=1), **TRAIN)},
        "extras": {**EXTRAS, "seed": 2, "lr": 0.02, **_train(ref, ref.train_model, extras_run, **EXTRAS)},
        "greedy": {
            "vocab_size": 31,
            "context_size": 4,
            "seed": 3,
            "max_new_tokens": 6,
            "prompts": prompts,
            "generated": [ref.generate(model, p, 6, 4) for p in prompts],
        },
        "gpt2": {**hf, "gpt_state": gpt_state},
    }
