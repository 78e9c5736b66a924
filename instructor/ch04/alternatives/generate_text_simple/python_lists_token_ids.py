"""Python lists of token ids, model called under inference_mode, tensor rebuilt each step"""

import torch


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Greedy decoding that keeps the running sequences as Python lists."""
    rows = idx.tolist()
    for _ in range(max_new_tokens):
        window = torch.tensor([row[-context_size:] for row in rows], dtype=idx.dtype, device=idx.device)
        with torch.inference_mode():
            logits = model(window)
            best = torch.argmax(logits[:, -1, :], dim=-1).tolist()
        for row, token in zip(rows, best):
            row.append(token)
    return torch.tensor(rows, dtype=idx.dtype, device=idx.device)
