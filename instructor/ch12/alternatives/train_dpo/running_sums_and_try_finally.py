"""running sums weighted by the batch size; evaluation restores train mode in a finally; a while loop over steps"""


def compute_dpo_loss_loader(data_loader, policy_model, reference_model, beta, num_batches=None):
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    loss_sum, chosen_sum, rejected_sum, correct, count, batches = 0.0, 0.0, 0.0, 0, 0, 0
    for batch in data_loader:
        if batches == limit:
            break
        loss, chosen, rejected = compute_dpo_loss_batch(batch, policy_model, reference_model, beta)
        loss_sum += loss.item()
        chosen_sum += chosen.sum().item()
        rejected_sum += rejected.sum().item()
        correct += int((chosen > rejected).sum())
        count += chosen.numel()
        batches += 1
    chosen_mean, rejected_mean = chosen_sum / count, rejected_sum / count
    return {
        "loss": loss_sum / batches,
        "chosen_reward": chosen_mean,
        "rejected_reward": rejected_mean,
        "reward_margin": chosen_mean - rejected_mean,
        "reward_accuracy": correct / count,
    }


def evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter):
    policy_model.eval()
    try:
        result = {}
        for prefix, loader in (("train", train_loader), ("val", val_loader)):
            with torch.no_grad():
                values = compute_dpo_loss_loader(loader, policy_model, reference_model, beta, eval_iter)
            result.update({f"{prefix}_{key}": value for key, value in values.items()})
        return result
    finally:
        policy_model.train()


def train_model_dpo_simple(
    policy_model, reference_model, train_loader, val_loader, optimizer, num_epochs, beta, eval_freq, eval_iter
):
    names = {
        "losses": "loss",
        "chosen_rewards": "chosen_reward",
        "rejected_rewards": "rejected_reward",
        "reward_margins": "reward_margin",
        "reward_accuracies": "reward_accuracy",
    }
    tracking = {f"{p}_{n}": [] for n in names for p in ("val", "train")}
    tracking["steps"], tracking["tokens_seen"] = [], []
    step, tokens = 0, 0
    epoch = 0
    while epoch < num_epochs:
        policy_model.train()
        for batch in train_loader:
            optimizer.zero_grad()
            loss = compute_dpo_loss_batch(batch, policy_model, reference_model, beta)[0]
            loss.backward()
            optimizer.step()
            tokens += batch["chosen"].numel()
            if step % eval_freq == 0:
                res = evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter)
                for n, k in names.items():
                    tracking[f"train_{n}"].append(res[f"train_{k}"])
                    tracking[f"val_{n}"].append(res[f"val_{k}"])
                tracking["steps"].append(step)
                tracking["tokens_seen"].append(tokens)
            step += 1
        epoch += 1
    return tracking
