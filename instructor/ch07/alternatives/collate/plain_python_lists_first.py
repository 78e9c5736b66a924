"""plain Python lists, the first pad found with index"""


def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
    """Rows built as lists; a tensor only at the end."""
    width = max(map(len, batch))
    input_rows, target_rows = [], []
    for item in batch:
        padded = list(item) + [pad_token_id] * (width + 1 - len(item))
        targets = padded[1:]
        first = targets.index(pad_token_id)
        targets = targets[: first + 1] + [ignore_index if t == pad_token_id else t for t in targets[first + 1 :]]
        input_rows.append(padded[:-1][:allowed_max_length])
        target_rows.append(targets[:allowed_max_length])
    return torch.tensor(input_rows, device=device), torch.tensor(target_rows, device=device)
