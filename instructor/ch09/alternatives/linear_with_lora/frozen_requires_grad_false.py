"""frozen with requires_grad_(False) on the module; F.linear in forward"""

import torch.nn.functional as F


class LinearWithLoRA(nn.Module):
    def __init__(self, linear, rank, alpha):
        super().__init__()
        self.linear = linear.requires_grad_(False)
        self.lora = LoRALayer(in_dim=linear.in_features, out_dim=linear.out_features, rank=rank, alpha=alpha)

    def forward(self, x):
        return F.linear(x, self.linear.weight, self.linear.bias) + self.lora(x)
