"""math.sqrt(2 / math.pi) and x * x * x"""

import math


class GELU(nn.Module):
    """GELU, tanh approximation."""

    def forward(self, x):
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + torch.tanh(inner))
