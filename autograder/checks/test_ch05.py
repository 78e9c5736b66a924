"""Public checks of chapter 5: losses, the training loops, sampling, checkpoints and GPT-2 weights.

Training runs use a tiny model with GPTModel's attribute names on a few fixed
batches (`training_setups`), so a whole run takes milliseconds; its losses,
learning rates, gradient norms and final weights are compared with the
reference's recorded run. An optimizer hook observes each step from outside the
submission (learning rate, gradient norm), and the model logs the mode of every
forward call, so evaluation without eval()/no_grad shows. Sampling is checked
statistically over thousands of draws, so any correct way of drawing passes.

Every check is split (`autograder.split`): its produce step runs the submission
and returns what it observed as plain data (results, step logs, weights, printed
text, the modes of the model's calls), and its compare step decides on that data alone.
"""

from __future__ import annotations

import contextlib
import io
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook

from autograder.checks.modules import load_parameters, parameter_state
from autograder.checks.toy_models import (
    CharTokenizer,
    CountingModel,
    FixedLogitsModel,
    TinyLanguageModel,
    WindowLanguageModel,
)
from autograder.checks.training_setups import (
    ALPHABET,
    CONTEXT,
    START_CONTEXT,
    StepLog,
    TrainingRun,
    training_run,
)
from autograder.compare import (
    CheckFailure,
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

token_conversion = pytest.mark.ch05_token_conversion
loss = pytest.mark.ch05_loss
train_loop = pytest.mark.ch05_train_loop
generate = pytest.mark.ch05_generate
checkpoint = pytest.mark.ch05_checkpoint
training_extras = pytest.mark.ch05_training_extras
load_gpt2_weights = pytest.mark.ch05_load_gpt2_weights

# Losses after a few steps of float32 training agree to ~1e-6 whichever way they are summed.
LOSS_TOL = 1e-4


def _batch_loss(model, inputs, targets) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())


def _model_names() -> list[str]:
    """The names of a TinyLanguageModel's parameters, which are its whole state dict (it has no buffers)."""
    return list(TinyLanguageModel(len(ALPHABET), CONTEXT).state_dict())


def _tensor(value, what: str):
    """Produce: `value` once it is a tensor (fails naming `what` otherwise, before it becomes data)."""
    expect_tensor(value, what)
    return value


# ---------------------------------------------------------------- ch05.token_conversion

BATCH_TEXT = "Every effort moves you"
ENDOFTEXT_TEXT = "the end<|endoftext|>A new"
ROUND_TRIP_TEXT = "Every effort moves you forward.\nNew line<|endoftext|>"


def _batch_ids(sub, gpt2):
    return _tensor(sub.text_to_token_ids(BATCH_TEXT, gpt2), "text_to_token_ids(...)")


@token_conversion
@split(produce=_batch_ids)
def test_text_to_token_ids_is_a_batch_of_one(outputs, gpt2):
    """encodes with the tokenizer into a (1, num_tokens) int64 tensor"""
    expected = gpt2.encode(BATCH_TEXT)
    expect_tensor(outputs, "text_to_token_ids(...)", shape=(1, len(expected)), dtype=torch.int64)
    expect_equal_tensor(outputs, torch.tensor([expected]), "text_to_token_ids(...)")


def _endoftext_ids(sub, gpt2):
    try:
        ids = sub.text_to_token_ids(ENDOFTEXT_TEXT, gpt2)
    except ValueError as exc:
        fail(f"text_to_token_ids raised ValueError on a text with <|endoftext|>: allow it as a special token ({exc})")
    return _tensor(ids, "text_to_token_ids of a text with <|endoftext|>")


@token_conversion
@split(produce=_endoftext_ids)
def test_text_to_token_ids_allows_endoftext(outputs, gpt2):
    """<|endoftext|> in the text becomes its special token id"""
    expected = gpt2.encode(ENDOFTEXT_TEXT, allowed_special={"<|endoftext|>"})
    expect_equal_tensor(outputs, torch.tensor([expected]), "text_to_token_ids of a text with <|endoftext|>")


def _round_trip_ids(gpt2) -> list[int]:
    return gpt2.encode(ROUND_TRIP_TEXT, allowed_special={"<|endoftext|>"})


def decoded_or_raised(sub, ids: torch.Tensor, gpt2) -> dict:
    """Produce: the student's text of `ids`, or the name of the error token_ids_to_text raised instead."""
    try:
        return {"text": sub.token_ids_to_text(ids, gpt2), "raised": None}
    except Exception as exc:  # noqa: BLE001 - any failure on a valid input is the student's to fix
        return {"text": None, "raised": type(exc).__name__}


def _decoded_texts(sub, gpt2):
    """The student's text of the ids as a (1, num_tokens) batch, as a plain (num_tokens,) tensor, and of
    the first token alone as a (1, 1) batch and as a (1,) tensor; for the last three, the name of the error
    it raised instead, if any (`decoded_or_raised`)."""
    ids = _round_trip_ids(gpt2)
    batch = sub.token_ids_to_text(torch.tensor([ids]), gpt2)
    expect_type(batch, str, "token_ids_to_text(...)")
    return {
        "batch": batch,
        "plain": decoded_or_raised(sub, torch.tensor(ids), gpt2),
        "single": decoded_or_raised(sub, torch.tensor([ids[:1]]), gpt2),
        "single_plain": decoded_or_raised(sub, torch.tensor(ids[:1]), gpt2),
    }


# (shape of the one-token input, its name) in the order _decoded_texts decodes them.
SINGLE_TOKEN_INPUTS = (("single", "(1, 1) batch"), ("single_plain", "(1,) tensor"))


@token_conversion
@split(produce=_decoded_texts)
def test_token_ids_to_text_round_trips(outputs, gpt2):
    """decodes a (1, num_tokens) batch, a plain (num_tokens,) tensor and a single token, (1, 1) or (1,), back to the text"""
    ids = _round_trip_ids(gpt2)
    decoded = outputs["batch"]
    expect_type(decoded, str, "token_ids_to_text(...)")
    expect(
        decoded == ROUND_TRIP_TEXT,
        f"token_ids_to_text of a (1, {len(ids)}) batch gave {decoded[:40]!r}; expected the original text",
    )
    plain = outputs["plain"]
    expect_type(plain, dict, f"token_ids_to_text of a ({len(ids)},) tensor")
    if plain["raised"] is not None:
        fail(
            f"token_ids_to_text of a ({len(ids)},) tensor raised {plain['raised']}: a plain (num_tokens,) tensor, "
            "without a batch dimension, must decode too"
        )
    decoded = plain["text"]
    expect_type(decoded, str, f"token_ids_to_text of a ({len(ids)},) tensor")
    expect(
        decoded == ROUND_TRIP_TEXT,
        f"token_ids_to_text of a ({len(ids)},) tensor gave {decoded[:40]!r}; expected the original text",
    )
    first = gpt2.decode(ids[:1])
    for key, shape in SINGLE_TOKEN_INPUTS:
        result = outputs[key]
        expect_type(result, dict, f"token_ids_to_text of a {shape}")
        if result["raised"] is not None:
            fail(
                f"token_ids_to_text of a {shape}, a single token, raised {result['raised']}: a one-token text must "
                "decode too (a tensor that loses all its dimensions has no list of ids)"
            )
        decoded = result["text"]
        expect(
            decoded == first, f"token_ids_to_text of a {shape}, a single token, gave {decoded!r}; expected {first!r}"
        )


# Each of the llama and the two CJK characters is one character whose UTF-8 bytes GPT-2 spreads over 2 or 3 tokens.
SPLIT_TEXT = "A llama 🦙 reads 語 and 猫."


def expect_split_characters_decoded(decoded: str, text: str, split_characters, what: str) -> None:
    """Compare: `decoded` is `text`, in which each of `split_characters` spans several tokens; names the
    replacement characters or the gaps of token-by-token decoding."""
    expect_type(decoded, str, what)
    if "\ufffd" in decoded and "\ufffd" not in text:
        fail(
            f"{what} gave replacement characters (\ufffd): the UTF-8 bytes of one character can span several "
            "tokens, which alone are no valid text; decode all the ids in one call, not token by token"
        )
    if decoded != text and decoded == "".join(c for c in text if c not in split_characters):
        fail(
            f"{what} dropped the characters whose UTF-8 bytes span several tokens: decoding each token's bytes "
            "on its own loses them; decode all the ids in one call"
        )
    expect(decoded == text, f"{what} does not give back the original text")


def _split_character_text(sub, gpt2):
    return sub.token_ids_to_text(torch.tensor([gpt2.encode(SPLIT_TEXT)]), gpt2)


@token_conversion
@split(produce=_split_character_text)
def test_token_ids_to_text_decodes_characters_split_over_tokens(outputs, gpt2):
    """a character whose bytes span several tokens decodes whole: the sequence is decoded at once"""
    expect_type(outputs, str, "token_ids_to_text(...)")
    expect_split_characters_decoded(
        outputs, SPLIT_TEXT, "🦙語猫", f"token_ids_to_text of the ids of {SPLIT_TEXT!r} ({outputs!r})"
    )


