"""The loader's statistics from per-example reward tensors concatenated with torch.cat (example means,
accuracy as the mean of chosen > rejected over all examples), the batches drawn with next() on one iterator;
evaluation decorated with @torch.no_grad(); the training loop tests the step before incrementing a
counter that starts at 0."""


def compute_dpo_loss_loader(data_loader, policy_model, reference_model, beta, num_batches=None):
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    losses, chosen, rejected = [], [], []
    batches = iter(data_loader)
    for _ in range(n):
        batch = next(batches)
        loss, chosen_rewards, rejected_rewards = compute_dpo_loss_batch(batch, policy_model, reference_model, beta)
        losses.append(loss.item())
        chosen.append(chosen_rewards.detach().reshape(-1))
        rejected.append(rejected_rewards.detach().reshape(-1))
    chosen = torch.cat(chosen)
    rejected = torch.cat(rejected)
    chosen_reward = chosen.mean().item()
    rejected_reward = rejected.mean().item()
    return {
        "loss": sum(losses) / len(losses),
        "chosen_reward": chosen_reward,
        "rejected_reward": rejected_reward,
        "reward_margin": chosen_reward - rejected_reward,
        "reward_accuracy": (chosen > rejected).float().mean().item(),
    }


@torch.no_grad()
def _both_loaders(policy_model, reference_model, train_loader, val_loader, beta, eval_iter):
    out = {}
    for prefix, loader in (("train", train_loader), ("val", val_loader)):
        stats = compute_dpo_loss_loader(loader, policy_model, reference_model, beta, num_batches=eval_iter)
        out.update({f"{prefix}_{key}": value for key, value in stats.items()})
    return out


def evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter):
    policy_model.eval()
    try:
        return _both_loaders(policy_model, reference_model, train_loader, val_loader, beta, eval_iter)
    finally:
        policy_model.train()


_TRACKED = {
    "train_losses": "train_loss",
    "val_losses": "val_loss",
    "train_chosen_rewards": "train_chosen_reward",
    "train_rejected_rewards": "train_rejected_reward",
    "val_chosen_rewards": "val_chosen_reward",
    "val_rejected_rewards": "val_rejected_reward",
    "train_reward_margins": "train_reward_margin",
    "val_reward_margins": "val_reward_margin",
    "train_reward_accuracies": "train_reward_accuracy",
    "val_reward_accuracies": "val_reward_accuracy",
}


def train_model_dpo_simple(
    policy_model, reference_model, train_loader, val_loader, optimizer, num_epochs, beta, eval_freq, eval_iter
):
    tracking = {key: [] for key in _TRACKED}
    tracking["steps"] = []
    tracking["tokens_seen"] = []
    step = 0
    tokens_seen = 0
    for _ in range(num_epochs):
        policy_model.train()
        for batch in train_loader:
            optimizer.zero_grad()
            loss, _, _ = compute_dpo_loss_batch(batch, policy_model, reference_model, beta)
            loss.backward()
            optimizer.step()
            tokens_seen += batch["chosen"].numel()
            if step % eval_freq == 0:
                res = evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter)
                for key, source in _TRACKED.items():
                    tracking[key].append(res[source])
                tracking["steps"].append(step)
                tracking["tokens_seen"].append(tokens_seen)
            step += 1
    return tracking
