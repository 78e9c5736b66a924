"""sort instead of topk, masked_fill, torch.distributions.Categorical"""


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Top-k via sorting, sampling via Categorical."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        if top_k is not None:
            ordered, _ = torch.sort(logits, dim=-1, descending=True)
            kth = ordered[:, top_k - 1 : top_k]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if temperature > 0:
            next_id = torch.distributions.Categorical(logits=logits / temperature).sample().unsqueeze(-1)
        else:
            next_id = logits.argmax(dim=-1, keepdim=True)
        if eos_id is not None and int(next_id) == eos_id:
            break
        idx = torch.cat([idx, next_id], dim=-1)
    return idx
