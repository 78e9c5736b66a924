"""The token log-probabilities as minus F.cross_entropy(reduction="none") over the flattened shifted
positions, reshaped back to (batch, num_tokens - 1); the dropped positions zeroed with masked_fill."""


def compute_logprobs(logits, labels, selection_mask=None):
    batch, tokens, vocab = logits.shape
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1), reduction="none").view(
        batch, tokens - 1
    )
    token_logprobs = -nll
    if selection_mask is None:
        return token_logprobs.sum(-1)
    return token_logprobs.masked_fill(~selection_mask[:, 1:].bool(), 0.0).sum(-1)
