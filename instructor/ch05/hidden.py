"""Hidden checks of chapter 5: the live reference against the submission on sizes, runs and
checkpoints drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import math
import random

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch05 import (
    checkpoint,
    decoded_or_raised,
    expect_code_refused,
    expect_every_block_loaded,
    expect_float_loss,
    expect_modes_kept,
    expect_split_characters_decoded,
    expect_stopped_at_eos_zero,
    expect_training_conduct,
    generate,
    load_code_carrying_checkpoint,
    load_gpt2_weights,
    loader_loss,
    loss,
    run_training_function,
    token_conversion,
    train_loop,
    training_extras,
    write_book_checkpoint,
)
from autograder.checks.toy_models import CountingModel, FixedLogitsModel, TinyLanguageModel, WindowLanguageModel
from autograder.checks.training_setups import ALPHABET, CONTEXT, TrainingRun, training_run
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_list,
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
# Characters whose UTF-8 bytes GPT-2 spreads over two or three tokens, none of which decodes alone.
SPLIT_CHARACTERS = ("\U0001f999", "\U0001f600", "\u8a9e", "\u03a9", "\ud55c", "\u732b", "\U0001d11e")


def _text_case(seed, gpt2):
    """A random text of words, some <|endoftext|>, with a character split over tokens inserted at a random
    place; and a random id of it whose token decodes alone (for a (1,) tensor)."""
    rng = random.Random(seed)
    words = ["every", " effort", " moves", "you", "<|endoftext|>", "\n", " 42", "!", " caf\u00e9", "  "]
    pieces = [rng.choice(words) for _ in range(rng.randint(1, 12))]
    for _ in range(100):  # the first draw nearly always has both; a merge with a neighbour could spoil it
        at = rng.randint(0, len(pieces))
        text = "".join(pieces[:at] + [rng.choice(SPLIT_CHARACTERS)] + pieces[at:])
        ids = gpt2.encode(text, allowed_special={"<|endoftext|>"})
        whole = [i for i in ids if "\ufffd" not in gpt2.decode([i])]
        if whole and len(whole) < len(ids):
            return {"text": text, "single_id": rng.choice(whole)}
    raise AssertionError(f"seed {seed}: no text with a character split over tokens")


def _converted_text(sub, case, gpt2):
    """The student's ids of the text, the text decoded back from those ids, and the text of one id as a (1,) tensor."""
    ids = sub.text_to_token_ids(case["text"], gpt2)
    return {
        "ids": ids,
        "text": sub.token_ids_to_text(ids, gpt2),
        "single": decoded_or_raised(sub, torch.tensor([case["single_id"]]), gpt2),
    }


@token_conversion
@split(setup=_text_case, produce=_converted_text)
def test_token_conversion_agrees_with_reference(outputs, case, ref, gpt2):
    """hidden: random texts, some with <|endoftext|>, all with a character split over tokens, to ids and back;
    a random single id as a (1,) tensor"""
    expect_equal_tensor(outputs["ids"], ref.text_to_token_ids(case["text"], gpt2), "text_to_token_ids of a random text")
    expect_split_characters_decoded(
        outputs["text"], case["text"], SPLIT_CHARACTERS, "token_ids_to_text of a random text's ids"
    )
    single = outputs["single"]
    expect_type(single, dict, "token_ids_to_text of a (1,) tensor")
    if single["raised"] is not None:
        fail(f"token_ids_to_text of a (1,) tensor holding a single id raised {single['raised']}")
    expect(
        single["text"] == ref.token_ids_to_text(torch.tensor([case["single_id"]]), gpt2),
        "token_ids_to_text of a (1,) tensor holding a single id does not give that token's text",
    )


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
            loader_loss(
                sub.calc_loss_loader(case["batches"], model, "cpu", num_batches=num_batches),
                f"calc_loss_loader(..., num_batches={num_batches})",
            )
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
        expect_type(value, dict, f"calc_loss_loader(..., num_batches={num_batches})")
        got = expect_number(value["value"], f"calc_loss_loader(..., num_batches={num_batches})")
        expected = ref.calc_loss_loader(batches, model, "cpu", num_batches=num_batches)
        expect(
            math.isclose(got, expected, rel_tol=1e-5),
            f"calc_loss_loader over {len(batches)} batches with "
            f"num_batches={num_batches} gave {got:.6f}; expected {expected:.6f}",
        )
        expect_float_loss(value, f"calc_loss_loader(..., num_batches={num_batches})")