# ---------------------------------------------------------------- ch05.loss


def _loss_case(seed: int = 3):
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, len(ALPHABET), (3, 5), generator=generator)
    targets = torch.randint(0, len(ALPHABET), (3, 5), generator=generator)
    return model, inputs, targets


def _batch_loss_value(sub):
    model, inputs, targets = _loss_case()
    return _tensor(sub.calc_loss_batch(inputs, targets, model, "cpu"), "calc_loss_batch(...)")


@loss
@split(produce=_batch_loss_value)
def test_calc_loss_batch_is_the_cross_entropy_against_the_targets(outputs):
    """the mean cross-entropy of every position's logits against its target token"""
    expect_tensor(outputs, "calc_loss_batch(...)")
    expect(
        outputs.numel() == 1,
        f"calc_loss_batch should return one number (a 0-d tensor); got shape {tuple(outputs.shape)}",
    )
    model, inputs, targets = _loss_case()
    expected = _batch_loss(model, inputs, targets)
    got = outputs.reshape(())
    logits = model(inputs).detach()
    misordered = "logits and targets flattened in different orders (pair each position's logits with its own target)"
    mistakes = [
        (
            "the loss against the inputs instead of target_batch",
            F.cross_entropy(logits.flatten(0, 1), inputs.flatten()),
        ),
        (
            "a sum over positions instead of the mean",
            F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum"),
        ),
        (misordered, F.cross_entropy(logits.flatten(0, 1), targets.T.flatten())),
        (misordered, F.cross_entropy(logits.transpose(0, 1).flatten(0, 1), targets.flatten())),
        (
            "each position's loss against the token after its target: the loader already shifted target_batch",
            F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten()),
        ),
        ("the loss of the last position only", F.cross_entropy(logits[:, -1], targets[:, -1])),
    ]
    for description, value in mistakes:
        if torch.isclose(got, value, atol=1e-5) and not torch.isclose(got, expected, atol=1e-5):
            fail(f"calc_loss_batch computes {description}")
    expect_close(got, expected, "calc_loss_batch(...)", atol=1e-5)


def _loss_gradients(sub):
    """Whether the student's loss is a tensor with a graph and, after its backward(), each model
    parameter's gradient by name (None where none reached it)."""
    model, inputs, targets = _loss_case(4)
    result = sub.calc_loss_batch(inputs, targets, model, torch.device("cpu"))
    has_graph = isinstance(result, torch.Tensor) and result.requires_grad
    if has_graph:
        result.backward()
    return {"has_graph": has_graph, "grads": {name: p.grad for name, p in model.named_parameters()}}


@loss
@split(produce=_loss_gradients)
def test_calc_loss_batch_backpropagates_into_the_model(outputs):
    """the loss keeps its graph: backward() gives every parameter a gradient"""
    expect(
        outputs["has_graph"] is True,
        "calc_loss_batch's result has no gradient graph: return the tensor, not .item(), and do not use no_grad",
    )
    grads = outputs["grads"]
    missing = [
        name
        for name in _model_names()
        if not (isinstance(grads.get(name), torch.Tensor) and grads[name].abs().sum() > 0)
    ]
    expect(not missing, f"after backward() the model parameter {missing[:1]} got no gradient")


def _loader_case(num_batches: int, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randint(0, len(ALPHABET), (2, 4), generator=generator),
            torch.randint(0, len(ALPHABET), (2, 4), generator=generator),
        )
        for _ in range(num_batches)
    ]


# The num_batches of the 5-batch loader's calc_loss_loader calls.
AVERAGED_NUM_BATCHES = (None, 2, 5)


def _averaging_model() -> TinyLanguageModel:
    return TinyLanguageModel(len(ALPHABET), CONTEXT, seed=6)


def loader_loss(value, what: str) -> dict:
    """Produce: a calc_loss_loader result as {"value": float, "is_float": whether it was a Python float,
    "type": the name of its type} (fails naming `what` unless it is a number or a one-element tensor)."""
    return {
        "value": expect_number(value, what),
        "is_float": isinstance(value, float),
        "type": type(value).__name__,
    }


def expect_float_loss(result, what: str) -> float:
    """Compare: a `loader_loss` result was a Python float; returns its value."""
    expect_type(result, dict, what)
    got = expect_number(result["value"], what)
    if result["is_float"] is not True:
        fail(
            f"{what} returned a {result['type']}; return a Python float, as the text asks: take .item() of each "
            "batch loss (or of the average), so the result holds no tensor and no graph"
        )
    return got


def _loader_averages(sub):
    """The student's calc_loss_loader of the 5-batch loader for each of AVERAGED_NUM_BATCHES (`loader_loss`)."""
    model, batches = _averaging_model(), _loader_case(5)
    return [
        loader_loss(
            sub.calc_loss_loader(batches, model, "cpu", num_batches=num_batches),
            f"calc_loss_loader(..., num_batches={num_batches})",
        )
        for num_batches in AVERAGED_NUM_BATCHES
    ]


@loss
@split(produce=_loader_averages)
def test_calc_loss_loader_averages_the_first_num_batches(outputs):
    """the mean of the first num_batches batch losses, as a float; None means every batch"""
    model = _averaging_model()
    losses = [float(_batch_loss(model, x, y)) for x, y in _loader_case(5)]
    expected = {None: sum(losses) / 5, 2: sum(losses[:2]) / 2, 5: sum(losses) / 5}
    expect_list(outputs, len(AVERAGED_NUM_BATCHES), "the calc_loss_loader results")
    for num_batches, value in zip(AVERAGED_NUM_BATCHES, outputs, strict=True):
        what = f"num_batches={num_batches}"
        expect_type(value, dict, f"calc_loss_loader(..., {what})")
        got = expect_number(value["value"], f"calc_loss_loader(..., {what})")
        if num_batches == 2 and math.isclose(got, sum(losses) / 5, rel_tol=1e-5):
            fail("calc_loss_loader(..., num_batches=2) averaged every batch: stop after num_batches batches")
        if num_batches == 2 and math.isclose(got, sum(losses[:2]) / 5, rel_tol=1e-5):
            fail("calc_loss_loader(..., num_batches=2) divided the sum of 2 batch losses by all 5 batches")
        expect(
            math.isclose(got, expected[num_batches], rel_tol=1e-5, abs_tol=1e-6),
            f"calc_loss_loader(..., {what}) over 5 batches gave {got:.6f}; expected {expected[num_batches]:.6f}",
        )
        expect_float_loss(value, f"calc_loss_loader(..., {what})")


def _capping_case():
    """The model and the 3-batch loader of the num_batches=10 check."""
    return TinyLanguageModel(len(ALPHABET), CONTEXT, seed=7), _loader_case(3, seed=8)


def _capped_loss(sub):
    model, batches = _capping_case()
    return loader_loss(
        sub.calc_loss_loader(batches, model, "cpu", num_batches=10), "calc_loss_loader(..., num_batches=10)"
    )


@loss
@split(produce=_capped_loss)
def test_calc_loss_loader_caps_num_batches_at_the_loader_length(outputs):
    """num_batches larger than len(data_loader) averages every batch"""
    model, batches = _capping_case()
    losses = [float(_batch_loss(model, x, y)) for x, y in batches]
    expect_type(outputs, dict, "calc_loss_loader(..., num_batches=10)")
    got = expect_number(outputs["value"], "calc_loss_loader(..., num_batches=10)")
    if math.isclose(got, sum(losses) / 10, rel_tol=1e-5):
        fail(
            "calc_loss_loader(..., num_batches=10) on a 3-batch loader divided by 10: use min(num_batches, len(data_loader))"
        )
    expect(
        math.isclose(got, sum(losses) / 3, rel_tol=1e-5),
        f"calc_loss_loader(..., num_batches=10) on a 3-batch loader gave {got:.6f}; expected {sum(losses) / 3:.6f}",
    )
    expect_float_loss(outputs, "calc_loss_loader(..., num_batches=10)")


# The num_batches of the empty loader's calc_loss_loader calls.
EMPTY_NUM_BATCHES = (None, 3)


def _empty_loader_losses(sub):
    """For each of EMPTY_NUM_BATCHES, the student's calc_loss_loader of an empty loader:
    {"raised": "ZeroDivisionError"} where it divided by zero, else {"raised": None, "result": `loader_loss`}."""
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=9)
    losses = []
    for num_batches in EMPTY_NUM_BATCHES:
        try:
            value = sub.calc_loss_loader([], model, "cpu", num_batches=num_batches)
        except ZeroDivisionError:
            losses.append({"raised": "ZeroDivisionError", "result": None})
            continue
        losses.append(
            {"raised": None, "result": loader_loss(value, f"calc_loss_loader([], ..., num_batches={num_batches})")}
        )
    return losses


