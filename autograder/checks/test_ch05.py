"""Public checks of chapter 5: losses, the training loops, sampling, checkpoints and GPT-2 weights.

Training runs use a tiny model with GPTModel's attribute names on a few fixed
batches (`training_setups`), so a whole run takes milliseconds; its losses,
learning rates, gradient norms and final weights are compared with the
reference's recorded run. An optimizer hook observes each step from outside the
submission (learning rate, gradient norm), and the model logs the mode of every
forward call, so evaluation without eval()/no_grad shows. Sampling is checked
statistically over thousands of draws, so any correct way of drawing passes.
"""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch
import torch.nn.functional as F

from autograder.checks.modules import load_parameters, parameter_state
from autograder.checks.toy_models import (
    CharTokenizer,
    CountingModel,
    FixedLogitsModel,
    TinyLanguageModel,
    WindowLanguageModel,
)
from autograder.checks.training_setups import ALPHABET, CONTEXT, StepLog, TrainingRun, training_run
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_number,
    expect_tensor,
    expect_type,
    fail,
)

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


# ---------------------------------------------------------------- ch05.token_conversion


@token_conversion
def test_text_to_token_ids_is_a_batch_of_one(sub, gpt2):
    """encodes with the tokenizer into a (1, num_tokens) int64 tensor"""
    text = "Every effort moves you"
    ids = sub.text_to_token_ids(text, gpt2)
    expected = gpt2.encode(text)
    expect_tensor(ids, "text_to_token_ids(...)", shape=(1, len(expected)), dtype=torch.int64)
    expect_equal_tensor(ids, torch.tensor([expected]), "text_to_token_ids(...)")


@token_conversion
def test_text_to_token_ids_allows_endoftext(sub, gpt2):
    """<|endoftext|> in the text becomes its special token id"""
    text = "the end<|endoftext|>A new"
    try:
        ids = sub.text_to_token_ids(text, gpt2)
    except ValueError as exc:
        fail(f"text_to_token_ids raised ValueError on a text with <|endoftext|>: allow it as a special token ({exc})")
    expected = gpt2.encode(text, allowed_special={"<|endoftext|>"})
    expect_equal_tensor(ids, torch.tensor([expected]), "text_to_token_ids of a text with <|endoftext|>")


@token_conversion
def test_token_ids_to_text_round_trips(sub, gpt2):
    """decodes a (1, num_tokens) batch, a plain (num_tokens,) tensor and a one-token batch back to the text"""
    text = "Every effort moves you forward.\nNew line<|endoftext|>"
    ids = gpt2.encode(text, allowed_special={"<|endoftext|>"})
    decoded = sub.token_ids_to_text(torch.tensor([ids]), gpt2)
    expect_type(decoded, str, "token_ids_to_text(...)")
    expect(
        decoded == text,
        f"token_ids_to_text of a (1, {len(ids)}) batch gave {decoded[:40]!r}; expected the original text",
    )
    decoded = sub.token_ids_to_text(torch.tensor(ids), gpt2)
    expect(
        decoded == text,
        f"token_ids_to_text of a ({len(ids)},) tensor gave {decoded[:40]!r}; expected the original text",
    )
    first = gpt2.decode(ids[:1])
    try:
        decoded = sub.token_ids_to_text(torch.tensor([ids[:1]]), gpt2)
    except Exception as exc:  # noqa: BLE001 - any failure on a one-token batch is the student's to fix
        fail(
            f"token_ids_to_text of a (1, 1) batch, a single token, raised {type(exc).__name__}: a one-token text "
            "must decode too"
        )
    expect(
        decoded == first, f"token_ids_to_text of a (1, 1) batch, a single token, gave {decoded!r}; expected {first!r}"
    )


# ---------------------------------------------------------------- ch05.loss


def _loss_case(seed: int = 3):
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, len(ALPHABET), (3, 5), generator=generator)
    targets = torch.randint(0, len(ALPHABET), (3, 5), generator=generator)
    return model, inputs, targets


