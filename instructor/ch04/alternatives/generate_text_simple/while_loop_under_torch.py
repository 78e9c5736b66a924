"""while loop under a @torch.no_grad() decorator, next token via torch.max(...).indices"""


@torch.no_grad()
def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Greedy decoding until max_new_tokens tokens have been appended."""
    target = idx.shape[1] + max_new_tokens
    while idx.shape[1] < target:
        window = idx[:, -context_size:]
        last = model(window)[:, -1]
        next_id = torch.max(last, dim=-1, keepdim=True).indices
        idx = torch.cat((idx, next_id), dim=-1)
    return idx
