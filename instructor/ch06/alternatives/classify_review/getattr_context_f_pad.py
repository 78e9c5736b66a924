"""the context from getattr(model, "pos_emb", None), the ids cut with a slice object and padded with F.pad"""


def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    """spam or not spam."""
    pos_emb = getattr(model, "pos_emb", None)
    context = pos_emb.num_embeddings if pos_emb is not None else int(model.cfg["context_length"])
    keep = slice(0, context if max_length is None else min(max_length, context))
    ids = torch.as_tensor(tokenizer.encode(text)[keep], dtype=torch.int64)
    if max_length is not None:
        ids = torch.nn.functional.pad(ids, (0, keep.stop - ids.numel()), value=pad_token_id)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            class_id = int(model(ids[None].to(device))[0, -1].argmax())
    finally:
        model.train(was_training)
    return "spam" if class_id == 1 else "not spam"