@loss
def test_calc_loss_batch_is_the_cross_entropy_against_the_targets(sub):
    """the mean cross-entropy of every position's logits against its target token"""
    model, inputs, targets = _loss_case()
    result = sub.calc_loss_batch(inputs, targets, model, "cpu")
    expect_tensor(result, "calc_loss_batch(...)")
    expect(
        result.numel() == 1, f"calc_loss_batch should return one number (a 0-d tensor); got shape {tuple(result.shape)}"
    )
    expected = _batch_loss(model, inputs, targets)
    got = result.detach().reshape(())
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


@loss
def test_calc_loss_batch_backpropagates_into_the_model(sub):
    """the loss keeps its graph: backward() gives every parameter a gradient"""
    model, inputs, targets = _loss_case(4)
    result = sub.calc_loss_batch(inputs, targets, model, torch.device("cpu"))
    expect(
        isinstance(result, torch.Tensor) and result.requires_grad,
        "calc_loss_batch's result has no gradient graph: return the tensor, not .item(), and do not use no_grad",
    )
    result.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
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


@loss
def test_calc_loss_loader_averages_the_first_num_batches(sub):
    """the mean of the first num_batches batch losses, as a float; None means every batch"""
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=6)
    batches = _loader_case(5)
    losses = [float(_batch_loss(model, x, y)) for x, y in batches]
    cases = [
        (None, sum(losses) / 5, "num_batches=None"),
        (2, sum(losses[:2]) / 2, "num_batches=2"),
        (5, sum(losses) / 5, "num_batches=5"),
    ]
    for num_batches, expected, what in cases:
        value = sub.calc_loss_loader(batches, model, "cpu", num_batches=num_batches)
        got = expect_number(value, f"calc_loss_loader(..., {what})")
        if num_batches == 2 and math.isclose(got, sum(losses) / 5, rel_tol=1e-5):
            fail("calc_loss_loader(..., num_batches=2) averaged every batch: stop after num_batches batches")
        if num_batches == 2 and math.isclose(got, sum(losses[:2]) / 5, rel_tol=1e-5):
            fail("calc_loss_loader(..., num_batches=2) divided the sum of 2 batch losses by all 5 batches")
        expect(
            math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6),
            f"calc_loss_loader(..., {what}) over 5 batches gave {got:.6f}; expected {expected:.6f}",
        )


@loss
def test_calc_loss_loader_caps_num_batches_at_the_loader_length(sub):
    """num_batches larger than len(data_loader) averages every batch"""
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=7)
    batches = _loader_case(3, seed=8)
    losses = [float(_batch_loss(model, x, y)) for x, y in batches]
    got = expect_number(
        sub.calc_loss_loader(batches, model, "cpu", num_batches=10), "calc_loss_loader(..., num_batches=10)"
    )
    if math.isclose(got, sum(losses) / 10, rel_tol=1e-5):
        fail(
            "calc_loss_loader(..., num_batches=10) on a 3-batch loader divided by 10: use min(num_batches, len(data_loader))"
        )
    expect(
        math.isclose(got, sum(losses) / 3, rel_tol=1e-5),
        f"calc_loss_loader(..., num_batches=10) on a 3-batch loader gave {got:.6f}; expected {sum(losses) / 3:.6f}",
    )


@loss
def test_calc_loss_loader_of_an_empty_loader_is_nan(sub):
    """an empty loader gives nan, not an error"""
    model = TinyLanguageModel(len(ALPHABET), CONTEXT, seed=9)
    for num_batches in (None, 3):
        try:
            value = sub.calc_loss_loader([], model, "cpu", num_batches=num_batches)
        except ZeroDivisionError:
            fail(
                f"calc_loss_loader([], ..., num_batches={num_batches}) divided by zero: return float('nan') for an empty loader"
            )
        got = expect_number(value, f"calc_loss_loader([], ..., num_batches={num_batches})")
        expect(math.isnan(got), f"calc_loss_loader([], ..., num_batches={num_batches}) gave {got}; expected nan")


