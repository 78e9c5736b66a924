"""the schedule through torch's LambdaLR, stepped after each optimizer step"""


def learning_rate_at(
    step: int, peak_lr: float, warmup_steps: int, total_steps: int, initial_lr: float = 3e-05, min_lr: float = 1e-6
) -> float:
    """Warm-up fraction or cosine fraction of the way from one rate to the other."""
    if step >= warmup_steps:
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        return min_lr + (peak_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
    return initial_lr + step * (peak_lr - initial_lr) / warmup_steps


def train_model(
    model,
    train_loader,
    val_loader,
    optimizer,
    device,
    n_epochs,
    eval_freq,
    eval_iter,
    start_context,
    tokenizer,
    warmup_steps,
    initial_lr=3e-05,
    min_lr=1e-6,
):
    """LambdaLR multiplies the starting rate (the peak) by the factor of each step."""
    peak_lr = optimizer.param_groups[0]["lr"]
    total_steps = n_epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_at(step, peak_lr, warmup_steps, total_steps, initial_lr, min_lr) / peak_lr
    )
    train_losses, val_losses, track_tokens_seen, track_lrs = [], [], [], []
    tokens_seen, step = 0, 0
    for epoch in range(n_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            track_lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            if step >= warmup_steps:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            tokens_seen += input_batch.numel()
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
            step += 1
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen, track_lrs