@loss
@split(produce=_empty_loader_losses)
def test_calc_loss_loader_of_an_empty_loader_is_nan(outputs):
    """an empty loader gives nan, not an error"""
    expect_list(outputs, len(EMPTY_NUM_BATCHES), "the calc_loss_loader results")
    for num_batches, result in zip(EMPTY_NUM_BATCHES, outputs, strict=True):
        if result["raised"] == "ZeroDivisionError":
            fail(
                f"calc_loss_loader([], ..., num_batches={num_batches}) divided by zero: return float('nan') for an empty loader"
            )
        what = f"calc_loss_loader([], ..., num_batches={num_batches})"
        expect_type(result["result"], dict, what)
        got = expect_number(result["result"]["value"], what)
        expect(math.isnan(got), f"{what} gave {got}; expected nan")
        expect_float_loss(result["result"], what)


# ---------------------------------------------------------------- ch05.train_loop


@contextlib.contextmanager
def optimizers_built():
    """Produce: a list that collects the class name of every optimizer constructed inside the block."""
    built: list[str] = []
    original_init = torch.optim.Optimizer.__init__

    def init(optimizer, *args, **kwargs) -> None:
        built.append(type(optimizer).__name__)
        original_init(optimizer, *args, **kwargs)

    torch.optim.Optimizer.__init__ = init
    try:
        yield built
    finally:
        torch.optim.Optimizer.__init__ = original_init


@contextlib.contextmanager
def watched_training(run: TrainingRun):
    """Produce: watches a training function at work on `run` from outside, in a dict filled as it goes.

    "steps": the optimizer steps of any optimizer; "foreign_steps": those of an optimizer other than
    run.optimizer; "built": the class names of the optimizers constructed meanwhile; "evaluated_after":
    for every forward call on the first validation batch (one per evaluation), the optimizer steps taken
    before it; "handed_over_training": whether the model was in train mode when training began;
    "training_modes": whether the model was in train mode at each forward call with gradients.
    """
    watch = {
        "steps": 0,
        "foreign_steps": 0,
        "built": [],
        "evaluated_after": [],
        "handed_over_training": run.model.training,
        "training_modes": [],
    }
    first_val_inputs = next(iter(run.val_loader))[0]

    def before_step(optimizer, args, kwargs) -> None:
        watch["steps"] += 1
        watch["foreign_steps"] += optimizer is not run.optimizer

    def before_forward(module, args) -> None:
        if torch.is_grad_enabled():
            watch["training_modes"].append(module.training)
        inputs = args[0] if args else None
        if (
            isinstance(inputs, torch.Tensor)
            and inputs.shape == first_val_inputs.shape
            and torch.equal(inputs.cpu(), first_val_inputs)
        ):
            watch["evaluated_after"].append(watch["steps"])

    step_hook = register_optimizer_step_pre_hook(before_step)
    forward_hook = run.model.register_forward_pre_hook(before_forward)
    try:
        with optimizers_built() as watch["built"]:
            yield watch
    finally:
        step_hook.remove()
        forward_hook.remove()


def run_training_function(function, run: TrainingRun, **kwargs) -> tuple[tuple, StepLog, str, dict]:
    """Calls a training function the way the book does; returns its results, the step log, what it printed
    and what `watched_training` saw. An error raised after the function built an optimizer of its own
    fails the check naming that."""
    log = StepLog(run)
    printed = io.StringIO()
    with watched_training(run) as watch, contextlib.redirect_stdout(printed):
        try:
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
        except CheckFailure:
            raise
        except Exception as exc:
            if watch["built"]:
                fail(
                    f"{getattr(function, '__name__', 'the training function')} built a new {watch['built'][0]} "
                    f"instead of training with the optimizer it was given, then raised {type(exc).__name__}: {exc}"
                )
            raise
    return results, log, printed.getvalue(), watch


def expect_first_step_in_train_mode(training_modes: list, handed_over_training: bool, what: str) -> None:
    """Compare: a model handed over in eval mode took its first training step in train mode.

    training_modes: whether the model was in train mode at each forward call with gradients."""
    expect_type(training_modes, list, f"the modes of {what}'s training steps")
    if handed_over_training is False and training_modes and training_modes[0] is not True:
        fail(
            f"{what} took its first training step in eval mode (dropout off): the model came in eval mode; "
            "put it in train mode (model.train()) at the start of every epoch"
        )


def expect_training_conduct(watch: dict, what: str, eval_freq: int, batches: int, epochs: int) -> None:
    """Compare: the training function (`watched_training`) put a model handed over in eval mode into train
    mode before training, stepped only the optimizer it was given, and evaluated after every step whose
    number, from 0 over all epochs of `batches` batches, is a multiple of eval_freq."""
    expect_type(watch, dict, f"what {what} did")
    expect_first_step_in_train_mode(watch["training_modes"], watch["handed_over_training"], what)
    if watch["foreign_steps"]:
        fail(
            f"{what} took {watch['foreign_steps']} of its {watch['steps']} optimizer steps with an optimizer it "
            f"built ({', '.join(dict.fromkeys(watch['built'])) or 'a new one'}) instead of the one it was given: a "
            "new optimizer loses the caller's settings and restarts AdamW's moving averages; step the optimizer passed in"
        )
    evaluated = sorted(set(watch["evaluated_after"]))  # an evaluation may run the first validation batch twice
    expected = [step + 1 for step in range(batches * epochs) if step % eval_freq == 0]
    if not evaluated or evaluated == expected:
        return
    if evaluated == [after - 1 for after in expected]:
        fail(f"{what} evaluated before the optimizer step of each evaluation step: evaluate after optimizer.step()")
    per_epoch = [epoch * batches + i + 1 for epoch in range(epochs) for i in range(batches) if i % eval_freq == 0]
    if evaluated == per_epoch:
        fail(
            f"{what} numbers the steps from 0 again in every epoch (eval_freq={eval_freq}, {batches} batches per "
            "epoch): number them from 0 once, across all epochs, and evaluate when that number is a multiple of eval_freq"
        )
    steps = ", ".join(str(after - 1) for after in evaluated[:6]) + (", ..." if len(evaluated) > 6 else "")
    fail(
        f"{what} evaluated after the steps numbered {steps} (from 0 over all epochs) with eval_freq={eval_freq}: "
        "evaluate after every step whose number is a multiple of eval_freq, step 0 included"
    )


def _expect_results(results, count: int, what: str) -> list[list[float]]:
    expect(
        isinstance(results, (tuple, list)) and len(results) == count,
        f"{what} should return a tuple of {count} lists; got {type(results).__name__}"
        + (f" of length {len(results)}" if isinstance(results, (tuple, list)) else ""),
    )
    return [[expect_number(v, f"an entry of {what}'s results") for v in values] for values in results]


def _recorded_run(function, run: TrainingRun, case: dict, what: str, settings: tuple[str, ...]) -> dict:
    """Produce: `run` trained by the student's training function with the `settings` of a recorded case.
    Its results as lists of floats, the step log's gradient norms and learning rates (the first parameter
    group's and every group's, per step), the final weights and what it printed."""
    results, log, printed, watch = run_training_function(function, run, **{name: case[name] for name in settings})
    return {
        "results": _expect_results(results, len(case["results"]), what),
        "grad_norms": log.grad_norms,
        "lrs": log.lrs,
        "group_lrs": log.group_lrs,
        "state": parameter_state(run.model),
        "printed": printed,
        "watch": watch,
    }


def _expect_recorded_run(outputs: dict, case: dict, what: str, names: tuple) -> None:
    """Compares a training run (`_recorded_run`) with the reference's: evaluation steps, tokens seen,
    losses, gradients, weights, samples."""
    expected = case["results"]
    batches = len(training_run(seed=case["seed"]).train_loader)
    epochs = case["num_epochs"] if "num_epochs" in case else case["n_epochs"]
    expect_training_conduct(outputs["watch"], what, case["eval_freq"], batches, epochs)
    got = _expect_results(outputs["results"], len(expected), what)
    grad_norms = outputs["grad_norms"]
    evals = len(expected[0])
    for values, name in zip(got[:3], names[:3], strict=True):
        if len(values) != evals:
            fail(
                f"{what} returned {len(values)} {name} for {len(grad_norms)} steps with eval_freq={case['eval_freq']}; "
                f"expected {evals}: evaluate after every step whose number, counted from 0 over all epochs, "
                "is a multiple of eval_freq"
            )
    steps = len(case["grad_norms"])
    expect(
        len(grad_norms) == steps,
        f"{what} made {len(grad_norms)} optimizer steps; expected {steps} (one per batch, {batches} batches per epoch)",
    )
    tokens = got[2]
    if tokens != expected[2]:
        fail(
            f"{what}: tokens seen {tokens[:3]}... expected {expected[2][:3]}...: count the input tokens of every "
            "batch trained on so far, this step's batch included"
        )
    for step, (norm, expected_norm) in enumerate(zip(grad_norms, case["grad_norms"], strict=True)):
        if not math.isclose(norm, expected_norm, rel_tol=1e-3, abs_tol=1e-6):
            hint = (
                " (step 0 agrees: do the gradients of earlier batches pile up? reset them before each backward)"
                if step > 0 and norm > expected_norm
                else ""
            )
            fail(
                f"{what}: the gradient norm at step {step} is {norm:.5g}; the reference run's is {expected_norm:.5g}{hint}"
            )
    for values, expected_values, name in zip(got[:2], expected[:2], names[:2], strict=True):
        expect_close(
            torch.tensor(values), torch.tensor(expected_values), f"{what}'s {name}", atol=LOSS_TOL, rtol=LOSS_TOL
        )
    for name, expected_tensor in case["state"].items():
        expect_close(outputs["state"][name], expected_tensor, f"the model's {name} after {what}", atol=1e-4, rtol=1e-4)
    printed = outputs["printed"]
    expect_type(printed, str, f"what {what} printed")
    for sample in case["samples"]:
        expect(
            sample in printed,
            f"{what} did not print the sample {sample[:30]!r}...: after every epoch, print the "
            "start context with its 50-token greedy continuation",
        )


