"""inference_mode with try/finally; a hand-written greedy loop; the step number from epoch and batch index"""


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Both losses in eval mode; train mode restored even if evaluation fails."""
    model.eval()
    try:
        with torch.inference_mode():
            losses = tuple(
                calc_loss_loader(loader, model, device, num_batches=eval_iter) for loader in (train_loader, val_loader)
            )
    finally:
        model.train()
    return losses


def generate_and_print_sample(model, tokenizer, device, start_context):
    """Greedy continuation of 50 tokens, written out by hand."""
    model.eval()
    context_size = model.pos_emb.weight.shape[0]
    ids = text_to_token_ids(start_context, tokenizer).to(device)
    with torch.no_grad():
        for _ in range(50):
            logits = model(ids[:, -context_size:])
            ids = torch.cat([ids, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    text = token_ids_to_text(ids, tokenizer)
    print(text.replace("\n", " "))
    model.train()


def train_model_simple(
    model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter, start_context, tokenizer
):
    """Trains and records losses every eval_freq steps."""
    history = {"train": [], "val": [], "tokens": []}
    seen = 0
    steps_per_epoch = len(train_loader)
    for epoch in range(num_epochs):
        model.train()
        for batch_index, (inputs, targets) in enumerate(train_loader):
            step = epoch * steps_per_epoch + batch_index
            optimizer.zero_grad()
            calc_loss_batch(inputs, targets, model, device).backward()
            optimizer.step()
            seen += inputs.shape[0] * inputs.shape[1]
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                history["train"].append(train_loss)
                history["val"].append(val_loss)
                history["tokens"].append(seen)
        generate_and_print_sample(model, tokenizer, device, start_context)
    return history["train"], history["val"], history["tokens"]
