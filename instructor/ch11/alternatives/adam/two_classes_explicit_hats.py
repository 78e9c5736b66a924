"""no shared helper: Adam and AdamW are two independent Optimizer subclasses, each writing out
m_hat = m / (1 - beta1**t) and v_hat = v / (1 - beta2**t) and stepping by lr * m_hat / (sqrt(v_hat) + eps)"""


class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g + group["weight_decay"] * p
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                t = st["step"]
                st["exp_avg"] = beta1 * st["exp_avg"] + (1 - beta1) * g
                st["exp_avg_sq"] = beta2 * st["exp_avg_sq"] + (1 - beta2) * g * g
                m_hat = st["exp_avg"] / (1 - beta1**t)
                v_hat = st["exp_avg_sq"] / (1 - beta2**t)
                p -= group["lr"] * m_hat / (v_hat.sqrt() + group["eps"])
        return loss


class AdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                p *= 1 - group["lr"] * group["weight_decay"]
                g = p.grad
                st = self.state[p]
                if len(st) == 0:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                t = st["step"]
                st["exp_avg"] = beta1 * st["exp_avg"] + (1 - beta1) * g
                st["exp_avg_sq"] = beta2 * st["exp_avg_sq"] + (1 - beta2) * g * g
                m_hat = st["exp_avg"] / (1 - beta1**t)
                v_hat = st["exp_avg_sq"] / (1 - beta2**t)
                p -= group["lr"] * m_hat / (v_hat.sqrt() + group["eps"])
        return loss
