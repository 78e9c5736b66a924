"""contexts entered through an ExitStack, losses collected as Python floats, and the global-norm clip computed by hand (norm of the per-tensor norms, coefficient clamped at 1)"""

import contextlib

import torch
import torch.nn.functional as F


def train_step(model, optimizer, micro_batches, grad_clip=None, autocast_dtype=None) -> float:
    batches = list(micro_batches)
    k = len(batches)
    optimizer.zero_grad(set_to_none=True)
    losses = []
    for i, (x, y) in enumerate(batches):
        with contextlib.ExitStack() as stack:
            if i < k - 1 and hasattr(model, "no_sync"):
                stack.enter_context(model.no_sync())
            if autocast_dtype is not None:
                with torch.autocast(device_type=x.device.type, dtype=autocast_dtype):
                    logits = model(x)
            else:
                logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
            loss.mul(1.0 / k).backward()
        losses.append(loss.item())
    if grad_clip is not None:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        total_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))
        coef = torch.clamp(grad_clip / (total_norm + 1e-6), max=1.0)
        for g in grads:
            g.detach().mul_(coef)
    optimizer.step()
    return sum(losses) / k