SIMPLE_SETTINGS = ("num_epochs", "eval_freq", "eval_iter")


def _simple_run(sub, recorded):
    case = recorded["train"]
    run = training_run(seed=case["seed"])
    return _recorded_run(sub.train_model_simple, run, case, "train_model_simple", SIMPLE_SETTINGS)


@train_loop
@split(produce=_simple_run)
def test_train_model_simple_reproduces_the_reference_run(outputs, recorded):
    """same evaluation steps, tokens seen, losses, gradients, final weights and printed samples as the reference"""
    _expect_recorded_run(
        outputs, recorded["train"], "train_model_simple", ("training losses", "validation losses", "token counts")
    )


def _lowering_run() -> TrainingRun:
    return training_run(seed=11, lr=0.05)


def _trained_weights(sub):
    """The model's parameters after 3 epochs of the student's train_model_simple."""
    run = _lowering_run()
    run_training_function(sub.train_model_simple, run, num_epochs=3, eval_freq=100, eval_iter=1)
    return parameter_state(run.model)


@train_loop
@split(produce=_trained_weights)
def test_train_model_simple_lowers_the_loss(outputs):
    """a few epochs on a small fixed dataset lower the training loss"""
    run = _lowering_run()
    before = sum(float(_batch_loss(run.model, x, y)) for x, y in run.train_loader)
    load_parameters(run.model, outputs, "the trained model")
    after = sum(float(_batch_loss(run.model, x, y)) for x, y in run.train_loader)
    expect(
        after < before * 0.9,
        f"after 3 epochs the training loss went from {before / 5:.3f} to {after / 5:.3f}; "
        "the optimizer steps should lower it",
    )


def _calls_and_mode(run: TrainingRun) -> dict:
    """Produce: the (training, grad_enabled) of every forward call of the run's model, and whether it
    is in train mode now."""
    return {"calls": run.model.calls, "training": run.model.training}


def _expect_modes(calls: list, what: str) -> None:
    """Forward calls without gradients must run in eval mode, and those with gradients in train mode.

    calls: (training, grad_enabled) of each forward call, as `TinyLanguageModel.calls` logs them."""
    for training, grad_enabled in calls:
        if not grad_enabled and training:
            fail(
                f"{what} ran the model without gradients but in train mode: call model.eval() first, so dropout is off"
            )
        if grad_enabled and not training:
            fail(
                f"{what} ran the model in eval mode with gradients enabled: evaluate under torch.no_grad() and "
                "return the model to train mode before training"
            )


def _modes_of_training(sub):
    """The model's calls and mode (`_calls_and_mode`) after training with the student's train_model_simple,
    the model handed over in eval mode."""
    run = training_run(seed=12, drop_rate=0.5)
    run.model.eval()
    run_training_function(sub.train_model_simple, run, num_epochs=2, eval_freq=2, eval_iter=1)
    return _calls_and_mode(run)


@train_loop
@split(produce=_modes_of_training)
def test_evaluation_runs_in_eval_mode_without_gradients(outputs):
    """evaluation and samples run in eval() under no_grad; training steps in train() with gradients, from the
    first one on, though the model came in eval mode"""
    calls = outputs["calls"]
    expect_type(calls, list, "the model's calls")
    expect_first_step_in_train_mode([training for training, grad in calls if grad], False, "train_model_simple")
    expect(
        any(not grad for _, grad in calls),
        "train_model_simple never ran the model without gradients: evaluate and generate samples under torch.no_grad()",
    )
    _expect_modes(calls, "train_model_simple")
    expect(outputs["training"] is True, "after train_model_simple the model is in eval mode; leave it in train mode")


EVALUATED = ("train_loss", "val_loss")


def _evaluation_run() -> TrainingRun:
    return training_run(seed=13, drop_rate=0.5)


def _evaluation(sub):
    """The student's evaluate_model with eval_iter=2, as floats, and the model's calls and mode after it."""
    run = _evaluation_run()
    result = sub.evaluate_model(run.model, run.train_loader, run.val_loader, "cpu", 2)
    expect(
        isinstance(result, (tuple, list)) and len(result) == 2, "evaluate_model should return (train_loss, val_loss)"
    )
    losses = [expect_number(value, f"evaluate_model's {name}") for value, name in zip(result, EVALUATED, strict=True)]
    return {"result": losses, **_calls_and_mode(run)}


@train_loop
@split(produce=_evaluation)
def test_evaluate_model_gives_both_losses_and_restores_train_mode(outputs):
    """(train_loss, val_loss) over eval_iter batches each, with dropout off, and the model back in train mode"""
    run = _evaluation_run()
    run.model.eval()
    expected = [
        sum(float(_batch_loss(run.model, x, y)) for x, y in list(loader)[:2]) / 2
        for loader in (run.train_loader, run.val_loader)
    ]
    result, calls = outputs["result"], outputs["calls"]
    expect(
        isinstance(result, (tuple, list)) and len(result) == 2, "evaluate_model should return (train_loss, val_loss)"
    )
    _expect_modes(calls, "evaluate_model")
    for value, want, name in zip(result, expected, EVALUATED, strict=True):
        got = expect_number(value, f"evaluate_model's {name}")
        expect(
            math.isclose(got, want, rel_tol=1e-5),
            f"evaluate_model's {name} is {got:.6f}; expected {want:.6f} "
            "(the mean loss of the first eval_iter batches, dropout off)",
        )
    expect(
        len(calls) == 4,
        f"evaluate_model ran the model {len(calls)} times for eval_iter=2; expected 4 (2 batches of each loader)",
    )
    expect(outputs["training"] is True, "after evaluate_model the model is in eval mode; put it back in train mode")


def _sample_and_newline(case: dict) -> tuple[str, str]:
    """The last recorded sample, and the character of its continuation that the check's tokenizer decodes as a newline."""
    sample = case["samples"][-1]
    continuation = sample[len(START_CONTEXT) :]
    candidates = [c for c in dict.fromkeys(continuation) if c not in START_CONTEXT and c != continuation[-1]]
    return sample, max(candidates, key=continuation.count)


def _printed_sample(sub, recorded):
    """What the student's generate_and_print_sample printed for the recorded trained model, with a
    tokenizer that decodes a character inside the continuation as a newline; the model's calls and mode."""
    case = recorded["train"]
    run = training_run(seed=case["seed"])
    load_parameters(run.model, case["state"], "the model")
    run.model.train()
    _, newline = _sample_and_newline(case)
    tokenizer = CharTokenizer(ALPHABET.replace(newline, "\n"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        sub.generate_and_print_sample(run.model, tokenizer, "cpu", run.start_context)
    return {"printed": printed.getvalue(), **_calls_and_mode(run)}


@train_loop
@split(produce=_printed_sample)
def test_generate_and_print_sample_prints_the_greedy_continuation(outputs, recorded):
    """one line: the start context and 50 greedy tokens, newlines as spaces; the model back in train mode"""
    sample, newline = _sample_and_newline(recorded["train"])
    printed = outputs["printed"]
    expect_type(printed, str, "what generate_and_print_sample printed")
    if sample.replace(newline, "\n") in printed:
        fail("generate_and_print_sample printed the sample over several lines: show its newlines as spaces")
    expect(
        sample.replace(newline, " ") in printed,
        "generate_and_print_sample printed "
        f"{printed[:60]!r}...; expected the start context followed by the model's 50 greedy tokens",
    )
    _expect_modes(outputs["calls"], "generate_and_print_sample")
    expect(
        outputs["training"] is True,
        "after generate_and_print_sample the model is in eval mode; put it back in train mode",
    )


# ---------------------------------------------------------------- ch05.generate


# Sampling checks draw DRAWS tokens per distribution. The total variation distance of
# 2,500 draws from the distribution drawn from stays below 0.05 in 99.99% of runs;
# every mistake checked for moves the draws 0.18 or more away from the right one.
DRAWS = 2500
MAX_DISTANCE = 0.06
LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, 1.5, -2.0])


