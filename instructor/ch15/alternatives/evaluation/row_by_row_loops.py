"""Python loops: batch losses summed as floats, then all-reduced in a one-element tensor; each ending scored on its own slice"""


def evaluate_loss(model, loader, steps):
    was_training = model.training
    model.train(False)
    total = 0.0
    with torch.no_grad():
        for _ in range(steps):
            inputs, targets = loader.next_batch()
            logits = model(inputs)
            total += F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()
    model.train(was_training)
    result = torch.tensor([total / steps])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(result)
        result = result / dist.get_world_size()
    return result.item()


def render_example(example, encoder):
    ctx = encoder.encode(example["ctx"])
    ends = [encoder.encode(" " + e) for e in example["endings"]]
    width = len(ctx) + max(len(e) for e in ends)
    tokens = torch.zeros(len(ends), width, dtype=torch.int64)
    mask = torch.zeros(len(ends), width, dtype=torch.int64)
    for row, end in enumerate(ends):
        for col, tok in enumerate(ctx + end):
            tokens[row, col] = tok
            mask[row, col] = 1 if col >= len(ctx) else 0
    return tokens, mask, example["label"]


def most_likely_ending(tokens, mask, logits):
    best, best_loss = 0, float("inf")
    for row in range(tokens.shape[0]):
        positions = [t for t in range(1, tokens.shape[1]) if mask[row, t]]
        losses = [F.cross_entropy(logits[row, t - 1].float(), tokens[row, t]).item() for t in positions]
        mean = sum(losses) / len(losses)
        if mean < best_loss:
            best, best_loss = row, mean
    return best
