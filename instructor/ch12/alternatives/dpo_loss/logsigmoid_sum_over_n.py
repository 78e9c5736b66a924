"""The mean written as a sum divided by the batch size; rewards detached before scaling by beta."""


def compute_dpo_loss(
    model_chosen_logprobs, model_rejected_logprobs, reference_chosen_logprobs, reference_rejected_logprobs, beta=0.1
):
    pi_logratios = model_chosen_logprobs - model_rejected_logprobs
    ref_logratios = reference_chosen_logprobs - reference_rejected_logprobs
    losses = -F.logsigmoid(beta * (pi_logratios - ref_logratios))
    loss = losses.sum() / losses.shape[0]
    chosen_rewards = beta * (model_chosen_logprobs.detach() - reference_chosen_logprobs.detach())
    rejected_rewards = beta * (model_rejected_logprobs.detach() - reference_rejected_logprobs.detach())
    return loss, chosen_rewards, rejected_rewards
