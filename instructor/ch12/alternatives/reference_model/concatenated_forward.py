"""a chained requires_grad_(False).eval() copy; chosen and rejected in one forward pass each (TRL's concatenated forward)"""


def create_reference_model(model):
    return copy.deepcopy(model).requires_grad_(False).eval()


def _both_logprobs(model, batch):
    ids = torch.cat([batch["chosen"], batch["rejected"]], dim=0)
    masks = torch.cat([batch["chosen_mask"], batch["rejected_mask"]], dim=0)
    logprobs = compute_logprobs(model(ids), ids, masks)
    return logprobs[: batch["chosen"].shape[0]], logprobs[batch["chosen"].shape[0] :]


def compute_dpo_loss_batch(batch, policy_model, reference_model, beta):
    policy_chosen, policy_rejected = _both_logprobs(policy_model, batch)
    with torch.no_grad():
        reference_chosen, reference_rejected = _both_logprobs(reference_model, batch)
    return compute_dpo_loss(
        model_chosen_logprobs=policy_chosen,
        model_rejected_logprobs=policy_rejected,
        reference_chosen_logprobs=reference_chosen,
        reference_rejected_logprobs=reference_rejected,
        beta=beta,
    )
