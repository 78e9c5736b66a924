"""the book's version (context from pos_emb, or from the config of a model without it), padding built with torch.full"""


def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    """spam or not spam."""
    model.eval()
    input_ids = tokenizer.encode(text)
    if "pos_emb" in dict(model.named_children()):
        supported_context_length = model.pos_emb.weight.shape[0]
    else:
        supported_context_length = model.cfg["context_length"]
    length = supported_context_length if max_length is None else min(max_length, supported_context_length)
    input_ids = input_ids[:length]
    if max_length is None:
        length = len(input_ids)
    batch = torch.full((1, length), pad_token_id, dtype=torch.long, device=device)
    batch[0, : len(input_ids)] = torch.tensor(input_ids, dtype=torch.long)
    with torch.no_grad():
        logits = model(batch)[:, -1, :]
    return ["not spam", "spam"][logits.argmax(dim=-1).item()]
