"""The checks' optimizers do torch.optim's arithmetic, bit for bit, without importing the compiler."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from autograder.no_dynamo import compiler_free


@pytest.mark.parametrize("optimizer_class", [torch.optim.AdamW, torch.optim.SGD])
def test_compiler_free_steps_are_torch_optims_bit_for_bit(optimizer_class):
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    theirs.load_state_dict(ours.state_dict())
    optimizers = [
        compiler_free(optimizer_class)(ours.parameters(), lr=0.05, weight_decay=0.1),
        optimizer_class(theirs.parameters(), lr=0.05, weight_decay=0.1),
    ]
    for _ in range(4):
        x = torch.randn(2, 5)
        for model, optimizer in zip((ours, theirs), optimizers, strict=True):
            optimizer.zero_grad()
            model(x).pow(2).sum().backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))
    assert isinstance(optimizers[0], optimizer_class)


def test_a_checking_process_that_trains_never_imports_the_compiler():
    program = """
import sys, torch
from autograder.no_dynamo import compiler_free, skip_dynamo_import
skip_dynamo_import()
model = torch.nn.Linear(4, 4)
optimizer = compiler_free(torch.optim.AdamW)(model.parameters(), lr=1e-3)
model(torch.randn(2, 4)).sum().backward()
optimizer.step()
optimizer.load_state_dict(optimizer.state_dict())
optimizer.zero_grad()
print("torch._dynamo" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_compiler_free_skips_the_compiler_after_the_class_was_instantiated():
    """Optimizer.__init__ wraps a class's step in a profiling hook on its first instance; compiler_free
    made after that still steps without the compiler."""
    program = """
import sys, torch
from autograder.no_dynamo import compiler_free, skip_dynamo_import
skip_dynamo_import()
torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
model = torch.nn.Linear(4, 4)
optimizer = compiler_free(torch.optim.SGD)(model.parameters(), lr=1e-3)
model(torch.randn(2, 4)).sum().backward()
optimizer.step()
print("torch._dynamo" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