def _trained(function, case: dict) -> dict:
    """Runs a training function on a fresh run built from case["run"] with case["settings"], its model handed
    over in eval mode; returns what it returned, the model's parameters afterwards and what `watched_training` saw."""
    run = training_run(**case["run"])
    run.model.eval()
    result, _, _, watch = run_training_function(function, run, **case["settings"])
    return {"result": result, "params": parameter_state(run.model), "watch": watch}


def _numbers(values, what: str) -> list[float]:
    """A returned list of numbers (a list, tuple or 1-d tensor) as floats; fails naming `what` otherwise."""
    expect_type(values, (list, tuple, torch.Tensor), what)
    if isinstance(values, torch.Tensor):
        expect(values.dim() == 1, f"{what} should be a list of numbers; got a tensor of shape {tuple(values.shape)}")
    return [expect_number(value, f"an entry of {what}") for value in values]


def _expect_same_run(outputs: dict, expected: dict, what: str, case: dict) -> None:
    """The submission's run (`_trained`) stepped the optimizer it was given, evaluated at the right steps,
    returned the reference's lists and left the same weights."""
    settings = case["settings"]
    epochs = settings["num_epochs"] if "num_epochs" in settings else settings["n_epochs"]
    expect_training_conduct(outputs["watch"], what, settings["eval_freq"], case["run"]["train_batches"], epochs)
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
        # Learning rates are far below the losses' tolerance: each list is compared on its own scale.
        scale = min(1.0, max((abs(value) for value in expected_values), default=1.0))
        expect_close(
            torch.tensor(values),
            torch.tensor(expected_values),
            f"{what}'s result {index}",
            atol=1e-4 * scale,
            rtol=1e-4,
        )
    for name, expected_param in expected["params"].items():
        expect_close(outputs["params"][name], expected_param, f"the model's {name} after {what}", atol=1e-4, rtol=1e-4)


def _simple_run_case(seed):
    rng = random.Random(seed)
    # Every seed has 2+ epochs, eval_freq 2+ and epochs whose length is no multiple of eval_freq, so that
    # steps counted from 1, or from 0 again in every epoch, evaluate at other steps.
    eval_freq = rng.randint(2, 4)
    settings = {"num_epochs": rng.randint(2, 3), "eval_freq": eval_freq, "eval_iter": rng.randint(1, 3)}
    batches, lr = rng.choice([b for b in range(2, 7) if b % eval_freq]), rng.choice([0.005, 0.02])
    return {"run": {"seed": seed % 1000, "lr": lr, "train_batches": batches}, "settings": settings}


def _simple_run(sub, case):
    return _trained(sub.train_model_simple, case)


@train_loop
@split(setup=_simple_run_case, produce=_simple_run)
def test_train_model_simple_agrees_with_reference(outputs, case, ref):
    """hidden: a run with random epochs, eval_freq and eval_iter"""
    _expect_same_run(outputs, _trained(ref.train_model_simple, case), "train_model_simple", case)