# ---------------------------------------------------------------- ch05.train_loop


def _run_training(function, run: TrainingRun, **kwargs) -> tuple[tuple, StepLog, str]:
    """Calls a training function the way the book does; returns its results, the step log and what it printed."""
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
    return results, log, printed.getvalue()


def _expect_results(results, count: int, what: str) -> list[list[float]]:
    expect(
        isinstance(results, (tuple, list)) and len(results) == count,
        f"{what} should return a tuple of {count} lists; got {type(results).__name__}"
        + (f" of length {len(results)}" if isinstance(results, (tuple, list)) else ""),
    )
    return [[expect_number(v, f"an entry of {what}'s results") for v in values] for values in results]


def _expect_recorded_run(
    results, log: StepLog, printed: str, run: TrainingRun, case: dict, what: str, names: tuple
) -> None:
    """Compares a training run with the reference's: evaluation steps, tokens seen, losses, gradients, weights, samples."""
    expected = case["results"]
    got = _expect_results(results, len(expected), what)
    evals = len(expected[0])
    for values, name in zip(got[:3], names):
        if len(values) != evals:
            fail(
                f"{what} returned {len(values)} {name} for {len(log.grad_norms)} steps with eval_freq={case['eval_freq']}; "
                f"expected {evals}: evaluate after every step whose number, counted from 0 over all epochs, "
                "is a multiple of eval_freq"
            )
    steps = len(case["grad_norms"])
    expect(
        len(log.grad_norms) == steps,
        f"{what} made {len(log.grad_norms)} optimizer steps; expected {steps} "
        f"(one per batch, {len(run.train_loader)} batches per epoch)",
    )
    tokens = got[2]
    if tokens != expected[2]:
        fail(
            f"{what}: tokens seen {tokens[:3]}... expected {expected[2][:3]}...: count the input tokens of every "
            "batch trained on so far, this step's batch included"
        )
    for step, (norm, expected_norm) in enumerate(zip(log.grad_norms, case["grad_norms"])):
        if not math.isclose(norm, expected_norm, rel_tol=1e-3, abs_tol=1e-6):
            hint = (
                " (step 0 agrees: do the gradients of earlier batches pile up? reset them before each backward)"
                if step > 0 and norm > expected_norm
                else ""
            )
            fail(
                f"{what}: the gradient norm at step {step} is {norm:.5g}; the reference run's is {expected_norm:.5g}{hint}"
            )
    for values, expected_values, name in zip(got[:2], expected[:2], names[:2]):
        expect_close(
            torch.tensor(values), torch.tensor(expected_values), f"{what}'s {name}", atol=LOSS_TOL, rtol=LOSS_TOL
        )
    for name, tensor in parameter_state(run.model).items():
        expect_close(tensor, case["state"][name], f"the model's {name} after {what}", atol=1e-4, rtol=1e-4)
    for sample in case["samples"]:
        expect(
            sample in printed,
            f"{what} did not print the sample {sample[:30]!r}...: after every epoch, print the "
            "start context with its 50-token greedy continuation",
        )


@train_loop
def test_train_model_simple_reproduces_the_reference_run(sub, recorded):
    """same evaluation steps, tokens seen, losses, gradients, final weights and printed samples as the reference"""
    case = recorded["train"]
    run = training_run(seed=case["seed"])
    results, log, printed = _run_training(
        sub.train_model_simple,
        run,
        num_epochs=case["num_epochs"],
        eval_freq=case["eval_freq"],
        eval_iter=case["eval_iter"],
    )
    _expect_recorded_run(
        results, log, printed, run, case, "train_model_simple", ("training losses", "validation losses", "token counts")
    )


@train_loop
def test_train_model_simple_lowers_the_loss(sub):
    """a few epochs on a small fixed dataset lower the training loss"""
    run = training_run(seed=11, lr=0.05)
    before = sum(float(_batch_loss(run.model, x, y)) for x, y in run.train_loader)
    _run_training(sub.train_model_simple, run, num_epochs=3, eval_freq=100, eval_iter=1)
    after = sum(float(_batch_loss(run.model, x, y)) for x, y in run.train_loader)
    expect(
        after < before * 0.9,
        f"after 3 epochs the training loss went from {before / 5:.3f} to {after / 5:.3f}; "
        "the optimizer steps should lower it",
    )


def _expect_modes(model: TinyLanguageModel, what: str) -> None:
    """Forward calls without gradients must run in eval mode, and those with gradients in train mode."""
    for training, grad_enabled in model.calls:
        if not grad_enabled and training:
            fail(
                f"{what} ran the model without gradients but in train mode: call model.eval() first, so dropout is off"
            )
        if grad_enabled and not training:
            fail(
                f"{what} ran the model in eval mode with gradients enabled: evaluate under torch.no_grad() and "
                "return the model to train mode before training"
            )


@train_loop
def test_evaluation_runs_in_eval_mode_without_gradients(sub):
    """evaluation and samples run in eval() under no_grad; training steps in train() with gradients"""
    run = training_run(seed=12, drop_rate=0.5)
    _run_training(sub.train_model_simple, run, num_epochs=2, eval_freq=2, eval_iter=1)
    expect(
        any(not grad for _, grad in run.model.calls),
        "train_model_simple never ran the model without gradients: evaluate and generate samples under torch.no_grad()",
    )
    _expect_modes(run.model, "train_model_simple")
    expect(run.model.training, "after train_model_simple the model is in eval mode; leave it in train mode")


@train_loop
def test_evaluate_model_gives_both_losses_and_restores_train_mode(sub):
    """(train_loss, val_loss) over eval_iter batches each, with dropout off, and the model back in train mode"""
    run = training_run(seed=13, drop_rate=0.5)
    run.model.eval()
    expected = [
        sum(float(_batch_loss(run.model, x, y)) for x, y in list(loader)[:2]) / 2
        for loader in (run.train_loader, run.val_loader)
    ]
    run.model.train()
    run.model.calls.clear()
    result = sub.evaluate_model(run.model, run.train_loader, run.val_loader, "cpu", 2)
    expect(
        isinstance(result, (tuple, list)) and len(result) == 2, "evaluate_model should return (train_loss, val_loss)"
    )
    _expect_modes(run.model, "evaluate_model")
    for value, want, name in zip(result, expected, ("train_loss", "val_loss")):
        got = expect_number(value, f"evaluate_model's {name}")
        expect(
            math.isclose(got, want, rel_tol=1e-5),
            f"evaluate_model's {name} is {got:.6f}; expected {want:.6f} "
            "(the mean loss of the first eval_iter batches, dropout off)",
        )
    expect(
        len(run.model.calls) == 4,
        f"evaluate_model ran the model {len(run.model.calls)} times for eval_iter=2; "
        "expected 4 (2 batches of each loader)",
    )
    expect(run.model.training, "after evaluate_model the model is in eval mode; put it back in train mode")


