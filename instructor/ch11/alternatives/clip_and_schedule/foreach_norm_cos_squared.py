"""clip: per-gradient norms from torch._foreach_norm, combined with linalg.vector_norm of their stack, and
torch._foreach_mul_ to scale; schedule: the cosine written as the closed form cos(pi * progress / 2) ** 2"""


def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if len(grads) == 0:
        return torch.tensor(0.0)
    norms = torch._foreach_norm(grads)
    total = torch.linalg.vector_norm(torch.stack(norms))
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, coef)
    return total


def lr_at_step(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> float:
    if step < warmup_steps:
        return float(max_lr * (step + 1) / warmup_steps)
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return float(min_lr + (max_lr - min_lr) * math.cos(math.pi * progress / 2) ** 2)