def _draws(sub, logits: torch.Tensor, n: int, seed: int, **kwargs) -> torch.Tensor:
    """Produce: n tokens sampled from fixed logits in one generate call, after a one-token prompt -> (1, n + 1)."""
    torch.manual_seed(seed)
    out = sub.generate(FixedLogitsModel(logits), torch.tensor([[0]]), n, 4, **kwargs)
    expect_tensor(out, "generate(...)", shape=(1, n + 1))
    return out


def _frequencies(out, n: int, vocab_size: int) -> torch.Tensor:
    """Compare: the frequency of each token id among the n drawn tokens of `out` (`_draws`) -> (vocab_size,)."""
    expect_tensor(out, "generate(...)", shape=(1, n + 1))
    return torch.bincount(out[0, 1:], minlength=vocab_size).double() / n


def _distance(frequencies: torch.Tensor, probabilities: torch.Tensor) -> float:
    """Total variation distance between two distributions over the same tokens."""
    return 0.5 * (frequencies - probabilities.double()).abs().sum().item()


def _expect_distribution(frequencies: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    distance = _distance(frequencies, expected)
    if distance > MAX_DISTANCE:
        token = int((frequencies - expected).abs().argmax())
        fail(
            f"{what}: token {token} was drawn {frequencies[token]:.1%} of the time; it should be {expected[token]:.1%} "
            f"(total variation distance {distance:.2f} over {DRAWS} draws)"
        )


GREEDY_KWARGS = ({}, {"top_k": 3})


def _greedy_what(kwargs: dict, prompt: torch.Tensor) -> str:
    return f"generate(..., {kwargs or 'temperature=0'}) from a {prompt.shape[1]}-token prompt"


def _greedy_runs(sub, recorded):
    """The student's generate from each recorded prompt, with each of GREEDY_KWARGS."""
    case = recorded["greedy"]
    model = WindowLanguageModel(case["vocab_size"], case["context_size"], seed=case["seed"])
    return [
        [
            _tensor(
                sub.generate(model, prompt.clone(), case["max_new_tokens"], case["context_size"], **kwargs),
                _greedy_what(kwargs, prompt),
            )
            for kwargs in GREEDY_KWARGS
        ]
        for prompt in case["prompts"]
    ]


@generate
@split(produce=_greedy_runs)
def test_generate_at_temperature_zero_is_greedy(outputs, recorded):
    """temperature 0 (the default) takes the argmax; top_k does not change that"""
    case = recorded["greedy"]
    expect_list(outputs, len(case["prompts"]), "the generate results")
    for prompt, expected, outs in zip(case["prompts"], case["generated"], outputs, strict=True):
        expect_list(outs, len(GREEDY_KWARGS), "the generate results")
        for kwargs, out in zip(GREEDY_KWARGS, outs, strict=True):
            expect_equal_tensor(out, expected, _greedy_what(kwargs, prompt))


TEMPERATURES = (0.5, 2.0)


def _tempered_draws(sub):
    """DRAWS tokens from LOGITS at each of TEMPERATURES, the i-th from torch seed i."""
    return [
        _draws(sub, LOGITS, DRAWS, seed=seed, temperature=temperature) for seed, temperature in enumerate(TEMPERATURES)
    ]


@generate
@split(produce=_tempered_draws)
def test_generate_samples_from_the_tempered_softmax(outputs):
    """token frequencies follow softmax(logits / temperature): sharper at temperature 0.5, flatter at 2"""
    expect_list(outputs, len(TEMPERATURES), "the generate results")
    for temperature, out in zip(TEMPERATURES, outputs, strict=True):
        frequencies = _frequencies(out, DRAWS, len(LOGITS))
        expected = torch.softmax(LOGITS / temperature, dim=0)
        closest = min(
            (1.0, 1 / temperature), key=lambda other: _distance(frequencies, torch.softmax(LOGITS / other, dim=0))
        )
        if _distance(frequencies, torch.softmax(LOGITS / closest, dim=0)) < _distance(frequencies, expected):
            fail(
                f"at temperature {temperature:g} the draws follow the distribution of temperature {closest:g}: "
                "softmax(logits / temperature) is the distribution to draw from"
            )
        _expect_distribution(frequencies, expected, f"generate(..., temperature={temperature:g})")


def _top_k_draws(sub):
    return _draws(sub, LOGITS, DRAWS, seed=7, temperature=1.5, top_k=3)


@generate
@split(produce=_top_k_draws)
def test_generate_top_k_draws_only_the_k_best(outputs):
    """with top_k=3 only the 3 highest-logit tokens appear, in proportion to their tempered probabilities"""
    top = torch.topk(LOGITS, 3).indices
    frequencies = _frequencies(outputs, DRAWS, len(LOGITS))
    outside = [i for i in range(len(LOGITS)) if frequencies[i] > 0 and i not in top]
    if outside:
        rank = int((LOGITS > LOGITS[outside[0]]).sum()) + 1
        fail(
            f"with top_k=3, generate drew the token with the {rank}th largest logit {int(frequencies[outside[0]] * DRAWS)} "
            "times; only the 3 largest may be drawn"
        )
    masked = torch.full_like(LOGITS, float("-inf"))
    masked[top] = LOGITS[top]
    _expect_distribution(frequencies, torch.softmax(masked / 1.5, dim=0), "generate(..., temperature=1.5, top_k=3)")


NO_GRAD_KWARGS = ({}, {"temperature": 1.0, "top_k": 2})


def _grad_modes(sub):
    """For each of NO_GRAD_KWARGS, torch.is_grad_enabled() at each model call of the student's generate."""
    model = CountingModel(12)
    modes = []
    for kwargs in NO_GRAD_KWARGS:
        model.grad_enabled.clear()
        sub.generate(model, torch.tensor([[2, 3]]), 3, 4, **kwargs)
        modes.append(list(model.grad_enabled))
    return modes


@generate
@split(produce=_grad_modes)
def test_generate_runs_the_model_without_gradients(outputs):
    """sampling never backpropagates, so every forward call runs without gradient tracking"""
    expect_list(outputs, len(NO_GRAD_KWARGS), "the generate runs")
    for kwargs, grad_enabled in zip(NO_GRAD_KWARGS, outputs, strict=True):
        expect(
            isinstance(grad_enabled, list) and len(grad_enabled) > 0,
            f"generate(..., {kwargs or 'temperature=0'}) never ran the model",
        )
        expect(
            not any(grad_enabled),
            f"generate(..., {kwargs or 'temperature=0'}) ran the model with gradient "
            "tracking on, which keeps every step's graph in memory: run the model under torch.no_grad()",
        )


EOS_KWARGS = ({}, {"temperature": 0.5}, {"temperature": 1.0, "top_k": 2})


def _eos_runs(sub):
    """The student's generate on a counting model with eos_id=7 from [[2, 3]] and with eos_id=0 from [[8, 9]]
    (12 tokens, so 0 follows 11), for each of EOS_KWARGS, and without eos_id."""
    model = CountingModel(12)
    stopped = [
        _tensor(
            sub.generate(model, torch.tensor([[2, 3]]), 8, 4, eos_id=7, **kwargs), f"generate(..., eos_id=7, {kwargs})"
        )
        for kwargs in EOS_KWARGS
    ]
    stopped_at_zero = [
        _tensor(
            sub.generate(model, torch.tensor([[8, 9]]), 8, 4, eos_id=0, **kwargs), f"generate(..., eos_id=0, {kwargs})"
        )
        for kwargs in EOS_KWARGS
    ]
    unstopped = _tensor(sub.generate(model, torch.tensor([[2, 3]]), 8, 4), "generate(...) without eos_id")
    return {"with_eos": stopped, "with_eos_zero": stopped_at_zero, "without_eos": unstopped}


def expect_stopped_at_eos_zero(out, expected: torch.Tensor, what: str) -> None:
    """Compare: `out` of generate(..., eos_id=0) on a counting model is `expected`, the prompt and the tokens
    counted up to the vocabulary's last, after which the model gives token 0."""
    expect_tensor(out, what)
    length = expected.shape[1]
    if out.dim() == 2 and out.shape[1] > length + 1 and out[0, length] == 0:
        fail(
            f"{what} did not stop when it drew token 0: 0 is an eos_id like any other, though Python reads it as "
            "false; test whether eos_id is None, not whether it is truthy"
        )
    if out.dim() == 2 and out.shape[1] == length + 1 and out[0, -1] == 0:
        fail("generate appended eos_id before stopping; stop without appending it")
    expect_equal_tensor(out, expected, f"{what} on a model that counts up and wraps around to 0")


@generate
@split(produce=_eos_runs)
def test_generate_stops_at_eos_without_appending_it(outputs):
    """drawing eos_id, 0 included, ends generation before max_new_tokens, and eos_id is not in the output"""
    expect_list(outputs["with_eos"], len(EOS_KWARGS), "the generate results")
    for kwargs, out in zip(EOS_KWARGS, outputs["with_eos"], strict=True):
        expect_tensor(out, f"generate(..., eos_id=7, {kwargs})")
        expected = torch.tensor([[2, 3, 4, 5, 6]])
        if out.shape[1] == 6 and out[0, -1] == 7:
            fail("generate appended eos_id before stopping; stop without appending it")
        if out.shape[1] == 10:
            fail("generate did not stop at eos_id: after drawing it, return at once")
        expect_equal_tensor(out, expected, f"generate(..., eos_id=7, {kwargs}) on a model that counts up from 3")
    expect_list(outputs["with_eos_zero"], len(EOS_KWARGS), "the generate results with eos_id=0")
    for kwargs, out in zip(EOS_KWARGS, outputs["with_eos_zero"], strict=True):
        expect_stopped_at_eos_zero(out, torch.tensor([[8, 9, 10, 11]]), f"generate(..., eos_id=0, {kwargs})")
    expect_equal_tensor(
        outputs["without_eos"], torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]), "generate(...) without eos_id"
    )


