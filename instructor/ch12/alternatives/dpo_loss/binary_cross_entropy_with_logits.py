"""the logistic loss as binary_cross_entropy_with_logits against a target of 1 (chosen wins)"""


def compute_dpo_loss(
    model_chosen_logprobs,
    model_rejected_logprobs,
    reference_chosen_logprobs,
    reference_rejected_logprobs,
    beta=0.1,
):
    chosen_rewards = beta * (model_chosen_logprobs - reference_chosen_logprobs)
    rejected_rewards = beta * (model_rejected_logprobs - reference_rejected_logprobs)
    margins = chosen_rewards - rejected_rewards
    loss = F.binary_cross_entropy_with_logits(margins, torch.ones_like(margins))
    return loss, chosen_rewards.detach(), rejected_rewards.detach()
