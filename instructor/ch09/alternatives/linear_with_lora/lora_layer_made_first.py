"""the LoRA layer made first, the weight and bias frozen one by one"""


class LinearWithLoRA(nn.Module):
    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.lora = LoRALayer(linear.weight.shape[1], linear.weight.shape[0], rank, alpha)
        linear.weight.requires_grad = False
        if linear.bias is not None:
            linear.bias.requires_grad = False
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.lora(x)
        return update + self.linear(x)