# ---------------------------------------------------------------- ch05.checkpoint


def _steps(run: TrainingRun, batches) -> None:
    for x, y in batches:
        run.optimizer.zero_grad()
        F.cross_entropy(run.model(x).flatten(0, 1), y.flatten()).backward()
        run.optimizer.step()


CHECKPOINT_KEYS = {"model_state_dict", "optimizer_state_dict"}


def _saved_checkpoint(sub, tmp_path):
    """Saves a run after two steps with the student's save_checkpoint and reads the file back as the book does.

    Returns the model's state dict, whether the file exists, the name of the error torch.load(weights_only=True)
    raised (None if it read the file), what it read (the type, and the keys of a dict), and, where the dict
    has the book's keys, the model state dict's entries under the model's names and the number of
    parameters with optimizer state (None unless the optimizer state dict is a dict)."""
    run = training_run(seed=21)
    _steps(run, list(run.train_loader)[:2])
    path = tmp_path / "model_and_optimizer.pth"
    sub.save_checkpoint(run.model, run.optimizer, path)
    read = {"model_state": run.model.state_dict(), "exists": path.exists(), "load_error": None}
    if not read["exists"]:
        return read
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the student's to fix
        return {**read, "load_error": type(exc).__name__}
    read |= {"type": type(saved).__name__, "keys": list(saved) if isinstance(saved, dict) else None}
    if read["keys"] is None or not CHECKPOINT_KEYS <= set(saved):
        return read
    model_state, optimizer_state = saved["model_state_dict"], saved["optimizer_state_dict"]
    return {
        **read,
        "saved_model_state": {name: model_state[name] for name in read["model_state"] if name in model_state},
        "optimizer_state_entries": len(optimizer_state.get("state", {})) if isinstance(optimizer_state, dict) else None,
    }


@checkpoint
@split(produce=_saved_checkpoint)
def test_checkpoint_has_the_books_format(outputs):
    """one torch.save'd dict with model_state_dict and optimizer_state_dict, loadable with weights_only=True"""
    expect(outputs["exists"] is True, "save_checkpoint wrote nothing at the given path")
    if outputs["load_error"] is not None:
        fail(
            f"torch.load(path, weights_only=True) cannot read the checkpoint ({outputs['load_error']}): save state dicts, not modules"
        )
    keys = outputs["keys"]
    expect(
        isinstance(keys, list) and CHECKPOINT_KEYS <= set(keys),
        f"the checkpoint should be a dict with keys 'model_state_dict' and 'optimizer_state_dict'; got "
        f"{sorted(keys) if isinstance(keys, list) else outputs['type']}",
    )
    saved, names = outputs["saved_model_state"], _model_names()
    for name in names:
        expect(name in saved, f"model_state_dict has no entry '{name}'")
        expect_close(saved[name], outputs["model_state"][name], f"model_state_dict['{name}']", atol=0, rtol=0)
    expect(
        outputs["optimizer_state_entries"] == len(names),
        "optimizer_state_dict should be optimizer.state_dict(), with AdamW's state for every parameter",
    )


def _resumed_run(sub, tmp_path):
    """Saves a run after three steps with the student's save_checkpoint, restores it with load_checkpoint into
    a run of other initial weights and takes the next step in both.

    Returns what load_checkpoint returned (whether None, whether a tuple), the restored model's state dict and
    the saved one under the same names, the number of parameters with optimizer state after restoring, and
    the parameters of both runs after the next step."""
    original = training_run(seed=22)
    batches = list(original.train_loader)
    _steps(original, batches[:3])
    path = tmp_path / "checkpoint.pth"
    sub.save_checkpoint(original.model, original.optimizer, path)
    _steps(original, batches[3:4])

    resumed = training_run(seed=23)  # other initial weights
    with optimizers_built() as built:
        try:
            returned = sub.load_checkpoint(resumed.model, resumed.optimizer, path)
        except CheckFailure:
            raise
        except Exception as exc:
            if built:
                fail(
                    f"load_checkpoint built a new {built[0]} instead of restoring the optimizer it was given, then "
                    f"raised {type(exc).__name__}: {exc}"
                )
            raise
    saved = torch.load(path, weights_only=True)
    restored = {name: tensor.clone() for name, tensor in resumed.model.state_dict().items()}
    observed = {
        "returned_none": returned is None,
        "returned_tuple": isinstance(returned, tuple),
        "restored": restored,
        "saved": {name: saved["model_state_dict"][name] for name in restored},
        "optimizer_state_entries": len(resumed.optimizer.state_dict()["state"]),
    }
    _steps(resumed, batches[3:4])
    return {**observed, "resumed": parameter_state(resumed.model), "uninterrupted": parameter_state(original.model)}


@checkpoint
@split(produce=_resumed_run)
def test_training_resumes_exactly_from_a_checkpoint(outputs):
    """a fresh model and optimizer restored from the checkpoint take the same next step as the original run"""
    expect(outputs["returned_none"] is True or outputs["returned_tuple"] is True, "load_checkpoint restores in place")
    names = _model_names()
    for name in names:
        if not torch.equal(outputs["restored"][name], outputs["saved"][name]):
            fail(f"after load_checkpoint the model's {name} is not the saved one: load the model's state dict")
    expect(
        outputs["optimizer_state_entries"] == len(names),
        "after load_checkpoint the optimizer has no state: AdamW's moving averages and step counts are lost; "
        "save and load the optimizer's state dict too",
    )
    for name in names:
        expect_close(
            outputs["resumed"][name],
            outputs["uninterrupted"][name],
            f"{name} after one step from the checkpoint",
            atol=1e-7,
            rtol=1e-6,
        )


def write_book_checkpoint(run: TrainingRun, path, **extra) -> None:
    """Produce: writes `run`'s model and optimizer in the book's checkpoint format, with `extra` entries added."""
    torch.save(
        {"model_state_dict": run.model.state_dict(), "optimizer_state_dict": run.optimizer.state_dict(), **extra}, path
    )


# The train/eval mode of the model before load_checkpoint, for each load of the mode check.
MODES_BEFORE_LOADING = (True, False)


def _mode(training: bool) -> str:
    return "train" if training else "eval"


def _modes_after_loading(sub, tmp_path):
    """For each of MODES_BEFORE_LOADING: whether the model is in train mode after the student's load_checkpoint
    restored a checkpoint (written by the check) into it."""
    path = tmp_path / "checkpoint.pth"
    original = training_run(seed=24)
    _steps(original, list(original.train_loader)[:2])
    write_book_checkpoint(original, path)
    modes = []
    for training in MODES_BEFORE_LOADING:
        resumed = training_run(seed=25)
        resumed.model.train(training)
        sub.load_checkpoint(resumed.model, resumed.optimizer, path)
        modes.append(resumed.model.training)
    return modes


def expect_modes_kept(modes_after, modes_before) -> None:
    """Compare: after each load_checkpoint the model was in the mode it was in before."""
    expect_list(modes_after, len(modes_before), "the modes after load_checkpoint")
    for before, after in zip(modes_before, modes_after, strict=True):
        if after is not before:
            fail(
                f"load_checkpoint put a model that was in {_mode(before)} mode into {_mode(after)} mode: restore the "
                "weights and the optimizer only, and leave the model's mode to the caller"
            )


@checkpoint
@split(produce=_modes_after_loading)
def test_load_checkpoint_keeps_the_models_mode(outputs):
    """a model in train mode stays in train mode after loading, one in eval mode in eval mode"""
    expect_modes_kept(outputs, MODES_BEFORE_LOADING)


