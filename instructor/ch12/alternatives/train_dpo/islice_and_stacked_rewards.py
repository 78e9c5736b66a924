"""itertools.islice for the first batches, rewards stacked into one tensor; the book's loop with an epoch counter"""

import itertools


def compute_dpo_loss_loader(data_loader, policy_model, reference_model, beta, num_batches=None):
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    results = [
        compute_dpo_loss_batch(batch, policy_model, reference_model, beta) for batch in itertools.islice(data_loader, n)
    ]
    losses = torch.stack([r[0].detach() for r in results])
    chosen = torch.cat([r[1] for r in results])
    rejected = torch.cat([r[2] for r in results])
    return {
        "loss": losses.mean().item(),
        "chosen_reward": chosen.mean().item(),
        "rejected_reward": rejected.mean().item(),
        "reward_margin": (chosen - rejected).mean().item(),
        "reward_accuracy": (chosen > rejected).sum().item() / len(chosen),
    }


def evaluate_dpo_loss_loader(policy_model, reference_model, train_loader, val_loader, beta, eval_iter):
    policy_model.eval()
    with torch.no_grad():
        train_res = compute_dpo_loss_loader(train_loader, policy_model, reference_model, beta, num_batches=eval_iter)
        val_res = compute_dpo_loss_loader(val_loader, policy_model, reference_model, beta, num_batches=eval_iter)
    policy_model.train()
    res = {"train_" + k: v for k, v in train_res.items()}
    res.update({"val_" + k: v for k, v in val_res.items()})
    return res


def train_model_dpo_simple(
    policy_model, reference_model, train_loader, val_loader, optimizer, num_epochs, beta, eval_freq, eval_iter
):
    tracking = {
        "train_losses": [],
        "train_chosen_rewards": [],
        "train_rejected_rewards": [],
        "val_losses": [],
        "val_chosen_rewards": [],
        "val_rejected_rewards": [],
        "train_reward_margins": [],
        "val_reward_margins": [],
        "train_reward_accuracies": [],
        "val_reward_accuracies": [],
        "steps": [],
        "tokens_seen": [],
    }
    tokens_seen, global_step = 0, -1
    for epoch in range(num_epochs):
        policy_model.train()
        for batch_idx, batch in enumerate(train_loader):
            optimizer.zero_grad()
            loss, chosen_rewards, rejected_rewards = compute_dpo_loss_batch(
                batch=batch, policy_model=policy_model, reference_model=reference_model, beta=beta
            )
            loss.backward()
            optimizer.step()
            tokens_seen += batch["chosen"].numel()
            global_step += 1
            if global_step % eval_freq == 0:
                res = evaluate_dpo_loss_loader(
                    policy_model=policy_model,
                    reference_model=reference_model,
                    train_loader=train_loader,
                    val_loader=val_loader,
                    beta=beta,
                    eval_iter=eval_iter,
                )
                for part in ("train", "val"):
                    tracking[f"{part}_losses"].append(res[f"{part}_loss"])
                    tracking[f"{part}_chosen_rewards"].append(res[f"{part}_chosen_reward"])
                    tracking[f"{part}_rejected_rewards"].append(res[f"{part}_rejected_reward"])
                    tracking[f"{part}_reward_margins"].append(res[f"{part}_reward_margin"])
                    tracking[f"{part}_reward_accuracies"].append(res[f"{part}_reward_accuracy"])
                tracking["steps"].append(global_step)
                tracking["tokens_seen"].append(tokens_seen)
    return tracking
