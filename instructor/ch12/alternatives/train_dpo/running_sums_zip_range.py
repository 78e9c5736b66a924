"""Running sums of batch means over zip(range(n), loader) (equal batches: the same means), accuracy
as the batch mean of (chosen - rejected > 0); evaluation builds both prefixes in one dict
comprehension inside a with torch.no_grad() block; the training loop uses enumerate over a
flattened epoch/batch generator with the global step from 0."""


def compute_dpo_loss_loader(data_loader, policy_model, reference_model, beta, num_batches=None):
    total = len(data_loader)
    if num_batches is not None:
        total = min(total, num_batches)
    loss_sum = chosen_sum = rejected_sum = accuracy_sum = 0.0
    for _, batch in zip(range(total), data_loader):
        loss, chosen_rewards, rejected_rewards = compute_dpo_loss_batch(
            batch=batch, policy_model=policy_model, reference_model=reference_model, beta=beta
        )
        loss_sum += float(loss)
        chosen_sum += float(chosen_rewards.mean())
        rejected_sum += float(rejected_rewards.mean())
        accuracy_sum += float((chosen_rewards - rejected_rewards > 0).float().mean())
    chosen_mean = chosen_sum / total
    rejected_mean = rejected_sum / total
    return {
        "loss": loss_sum / total,
        "chosen_reward": chosen_mean,
        "rejected_reward": rejected_mean,
        "reward_margin": chosen_mean - rejected_mean,
        "reward_accuracy": accuracy_sum / total,
    }


def evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter):
    policy_model.eval()
    with torch.no_grad():
        result = {
            f"{name}_{key}": value
            for name, loader in (("train", train_loader), ("val", val_loader))
            for key, value in compute_dpo_loss_loader(
                loader, policy_model, reference_model, beta, num_batches=eval_iter
            ).items()
        }
    policy_model.train()
    return result


def train_model_dpo_simple(
    policy_model, reference_model, train_loader, val_loader, optimizer, num_epochs, beta, eval_freq, eval_iter
):
    names = [
        "train_losses",
        "val_losses",
        "train_chosen_rewards",
        "train_rejected_rewards",
        "val_chosen_rewards",
        "val_rejected_rewards",
        "train_reward_margins",
        "val_reward_margins",
        "train_reward_accuracies",
        "val_reward_accuracies",
        "steps",
        "tokens_seen",
    ]
    history = dict.fromkeys(names)
    for name in names:
        history[name] = []
    tokens_seen = 0

    def batches():
        for _ in range(num_epochs):
            policy_model.train()
            yield from train_loader

    for global_step, batch in enumerate(batches()):
        optimizer.zero_grad()
        loss, _chosen, _rejected = compute_dpo_loss_batch(batch, policy_model, reference_model, beta)
        loss.backward()
        optimizer.step()
        tokens_seen += batch["chosen"].numel()
        if global_step % eval_freq:
            continue
        res = evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter)
        history["train_losses"].append(res["train_loss"])
        history["val_losses"].append(res["val_loss"])
        for split in ("train", "val"):
            history[f"{split}_chosen_rewards"].append(res[f"{split}_chosen_reward"])
            history[f"{split}_rejected_rewards"].append(res[f"{split}_rejected_reward"])
            history[f"{split}_reward_margins"].append(res[f"{split}_reward_margin"])
            history[f"{split}_reward_accuracies"].append(res[f"{split}_reward_accuracy"])
        history["steps"].append(global_step)
        history["tokens_seen"].append(tokens_seen)
    return history
