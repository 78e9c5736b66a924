"""per-token losses summed (reduction="sum") and divided by the token count times k, the contexts chosen up front as lists, the mean returned from a stacked tensor"""

from contextlib import nullcontext

import torch
import torch.nn.functional as F


def train_step(model, optimizer, micro_batches, grad_clip=None, autocast_dtype=None) -> float:
    micro_batches = list(micro_batches)
    k = len(micro_batches)
    can_skip_sync = callable(getattr(model, "no_sync", None))
    syncs = [model.no_sync if (can_skip_sync and i < k - 1) else nullcontext for i in range(k)]
    optimizer.zero_grad(set_to_none=True)
    losses = []
    for (x, y), sync in zip(micro_batches, syncs):
        autocast = torch.autocast(x.device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
        with sync():
            with autocast:
                logits = model(x)
            total = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1), reduction="sum")
            (total / (y.numel() * k)).backward()
        losses.append(total.detach() / y.numel())
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters()], max_norm=grad_clip)
    optimizer.step()
    return torch.stack(losses).mean().item()
