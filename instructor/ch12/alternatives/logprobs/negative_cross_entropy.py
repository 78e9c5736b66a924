"""minus cross_entropy per token (reduction="none"), the unselected tokens zeroed with masked_fill"""


def compute_logprobs(logits, labels, selection_mask=None):
    targets = labels[:, 1:]
    per_token = -F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")  # (batch, num_tokens - 1)
    if selection_mask is not None:
        per_token = per_token.masked_fill(~selection_mask[:, 1:].bool(), 0.0)
    return per_token.sum(dim=1)
