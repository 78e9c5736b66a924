"""gradients reset after each step; the evaluation restores the previous mode; a while loop over an iterator"""


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """(train_loss, val_loss) with dropout off; the model's mode is put back as it was."""
    was_training = model.training
    model.train(False)
    with torch.set_grad_enabled(False):
        train_loss = calc_loss_loader(train_loader, model, device, eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, eval_iter)
    model.train(was_training)
    return train_loss, val_loss


@torch.no_grad()
def generate_and_print_sample(model, tokenizer, device, start_context):
    """One line of greedy text."""
    model.eval()
    idx = generate_text_simple(
        model, text_to_token_ids(start_context, tokenizer).to(device), 50, model.pos_emb.num_embeddings
    )
    print(" ".join(token_ids_to_text(idx, tokenizer).split("\n")))
    model.train()


def train_model_simple(
    model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter, start_context, tokenizer
):
    """One step per batch; gradients cleared after each step rather than before."""
    train_losses, val_losses, track_tokens_seen = [], [], []
    step, tokens = 0, 0
    optimizer.zero_grad()
    for epoch in range(num_epochs):
        model.train()
        batches = iter(train_loader)
        while (batch := next(batches, None)) is not None:
            inputs, targets = batch
            loss = calc_loss_batch(inputs, targets, model, device)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            tokens += inputs.numel()
            if step % eval_freq == 0:
                losses = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(losses[0])
                val_losses.append(losses[1])
                track_tokens_seen.append(tokens)
            step += 1
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen
