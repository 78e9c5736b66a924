"""Freezes with Module.requires_grad_(False) and eval() chained on the deep copy; the four
log-probabilities come from a small helper, the reference's called inside a torch.no_grad() block."""


def create_reference_model(model):
    return copy.deepcopy(model).requires_grad_(False).eval()


def _sequence_logprobs(model, batch, key):
    return compute_logprobs(model(batch[key]), batch[key], selection_mask=batch[f"{key}_mask"])


def compute_dpo_loss_batch(batch, policy_model, reference_model, beta):
    policy_chosen = _sequence_logprobs(policy_model, batch, "chosen")
    policy_rejected = _sequence_logprobs(policy_model, batch, "rejected")
    with torch.no_grad():
        ref_chosen = _sequence_logprobs(reference_model, batch, "chosen")
        ref_rejected = _sequence_logprobs(reference_model, batch, "rejected")
    return compute_dpo_loss(
        model_chosen_logprobs=policy_chosen,
        model_rejected_logprobs=policy_rejected,
        reference_chosen_logprobs=ref_chosen,
        reference_rejected_logprobs=ref_rejected,
        beta=beta,
    )