@train_loop
def test_generate_and_print_sample_prints_the_greedy_continuation(sub, recorded):
    """one line: the start context and 50 greedy tokens, newlines as spaces; the model back in train mode"""
    case = recorded["train"]
    run = training_run(seed=case["seed"])
    load_parameters(run.model, case["state"], "the model")
    run.model.train()
    # A tokenizer that decodes a character inside the continuation as a newline.
    sample = case["samples"][-1]
    continuation = sample[len(run.start_context) :]
    candidates = [c for c in dict.fromkeys(continuation) if c not in run.start_context and c != continuation[-1]]
    newline = max(candidates, key=continuation.count)
    tokenizer = CharTokenizer(ALPHABET.replace(newline, "\n"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        sub.generate_and_print_sample(run.model, tokenizer, "cpu", run.start_context)
    if sample.replace(newline, "\n") in printed.getvalue():
        fail("generate_and_print_sample printed the sample over several lines: show its newlines as spaces")
    expect(
        sample.replace(newline, " ") in printed.getvalue(),
        "generate_and_print_sample printed "
        f"{printed.getvalue()[:60]!r}...; expected the start context followed by the model's 50 greedy tokens",
    )
    _expect_modes(run.model, "generate_and_print_sample")
    expect(run.model.training, "after generate_and_print_sample the model is in eval mode; put it back in train mode")


# ---------------------------------------------------------------- ch05.generate


# Sampling checks draw DRAWS tokens per distribution. The total variation distance of
# 2,500 draws from the distribution drawn from stays below 0.05 in 99.99% of runs;
# every mistake checked for moves the draws 0.18 or more away from the right one.
DRAWS = 2500
MAX_DISTANCE = 0.06
LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, 1.5, -2.0])


def _draws(sub, logits: torch.Tensor, n: int, seed: int, **kwargs) -> torch.Tensor:
    """n tokens sampled from fixed logits in one generate call -> frequency per token id."""
    torch.manual_seed(seed)
    out = sub.generate(FixedLogitsModel(logits), torch.tensor([[0]]), n, 4, **kwargs)
    expect_tensor(out, "generate(...)", shape=(1, n + 1))
    return torch.bincount(out[0, 1:], minlength=len(logits)).double() / n


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


@generate
def test_generate_at_temperature_zero_is_greedy(sub, recorded):
    """temperature 0 (the default) takes the argmax; top_k does not change that"""
    case = recorded["greedy"]
    model = WindowLanguageModel(case["vocab_size"], case["context_size"], seed=case["seed"])
    for prompt, expected in zip(case["prompts"], case["generated"]):
        for kwargs in ({}, {"top_k": 3}):
            out = sub.generate(model, prompt.clone(), case["max_new_tokens"], case["context_size"], **kwargs)
            expect_equal_tensor(
                out, expected, f"generate(..., {kwargs or 'temperature=0'}) from a {prompt.shape[1]}-token prompt"
            )


@generate
def test_generate_samples_from_the_tempered_softmax(sub):
    """token frequencies follow softmax(logits / temperature): sharper at temperature 0.5, flatter at 2"""
    for seed, temperature in enumerate((0.5, 2.0)):
        frequencies = _draws(sub, LOGITS, DRAWS, seed=seed, temperature=temperature)
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


@generate
def test_generate_top_k_draws_only_the_k_best(sub):
    """with top_k=3 only the 3 highest-logit tokens appear, in proportion to their tempered probabilities"""
    top = torch.topk(LOGITS, 3).indices
    frequencies = _draws(sub, LOGITS, DRAWS, seed=7, temperature=1.5, top_k=3)
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


@generate
def test_generate_runs_the_model_without_gradients(sub):
    """sampling never backpropagates, so every forward call runs without gradient tracking"""
    model = CountingModel(12)
    for kwargs in ({}, {"temperature": 1.0, "top_k": 2}):
        model.grad_enabled.clear()
        sub.generate(model, torch.tensor([[2, 3]]), 3, 4, **kwargs)
        expect(model.grad_enabled, f"generate(..., {kwargs or 'temperature=0'}) never ran the model")
        expect(
            not any(model.grad_enabled),
            f"generate(..., {kwargs or 'temperature=0'}) ran the model with gradient "
            "tracking on, which keeps every step's graph in memory: run the model under torch.no_grad()",
        )


