"""Hidden checks of chapter 10: the public checks' cases drawn afresh from each run's seed.

Every case class (each broadcasting pattern, each reduction axis kind, each graph shape, each
VJP slip) is drawn on every seed; the seed changes sizes and values only. The expected values
come from PyTorch's autograd and closed forms, computed in compare, so the reference engine
never meets a submission's outputs. Messages name expressions and shapes, never values."""

from __future__ import annotations

from autograder.checks.test_ch10 import (
    _gradient_checks,
    _graph_grads,
    _graph_grads_twice,
    _numerical,
    _seeds_and_constants,
    _training,
    activation_cases,
    activations,
    backward_exercise,
    elementwise,
    elementwise_cases,
    expect_accumulated,
    expect_expressions,
    expect_gradient_checks,
    expect_graph_grads,
    expect_numerical,
    expect_seeds_and_constants,
    expect_training,
    expect_unbroadcast,
    gradient_check_case,
    gradient_check_exercise,
    graph_arrays,
    matmul_and_reductions,
    matmul_reduction_cases,
    run_expressions,
    run_unbroadcast,
    softmax_cases,
    softmax_cross_entropy,
    train,
    train_case,
    unbroadcast_cases,
    unbroadcast_exercise,
)
from autograder.split import split


def _unbroadcast_cases(seed):
    return unbroadcast_cases(seed)


@unbroadcast_exercise
@split(setup=_unbroadcast_cases, produce=run_unbroadcast)
def test_unbroadcast_on_hidden_shapes(outputs, case):
    """hidden: every kind of stretched axis, on sizes drawn from the seed"""
    expect_unbroadcast(outputs, case)


def _graph_case(seed):
    return graph_arrays(seed)


@backward_exercise
@split(setup=_graph_case, produce=_graph_grads)
def test_backward_on_hidden_graphs(outputs, case):
    """hidden: chain, reuse, diamond, skip and deep graphs on drawn values"""
    expect_graph_grads(outputs, case)


@backward_exercise
@split(setup=_graph_case, produce=_graph_grads_twice)
def test_second_backward_on_hidden_graphs(outputs, case):
    """hidden: a second backward() accumulates, also where one array reaches two leaves"""
    expect_accumulated(outputs, case)


@backward_exercise
@split(setup=_graph_case, produce=_seeds_and_constants)
def test_backward_seed_and_constants_hidden(outputs, case):
    """hidden: implicit seed of 1, a refusal for larger results, constants without .grad"""
    expect_seeds_and_constants(outputs, case)


def _elementwise_cases(seed):
    return elementwise_cases(seed)


@elementwise
@split(setup=_elementwise_cases, produce=run_expressions)
def test_elementwise_on_hidden_shapes(outputs, case):
    """hidden: every operator on every broadcasting class, against torch.autograd"""
    expect_expressions(outputs, case)


def _matmul_cases(seed):
    return matmul_reduction_cases(seed)


@matmul_and_reductions
@split(setup=_matmul_cases, produce=run_expressions)
def test_matmul_reductions_on_hidden_shapes(outputs, case):
    """hidden: matmul, sums, means, reshapes and transposes, against torch.autograd"""
    expect_expressions(outputs, case)


def _activation_cases(seed):
    return activation_cases(seed)


@activations
@split(setup=_activation_cases, produce=run_expressions)
def test_activations_on_hidden_inputs(outputs, case):
    """hidden: the activations on drawn shapes and values, against torch.autograd"""
    expect_expressions(outputs, case)


def _softmax_cases(seed):
    return softmax_cases(seed)


@softmax_cross_entropy
@split(setup=_softmax_cases, produce=run_expressions)
def test_softmax_cross_entropy_on_hidden_inputs(outputs, case):
    """hidden: softmax, log_softmax and cross_entropy on drawn shapes, large logits included"""
    expect_expressions(outputs, case)


def _gradient_check_case(seed):
    return gradient_check_case(seed)


@gradient_check_exercise
@split(setup=_gradient_check_case, produce=_numerical)
def test_numerical_grad_on_hidden_inputs(outputs, case):
    """hidden: central differences on drawn inputs"""
    expect_numerical(outputs, case)


@gradient_check_exercise
@split(setup=_gradient_check_case, produce=_gradient_checks)
def test_gradient_check_on_hidden_inputs(outputs, case):
    """hidden: the verdicts on every slip, on drawn inputs"""
    expect_gradient_checks(outputs)


def _train_case(seed):
    return train_case(seed)


@train
@split(setup=_train_case, produce=_training)
def test_train_step_on_hidden_sizes(outputs, case):
    """hidden: drawn sizes, learning rate and data against the same steps in PyTorch"""
    expect_training(outputs, case)
