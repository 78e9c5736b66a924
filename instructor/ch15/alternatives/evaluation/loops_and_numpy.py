"""evaluate_loss under a @torch.no_grad() helper with a running tensor sum; render_example fills numpy arrays; most_likely_ending loops over the rows and scores only the masked positions"""

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F


@torch.no_grad()
def _mean_loss(model, loader, steps):
    device = next(model.parameters()).device
    total = torch.tensor(0.0, device=device)
    for _ in range(steps):
        x, y = loader.next_batch()
        logits = model(x.to(device))
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), y.to(device).view(-1))
    return total / steps


def evaluate_loss(model, loader, steps: int) -> float:
    was_training = model.training
    model.train(False)
    loss = _mean_loss(model, loader, steps)
    if was_training:
        model.train(True)
    if dist.is_initialized():
        dist.all_reduce(loss, op=dist.ReduceOp.SUM)
        loss = loss / dist.get_world_size()
    return float(loss)


def render_example(example: dict, encoder) -> tuple[torch.Tensor, torch.Tensor, int]:
    ctx = encoder.encode(example["ctx"])
    ends = [encoder.encode(" " + e) for e in example["endings"]]
    width = max(len(ctx) + len(e) for e in ends)
    tokens = np.zeros((len(ends), width), dtype=np.int64)
    mask = np.zeros((len(ends), width), dtype=np.int64)
    for i, e in enumerate(ends):
        tokens[i, : len(ctx)] = ctx
        tokens[i, len(ctx) : len(ctx) + len(e)] = e
        mask[i, len(ctx) : len(ctx) + len(e)] = 1
    return torch.from_numpy(tokens), torch.from_numpy(mask), int(example["label"])


def most_likely_ending(tokens: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> int:
    scores = []
    for row in range(tokens.shape[0]):
        positions = torch.nonzero(mask[row]).flatten()
        positions = positions[positions > 0]  # token t is predicted at position t - 1
        loss = F.cross_entropy(logits[row, positions - 1].float(), tokens[row, positions])
        scores.append(loss.item())
    return int(np.argmin(scores))