@generate
def test_generate_stops_at_eos_without_appending_it(sub):
    """drawing eos_id ends generation before max_new_tokens, and eos_id is not in the output"""
    model = CountingModel(12)
    for kwargs in ({}, {"temperature": 0.5}, {"temperature": 1.0, "top_k": 2}):
        out = sub.generate(model, torch.tensor([[2, 3]]), 8, 4, eos_id=7, **kwargs)
        expect_tensor(out, f"generate(..., eos_id=7, {kwargs})")
        expected = torch.tensor([[2, 3, 4, 5, 6]])
        if out.shape[1] == 6 and out[0, -1] == 7:
            fail("generate appended eos_id before stopping; stop without appending it")
        if out.shape[1] == 10:
            fail("generate did not stop at eos_id: after drawing it, return at once")
        expect_equal_tensor(out, expected, f"generate(..., eos_id=7, {kwargs}) on a model that counts up from 3")
    out = sub.generate(model, torch.tensor([[2, 3]]), 8, 4)
    expect_equal_tensor(out, torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]), "generate(...) without eos_id")


# ---------------------------------------------------------------- ch05.checkpoint


def _steps(run: TrainingRun, batches) -> None:
    for x, y in batches:
        run.optimizer.zero_grad()
        F.cross_entropy(run.model(x).flatten(0, 1), y.flatten()).backward()
        run.optimizer.step()


@checkpoint
def test_checkpoint_has_the_books_format(sub, tmp_path):
    """one torch.save'd dict with model_state_dict and optimizer_state_dict, loadable with weights_only=True"""
    run = training_run(seed=21)
    _steps(run, list(run.train_loader)[:2])
    path = tmp_path / "model_and_optimizer.pth"
    sub.save_checkpoint(run.model, run.optimizer, path)
    expect(path.exists(), "save_checkpoint wrote nothing at the given path")
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the student's to fix
        fail(
            f"torch.load(path, weights_only=True) cannot read the checkpoint ({type(exc).__name__}): save state dicts, not modules"
        )
    expect(
        isinstance(saved, dict) and {"model_state_dict", "optimizer_state_dict"} <= set(saved),
        f"the checkpoint should be a dict with keys 'model_state_dict' and 'optimizer_state_dict'; got "
        f"{sorted(saved) if isinstance(saved, dict) else type(saved).__name__}",
    )
    for name, tensor in run.model.state_dict().items():
        expect(name in saved["model_state_dict"], f"model_state_dict has no entry '{name}'")
        expect_close(saved["model_state_dict"][name], tensor, f"model_state_dict['{name}']", atol=0, rtol=0)
    optimizer_state = saved["optimizer_state_dict"]
    expect(
        isinstance(optimizer_state, dict)
        and len(optimizer_state.get("state", {})) == len(list(run.model.parameters())),
        "optimizer_state_dict should be optimizer.state_dict(), with AdamW's state for every parameter",
    )


@checkpoint
def test_training_resumes_exactly_from_a_checkpoint(sub, tmp_path):
    """a fresh model and optimizer restored from the checkpoint take the same next step as the original run"""
    original = training_run(seed=22)
    batches = list(original.train_loader)
    _steps(original, batches[:3])
    path = tmp_path / "checkpoint.pth"
    sub.save_checkpoint(original.model, original.optimizer, path)
    _steps(original, batches[3:4])

    resumed = training_run(seed=23)  # other initial weights
    returned = sub.load_checkpoint(resumed.model, resumed.optimizer, path)
    expect(returned is None or isinstance(returned, tuple), "load_checkpoint restores in place")
    saved = torch.load(path, weights_only=True)
    for name, tensor in resumed.model.state_dict().items():
        if not torch.equal(tensor, saved["model_state_dict"][name]):
            fail(f"after load_checkpoint the model's {name} is not the saved one: load the model's state dict")
    state = resumed.optimizer.state_dict()["state"]
    expect(
        len(state) == len(list(resumed.model.parameters())),
        "after load_checkpoint the optimizer has no state: AdamW's moving averages and step counts are lost; "
        "save and load the optimizer's state dict too",
    )
    _steps(resumed, batches[3:4])
    for (name, tensor), expected in zip(resumed.model.named_parameters(), original.model.parameters()):
        expect_close(tensor, expected, f"{name} after one step from the checkpoint", atol=1e-7, rtol=1e-6)


