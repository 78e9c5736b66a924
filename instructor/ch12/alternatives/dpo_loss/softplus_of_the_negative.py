"""softplus(-x), which equals -logsigmoid(x), computed as TRL writes the sigmoid loss"""


def compute_dpo_loss(
    model_chosen_logprobs,
    model_rejected_logprobs,
    reference_chosen_logprobs,
    reference_rejected_logprobs,
    beta=0.1,
):
    pi_logratios = model_chosen_logprobs - model_rejected_logprobs
    ref_logratios = reference_chosen_logprobs - reference_rejected_logprobs
    logits = pi_logratios - ref_logratios
    losses = F.softplus(-beta * logits)
    chosen_rewards = beta * (model_chosen_logprobs - reference_chosen_logprobs).detach()
    rejected_rewards = beta * (model_rejected_logprobs - reference_rejected_logprobs).detach()
    return losses.mean(), chosen_rewards, rejected_rewards
