"""as_tensor with [None, :]; the first row taken only for 2-d input, ids as Python ints"""


def text_to_token_ids(text: str, tokenizer) -> torch.Tensor:
    """Encodes text into a batch of one."""
    ids = torch.as_tensor(tokenizer.encode(text, allowed_special={"<|endoftext|>"}), dtype=torch.int64)
    return ids[None, :]


def token_ids_to_text(token_ids: torch.Tensor, tokenizer) -> str:
    """Decodes a batch of one, or a flat tensor of ids."""
    if token_ids.dim() == 2:
        token_ids = token_ids[0]
    return tokenizer.decode([int(t) for t in token_ids])