# ---------------------------------------------------------------- ch05.training_extras


@training_extras
def test_learning_rate_warms_up_linearly(sub):
    """from initial_lr at step 0 up by (peak_lr - initial_lr) / warmup_steps per step"""
    for step in (0, 1, 5, 9):
        got = expect_number(
            sub.learning_rate_at(step, 1e-3, 10, 50, initial_lr=1e-4, min_lr=1e-5), f"learning_rate_at({step}, ...)"
        )
        expected = 1e-4 + step * (1e-3 - 1e-4) / 10
        expect(
            math.isclose(got, expected, rel_tol=1e-6),
            f"learning_rate_at(step={step}, peak_lr=1e-3, warmup_steps=10, initial_lr=1e-4) is {got:.6g}; expected {expected:.6g}",
        )
    got = expect_number(sub.learning_rate_at(0, 1e-3, 10, 50), "learning_rate_at(0, ...)")
    expect(
        math.isclose(got, 3e-5, rel_tol=1e-6),
        f"with the default initial_lr, step 0 has learning rate {got:.6g}; expected 3e-05",
    )


@training_extras
def test_learning_rate_decays_along_a_cosine(sub):
    """peak_lr when warm-up ends, the midpoint halfway through the decay, min_lr at total_steps"""
    cases = [
        (10, 1e-3, "when warm-up ends (step warmup_steps)"),
        (30, (1e-3 + 1e-5) / 2, "halfway through the decay"),
        (50, 1e-5, "at step total_steps"),
        (20, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi / 4)), "a quarter into the decay"),
    ]
    for step, expected, when in cases:
        got = expect_number(
            sub.learning_rate_at(step, 1e-3, 10, 50, initial_lr=1e-4, min_lr=1e-5), f"learning_rate_at({step}, ...)"
        )
        expect(
            math.isclose(got, expected, rel_tol=1e-6),
            f"learning_rate_at(step={step}, peak_lr=1e-3, warmup_steps=10, total_steps=50, min_lr=1e-5), {when}, "
            f"is {got:.6g}; expected {expected:.6g}",
        )
    got = expect_number(sub.learning_rate_at(50, 1e-3, 10, 50), "learning_rate_at(50, ...)")
    expect(
        math.isclose(got, 1e-6, rel_tol=1e-6),
        f"with the default min_lr, the last step has learning rate {got:.6g}; expected 1e-06",
    )


@training_extras
def test_train_model_sets_the_schedule_before_every_step(sub, recorded):
    """every parameter group steps with learning_rate_at(step) at every step, and track_lrs lists those rates"""
    case = recorded["extras"]
    run = training_run(seed=case["seed"], lr=case["lr"])
    results, log, _ = _run_training(
        sub.train_model,
        run,
        **{k: case[k] for k in ("n_epochs", "eval_freq", "eval_iter", "warmup_steps", "initial_lr", "min_lr")},
    )
    got = _expect_results(results, 4, "train_model")
    expected_lrs = case["lrs"]
    expect(
        len(log.lrs) == len(expected_lrs),
        f"train_model made {len(log.lrs)} optimizer steps; expected {len(expected_lrs)}",
    )
    for step, (lr, expected) in enumerate(zip(log.lrs, expected_lrs)):
        groups = log.group_lrs[step]
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
        and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(got[3], expected_lrs)),
        "track_lrs should hold the learning rate of every step, in order",
    )


