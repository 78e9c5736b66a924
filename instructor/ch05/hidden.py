"""Hidden checks of chapter 5: the live reference against the submission on sizes, runs and
checkpoints drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import contextlib
import io
import math
import random

import torch

from autograder.checks.modules import parameter_state
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
from autograder.checks.training_setups import ALPHABET, CONTEXT, TrainingRun, training_run
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_number,
    expect_tensor,
    expect_type,
    fail,
)
from autograder.split import split

SAMPLED_TOKENS = 3000
SAMPLED_VOCAB = 10
CHECKPOINT_BATCHES = 5
TOKEN_ID_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _text_case(seed):
    rng = random.Random(seed)
    words = ["every", " effort", " moves", "you", "<|endoftext|>", "\n", " 42", "!", " caf\u00e9", "  "]
    return {"text": "".join(rng.choice(words) for _ in range(rng.randint(1, 12)))}


def _converted_text(sub, case, gpt2):
    """The student's ids of the text and the text decoded back from those ids."""
    ids = sub.text_to_token_ids(case["text"], gpt2)
    return {"ids": ids, "text": sub.token_ids_to_text(ids, gpt2)}


@token_conversion
@split(setup=_text_case, produce=_converted_text)
def test_token_conversion_agrees_with_reference(outputs, case, ref, gpt2):
    """hidden: random texts, some with <|endoftext|>, to ids and back"""
    expect_equal_tensor(outputs["ids"], ref.text_to_token_ids(case["text"], gpt2), "text_to_token_ids of a random text")
    expect_type(outputs["text"], str, "token_ids_to_text(...)")
    expect(outputs["text"] == case["text"], "token_ids_to_text does not give back the random text")