def _scheduled_run_case(seed):
    rng = random.Random(seed)
    batches, epochs = rng.randint(2, 5), rng.randint(2, 3)  # 2+ epochs: total steps span every epoch
    settings = {
        "n_epochs": epochs,
        "eval_freq": rng.randint(1, 4),
        "eval_iter": rng.randint(1, 2),
        "warmup_steps": rng.randint(1, batches - 1),  # inside the first epoch: the decay spans every epoch
        "initial_lr": rng.choice([1e-4, 5e-5]),  # never the defaults, so rates left at them show
        "min_lr": rng.choice([5e-6, 1e-5]),
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
    _expect_same_run(outputs, _trained(ref.train_model, case), "train_model", case)


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
    """The student's learning rate at every step of the run, its last included; at a step where
    learning_rate_at raised an error, the error's name instead (as {"raised": name})."""
    rates = []
    for step in range(case["total"] + 1):
        try:
            rates.append(_rate_at(sub.learning_rate_at, step, case))
        except ArithmeticError as exc:
            rates.append({"raised": type(exc).__name__})
    return {"rates": rates}


def schedule_mistakes(step: int, peak_lr: float, warmup_steps: int, total_steps: int, initial_lr: float, min_lr: float):
    """(description, the rate that mistake gives at `step`) of known mistakes in learning_rate_at (None where
    the mistake gives the right rate or no rate at all)."""
    decay_steps = total_steps - warmup_steps
    from_zero = peak_lr * step / warmup_steps if step < warmup_steps else None
    early = None
    if step >= warmup_steps and decay_steps > 1:
        progress = (step - warmup_steps) / (decay_steps - 1)
        early = min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    return (
        ("warms up from 0 instead of from initial_lr: step 0 has the rate initial_lr", from_zero),
        (
            "divides the decay's progress by total_steps - warmup_steps - 1 instead of total_steps - warmup_steps, "
            "so the cosine reaches min_lr a step early",
            early,
        ),
    )


def expect_no_schedule_mistake(
    rates: dict, right: dict, peak_lr, warmup_steps, total_steps, initial_lr, min_lr
) -> None:
    """Compare: fails naming a mistake of `schedule_mistakes` when every rate of `rates` (step -> the
    student's rate) that differs from the reference's (`right`, step -> rate) is the rate that mistake gives."""
    wrong = {step: rate for step, rate in rates.items() if not math.isclose(rate, right[step], rel_tol=1e-6)}
    if not wrong:
        return
    for index, (description, _) in enumerate(
        schedule_mistakes(0, peak_lr, warmup_steps, total_steps, initial_lr, min_lr)
    ):
        given = {
            step: schedule_mistakes(step, peak_lr, warmup_steps, total_steps, initial_lr, min_lr)[index][1]
            for step in wrong
        }
        if all(value is not None and math.isclose(wrong[step], value, rel_tol=1e-6) for step, value in given.items()):
            fail(f"learning_rate_at {description}")


@training_extras
@split(setup=_schedule_case, produce=_rates)
def test_learning_rate_agrees_with_reference(outputs, case, ref):
    """hidden: the schedule at every step of a random run length"""
    total, warmup = case["total"], case["warmup"]
    rates = outputs["rates"]
    expect_list(rates, total + 1, "the learning rates of every step")
    for step, value in enumerate(rates):
        if isinstance(value, dict):
            fail(f"learning_rate_at raised {value.get('raised')} at step {step} of {total} ({warmup} warm-up steps)")
    expect_no_schedule_mistake(
        {step: expect_number(value, f"learning_rate_at({step}, ...)") for step, value in enumerate(rates)},
        {step: _rate_at(ref.learning_rate_at, step, case) for step in range(total + 1)},
        case["peak"],
        warmup,
        total,
        case["initial"],
        case["minimum"],
    )
    for step, value in enumerate(rates):
        got = expect_number(value, f"learning_rate_at({step}, ...)")
        expected = _rate_at(ref.learning_rate_at, step, case)
        expect(
            math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12),
            f"learning_rate_at differs from the reference at step {step} of a hidden schedule",
        )


def _generate_case(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    vocab, context = rng.randint(5, 40), rng.randint(2, 6)
    prompt = torch.randint(0, vocab, (1, rng.randint(1, context + 2)))
    steps = rng.randint(1, 8)
    logits = torch.randn(SAMPLED_VOCAB) * 1.5
    k, temperature = rng.randint(2, 5), rng.choice([0.7, 1.0, 1.8])
    # A counting model gives token 0 after the vocabulary's last: the prompt ends `before` tokens short of it.
    eos_vocab, before = rng.randint(5, 20), rng.randint(0, 4)
    eos_prompt = [rng.randrange(eos_vocab) for _ in range(rng.randint(0, 3))] + [eos_vocab - 1 - before]
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
        "eos_vocab": eos_vocab,
        "eos_prompt": torch.tensor([eos_prompt]),
        "eos_max_new_tokens": before + 1 + rng.randint(1, 5),
    }


# The settings of the eos_id=0 runs, every one on every seed.
EOS_ZERO_KWARGS = ({}, {"temperature": 0.8}, {"temperature": 1.0, "top_k": 3})


