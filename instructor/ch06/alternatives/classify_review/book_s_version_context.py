"""the book's version (context from pos_emb), padding built with torch.full"""


def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    """spam or not spam."""
    model.eval()
    input_ids = tokenizer.encode(text)
    supported_context_length = model.pos_emb.weight.shape[0]
    input_ids = input_ids[: min(max_length, supported_context_length)]
    batch = torch.full((1, max_length), pad_token_id, dtype=torch.long, device=device)
    batch[0, : len(input_ids)] = torch.tensor(input_ids, dtype=torch.long)
    with torch.no_grad():
        logits = model(batch)[:, -1, :]
    return ["not spam", "spam"][logits.argmax(dim=-1).item()]
