"""-logsigmoid(z) written as F.softplus(-z) (the same stable function); the log-ratios grouped per
side (policy minus reference of chosen, minus the same of rejected); rewards computed under no_grad."""


def compute_dpo_loss(
    model_chosen_logprobs, model_rejected_logprobs, reference_chosen_logprobs, reference_rejected_logprobs, beta=0.1
):
    chosen_logratio = model_chosen_logprobs - reference_chosen_logprobs
    rejected_logratio = model_rejected_logprobs - reference_rejected_logprobs
    loss = F.softplus(-beta * (chosen_logratio - rejected_logratio)).mean()
    with torch.no_grad():
        chosen_rewards = beta * chosen_logratio
        rejected_rewards = beta * rejected_logratio
    return loss, chosen_rewards, rejected_rewards
