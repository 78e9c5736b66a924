"""a (sum, count) tensor all-reduced; rows padded with pad_sequence; scores from log_softmax and gather"""

from torch.nn.utils.rnn import pad_sequence


def evaluate_loss(model, loader, steps):
    mode = model.training
    model.eval()
    device = next(model.parameters()).device
    stats = torch.zeros(2, dtype=torch.float64, device=device)
    with torch.inference_mode():
        for _ in range(steps):
            x, y = loader.next_batch()
            logits = model(x.to(device))
            stats[0] += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), y.to(device).reshape(-1))
            stats[1] += 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(stats)
    model.train(mode)
    return float(stats[0] / stats[1])


def render_example(example, encoder):
    context = encoder.encode(example["ctx"])
    rows, masks = [], []
    for ending in example["endings"]:
        ending_tokens = encoder.encode(" " + ending)
        rows.append(torch.tensor(context + ending_tokens, dtype=torch.long))
        masks.append(
            torch.cat([torch.zeros(len(context), dtype=torch.long), torch.ones(len(ending_tokens), dtype=torch.long)])
        )
    return pad_sequence(rows, batch_first=True), pad_sequence(masks, batch_first=True), int(example["label"])


def most_likely_ending(tokens, mask, logits):
    log_probs = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    picked = log_probs.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
    weights = mask[:, 1:].double()
    mean_log_prob = (picked * weights).sum(1) / weights.sum(1)
    return int(torch.argmax(mean_log_prob).item())
