"""allowed_special='all', the batch built as a nested list; decode of reshape(-1)"""


def text_to_token_ids(text, tokenizer):
    """text -> (1, num_tokens) int64."""
    ids = tokenizer.encode(text, allowed_special="all")
    return torch.tensor([ids], dtype=torch.long)


def token_ids_to_text(token_ids, tokenizer):
    """(1, num_tokens) or (num_tokens,) -> text."""
    return tokenizer.decode(token_ids.reshape(-1).tolist())
