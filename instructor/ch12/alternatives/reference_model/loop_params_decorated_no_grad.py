"""Freezes with a loop over parameters(); the reference's log-probabilities computed in a function
decorated with @torch.no_grad(); compute_dpo_loss called positionally."""


def create_reference_model(model):
    reference = copy.deepcopy(model)
    for parameter in reference.parameters():
        parameter.requires_grad = False
    reference.eval()
    return reference


@torch.no_grad()
def _reference_logprobs(reference_model, batch):
    chosen = compute_logprobs(reference_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])
    rejected = compute_logprobs(reference_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])
    return chosen, rejected


def compute_dpo_loss_batch(batch, policy_model, reference_model, beta):
    pol_chosen = compute_logprobs(policy_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])
    pol_rejected = compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])
    ref_chosen, ref_rejected = _reference_logprobs(reference_model, batch)
    return compute_dpo_loss(pol_chosen, pol_rejected, ref_chosen, ref_rejected, beta)
