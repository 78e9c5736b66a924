"""evaluate_loss sums Python floats and all-reduces a fresh tensor; render_example pads with pad_sequence; most_likely_ending scores with log_softmax + gather"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence


def evaluate_loss(model, loader, steps: int) -> float:
    mode = model.training
    model.eval()
    device = next(model.parameters()).device
    losses = []
    try:
        with torch.no_grad():
            for _ in range(steps):
                x, y = loader.next_batch()
                x, y = x.to(device), y.to(device)
                logits = model(x)
                losses.append(F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1)).item())
    finally:
        model.train(mode)
    mean = sum(losses) / steps
    if dist.is_available() and dist.is_initialized():
        t = torch.tensor([mean], dtype=torch.float32, device=device)
        dist.all_reduce(t)  # a sum
        mean = t.item() / dist.get_world_size()
    return float(mean)


def render_example(example: dict, encoder) -> tuple[torch.Tensor, torch.Tensor, int]:
    ctx = encoder.encode(example["ctx"])
    rows, masks = [], []
    for ending in example["endings"]:
        end = encoder.encode(" " + ending)
        rows.append(torch.tensor(ctx + end, dtype=torch.long))
        masks.append(torch.cat([torch.zeros(len(ctx), dtype=torch.long), torch.ones(len(end), dtype=torch.long)]))
    tokens = pad_sequence(rows, batch_first=True, padding_value=0)
    mask = pad_sequence(masks, batch_first=True, padding_value=0)
    return tokens, mask, int(example["label"])


def most_likely_ending(tokens: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> int:
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (rows, L-1, vocab)
    target_logp = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # (rows, L-1)
    m = mask[:, 1:].to(target_logp.dtype)
    mean_logp = (target_logp * m).sum(-1) / m.sum(-1)
    return int(torch.argmax(mean_logp).item())
