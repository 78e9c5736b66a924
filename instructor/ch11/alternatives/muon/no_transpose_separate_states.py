"""Newton-Schulz never transposes: for a tall G the Gram matrix X X^T is the larger (m, m) one, but the
quintic polynomial gives the same X (p(X X^T) X = X p(X^T X)), only more slowly; Muon's momentum is stored
out of place (lerp, rebound in the state) and its AdamW branch uses torch.addcdiv"""


def zeropower_via_newtonschulz5(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    X = G / (G.norm() + 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * (A @ A)) @ X
    return X


class Muon(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
        adamw_lr: float = 3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps: float = 1e-8,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "nesterov": nesterov,
                "weight_decay": weight_decay,
                "ns_steps": ns_steps,
                "adamw_lr": adamw_lr,
                "adamw_betas": adamw_betas,
                "adamw_eps": adamw_eps,
            },
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            muon_params = [p for p in group["params"] if p.grad is not None and p.dim() == 2]
            other_params = [p for p in group["params"] if p.grad is not None and p.dim() != 2]
            for p in muon_params:
                state = self.state[p]
                buf = torch.lerp(state.get("momentum_buffer", torch.zeros_like(p)), p.grad, 1 - group["momentum"])
                state["momentum_buffer"] = buf
                direction = torch.lerp(p.grad, buf, group["momentum"]) if group["nesterov"] else buf
                rows, cols = p.shape
                ortho = zeropower_via_newtonschulz5(direction, group["ns_steps"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(ortho, alpha=-group["lr"] * math.sqrt(max(1, rows / cols)))
            beta1, beta2 = group["adamw_betas"]
            for p in other_params:
                state = self.state[p]
                t = state.get("step", 0) + 1
                m = torch.lerp(state.get("exp_avg", torch.zeros_like(p)), p.grad, 1 - beta1)
                v = beta2 * state.get("exp_avg_sq", torch.zeros_like(p)) + (1 - beta2) * p.grad.square()
                state.update(step=t, exp_avg=m, exp_avg_sq=v)
                p.mul_(1 - group["adamw_lr"] * group["weight_decay"])
                denom = v.sqrt() / math.sqrt(1 - beta2**t) + group["adamw_eps"]
                p.copy_(torch.addcdiv(p, m, denom, value=-group["adamw_lr"] / (1 - beta1**t)))
        return loss
