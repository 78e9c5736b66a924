"""Hidden checks of chapter 5: the live reference against the submission on sizes, runs and
checkpoints drawn from the seed. Messages say what differs, never the inputs."""
from __future__ import annotations

import contextlib
import io
import math
import random

import torch

from autograder.checks.test_ch05 import (
    checkpoint,
    generate,
    load_gpt2_weights,
    loss,
    token_conversion,
    train_loop,
    training_extras,
)
from autograder.checks.toy_models import FixedLogitsModel, TinyLanguageModel, WindowLanguageModel
from autograder.checks.training_setups import ALPHABET, CONTEXT, training_run
from autograder.compare import expect, expect_close, expect_equal_tensor, fail


@token_conversion
def test_token_conversion_agrees_with_reference(sub, ref, seed, gpt2):
    """hidden: random texts, some with <|endoftext|>, to ids and back"""
    rng = random.Random(seed)
    words = ["every", " effort", " moves", "you", "<|endoftext|>", "\n", " 42", "!", " caf\u00e9", "  "]
    text = "".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
    ids = sub.text_to_token_ids(text, gpt2)
    expect_equal_tensor(ids, ref.text_to_token_ids(text, gpt2), "text_to_token_ids of a random text")
    expect(sub.token_ids_to_text(ids, gpt2) == text, "token_ids_to_text does not give back the random text")