def _batches(rng: random.Random, vocab_size: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    batch, tokens = rng.randint(1, 3), rng.randint(1, CONTEXT)
    return [
        (torch.randint(0, vocab_size, (batch, tokens)), torch.randint(0, vocab_size, (batch, tokens)))
        for _ in range(count)
    ]


def _loss_case(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    batches = _batches(rng, len(ALPHABET), rng.randint(1, 5))
    return {"model_seed": seed, "batches": batches, "num_batches": [None, rng.randint(1, 6)]}


def _loss_model(case: dict) -> TinyLanguageModel:
    return TinyLanguageModel(len(ALPHABET), CONTEXT, seed=case["model_seed"])


def _losses(sub, case):
    """The student's loss of the first batch and loader losses for each num_batches."""
    model = _loss_model(case)
    x, y = case["batches"][0]
    return {
        "batch": sub.calc_loss_batch(x, y, model, "cpu"),
        "loader": [
            sub.calc_loss_loader(case["batches"], model, "cpu", num_batches=num_batches)
            for num_batches in case["num_batches"]
        ],
    }


@loss
@split(setup=_loss_case, produce=_losses)
def test_losses_agree_with_reference(outputs, case, ref):
    """hidden: batch and loader losses on random batch shapes and num_batches"""
    model, batches = _loss_model(case), case["batches"]
    x, y = batches[0]
    expect_close(
        outputs["batch"],
        ref.calc_loss_batch(x, y, model, "cpu").detach(),
        f"calc_loss_batch on a {tuple(x.shape)} batch",
    )
    for num_batches, value in zip(case["num_batches"], outputs["loader"], strict=True):
        got = expect_number(value, f"calc_loss_loader(..., num_batches={num_batches})")
        expected = ref.calc_loss_loader(batches, model, "cpu", num_batches=num_batches)
        expect(
            math.isclose(got, expected, rel_tol=1e-5),
            f"calc_loss_loader over {len(batches)} batches with "
            f"num_batches={num_batches} gave {got:.6f}; expected {expected:.6f}",
        )


def _quiet(function, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args, **kwargs)


def _trained(function, case: dict) -> dict:
    """Runs a training function on a fresh run built from case["run"] with case["settings"];
    returns what it returned and the model's parameters afterwards."""
    run = training_run(**case["run"])
    result = _quiet(
        function,
        run.model,
        run.train_loader,
        run.val_loader,
        run.optimizer,
        "cpu",
        start_context=run.start_context,
        tokenizer=run.tokenizer,
        **case["settings"],
    )
    return {"result": result, "params": parameter_state(run.model)}


def _numbers(values, what: str) -> list[float]:
    """A returned list of numbers (a list, tuple or 1-d tensor) as floats; fails naming `what` otherwise."""
    expect_type(values, (list, tuple, torch.Tensor), what)
    if isinstance(values, torch.Tensor):
        expect(values.dim() == 1, f"{what} should be a list of numbers; got a tensor of shape {tuple(values.shape)}")
    return [expect_number(value, f"an entry of {what}") for value in values]


def _expect_same_run(outputs: dict, expected: dict, what: str) -> None:
    """The submission's run (`_trained`) returned the reference's lists and left the same weights."""
    got, expected_lists = outputs["result"], expected["result"]
    expect_type(got, (list, tuple), f"{what}'s result")
    expect(len(got) == len(expected_lists), f"{what} returned {len(got)} lists; expected {len(expected_lists)}")
    for index, (values, expected_values) in enumerate(zip(got, expected_lists)):
        values = _numbers(values, f"{what}'s result {index}")
        expected_values = _numbers(expected_values, f"the reference's result {index}")
        expect(
            len(values) == len(expected_values),
            f"{what}'s result {index} has {len(values)} entries; expected {len(expected_values)}",
        )
        expect_close(
            torch.tensor(values), torch.tensor(expected_values), f"{what}'s result {index}", atol=1e-4, rtol=1e-4
        )
    for name, expected_param in expected["params"].items():
        expect_close(outputs["params"][name], expected_param, f"the model's {name} after {what}", atol=1e-4, rtol=1e-4)


def _simple_run_case(seed):
    rng = random.Random(seed)
    settings = {"num_epochs": rng.randint(1, 3), "eval_freq": rng.randint(1, 4), "eval_iter": rng.randint(1, 3)}
    batches, lr = rng.randint(2, 6), rng.choice([0.005, 0.02])
    return {"run": {"seed": seed % 1000, "lr": lr, "train_batches": batches}, "settings": settings}


def _simple_run(sub, case):
    return _trained(sub.train_model_simple, case)


@train_loop
@split(setup=_simple_run_case, produce=_simple_run)
def test_train_model_simple_agrees_with_reference(outputs, case, ref):
    """hidden: a run with random epochs, eval_freq and eval_iter"""
    _expect_same_run(outputs, _trained(ref.train_model_simple, case), "train_model_simple")


def _scheduled_run_case(seed):
    rng = random.Random(seed)
    batches, epochs = rng.randint(2, 5), rng.randint(1, 3)
    settings = {
        "n_epochs": epochs,
        "eval_freq": rng.randint(1, 4),
        "eval_iter": rng.randint(1, 2),
        "warmup_steps": rng.randint(1, batches * epochs - 1) if batches * epochs > 1 else 1,
        "initial_lr": rng.choice([1e-4, 3e-5]),
        "min_lr": rng.choice([1e-6, 1e-5]),
    }
    scale = rng.choice([1.0, 6.0])
    return {
        "run": {"seed": seed % 1000, "lr": 0.01, "weight_scale": scale, "train_batches": batches},
        "settings": settings,
    }


def _scheduled_run(sub, case):
    return _trained(sub.train_model, case)


@training_extras
@split(setup=_scheduled_run_case, produce=_scheduled_run)
def test_train_model_agrees_with_reference(outputs, case, ref):
    """hidden: a run with random warm-up, epochs, learning rates and evaluation settings"""
    _expect_same_run(outputs, _trained(ref.train_model, case), "train_model")


def _schedule_case(seed):
    rng = random.Random(seed)
    total = rng.randint(5, 40)
    warmup = rng.randint(1, total - 1)
    peak, initial, minimum = rng.choice([1e-3, 5e-4]), rng.choice([1e-5, 3e-5]), rng.choice([1e-6, 1e-7])
    return {"peak": peak, "warmup": warmup, "total": total, "initial": initial, "minimum": minimum}


def _rate_at(function, step: int, case: dict):
    return function(
        step, case["peak"], case["warmup"], case["total"], initial_lr=case["initial"], min_lr=case["minimum"]
    )


def _rates(sub, case):
    """The student's learning rate at every step of the run, its last included."""
    return {"rates": [_rate_at(sub.learning_rate_at, step, case) for step in range(case["total"] + 1)]}


@training_extras
@split(setup=_schedule_case, produce=_rates)
def test_learning_rate_agrees_with_reference(outputs, case, ref):
    """hidden: the schedule at every step of a random run length"""
    total, warmup = case["total"], case["warmup"]
    for step, value in enumerate(outputs["rates"]):
        got = expect_number(value, f"learning_rate_at({step}, ...)")
        expected = _rate_at(ref.learning_rate_at, step, case)
        expect(
            math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12),
            f"learning_rate_at differs at step {step} of {total} ({warmup} warm-up steps): got {got:.6g}, expected {expected:.6g}",
        )


def _generate_case(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    vocab, context = rng.randint(5, 40), rng.randint(2, 6)
    prompt = torch.randint(0, vocab, (1, rng.randint(1, context + 2)))
    steps = rng.randint(1, 8)
    logits = torch.randn(SAMPLED_VOCAB) * 1.5
    k, temperature = rng.randint(2, 5), rng.choice([0.7, 1.0, 1.8])
    return {
        "vocab": vocab,
        "context": context,
        "model_seed": seed,
        "prompt": prompt,
        "steps": steps,
        "logits": logits,
        "top_k": k,
        "temperature": temperature,
        "sampling_seed": seed,
    }


def _window_model(case: dict) -> WindowLanguageModel:
    return WindowLanguageModel(case["vocab"], case["context"], seed=case["model_seed"])


def _greedy(generate_function, case: dict):
    return generate_function(_window_model(case), case["prompt"].clone(), case["steps"], case["context"])


def _generated(sub, case):
    """The student's greedy continuation on a window model, then SAMPLED_TOKENS draws from fixed logits."""
    greedy = _greedy(sub.generate, case)
    torch.manual_seed(case["sampling_seed"])
    sampled = sub.generate(
        FixedLogitsModel(case["logits"]),
        torch.tensor([[0]]),
        SAMPLED_TOKENS,
        2,
        temperature=case["temperature"],
        top_k=case["top_k"],
    )
    return {"greedy": greedy, "sampled": sampled}


def _expect_top_k_frequencies(out, logits: torch.Tensor, k: int, temperature: float) -> None:
    """The tokens drawn after the one-token prompt come from the top k of `logits`, with the
    frequencies of the softmax of the top-k logits at `temperature`."""
    what = f"generate(..., temperature={temperature}, top_k={k})"
    expect_tensor(out, what)
    expect(
        out.dim() == 2 and out.dtype in TOKEN_ID_DTYPES,
        f"{what} should return a (1, num_tokens) tensor of token ids; got shape {tuple(out.shape)}, dtype {out.dtype}",
    )
    top = torch.topk(logits, k).indices
    drawn = out[0, 1:]
    if not torch.isin(drawn, top).all():
        fail(f"generate(..., top_k={k}) drew a token outside the top {k}")
    counts = torch.bincount(drawn.long(), minlength=len(logits)).double()
    masked = torch.full_like(logits, float("-inf"))
    masked[top] = logits[top]
    expected = torch.softmax(masked / temperature, dim=0).double()
    distance = 0.5 * (counts / counts.sum() - expected).abs().sum().item()
    expect(
        distance < 0.05,
        f"{what} draws tokens with the wrong frequencies "
        f"(total variation distance {distance:.2f} over {SAMPLED_TOKENS} draws)",
    )


@generate
@split(setup=_generate_case, produce=_generated)
def test_generate_agrees_with_reference(outputs, case, ref):
    """hidden: greedy continuations and the top-k distribution on random models"""
    expect_equal_tensor(outputs["greedy"], _greedy(ref.generate, case), "greedy generate(...)")
    _expect_top_k_frequencies(outputs["sampled"], case["logits"], case["top_k"], case["temperature"])


def _checkpoint_case(seed):
    rng = random.Random(seed)
    return {"seed": seed % 1000, "split": rng.randint(1, CHECKPOINT_BATCHES - 1)}


def _train_on(run: TrainingRun, batches) -> None:
    for x, y in batches:
        run.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(run.model(x).flatten(0, 1), y.flatten()).backward()
        run.optimizer.step()


def _resumed_run(sub, case, tmp_path):
    """Trains a run up to the split, saves it with the student's save_checkpoint, restores it with
    load_checkpoint into a run of other initial weights, and trains that on the remaining batches;
    returns the resumed model's parameters."""
    original = training_run(seed=case["seed"], train_batches=CHECKPOINT_BATCHES)
    resumed = training_run(seed=case["seed"] + 1, train_batches=CHECKPOINT_BATCHES)
    batches = list(original.train_loader)
    _train_on(original, batches[: case["split"]])
    sub.save_checkpoint(original.model, original.optimizer, tmp_path / "run.pth")
    sub.load_checkpoint(resumed.model, resumed.optimizer, tmp_path / "run.pth")
    _train_on(resumed, batches[case["split"] :])
    return {"params": parameter_state(resumed.model)}


@checkpoint
@split(setup=_checkpoint_case, produce=_resumed_run)
def test_checkpoint_resumes_exactly(outputs, case):
    """hidden: a random run saved, restored into fresh objects and continued for a random number of steps"""
    uninterrupted = training_run(seed=case["seed"], train_batches=CHECKPOINT_BATCHES)
    _train_on(uninterrupted, list(uninterrupted.train_loader))
    for name, expected in uninterrupted.model.named_parameters():
        expect_close(
            outputs["params"][name], expected, f"{name} after resuming from a checkpoint", atol=1e-6, rtol=1e-6
        )


def _gpt2_checkpoint(cfg: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors with the names and shapes of a GPT-2 checkpoint of configuration cfg."""
    d, vocab = cfg["emb_dim"], cfg["vocab_size"]
    shapes = {
        "wte.weight": (vocab, d),
        "wpe.weight": (cfg["context_length"], d),
        "ln_f.weight": (d,),
        "ln_f.bias": (d,),
    }
    for i in range(cfg["n_layers"]):
        shapes.update(
            {
                f"h.{i}.ln_1.weight": (d,),
                f"h.{i}.ln_1.bias": (d,),
                f"h.{i}.ln_2.weight": (d,),
                f"h.{i}.ln_2.bias": (d,),
                f"h.{i}.attn.c_attn.weight": (d, 3 * d),
                f"h.{i}.attn.c_attn.bias": (3 * d,),
                f"h.{i}.attn.c_proj.weight": (d, d),
                f"h.{i}.attn.c_proj.bias": (d,),
                f"h.{i}.mlp.c_fc.weight": (d, 4 * d),
                f"h.{i}.mlp.c_fc.bias": (4 * d,),
                f"h.{i}.mlp.c_proj.weight": (4 * d, d),
                f"h.{i}.mlp.c_proj.bias": (d,),
            }
        )
    return {name: torch.randn(shape, generator=generator) * 0.3 for name, shape in shapes.items()}


def _gpt2_case(seed):
    rng = random.Random(seed)
    n_heads = rng.randint(1, 3)
    cfg = {
        "vocab_size": rng.randint(10, 50),
        "context_length": rng.randint(3, 9),
        "emb_dim": n_heads * rng.randint(2, 4),
        "n_heads": n_heads,
        "n_layers": rng.randint(1, 3),
        "drop_rate": 0.0,
        "qkv_bias": True,
    }
    generator = torch.Generator().manual_seed(seed)
    params = _gpt2_checkpoint(cfg, generator)
    ids = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]), generator=generator)
    return {"cfg": cfg, "params": params, "ids": ids}


def _loaded_logits(solution, case: dict) -> torch.Tensor:
    """The logits on the case's ids of `solution`'s GPTModel after its load_weights_into_gpt loaded the checkpoint."""
    model = solution.GPTModel(case["cfg"]).eval()
    solution.load_weights_into_gpt(model, {name: tensor.clone() for name, tensor in case["params"].items()})
    with torch.no_grad():
        return model(case["ids"])


def _student_loaded_logits(sub, case):
    return {"logits": _loaded_logits(sub, case)}


@load_gpt2_weights
@split(setup=_gpt2_case, produce=_student_loaded_logits)
def test_loaded_weights_agree_with_reference(outputs, case, ref):
    """hidden: a random GPT-2 checkpoint of a random size loads to the same logits as with the reference"""
    expect_close(
        outputs["logits"],
        _loaded_logits(ref, case),
        "the logits after loading a GPT-2 checkpoint",
        atol=1e-4,
        rtol=1e-4,
    )