class RunsCode:
    """A pickled instance of it calls os.mkdir(marker) when unpickled: stands for code a checkpoint file can carry.
    Loading with weights_only=True refuses it before anything runs."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def load_code_carrying_checkpoint(sub, tmp_path, seed: int, key: str = "note") -> dict:
    """Produce: a checkpoint in the book's format with a `RunsCode` under `key`, passed to the student's
    load_checkpoint after the same checkpoint without it loaded (so that refusing every file fails).
    Returns the name of the error it raised (None if none) and whether the code ran."""
    marker = tmp_path / f"code_ran_{seed}"
    path, clean_path = tmp_path / f"carries_code_{seed}.pth", tmp_path / f"clean_{seed}.pth"
    original = training_run(seed=seed)
    write_book_checkpoint(original, clean_path)
    write_book_checkpoint(original, path, **{key: RunsCode(str(marker))})
    resumed = training_run(seed=seed + 1)
    sub.load_checkpoint(resumed.model, resumed.optimizer, clean_path)
    try:
        sub.load_checkpoint(resumed.model, resumed.optimizer, path)
    except Exception as exc:  # noqa: BLE001 - any refusal is the right reaction
        raised = type(exc).__name__
    else:
        raised = None
    return {"raised": raised, "code_ran": marker.exists()}


def expect_code_refused(outputs) -> None:
    """Compare: load_checkpoint raised on a file that carries code, and the code did not run."""
    expect_type(outputs, dict, "what load_checkpoint did with a file that carries code")
    if outputs["code_ran"] is not False:
        fail(
            "load_checkpoint ran code that a checkpoint file carried: a .pth file is a pickle, and torch.load with "
            "weights_only=False runs whatever it holds; load with weights_only=True"
        )
    if outputs["raised"] is None:
        fail(
            "load_checkpoint returned normally from a file that carries code: let the error of "
            "torch.load(..., weights_only=True) reach the caller instead of catching it"
        )


def _code_carrying_load(sub, tmp_path):
    return load_code_carrying_checkpoint(sub, tmp_path, seed=26)


@checkpoint
@split(produce=_code_carrying_load)
def test_load_checkpoint_refuses_a_file_that_carries_code(outputs):
    """a checkpoint file whose pickle would run code makes load_checkpoint raise, and the code does not run"""
    expect_code_refused(outputs)


# ---------------------------------------------------------------- ch05.training_extras

WARM_UP_STEPS = (0, 1, 5, 9)


def _warm_up_rates(sub):
    """The student's learning_rate_at at each of WARM_UP_STEPS, and at step 0 with the default initial_lr."""
    rates = [
        expect_number(
            sub.learning_rate_at(step, 1e-3, 10, 50, initial_lr=1e-4, min_lr=1e-5), f"learning_rate_at({step}, ...)"
        )
        for step in WARM_UP_STEPS
    ]
    default = expect_number(sub.learning_rate_at(0, 1e-3, 10, 50), "learning_rate_at(0, ...)")
    return {"rates": rates, "default_initial_lr": default}


@training_extras
@split(produce=_warm_up_rates)
def test_learning_rate_warms_up_linearly(outputs):
    """from initial_lr at step 0 up by (peak_lr - initial_lr) / warmup_steps per step"""
    expect_list(outputs["rates"], len(WARM_UP_STEPS), "the learning_rate_at results")
    for step, value in zip(WARM_UP_STEPS, outputs["rates"], strict=True):
        got = expect_number(value, f"learning_rate_at({step}, ...)")
        expected = 1e-4 + step * (1e-3 - 1e-4) / 10
        expect(
            math.isclose(got, expected, rel_tol=1e-6),
            f"learning_rate_at(step={step}, peak_lr=1e-3, warmup_steps=10, initial_lr=1e-4) is {got:.6g}; expected {expected:.6g}",
        )
    got = expect_number(outputs["default_initial_lr"], "learning_rate_at(0, ...)")
    expect(
        math.isclose(got, 3e-5, rel_tol=1e-6),
        f"with the default initial_lr, step 0 has learning rate {got:.6g}; expected 3e-05",
    )


# (step, expected rate, when) along the decay of a 50-step schedule with 10 warm-up steps from peak 1e-3 to 1e-5.
DECAY_CASES = (
    (10, 1e-3, "when warm-up ends (step warmup_steps)"),
    (30, (1e-3 + 1e-5) / 2, "halfway through the decay"),
    (50, 1e-5, "at step total_steps"),
    (20, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi / 4)), "a quarter into the decay"),
)


def _decay_rates(sub):
    """The student's learning_rate_at at each step of DECAY_CASES, and at step 50 with the default min_lr."""
    rates = [
        expect_number(
            sub.learning_rate_at(step, 1e-3, 10, 50, initial_lr=1e-4, min_lr=1e-5), f"learning_rate_at({step}, ...)"
        )
        for step, _, _ in DECAY_CASES
    ]
    default = expect_number(sub.learning_rate_at(50, 1e-3, 10, 50), "learning_rate_at(50, ...)")
    return {"rates": rates, "default_min_lr": default}


@training_extras
@split(produce=_decay_rates)
def test_learning_rate_decays_along_a_cosine(outputs):
    """peak_lr when warm-up ends, the midpoint halfway through the decay, min_lr at total_steps"""
    expect_list(outputs["rates"], len(DECAY_CASES), "the learning_rate_at results")
    for (step, expected, when), value in zip(DECAY_CASES, outputs["rates"], strict=True):
        got = expect_number(value, f"learning_rate_at({step}, ...)")
        expect(
            math.isclose(got, expected, rel_tol=1e-6),
            f"learning_rate_at(step={step}, peak_lr=1e-3, warmup_steps=10, total_steps=50, min_lr=1e-5), {when}, "
            f"is {got:.6g}; expected {expected:.6g}",
        )
    got = expect_number(outputs["default_min_lr"], "learning_rate_at(50, ...)")
    expect(
        math.isclose(got, 1e-6, rel_tol=1e-6),
        f"with the default min_lr, the last step has learning rate {got:.6g}; expected 1e-06",
    )


EXTRAS_SETTINGS = ("n_epochs", "eval_freq", "eval_iter", "warmup_steps", "initial_lr", "min_lr")


def _extras_run(sub, recorded):
    case = recorded["extras"]
    run = training_run(seed=case["seed"], lr=case["lr"])
    return _recorded_run(sub.train_model, run, case, "train_model", EXTRAS_SETTINGS)


@training_extras
@split(produce=_extras_run)
def test_train_model_sets_the_schedule_before_every_step(outputs, recorded):
    """every parameter group steps with learning_rate_at(step) at every step, and track_lrs lists those rates"""
    case = recorded["extras"]
    got = _expect_results(outputs["results"], 4, "train_model")
    lrs, group_lrs = outputs["lrs"], outputs["group_lrs"]
    expected_lrs = case["lrs"]
    expect(
        len(lrs) == len(expected_lrs),
        f"train_model made {len(lrs)} optimizer steps; expected {len(expected_lrs)}",
    )
    expect_list(group_lrs, len(expected_lrs), "the learning rates of the parameter groups")
    for step, (lr, groups, expected) in enumerate(zip(lrs, group_lrs, expected_lrs, strict=True)):
        expect(
            all(rate == lr for rate in groups),
            f"step {step} ran with different learning rates in the optimizer's {len(groups)} parameter groups "
            f"({', '.join(f'{rate:.6g}' for rate in groups)}): set the learning rate of every parameter group",
        )
        expect(
            math.isclose(lr, expected, rel_tol=1e-6),
            f"step {step} ran with learning rate {lr:.6g}; the schedule gives {expected:.6g} "
            f"(peak {case['lr']} from the optimizer, {len(expected_lrs)} steps, warmup_steps={case['warmup_steps']})",
        )
    expect(
        len(got[3]) == len(expected_lrs)
        and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(got[3], expected_lrs, strict=True)),
        "track_lrs should hold the learning rate of every step, in order",
    )


def _clipped_grad_norms(sub):
    """The gradient norm at each optimizer step of the student's train_model with warmup_steps=4, on a
    model whose gradients are far above norm 1."""
    run = training_run(seed=31, optimizer="sgd", lr=1e-3, weight_scale=8.0)
    _, log, _, _ = run_training_function(sub.train_model, run, n_epochs=2, eval_freq=100, eval_iter=1, warmup_steps=4)
    return log.grad_norms


@training_extras
@split(produce=_clipped_grad_norms)
def test_train_model_clips_gradients_from_the_end_of_warm_up(outputs):
    """gradient norms above 1 are left alone during warm-up and clipped to 1.0 from step warmup_steps on"""
    expect(len(outputs) == 10, f"train_model made {len(outputs)} optimizer steps; expected 10")
    for step, norm in enumerate(outputs):
        if step < 4 and norm <= 1.0 + 1e-4:
            fail(
                f"the gradient was clipped at step {step}, during warm-up (warmup_steps=4): clip only from step warmup_steps on"
            )
        if step >= 4 and norm > 1.0 + 1e-4:
            fail(
                f"at step {step} (warmup_steps=4) the optimizer stepped with a gradient of norm {norm:.3g}: clip the "
                "gradients to a total norm of 1.0 between backward() and step() from step warmup_steps on"
            )


