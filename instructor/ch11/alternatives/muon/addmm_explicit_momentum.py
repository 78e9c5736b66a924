"""Newton-Schulz with torch.addmm (B = b A + c A A and X = a X + B X as fused matrix multiply-adds) and .mT;
momentum as buf.mul_(mu).add_(g, alpha=1 - mu) and Nesterov written out as (1 - mu) g + mu buf; the AdamW
part with explicit bias-corrected m_hat and v_hat"""


def zeropower_via_newtonschulz5(G, steps=5):
    a, b, c = 3.4445, -4.7750, 2.0315
    transpose = G.size(0) > G.size(1)
    X = G.mT if transpose else G
    X = X / (torch.linalg.matrix_norm(X) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = torch.addmm(A, A, A, beta=b, alpha=c)
        X = torch.addmm(X, B, X, beta=a)
    if transpose:
        X = X.mT
    return X


class Muon(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr=0.02,
        momentum=0.95,
        nesterov=True,
        weight_decay=0.0,
        ns_steps=5,
        adamw_lr=3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps=1e-8,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                nesterov=nesterov,
                weight_decay=weight_decay,
                ns_steps=ns_steps,
                adamw_lr=adamw_lr,
                adamw_betas=adamw_betas,
                adamw_eps=adamw_eps,
            ),
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                state = self.state[p]
                if p.ndim == 2:
                    mu = group["momentum"]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buf = state["momentum_buffer"]
                    buf.mul_(mu).add_(g, alpha=1 - mu)
                    u = (1 - mu) * g + mu * buf if group["nesterov"] else buf
                    u = zeropower_via_newtonschulz5(u, steps=group["ns_steps"])
                    u = u * math.sqrt(max(1.0, p.size(0) / p.size(1)))
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.sub_(group["lr"] * u)
                else:
                    lr, eps = group["adamw_lr"], group["adamw_eps"]
                    beta1, beta2 = group["adamw_betas"]
                    if "step" not in state:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    state["step"] += 1
                    t = state["step"]
                    p.mul_(1 - lr * group["weight_decay"])
                    state["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)
                    state["exp_avg_sq"].mul_(beta2).add_(g * g, alpha=1 - beta2)
                    m_hat = state["exp_avg"] / (1 - beta1**t)
                    v_hat = state["exp_avg_sq"] / (1 - beta2**t)
                    p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
        return loss
