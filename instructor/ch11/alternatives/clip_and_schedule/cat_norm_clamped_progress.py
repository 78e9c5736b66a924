"""clip: one norm of all gradients flattened and concatenated, then an in-place mul_ of each p.grad only
when the coefficient is below 1; schedule: progress clamped to [0, 1] instead of a separate after-the-end
branch (cos(pi) = -1 gives min_lr exactly)"""


def clip_grad_norm(parameters, max_norm):
    if isinstance(parameters, torch.Tensor):
        parameters = (parameters,)
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return torch.tensor(0.0)
    total = torch.cat([p.grad.detach().flatten() for p in with_grad]).norm(2)
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in with_grad:
            p.grad.detach().mul_(coef)
    return total


def lr_at_step(step, max_lr, warmup_steps, total_steps, min_lr):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
