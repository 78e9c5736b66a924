"""enumerate over a flat step counter, evaluation through a helper that restores the mode"""


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """both losses in eval mode."""
    model.eval()
    with torch.no_grad():
        losses = tuple(
            calc_loss_loader(loader, model, device, num_batches=eval_iter) for loader in (train_loader, val_loader)
        )
    model.train()
    return losses


def train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter):
    """the book's loop, written with a step counter from enumerate."""
    history = {"train_loss": [], "val_loss": [], "train_acc": [], "val_acc": []}
    seen, step = 0, 0
    for _ in range(num_epochs):
        model.train()
        for inputs, labels in train_loader:
            loss = calc_loss_batch(inputs, labels, model, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                history["train_loss"].append(train_loss)
                history["val_loss"].append(val_loss)
            step += 1
        for key, loader in (("train_acc", train_loader), ("val_acc", val_loader)):
            history[key].append(calc_accuracy_loader(loader, model, device, num_batches=eval_iter))
    return history["train_loss"], history["val_loss"], history["train_acc"], history["val_acc"], seen
