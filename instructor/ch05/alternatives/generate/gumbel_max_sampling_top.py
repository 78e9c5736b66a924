"""Gumbel-max sampling; top-k by scattering the k best into -inf; @torch.no_grad() decorator"""


@torch.no_grad()
def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T)."""
    out = idx
    for _ in range(max_new_tokens):
        logits = model(out[:, -context_size:])[:, -1, :]
        if top_k:
            values, indices = torch.topk(logits, top_k, dim=-1)
            logits = torch.full_like(logits, float("-inf")).scatter(-1, indices, values)
        if temperature > 0:
            uniform = torch.rand_like(logits).clamp_(min=1e-20)
            logits = logits / temperature - torch.log(-torch.log(uniform))
        next_id = torch.argmax(logits, dim=-1, keepdim=True)
        if next_id.item() == eos_id:
            break
        out = torch.cat((out, next_id), dim=1)
    return out
