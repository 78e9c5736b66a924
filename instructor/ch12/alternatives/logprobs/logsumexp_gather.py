"""Log-probabilities as gathered logit minus torch.logsumexp over the vocabulary (no log_softmax call);
the mask applied with torch.where and the sum taken with .sum(dim=1)."""


def compute_logprobs(logits, labels, selection_mask=None):
    shifted = logits[:, :-1, :]
    targets = labels[:, 1:]
    picked = shifted.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    token_logprobs = picked - torch.logsumexp(shifted, dim=-1)
    if selection_mask is not None:
        keep = selection_mask[:, 1:].bool()
        token_logprobs = torch.where(keep, token_logprobs, torch.zeros_like(token_logprobs))
    return token_logprobs.sum(dim=1)
