"""sigmoid identity 0.5 (1 + tanh(z)) = sigmoid(2 z)"""

import math

import torch
import torch.nn as nn

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class GELU(nn.Module):
    """x * sigmoid(2 z) with z = sqrt(2/pi) (x + 0.044715 x^3): the tanh approximation rewritten."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = _SQRT_2_OVER_PI * (x + 0.044715 * x.pow(3))
        return x * torch.sigmoid(2.0 * z)