def _batches(rng: random.Random, vocab_size: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    batch, tokens = rng.randint(1, 3), rng.randint(1, CONTEXT)
    return [(torch.randint(0, vocab_size, (batch, tokens)), torch.randint(0, vocab_size, (batch, tokens)))
            for _ in range(count)]


@loss
def test_losses_agree_with_reference(sub, ref, seed):
    """hidden: batch and loader losses on random batch shapes and num_batches"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=seed)
    batches = _batches(rng, len(ALPHABET), rng.randint(1, 5))
    x, y = batches[0]
    expect_close(sub.calc_loss_batch(x, y, model, "cpu").detach(), ref.calc_loss_batch(x, y, model, "cpu").detach(),
                 f"calc_loss_batch on a {tuple(x.shape)} batch")
    for num_batches in (None, rng.randint(1, 6)):
        got = float(sub.calc_loss_loader(batches, model, "cpu", num_batches=num_batches))
        expected = ref.calc_loss_loader(batches, model, "cpu", num_batches=num_batches)
        expect(math.isclose(got, expected, rel_tol=1e-5), f"calc_loss_loader over {len(batches)} batches with "
               f"num_batches={num_batches} gave {got:.6f}; expected {expected:.6f}")


def _quiet(function, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


def _compare_runs(sub_function, ref_function, make_run, what: str, **kwargs) -> None:
    runs = make_run(), make_run()
    results = [_quiet(function, run.model, run.train_loader, run.val_loader, run.optimizer, "cpu",
                      start_context=run.start_context, tokenizer=run.tokenizer, **kwargs)
               for function, run in zip((sub_function, ref_function), runs)]
    got, expected = results
    expect(len(got) == len(expected), f"{what} returned {len(got)} lists; expected {len(expected)}")
    for index, (values, expected_values) in enumerate(zip(got, expected)):
        expect(len(values) == len(expected_values), f"{what}'s result {index} has {len(values)} entries; expected "
               f"{len(expected_values)}")
        expect_close(torch.tensor([float(v) for v in values]), torch.tensor([float(v) for v in expected_values]),
                     f"{what}'s result {index}", atol=1e-4, rtol=1e-4)
    for (name, param), expected_param in zip(runs[0].model.named_parameters(), runs[1].model.parameters()):
        expect_close(param, expected_param, f"the model's {name} after {what}", atol=1e-4, rtol=1e-4)


@train_loop
def test_train_model_simple_agrees_with_reference(sub, ref, seed):
    """hidden: a run with random epochs, eval_freq and eval_iter"""
    rng = random.Random(seed)
    settings = {"num_epochs": rng.randint(1, 3), "eval_freq": rng.randint(1, 4), "eval_iter": rng.randint(1, 3)}
    batches, lr = rng.randint(2, 6), rng.choice([0.005, 0.02])
    _compare_runs(sub.train_model_simple, ref.train_model_simple,
                  lambda: training_run(seed=seed % 1000, lr=lr, train_batches=batches), "train_model_simple", **settings)


@training_extras
def test_train_model_agrees_with_reference(sub, ref, seed):
    """hidden: a run with random warm-up, epochs, learning rates and evaluation settings"""
    rng = random.Random(seed)
    batches, epochs = rng.randint(2, 5), rng.randint(1, 3)
    settings = {"n_epochs": epochs, "eval_freq": rng.randint(1, 4), "eval_iter": rng.randint(1, 2),
                "warmup_steps": rng.randint(1, batches * epochs - 1) if batches * epochs > 1 else 1,
                "initial_lr": rng.choice([1e-4, 3e-5]), "min_lr": rng.choice([1e-6, 1e-5])}
    scale = rng.choice([1.0, 6.0])
    _compare_runs(sub.train_model, ref.train_model,
                  lambda: training_run(seed=seed % 1000, lr=0.01, weight_scale=scale, train_batches=batches),
                  "train_model", **settings)


@training_extras
def test_learning_rate_agrees_with_reference(sub, ref, seed):
    """hidden: the schedule at every step of a random run length"""
    rng = random.Random(seed)
    total = rng.randint(5, 40)
    warmup = rng.randint(1, total - 1)
    peak, initial, minimum = rng.choice([1e-3, 5e-4]), rng.choice([1e-5, 3e-5]), rng.choice([1e-6, 1e-7])
    for step in range(total + 1):
        got = float(sub.learning_rate_at(step, peak, warmup, total, initial_lr=initial, min_lr=minimum))
        expected = ref.learning_rate_at(step, peak, warmup, total, initial_lr=initial, min_lr=minimum)
        expect(math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12),
               f"learning_rate_at differs at step {step} of {total} ({warmup} warm-up steps): got {got:.6g}, expected {expected:.6g}")


@generate
def test_generate_agrees_with_reference(sub, ref, seed):
    """hidden: greedy continuations and the top-k distribution on random models"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    vocab, context = rng.randint(5, 40), rng.randint(2, 6)
    model = WindowLanguageModel(vocab, context, seed=seed)
    prompt = torch.randint(0, vocab, (1, rng.randint(1, context + 2)))
    steps = rng.randint(1, 8)
    expect_equal_tensor(sub.generate(model, prompt.clone(), steps, context), ref.generate(model, prompt.clone(), steps, context),
                        "greedy generate(...)")
    logits = torch.randn(10) * 1.5
    k, temperature = rng.randint(2, 5), rng.choice([0.7, 1.0, 1.8])
    out = sub.generate(FixedLogitsModel(logits), torch.tensor([[0]]), 3000, 2, temperature=temperature, top_k=k)
    counts = torch.bincount(out[0, 1:], minlength=10).double()
    masked = torch.full_like(logits, float("-inf"))
    top = torch.topk(logits, k).indices
    masked[top] = logits[top]
    expected = torch.softmax(masked / temperature, dim=0).double()
    if any(counts[i] > 0 for i in range(10) if i not in top):
        fail(f"generate(..., top_k={k}) drew a token outside the top {k}")
    distance = 0.5 * (counts / counts.sum() - expected).abs().sum().item()
    expect(distance < 0.05, f"generate(..., temperature={temperature}, top_k={k}) draws tokens with the wrong frequencies "
           f"(total variation distance {distance:.2f} over 3000 draws)")


@checkpoint
def test_checkpoint_resumes_exactly(sub, seed, tmp_path):
    """hidden: a random run saved, restored into fresh objects and continued for a random number of steps"""
    rng = random.Random(seed)
    original, resumed = training_run(seed=seed % 1000, drop_rate=0.0), training_run(seed=seed % 1000 + 1)
    batches = list(original.train_loader)
    split = rng.randint(1, len(batches) - 1)

    def steps(run, chosen):
        for x, y in chosen:
            run.optimizer.zero_grad()
            torch.nn.functional.cross_entropy(run.model(x).flatten(0, 1), y.flatten()).backward()
            run.optimizer.step()

    steps(original, batches[:split])
    sub.save_checkpoint(original.model, original.optimizer, tmp_path / "run.pth")
    steps(original, batches[split:])
    sub.load_checkpoint(resumed.model, resumed.optimizer, tmp_path / "run.pth")
    steps(resumed, batches[split:])
    for (name, param), expected in zip(resumed.model.named_parameters(), original.model.parameters()):
        expect_close(param, expected, f"{name} after resuming from a checkpoint", atol=1e-6, rtol=1e-6)


def _gpt2_checkpoint(cfg: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors with the names and shapes of a GPT-2 checkpoint of configuration cfg."""
    d, vocab = cfg["emb_dim"], cfg["vocab_size"]
    shapes = {"wte.weight": (vocab, d), "wpe.weight": (cfg["context_length"], d), "ln_f.weight": (d,), "ln_f.bias": (d,)}
    for i in range(cfg["n_layers"]):
        shapes.update({f"h.{i}.ln_1.weight": (d,), f"h.{i}.ln_1.bias": (d,), f"h.{i}.ln_2.weight": (d,), f"h.{i}.ln_2.bias": (d,),
                       f"h.{i}.attn.c_attn.weight": (d, 3 * d), f"h.{i}.attn.c_attn.bias": (3 * d,),
                       f"h.{i}.attn.c_proj.weight": (d, d), f"h.{i}.attn.c_proj.bias": (d,),
                       f"h.{i}.mlp.c_fc.weight": (d, 4 * d), f"h.{i}.mlp.c_fc.bias": (4 * d,),
                       f"h.{i}.mlp.c_proj.weight": (4 * d, d), f"h.{i}.mlp.c_proj.bias": (d,)})
    return {name: torch.randn(shape, generator=generator) * 0.3 for name, shape in shapes.items()}


@load_gpt2_weights
def test_loaded_weights_agree_with_reference(sub, ref, seed):
    """hidden: a random GPT-2 checkpoint of a random size loads to the same logits as with the reference"""
    rng = random.Random(seed)
    n_heads = rng.randint(1, 3)
    cfg = {"vocab_size": rng.randint(10, 50), "context_length": rng.randint(3, 9), "emb_dim": n_heads * rng.randint(2, 4),
           "n_heads": n_heads, "n_layers": rng.randint(1, 3), "drop_rate": 0.0, "qkv_bias": True}
    params = _gpt2_checkpoint(cfg, torch.Generator().manual_seed(seed))
    models = [sub.GPTModel(cfg).eval(), sub.GPTModel(cfg).eval()]
    sub.load_weights_into_gpt(models[0], {k: v.clone() for k, v in params.items()})
    ref.load_weights_into_gpt(models[1], {k: v.clone() for k, v in params.items()})
    ids = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]))
    with torch.no_grad():
        expect_close(models[0](ids), models[1](ids), "the logits after loading a GPT-2 checkpoint", atol=1e-4, rtol=1e-4)