@training_extras
def test_train_model_clips_gradients_from_the_end_of_warm_up(sub):
    """gradient norms above 1 are left alone during warm-up and clipped to 1.0 from step warmup_steps on"""
    run = training_run(seed=31, optimizer="sgd", lr=1e-3, weight_scale=8.0)
    results, log, _ = _run_training(sub.train_model, run, n_epochs=2, eval_freq=100, eval_iter=1, warmup_steps=4)
    expect(len(log.grad_norms) == 10, f"train_model made {len(log.grad_norms)} optimizer steps; expected 10")
    for step, norm in enumerate(log.grad_norms):
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
def test_train_model_reproduces_the_reference_run(sub, recorded):
    """same evaluation steps, tokens seen, losses, gradients, final weights and samples as the reference"""
    case = recorded["extras"]
    run = training_run(seed=case["seed"], lr=case["lr"])
    results, log, printed = _run_training(
        sub.train_model,
        run,
        **{k: case[k] for k in ("n_epochs", "eval_freq", "eval_iter", "warmup_steps", "initial_lr", "min_lr")},
    )
    _expect_recorded_run(
        results,
        log,
        printed,
        run,
        case,
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
    gpt = _small_gpt(sub, case["config"])
    params = {name: tensor.clone() for name, tensor in case["params"].items()}
    sub.load_weights_into_gpt(gpt, params)
    for name, tensor in params.items():
        expect(
            torch.equal(tensor, case["params"][name]),
            f"load_weights_into_gpt changed the checkpoint's {name}; leave params as they are",
        )
    return gpt


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


@load_gpt2_weights
def test_loaded_gpt_matches_hugging_face_logits(sub, recorded):
    """a small GPT-2 checkpoint from transformers loads into GPTModel: every parameter and the logits match"""
    case = recorded["gpt2"]
    gpt = _loaded(sub, case)
    state = dict(gpt.named_parameters())
    for name, expected in case["gpt_state"].items():
        actual = state[name].detach()
        if actual.shape == expected.shape and torch.allclose(actual, expected):
            continue
        diagnosis = _diagnose_parameter(name, actual, expected, case["gpt_state"])
        if diagnosis:
            fail(diagnosis)
        if actual.shape != expected.shape:
            fail(f"{name} has shape {tuple(actual.shape)}; expected {tuple(expected.shape)}")
        fail(f"{name} does not hold GPT-2's values (max abs diff {(actual - expected).abs().max():.3g})")
    with torch.no_grad():
        logits = gpt(case["ids"])
    expect_close(
        logits,
        case["logits"],
        "the loaded model's logits (Hugging Face GPT2LMHeadModel's on the same weights)",
        atol=1e-4,
        rtol=1e-4,
    )


@load_gpt2_weights
def test_loading_keeps_the_parameters_trainable(sub, recorded):
    """after loading, the model's parameters are still nn.Parameters that receive gradients"""
    gpt = _loaded(sub, recorded["gpt2"])
    gpt(recorded["gpt2"]["ids"]).sum().backward()
    frozen = [name for name, p in gpt.named_parameters() if p.grad is None]
    if frozen:
        fail(f"after loading, {frozen[0]} receives no gradient: keep the model's parameters as nn.Parameters")
    expect(
        sum(1 for _ in gpt.parameters()) == len(recorded["gpt2"]["gpt_state"]),
        "loading changed the number of the model's parameters",
    )


@load_gpt2_weights
def test_loading_a_mismatched_checkpoint_raises(sub, recorded):
    """a checkpoint with a longer context than the model raises an error instead of loading silently"""
    case = recorded["gpt2"]
    _loaded(sub, case)  # a matching checkpoint loads
    gpt = _small_gpt(sub, {**case["config"], "n_positions": case["config"]["n_positions"] // 2})
    model_shape = tuple(gpt.pos_emb.weight.shape)
    try:
        sub.load_weights_into_gpt(gpt, {name: t.clone() for name, t in case["params"].items()})
    except Exception:  # noqa: BLE001 - any error is the right reaction
        return
    fail(
        f"loading a checkpoint with wpe.weight of shape {tuple(case['params']['wpe.weight'].shape)} into a model with "
        f"pos_emb.weight of shape {model_shape} raised no error; check that shapes match"
    )
