"""gradient clipping computed by hand; the step number from epoch and batch index"""


def learning_rate_at(step, peak_lr, warmup_steps, total_steps, initial_lr=3e-05, min_lr=1e-6):
    """Linear warm-up, then half a cosine."""
    if step < warmup_steps:
        return initial_lr + (peak_lr - initial_lr) * (step / warmup_steps)
    decay_steps = total_steps - warmup_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / decay_steps))
    return min_lr + (peak_lr - min_lr) * cosine


def _clip_(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale)


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
    """Warm-up, cosine decay and clipping around the plain loop."""
    peak = optimizer.param_groups[0]["lr"]
    per_epoch = len(train_loader)
    total = per_epoch * n_epochs
    train_losses, val_losses, seen_history, lrs = [], [], [], []
    seen = 0
    for epoch in range(n_epochs):
        model.train()
        for index, (inputs, targets) in enumerate(train_loader):
            step = epoch * per_epoch + index
            lr = learning_rate_at(step, peak, warmup_steps, total, initial_lr=initial_lr, min_lr=min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            lrs.append(lr)
            optimizer.zero_grad()
            calc_loss_batch(inputs, targets, model, device).backward()
            if step >= warmup_steps:
                _clip_(list(model.parameters()), 1.0)
            optimizer.step()
            seen += inputs.numel()
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                seen_history.append(seen)
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, seen_history, lrs