@training_extras
@split(produce=_extras_run)
def test_train_model_reproduces_the_reference_run(outputs, recorded):
    """same evaluation steps, tokens seen, losses, gradients, final weights and samples as the reference"""
    _expect_recorded_run(
        outputs,
        recorded["extras"],
        "train_model",
        ("training losses", "validation losses", "token counts", "learning rates"),
    )


# ---------------------------------------------------------------- ch05.load_gpt2_weights


def _small_gpt(sub, config: dict):
    return sub.GPTModel(
        {
            "vocab_size": config["vocab_size"],
            "context_length": config["n_positions"],
            "emb_dim": config["n_embd"],
            "n_heads": config["n_head"],
            "n_layers": config["n_layer"],
            "drop_rate": 0.0,
            "qkv_bias": True,
        }
    ).eval()


def _loaded(sub, case: dict):
    """Produce: the student's GPTModel after its load_weights_into_gpt loaded a copy of the recorded
    checkpoint, and that copy's tensors as loading left them (`_expect_checkpoint_untouched`)."""
    gpt = _small_gpt(sub, case["config"])
    params = {name: tensor.clone() for name, tensor in case["params"].items()}
    sub.load_weights_into_gpt(gpt, params)
    return gpt, {name: params[name] for name in case["params"]}


def _expect_checkpoint_untouched(checkpoint_after: dict, case: dict) -> None:
    """Compare: load_weights_into_gpt left every tensor of the checkpoint it was given as it was."""
    for name, tensor in case["params"].items():
        expect(
            torch.equal(checkpoint_after[name], tensor),
            f"load_weights_into_gpt changed the checkpoint's {name}; leave params as they are",
        )


def expect_every_block_loaded(state: dict, expected_state: dict) -> None:
    """Compare: fails naming the transformer blocks that kept their own weights when every parameter of
    those blocks, and nothing else, differs from `expected_state`."""
    expect_type(state, dict, "the loaded model's parameters")

    def loaded(name: str) -> bool:
        actual, expected = state.get(name), expected_state[name]
        return isinstance(actual, torch.Tensor) and actual.shape == expected.shape and torch.allclose(actual, expected)

    wrong = {name for name in expected_state if not loaded(name)}
    blocks = {}
    for name in expected_state:
        if name.startswith("trf_blocks."):
            blocks.setdefault(int(name.split(".")[1]), set()).add(name)
    missed = [index for index, names in sorted(blocks.items()) if names <= wrong]
    if missed and wrong == set().union(*(blocks[index] for index in missed)):
        listed = ", ".join(f"trf_blocks.{index} (GPT-2's h.{index})" for index in missed)
        fail(
            f"none of the parameters of {listed} were loaded, of the model's {len(blocks)} blocks: "
            f"load every block, h.0 to h.{len(blocks) - 1}"
        )


def _diagnose_parameter(name: str, actual: torch.Tensor, expected: torch.Tensor, state: dict) -> str | None:
    """What a wrong parameter holds instead, when it is a known mix-up."""
    if actual.dim() == 2 and actual.shape == expected.T.shape and torch.allclose(actual, expected.T):
        return f"{name} holds the transpose of the right values: Conv1D weights are (in_features, out_features), transpose them"
    if ".att.W_" in name:
        block = name.split(".att.")[0]
        for other in ("W_query", "W_key", "W_value"):
            other_name = f"{block}.att.{other}.{name.rsplit('.', 1)[1]}"
            if other_name != name and torch.allclose(actual, state[other_name]):
                return (
                    f"{name} holds what belongs in {other_name}: c_attn's last dimension holds "
                    "the query, key and value projections in that order"
                )
    for other_name, other in state.items():
        if other_name != name and other.shape == actual.shape and torch.allclose(actual, other):
            return f"{name} holds what belongs in {other_name}"
    if name == "out_head.weight":
        return "out_head.weight is not GPT-2's token embedding matrix wte.weight, which GPT-2 reuses as its output head"
    return None


def _loaded_gpt(sub, recorded):
    """The checkpoint after loading, the loaded model's parameters by name and its logits on the recorded ids
    (None, with the error as text, where its forward pass raised one)."""
    case = recorded["gpt2"]
    gpt, checkpoint_after = _loaded(sub, case)
    try:
        with torch.no_grad():
            logits, forward_error = gpt(case["ids"]), None
    except Exception as exc:  # noqa: BLE001 - reported after the parameters, which usually say why
        logits, forward_error = None, f"{type(exc).__name__}: {exc}"
    return {
        "checkpoint": checkpoint_after,
        "state": parameter_state(gpt),
        "logits": logits,
        "forward_error": forward_error,
    }


@load_gpt2_weights
@split(produce=_loaded_gpt)
def test_loaded_gpt_matches_hugging_face_logits(outputs, recorded):
    """a small GPT-2 checkpoint from transformers loads into GPTModel: every parameter and the logits match"""
    case = recorded["gpt2"]
    _expect_checkpoint_untouched(outputs["checkpoint"], case)
    state = outputs["state"]
    expect_every_block_loaded(state, case["gpt_state"])
    for name, expected in case["gpt_state"].items():
        actual = state[name]
        if actual.shape == expected.shape and torch.allclose(actual, expected):
            continue
        diagnosis = _diagnose_parameter(name, actual, expected, case["gpt_state"])
        if diagnosis:
            fail(diagnosis)
        if actual.shape != expected.shape:
            fail(f"{name} has shape {tuple(actual.shape)}; expected {tuple(expected.shape)}")
        fail(f"{name} does not hold GPT-2's values (max abs diff {(actual - expected).abs().max():.3g})")
    if outputs["forward_error"] is not None:
        fail(outputs["forward_error"])
    expect_close(
        outputs["logits"],
        case["logits"],
        "the loaded model's logits (Hugging Face GPT2LMHeadModel's on the same weights)",
        atol=1e-4,
        rtol=1e-4,
    )


def _loaded_gradients(sub, recorded):
    """The checkpoint after loading and, for each parameter of the loaded model, whether the backward
    pass of its summed logits reached it."""
    case = recorded["gpt2"]
    gpt, checkpoint_after = _loaded(sub, case)
    gpt(case["ids"]).sum().backward()
    return {
        "checkpoint": checkpoint_after,
        "got_gradient": {name: p.grad is not None for name, p in gpt.named_parameters()},
    }


@load_gpt2_weights
@split(produce=_loaded_gradients)
def test_loading_keeps_the_parameters_trainable(outputs, recorded):
    """after loading, the model's parameters are still nn.Parameters that receive gradients"""
    _expect_checkpoint_untouched(outputs["checkpoint"], recorded["gpt2"])
    got_gradient = outputs["got_gradient"]
    expect_type(got_gradient, dict, "the loaded model's parameters")
    frozen = [name for name, got in got_gradient.items() if got is not True]
    if frozen:
        fail(f"after loading, {frozen[0]} receives no gradient: keep the model's parameters as nn.Parameters")
    expect(
        len(got_gradient) == len(recorded["gpt2"]["gpt_state"]),
        "loading changed the number of the model's parameters",
    )


def _mismatched_load(sub, recorded):
    """The checkpoint after a matching load, then loading it into a model of half its context length:
    that model's pos_emb.weight shape and the name of the error the loading raised (None if none)."""
    case = recorded["gpt2"]
    _, checkpoint_after = _loaded(sub, case)  # a matching checkpoint loads
    gpt = _small_gpt(sub, {**case["config"], "n_positions": case["config"]["n_positions"] // 2})
    model_shape = list(gpt.pos_emb.weight.shape)
    try:
        sub.load_weights_into_gpt(gpt, {name: t.clone() for name, t in case["params"].items()})
    except Exception as exc:  # noqa: BLE001 - any error is the right reaction
        raised = type(exc).__name__
    else:
        raised = None
    return {"checkpoint": checkpoint_after, "pos_emb_shape": model_shape, "raised": raised}


@load_gpt2_weights
@split(produce=_mismatched_load)
def test_loading_a_mismatched_checkpoint_raises(outputs, recorded):
    """a checkpoint with a longer context than the model raises an error instead of loading silently"""
    case = recorded["gpt2"]
    _expect_checkpoint_untouched(outputs["checkpoint"], case)
    if isinstance(outputs["raised"], str):
        return
    fail(
        f"loading a checkpoint with wpe.weight of shape {tuple(case['params']['wpe.weight'].shape)} into a model with "
        f"pos_emb.weight of shape {tuple(outputs['pos_emb_shape'])} raised no error; check that shapes match"
    )
