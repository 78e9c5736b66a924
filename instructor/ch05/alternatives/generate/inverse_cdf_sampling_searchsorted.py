"""inverse-CDF sampling with searchsorted; tokens kept in a Python list"""


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Draws by finding a uniform number in the cumulative distribution."""
    tokens = idx[0].tolist()
    for _ in range(max_new_tokens):
        window = torch.tensor([tokens[-context_size:]], dtype=idx.dtype, device=idx.device)
        with torch.inference_mode():
            logits = model(window)[0, -1]
        if top_k is not None:
            threshold = torch.topk(logits, top_k).values.min()
            logits = torch.where(logits >= threshold, logits, torch.full_like(logits, -float("inf")))
        if temperature == 0:
            token = int(logits.argmax())
        else:
            cdf = torch.cumsum(torch.softmax(logits.double() / temperature, dim=-1), dim=-1)
            u = torch.rand((), dtype=torch.float64) * cdf[-1]
            token = min(int(torch.searchsorted(cdf, u, right=True)), logits.numel() - 1)
        if token == eos_id:
            break
        tokens.append(token)
    return torch.tensor([tokens], dtype=idx.dtype, device=idx.device)