def _eos_zero_runs(generate_function, case: dict) -> list:
    """generate(..., eos_id=0) on a counting model, for each of EOS_ZERO_KWARGS."""
    runs = []
    for kwargs in EOS_ZERO_KWARGS:
        torch.manual_seed(case["sampling_seed"])
        runs.append(
            generate_function(
                CountingModel(case["eos_vocab"]),
                case["eos_prompt"].clone(),
                case["eos_max_new_tokens"],
                4,
                eos_id=0,
                **kwargs,
            )
        )
    return runs


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
    return {"greedy": greedy, "sampled": sampled, "eos_zero": _eos_zero_runs(sub.generate, case)}


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
    """hidden: greedy continuations and the top-k distribution on random models; eos_id=0 stops generation"""
    expect_equal_tensor(outputs["greedy"], _greedy(ref.generate, case), "greedy generate(...)")
    _expect_top_k_frequencies(outputs["sampled"], case["logits"], case["top_k"], case["temperature"])
    expect_list(outputs["eos_zero"], len(EOS_ZERO_KWARGS), "the generate results with eos_id=0")
    for kwargs, out, expected in zip(
        EOS_ZERO_KWARGS, outputs["eos_zero"], _eos_zero_runs(ref.generate, case), strict=True
    ):
        expect_stopped_at_eos_zero(out, expected, f"generate(..., eos_id=0, {kwargs})")


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


def _loading_case(seed):
    rng = random.Random(seed)
    modes = [True, False]
    rng.shuffle(modes)
    return {
        "seed": seed % 1000,
        "steps": rng.randint(0, 3),
        "modes": modes,
        "code_key": rng.choice(["note", "epoch", "config", "metadata"]),
    }


def _modes_after_loading(load_checkpoint, case: dict, tmp_path) -> list[bool]:
    """For each mode of case["modes"], the model's mode after load_checkpoint restored a checkpoint into it."""
    original = training_run(seed=case["seed"], train_batches=CHECKPOINT_BATCHES)
    _train_on(original, list(original.train_loader)[: case["steps"]])
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"checkpoint_{case['seed']}.pth"
    write_book_checkpoint(original, path)
    modes = []
    for training in case["modes"]:
        resumed = training_run(seed=case["seed"] + 1, train_batches=CHECKPOINT_BATCHES)
        resumed.model.train(training)
        load_checkpoint(resumed.model, resumed.optimizer, path)
        modes.append(resumed.model.training)
    return modes


def _loaded(sub, case, tmp_path):
    """The modes after the student's load_checkpoint, and what it did with a file that carries code."""
    return {
        "modes": _modes_after_loading(sub.load_checkpoint, case, tmp_path / "student"),
        "code": load_code_carrying_checkpoint(sub, tmp_path, seed=case["seed"] + 2, key=case["code_key"]),
    }


@checkpoint
@split(setup=_loading_case, produce=_loaded)
def test_loading_keeps_the_mode_and_refuses_code(outputs, case, ref, tmp_path):
    """hidden: models in train and in eval mode keep it through loading; a file that carries code is refused"""
    expect_modes_kept(outputs["modes"], _modes_after_loading(ref.load_checkpoint, case, tmp_path))
    expect_code_refused(outputs["code"])


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


def _loaded_model(solution, case: dict) -> dict:
    """The parameters of `solution`'s GPTModel after its load_weights_into_gpt loaded the checkpoint, and
    its logits on the case's ids."""
    model = solution.GPTModel(case["cfg"]).eval()
    solution.load_weights_into_gpt(model, {name: tensor.clone() for name, tensor in case["params"].items()})
    with torch.no_grad():
        return {"state": parameter_state(model), "logits": model(case["ids"])}


def _student_loaded_model(sub, case):
    return _loaded_model(sub, case)


@load_gpt2_weights
@split(setup=_gpt2_case, produce=_student_loaded_model)
def test_loaded_weights_agree_with_reference(outputs, case, ref):
    """hidden: a random GPT-2 checkpoint of a random size loads to the same parameters and logits as with the reference"""
    expected = _loaded_model(ref, case)
    expect_every_block_loaded(outputs["state"], expected["state"])
    expect_close(
        outputs["logits"],
        expected["logits"],
        "the logits after loading a GPT-2 checkpoint",
        atol=1e-4,
        rtol=1e-4,
    )
